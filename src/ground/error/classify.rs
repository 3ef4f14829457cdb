//! How a failure is classified: the SQLSTATE codes the crate branches on, the [`Transient`]
//! kinds, and the conversions from sqlx's errors that pick an [`Error`] variant.

use crate::ground::ids::ParseIdError;

use super::Error;

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
    /// The statement was cancelled (57014: `pg_cancel_backend`, `statement_timeout`). The unit
    /// of work was rolled back.
    Cancelled,
    /// The statement gave up waiting for a row or table lock that another transaction holds
    /// (55P03: `lock_timeout`, [`Timeouts::lock`](crate::config::Timeouts::lock)). The unit of
    /// work was rolled back: nothing was written, and the same call may succeed once the holder
    /// is done.
    LockTimeout,
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
            Transient::LockTimeout => "timed out waiting for a lock (lock_timeout)",
            Transient::ServerUnavailable => "server unavailable",
            Transient::PoolTimedOut => "timed out waiting for a pooled connection",
            Transient::ReadOnly => "the server takes no writes (a standby)",
            Transient::NoMatchingServer => "no server in the host list has the session asked for",
        })
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
            sqlstate::QUERY_CANCELED => Some(Transient::Cancelled),
            sqlstate::LOCK_NOT_AVAILABLE => Some(Transient::LockTimeout),
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
