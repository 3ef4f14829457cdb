//! Aggregates over the ledger: totals, the stats, monthly revenue, running totals (window
//! functions), top spenders (the seed's raw SQL report) and reconciliation. Re-exported by
//! [`transactions`](super).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgExecutor;

use super::EntryId;
use crate::accounts::AccountId;
use crate::ids::UserId;
use crate::kinds::EntryStatus;
use crate::numeric::Numeric;
use crate::page;
use crate::{Error, Result};

/// The sum of every applied movement (`completed` or Django's `success`, [`APPLIED`](super::APPLIED)); zero
/// (never NULL) when there is none.
///
/// Django: `Transaction.objects.filter(status='success').aggregate(total=Sum('amount'))` — the
/// seed's `'success'` is what this crate writes as `'completed'`; both are counted. For Django's
/// exact filter on one spelling, use [`total_with_status`].
///
/// SQL: `select coalesce(sum(amount), 0.00) from transactions where status in ('completed',
/// 'success')`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn total_completed(db: impl PgExecutor<'_>) -> Result<Decimal> {
    let op = crate::telemetry::op_span!(
        "ledger.transactions.total_completed",
        "SELECT",
        "transactions"
    );
    crate::telemetry::traced(op, async move {
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

/// The sum of the movements whose status is exactly `status`; zero (never NULL) when there is
/// none: Django's filter, one spelling at a time.
///
/// Django: `Transaction.objects.filter(status='success').aggregate(total=Sum('amount'))`
///
/// SQL: `select coalesce(sum(amount), 0.00) from transactions where status = $1`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn total_with_status(db: impl PgExecutor<'_>, status: &EntryStatus) -> Result<Decimal> {
    let op = crate::telemetry::op_span!(
        "ledger.transactions.total_with_status",
        "SELECT",
        "transactions"
    );
    crate::telemetry::traced(op, async move {
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

/// Statistics over every movement, in one query.
///
/// Django: `Transaction.objects.aggregate(total=Sum('amount'), count=Count('id'),
/// average=Avg('amount'), maximum=Max('amount'))` (and `Min`)
///
/// SQL: `select coalesce(sum(amount), 0.00), count(*), round(avg(amount), 2), max(amount),
/// min(amount) from transactions`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn stats(db: impl PgExecutor<'_>) -> Result<Stats> {
    let op = crate::telemetry::op_span!("ledger.transactions.stats", "SELECT", "transactions");
    crate::telemetry::traced(op, async move {
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

/// One month of movements.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MonthlyRevenue {
    /// The first day of the month, in the report's time zone.
    pub month: NaiveDate,
    /// Sum of the month's amounts.
    pub revenue: Decimal,
    /// How many movements.
    pub count: i64,
}

/// Revenue and count per calendar month in `time_zone` (an IANA name), oldest month first.
/// Months without movements do not appear (as in Django's `GROUP BY`).
///
/// Django: `Transaction.objects.annotate(month=TruncMonth('created_at')).values('month')
/// .annotate(revenue=Sum('amount'), count=Count('id')).order_by('month')`
///
/// SQL: `date_trunc('month', created_at at time zone $1)::date`, `group by 1 order by 1`.
///
/// # Errors
/// [`Error::InvalidInput`] for an unknown time zone.
pub async fn monthly_revenue(
    db: impl PgExecutor<'_>,
    time_zone: &str,
) -> Result<Vec<MonthlyRevenue>> {
    let op = crate::telemetry::op_span!(
        "ledger.transactions.monthly_revenue",
        "SELECT",
        "transactions"
    );
    crate::telemetry::traced(op, async move {
        Error::check_text("time_zone", time_zone)?;
        sqlx::query_as!(
            MonthlyRevenue,
            r#"
        select date_trunc('month', created_at at time zone $1)::date as "month!",
               sum(amount) as "revenue!",
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

/// An outgoing movement with its owner's running total.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunningTotal {
    /// The entry.
    pub id: EntryId,
    /// The owner of the debited account.
    pub user_id: UserId,
    /// The entry's amount.
    pub amount: Decimal,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// Sum of this user's outgoing amounts up to and including this entry.
    pub running_total: Decimal,
}

/// Each outgoing movement (withdrawals and transfers) with the running total of its user's
/// outgoing money, oldest first. Deposits have no `from` account and so no user here (Django
/// would put them in one `NULL` partition; they are left out).
///
/// Django: `Transaction.objects.annotate(running_total=Window(expression=Sum('amount'),
/// partition_by=[F('from_account__user')], order_by=F('created_at').asc()))`
///
/// SQL: `sum(amount) over (partition by user_id order by created_at, id rows between unbounded
/// preceding and current row)`: the `id` tie-breaker and the ROWS frame make it deterministic
/// when timestamps tie (Django's default RANGE frame would give tied rows the same total).
///
/// # Errors
/// [`Error::Database`] only.
pub async fn running_totals(db: impl PgExecutor<'_>) -> Result<Vec<RunningTotal>> {
    let op = crate::telemetry::op_span!(
        "ledger.transactions.running_totals",
        "SELECT",
        "transactions"
    );
    crate::telemetry::traced(op, async move {
        Ok(sqlx::query_as!(
            RunningTotal,
            r#"
        select t.id,
               a.user_id,
               t.amount,
               t.created_at,
               sum(t.amount) over (
                   partition by a.user_id
                   order by t.created_at, t.id
                   rows between unbounded preceding and current row
               ) as "running_total!"
        from transactions t
        join accounts a on a.id = t.from_account_id
        order by a.user_id, t.created_at, t.id
        "#
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// A user's outgoing total over a window of days.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Spender {
    /// The user.
    pub user_id: UserId,
    /// Their name.
    pub name: String,
    /// Sum of their completed outgoing movements in the window.
    pub total_spent: Decimal,
}

/// The longest window [`top_spenders`] accepts, in days (about 2,700 years): `now() - days`
/// must stay within PostgreSQL's timestamps.
pub const MAX_DAYS: i32 = 1_000_000;

/// The users who sent the most money in the last `days` days, biggest first.
///
/// Django: the seed's raw `cursor.execute("SELECT u.name, SUM(t.amount) AS total_spent FROM users
/// u JOIN transactions t ON t.from_account_id IN (SELECT id FROM accounts WHERE user_id = u.id)
/// WHERE t.created_at > NOW() - INTERVAL '30 days' ... LIMIT %s", [10])`
///
/// SQL: the seed's intent with plain joins — `users join accounts join transactions on
/// from_account_id`, completed only, `created_at > now() - make_interval(days => $1)`, `group by
/// u.id order by total desc, u.id limit $2` — with the window a parameter too.
///
/// A top-N report: `limit` is the N, and there is no next page (ask for a bigger N, up to
/// `MAX_PER_PAGE`).
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): the window read by
/// `transactions_created_at_id_idx`; accounts joined by hash (a sequential scan of `accounts`,
/// which the planner prefers to one key probe per transfer at the default `random_page_cost`) and
/// users by `users_pkey`.
///
/// # Errors
/// [`Error::InvalidInput`] for `days` outside `1..=MAX_DAYS` or a limit outside
/// `1..=MAX_PER_PAGE`.
pub async fn top_spenders(db: impl PgExecutor<'_>, days: i32, limit: i64) -> Result<Vec<Spender>> {
    let op =
        crate::telemetry::op_span!("ledger.transactions.top_spenders", "SELECT", "transactions");
    crate::telemetry::traced(op, async move { spenders(db, None, days, limit).await }).await
}

/// [`top_spenders`] as of a given time: the window is the `days` days up to and including
/// `as_of`, whatever the clock says, so a report can be re-run for a past date and gives the
/// same answer (Django's code passes `timezone.now()`; pass the time it would have had).
///
/// Django: the seed's raw query with `NOW()` replaced by a parameter
///
/// SQL: as [`top_spenders`], with `created_at > $3 - make_interval(days => $1) and created_at <=
/// $3`.
///
/// # Errors
/// As [`top_spenders`], and [`Error::InvalidInput`] for an `as_of` whose window would start
/// before the earliest time PostgreSQL holds.
pub async fn top_spenders_as_of(
    db: impl PgExecutor<'_>,
    as_of: DateTime<Utc>,
    days: i32,
    limit: i64,
) -> Result<Vec<Spender>> {
    let op = crate::telemetry::op_span!(
        "ledger.transactions.top_spenders_as_of",
        "SELECT",
        "transactions"
    );
    crate::telemetry::traced(
        op,
        async move { spenders(db, Some(as_of), days, limit).await },
    )
    .await
}

async fn spenders(
    db: impl PgExecutor<'_>,
    as_of: Option<DateTime<Utc>>,
    days: i32,
    limit: i64,
) -> Result<Vec<Spender>> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::invalid(
            "days",
            format!("must be between 1 and {MAX_DAYS}, not {days}"),
        ));
    }
    if let Some(as_of) = as_of
        && as_of - chrono::Duration::days(days.into()) < page::earliest_timestamp()
    {
        return Err(Error::invalid(
            "as_of",
            format!("{as_of} minus {days} days is before the earliest time PostgreSQL holds"),
        ));
    }
    let limit = page::check_limit(limit)?;
    Ok(sqlx::query_as!(
        Spender,
        r#"
        select u.id as "user_id: UserId", u.name, sum(t.amount) as "total_spent!"
        from users u
        join accounts a on a.user_id = u.id
        join transactions t on t.from_account_id = a.id
        where t.created_at > coalesce($3::timestamptz, now()) - make_interval(days => $1)
          and ($3::timestamptz is null or t.created_at <= $3)
          and t.status in ('completed', 'success')
        group by u.id, u.name
        order by 3 desc, u.id
        limit $2
        "#,
        days,
        limit,
        as_of
    )
    .fetch_all(db)
    .await?)
}

/// An account whose balance disagrees with its ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Discrepancy {
    /// The account.
    pub account_id: AccountId,
    /// Its stored balance.
    pub balance: Decimal,
    /// Deposits + incoming − withdrawals − outgoing, over completed movements.
    pub expected: Decimal,
}

/// Checks the whole ledger: every account's balance must equal its completed deposits and
/// incoming transfers minus its completed withdrawals and outgoing transfers, from a zero
/// opening balance (accounts open empty; record an imported opening balance as a deposit).
/// Returns each account that disagrees; an empty list means the books balance.
///
/// Django: none in the seed.
///
/// SQL: per account, two correlated sums (served by the two `(account, created_at)` indexes),
/// keeping the rows where `balance <> credits - debits`.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): reads `accounts` whole (it checks every
/// one); per account, the two account indexes of `transactions`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn reconcile(db: impl PgExecutor<'_>) -> Result<Vec<Discrepancy>> {
    let op = crate::telemetry::op_span!("ledger.transactions.reconcile", "SELECT", "transactions");
    crate::telemetry::traced(op, async move {
        Ok(sqlx::query_as!(
            Discrepancy,
            r#"
        select account_id as "account_id!: AccountId", balance as "balance!",
               expected as "expected!: Numeric"
        from (
            select a.id as account_id,
                   a.balance,
                   coalesce((select sum(t.amount) from transactions t
                             where t.to_account_id = a.id
                               and t.status in ('completed', 'success')), 0.00)
                 - coalesce((select sum(t.amount) from transactions t
                             where t.from_account_id = a.id
                               and t.status in ('completed', 'success')), 0.00)
                   as expected
            from accounts a
        ) as books
        where balance <> expected
        order by account_id
        "#
        )
        .fetch_all(db)
        .await?)
    })
    .await
}
