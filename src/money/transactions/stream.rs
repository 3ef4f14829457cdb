//! Reading the whole ledger without holding it in memory.

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use sqlx::{Acquire, PgExecutor, PgPool, Postgres};
use uuid::Uuid;

use super::LedgerEntry;
use crate::bulk::MAX_CHUNK_SIZE;
use crate::cursor::Cursor;
use crate::telemetry::{self, op_span};
use crate::{Error, Result};

/// The `fetch` statements of the two cursors, [`FETCH_ROWS`](crate::cursor::FETCH_ROWS) rows each.
const FETCH_ORDERED: &str = "fetch 5000 from ledger_entries_ordered";
const FETCH_UNORDERED: &str = "fetch 5000 from ledger_entries";

/// Every entry in time order (`created_at`, then id), as a stream: rows are decoded a chunk at
/// a time, so memory stays flat whatever the table size.
///
/// Django: `for tx in Transaction.objects.order_by('created_at').iterator(chunk_size=1000)`
///
/// SQL: in a transaction of its own (a savepoint when `db` is already in one),
/// `declare ledger_entries_ordered no scroll cursor for select ... from transactions order by
/// created_at, id`, then `fetch 5000` until the cursor is exhausted, then `rollback`: the same
/// snapshot as one `select`, read through a server-side cursor as Django's `.iterator()` does
/// (see [`crate::cursor`]).
///
/// Dropping the stream early costs at most the rest of one chunk of
/// [`FETCH_ROWS`](crate::cursor::FETCH_ROWS) rows, whatever the table's size; the cursor is
/// closed by the `rollback` that sqlx then sends, and the server stops reading. The stream holds
/// its connection (and, for a pool, takes one) until it ends or is dropped.
///
/// # Errors
/// Items are [`Error::Database`] (or a transient error) from the server; after one, the
/// stream ends.
pub fn stream_all<'a, A>(db: A) -> impl Stream<Item = Result<LedgerEntry>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_entries_ordered no scroll cursor for
        select id, from_account_id, to_account_id, amount, type as kind, status, metadata,
               created_at, idempotency_key
        from transactions
        order by created_at, id
        "#
    );
    let op = op_span!("ledger.transactions.stream_all", "SELECT", "transactions");
    let cursor = Cursor {
        declare,
        fetch: FETCH_ORDERED,
    };
    telemetry::traced_stream(op, crate::cursor::stream(db, cursor))
}

/// Every entry in the order the server finds them (no `order by`: physical order, no sort), as
/// a stream. Django's `.iterator()` on a queryset without an ordering reads the same way; use it
/// when the order does not matter (an export, a sum, a search), [`stream_all`] when it does.
///
/// Django: `for tx in Transaction.objects.iterator(chunk_size=1000)`
///
/// SQL: as [`stream_all`], through `declare ledger_entries no scroll cursor for select ... from
/// transactions`: a sequential scan, where [`stream_all`] pays for its order with an index scan
/// in random heap order. Dropping it early costs the same: at most the rest of one chunk.
///
/// # Errors
/// As [`stream_all`].
pub fn stream_unordered<'a, A>(db: A) -> impl Stream<Item = Result<LedgerEntry>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_entries no scroll cursor for
        select id, from_account_id, to_account_id, amount, type as kind, status, metadata,
               created_at, idempotency_key
        from transactions
        "#
    );
    let op = op_span!(
        "ledger.transactions.stream_unordered",
        "SELECT",
        "transactions"
    );
    let cursor = Cursor {
        declare,
        fetch: FETCH_UNORDERED,
    };
    telemetry::traced_stream(op, crate::cursor::stream(db, cursor))
}

/// [`stream_all`] as it was before 0.2: one `select`, on any executor. Dropped early, it costs
/// the next use of its connection a read of the rest of the table.
#[deprecated(
    since = "0.2.0",
    note = "use `stream_all`, which takes a pool or connection (`Acquire`) and whose drop costs \
            one chunk"
)]
pub fn stream_all_on<'e>(
    db: impl PgExecutor<'e> + 'e,
) -> impl Stream<Item = Result<LedgerEntry>> + Send + 'e {
    query_entries!(
        select r#"
        from transactions
        order by created_at, id
        "#
    )
    .fetch(db)
    .map_err(Error::from)
}

/// [`stream_unordered`] as it was before 0.2: one `select`, on any executor. Dropped early, it
/// costs the next use of its connection a read of the rest of the table.
#[deprecated(
    since = "0.2.0",
    note = "use `stream_unordered`, which takes a pool or connection (`Acquire`) and whose drop \
            costs one chunk"
)]
pub fn stream_unordered_on<'e>(
    db: impl PgExecutor<'e> + 'e,
) -> impl Stream<Item = Result<LedgerEntry>> + Send + 'e {
    query_entries!(
        select r#"
        from transactions
        "#
    )
    .fetch(db)
    .map_err(Error::from)
}

/// Every entry in time order, `size` rows at a time (the seed's `iterator(chunk_size=1000)`).
/// Each chunk is one keyset query on a pooled connection that is released between chunks, so
/// at most one chunk is in memory and no connection or transaction is held while the caller
/// works; rows committed meanwhile after the last key read are picked up, earlier ones are not.
///
/// SQL: `where (created_at, id) > ($1, $2) order by created_at, id limit $3` (index
/// `transactions_created_at_id_idx`).
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): each chunk is a range scan of
/// `transactions_created_at_id_idx`; no sort.
///
/// # Errors
/// The first item is [`Error::InvalidInput`] for a size outside `1..=MAX_CHUNK_SIZE`.
pub fn chunks(
    pool: &PgPool,
    size: usize,
) -> impl Stream<Item = Result<Vec<LedgerEntry>>> + Send + use<> {
    let pool = pool.clone();
    let chunks = futures::stream::try_unfold(
        Some(None),
        move |state: Option<Option<(DateTime<Utc>, Uuid)>>| {
            let pool = pool.clone();
            async move {
                let Some(after) = state else {
                    return Ok(None);
                };
                if !(1..=MAX_CHUNK_SIZE).contains(&size) {
                    return Err(Error::invalid(
                        "size",
                        format!("must be between 1 and {MAX_CHUNK_SIZE}"),
                    ));
                }
                let limit = size as i64;
                let rows = match after {
                    None => {
                        query_entries!(
                            select r#"
                        from transactions
                        order by created_at, id
                        limit $1
                        "#,
                            limit
                        )
                        .fetch_all(&pool)
                        .await?
                    }
                    Some((created_at, id)) => {
                        query_entries!(
                            select r#"
                        from transactions
                        where (created_at, id) > ($1, $2)
                        order by created_at, id
                        limit $3
                        "#,
                            created_at,
                            id,
                            limit
                        )
                        .fetch_all(&pool)
                        .await?
                    }
                };
                if rows.is_empty() {
                    return Ok(None);
                }
                let next = if rows.len() < size {
                    None
                } else {
                    rows.last().map(|r| Some((r.created_at, r.id.as_uuid())))
                };
                Ok(Some((rows, next)))
            }
        },
    )
    .boxed();
    let op = op_span!("ledger.transactions.chunks", "SELECT", "transactions");
    telemetry::traced_stream(op, chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fetch_reads_fetch_rows() {
        let rows = format!("fetch {} from ", crate::cursor::FETCH_ROWS);
        for fetch in [FETCH_ORDERED, FETCH_UNORDERED] {
            assert!(fetch.starts_with(&rows), "{fetch}");
        }
    }
}
