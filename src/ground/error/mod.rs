//! The crate's one error type.
//!
//! Every function returns [`Result<T>`](Result). Database errors are classified by SQLSTATE into the
//! variants callers branch on (a violated constraint carries its name, which is one of the
//! constants exported by the table modules); anything else keeps the original [`sqlx::Error`] as
//! its [`source`](std::error::Error::source).

use std::borrow::Cow;

use rust_decimal::Decimal;

use crate::ground::ids::AccountId;

mod classify;
mod text;

pub use classify::{Transient, sqlstate};
pub use text::report;
use text::{server_text, tls_text};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `ledger`.
///
/// Constraint violations carry the constraint's name; compare it with the constants the table
/// modules export (for example [`accounts::BALANCE_NON_NEGATIVE`](crate::accounts::BALANCE_NON_NEGATIVE)):
///
/// ```
/// use ledger::{Error, accounts};
///
/// fn explain(err: &Error) -> &'static str {
///     match err.constraint() {
///         Some(accounts::BALANCE_NON_NEGATIVE) => "a balance would go negative",
///         Some(_) => "another constraint",
///         None if err.is_retryable() => "try again",
///         None => "something else",
///     }
/// }
/// # assert_eq!(explain(&Error::NotFound { what: "user" }), "something else");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The row asked for does not exist (Django's `DoesNotExist`).
    #[error("{what} not found")]
    NotFound {
        /// What was looked up: "user", "account", ...
        what: &'static str,
    },

    /// Input was refused before anything was sent to the database.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field or argument.
        field: &'static str,
        /// Why it was refused.
        reason: Cow<'static, str>,
    },

    /// A `unique` constraint refused the write.
    #[error("unique constraint {constraint} violated")]
    UniqueViolation {
        /// The constraint's name.
        constraint: String,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },

    /// A `check` constraint refused the write.
    #[error("check constraint {constraint} violated")]
    CheckViolation {
        /// The constraint's name.
        constraint: String,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },

    /// A foreign key refused the write: a missing parent, or a protected row still referenced.
    #[error("foreign key {constraint} violated")]
    ForeignKeyViolation {
        /// The constraint's name.
        constraint: String,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },

    /// The row is still referred to by rows that protect it (Django's `ProtectedError`, raised
    /// before any SQL): nothing was deleted, and no statement failed, so the caller's transaction
    /// is still usable.
    #[error("{what} is protected: {count} {referenced_by} still refer to it")]
    Protected {
        /// What was to be deleted: "user".
        what: &'static str,
        /// What refers to it: "accounts".
        referenced_by: &'static str,
        /// How many rows refer to it.
        count: i64,
    },

    /// The connected role lacks a privilege the statement needs (SQLSTATE 42501): a read-only
    /// role that writes, a service role that runs a migration, a role with no grant on a table.
    /// The statement did nothing; in a unit of work the whole unit was rolled back. Not
    /// retryable (repeating it fails the same way until a grant changes) and the outcome is
    /// known: nothing was written.
    ///
    /// PostgreSQL names the object it refused (`object`), not the privilege; the operation that
    /// failed says which one it needed (a read needs `SELECT`, a movement `INSERT` and `UPDATE`,
    /// a migration `CREATE` on the schema). `ledger grants` prints the grants of a service role
    /// and a read-only role (see [`crate::grants`]).
    ///
    /// ```
    /// # use ledger::Error;
    /// fn advice(err: &Error) -> Option<String> {
    ///     match err {
    ///         Error::PermissionDenied { object, .. } => {
    ///             Some(format!("this role may not touch {object}: ask for the service role"))
    ///         }
    ///         _ => None,
    ///     }
    /// }
    /// ```
    #[error("{}", denied_text(object))]
    PermissionDenied {
        /// What the server refused, as it names it: `table users`, `schema public`,
        /// `function ledger_post`, `sequence users_id_seq`; for an action only an owner may
        /// take, `table users (only its owner may do this)`.
        object: String,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },

    /// The transaction could not be serialized (SQLSTATE 40001); the whole unit may be retried.
    #[error("serialization failure")]
    SerializationFailure(#[source] sqlx::Error),

    /// The transaction was chosen as a deadlock victim (SQLSTATE 40P01); it may be retried.
    #[error("deadlock detected")]
    Deadlock(#[source] sqlx::Error),

    /// The debited account holds less than the amount; nothing was written.
    #[error("insufficient funds in account {account}: balance {balance}, requested {requested}")]
    InsufficientFunds {
        /// The account that would go negative.
        account: AccountId,
        /// Its balance when it was locked.
        balance: Decimal,
        /// The amount asked for.
        requested: Decimal,
    },

    /// Money can move only in and out of `active` accounts; nothing was written.
    #[error("account {account} is {status}, not active")]
    AccountNotActive {
        /// The account.
        account: AccountId,
        /// Its status.
        status: String,
    },

    /// A transfer between accounts of different currencies; nothing was written.
    #[error("currency mismatch: {from_currency} to {to_currency}")]
    CurrencyMismatch {
        /// The debited account's currency.
        from_currency: String,
        /// The credited account's currency.
        to_currency: String,
    },

    /// An idempotency key was reused for a different movement or batch; nothing was written.
    #[error("idempotency key {key:?} was already used for a different movement")]
    IdempotencyConflict {
        /// The key.
        key: String,
    },

    /// One item of a batch was refused before anything was sent; nothing was written.
    #[error("invalid item {index} of the batch")]
    InvalidItem {
        /// The item's index in the input.
        index: usize,
        /// Why it was refused.
        #[source]
        source: Box<Error>,
    },

    /// The [`Poster`](crate::transactions::Poster) was closed before this movement was queued:
    /// nothing was written.
    #[error("the poster is closed")]
    PosterClosed,

    /// The [`Poster`](crate::transactions::Poster)'s queue stayed full for the whole of the
    /// submission's wait ([`PosterOptions::submit_timeout`](crate::transactions::PosterOptions::submit_timeout)):
    /// the movement was not queued, and nothing was written. Retryable: the same call later may
    /// find room.
    #[error("the poster's queue stayed full for {waited:?}: the movement was not queued")]
    PosterFull {
        /// How long the submission waited for room.
        waited: std::time::Duration,
    },

    /// The configuration (environment, `.env`, command line) is unusable.
    #[error("configuration: {0}")]
    Config(String),

    /// Reading or writing a file or stream failed.
    #[error("{what}")]
    Io {
        /// What was being done, e.g. "reading backup.ndjson".
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The private PostgreSQL cluster could not be found, created or started.
    #[error("local postgresql: {0}")]
    LocalCluster(String),

    /// `ledger adopt` cannot take this database over as it stands: a table or column of the seed
    /// is missing or has another type, or rows break rules that ledger enforces. Nothing was
    /// changed by the step that refused; the message says what to fix.
    #[error("cannot adopt: {0}")]
    NotAdoptable(String),

    /// Applying or reverting migrations failed. A migration refused for want of a privilege
    /// (run as a role that cannot change the schema) is [`Error::PermissionDenied`] instead.
    #[error("migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),

    /// The database's schema is not the one this build of ledger was made for
    /// ([`schema::check`](crate::schema::check)): migrations are pending (run `ledger migrate`, or
    /// [`schema::migrate`](crate::schema::migrate), as a release step), or applied migrations
    /// are unknown to this build (a newer release migrated the database). Nothing was written.
    #[error("{}", schema_text(pending, unknown))]
    SchemaMismatch {
        /// ledger's migrations the database does not have yet, in order.
        pending: Vec<i64>,
        /// Migrations the database has that this build does not know, in order.
        unknown: Vec<i64>,
    },

    /// The call failed for a reason outside the request (a lost connection, a cancelled
    /// statement, a server going down, an exhausted pool). Retry it: with an idempotency key the
    /// same call is always safe to repeat and returns the one result; without one, a write whose
    /// outcome is unknown ([`Error::outcome_unknown`]) may have been applied.
    #[error("{kind}")]
    Transient {
        /// What went wrong.
        kind: Transient,
        /// The database or connection error.
        #[source]
        source: sqlx::Error,
    },

    /// TLS to the server failed: the server offers none (`sslmode=require` and stronger), its
    /// certificate is not signed by a trusted root (`verify-ca`, `verify-full`; see `sslrootcert`),
    /// or it does not name the host (`verify-full`). The source says which. Not transient:
    /// retrying will not help until the configuration or the certificate changes. Built with the
    /// `tls-rustls` feature, a server certificate older than X.509 v3 (which psql and the default
    /// `tls` feature accept) is refused whatever the mode, and the text says so.
    #[error("{}", tls_text(.0))]
    Tls(#[source] sqlx::Error),

    /// Any other database or connection error. Its text is the server's message (or sqlx's,
    /// for a connection error) without sqlx's " at line N" (see [`report`]).
    #[error("database error: {}", server_text(.0))]
    Database(#[source] sqlx::Error),
}

impl Error {
    /// Refuses text that PostgreSQL cannot store or compare: the character U+0000 (the server
    /// would answer 22021 for `text`, 22P05 for `jsonb`, without naming the field).
    pub(crate) fn check_text(field: &'static str, text: &str) -> Result<()> {
        if text.contains('\0') {
            return Err(Error::invalid(
                field,
                "must not contain the character U+0000",
            ));
        }
        Ok(())
    }

    /// Builds an [`Error::InvalidInput`].
    pub fn invalid(field: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }

    /// Maps PostgreSQL's "time zone not recognized" (SQLSTATE 22023) for the zone the caller
    /// named to [`Error::InvalidInput`]; anything else converts as usual.
    pub(crate) fn from_time_zone(err: sqlx::Error, time_zone: &str) -> Self {
        let code = err.as_database_error().and_then(|d| d.code());
        if code.as_deref() == Some(sqlstate::INVALID_PARAMETER_VALUE) {
            return Error::invalid("time_zone", format!("unknown time zone {time_zone:?}"));
        }
        err.into()
    }

    /// The name of the violated constraint, for the three constraint variants.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            Error::UniqueViolation { constraint, .. }
            | Error::CheckViolation { constraint, .. }
            | Error::ForeignKeyViolation { constraint, .. } => Some(constraint),
            _ => None,
        }
    }

    /// Whether making the same call again may succeed: a serialization failure, a deadlock, or a
    /// [`Transient`] failure.
    ///
    /// The money movements already retry serialization failures and deadlocks themselves
    /// ([`MAX_ATTEMPTS`](crate::transactions::MAX_ATTEMPTS) times), so a caller sees those only
    /// when contention persists. **The rule for retrying a write**: with an idempotency key,
    /// repeating the same call is always safe and returns the one result, whether or not the
    /// first attempt was applied. Without a key, a write that failed with
    /// [`outcome_unknown`](Error::outcome_unknown) may have been applied, and repeating it may
    /// apply it twice.
    pub fn is_retryable(&self) -> bool {
        self.is_conflict() || self.is_transient() || matches!(self, Error::PosterFull { .. })
    }

    /// Whether the failure is [`Error::Transient`]: nothing to do with the request.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient { .. })
    }

    /// The kind of a [`Error::Transient`] failure.
    pub fn transient(&self) -> Option<Transient> {
        match self {
            Error::Transient { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether a write that failed this way may nevertheless have been applied: the connection
    /// or the server went away while the call was in flight. Only an idempotency key makes such
    /// a call safe to repeat.
    pub fn outcome_unknown(&self) -> bool {
        self.transient().is_some_and(Transient::outcome_unknown)
    }

    /// A serialization failure or deadlock: the server rolled the transaction back, and running
    /// the unit again on the same connection may succeed. The units of work retry these.
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self, Error::SerializationFailure(_) | Error::Deadlock(_))
    }

    /// The variant's name (a transient failure's kind), for logs and metrics labels:
    /// `"InvalidInput"`, `"UniqueViolation"`, `"ConnectionLost"`, ... Stable: a name never
    /// changes once released.
    ///
    /// ```
    /// let err = ledger::Error::invalid("email", "must hold one @");
    /// assert_eq!(err.kind_name(), "InvalidInput");
    /// ```
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "NotFound",
            Error::InvalidInput { .. } => "InvalidInput",
            Error::UniqueViolation { .. } => "UniqueViolation",
            Error::CheckViolation { .. } => "CheckViolation",
            Error::ForeignKeyViolation { .. } => "ForeignKeyViolation",
            Error::Protected { .. } => "Protected",
            Error::PermissionDenied { .. } => "PermissionDenied",
            Error::SerializationFailure(_) => "SerializationFailure",
            Error::Deadlock(_) => "Deadlock",
            Error::InsufficientFunds { .. } => "InsufficientFunds",
            Error::AccountNotActive { .. } => "AccountNotActive",
            Error::CurrencyMismatch { .. } => "CurrencyMismatch",
            Error::IdempotencyConflict { .. } => "IdempotencyConflict",
            Error::InvalidItem { .. } => "InvalidItem",
            Error::PosterClosed => "PosterClosed",
            Error::PosterFull { .. } => "PosterFull",
            Error::Config(_) => "Config",
            Error::Io { .. } => "Io",
            Error::LocalCluster(_) => "LocalCluster",
            Error::NotAdoptable(_) => "NotAdoptable",
            Error::Migrate(_) => "Migrate",
            Error::SchemaMismatch { .. } => "SchemaMismatch",
            Error::Transient { kind, .. } => match kind {
                Transient::ConnectionLost => "ConnectionLost",
                Transient::Cancelled => "Cancelled",
                Transient::LockTimeout => "LockTimeout",
                Transient::ServerUnavailable => "ServerUnavailable",
                Transient::PoolTimedOut => "PoolTimedOut",
                Transient::ReadOnly => "ReadOnly",
                Transient::NoMatchingServer => "NoMatchingServer",
            },
            Error::Tls(_) => "Tls",
            Error::Database(_) => "Database",
        }
    }

    /// The SQLSTATE code of the underlying database error, if there is one.
    pub fn sqlstate(&self) -> Option<String> {
        let source = match self {
            Error::UniqueViolation { source, .. }
            | Error::CheckViolation { source, .. }
            | Error::ForeignKeyViolation { source, .. }
            | Error::PermissionDenied { source, .. }
            | Error::SerializationFailure(source)
            | Error::Deadlock(source)
            | Error::Transient { source, .. }
            | Error::Tls(source)
            | Error::Database(source) => source,
            _ => return None,
        };
        source
            .as_database_error()
            .and_then(|db| db.code())
            .map(Cow::into_owned)
    }
}

/// [`Error::SchemaMismatch`]'s text: "the database schema does not match this build of ledger:
/// migrations 15, 16 pending (run `ledger migrate` as a release step)".
fn schema_text(pending: &[i64], unknown: &[i64]) -> String {
    let list = |versions: &[i64]| {
        let names: Vec<String> = versions.iter().map(i64::to_string).collect();
        names.join(", ")
    };
    let mut parts = Vec::new();
    if !pending.is_empty() {
        parts.push(format!(
            "migrations {} pending (run `ledger migrate` as a release step)",
            list(pending)
        ));
    }
    if !unknown.is_empty() {
        parts.push(format!(
            "migrations {} applied but unknown to this build (a newer release migrated it)",
            list(unknown)
        ));
    }
    format!(
        "the database schema does not match this build of ledger: {}",
        parts.join("; ")
    )
}

/// [`Error::PermissionDenied`]'s text: "permission denied for table users", or the server's
/// own message when it named no object.
fn denied_text(object: &str) -> String {
    if object.starts_with("permission denied") {
        object.to_owned()
    } else {
        format!("permission denied for {object}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_short_lowercase_and_without_period() {
        let errors = [
            Error::NotFound { what: "user" },
            Error::invalid("email", "must contain @"),
            Error::Config("bad port".into()),
            Error::SchemaMismatch {
                pending: vec![15, 16],
                unknown: vec![99],
            },
            Error::Database(sqlx::Error::RowNotFound),
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.ends_with('.'), "{text}");
            assert_eq!(text, text.to_lowercase(), "{text}");
        }
    }
}
