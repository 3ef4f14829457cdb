//! Listing users, live ones or all ([`Visibility`]): exact and pattern filters, the run-time
//! [`filter`], orderings and slices, keyset pages, projections, the prefetch of their accounts,
//! and the seed's raw-SQL balance question (Django's `Paginator` is in `paginate`). Re-exported by [`users`](super).
//!
//! Each listing takes a [`Visibility`]: live users (this crate's default) or all of them, as
//! Django's default manager shows. The SQL below is shown for live users; each query holds
//! `($n::bool or deleted_at is null)`, which PostgreSQL folds to `deleted_at is null` when it
//! plans with the value bound, so live listings keep their partial indexes (checked by
//! `tests/db/plans.rs`).

use std::collections::HashMap;
use std::ops::Range;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};

use super::{IdEmail, User, UserId, UserOrder, Visibility, escape_like};
use crate::accounts::Account;
use crate::page::{self, Cursor, Direction, KeysetPage};
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
/// # Errors
/// [`Error::Database`] only.
pub async fn list_by_name(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    name: &str,
) -> Result<Vec<User>> {
    let op = crate::telemetry::op_span!("ledger.users.list_by_name", "SELECT", "users");
    crate::telemetry::traced(op, async move {
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
/// # Errors
/// [`Error::Database`] only.
pub async fn list_name_contains(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    fragment: &str,
) -> Result<Vec<User>> {
    let op = crate::telemetry::op_span!("ledger.users.list_name_contains", "SELECT", "users");
    crate::telemetry::traced(op, async move {
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
/// # Errors
/// [`Error::Database`] only.
pub async fn list_name_starts_with(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    prefix: &str,
) -> Result<Vec<User>> {
    let op = crate::telemetry::op_span!("ledger.users.list_name_starts_with", "SELECT", "users");
    crate::telemetry::traced(op, async move {
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
/// # Errors
/// [`Error::InvalidInput`] for a time zone the server does not know.
pub async fn list_created_on(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    date: NaiveDate,
    time_zone: &str,
) -> Result<Vec<User>> {
    let op = crate::telemetry::op_span!("ledger.users.list_created_on", "SELECT", "users");
    crate::telemetry::traced(op, async move {
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
    let op = crate::telemetry::op_span!("ledger.users.filter", "SELECT", "users");
    crate::telemetry::traced(op, async move {
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
/// # Errors
/// [`Error::Database`] only.
pub async fn list_id_email(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
) -> Result<Vec<IdEmail>> {
    let op = crate::telemetry::op_span!("ledger.users.list_id_email", "SELECT", "users");
    crate::telemetry::traced(op, async move {
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
/// # Errors
/// [`Error::Database`] only.
pub async fn list_ids(db: impl PgExecutor<'_>, visibility: Visibility) -> Result<Vec<UserId>> {
    let op = crate::telemetry::op_span!("ledger.users.list_ids", "SELECT", "users");
    crate::telemetry::traced(op, async move {
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
    let op = crate::telemetry::op_span!("ledger.users.exists_with_email", "SELECT", "users");
    crate::telemetry::traced(op, async move {
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
    let op = crate::telemetry::op_span!("ledger.users.count_active", "SELECT", "users");
    crate::telemetry::traced(op, async move {
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
    let op = crate::telemetry::op_span!("ledger.users.count", "SELECT", "users");
    crate::telemetry::traced(op, async move {
        Ok(sqlx::query_scalar!(
            r#"select count(*) as "count!" from users where ($1::bool or deleted_at is null)"#,
            visibility.shows_deleted()
        )
        .fetch_one(db)
        .await?)
    })
    .await
}

/// A user with all their accounts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserWithAccounts {
    /// The user.
    pub user: User,
    /// Their accounts, by currency then id.
    pub accounts: Vec<Account>,
}

/// Every user (live ones, or all) with their accounts, in exactly two queries whatever the number
/// of users.
///
/// Django: `User.objects.prefetch_related('accounts')` (then `user.accounts.all()` costs no query)
///
/// SQL: the live users (`order by created_at, id`), then `select ... from accounts where user_id
/// = any($1)` with all their ids in one array parameter; the rows are grouped in Rust. Two
/// statements: pass a connection, or `&mut *tx` for one snapshot.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn list_with_accounts(
    conn: &mut PgConnection,
    visibility: Visibility,
) -> Result<Vec<UserWithAccounts>> {
    let op = crate::telemetry::op_span!("ledger.users.list_with_accounts", "SELECT", "users");
    crate::telemetry::traced(op, async move {
        let users = query_users!(
            select r#"
        from users
        where ($1::bool or deleted_at is null)
        order by created_at, id
        "#,
            visibility.shows_deleted()
        )
        .fetch_all(&mut *conn)
        .await?;
        let ids: Vec<uuid::Uuid> = users.iter().map(|u| u.id.as_uuid()).collect();
        let accounts = sqlx::query_as!(
            Account,
            r#"
        select id, user_id, balance, currency, status
        from accounts
        where user_id = any($1)
        order by currency, id
        "#,
            &ids
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut by_user: HashMap<UserId, Vec<Account>> = HashMap::with_capacity(users.len());
        for account in accounts {
            by_user.entry(account.user_id).or_default().push(account);
        }
        Ok(users
            .into_iter()
            .map(|user| UserWithAccounts {
                accounts: by_user.remove(&user.id).unwrap_or_default(),
                user,
            })
            .collect())
    })
    .await
}

/// Users (live ones, or all: [`Visibility`]) who hold more than `min` in at least one account,
/// mapped to [`User`].
///
/// Django: `User.objects.raw('SELECT * FROM users WHERE balance > %s', [1000])` — `users` has no
/// `balance` column (it is on `accounts`), so the seed's query fails as written; this is its
/// intent, with an explicit column list instead of `*`.
///
/// SQL: `select ... from users u where deleted_at is null and exists (select 1 from accounts a
/// where a.user_id = u.id and a.balance > $1) order by created_at, id`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn list_with_balance_over(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    min: Decimal,
) -> Result<Vec<User>> {
    let op = crate::telemetry::op_span!("ledger.users.list_with_balance_over", "SELECT", "users");
    crate::telemetry::traced(op, async move {
        Ok(sqlx::query_as!(
            User,
            r#"
        select u.id, u.email, u.name, u.created_at, u.deleted_at
        from users u
        where ($2::bool or u.deleted_at is null)
          and exists (select 1 from accounts a where a.user_id = u.id and a.balance > $1)
        order by u.created_at, u.id
        "#,
            min,
            visibility.shows_deleted()
        )
        .fetch_all(db)
        .await?)
    })
    .await
}
