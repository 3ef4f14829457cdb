//! What a connection's session holds between two callers: nothing, if the pool is built by
//! [`Config::pool_options`](crate::Config::pool_options).
//!
//! A future dropped at the wrong moment can leave the server in a transaction that sqlx does
//! not track: sqlx 0.9.0 lost one when a call was dropped while its `BEGIN` was in flight (sqlx
//! issue 4393, fixed in 0.9.1), and a `begin` sent as plain SQL is never tracked. The pool then
//! hands that session to the next caller, whose statements run inside the stale transaction:
//! they carry its `now()`, a single-statement write returns `Ok` without being committed (and is
//! lost if the connection closes), and its first error aborts the session for every later call.
//! The pool's release check asks the server itself, and closes such a connection instead of
//! pooling it.

use sqlx::{Connection, PgConnection, Row};

use crate::Result;

/// Whether the session is outside any transaction block, as the server sees it: `true` for a
/// connection that is safe to hand to another caller.
///
/// Django: none (Django checks `connection.in_atomic_block`, its own bookkeeping; psycopg2's
/// `connection.info.transaction_status` reads the server's status).
///
/// SQL: first whatever sqlx still has to send or read on the connection (a `rollback` queued
/// by a dropped transaction, the rest of a dropped result), then
/// `select transaction_timestamp() = statement_timestamp()` sent as a simple query. A simple
/// query outside a transaction block runs in a transaction of its own that starts with the
/// statement, so the two are equal; inside a block begun by an earlier message, the
/// transaction began before the statement, so they differ. (With the extended protocol the
/// statement's time is reset by each message, so the check must be a simple query.)
///
/// # Errors
/// [`Error::Database`](crate::Error::Database), or a transient error: the server refused the
/// statement (an aborted transaction, `25P02`) or the connection is gone. Either way, the
/// connection should not be reused.
pub async fn is_outside_transaction(conn: &mut PgConnection) -> Result<bool> {
    Ok(probe(conn).await?)
}

/// [`is_outside_transaction`] with sqlx's error, for the pool's `after_release` hook.
pub(crate) async fn probe(conn: &mut PgConnection) -> sqlx::Result<bool> {
    if conn.is_in_transaction() {
        // sqlx itself holds a transaction open on this connection.
        return Ok(false);
    }
    // A query macro would use the extended protocol, under which the check does not hold.
    let row = sqlx::raw_sql("select transaction_timestamp() = statement_timestamp()")
        .fetch_one(&mut *conn)
        .await?;
    row.try_get::<bool, _>(0)
}
