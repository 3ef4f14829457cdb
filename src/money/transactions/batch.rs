//! Batch posting: many movements in one database transaction, set-based.

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use super::EntryId;
use super::book::Book;
use super::idempotency::{self, Claim, validate_key};
use super::posting::Posting;
use super::requests::BatchItem;
use super::retry::retrying;
use super::writes::insert_entries;
use crate::tables::bulk;
use crate::{Error, Result};

/// Rows per `insert` statement of a batch.
pub const BATCH_INSERT_CHUNK: usize = 10_000;

/// Posts many deposits, withdrawals and transfers as one unit: every rule of the single
/// movements holds for each item, in the batch's order (no balance goes below zero at any point,
/// even when a later deposit would cover it), and either all are written or none.
///
/// Django: a loop of `transfer_funds` calls inside one `transaction.atomic()`, minus the N+1.
///
/// SQL: `begin`; lock every touched account in one statement in ascending id order; check the
/// whole batch in Rust against the locked balances; insert all `transactions` rows with one
/// `insert ... select ... from unnest(...)` per [`BATCH_INSERT_CHUNK`] rows; set every touched
/// balance with one `update ... from unnest(...)`; `commit`. Retried whole on serialization
/// failure or deadlock, as the single movements are.
///
/// Items carry no idempotency keys of their own (an item with one is refused). Retrying: a batch
/// that failed with [`Error::outcome_unknown`] may have been posted, and repeating this call may
/// post it twice; to make the whole batch safe to repeat, give it one key with
/// [`post_batch_with_key`].
///
/// # Errors
/// [`Error::InvalidItem`] naming the first item refused, with the reason the single movement
/// would give as its source (`InvalidInput`, `NotFound`, `AccountNotActive`, `CurrencyMismatch`,
/// `InsufficientFunds`). Nothing is written on any error.
pub async fn post_batch(conn: &mut PgConnection, items: &[BatchItem]) -> Result<Vec<EntryId>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.post_batch",
        "post_batch",
        "transactions",
        ledger.rows = items.len()
    );
    crate::ground::telemetry::traced(
        op,
        async move { post_batch_at(conn, items, None, None).await },
    )
    .await
}

/// [`post_batch`] under one idempotency key for the whole batch: the batch is applied at most
/// once. Repeating the call with the same key and the same items returns the first call's entry
/// ids and moves nothing; the same key with other items (another count, or any item of another
/// type, accounts or amount; metadata is not compared) is [`Error::IdempotencyConflict`]. Keys
/// share one namespace with the single movements' keys.
///
/// This is the call to repeat after an ambiguous failure (a connection lost around `commit`): the
/// repeat waits for a first attempt still in flight, and returns its result if it committed or
/// applies the batch if it rolled back.
///
/// Django: a loop of `transfer_funds` calls inside one `transaction.atomic()`, plus a
/// `get_or_create` on a request-id model to make it safe to resend.
///
/// SQL: as [`post_batch`], with one statement first that claims the key:
/// `insert into idempotency_keys (key, entry_ids) ... on conflict (key) do nothing`; a used key
/// is answered from `idempotency_keys` joined to `transactions`, before any account is locked.
///
/// ```no_run
/// # async fn pay(conn: &mut sqlx::PgConnection, a: ledger::accounts::AccountId,
/// #              b: ledger::accounts::AccountId) -> ledger::Result<()> {
/// use ledger::transactions::{self, BatchItem, Movement, Transfer};
/// use rust_decimal::Decimal;
///
/// let items = [
///     BatchItem::Deposit(Movement::new(a, Decimal::new(10_000, 2))),
///     BatchItem::Transfer(Transfer::new(a, b, Decimal::new(2_500, 2))),
/// ];
/// let ids = loop {
///     match transactions::post_batch_with_key(conn, "payroll-2026-11", &items).await {
///         // A lost connection or a restart: the same call again is safe.
///         Err(err) if err.is_transient() => continue,
///         result => break result?,
///     }
/// };
/// assert_eq!(ids.len(), 2);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`post_batch`]; [`Error::InvalidInput`] for a bad key; [`Error::IdempotencyConflict`].
pub async fn post_batch_with_key(
    conn: &mut PgConnection,
    key: &str,
    items: &[BatchItem],
) -> Result<Vec<EntryId>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.post_batch_with_key",
        "post_batch",
        "transactions",
        ledger.rows = items.len()
    );
    crate::ground::telemetry::traced(op, async move {
        validate_key(key)?;
        post_batch_at(conn, items, None, Some(key)).await
    })
    .await
}

/// [`post_batch`] with an explicit `created_at` for each item (demo data spread over months).
/// Crate-private: the public API never backdates a movement.
pub(crate) async fn post_batch_at(
    conn: &mut PgConnection,
    items: &[BatchItem],
    times: Option<&[DateTime<Utc>]>,
    key: Option<&str>,
) -> Result<Vec<EntryId>> {
    if times.is_some_and(|t| t.len() != items.len()) {
        return Err(Error::invalid("times", "must have one timestamp per item"));
    }
    bulk::validate_all(items, |item| {
        let posting = Posting::of(item);
        posting.validate()?;
        if posting.key.is_some() {
            return Err(Error::invalid(
                "idempotency_key",
                "belongs to the batch (post_batch_with_key), not to an item",
            ));
        }
        Ok(())
    })?;
    retrying!(post_batch_once(conn, items, times, key).await)
}

async fn post_batch_once(
    conn: &mut PgConnection,
    items: &[BatchItem],
    times: Option<&[DateTime<Utc>]>,
    key: Option<&str>,
) -> Result<Vec<EntryId>> {
    let postings: Vec<Posting<'_>> = items.iter().map(Posting::of).collect();
    let ids: Vec<Uuid> = items.iter().map(|_| Uuid::new_v4()).collect();
    let mut tx = conn.begin().await?;
    if let Some(key) = key {
        let same = |first: &[_]| {
            first.len() == postings.len()
                && postings
                    .iter()
                    .zip(first)
                    .all(|(p, entry)| p.is_same_as(entry))
        };
        if let Claim::Replayed(first) = idempotency::claim_one(&mut tx, key, &ids, same).await? {
            tx.rollback().await?;
            return Ok(first?.into_iter().map(|entry| entry.id).collect());
        }
    }
    let mut book = Book::lock(&mut tx, postings.iter().flat_map(Posting::accounts)).await?;
    for (index, posting) in postings.iter().enumerate() {
        book.judge(posting).map_err(|source| Error::InvalidItem {
            index,
            source: Box::new(source),
        })?;
    }
    for (n, (chunk, chunk_ids)) in postings
        .chunks(BATCH_INSERT_CHUNK)
        .zip(ids.chunks(BATCH_INSERT_CHUNK))
        .enumerate()
    {
        let at = times.map(|times| &times[n * BATCH_INSERT_CHUNK..][..chunk.len()]);
        let rows: Vec<(Uuid, &Posting<'_>)> = chunk_ids.iter().copied().zip(chunk).collect();
        insert_entries(&mut tx, &rows, at).await?;
    }
    book.write(&mut tx).await?;
    tx.commit().await?;
    Ok(ids.into_iter().map(EntryId).collect())
}
