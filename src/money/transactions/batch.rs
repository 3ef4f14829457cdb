//! Batch posting: many movements in one database transaction, set-based.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use super::idempotency::{self, validate_key};
use super::posting::{Locked, Posting, check, lock_accounts};
use super::retry::retrying;
use super::{COMPLETED, EntryId, LedgerEntry};
use super::{Movement, Transfer};
use crate::accounts::AccountId;
use crate::bulk;
use crate::{Error, Result};

/// Rows per `insert` statement of a batch.
pub const BATCH_INSERT_CHUNK: usize = 10_000;

/// One movement of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchItem {
    /// See [`deposit`](super::deposit).
    Deposit(Movement),
    /// See [`withdraw`](super::withdraw).
    Withdrawal(Movement),
    /// See [`transfer`](super::transfer).
    Transfer(Transfer),
}

impl BatchItem {
    fn posting(&self) -> Posting<'_> {
        match self {
            BatchItem::Deposit(m) => Posting::deposit(m),
            BatchItem::Withdrawal(m) => Posting::withdrawal(m),
            BatchItem::Transfer(t) => Posting::transfer(t),
        }
    }
}

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
    let op = crate::telemetry::op_span!(
        "ledger.transactions.post_batch",
        "post_batch",
        "transactions",
        ledger.rows = items.len()
    );
    crate::telemetry::traced(
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
    let op = crate::telemetry::op_span!(
        "ledger.transactions.post_batch_with_key",
        "post_batch",
        "transactions",
        ledger.rows = items.len()
    );
    crate::telemetry::traced(op, async move {
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
        let posting = item.posting();
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
    let mut touched: Vec<Uuid> = items
        .iter()
        .flat_map(|item| {
            let p = item.posting();
            [p.from, p.to]
        })
        .flatten()
        .map(|id| id.as_uuid())
        .collect();
    touched.sort_unstable();
    touched.dedup();

    let ids: Vec<Uuid> = items.iter().map(|_| Uuid::new_v4()).collect();
    let mut tx = conn.begin().await?;
    let claimed = match key {
        Some(key) => Some(idempotency::claim(&mut tx, key, &ids).await?),
        None => None,
    };
    if let Some(claimed) = claimed {
        // On the operation's span (`crate::telemetry`).
        tracing::Span::current().record("ledger.idempotency.replayed", !claimed);
    }
    if let (Some(key), Some(false)) = (key, claimed) {
        crate::telemetry::metered::replay("transactions");
        let first = idempotency::replay(&mut tx, key).await?;
        tx.rollback().await?;
        let same = first.len() == items.len()
            && items
                .iter()
                .zip(&first)
                .all(|(item, entry)| item.posting().is_same_as(entry));
        return if same {
            Ok(first.into_iter().map(|entry| entry.id).collect())
        } else {
            Err(idempotency::conflict(key))
        };
    }
    let locked = lock_accounts(&mut tx, &touched).await?;
    let before: HashMap<AccountId, Decimal> = locked.iter().map(|l| (l.id, l.balance)).collect();
    let mut state: HashMap<AccountId, Locked> = locked.into_iter().map(|l| (l.id, l)).collect();
    for (index, item) in items.iter().enumerate() {
        let posting = item.posting();
        check(&posting, |id| state.get(&id)).map_err(|source| Error::InvalidItem {
            index,
            source: Box::new(source),
        })?;
        if let Some(from) = posting.from.and_then(|id| state.get_mut(&id)) {
            from.balance -= posting.amount;
        }
        if let Some(to) = posting.to.and_then(|id| state.get_mut(&id)) {
            to.balance += posting.amount;
        }
    }

    let postings: Vec<Posting<'_>> = items.iter().map(BatchItem::posting).collect();
    for (n, (chunk, chunk_ids)) in postings
        .chunks(BATCH_INSERT_CHUNK)
        .zip(ids.chunks(BATCH_INSERT_CHUNK))
        .enumerate()
    {
        let at = times.map(|times| &times[n * BATCH_INSERT_CHUNK..][..chunk.len()]);
        let rows: Vec<(Uuid, &Posting<'_>)> = chunk_ids.iter().copied().zip(chunk).collect();
        insert_entries(&mut tx, &rows, at).await?;
    }
    net_balances(&mut tx, &before, &state).await?;
    tx.commit().await?;
    Ok(ids.into_iter().map(EntryId).collect())
}

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
    let kinds: Vec<&str> = entries.iter().map(|(_, p)| p.kind).collect();
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

/// Writes each locked account's net change (`state` against `before`) in one statement: an
/// account many movements touched is written once.
///
/// SQL: `update accounts as a set balance = a.balance + v.delta from unnest($1::uuid[],
/// $2::numeric[]) as v(id, delta) where a.id = v.id`.
pub(super) async fn net_balances(
    conn: &mut PgConnection,
    before: &HashMap<AccountId, Decimal>,
    state: &HashMap<AccountId, Locked>,
) -> Result<()> {
    let (accounts, deltas): (Vec<Uuid>, Vec<Decimal>) = state
        .values()
        .filter_map(|l| {
            let delta = l.balance - before.get(&l.id).copied().unwrap_or(l.balance);
            (!delta.is_zero()).then_some((l.id.as_uuid(), delta))
        })
        .unzip();
    if accounts.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"
        update accounts as a
        set balance = a.balance + v.delta
        from unnest($1::uuid[], $2::numeric[]) as v(id, delta)
        where a.id = v.id
        "#,
        &accounts,
        &deltas
    )
    .execute(conn)
    .await?;
    Ok(())
}
