//! Streams read through a server-side cursor, a chunk at a time, so that dropping one early
//! costs at most the rest of one chunk.
//!
//! A plain `fetch` of one `select` has the server produce the whole result and sqlx read all of
//! it off the socket before the connection can be used again: a stream dropped after ten rows
//! of a million-row table costs the next caller the other 999,990 (seconds on a large table,
//! while the server runs the scan to the end). Here the stream opens its own transaction (a
//! savepoint inside a caller's), declares a `no scroll` cursor for the query, and fetches
//! [`FIRST_FETCH_ROWS`] rows and then [`FETCH_ROWS`] rows per round trip, as Django's
//! `.iterator(chunk_size=...)` does, handing each row out as it arrives. Dropped between two
//! fetches, nothing is in flight; dropped during one, sqlx reads the rest of that chunk. Either
//! way sqlx queues a `rollback` (to the savepoint) that closes the cursor, and the server does
//! no more work for it.
//!
//! What a cursor costs: the server runs a `fetch` to its end, into a store of its own, before
//! it sends the first row, so the server and the caller take turns, one chunk each. For a
//! sequential scan that is cheap (`stream_unordered` reads as fast as one `select`); for an
//! ordered index scan it cost 1.6× one `select`'s time, which is why `stream_all` reads keyset
//! chunks instead, and this cursor only inside a caller's transaction.
//!
//! The snapshot is the cursor's: the rows are those visible when it was declared, whatever is
//! committed while the stream is read — the same snapshot one `select` would have read.
//!
//! Behind a transaction pooler the whole stream is one transaction, which such a pooler keeps
//! on one server connection; with the pooler profile's statement cache off, sqlx uses the
//! unnamed statement, so nothing is left prepared on the server.

use futures::{Stream, TryStreamExt};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Acquire, FromRow, Postgres};

use crate::Result;
use crate::ground::generator::{Yielder, generate};

/// Rows per `fetch` after the first: what a stream dropped while a fetch is in flight may still
/// have to read (a few milliseconds), and what one round trip is spread over. Measured by
/// `cargo bench --bench streams` on 200,000 entries, when each chunk was collected before its
/// first row was handed out: a whole read through 1,000-row fetches took 1.6× one `select`'s
/// time, through 5,000-row fetches 1.4×, through 10,000-row fetches no less, so 5,000 it is.
/// (Django's `.iterator()` fetches 2,000 by default; the seed asks for 1,000.)
pub const FETCH_ROWS: usize = 5000;

/// Rows of the first `fetch`: a stream dropped after its first few rows (a search that found
/// what it wanted) leaves at most this many for sqlx to read, well under a millisecond.
pub const FIRST_FETCH_ROWS: usize = 1000;

/// Lets a transaction that waits on its reader by design (a stream's, a dump's) sit idle for as
/// long as its reader takes: `set local idle_in_transaction_session_timeout = 0`, for this
/// transaction (or savepoint) alone, whatever the session's
/// [`Timeouts::idle_in_transaction`](crate::config::Timeouts::idle_in_transaction) says for the
/// rest. Without it a reader slower than that timeout between two chunks would lose its session.
pub(crate) async fn paced_by_reader(conn: &mut sqlx::PgConnection) -> sqlx::Result<()> {
    sqlx::query!("set local idle_in_transaction_session_timeout = 0")
        .execute(conn)
        .await?;
    Ok(())
}

/// The cursor a stream is read through: its `declare` statement (a query macro, so that the
/// query's text is checked against the schema at compile time) and the `fetch`es that read it.
pub(crate) struct Cursor {
    /// `declare <name> no scroll cursor for select ...`.
    pub(crate) declare: Query<'static, Postgres, PgArguments>,
    /// `fetch 1000 from <name>` and `fetch 5000 from <name>`, with [`FIRST_FETCH_ROWS`] and
    /// [`FETCH_ROWS`] written out: the first `fetch`, then every later one.
    pub(crate) fetch: [&'static str; 2],
}

/// Streams the cursor's rows, decoded as `T`; see the module docs for what dropping it costs.
///
/// Each `fetch`'s rows are handed out as they come off the socket, not collected into a chunk
/// first: at most one network buffer of rows is held, and decoding overlaps the transfer.
pub(crate) fn stream<'a, A, T>(
    db: A,
    cursor: Cursor,
) -> impl Stream<Item = Result<T>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin + 'a,
{
    generate(|out| async move {
        if let Err(error) = read(db, cursor, &out).await {
            out.send(Err(error)).await;
        }
    })
}

/// The body of [`stream`]: declare, then `fetch` until a chunk comes back short, then roll back.
pub(crate) async fn read<'a, A, T>(db: A, cursor: Cursor, out: &Yielder<Result<T>>) -> Result<()>
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin + 'a,
{
    let mut tx = db.begin().await?;
    paced_by_reader(&mut tx).await?;
    cursor.declare.persistent(false).execute(&mut *tx).await?;
    let [first, fetch] = cursor.fetch;
    let (mut statement, mut rows_wanted) = (first, FIRST_FETCH_ROWS);
    loop {
        // `fetch` has no result description before the cursor exists, so no query macro can
        // check it; the `declare` above is the checked statement, and `T`'s `FromRow` reads
        // the columns it names (tests read every stream against a macro query). Prepared once
        // per connection (when its statement cache is on): the description of a `fetch` is
        // the cursor's, which is the same query each time.
        let mut rows = sqlx::query_as::<_, T>(statement).fetch(&mut *tx);
        let mut read = 0;
        while let Some(row) = rows.try_next().await? {
            read += 1;
            out.send(Ok(row)).await;
        }
        drop(rows);
        if read < rows_wanted {
            break;
        }
        (statement, rows_wanted) = (fetch, FETCH_ROWS);
    }
    // Read-only: rolling back ends the stream's transaction (or savepoint) and, in both cases,
    // closes the cursor in the same round trip.
    tx.rollback().await?;
    Ok(())
}
