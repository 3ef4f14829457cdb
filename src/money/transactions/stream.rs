//! Reading the whole ledger without holding it in memory.

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use sqlx::{Acquire, Connection, PgPool, Postgres};
use uuid::Uuid;

use super::LedgerEntry;
use crate::ground::cursor::{Cursor, FETCH_ROWS, FIRST_FETCH_ROWS};
use crate::ground::generator::{Yielder, generate};
use crate::ground::telemetry::{self, op_span};
use crate::tables::bulk::MAX_CHUNK_SIZE;
use crate::{Error, Result};

/// One keyset chunk of entries in key order: the first (`first limit`), or the one after a key
/// (`after created_at, id, limit`). One statement each, shared by [`stream_all`] and [`chunks`].
macro_rules! in_key_order {
    (first $limit:expr) => {
        query_entries!(
            select r#"
            from transactions
            order by created_at, id
            limit $1
            "#,
            $limit
        )
    };
    (after $created_at:expr, $id:expr, $limit:expr) => {
        query_entries!(
            select r#"
            from transactions
            where (created_at, id) > ($1, $2)
            order by created_at, id
            limit $3
            "#,
            $created_at,
            $id,
            $limit
        )
    };
}

/// The `fetch` statements of the two cursors: the first of
/// [`FIRST_FETCH_ROWS`](crate::cursor::FIRST_FETCH_ROWS) rows, then
/// [`FETCH_ROWS`](crate::cursor::FETCH_ROWS) rows each.
const FETCH_ORDERED: [&str; 2] = [
    "fetch 1000 from ledger_entries_ordered",
    "fetch 5000 from ledger_entries_ordered",
];
const FETCH_UNORDERED: [&str; 2] = [
    "fetch 1000 from ledger_entries",
    "fetch 5000 from ledger_entries",
];

/// Every entry in time order (`created_at`, then id), as a stream: rows are decoded as they
/// arrive, a chunk at most in flight, so memory stays flat whatever the table size.
///
/// Django: `for tx in Transaction.objects.order_by('created_at').iterator(chunk_size=1000)`
///
/// SQL: on a pool or a connection outside a transaction, in a transaction of its own,
/// `set transaction isolation level repeatable read, read only`, then keyset chunks in key
/// order, `select ... from transactions order by created_at, id limit 1000` and then `... where
/// (created_at, id) > ($1, $2) order by created_at, id limit 5000` from the last key read,
/// until a chunk comes back short, then `rollback`. Every chunk reads the one snapshot of that
/// transaction: the rows are those a single `select` would have read, whatever is committed
/// meanwhile.
///
/// In a caller's transaction (`db` a `&mut Transaction`), whose isolation it cannot choose, it
/// reads through a server-side cursor instead, in a savepoint: `declare ledger_entries_ordered
/// no scroll cursor for select ... order by created_at, id`, then `fetch 1000` and `fetch
/// 5000` until the cursor is exhausted, then `rollback to savepoint` (see [`crate::cursor`]):
/// again the snapshot of one `select`, as Django's `.iterator()` reads.
///
/// Why keyset chunks and not the cursor everywhere: the server collects a whole `fetch` before
/// it sends its first row, so through a cursor it and the caller take turns, and an ordered
/// read of 200,000 entries took 1.6× a single `select`'s time. A keyset chunk is an ordinary
/// query, whose rows the server sends as its index scan finds them while the caller decodes
/// the ones before.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): each chunk is a range scan of
/// `transactions_created_at_id_idx`; no sort.
///
/// Dropping the stream early costs at most the rest of one chunk: of
/// [`FIRST_FETCH_ROWS`](crate::cursor::FIRST_FETCH_ROWS) rows while the first is read, of
/// [`FETCH_ROWS`](crate::cursor::FETCH_ROWS) after, whatever the table's size. sqlx reads what
/// is left of that chunk off the socket and then sends the queued `rollback`; the server has no
/// more work for the stream. The stream holds its connection (and, for a pool, takes one)
/// until it ends or is dropped. Behind a transaction pooler (`DB_TRANSACTION_POOLER`) the whole
/// stream is one transaction, which the pooler keeps on one server connection, and the chunks
/// are ordinary statements: the same bounded drop, tested through PgBouncer.
///
/// # Errors
/// Items are [`Error::Database`] (or a transient error) from the server; after one, the
/// stream ends.
pub fn stream_all<'a, A>(db: A) -> impl Stream<Item = Result<LedgerEntry>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let op = op_span!("ledger.transactions.stream_all", "SELECT", "transactions");
    let rows = generate(|out| async move {
        if let Err(error) = read_in_key_order(db, &out).await {
            out.send(Err(error)).await;
        }
    });
    telemetry::traced_stream(op, rows)
}

/// The body of [`stream_all`]: keyset chunks in a `repeatable read` transaction of its own, or
/// the ordered cursor inside a caller's transaction.
async fn read_in_key_order<'a, A>(db: A, out: &Yielder<Result<LedgerEntry>>) -> Result<()>
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let mut conn = db.acquire().await?;
    if conn.is_in_transaction() {
        let declare = sqlx::query!(
            r#"
            declare ledger_entries_ordered no scroll cursor for
            select id, from_account_id, to_account_id, amount, type as kind, status, metadata,
                   created_at, idempotency_key
            from transactions
            order by created_at, id
            "#
        );
        let cursor = Cursor {
            declare,
            fetch: FETCH_ORDERED,
        };
        return crate::ground::cursor::read(&mut *conn, cursor, out).await;
    }
    let mut tx = Connection::begin(&mut *conn).await?;
    sqlx::query!("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    crate::ground::cursor::paced_by_reader(&mut tx).await?;
    let mut after: Option<(DateTime<Utc>, Uuid)> = None;
    let mut limit = FIRST_FETCH_ROWS;
    loop {
        let wanted = limit as i64;
        // The same two statements as `chunks`.
        let mut rows = match after {
            None => in_key_order!(first wanted).fetch(&mut *tx),
            Some((created_at, id)) => in_key_order!(after created_at, id, wanted).fetch(&mut *tx),
        };
        let mut read = 0;
        while let Some(row) = rows.try_next().await? {
            read += 1;
            after = Some((row.created_at, row.id.as_uuid()));
            out.send(Ok(row)).await;
        }
        drop(rows);
        if read < limit {
            break;
        }
        limit = FETCH_ROWS;
    }
    // Read-only: rolling back ends the stream's transaction.
    tx.rollback().await?;
    Ok(())
}

/// Every entry in the order the server finds them (no `order by`: physical order, no sort), as
/// a stream. Django's `.iterator()` on a queryset without an ordering reads the same way; use it
/// when the order does not matter (an export, a sum, a search), [`stream_all`] when it does.
///
/// Django: `for tx in Transaction.objects.iterator(chunk_size=1000)`
///
/// SQL: in a transaction of its own (a savepoint when `db` is already in one), `declare
/// ledger_entries no scroll cursor for select ... from transactions`, then `fetch 1000` and
/// `fetch 5000` until the cursor is exhausted, then `rollback`: the snapshot of one `select`,
/// read through a server-side cursor as Django's `.iterator()` does (see [`crate::cursor`]). A
/// sequential scan, where [`stream_all`] pays for its order with an index scan in random heap
/// order.
///
/// Dropping it early costs at most the rest of one chunk (of
/// [`FIRST_FETCH_ROWS`](crate::cursor::FIRST_FETCH_ROWS) rows, then
/// [`FETCH_ROWS`](crate::cursor::FETCH_ROWS)), whatever the table's size; the `rollback` sqlx
/// then sends closes the cursor.
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
    telemetry::traced_stream(op, crate::ground::cursor::stream(db, cursor))
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
                    None => in_key_order!(first limit).fetch_all(&pool).await?,
                    Some((created_at, id)) => {
                        in_key_order!(after created_at, id, limit)
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
    fn every_fetch_reads_the_rows_its_constant_says() {
        let first = format!("fetch {} from ", crate::ground::cursor::FIRST_FETCH_ROWS);
        let rest = format!("fetch {} from ", crate::ground::cursor::FETCH_ROWS);
        for [head, tail] in [FETCH_ORDERED, FETCH_UNORDERED] {
            assert!(head.starts_with(&first), "{head}");
            assert!(tail.starts_with(&rest), "{tail}");
            assert_eq!(head.strip_prefix(&first), tail.strip_prefix(&rest));
        }
    }
}
