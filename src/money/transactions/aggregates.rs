//! Aggregates over the ledger, **per currency**: totals, the stats, monthly revenue, running
//! totals (window functions), top spenders (the seed's raw SQL report), and reconciliation.
//! Re-exported by [`transactions`](super).
//!
//! **Currencies are never added together.** The cheat sheet's `Sum('amount')` adds a USD amount
//! to a EUR one, and its monthly "revenue" counts failed and pending movements too. Here every
//! sum is grouped by currency and counts applied movements only (`completed`, and Django's
//! `success`: [`APPLIED`](crate::transactions::APPLIED)); Django's exact figures keep names that say what they
//! are, in [`across_currencies`](crate::transactions::across_currencies) (`total_completed_across_currencies`,
//! `stats_across_currencies`, `monthly_totals_across_currencies`,
//! `top_spenders_across_currencies`). A movement's currency is its accounts': the account the
//! money leaves (for a deposit, the one it enters); a transfer moves between accounts of one
//! currency ([`Error::CurrencyMismatch`](crate::Error::CurrencyMismatch)).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgExecutor;

use super::EntryId;
use crate::ground::ids::UserId;
use crate::ground::numeric::Numeric;
use crate::tables::accounts::AccountId;
use crate::{Error, Result};

/// `sqlx::query_as!` over the applied movements, each with its currency: `select currency, `
/// then `$select`, one written `from` and `where`, then `$rest` (`group by ...`). A movement's
/// currency is written here once: the account the money leaves, for a deposit the one it enters.
/// Still one checked query macro (sqlx joins literals with `+`).
macro_rules! query_applied_by_currency {
    ($row:ty, $select:tt, $rest:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $row,
            "select coalesce(fa.currency, ta.currency) as \"currency!\", " + $select
                + " from transactions t left join accounts fa on fa.id = t.from_account_id \
                   left join accounts ta on ta.id = t.to_account_id \
                   where t.status in ('completed', 'success') " + $rest
            $(, $arg)*
        )
    };
}

/// The applied movements of one currency: their sum and count.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CurrencyTotal {
    /// The currency (`USD`).
    pub currency: String,
    /// Sum of its applied movements' amounts.
    pub total: Decimal,
    /// How many.
    pub count: i64,
}

/// The sum and count of the applied movements (`completed` or Django's `success`), per currency,
/// in currency order; empty when there is none.
///
/// Django: `Transaction.objects.filter(status='success').values('from_account__currency')
/// .annotate(total=Sum('amount'))` — the cheat sheet's `aggregate(total=Sum('amount'))` adds the
/// currencies together: that figure is
/// [`total_completed_across_currencies`](crate::transactions::total_completed_across_currencies).
///
/// SQL: `select coalesce(f.currency, t.currency), sum(amount), count(*) from transactions left
/// join accounts f (the source) left join accounts t (the destination) where status in
/// ('completed', 'success') group by 1 order by 1`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn total_completed(db: impl PgExecutor<'_>) -> Result<Vec<CurrencyTotal>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.total_completed",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced(op, async move {
        Ok(query_applied_by_currency!(
            CurrencyTotal,
            r#"sum(t.amount) as "total!: Numeric", count(*) as "count!""#,
            "group by 1 order by 1"
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Sum, count, average, maximum and minimum of one currency's applied amounts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CurrencyStats {
    /// The currency (`USD`).
    pub currency: String,
    /// Sum of amounts.
    pub total: Decimal,
    /// How many movements.
    pub count: i64,
    /// Mean amount, rounded by the server to 2 places.
    pub average: Decimal,
    /// Largest amount.
    pub maximum: Decimal,
    /// Smallest amount.
    pub minimum: Decimal,
}

/// Statistics over the applied movements, per currency, in currency order, in one query.
///
/// Django: `Transaction.objects.filter(status='success').values('from_account__currency')
/// .annotate(total=Sum('amount'), count=Count('id'), average=Avg('amount'),
/// maximum=Max('amount'), minimum=Min('amount'))` — the cheat sheet's `aggregate(...)` over every
/// row of every status and currency is [`stats_across_currencies`](crate::transactions::stats_across_currencies).
///
/// SQL: as [`total_completed`], with `round(avg(amount), 2), max(amount), min(amount)`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn stats(db: impl PgExecutor<'_>) -> Result<Vec<CurrencyStats>> {
    let op =
        crate::ground::telemetry::op_span!("ledger.transactions.stats", "SELECT", "transactions");
    crate::ground::telemetry::traced(op, async move {
        Ok(query_applied_by_currency!(
            CurrencyStats,
            r#"sum(t.amount) as "total!: Numeric", count(*) as "count!",
               round(avg(t.amount), 2) as "average!: Numeric",
               max(t.amount) as "maximum!: Numeric", min(t.amount) as "minimum!: Numeric""#,
            "group by 1 order by 1"
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// One month of one currency's applied movements.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MonthlyRevenue {
    /// The first day of the month, in the report's time zone.
    pub month: NaiveDate,
    /// The currency (`USD`).
    pub currency: String,
    /// Sum of the month's applied amounts in that currency.
    pub revenue: Decimal,
    /// How many applied movements.
    pub count: i64,
}

/// Revenue and count per calendar month in `time_zone` (an IANA name) and currency, oldest
/// month first, applied movements only. Months without movements do not appear (as in Django's
/// `GROUP BY`).
///
/// Django: `Transaction.objects.filter(status='success').annotate(month=TruncMonth('created_at'))
/// .values('month', 'from_account__currency').annotate(revenue=Sum('amount'),
/// count=Count('id')).order_by('month')` — the cheat sheet's line, which adds every status and
/// currency, is [`monthly_totals_across_currencies`](crate::transactions::monthly_totals_across_currencies).
///
/// SQL: `date_trunc('month', created_at at time zone $1)::date` and the movement's currency,
/// `group by 1, 2 order by 1, 2`.
///
/// # Errors
/// [`Error::InvalidInput`] for an unknown time zone.
pub async fn monthly_revenue(
    db: impl PgExecutor<'_>,
    time_zone: &str,
) -> Result<Vec<MonthlyRevenue>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.monthly_revenue",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced(op, async move {
        Error::check_text("time_zone", time_zone)?;
        query_applied_by_currency!(
            MonthlyRevenue,
            r#"date_trunc('month', t.created_at at time zone $1)::date as "month!",
               sum(t.amount) as "revenue!: Numeric", count(*) as "count!""#,
            "group by 1, 2 order by 2, 1",
            time_zone
        )
        .fetch_all(db)
        .await
        .map_err(|e| Error::from_time_zone(e, time_zone))
    })
    .await
}

/// An outgoing movement with its owner's running total.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct RunningTotal {
    /// The entry.
    pub id: EntryId,
    /// The owner of the debited account.
    pub user_id: UserId,
    /// The debited account's currency: each user's running total is kept per currency.
    pub currency: String,
    /// The entry's amount.
    pub amount: Decimal,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// Sum of this user's outgoing amounts up to and including this entry.
    pub running_total: Decimal,
}

/// Each applied outgoing movement (withdrawals and transfers, `completed` or `success`) with the
/// running total of its user's outgoing money **in that currency**, oldest first. Deposits have no `from` account and so no
/// user here (Django would put them in one `NULL` partition; they are left out). Django's window
/// partitions by user alone, adding a user's USD and EUR into one running figure; here the
/// partition is the user and the currency (on a one-currency database the two agree).
///
/// Django: `Transaction.objects.annotate(running_total=Window(expression=Sum('amount'),
/// partition_by=[F('from_account__user')], order_by=F('created_at').asc()))`
///
/// SQL: `sum(amount) over (partition by user_id, currency order by created_at, id rows between
/// unbounded preceding and current row)`: the `id` tie-breaker and the ROWS frame make it deterministic
/// when timestamps tie (Django's default RANGE frame would give tied rows the same total).
///
/// **Reads every outgoing movement into memory**; the same rows as a stream, one chunk in
/// memory: [`stream_running_totals`].
///
/// # Errors
/// [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every outgoing movement into memory: use `transactions::stream_running_totals`"
)]
pub async fn running_totals(db: impl PgExecutor<'_>) -> Result<Vec<RunningTotal>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.running_totals",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_as!(
            RunningTotal,
            r#"
        select t.id,
               a.user_id,
               a.currency,
               t.amount,
               t.created_at,
               sum(t.amount) over (
                   partition by a.user_id, a.currency
                   order by t.created_at, t.id
                   rows between unbounded preceding and current row
               ) as "running_total!"
        from transactions t
        join accounts a on a.id = t.from_account_id
        where t.status in ('completed', 'success')
        order by a.user_id, a.currency, t.created_at, t.id
        "#
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// [`running_totals`]' rows as a stream: each applied outgoing movement with the running total
/// of its user's outgoing money in that currency, by user, currency, then time.
///
/// Django: `Transaction.objects.annotate(running_total=Window(expression=Sum('amount'),
/// partition_by=[F('from_account__user')], order_by=F('created_at').asc()))
/// .iterator(chunk_size=1000)`
///
/// SQL: in a transaction of its own (a savepoint inside a caller's), `declare
/// ledger_running_totals no scroll cursor for select ..., sum(t.amount) over (partition by
/// a.user_id, a.currency order by t.created_at, t.id rows between unbounded preceding and
/// current row) ... order by a.user_id, a.currency, t.created_at, t.id`, then `fetch 1000` and
/// `fetch 5000` until the cursor is exhausted, then `rollback` (see [`crate::cursor`]). The
/// server sorts for the window as for one `select`; the client holds one chunk, and dropping
/// the stream early costs at most the rest of one.
///
/// # Errors
/// Items are [`Error::Database`] (or a transient error) from the server; after one, the
/// stream ends.
pub fn stream_running_totals<'a, A>(
    db: A,
) -> impl futures::Stream<Item = Result<RunningTotal>> + Send + Unpin + 'a
where
    A: sqlx::Acquire<'a, Database = sqlx::Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_running_totals no scroll cursor for
        select t.id,
               a.user_id,
               a.currency,
               t.amount,
               t.created_at,
               sum(t.amount) over (
                   partition by a.user_id, a.currency
                   order by t.created_at, t.id
                   rows between unbounded preceding and current row
               ) as running_total
        from transactions t
        join accounts a on a.id = t.from_account_id
        where t.status in ('completed', 'success')
        order by a.user_id, a.currency, t.created_at, t.id
        "#
    );
    let cursor = crate::ground::cursor::Cursor {
        declare,
        fetch: [
            "fetch 1000 from ledger_running_totals",
            "fetch 5000 from ledger_running_totals",
        ],
    };
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.stream_running_totals",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced_stream(op, crate::ground::cursor::stream(db, cursor))
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
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.reconcile",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced(op, async move {
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
