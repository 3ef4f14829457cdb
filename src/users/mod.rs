//! `users`: the seed's `User` model — create, read, update, hard and soft delete here; filters,
//! ordering, pagination and projections in `listing`, re-exported here.
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

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// `sqlx::query_as!(users::User, ...)` with the one list of the user columns: `select r#"from ..."#`
/// puts `select <columns>` before the rest of the query, `returning r#"insert ..."#` appends
/// `returning <columns>` to it. Still one checked query macro (sqlx joins literals with `+`).
macro_rules! query_users {
    (select $rest:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::users::User,
            "select id, email, name, created_at, deleted_at " + $rest
            $(, $arg)*
        )
    };
    (returning $head:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::users::User,
            $head + " returning id, email, name, created_at, deleted_at"
            $(, $arg)*
        )
    };
}
pub(crate) use query_users;

mod bulk;
mod deprecated;
mod listing;
mod paginate;
mod query;

pub use bulk::{copy_in, insert_many};
#[allow(deprecated)]
pub use deprecated::{get_page, list_keyset, list_slice, page};
pub use listing::*;
pub use paginate::*;
pub use query::{DEFAULT_PER_PAGE, UserQuery};

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
    /// `order_by('created_at')`: `order by created_at, id` (the same index, read backwards).
    OldestFirst,
}

/// Which users a listing shows.
///
/// Django's default manager shows every user, soft-deleted ones too; this crate's listings show
/// the live ones unless told otherwise. Every listing of [`users`](self) takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Visibility {
    /// Live users only: `User.objects.filter(deleted_at__isnull=True)`. The live listings'
    /// partial indexes serve it.
    #[default]
    Live,
    /// Every user, as Django's `User.objects` shows them. Reads without the partial indexes,
    /// which hold live users only.
    All,
}

impl Visibility {
    /// Whether soft-deleted users are shown: the `$n::bool` of `($n::bool or deleted_at is
    /// null)`, which PostgreSQL folds away when planning with the value, so a live listing keeps
    /// its partial index.
    pub(crate) fn shows_deleted(self) -> bool {
        self == Visibility::All
    }
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
    if email.contains('\0') {
        return bad("must not contain the character U+0000");
    }
    if email.chars().any(char::is_whitespace) {
        return bad("must not contain white space");
    }
    if email.chars().any(char::is_control) {
        return bad("must not contain control characters");
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
    let op = crate::telemetry::op_span!("ledger.users.insert", "INSERT", "users");
    crate::telemetry::traced(op, async move {
        user.validate()?;
        Ok(query_users!(
            returning r#"
        insert into users (email, name)
        values ($1, $2)
        "#,
            user.email,
            user.name
        )
        .fetch_one(db)
        .await?)
    })
    .await
}

/// The user with this id, live or soft-deleted.
///
/// Django: `User.objects.get(id='some-uuid')` (raises `DoesNotExist` if not found)
///
/// SQL: `select ... from users where id = $1` (primary key).
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): an index scan of `users_pkey`.
///
/// # Errors
/// [`Error::NotFound`] when there is no such user.
pub async fn get(db: impl PgExecutor<'_>, id: UserId) -> Result<User> {
    let op = crate::telemetry::op_span!("ledger.users.get", "SELECT", "users");
    crate::telemetry::traced(op, async move {
        query_users!(
            select r#"
        from users
        where id = $1
        "#,
            id.as_uuid()
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "user" })
    })
    .await
}

/// The user with this email, if any, live or soft-deleted.
///
/// Django: `User.objects.filter(email='ana@example.com').first()` (`None` if not found)
///
/// SQL: `select ... from users where email = $1` (the unique index).
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): an index scan of `users_email_key`.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn find_by_email(db: impl PgExecutor<'_>, email: &str) -> Result<Option<User>> {
    let op = crate::telemetry::op_span!("ledger.users.find_by_email", "SELECT", "users");
    crate::telemetry::traced(op, async move {
        Error::check_text("email", email)?;
        Ok(query_users!(
            select r#"
        from users
        where email = $1
        "#,
            email
        )
        .fetch_optional(db)
        .await?)
    })
    .await
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
    let op = crate::telemetry::op_span!("ledger.users.list_active", "SELECT", "users");
    crate::telemetry::traced(op, async move {
        Ok(query_users!(
            select r#"
        from users
        where deleted_at is null
        order by created_at, id
        "#
        )
        .fetch_all(db)
        .await?)
    })
    .await
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
    let op = crate::telemetry::op_span!("ledger.users.update_name", "UPDATE", "users");
    crate::telemetry::traced(op, async move {
        validate_name(name)?;
        query_users!(
            returning r#"
        update users
        set name = $2
        where id = $1
        "#,
            id.as_uuid(),
            name
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "user" })
    })
    .await
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
    let op = crate::telemetry::op_span!("ledger.users.save", "UPDATE", "users");
    crate::telemetry::traced(op, async move {
        validate_email(&user.email)?;
        validate_name(&user.name)?;
        query_users!(
            returning r#"
        update users
        set email = $2, name = $3, deleted_at = $4
        where id = $1
        "#,
            user.id.as_uuid(),
            user.email,
            user.name,
            user.deleted_at
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "user" })
    })
    .await
}

/// Deletes a user for good, unless accounts still refer to them.
///
/// Django: `User.objects.filter(id=user.id).delete()`, which raises `ProtectedError` for a user
/// with accounts (`on_delete=PROTECT`) before sending any SQL.
///
/// SQL: one statement that deletes only when no account refers to the user and says why not
/// otherwise: `with gone as (delete from users where id = $1 and not exists (select from
/// accounts where user_id = $1) returning id) select exists (select from users where id = $1),
/// (select count(*) from accounts where user_id = $1), (select count(*) from gone)`. No statement
/// fails, so a protected delete leaves the caller's transaction usable, as Django's does.
///
/// An account opened for the user by another transaction that commits while this statement runs
/// is still caught, by `accounts_user_id_fkey` (`on delete restrict`): that one case comes back
/// as [`Error::ForeignKeyViolation`], and the transaction is aborted.
///
/// # Errors
/// [`Error::NotFound`] for an unknown id; [`Error::Protected`] when the user owns accounts
/// (nothing deleted).
pub async fn delete(db: impl PgExecutor<'_>, id: UserId) -> Result<()> {
    let op = crate::telemetry::op_span!("ledger.users.delete", "DELETE", "users");
    crate::telemetry::traced(op, async move {
        let outcome = sqlx::query!(
            r#"
        with gone as (
            delete from users
            where id = $1 and not exists (select from accounts where user_id = $1)
            returning id
        )
        select exists (select from users where id = $1) as "found!",
               (select count(*) from accounts where user_id = $1) as "accounts!",
               (select count(*) from gone) as "deleted!"
        "#,
            id.as_uuid()
        )
        .fetch_one(db)
        .await?;
        match outcome {
            o if o.deleted > 0 => Ok(()),
            o if !o.found => Err(Error::NotFound { what: "user" }),
            o => Err(Error::Protected {
                what: "user",
                referenced_by: "accounts",
                count: o.accounts,
            }),
        }
    })
    .await
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
    let op = crate::telemetry::op_span!("ledger.users.soft_delete", "UPDATE", "users");
    crate::telemetry::traced(op, async move {
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
    })
    .await
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
    let op = crate::telemetry::op_span!("ledger.users.restore", "UPDATE", "users");
    crate::telemetry::traced(op, async move {
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
    })
    .await
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
