//! The positional listings of the previous release (`list_for_account(db, account, after,
//! limit)`), kept for one release as deprecated bridges to [`EntryQuery`], which they call.
//! Re-exported by [`transactions`](super); removed in the next release.

use sqlx::PgExecutor;

use super::{EntryQuery, EntryWithAccounts, LedgerEntry};
use crate::Result;
use crate::accounts::AccountId;
use crate::page::Cursor;

/// An account's movements in and out, newest first.
///
/// Django: `Transaction.objects.filter(Q(from_account=acc) | Q(to_account=acc)).order_by('-created_at')[:limit]`
///
/// SQL: see [`EntryQuery::list_for_account`].
///
/// # Errors
/// As [`EntryQuery::list_for_account`].
#[deprecated(
    since = "0.2.0",
    note = "use `EntryQuery::new().after(after.copied()).limit(limit).list_for_account(db, account)`"
)]
pub async fn list_for_account(
    db: impl PgExecutor<'_>,
    account: AccountId,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<LedgerEntry>> {
    EntryQuery::new()
        .after(after.copied())
        .limit(limit)
        .list_for_account(db, account)
        .await
}

/// The newest entries with their `from` and `to` accounts: one query, no N+1.
///
/// Django: `Transaction.objects.select_related('from_account', 'to_account')`
///
/// SQL: see [`EntryQuery::list_with_accounts`].
///
/// # Errors
/// As [`EntryQuery::list_with_accounts`].
#[deprecated(
    since = "0.2.0",
    note = "use `EntryQuery::new().after(after.copied()).limit(limit).list_with_accounts(db)`"
)]
pub async fn list_with_accounts(
    db: impl PgExecutor<'_>,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<EntryWithAccounts>> {
    EntryQuery::new()
        .after(after.copied())
        .limit(limit)
        .list_with_accounts(db)
        .await
}

/// Entries whose metadata contains `fragment` (every key and value of it, at any depth), newest
/// first: the seed's JSONB key-value and nested queries, on `transactions.metadata`.
///
/// Django: `Transaction.objects.filter(metadata__channel='web')`,
///
/// SQL: see [`EntryQuery::list_metadata_containing`].
///
/// # Errors
/// As [`EntryQuery::list_metadata_containing`].
#[deprecated(
    since = "0.2.0",
    note = "use `EntryQuery::new().after(after.copied()).limit(limit).list_metadata_containing(db, fragment)`"
)]
pub async fn list_metadata_containing(
    db: impl PgExecutor<'_>,
    fragment: &serde_json::Value,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<LedgerEntry>> {
    EntryQuery::new()
        .after(after.copied())
        .limit(limit)
        .list_metadata_containing(db, fragment)
        .await
}

/// Entries whose metadata has this top-level key, newest first.
///
/// Django: `Transaction.objects.filter(metadata__has_key='refund_of')`
///
/// SQL: see [`EntryQuery::list_with_metadata_key`].
///
/// # Errors
/// As [`EntryQuery::list_with_metadata_key`].
#[deprecated(
    since = "0.2.0",
    note = "use `EntryQuery::new().after(after.copied()).limit(limit).list_with_metadata_key(db, key)`"
)]
pub async fn list_with_metadata_key(
    db: impl PgExecutor<'_>,
    key: &str,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<LedgerEntry>> {
    EntryQuery::new()
        .after(after.copied())
        .limit(limit)
        .list_with_metadata_key(db, key)
        .await
}
