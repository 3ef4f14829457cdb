//! The listings of users that grow with the table, as streams: live users, ids, ids and emails.
//! Each reads through a server-side cursor a chunk at a time ([`crate::cursor`]), so memory
//! holds one chunk whatever the table's size, and dropping a stream early costs at most the
//! rest of one chunk. Re-exported by [`users`](super).

use futures::{Stream, TryStreamExt};
use sqlx::{Acquire, Postgres};

use super::{IdEmail, User, UserId, Visibility};
use crate::Result;
use crate::ground::cursor::Cursor;
use crate::ground::telemetry::{self, op_span};

/// Every live user, oldest first, as a stream.
///
/// Django: `for user in User.objects.filter(deleted_at__isnull=True).iterator(chunk_size=1000)`
///
/// SQL: in a transaction of its own (a savepoint inside a caller's), `declare
/// ledger_users_active no scroll cursor for select id, email, name, created_at, deleted_at from
/// users where deleted_at is null order by created_at, id`, then `fetch 1000` and `fetch 5000`
/// until the cursor is exhausted, then `rollback`: the snapshot of one `select`.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): `users_live_created_at_id_idx`, read
/// forwards; no sort.
///
/// Memory holds one chunk (1,000,000 users: see docs/benchmarks.md). Dropping the stream early
/// costs at most the rest of one chunk ([`FIRST_FETCH_ROWS`](crate::cursor::FIRST_FETCH_ROWS),
/// then [`FETCH_ROWS`](crate::cursor::FETCH_ROWS) rows). The stream holds its connection (and,
/// for a pool, takes one) until it ends or is dropped.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> ledger::Result<()> {
/// use futures::TryStreamExt;
/// use ledger::users;
///
/// let mut live = users::stream_active(&pool);
/// while let Some(user) = live.try_next().await? {
///     println!("{}", user.email);
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// Items are [`Error::Database`](crate::Error::Database) (or a transient error) from the
/// server; after one, the stream ends.
pub fn stream_active<'a, A>(db: A) -> impl Stream<Item = Result<User>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_users_active no scroll cursor for
        select id, email, name, created_at, deleted_at
        from users
        where deleted_at is null
        order by created_at, id
        "#
    );
    let cursor = Cursor {
        declare,
        fetch: [
            "fetch 1000 from ledger_users_active",
            "fetch 5000 from ledger_users_active",
        ],
    };
    let op = op_span!("ledger.users.stream_active", "SELECT", "users");
    telemetry::traced_stream(op, crate::ground::cursor::stream(db, cursor))
}

/// The ids of every user (live ones, or all), oldest first, as a stream.
///
/// Django: `User.objects.values_list('id', flat=True).iterator(chunk_size=1000)`
///
/// SQL: as [`stream_active`], through `declare ledger_user_ids no scroll cursor for select id
/// from users where ($1::bool or deleted_at is null) order by created_at, id`.
///
/// Memory and drop cost as [`stream_active`].
///
/// # Errors
/// As [`stream_active`].
pub fn stream_ids<'a, A>(
    db: A,
    visibility: Visibility,
) -> impl Stream<Item = Result<UserId>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_user_ids no scroll cursor for
        select id
        from users
        where ($1::bool or deleted_at is null)
        order by created_at, id
        "#,
        visibility.shows_deleted()
    );
    let cursor = Cursor {
        declare,
        fetch: [
            "fetch 1000 from ledger_user_ids",
            "fetch 5000 from ledger_user_ids",
        ],
    };
    let op = op_span!("ledger.users.stream_ids", "SELECT", "users");
    let ids = crate::ground::cursor::stream::<_, (UserId,)>(db, cursor).map_ok(|(id,)| id);
    telemetry::traced_stream(op, ids)
}

/// The id and email of every user (live ones, or all), oldest first, as a stream.
///
/// Django: `User.objects.values('id', 'email').iterator(chunk_size=1000)`
///
/// SQL: as [`stream_active`], through `declare ledger_user_emails no scroll cursor for select
/// id, email from users where ($1::bool or deleted_at is null) order by created_at, id`.
///
/// Memory and drop cost as [`stream_active`].
///
/// # Errors
/// As [`stream_active`].
pub fn stream_id_email<'a, A>(
    db: A,
    visibility: Visibility,
) -> impl Stream<Item = Result<IdEmail>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_user_emails no scroll cursor for
        select id, email
        from users
        where ($1::bool or deleted_at is null)
        order by created_at, id
        "#,
        visibility.shows_deleted()
    );
    let cursor = Cursor {
        declare,
        fetch: [
            "fetch 1000 from ledger_user_emails",
            "fetch 5000 from ledger_user_emails",
        ],
    };
    let op = op_span!("ledger.users.stream_id_email", "SELECT", "users");
    telemetry::traced_stream(op, crate::ground::cursor::stream(db, cursor))
}
