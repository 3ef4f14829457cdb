//! The writes of a posting, each written once: the batch writers' one `insert` of many rows
//! ([`insert_entries`]), and the single movement's one call of `ledger_post`
//! ([`post_function`]). The balances of a batch are written by its
//! [`Book`](super::book::Book).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::posting::Posting;
use super::requests::AMOUNT_LIMIT;
use super::{COMPLETED, LedgerEntry};
use crate::Result;
use crate::ground::document::Document;
use crate::ground::numeric::Numeric;
use crate::tables::accounts::{AccountId, AccountStatus};

/// Inserts the rows of `entries` (each posting with its id, `completed`, its key if it has one,
/// `created_at` from `at` or `now()`) in one statement, and returns them as written.
///
/// SQL: `insert into transactions ... select ... from unnest($1::uuid[], ...) returning ...`.
pub(super) async fn insert_entries(
    conn: &mut PgConnection,
    entries: &[(Uuid, &Posting<'_>)],
    at: Option<&[DateTime<Utc>]>,
) -> Result<Vec<LedgerEntry>> {
    let ids: Vec<Uuid> = entries.iter().map(|(id, _)| *id).collect();
    let from: Vec<Option<Uuid>> = entries
        .iter()
        .map(|(_, p)| p.from.map(|id| id.as_uuid()))
        .collect();
    let to: Vec<Option<Uuid>> = entries
        .iter()
        .map(|(_, p)| p.to.map(|id| id.as_uuid()))
        .collect();
    let amounts: Vec<Decimal> = entries.iter().map(|(_, p)| p.amount).collect();
    let kinds: Vec<&str> = entries.iter().map(|(_, p)| p.kind.as_str()).collect();
    let metadata: Vec<serde_json::Value> =
        entries.iter().map(|(_, p)| p.metadata.clone()).collect();
    let keys: Vec<Option<&str>> = entries.iter().map(|(_, p)| p.key).collect();
    let at: Vec<Option<DateTime<Utc>>> = match at {
        Some(times) => times.iter().copied().map(Some).collect(),
        None => vec![None; entries.len()],
    };
    Ok(query_entries!(
        returning r#"
        insert into transactions
            (id, from_account_id, to_account_id, amount, type, status, metadata, idempotency_key,
             created_at)
        select id, from_id, to_id, amount, kind, $7, metadata, key, coalesce(at, now())
        from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::numeric[], $5::text[], $6::jsonb[],
                    $8::text[], $9::timestamptz[])
            as input(id, from_id, to_id, amount, kind, metadata, key, at)
        "#,
        &ids,
        &from as &[Option<Uuid>],
        &to as &[Option<Uuid>],
        &amounts,
        &kinds as &[&str],
        &metadata,
        COMPLETED,
        &keys as &[Option<&str>],
        &at as &[Option<DateTime<Utc>>]
    )
    .fetch_all(conn)
    .await?)
}

/// A locked account as `ledger_post` saw it, and what the call wrote, if anything.
pub(super) struct Applied {
    pub(super) id: AccountId,
    pub(super) balance: Numeric,
    pub(super) currency: String,
    pub(super) status: AccountStatus,
    pub(super) created_at: Option<DateTime<Utc>>,
    pub(super) metadata: Option<Document>,
}

/// One call of `ledger_post` (migration 0015): locks the posting's accounts in ascending id
/// order, checks them as [`check`](super::book::check) does, and only when every check passes
/// moves both balances and inserts the row with this `id`, `completed`. Returns the locked rows,
/// with the new row's `created_at` and `metadata` when it wrote one.
///
/// SQL: `select ... from ledger_post($1, ..., $9)`; inside, `select ... for update` on
/// `accounts_pkey`, then two `update`s and one `insert` by primary key.
pub(super) async fn post_function(
    conn: &mut PgConnection,
    posting: &Posting<'_>,
    id: Uuid,
) -> Result<Vec<Applied>> {
    Ok(sqlx::query_as!(
        Applied,
        r#"
        select account_id as "id!: AccountId", account_balance as "balance!: Numeric",
               account_currency as "currency!", account_status as "status!: AccountStatus",
               entry_created_at as "created_at?", entry_metadata as "metadata?: Document"
        from ledger_post($1, $2, $3, $4, $5, $6, $7, $8, $9)
        "#,
        id,
        posting.from.map(|id| id.as_uuid()),
        posting.to.map(|id| id.as_uuid()),
        posting.amount,
        posting.kind.as_str(),
        COMPLETED,
        posting.metadata,
        posting.key,
        AMOUNT_LIMIT
    )
    .fetch_all(conn)
    .await?)
}
