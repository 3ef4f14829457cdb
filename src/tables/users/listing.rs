//! Listing users, live ones or all ([`Visibility`]), in order: orderings and slices, keyset
//! pages, projections and counts (filters are in `filters`, the prefetch of their accounts in
//! `prefetch`, Django's `Paginator` in `paginate`). Re-exported by [`users`](super).
//!
//! Each listing takes a [`Visibility`]: live users (this crate's default) or all of them, as
//! Django's default manager shows. The SQL below is shown for live users; each query holds
//! `($n::bool or deleted_at is null)`, which PostgreSQL folds to `deleted_at is null` when it
//! plans with the value bound, so live listings keep their partial indexes (checked by
//! `tests/db/plans.rs`).

use std::ops::Range;

use sqlx::PgExecutor;

use super::{IdEmail, User, UserId, UserOrder, Visibility};
use crate::tables::page::{self, Cursor, Direction, KeysetPage};
use crate::{Error, Result};

/// See [`UserQuery::slice`](super::UserQuery::slice).
pub(super) async fn slice(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    order: UserOrder,
    range: Range<i64>,
) -> Result<Vec<User>> {
    if range.start < 0 || range.end < range.start {
        return Err(Error::invalid(
            "range",
            format!("{}..{} is not a slice of rows", range.start, range.end),
        ));
    }
    let limit = range.end - range.start;
    if limit > page::MAX_PER_PAGE {
        return Err(Error::invalid("range", "longer than MAX_PER_PAGE"));
    }
    list_ordered(db, visibility, order, limit, range.start).await
}

pub(super) async fn list_ordered(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    order: UserOrder,
    limit: i64,
    offset: i64,
) -> Result<Vec<User>> {
    let rows = match order {
        UserOrder::NameAsc => {
            query_users!(
                select r#"
                from users
                where ($3::bool or deleted_at is null)
                order by name, id
                limit $1 offset $2
                "#,
                limit,
                offset,
                visibility.shows_deleted()
            )
            .fetch_all(db)
            .await?
        }
        UserOrder::NewestFirst => {
            query_users!(
                select r#"
                from users
                where ($3::bool or deleted_at is null)
                order by created_at desc, id desc
                limit $1 offset $2
                "#,
                limit,
                offset,
                visibility.shows_deleted()
            )
            .fetch_all(db)
            .await?
        }
        UserOrder::OldestFirst => {
            query_users!(
                select r#"
                from users
                where ($3::bool or deleted_at is null)
                order by created_at, id
                limit $1 offset $2
                "#,
                limit,
                offset,
                visibility.shows_deleted()
            )
            .fetch_all(db)
            .await?
        }
    };
    Ok(rows)
}

/// See [`UserQuery::keyset`](super::UserQuery::keyset).
pub(super) async fn keyset(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    cursor: Option<&Cursor>,
    limit: i64,
) -> Result<KeysetPage<User>> {
    let limit = page::check_limit(limit)?;
    if let Some(c) = cursor {
        c.check_time()?;
    }
    let fetch = limit + 1;
    let rows = match cursor {
        None => {
            query_users!(
                select r#"
                from users
                where ($2::bool or deleted_at is null)
                order by created_at desc, id desc
                limit $1
                "#,
                fetch,
                visibility.shows_deleted()
            )
            .fetch_all(db)
            .await?
        }
        Some(c) if c.direction == Direction::Next => {
            query_users!(
                select r#"
                from users
                where ($4::bool or deleted_at is null) and (created_at, id) < ($1, $2)
                order by created_at desc, id desc
                limit $3
                "#,
                c.created_at,
                c.id,
                fetch,
                visibility.shows_deleted()
            )
            .fetch_all(db)
            .await?
        }
        Some(c) => {
            query_users!(
                select r#"
                from users
                where ($4::bool or deleted_at is null) and (created_at, id) > ($1, $2)
                order by created_at, id
                limit $3
                "#,
                c.created_at,
                c.id,
                fetch,
                visibility.shows_deleted()
            )
            .fetch_all(db)
            .await?
        }
    };
    Ok(page::keyset_page(rows, limit, cursor, |u| {
        (u.created_at, u.id.as_uuid())
    }))
}

/// The id and email of every user (live ones, or all), oldest first.
///
/// Django: `User.objects.values('id', 'email')`
///
/// SQL: `select id, email from users where deleted_at is null order by created_at, id`.
///
/// **Reads every user's id and email into memory**; the same rows as a stream, one chunk in
/// memory: [`stream_id_email`](super::stream_id_email).
///
/// # Errors
/// [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every user into memory: use `users::stream_id_email`"
)]
pub async fn list_id_email(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
) -> Result<Vec<IdEmail>> {
    let op = crate::ground::telemetry::op_span!("ledger.users.list_id_email", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_as!(
            IdEmail,
            r#"
        select id, email
        from users
        where ($1::bool or deleted_at is null)
        order by created_at, id
        "#,
            visibility.shows_deleted()
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// The ids of every user (live ones, or all), oldest first.
///
/// Django: `User.objects.values_list('id', flat=True)`
///
/// SQL: `select id from users where deleted_at is null order by created_at, id`.
///
/// **Reads every user's id into memory**; the same ids as a stream, one chunk in memory:
/// [`stream_ids`](super::stream_ids).
///
/// # Errors
/// [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every user's id into memory: use `users::stream_ids`"
)]
pub async fn list_ids(db: impl PgExecutor<'_>, visibility: Visibility) -> Result<Vec<UserId>> {
    let op = crate::ground::telemetry::op_span!("ledger.users.list_ids", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_scalar!(
            r#"
        select id
        from users
        where ($1::bool or deleted_at is null)
        order by created_at, id
        "#,
            visibility.shows_deleted()
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Whether any user, live or soft-deleted, has this email — without fetching the row.
///
/// Django: `User.objects.filter(email='x@x.com').exists()`
///
/// SQL: `select exists (select 1 from users where email = $1)`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn exists_with_email(db: impl PgExecutor<'_>, email: &str) -> Result<bool> {
    let op =
        crate::ground::telemetry::op_span!("ledger.users.exists_with_email", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
        Error::check_text("email", email)?;
        Ok(sqlx::query_scalar!(
            r#"select exists (select 1 from users where email = $1) as "exists!""#,
            email
        )
        .fetch_one(db)
        .await?)
    })
    .await
}

/// How many live users there are, counted by the server.
///
/// Django: `User.objects.filter(deleted_at__isnull=True).count()` (the seed's `active=True`: User
/// has no `active` field; live means not soft-deleted)
///
/// SQL: `select count(*) from users where deleted_at is null`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn count_active(db: impl PgExecutor<'_>) -> Result<i64> {
    let op = crate::ground::telemetry::op_span!("ledger.users.count_active", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_scalar!(
            r#"select count(*) as "count!" from users where deleted_at is null"#
        )
        .fetch_one(db)
        .await?)
    })
    .await
}

/// How many users a listing of this visibility shows, counted by the server.
///
/// Django: `User.objects.count()` ([`Visibility::All`]), or
/// `User.objects.filter(deleted_at__isnull=True).count()` ([`Visibility::Live`], as
/// [`count_active`])
///
/// SQL: `select count(*) from users where ($1 or deleted_at is null)`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn count(db: impl PgExecutor<'_>, visibility: Visibility) -> Result<i64> {
    let op = crate::ground::telemetry::op_span!("ledger.users.count", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_scalar!(
            r#"select count(*) as "count!" from users where ($1::bool or deleted_at is null)"#,
            visibility.shows_deleted()
        )
        .fetch_one(db)
        .await?)
    })
    .await
}
