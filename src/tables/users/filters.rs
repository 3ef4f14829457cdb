//! The users a question picks: exact and pattern filters on the name, the day they joined, and
//! the run-time [`filter`] ([`UserFilter`]). Re-exported by [`users`](super).
//!
//! Each takes a [`Visibility`]: live users (this crate's default) or all of them, as Django's
//! default manager shows. The SQL below is shown for live users; each query holds
//! `($n::bool or deleted_at is null)`, which PostgreSQL folds to `deleted_at is null` when it
//! plans with the value bound, so live listings keep their partial indexes (checked by
//! `tests/db/plans.rs`).

use chrono::NaiveDate;
use sqlx::PgExecutor;

use super::{User, UserId, Visibility, escape_like};
use crate::tables::page;
use crate::{Error, Result};

/// Users (live ones, or all: [`Visibility`]) with exactly this name.
///
/// Django: `User.objects.filter(name='Ana')`
///
/// SQL: `where name = $1 and deleted_at is null order by name, id` (index
/// `users_live_name_id_idx`).
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): the live-name index
/// (`users_live_name_id_idx` or `users_live_name_pattern_idx`), then a sort of that name's users.
///
/// **Reads every match into memory**: a common name, a one-letter fragment or a busy day can
/// match most of the table. A page at a time, by `(name, id)`: [`filter`] with
/// [`UserFilter::name`], its `limit` and `after`.
///
/// # Errors
/// [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every match into memory: use `users::filter` with `UserFilter { name, limit, after, .. }`, a page at a time"
)]
pub async fn list_by_name(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    name: &str,
) -> Result<Vec<User>> {
    let op = crate::ground::telemetry::op_span!("ledger.users.list_by_name", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
        Error::check_text("name", name)?;
        Ok(query_users!(
            select r#"
        from users
        where name = $1 and ($2::bool or deleted_at is null)
        order by name, id
        "#,
            name,
            visibility.shows_deleted()
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Users (live ones, or all: [`Visibility`]) whose name contains `fragment`, ignoring case; `%`,
/// `_` and `\` match themselves.
///
/// Django: `User.objects.filter(name__icontains='ana')`
///
/// SQL: `where name ilike '%' || <escaped fragment> || '%' escape '\' and deleted_at is null`.
///
/// **Reads every match into memory**: a common name, a one-letter fragment or a busy day can
/// match most of the table. A page at a time, by `(name, id)`: [`filter`] with
/// [`UserFilter::name_contains`], its `limit` and `after`.
///
/// # Errors
/// [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every match into memory: use `users::filter` with `UserFilter { name_contains, limit, after, .. }`, a page at a time"
)]
pub async fn list_name_contains(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    fragment: &str,
) -> Result<Vec<User>> {
    let op =
        crate::ground::telemetry::op_span!("ledger.users.list_name_contains", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
        Error::check_text("fragment", fragment)?;
        let pattern = format!("%{}%", escape_like(fragment));
        Ok(query_users!(
            select r#"
        from users
        where name ilike $1 escape '\' and ($2::bool or deleted_at is null)
        order by name, id
        "#,
            pattern,
            visibility.shows_deleted()
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Users (live ones, or all: [`Visibility`]) whose name starts with `prefix`, case-sensitively;
/// `%`, `_` and `\` match
/// themselves.
///
/// Django: `User.objects.filter(name__startswith='An')`
///
/// SQL: `where name like <escaped prefix> || '%' escape '\' and deleted_at is null`.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): a range scan of
/// `users_live_name_pattern_idx` (`like` prefix bounds), then a sort of the matches. Without that
/// index (migration 0012) it was a sequential scan of `users`.
///
/// **Reads every match into memory**: a common name, a one-letter fragment or a busy day can
/// match most of the table. A page at a time, by `(name, id)`: [`filter`] with
/// [`UserFilter::name_starts_with`], its `limit` and `after`.
///
/// # Errors
/// [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every match into memory: use `users::filter` with `UserFilter { name_starts_with, limit, after, .. }`, a page at a time"
)]
pub async fn list_name_starts_with(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    prefix: &str,
) -> Result<Vec<User>> {
    let op =
        crate::ground::telemetry::op_span!("ledger.users.list_name_starts_with", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
        Error::check_text("prefix", prefix)?;
        let pattern = format!("{}%", escape_like(prefix));
        Ok(query_users!(
            select r#"
        from users
        where name like $1 escape '\' and ($2::bool or deleted_at is null)
        order by name, id
        "#,
            pattern,
            visibility.shows_deleted()
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Users (live ones, or all: [`Visibility`]) created on `date` as a calendar in `time_zone` sees it
/// (an IANA name such as
/// `"UTC"` or `"America/Bogota"`).
///
/// Django: `User.objects.filter(created_at__date=today)` (in the current time zone, UTC by default)
///
/// SQL: a half-open range the server computes once, so an index on `created_at` can serve it:
/// `created_at >= date::timestamp at time zone tz and created_at < (date + 1)::timestamp at time
/// zone tz` — 23 or 25 hours long on the days clocks change, as it should be.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): a range scan of
/// `users_live_created_at_id_idx`; no sort.
///
/// **Reads every match into memory**: a common name, a one-letter fragment or a busy day can
/// match most of the table. A page at a time, by `(name, id)`: [`filter`] with
/// [`UserFilter::created_on`], its `limit` and `after`.
///
/// # Errors
/// [`Error::InvalidInput`] for a time zone the server does not know.
#[deprecated(
    since = "0.1.1",
    note = "reads every match into memory: use `users::filter` with `UserFilter { created_on, limit, after, .. }`, a page at a time"
)]
pub async fn list_created_on(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    date: NaiveDate,
    time_zone: &str,
) -> Result<Vec<User>> {
    let op = crate::ground::telemetry::op_span!("ledger.users.list_created_on", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
        Error::check_text("time_zone", time_zone)?;
        page::check_date("date", date)?;
        query_users!(
            select r#"
        from users
        where created_at >= $1::date::timestamp at time zone $2
          and created_at < ($1::date + 1)::timestamp at time zone $2
          and ($3::bool or deleted_at is null)
        order by created_at, id
        "#,
            date,
            time_zone,
            visibility.shows_deleted()
        )
        .fetch_all(db)
        .await
        .map_err(|e| Error::from_time_zone(e, time_zone))
    })
    .await
}

/// Criteria for [`filter`], each optional; set ones are combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// `name = ...`
    pub name: Option<String>,
    /// `name__icontains=...`
    pub name_contains: Option<String>,
    /// `name__startswith=...`
    pub name_starts_with: Option<String>,
    /// `created_at__date=...`, in [`UserFilter::time_zone`].
    pub created_on: Option<NaiveDate>,
    /// The time zone of `created_on`; UTC when `None`.
    pub time_zone: Option<String>,
    /// Also return soft-deleted users.
    pub include_deleted: bool,
    /// At most this many rows (default and maximum [`page::MAX_PER_PAGE`]).
    pub limit: Option<i64>,
    /// Only the users after this one in the listing's `(name, id)` order: set it to the last
    /// user of a page to read the next.
    pub after: Option<NameKey>,
}

/// A position in a listing ordered by `(name, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameKey {
    /// The boundary user's name.
    pub name: String,
    /// The boundary user's id (the tie-breaker).
    pub id: UserId,
}

impl NameKey {
    /// The position of `user`.
    pub fn of(user: &User) -> Self {
        Self {
            name: user.name.clone(),
            id: user.id,
        }
    }
}

/// Users matching every criterion set in `filter`, for callers who combine criteria at run time:
/// still one statically checked query, each criterion written `($n is null or ...)`.
///
/// Django: `User.objects.filter(**criteria)`
///
/// SQL: one `select` whose `where` holds every criterion guarded by its parameter being null,
/// `order by name, id limit $n`; [`UserFilter::after`] resumes after a `(name, id)`.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): by name: the live-name index and a top-N
/// sort of that name's users.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad limit or an unknown time zone.
pub async fn filter(db: impl PgExecutor<'_>, filter: &UserFilter) -> Result<Vec<User>> {
    let op = crate::ground::telemetry::op_span!("ledger.users.filter", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
        for (field, text) in [
            ("name", filter.name.as_deref()),
            ("name_contains", filter.name_contains.as_deref()),
            ("name_starts_with", filter.name_starts_with.as_deref()),
            ("time_zone", filter.time_zone.as_deref()),
            ("after", filter.after.as_ref().map(|key| key.name.as_str())),
        ] {
            if let Some(text) = text {
                Error::check_text(field, text)?;
            }
        }
        if let Some(date) = filter.created_on {
            page::check_date("created_on", date)?;
        }
        let limit = page::check_limit(filter.limit.unwrap_or(page::MAX_PER_PAGE))?;
        let contains = filter
            .name_contains
            .as_deref()
            .map(|s| format!("%{}%", escape_like(s)));
        let starts = filter
            .name_starts_with
            .as_deref()
            .map(|s| format!("{}%", escape_like(s)));
        let time_zone = filter.time_zone.as_deref().unwrap_or("UTC");
        query_users!(
            select r#"
        from users
        where ($1::text is null or name = $1)
          and ($2::text is null or name ilike $2 escape '\')
          and ($3::text is null or name like $3 escape '\')
          and ($4::date is null or (created_at >= $4::date::timestamp at time zone $5
                                    and created_at < ($4::date + 1)::timestamp at time zone $5))
          and ($6 or deleted_at is null)
          and ($8::text is null or (name, id) > ($8, $9))
        order by name, id
        limit $7
        "#,
            filter.name,
            contains,
            starts,
            filter.created_on,
            time_zone,
            filter.include_deleted,
            limit,
            filter.after.as_ref().map(|k| k.name.as_str()),
            filter.after.as_ref().map(|k| k.id.as_uuid())
        )
        .fetch_all(db)
        .await
        .map_err(|e| Error::from_time_zone(e, time_zone))
    })
    .await
}
