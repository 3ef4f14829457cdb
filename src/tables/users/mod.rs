//! `users`: the seed's `User` model — its types, checks and reads here; writes (create, update,
//! hard and soft delete) in `writes`, filters in `filters`, ordering, pagination and
//! projections in `listing`, the prefetch in `prefetch`, all re-exported here.
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
//! **Reads that grow with the table are bounded.** Every listing is a page ([`UserQuery`],
//! [`filter`]'s `limit` and `after`) or a stream ([`stream_active`], [`stream_ids`],
//! [`stream_id_email`]: one chunk in memory, a dropped stream costs one chunk). The forms that
//! read every match into a `Vec` (`list_active`, `list_ids`, `list_id_email`, the name and date
//! filters) are deprecated, each naming its replacement.
//!
//! **Text filters.** [`UserFilter::name_contains`] (`icontains`) and
//! [`UserFilter::name_starts_with`] (`startswith`) escape `%`, `_` and `\` in the input, as
//! Django does, so they match themselves.
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
            $crate::tables::users::User,
            "select id, email, name, created_at, deleted_at " + $rest
            $(, $arg)*
        )
    };
    (returning $head:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::tables::users::User,
            $head + " returning id, email, name, created_at, deleted_at"
            $(, $arg)*
        )
    };
}
pub(crate) use query_users;

mod bulk;
mod filters;
mod listing;
mod paginate;
mod prefetch;
mod query;
mod stream;
mod writes;

pub use bulk::{copy_in, insert_many};
#[allow(deprecated)]
pub use filters::*;
#[allow(deprecated)]
pub use listing::*;
pub use paginate::*;
#[allow(deprecated)]
pub use prefetch::*;
pub use query::{DEFAULT_PER_PAGE, UserQuery};
pub use stream::{stream_active, stream_id_email, stream_ids};
pub use writes::*;

use crate::{Error, Result};

/// `unique (email)`.
pub const EMAIL_UNIQUE: &str = "users_email_key";
/// `check (email ~ '^[^@[:space:]]+@[^@[:space:]]+$')`.
pub const EMAIL_FORMAT: &str = "users_email_format";
/// Longest email Django's `EmailField` accepts (varchar(254)).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest name (varchar(100)), in characters.
pub const MAX_NAME_LEN: usize = 100;

pub use crate::ground::ids::UserId;

/// A row of `users`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
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
    let op = crate::ground::telemetry::op_span!("ledger.users.get", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
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
    let op = crate::ground::telemetry::op_span!("ledger.users.find_by_email", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
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
/// **Reads every live user into memory**: at a few million users that is an out-of-memory
/// kill. The same rows as a stream, one chunk in memory: [`stream_active`]; a page at a time:
/// [`UserQuery::keyset`].
///
/// # Errors
/// [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every live user into memory: use `users::stream_active`, or `UserQuery::keyset` a page at a time"
)]
pub async fn list_active(db: impl PgExecutor<'_>) -> Result<Vec<User>> {
    let op = crate::ground::telemetry::op_span!("ledger.users.list_active", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
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
