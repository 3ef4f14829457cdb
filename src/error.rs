//! The crate's one error type.
//!
//! Every function returns [`Result<T>`](Result). Database errors are classified by SQLSTATE into the
//! variants callers branch on (a violated constraint carries its name, which is one of the
//! constants exported by the table modules); anything else keeps the original [`sqlx::Error`] as
//! its [`source`](std::error::Error::source).

use std::borrow::Cow;

use rust_decimal::Decimal;

use crate::ids::{AccountId, ParseIdError};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// SQLSTATE codes this crate branches on, named after PostgreSQL's condition names (Appendix A of
/// the PostgreSQL manual), as `rust-postgres`' `SqlState` does.
pub mod sqlstate {
    /// `unique_violation`
    pub const UNIQUE_VIOLATION: &str = "23505";
    /// `check_violation`
    pub const CHECK_VIOLATION: &str = "23514";
    /// `foreign_key_violation`
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    /// `serialization_failure`
    pub const SERIALIZATION_FAILURE: &str = "40001";
    /// `deadlock_detected`
    pub const DEADLOCK_DETECTED: &str = "40P01";
    /// `invalid_parameter_value` (an unknown time zone, for one)
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    /// `insufficient_privilege` (a missing grant, or an action only the owner may take)
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    /// `duplicate_database`
    pub const DUPLICATE_DATABASE: &str = "42P04";
    /// `query_canceled` (`pg_cancel_backend`, `statement_timeout`)
    pub const QUERY_CANCELED: &str = "57014";
    /// `lock_not_available` (`lock_timeout`)
    pub const LOCK_NOT_AVAILABLE: &str = "55P03";
    /// `admin_shutdown` (`pg_terminate_backend`, a fast or smart shutdown)
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    /// `crash_shutdown` (another backend crashed, or an immediate shutdown)
    pub const CRASH_SHUTDOWN: &str = "57P02";
    /// `cannot_connect_now` (the server is starting up or recovering)
    pub const CANNOT_CONNECT_NOW: &str = "57P03";
    /// `read_only_sql_transaction` (a write on a standby, or in a read-only session)
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    /// Class 08, `connection_exception`: every code that starts with it.
    pub const CONNECTION_EXCEPTION_CLASS: &str = "08";
}

/// Why a call failed for a reason that says nothing about the request: see
/// [`Error::Transient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transient {
    /// The connection broke, or could not be opened: an I/O error, the server closed it
    /// (`pg_terminate_backend`, SQLSTATE 57P01), or a class 08 error. **The outcome of the call is
    /// unknown**: the server may have committed before the connection went.
    ConnectionLost,
    /// The statement was cancelled (57014: `pg_cancel_backend`, `statement_timeout`) or gave up
    /// waiting for a lock (55P03: `lock_timeout`). The unit of work was rolled back.
    Cancelled,
    /// The server is shutting down, crashed, or is still starting (57P02, 57P03). **The outcome
    /// is unknown** when this ends a call that had begun writing.
    ServerUnavailable,
    /// No pooled connection became free within the pool's acquire timeout: nothing was sent.
    PoolTimedOut,
    /// The server takes no writes (25006): a standby, or a primary that a failover has just
    /// demoted. Nothing was written. Through a multi-host configuration
    /// ([`hosts`](crate::hosts)) the pool replaces such a connection, so a repeat reaches the
    /// primary; on a connection to a replica taken on purpose it is the caller's mistake, and a
    /// repeat fails the same way.
    ReadOnly,
    /// A walk of the host list found servers, but none with the session asked for
    /// (`target_session_attrs`): during a failover, before a standby is promoted. Nothing was sent.
    NoMatchingServer,
}

impl Transient {
    /// Whether a write that failed this way may nevertheless have committed.
    pub fn outcome_unknown(self) -> bool {
        matches!(
            self,
            Transient::ConnectionLost | Transient::ServerUnavailable
        )
    }
}

impl std::fmt::Display for Transient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transient::ConnectionLost => "connection to the server failed",
            Transient::Cancelled => "statement cancelled",
            Transient::ServerUnavailable => "server unavailable",
            Transient::PoolTimedOut => "timed out waiting for a pooled connection",
            Transient::ReadOnly => "the server takes no writes (a standby)",
            Transient::NoMatchingServer => "no server in the host list has the session asked for",
        })
    }
}

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
    /// retrying will not help until the configuration or the certificate changes.
    #[error("tls with the server failed")]
    Tls(#[source] sqlx::Error),

    /// Any other database or connection error. Its text is the server's message (or sqlx's,
    /// for a connection error) without sqlx's " at line N" (see [`report`]).
    #[error("database error: {}", server_text(.0))]
    Database(#[source] sqlx::Error),
}

/// sqlx's text for an error, without the parts that mislead a reader: the server's message
/// alone for a server error (sqlx adds "error returned from database: " before it and
/// " at line N", the line of PostgreSQL's C source that raised it, after it).
fn server_text(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => without_source_line(&other.to_string()),
    }
}

/// An error and its sources on one line, each cause said once and without sqlx's " at line N"
/// (the line of PostgreSQL's C source that raised a server error, which reads as a line of the
/// caller's SQL): what to show a user or write to a log. The command line prints its errors so.
///
/// ```
/// let err = ledger::Config::from_url("postgres://[::1/db").unwrap_err();
/// assert_eq!(ledger::report(&err), "configuration: database URL: invalid IPv6 address");
/// ```
pub fn report(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = without_source_line(&err.to_string());
    let mut source = err.source();
    while let Some(s) = source {
        let cause = without_source_line(&s.to_string());
        // sqlx's errors print their source in their own text, and `Error::Database` prints the
        // server's message that its source prints after "error returned from database: ".
        let said = cause
            .strip_prefix("error returned from database: ")
            .unwrap_or(&cause);
        if !text.ends_with(said) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = s.source();
    }
    text
}

/// The text without every " at line N" that ends it or precedes a ':'.
fn without_source_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" at line ") {
        let after = &rest[at + " at line ".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let ends = after[digits..].is_empty() || after[digits..].starts_with(':');
        if digits > 0 && ends {
            out.push_str(&rest[..at]);
        } else {
            out.push_str(&rest[..at + " at line ".len() + digits]);
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
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
        self.is_conflict() || self.is_transient()
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
            Error::Config(_) => "Config",
            Error::Io { .. } => "Io",
            Error::LocalCluster(_) => "LocalCluster",
            Error::NotAdoptable(_) => "NotAdoptable",
            Error::Migrate(_) => "Migrate",
            Error::Transient { kind, .. } => match kind {
                Transient::ConnectionLost => "ConnectionLost",
                Transient::Cancelled => "Cancelled",
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

impl From<ParseIdError> for Error {
    fn from(err: ParseIdError) -> Self {
        Error::invalid("id", err.to_string())
    }
}

impl From<sqlx::Error> for Error {
    fn from(source: sqlx::Error) -> Self {
        if let Some(kind) = transient_kind(&source) {
            return Error::Transient { kind, source };
        }
        if is_tls_failure(&source) {
            return Error::Tls(source);
        }
        let Some(db) = source.as_database_error() else {
            return Error::Database(source);
        };
        let constraint = db.constraint().unwrap_or_default().to_owned();
        match db.code().as_deref() {
            Some(sqlstate::UNIQUE_VIOLATION) => Error::UniqueViolation { constraint, source },
            Some(sqlstate::CHECK_VIOLATION) => Error::CheckViolation { constraint, source },
            Some(sqlstate::FOREIGN_KEY_VIOLATION) => {
                Error::ForeignKeyViolation { constraint, source }
            }
            Some(sqlstate::SERIALIZATION_FAILURE) => Error::SerializationFailure(source),
            Some(sqlstate::DEADLOCK_DETECTED) => Error::Deadlock(source),
            Some(sqlstate::INSUFFICIENT_PRIVILEGE) => Error::PermissionDenied {
                object: refused_object(db.message()),
                source,
            },
            _ => Error::Database(source),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        use sqlx::migrate::MigrateError;
        let denied = |e: &sqlx::Error| {
            e.as_database_error()
                .is_some_and(|db| db.code().as_deref() == Some(sqlstate::INSUFFICIENT_PRIVILEGE))
        };
        match err {
            MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) if denied(&e) => {
                Error::from(e)
            }
            other => Error::Migrate(other),
        }
    }
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

/// The object of PostgreSQL's 42501 messages: "permission denied for table users" gives
/// `table users`, "must be owner of table users" gives `table users (only its owner may do
/// this)`; any other wording is kept whole.
fn refused_object(message: &str) -> String {
    if let Some(object) = message.strip_prefix("permission denied for ") {
        object.to_owned()
    } else if let Some(object) = message.strip_prefix("must be owner of ") {
        format!("{object} (only its owner may do this)")
    } else {
        message.to_owned()
    }
}

/// A refused TLS handshake: sqlx reports some as `Tls`, and rustls' certificate verdicts as an
/// I/O error of kind `InvalidData` (which nothing else on a PostgreSQL socket produces).
fn is_tls_failure(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    }
}

/// Classifies the failures that say nothing about the request.
fn transient_kind(err: &sqlx::Error) -> Option<Transient> {
    match err {
        sqlx::Error::Io(_) if is_tls_failure(err) => None,
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => Some(Transient::ConnectionLost),
        sqlx::Error::PoolTimedOut => Some(Transient::PoolTimedOut),
        sqlx::Error::Database(db) => match db.code().as_deref()? {
            sqlstate::QUERY_CANCELED | sqlstate::LOCK_NOT_AVAILABLE => Some(Transient::Cancelled),
            sqlstate::ADMIN_SHUTDOWN => Some(Transient::ConnectionLost),
            sqlstate::READ_ONLY_SQL_TRANSACTION => Some(Transient::ReadOnly),
            sqlstate::CRASH_SHUTDOWN | sqlstate::CANNOT_CONNECT_NOW => {
                Some(Transient::ServerUnavailable)
            }
            code if code.starts_with(sqlstate::CONNECTION_EXCEPTION_CLASS) => {
                Some(Transient::ConnectionLost)
            }
            _ => None,
        },
        _ => None,
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
            Error::Database(sqlx::Error::RowNotFound),
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.ends_with('.'), "{text}");
            assert_eq!(text, text.to_lowercase(), "{text}");
        }
    }

    #[test]
    fn refused_objects_are_read_from_postgresql_wording() {
        assert_eq!(
            refused_object("permission denied for table users"),
            "table users"
        );
        assert_eq!(
            refused_object("permission denied for schema public"),
            "schema public"
        );
        assert_eq!(
            refused_object("must be owner of table accounts"),
            "table accounts (only its owner may do this)"
        );
        assert_eq!(
            refused_object("permission denied to create role"),
            "permission denied to create role"
        );
    }

    #[test]
    fn pool_timeouts_and_io_errors_are_transient_and_have_no_constraint() {
        let err = Error::from(sqlx::Error::PoolTimedOut);
        assert_eq!(err.transient(), Some(Transient::PoolTimedOut));
        assert!(err.is_retryable());
        assert!(!err.outcome_unknown(), "nothing was sent");
        assert_eq!(err.constraint(), None);
        assert_eq!(err.sqlstate(), None);

        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let err = Error::from(sqlx::Error::Io(reset));
        assert_eq!(err.transient(), Some(Transient::ConnectionLost));
        assert!(err.outcome_unknown());
        assert_eq!(err.to_string(), "connection to the server failed");
    }

    #[test]
    fn a_refused_certificate_is_a_tls_error_not_a_lost_connection() {
        let refused = std::io::Error::new(std::io::ErrorKind::InvalidData, "UnknownIssuer");
        let err = Error::from(sqlx::Error::Io(refused));
        assert!(matches!(err, Error::Tls(_)), "{err:?}");
        assert!(!err.is_retryable() && !err.outcome_unknown());
        let err = Error::from(sqlx::Error::Tls("server does not support TLS".into()));
        assert!(matches!(err, Error::Tls(_)), "{err:?}");
    }

    #[test]
    fn other_non_database_errors_are_neither_transient_nor_retryable() {
        for source in [
            sqlx::Error::RowNotFound,
            sqlx::Error::PoolClosed,
            sqlx::Error::Protocol("garbage".into()),
        ] {
            let err = Error::from(source);
            assert!(matches!(err, Error::Database(_)), "{err:?}");
            assert!(!err.is_retryable() && !err.outcome_unknown(), "{err:?}");
        }
    }
}
