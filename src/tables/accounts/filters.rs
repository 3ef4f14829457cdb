//! The accounts a question picks: by balance, by status, both, and the run-time [`filter`]
//! ([`AccountFilter`]). Where the cheat sheet filters `Account` on fields it does not have, the
//! filters are here, on the model that has them. Re-exported by [`accounts`](super).

use rust_decimal::Decimal;
use sqlx::PgExecutor;

use super::{Account, AccountId};
use crate::ground::ids::UserId;
use crate::tables::page;
use crate::{Error, Result};

pub(super) fn check_range(lo: Decimal, hi: Decimal) -> Result<()> {
    if lo > hi {
        return Err(Error::invalid(
            "balance range",
            format!("low bound {lo} is above high bound {hi}"),
        ));
    }
    Ok(())
}

/// Accounts holding at least `min`, richest first.
///
/// Django: `User.objects.filter(balance__gte=100)` (on `Account`: User has no balance)
///
/// SQL: `where balance >= $1 order by balance desc, id` (index `accounts_balance_idx`).
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): a range scan of `accounts_balance_idx`.
///
/// **Reads every matching account into memory**; the same rows as a stream, one chunk in
/// memory: [`stream_balance_at_least`](super::stream_balance_at_least); a page at a time: [`filter`].
///
/// # Errors
/// [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every matching account into memory: use `accounts::stream_balance_at_least`, or `accounts::filter` a page at a time"
)]
pub async fn list_balance_at_least(db: impl PgExecutor<'_>, min: Decimal) -> Result<Vec<Account>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.accounts.list_balance_at_least",
        "SELECT",
        "accounts"
    );
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_as!(
            Account,
            r#"
        select id, user_id, balance, currency, status
        from accounts
        where balance >= $1
        order by balance desc, id
        "#,
            min
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Accounts whose balance lies between `lo` and `hi`, both included.
///
/// Django: `User.objects.filter(balance__range=(100, 500))` (on `Account`)
///
/// SQL: `where balance between $1 and $2 order by balance, id`.
///
/// **Reads every matching account into memory**; the same rows as a stream, one chunk in
/// memory: [`stream_balance_between`](super::stream_balance_between); a page at a time: [`filter`].
///
/// # Errors
/// [`Error::InvalidInput`] when `lo > hi` (nothing is sent).
#[deprecated(
    since = "0.1.1",
    note = "reads every matching account into memory: use `accounts::stream_balance_between`, or `accounts::filter` a page at a time"
)]
pub async fn list_balance_between(
    db: impl PgExecutor<'_>,
    lo: Decimal,
    hi: Decimal,
) -> Result<Vec<Account>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.accounts.list_balance_between",
        "SELECT",
        "accounts"
    );
    crate::ground::telemetry::traced(op, async move {
        check_range(lo, hi)?;
        Ok(sqlx::query_as!(
            Account,
            r#"
        select id, user_id, balance, currency, status
        from accounts
        where balance between $1 and $2
        order by balance, id
        "#,
            lo,
            hi
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Accounts whose status is one of `statuses`.
///
/// Django: `User.objects.filter(status__in=['active', 'vip'])` (on `Account`)
///
/// SQL: `where status = any($1) order by id` — one array parameter, however many statuses.
///
/// **Reads every matching account into memory**; the same rows as a stream, one chunk in
/// memory: [`stream_status_in`](super::stream_status_in); a page at a time: [`filter`].
///
/// # Errors
/// [`Error::InvalidInput`] for a status holding U+0000; otherwise [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every matching account into memory: use `accounts::stream_status_in`, or `accounts::filter` a page at a time"
)]
pub async fn list_status_in(db: impl PgExecutor<'_>, statuses: &[&str]) -> Result<Vec<Account>> {
    let op =
        crate::ground::telemetry::op_span!("ledger.accounts.list_status_in", "SELECT", "accounts");
    crate::ground::telemetry::traced(op, async move {
        for status in statuses {
            Error::check_text("status", status)?;
        }
        Ok(sqlx::query_as!(
            Account,
            r#"
        select id, user_id, balance, currency, status
        from accounts
        where status = any($1)
        order by id
        "#,
            statuses as &[&str]
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Accounts holding at least `min` *and* in `status`.
///
/// Django: `User.objects.filter(balance__gte=100, status='active')` (on `Account`)
///
/// SQL: `where balance >= $1 and status = $2 order by balance desc, id`.
///
/// **Reads every matching account into memory**; the same rows as a stream, one chunk in
/// memory: [`stream_balance_at_least_and_status`](super::stream_balance_at_least_and_status); a page at a time: [`filter`].
///
/// # Errors
/// [`Error::InvalidInput`] for a status holding U+0000; otherwise [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every matching account into memory: use `accounts::stream_balance_at_least_and_status`, or `accounts::filter` a page at a time"
)]
pub async fn list_balance_at_least_and_status(
    db: impl PgExecutor<'_>,
    min: Decimal,
    status: &str,
) -> Result<Vec<Account>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.accounts.list_balance_at_least_and_status",
        "SELECT",
        "accounts"
    );
    crate::ground::telemetry::traced(op, async move {
        Error::check_text("status", status)?;
        Ok(sqlx::query_as!(
            Account,
            r#"
        select id, user_id, balance, currency, status
        from accounts
        where balance >= $1 and status = $2
        order by balance desc, id
        "#,
            min,
            status
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Accounts holding at least `min` *or* in `status`.
///
/// Django: `User.objects.filter(Q(balance__gte=100) | Q(status='vip'))` (on `Account`)
///
/// SQL: `where balance >= $1 or status = $2 order by balance desc, id`.
///
/// **Reads every matching account into memory**; the same rows as a stream, one chunk in
/// memory: [`stream_balance_at_least_or_status`](super::stream_balance_at_least_or_status); a page at a time: [`filter`].
///
/// # Errors
/// [`Error::InvalidInput`] for a status holding U+0000; otherwise [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every matching account into memory: use `accounts::stream_balance_at_least_or_status`, or `accounts::filter` a page at a time"
)]
pub async fn list_balance_at_least_or_status(
    db: impl PgExecutor<'_>,
    min: Decimal,
    status: &str,
) -> Result<Vec<Account>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.accounts.list_balance_at_least_or_status",
        "SELECT",
        "accounts"
    );
    crate::ground::telemetry::traced(op, async move {
        Error::check_text("status", status)?;
        Ok(sqlx::query_as!(
            Account,
            r#"
        select id, user_id, balance, currency, status
        from accounts
        where balance >= $1 or status = $2
        order by balance desc, id
        "#,
            min,
            status
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Accounts *not* in `status`.
///
/// Django: `User.objects.filter(~Q(status='banned'))` and `exclude(status='banned')` (on
/// `Account`)
///
/// SQL: `where status <> $1 order by id` (`status` is `not null`, so no row escapes through NULL).
///
/// **Reads every matching account into memory**; the same rows as a stream, one chunk in
/// memory: [`stream_status_not`](super::stream_status_not); a page at a time: [`filter`].
///
/// # Errors
/// [`Error::InvalidInput`] for a status holding U+0000; otherwise [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every matching account into memory: use `accounts::stream_status_not`, or `accounts::filter` a page at a time"
)]
pub async fn list_status_not(db: impl PgExecutor<'_>, status: &str) -> Result<Vec<Account>> {
    let op =
        crate::ground::telemetry::op_span!("ledger.accounts.list_status_not", "SELECT", "accounts");
    crate::ground::telemetry::traced(op, async move {
        Error::check_text("status", status)?;
        Ok(sqlx::query_as!(
            Account,
            r#"
        select id, user_id, balance, currency, status
        from accounts
        where status <> $1
        order by id
        "#,
            status
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Criteria for [`filter`], each optional; set ones are combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    /// The owner.
    pub user_id: Option<UserId>,
    /// `balance__gte`
    pub min_balance: Option<Decimal>,
    /// `balance__lte`
    pub max_balance: Option<Decimal>,
    /// `status__in` (an empty list matches nothing, as Django's does).
    pub status_in: Option<Vec<String>>,
    /// `exclude(status=...)`
    pub status_not: Option<String>,
    /// `currency=...`
    pub currency: Option<String>,
    /// At most this many rows (default and maximum [`page::MAX_PER_PAGE`]).
    pub limit: Option<i64>,
    /// Only the accounts after this one in id order: set it to the last id of a page to read the
    /// next.
    pub after: Option<AccountId>,
}

/// Accounts matching every criterion set in `filter`: one statically checked query, each
/// criterion written `($n is null or ...)`.
///
/// Django: `Account.objects.filter(**criteria).exclude(...)`
///
/// SQL: one `select` with every criterion guarded by its parameter being null, `order by id`;
/// [`AccountFilter::after`] resumes after an id (`id > $8`, the primary key).
///
/// # Errors
/// [`Error::InvalidInput`] when `min_balance > max_balance` or the limit is out of range.
pub async fn filter(db: impl PgExecutor<'_>, filter: &AccountFilter) -> Result<Vec<Account>> {
    let op = crate::ground::telemetry::op_span!("ledger.accounts.filter", "SELECT", "accounts");
    crate::ground::telemetry::traced(op, async move {
        if let (Some(lo), Some(hi)) = (filter.min_balance, filter.max_balance) {
            check_range(lo, hi)?;
        }
        let limit = page::check_limit(filter.limit.unwrap_or(page::MAX_PER_PAGE))?;
        Ok(sqlx::query_as!(
            Account,
            r#"
        select id, user_id, balance, currency, status
        from accounts
        where ($1::uuid is null or user_id = $1)
          and ($2::numeric is null or balance >= $2)
          and ($3::numeric is null or balance <= $3)
          and ($4::text[] is null or status = any($4))
          and ($5::text is null or status <> $5)
          and ($6::text is null or currency = $6)
          and ($8::uuid is null or id > $8)
        order by id
        limit $7
        "#,
            filter.user_id.map(|id| id.as_uuid()),
            filter.min_balance,
            filter.max_balance,
            filter.status_in.as_deref(),
            filter.status_not,
            filter.currency,
            limit,
            filter.after.map(|id| id.as_uuid())
        )
        .fetch_all(db)
        .await?)
    })
    .await
}
