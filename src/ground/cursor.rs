//! Streams read through a server-side cursor, a chunk at a time, so that dropping one early
//! costs at most the rest of one chunk.
//!
//! A plain `fetch` of one `select` has the server produce the whole result and sqlx read all of
//! it off the socket before the connection can be used again: a stream dropped after ten rows
//! of a million-row table costs the next caller the other 999,990 (seconds on a large table,
//! while the server runs the scan to the end). Here the stream opens its own transaction (a
//! savepoint inside a caller's), declares a `no scroll` cursor for the query, and fetches
//! [`FETCH_ROWS`] rows per round trip, as Django's `.iterator(chunk_size=...)` does. Dropped
//! between two fetches, nothing is in flight; dropped during one, sqlx reads the rest of that
//! chunk. Either way sqlx queues a `rollback` (to the savepoint) that closes the cursor, and the
//! server does no more work for it.
//!
//! The snapshot is the cursor's: the rows are those visible when it was declared, whatever is
//! committed while the stream is read — the same snapshot one `select` would have read.
//!
//! Behind a transaction pooler the whole stream is one transaction, which such a pooler keeps
//! on one server connection; with the pooler profile's statement cache off, sqlx uses the
//! unnamed statement, so nothing is left prepared on the server.

use futures::{Stream, StreamExt};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Acquire, FromRow, Postgres, Transaction};

use crate::Result;

/// Rows per `fetch`: what a stream dropped while a fetch is in flight may still have to read
/// (a few milliseconds), and what one round trip is spread over. Measured by `cargo bench
/// --bench streams` on 200,000 entries: a whole read through 1,000-row fetches took 1.6× one
/// `select`'s time, through 5,000-row fetches 1.4×, through 10,000-row fetches no less, so
/// 5,000 it is. (Django's `.iterator()` fetches 2,000 by default; the seed asks for 1,000.)
pub const FETCH_ROWS: usize = 5000;

/// The cursor a stream is read through: its `declare` statement (a query macro, so that the
/// query's text is checked against the schema at compile time) and the `fetch` that reads it.
pub(crate) struct Cursor {
    /// `declare <name> no scroll cursor for select ...`.
    pub(crate) declare: Query<'static, Postgres, PgArguments>,
    /// `fetch 5000 from <name>`, with [`FETCH_ROWS`] written out.
    pub(crate) fetch: &'static str,
}

enum State<'a, A, T> {
    Start(A, Cursor),
    Open {
        tx: Transaction<'a, Postgres>,
        fetch: &'static str,
        rows: std::vec::IntoIter<T>,
        last: bool,
    },
}

/// Streams the cursor's rows, decoded as `T`; see the module docs for what dropping it costs.
pub(crate) fn stream<'a, A, T>(
    db: A,
    cursor: Cursor,
) -> impl Stream<Item = Result<T>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin + 'a,
{
    futures::stream::try_unfold(State::Start(db, cursor), |state| async move {
        let (mut tx, fetch, mut rows, mut last) = match state {
            State::Start(db, cursor) => {
                let mut tx = db.begin().await?;
                cursor.declare.persistent(false).execute(&mut *tx).await?;
                (tx, cursor.fetch, Vec::new().into_iter(), false)
            }
            State::Open {
                tx,
                fetch,
                rows,
                last,
            } => (tx, fetch, rows, last),
        };
        loop {
            if let Some(row) = rows.next() {
                let state = State::Open {
                    tx,
                    fetch,
                    rows,
                    last,
                };
                return Ok(Some((row, state)));
            }
            if last {
                // Read-only: rolling back ends the stream's transaction (or savepoint) and, in
                // both cases, closes the cursor in the same round trip.
                tx.rollback().await?;
                return Ok(None);
            }
            // `fetch` has no result description before the cursor exists, so no query macro
            // can check it; the `declare` above is the checked statement, and `T`'s `FromRow`
            // reads the columns it names (tests read every stream against a macro query).
            // Prepared once per connection (when its statement cache is on): the description of
            // a `fetch` is the cursor's, which is the same query each time.
            let chunk: Vec<T> = sqlx::query_as(fetch).fetch_all(&mut *tx).await?;
            last = chunk.len() < FETCH_ROWS;
            rows = chunk.into_iter();
        }
    })
    .boxed()
}
