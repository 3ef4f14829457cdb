//! `users`: the seed's `User` model — create, read, update, hard and soft delete, filters,
//! ordering, pagination and projections.
//!
//! Invariants: `email` is unique ([`EMAIL_UNIQUE`]) and shaped `local@domain` ([`EMAIL_FORMAT`],
//! and [`validate_email`] before any write); `name` is 1 to 100 characters; a user is *live*
//! while `deleted_at` is null.
//!
//! **Which reads see soft-deleted users.** Identity look-ups see every row: [`get`],
//! [`find_by_email`], [`exists_with_email`] (an email stays taken after a soft delete, since the
//! unique constraint still holds it). Everything that lists or counts users — the filters,
//! orderings, slices, pages, projections and [`count_active`] — sees live users only, as the
//! seed's `filter(deleted_at__isnull=True)` does.
//!
//! **Text filters.** [`list_name_contains`] (`icontains`) and [`list_name_starts_with`]
//! (`startswith`) escape `%`, `_` and `\` in the input, as Django does, so they match themselves.
//! `icontains` is `ILIKE`, whose case folding follows the database's `LC_CTYPE`: with a UTF-8
//! locale (the private cluster's is `C.UTF-8`) "GARCÍA" finds "Ana García"; a database created
//! with `LC_CTYPE=C` folds ASCII only.

use std::collections::HashMap;
use std::ops::Range;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};

mod bulk;

pub use bulk::{copy_in, insert_many};

use crate::accounts::{Account, AccountId};
use crate::page::{self, Cursor, Direction, KeysetPage, Page, Paginator};
use crate::{Error, Result};

/// `unique (email)`.
pub const EMAIL_UNIQUE: &str = "users_email_key";
/// `check (email ~ '^[^@[:space:]]+@[^@[:space:]]+$')`.
pub const EMAIL_FORMAT: &str = "users_email_format";
/// Longest email Django's `EmailField` accepts (varchar(254)).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest name (varchar(100)), in characters.
pub const MAX_NAME_LEN: usize = 100;

pub use crate::ids::UserId;

/// A row of `users`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    /// Primary key.
    pub id: UserId,
    /// Unique email address.
    pub email: String,
    /// Display name, 1 to 100 characters.
    pub name: String,
    /// When the row was created (Django's `auto_now_add`).
    pub created_at: DateTime<Utc>,
    /// When the user was soft-deleted; `None` while live.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Email address, validated by [`validate_email`].
    pub email: String,
    /// Display name, 1 to 100 characters.
    pub name: String,
}

impl NewUser {
    /// A new user with this email and name.
    pub fn new(email: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            name: name.into(),
        }
    }

    /// Checks the email and the name.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field.
    pub fn validate(&self) -> Result<()> {
        validate_email(&self.email)?;
        validate_name(&self.name)
    }
}

/// `values('id', 'email')`: the two columns, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IdEmail {
    /// The user's id.
    pub id: UserId,
    /// The user's email.
    pub email: String,
}

/// The orderings users can be listed in, each ending in a unique tie-breaker (`id`) so that
/// pages never repeat or skip a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserOrder {
    /// `order_by('name')`: `order by name, id`.
    #[default]
    NameAsc,
    /// `order_by('-created_at')`: `order by created_at desc, id desc`.
    NewestFirst,
}

/// Checks an email the way a form would before it reaches the database: one `@`, a non-empty
/// local part of at most 64 characters, a dotted domain of letters, digits and hyphens, no white
/// space, at most 254 characters in all.
///
/// ```
/// assert!(ledger::users::validate_email("ana@example.com").is_ok());
/// assert!(ledger::users::validate_email("ana@localhost").is_err());
/// assert!(ledger::users::validate_email(" ana@example.com").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] for the field `email`, saying what is wrong.
pub fn validate_email(email: &str) -> Result<()> {
    let bad = |reason: &'static str| Err(Error::invalid("email", reason));
    if email.is_empty() {
        return bad("must not be empty");
    }
    if email.chars().count() > MAX_EMAIL_LEN {
        return bad("must be at most 254 characters");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain white space");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return bad("must contain @");
    };
    if local.is_empty() || local.chars().count() > 64 || domain.contains('@') {
        return bad("must be local@domain with one @ and a local part of 1 to 64 characters");
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if !domain.contains('.') || !domain.split('.').all(label_ok) {
        return bad("must have a domain such as example.com");
    }
    Ok(())
}

/// Checks a name: not blank, at most 100 characters.
///
/// # Errors
/// [`Error::InvalidInput`] for the field `name`.
pub fn validate_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid("name", "must not be blank"));
    }
    if name.contains('\0') {
        return Err(Error::invalid(
            "name",
            "must not contain the character U+0000",
        ));
    }
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return Err(Error::invalid(
            "name",
            format!("must be at most {MAX_NAME_LEN} characters, not {len}"),
        ));
    }
    Ok(())
}

/// Creates a user.
///
/// Django: `User.objects.create(email='ana@example.com', name='Ana')`
///
/// SQL: one `insert into users ... returning` the whole row.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad email or name (nothing is sent);
/// [`Error::UniqueViolation`] with [`EMAIL_UNIQUE`] when the email is taken.
pub async fn insert(db: impl PgExecutor<'_>, user: &NewUser) -> Result<User> {
    user.validate()?;
    Ok(sqlx::query_as!(
        User,
        r#"
        insert into users (email, name)
        values ($1, $2)
        returning id as "id: UserId", email, name, created_at, deleted_at
        "#,
        user.email,
        user.name
    )
    .fetch_one(db)
    .await?)
}

/// The user with this id, live or soft-deleted.
///
/// Django: `User.objects.get(id='some-uuid')` (raises `DoesNotExist` if not found)
///
/// SQL: `select ... from users where id = $1` (primary key).
///
/// # Errors
/// [`Error::NotFound`] when there is no such user.
pub async fn get(db: impl PgExecutor<'_>, id: UserId) -> Result<User> {
    sqlx::query_as!(
        User,
        r#"
        select id as "id: UserId", email, name, created_at, deleted_at
        from users
        where id = $1
        "#,
        id.as_uuid()
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound { what: "user" })
}

/// The user with this email, if any, live or soft-deleted.
///
/// Django: `User.objects.filter(email='ana@example.com').first()` (`None` if not found)
///
/// SQL: `select ... from users where email = $1` (the unique index).
///
/// # Errors
/// [`Error::Database`] only.
pub async fn find_by_email(db: impl PgExecutor<'_>, email: &str) -> Result<Option<User>> {
    Ok(sqlx::query_as!(
        User,
        r#"
        select id as "id: UserId", email, name, created_at, deleted_at
        from users
        where email = $1
        "#,
        email
    )
    .fetch_optional(db)
    .await?)
}

/// Every live user, oldest first.
///
/// Django: `User.objects.filter(deleted_at__isnull=True)`, and
/// `User.objects.exclude(deleted_at__isnull=False)`, which is the same query.
///
/// SQL: `where deleted_at is null order by created_at, id`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn list_active(db: impl PgExecutor<'_>) -> Result<Vec<User>> {
    Ok(sqlx::query_as!(
        User,
        r#"
        select id as "id: UserId", email, name, created_at, deleted_at
        from users
        where deleted_at is null
        order by created_at, id
        "#
    )
    .fetch_all(db)
    .await?)
}

/// Renames a user and returns the updated row.
///
/// Django: `User.objects.filter(id=user.id).update(name='Ana García')`
///
/// SQL: one `update users set name = $2 where id = $1 returning` the row.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad name (nothing is sent); [`Error::NotFound`] for an unknown id.
pub async fn update_name(db: impl PgExecutor<'_>, id: UserId, name: &str) -> Result<User> {
    validate_name(name)?;
    sqlx::query_as!(
        User,
        r#"
        update users
        set name = $2
        where id = $1
        returning id as "id: UserId", email, name, created_at, deleted_at
        "#,
        id.as_uuid(),
        name
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound { what: "user" })
}

/// Writes every editable column of `user` (email, name, deleted_at) and returns the stored row.
/// `created_at` is Django's `auto_now_add`: never written after creation.
///
/// Django: `user.name = 'Ana García'; user.save()`
///
/// SQL: one `update users set email = $2, name = $3, deleted_at = $4 where id = $1 returning`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad email or name; [`Error::NotFound`] for an unknown id;
/// [`Error::UniqueViolation`] with [`EMAIL_UNIQUE`] when the new email is taken.
pub async fn save(db: impl PgExecutor<'_>, user: &User) -> Result<User> {
    validate_email(&user.email)?;
    validate_name(&user.name)?;
    sqlx::query_as!(
        User,
        r#"
        update users
        set email = $2, name = $3, deleted_at = $4
        where id = $1
        returning id as "id: UserId", email, name, created_at, deleted_at
        "#,
        user.id.as_uuid(),
        user.email,
        user.name,
        user.deleted_at
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound { what: "user" })
}

/// Deletes a user for good.
///
/// Django: `User.objects.filter(id=user.id).delete()`
///
/// SQL: `delete from users where id = $1`. A user who still owns accounts is protected
/// (`on delete restrict`, Django's `PROTECT`) and nothing is deleted.
///
/// # Errors
/// [`Error::NotFound`] for an unknown id; [`Error::ForeignKeyViolation`] with
/// [`accounts::USER_FKEY`](crate::accounts::USER_FKEY) when the user owns accounts.
pub async fn delete(db: impl PgExecutor<'_>, id: UserId) -> Result<()> {
    let done = sqlx::query!("delete from users where id = $1", id.as_uuid())
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound { what: "user" });
    }
    Ok(())
}

/// Soft-deletes a user and returns when it happened. Idempotent: a second call keeps the first
/// timestamp.
///
/// Django: `User.objects.filter(id=user.id).update(deleted_at=timezone.now())`
///
/// SQL: `update users set deleted_at = coalesce(deleted_at, now()) where id = $1 returning
/// deleted_at`.
///
/// # Errors
/// [`Error::NotFound`] for an unknown id.
pub async fn soft_delete(db: impl PgExecutor<'_>, id: UserId) -> Result<DateTime<Utc>> {
    sqlx::query_scalar!(
        r#"
        update users
        set deleted_at = coalesce(deleted_at, now())
        where id = $1
        returning deleted_at as "deleted_at!"
        "#,
        id.as_uuid()
    )
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound { what: "user" })
}

/// Undoes a soft delete (a no-op for a live user).
///
/// Django: `User.objects.filter(id=user.id).update(deleted_at=None)`
///
/// SQL: `update users set deleted_at = null where id = $1`.
///
/// # Errors
/// [`Error::NotFound`] for an unknown id.
pub async fn restore(db: impl PgExecutor<'_>, id: UserId) -> Result<()> {
    let done = sqlx::query!(
        "update users set deleted_at = null where id = $1",
        id.as_uuid()
    )
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound { what: "user" });
    }
    Ok(())
}

/// Live users with exactly this name.
///
/// Django: `User.objects.filter(name='Ana')`
///
/// SQL: `where name = $1 and deleted_at is null order by name, id` (index `users_live_name_id_idx`).
///
/// # Errors
/// [`Error::Database`] only.
pub async fn list_by_name(db: impl PgExecutor<'_>, name: &str) -> Result<Vec<User>> {
    Ok(sqlx::query_as!(
        User,
        r#"
        select id as "id: UserId", email, name, created_at, deleted_at
        from users
        where name = $1 and deleted_at is null
        order by name, id
        "#,
        name
    )
    .fetch_all(db)
    .await?)
}

/// Live users whose name contains `fragment`, ignoring case; `%`, `_` and `\` match themselves.
///
/// Django: `User.objects.filter(name__icontains='ana')`
///
/// SQL: `where name ilike '%' || <escaped fragment> || '%' escape '\' and deleted_at is null`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn list_name_contains(db: impl PgExecutor<'_>, fragment: &str) -> Result<Vec<User>> {
    let pattern = format!("%{}%", escape_like(fragment));
    Ok(sqlx::query_as!(
        User,
        r#"
        select id as "id: UserId", email, name, created_at, deleted_at
        from users
        where name ilike $1 escape '\' and deleted_at is null
        order by name, id
        "#,
        pattern
    )
    .fetch_all(db)
    .await?)
}

/// Live users whose name starts with `prefix`, case-sensitively; `%`, `_` and `\` match
/// themselves.
///
/// Django: `User.objects.filter(name__startswith='An')`
///
/// SQL: `where name like <escaped prefix> || '%' escape '\' and deleted_at is null`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn list_name_starts_with(db: impl PgExecutor<'_>, prefix: &str) -> Result<Vec<User>> {
    let pattern = format!("{}%", escape_like(prefix));
    Ok(sqlx::query_as!(
        User,
        r#"
        select id as "id: UserId", email, name, created_at, deleted_at
        from users
        where name like $1 escape '\' and deleted_at is null
        order by name, id
        "#,
        pattern
    )
    .fetch_all(db)
    .await?)
}

/// Live users created on `date` as a calendar in `time_zone` sees it (an IANA name such as
/// `"UTC"` or `"America/Bogota"`).
///
/// Django: `User.objects.filter(created_at__date=today)` (in the current time zone, UTC by default)
///
/// SQL: a half-open range the server computes once, so an index on `created_at` can serve it:
/// `created_at >= date::timestamp at time zone tz and created_at < (date + 1)::timestamp at time
/// zone tz` — 23 or 25 hours long on the days clocks change, as it should be.
///
/// # Errors
/// [`Error::InvalidInput`] for a time zone the server does not know.
pub async fn list_created_on(
    db: impl PgExecutor<'_>,
    date: NaiveDate,
    time_zone: &str,
) -> Result<Vec<User>> {
    sqlx::query_as!(
        User,
        r#"
        select id as "id: UserId", email, name, created_at, deleted_at
        from users
        where created_at >= $1::date::timestamp at time zone $2
          and created_at < ($1::date + 1)::timestamp at time zone $2
          and deleted_at is null
        order by created_at, id
        "#,
        date,
        time_zone
    )
    .fetch_all(db)
    .await
    .map_err(|e| Error::from_time_zone(e, time_zone))
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
/// # Errors
/// [`Error::InvalidInput`] for a bad limit or an unknown time zone.
pub async fn filter(db: impl PgExecutor<'_>, filter: &UserFilter) -> Result<Vec<User>> {
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
    sqlx::query_as!(
        User,
        r#"
        select id as "id: UserId", email, name, created_at, deleted_at
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
}

/// A slice of the live users in `order`: `0..10` is `[:10]`, `20..30` is `[20:30]`.
///
/// Django: `User.objects.order_by('name')[20:30]`, `User.objects.order_by('-created_at')[:10]`
///
/// SQL: `order by name, id` or `order by created_at desc, id desc`, then `limit $1 offset $2`.
///
/// # Errors
/// [`Error::InvalidInput`] for a negative start, an end before the start, or a slice longer than
/// [`page::MAX_PER_PAGE`].
pub async fn list_slice(
    db: impl PgExecutor<'_>,
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
    list_ordered(db, order, limit, range.start).await
}

async fn list_ordered(
    db: impl PgExecutor<'_>,
    order: UserOrder,
    limit: i64,
    offset: i64,
) -> Result<Vec<User>> {
    let rows = match order {
        UserOrder::NameAsc => {
            sqlx::query_as!(
                User,
                r#"
                select id as "id: UserId", email, name, created_at, deleted_at
                from users
                where deleted_at is null
                order by name, id
                limit $1 offset $2
                "#,
                limit,
                offset
            )
            .fetch_all(db)
            .await?
        }
        UserOrder::NewestFirst => {
            sqlx::query_as!(
                User,
                r#"
                select id as "id: UserId", email, name, created_at, deleted_at
                from users
                where deleted_at is null
                order by created_at desc, id desc
                limit $1 offset $2
                "#,
                limit,
                offset
            )
            .fetch_all(db)
            .await?
        }
    };
    Ok(rows)
}

/// A page of live users, Django's `Paginator` style: counts them, then reads the page with
/// `limit`/`offset`. `page` is user input, read leniently as Django's `get_page` does (not a
/// number → 1, out of range → the last page).
///
/// Django:
/// `paginator = Paginator(User.objects.filter(deleted_at__isnull=True), 20)`;
/// `page = paginator.get_page(request.GET.get('page', 1))`
///
/// SQL: `select count(*) from users where deleted_at is null`, then the ordered slice. Two
/// statements: pass a connection (or `&mut *tx` for one snapshot).
///
/// # Errors
/// [`Error::InvalidInput`] for a `per_page` outside `1..=MAX_PER_PAGE`.
pub async fn get_page(
    conn: &mut PgConnection,
    order: UserOrder,
    per_page: i64,
    page: &str,
) -> Result<Page<User>> {
    let paginator = Paginator::new(count_active(&mut *conn).await?, per_page)?;
    let spec = paginator.get_page(page);
    let items = list_ordered(&mut *conn, order, spec.limit(), spec.offset()).await?;
    Ok(Page { items, spec })
}

/// Page `number` of live users, strictly (Django's `paginator.page(n)`).
///
/// SQL: as [`get_page`].
///
/// # Errors
/// [`Error::InvalidInput`] for a page below 1 or past the last page, or a bad `per_page`.
pub async fn page(
    conn: &mut PgConnection,
    order: UserOrder,
    per_page: i64,
    number: i64,
) -> Result<Page<User>> {
    let paginator = Paginator::new(count_active(&mut *conn).await?, per_page)?;
    let spec = paginator.page(number)?;
    let items = list_ordered(&mut *conn, order, spec.limit(), spec.offset()).await?;
    Ok(Page { items, spec })
}

/// A keyset page of live users, newest first: the first page when `cursor` is `None`, else the
/// page after (or before) the cursor. Costs the same at any depth (index
/// `users_live_created_at_id_idx`); rows inserted between fetches never repeat or shift a page.
///
/// Django: no equivalent in the seed (its `Paginator` uses `OFFSET`).
///
/// SQL: `where deleted_at is null and (created_at, id) < ($1, $2) order by created_at desc, id
/// desc limit n + 1` (the extra row says whether another page exists); `>` and ascending order,
/// reversed, for the previous page.
///
/// ```no_run
/// # async fn walk(pool: sqlx::PgPool) -> ledger::Result<()> {
/// use ledger::{page::Cursor, users};
///
/// let first = users::list_keyset(&pool, None, 20).await?;
/// if let Some(next) = first.next {
///     let token = next.encode(); // hand it to the client ...
///     let cursor = Cursor::decode(&token)?; // ... and read it back, checked
///     let second = users::list_keyset(&pool, Some(&cursor), 20).await?;
/// #   let _ = second;
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] for a `limit` outside `1..=MAX_PER_PAGE`.
pub async fn list_keyset(
    db: impl PgExecutor<'_>,
    cursor: Option<&Cursor>,
    limit: i64,
) -> Result<KeysetPage<User>> {
    let limit = page::check_limit(limit)?;
    let fetch = limit + 1;
    let rows = match cursor {
        None => {
            sqlx::query_as!(
                User,
                r#"
                select id as "id: UserId", email, name, created_at, deleted_at
                from users
                where deleted_at is null
                order by created_at desc, id desc
                limit $1
                "#,
                fetch
            )
            .fetch_all(db)
            .await?
        }
        Some(c) if c.direction == Direction::Next => {
            sqlx::query_as!(
                User,
                r#"
                select id as "id: UserId", email, name, created_at, deleted_at
                from users
                where deleted_at is null and (created_at, id) < ($1, $2)
                order by created_at desc, id desc
                limit $3
                "#,
                c.created_at,
                c.id,
                fetch
            )
            .fetch_all(db)
            .await?
        }
        Some(c) => {
            sqlx::query_as!(
                User,
                r#"
                select id as "id: UserId", email, name, created_at, deleted_at
                from users
                where deleted_at is null and (created_at, id) > ($1, $2)
                order by created_at, id
                limit $3
                "#,
                c.created_at,
                c.id,
                fetch
            )
            .fetch_all(db)
            .await?
        }
    };
    Ok(page::keyset_page(rows, limit, cursor, |u| {
        (u.created_at, u.id.as_uuid())
    }))
}

/// The id and email of every live user, oldest first.
///
/// Django: `User.objects.values('id', 'email')`
///
/// SQL: `select id, email from users where deleted_at is null order by created_at, id`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn list_id_email(db: impl PgExecutor<'_>) -> Result<Vec<IdEmail>> {
    Ok(sqlx::query_as!(
        IdEmail,
        r#"
        select id as "id: UserId", email
        from users
        where deleted_at is null
        order by created_at, id
        "#
    )
    .fetch_all(db)
    .await?)
}

/// The ids of every live user, oldest first.
///
/// Django: `User.objects.values_list('id', flat=True)`
///
/// SQL: `select id from users where deleted_at is null order by created_at, id`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn list_ids(db: impl PgExecutor<'_>) -> Result<Vec<UserId>> {
    Ok(sqlx::query_scalar!(
        r#"
        select id as "id: UserId"
        from users
        where deleted_at is null
        order by created_at, id
        "#
    )
    .fetch_all(db)
    .await?)
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
    Ok(sqlx::query_scalar!(
        r#"select exists (select 1 from users where email = $1) as "exists!""#,
        email
    )
    .fetch_one(db)
    .await?)
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
    Ok(
        sqlx::query_scalar!(r#"select count(*) as "count!" from users where deleted_at is null"#)
            .fetch_one(db)
            .await?,
    )
}

/// A user with all their accounts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserWithAccounts {
    /// The user.
    pub user: User,
    /// Their accounts, by currency then id.
    pub accounts: Vec<Account>,
}

/// Every live user with their accounts, in exactly two queries whatever the number of users.
///
/// Django: `User.objects.prefetch_related('accounts')` (then `user.accounts.all()` costs no query)
///
/// SQL: the live users (`order by created_at, id`), then `select ... from accounts where user_id
/// = any($1)` with all their ids in one array parameter; the rows are grouped in Rust. Two
/// statements: pass a connection, or `&mut *tx` for one snapshot.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn list_with_accounts(conn: &mut PgConnection) -> Result<Vec<UserWithAccounts>> {
    let users = list_active(&mut *conn).await?;
    let ids: Vec<uuid::Uuid> = users.iter().map(|u| u.id.as_uuid()).collect();
    let accounts = sqlx::query_as!(
        Account,
        r#"
        select id as "id: AccountId", user_id as "user_id: UserId", balance, currency, status
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
}

/// Live users who hold more than `min` in at least one account, mapped to [`User`].
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
pub async fn list_with_balance_over(db: impl PgExecutor<'_>, min: Decimal) -> Result<Vec<User>> {
    Ok(sqlx::query_as!(
        User,
        r#"
        select u.id as "id: UserId", u.email, u.name, u.created_at, u.deleted_at
        from users u
        where u.deleted_at is null
          and exists (select 1 from accounts a where a.user_id = u.id and a.balance > $1)
        order by u.created_at, u.id
        "#,
        min
    )
    .fetch_all(db)
    .await?)
}

/// Escapes `\`, `%` and `_` so that they match themselves in a `like ... escape '\'` pattern.
pub fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(escape_like("100%_a\\b"), "100\\%\\_a\\\\b");
        assert_eq!(escape_like("García"), "García");
    }

    #[test]
    fn emails_are_checked_before_the_database() {
        for good in ["ana@example.com", "a.b+c@sub.example.co", "josé@bücher.de"] {
            assert!(validate_email(good).is_ok(), "{good}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", "b".repeat(250));
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@@example.com",
            "a@b@example.com",
            "ana@example",
            "ana@exa mple.com",
            " ana@example.com",
            "ana@-example.com",
            "ana@example..com",
            long_local.as_str(),
            long_total.as_str(),
        ] {
            assert!(
                matches!(
                    validate_email(bad),
                    Err(Error::InvalidInput { field: "email", .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_are_one_to_one_hundred_characters() {
        assert!(validate_name("Ana").is_ok());
        assert!(validate_name(&"é".repeat(100)).is_ok());
        assert!(validate_name(&"é".repeat(101)).is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("   ").is_err());
        assert!(validate_name("A\0na").is_err());
    }
}
