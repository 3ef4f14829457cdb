//! Reads over the ledger: one entry, an account's history, aggregates, `select_related` joins,
//! window functions, the seed's raw SQL report, and reconciliation.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgExecutor;

use super::{EntryId, LedgerEntry};
use crate::accounts::{Account, AccountId};
use crate::document::Document;
use crate::ids::UserId;
use crate::kinds::EntryStatus;
use crate::numeric::Numeric;
use crate::page::{self, Cursor};
use crate::{Error, Result};

/// The entry with this id.
///
/// Django: `Transaction.objects.get(id=...)`
///
/// SQL: `select ... from transactions where id = $1`.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): an index scan of `transactions_pkey`.
///
/// # Errors
/// [`Error::NotFound`] when there is no such entry.
pub async fn get(db: impl PgExecutor<'_>, id: EntryId) -> Result<LedgerEntry> {
    let op = crate::telemetry::op_span!("ledger.transactions.get", "SELECT", "transactions");
    crate::telemetry::traced(op, async move {
        query_entries!(
            select r#"
        from transactions
        where id = $1
        "#,
            id.as_uuid()
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound {
            what: "transaction",
        })
    })
    .await
}

/// An account's movements in and out, newest first.
///
/// Django: `Transaction.objects.filter(Q(from_account=acc) | Q(to_account=acc)).order_by('-created_at')[:limit]`
///
/// SQL: two index range scans (`(from_account_id, created_at)` and `(to_account_id,
/// created_at)`) combined with `union all`, `order by created_at desc, id desc limit $2`; with
/// `after`, only the rows past it: `(created_at, id) < ($3, $4)`.
///
/// Read to the end by passing [`Cursor::after`] the last row of each page.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`):
/// `transactions_from_account_id_created_at_idx` and `transactions_to_account_id_created_at_idx`,
/// then a sort of that account's entries.
///
/// # Errors
/// [`Error::InvalidInput`] for a limit outside `1..=MAX_PER_PAGE`, or a `Previous` cursor.
pub async fn list_for_account(
    db: impl PgExecutor<'_>,
    account: AccountId,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<LedgerEntry>> {
    let op = crate::telemetry::op_span!(
        "ledger.transactions.list_for_account",
        "SELECT",
        "transactions"
    );
    crate::telemetry::traced(op, async move {
        let limit = page::check_limit(limit)?;
        let (after_at, after_id) = page::resume_after(after)?;
        Ok(sqlx::query_as!(
            LedgerEntry,
            r#"
        select id as "id!: EntryId",
               from_account_id as "from_account_id: AccountId",
               to_account_id as "to_account_id: AccountId",
               amount as "amount!", type as "kind!", status as "status!",
               metadata as "metadata!: Document", created_at as "created_at!", idempotency_key
        from (
            select * from transactions where from_account_id = $1
            union all
            select * from transactions where to_account_id = $1
        ) as history
        where (created_at, id) < (coalesce($3::timestamptz, 'infinity'),
                                  coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
        order by created_at desc, id desc
        limit $2
        "#,
            account.as_uuid(),
            limit,
            after_at,
            after_id
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

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

/// An entry with both its accounts, read in one query.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryWithAccounts {
    /// The entry.
    pub entry: LedgerEntry,
    /// The debited account; `None` for a deposit.
    pub from_account: Option<Account>,
    /// The credited account; `None` for a withdrawal.
    pub to_account: Option<Account>,
}

struct JoinedRow {
    id: EntryId,
    from_account_id: Option<AccountId>,
    to_account_id: Option<AccountId>,
    amount: Decimal,
    kind: String,
    status: String,
    metadata: Document,
    created_at: DateTime<Utc>,
    idempotency_key: Option<String>,
    from_user_id: Option<UserId>,
    from_balance: Option<Numeric>,
    from_currency: Option<String>,
    from_status: Option<String>,
    to_user_id: Option<UserId>,
    to_balance: Option<Numeric>,
    to_currency: Option<String>,
    to_status: Option<String>,
}

fn joined_account(
    id: Option<AccountId>,
    user_id: Option<UserId>,
    balance: Option<Decimal>,
    currency: Option<String>,
    status: Option<String>,
) -> Option<Account> {
    Some(Account {
        id: id?,
        user_id: user_id?,
        balance: balance?,
        currency: currency?,
        status: status?.into(),
    })
}

/// The newest entries with their `from` and `to` accounts: one query, no N+1.
///
/// Django: `Transaction.objects.select_related('from_account', 'to_account')`
///
/// SQL: `transactions left join accounts f ... left join accounts t ... order by created_at desc,
/// id desc limit $1`. Left joins: a deposit has no `from` account and a withdrawal no `to`, and
/// an inner join would drop them. With `after`, only the rows past it (index
/// `transactions_created_at_id_idx`).
///
/// Read to the end by passing [`Cursor::after`] the last row of each page.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): `transactions_created_at_id_idx` backwards
/// and `accounts_pkey` for each side; no sort.
///
/// # Errors
/// [`Error::InvalidInput`] for a limit outside `1..=MAX_PER_PAGE`, or a `Previous` cursor.
pub async fn list_with_accounts(
    db: impl PgExecutor<'_>,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<EntryWithAccounts>> {
    let op = crate::telemetry::op_span!(
        "ledger.transactions.list_with_accounts",
        "SELECT",
        "transactions"
    );
    crate::telemetry::traced(op, async move {
        let limit = page::check_limit(limit)?;
        let (after_at, after_id) = page::resume_after(after)?;
        let rows = sqlx::query_as!(
            JoinedRow,
            r#"
        select t.id,
               t.from_account_id,
               t.to_account_id,
               t.amount, t.type as kind, t.status, t.metadata, t.created_at, t.idempotency_key,
               f.user_id as "from_user_id?: UserId", f.balance as "from_balance?",
               f.currency as "from_currency?", f.status as "from_status?",
               a.user_id as "to_user_id?: UserId", a.balance as "to_balance?",
               a.currency as "to_currency?", a.status as "to_status?"
        from transactions t
        left join accounts f on f.id = t.from_account_id
        left join accounts a on a.id = t.to_account_id
        where (t.created_at, t.id) < (coalesce($2::timestamptz, 'infinity'),
                                      coalesce($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
        order by t.created_at desc, t.id desc
        limit $1
        "#,
            limit,
            after_at,
            after_id
        )
        .fetch_all(db)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| EntryWithAccounts {
                from_account: joined_account(
                    r.from_account_id,
                    r.from_user_id,
                    r.from_balance.map(Decimal::from),
                    r.from_currency,
                    r.from_status,
                ),
                to_account: joined_account(
                    r.to_account_id,
                    r.to_user_id,
                    r.to_balance.map(Decimal::from),
                    r.to_currency,
                    r.to_status,
                ),
                entry: LedgerEntry {
                    id: r.id,
                    from_account_id: r.from_account_id,
                    to_account_id: r.to_account_id,
                    amount: r.amount,
                    kind: r.kind.into(),
                    status: r.status.into(),
                    metadata: r.metadata,
                    created_at: r.created_at,
                    idempotency_key: r.idempotency_key,
                },
            })
            .collect())
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

/// Entries whose metadata contains `fragment` (every key and value of it, at any depth), newest
/// first: the seed's JSONB key-value and nested queries, on `transactions.metadata`.
///
/// Django: `Transaction.objects.filter(metadata__channel='web')`,
/// `Transaction.objects.filter(metadata__device__os='ios')`
///
/// SQL: `where metadata @> $1 order by created_at desc, id desc limit $2` (GIN index
/// `transactions_metadata_gin_idx`).
///
/// Read to the end by passing [`Cursor::after`] the last row of each page.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): `transactions_metadata_gin_idx`, or, as
/// PostgreSQL keeps no statistics for `@>` and assumes 0.1 % of rows match, a walk of
/// `transactions_created_at_id_idx` that checks each entry until the page is full (which reads far
/// more rows when matches are rarer than that).
///
/// # Errors
/// [`Error::InvalidInput`] for a fragment that is not a JSON object or that no metadata could
/// hold (see [`crate::document::check`]), a bad limit, or a `Previous` cursor.
pub async fn list_metadata_containing(
    db: impl PgExecutor<'_>,
    fragment: &serde_json::Value,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<LedgerEntry>> {
    let op = crate::telemetry::op_span!(
        "ledger.transactions.list_metadata_containing",
        "SELECT",
        "transactions"
    );
    crate::telemetry::traced(op, async move {
        if !fragment.is_object() {
            return Err(Error::invalid("metadata", "must be a JSON object"));
        }
        crate::document::check("metadata", fragment, super::MAX_METADATA_BYTES)?;
        let limit = page::check_limit(limit)?;
        let (after_at, after_id) = page::resume_after(after)?;
        Ok(query_entries!(
            select r#"
        from transactions
        where metadata @> $1
          and (created_at, id) < (coalesce($3::timestamptz, 'infinity'),
                                  coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
        order by created_at desc, id desc
        limit $2
        "#,
            fragment,
            limit,
            after_at,
            after_id
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Entries whose metadata has this top-level key, newest first.
///
/// Django: `Transaction.objects.filter(metadata__has_key='refund_of')`
///
/// SQL: `where metadata ? $1 order by created_at desc, id desc limit $2` (GIN index).
///
/// Read to the end by passing [`Cursor::after`] the last row of each page.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad limit or a `Previous` cursor.
pub async fn list_with_metadata_key(
    db: impl PgExecutor<'_>,
    key: &str,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<LedgerEntry>> {
    let op = crate::telemetry::op_span!(
        "ledger.transactions.list_with_metadata_key",
        "SELECT",
        "transactions"
    );
    crate::telemetry::traced(op, async move {
        Error::check_text("key", key)?;
        let limit = page::check_limit(limit)?;
        let (after_at, after_id) = page::resume_after(after)?;
        Ok(query_entries!(
            select r#"
        from transactions
        where metadata ? $1
          and (created_at, id) < (coalesce($3::timestamptz, 'infinity'),
                                  coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
        order by created_at desc, id desc
        limit $2
        "#,
            key,
            limit,
            after_at,
            after_id
        )
        .fetch_all(db)
        .await?)
    })
    .await
}
