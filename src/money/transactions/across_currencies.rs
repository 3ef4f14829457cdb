//! Django's figures, exactly: sums that add every currency together (and, where the cheat sheet
//! does, every status). They answer the cheat sheet's lines as Django answers them, for a Django
//! team comparing the two or a database that holds one currency; a money report uses the
//! per-currency forms of [`aggregates`](crate::transactions::aggregates) instead, which never add USD to EUR
//! and count applied movements only. Re-exported by [`transactions`](super).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgExecutor;

use crate::ground::kinds::EntryStatus;
use crate::ground::numeric::Numeric;
use crate::{Error, Result};

use super::spenders::{Spender, spenders};

/// The sum of every applied movement (`completed` or Django's `success`), **all currencies added
/// together**; zero (never NULL) when there is none. Per currency: [`total_completed`](crate::transactions::total_completed).
///
/// Django: `Transaction.objects.filter(status='success').aggregate(total=Sum('amount'))` — the
/// seed's `'success'` is what this crate writes as `'completed'`; both are counted.
///
/// SQL: `select coalesce(sum(amount), 0.00) from transactions where status in ('completed',
/// 'success')`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn total_completed_across_currencies(db: impl PgExecutor<'_>) -> Result<Decimal> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.total_completed_across_currencies",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_scalar!(
            r#"
        select coalesce(sum(amount), 0.00) as "total!: Numeric"
        from transactions
        where status in ('completed', 'success')
        "#
        )
        .fetch_one(db)
        .await?
        .into())
    })
    .await
}

/// The sum of the movements whose status is exactly `status`, **all currencies added
/// together**; zero (never NULL) when there is none: Django's filter, one spelling at a time.
///
/// Django: `Transaction.objects.filter(status='success').aggregate(total=Sum('amount'))`
///
/// SQL: `select coalesce(sum(amount), 0.00) from transactions where status = $1`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn total_with_status_across_currencies(
    db: impl PgExecutor<'_>,
    status: &EntryStatus,
) -> Result<Decimal> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.total_with_status_across_currencies",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_scalar!(
            r#"
        select coalesce(sum(amount), 0.00) as "total!: Numeric"
        from transactions
        where status = $1
        "#,
            status as &EntryStatus
        )
        .fetch_one(db)
        .await?
        .into())
    })
    .await
}

/// Sum, count, average, maximum and minimum of the amounts, in one query.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Sum of amounts; zero when there are none.
    pub total: Decimal,
    /// How many rows.
    pub count: i64,
    /// Mean amount, rounded by the server to 2 places; `None` when there are none.
    pub average: Option<Decimal>,
    /// Largest amount; `None` when there are none.
    pub maximum: Option<Decimal>,
    /// Smallest amount; `None` when there are none.
    pub minimum: Option<Decimal>,
}

/// Statistics over **every movement, of every status and currency**, in one query, as Django
/// computes them. Per currency, applied movements only: [`stats`](crate::transactions::stats).
///
/// Django: `Transaction.objects.aggregate(total=Sum('amount'), count=Count('id'),
/// average=Avg('amount'), maximum=Max('amount'))` (and `Min`)
///
/// SQL: `select coalesce(sum(amount), 0.00), count(*), round(avg(amount), 2), max(amount),
/// min(amount) from transactions`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn stats_across_currencies(db: impl PgExecutor<'_>) -> Result<Stats> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.stats_across_currencies",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_as!(
            Stats,
            r#"
        select coalesce(sum(amount), 0.00) as "total!: Numeric",
               count(*) as "count!",
               round(avg(amount), 2) as average,
               max(amount) as maximum,
               min(amount) as minimum
        from transactions
        "#
        )
        .fetch_one(db)
        .await?)
    })
    .await
}

/// One month of movements, every status and currency added together.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MonthlyTotal {
    /// The first day of the month, in the report's time zone.
    pub month: NaiveDate,
    /// Sum of the month's amounts (Django's `revenue`).
    pub total: Decimal,
    /// How many movements.
    pub count: i64,
}

/// The sum and count of **every movement of every status and currency** per calendar month in
/// `time_zone` (an IANA name), oldest month first, as Django's line computes its "revenue".
/// Per currency, applied movements only: [`monthly_revenue`](crate::transactions::monthly_revenue).
///
/// Django: `Transaction.objects.annotate(month=TruncMonth('created_at')).values('month')
/// .annotate(revenue=Sum('amount'), count=Count('id')).order_by('month')`
///
/// SQL: `date_trunc('month', created_at at time zone $1)::date`, `group by 1 order by 1`.
///
/// # Errors
/// [`Error::InvalidInput`] for an unknown time zone.
pub async fn monthly_totals_across_currencies(
    db: impl PgExecutor<'_>,
    time_zone: &str,
) -> Result<Vec<MonthlyTotal>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.monthly_totals_across_currencies",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced(op, async move {
        Error::check_text("time_zone", time_zone)?;
        sqlx::query_as!(
            MonthlyTotal,
            r#"
        select date_trunc('month', created_at at time zone $1)::date as "month!",
               sum(amount) as "total!",
               count(*) as "count!"
        from transactions
        group by 1
        order by 1
        "#,
            time_zone
        )
        .fetch_all(db)
        .await
        .map_err(|e| Error::from_time_zone(e, time_zone))
    })
    .await
}

/// The users who sent the most money in the last `days` days, biggest first, **their accounts'
/// currencies added together** (the seed's raw report). Per currency:
/// [`top_spenders`](crate::transactions::top_spenders).
///
/// Django: the seed's raw `cursor.execute("SELECT u.name, SUM(t.amount) AS total_spent FROM users
/// u JOIN transactions t ON t.from_account_id IN (SELECT id FROM accounts WHERE user_id = u.id)
/// WHERE t.created_at > NOW() - INTERVAL '30 days' ... LIMIT %s", [10])`
///
/// SQL: as [`top_spenders`](crate::transactions::top_spenders), without the currency filter.
///
/// # Errors
/// As [`top_spenders`](crate::transactions::top_spenders).
pub async fn top_spenders_across_currencies(
    db: impl PgExecutor<'_>,
    days: i32,
    limit: i64,
) -> Result<Vec<Spender>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.top_spenders_across_currencies",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced(
        op,
        async move { spenders(db, None, None, days, limit).await },
    )
    .await
}
