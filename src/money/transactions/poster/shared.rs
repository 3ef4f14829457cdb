//! The error every movement of a flush gets when the flush failed as a whole: a copy of the
//! flush's error per caller (an [`Error`] is not `Clone`), of the same kind, with the server's
//! SQLSTATE, constraint, table and message kept, so that a caller can match on it as on the
//! single call's.

use std::borrow::Cow;

use sqlx::error::{DatabaseError, ErrorKind};

use crate::Error;

/// A server error, copied: what [`DatabaseError`] tells of it.
#[derive(Debug)]
struct Copied {
    message: String,
    code: Option<String>,
    constraint: Option<String>,
    table: Option<String>,
    kind: Kind,
}

/// [`ErrorKind`], which is not `Clone`.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Unique,
    ForeignKey,
    NotNull,
    Check,
    Other,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the shared flush failed: {}", self.message)
    }
}

impl std::error::Error for Copied {}

impl DatabaseError for Copied {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.code.as_deref().map(Cow::Borrowed)
    }

    fn constraint(&self) -> Option<&str> {
        self.constraint.as_deref()
    }

    fn table(&self) -> Option<&str> {
        self.table.as_deref()
    }

    fn kind(&self) -> ErrorKind {
        match self.kind {
            Kind::Unique => ErrorKind::UniqueViolation,
            Kind::ForeignKey => ErrorKind::ForeignKeyViolation,
            Kind::NotNull => ErrorKind::NotNullViolation,
            Kind::Check => ErrorKind::CheckViolation,
            Kind::Other => ErrorKind::Other,
        }
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
}

/// `source` again: a server error with its SQLSTATE, constraint, table, message and kind; any
/// other (a lost connection, an I/O error) as text.
fn copy(source: &sqlx::Error) -> sqlx::Error {
    let Some(db) = source.as_database_error() else {
        return sqlx::Error::Protocol(format!("the shared flush failed: {source}"));
    };
    let kind = match db.kind() {
        ErrorKind::UniqueViolation => Kind::Unique,
        ErrorKind::ForeignKeyViolation => Kind::ForeignKey,
        ErrorKind::NotNullViolation => Kind::NotNull,
        ErrorKind::CheckViolation => Kind::Check,
        _ => Kind::Other,
    };
    sqlx::Error::Database(Box::new(Copied {
        message: db.message().to_owned(),
        code: db.code().map(Cow::into_owned),
        constraint: db.constraint().map(str::to_owned),
        table: db.table().map(str::to_owned),
        kind,
    }))
}

/// One caller's copy of `err`, the error of a flush that failed as a whole: the same variant (so
/// that [`Error::outcome_unknown`], [`Error::is_retryable`], [`Error::constraint`] and
/// [`Error::sqlstate`] answer as for the flush), with the server's error copied into it. An
/// error that holds no server error (none should end a flush) becomes [`Error::Database`] with
/// the flush's error in its text.
pub(super) fn shared(err: &Error) -> Error {
    match err {
        Error::UniqueViolation { constraint, source } => Error::UniqueViolation {
            constraint: constraint.clone(),
            source: copy(source),
        },
        Error::CheckViolation { constraint, source } => Error::CheckViolation {
            constraint: constraint.clone(),
            source: copy(source),
        },
        Error::ForeignKeyViolation { constraint, source } => Error::ForeignKeyViolation {
            constraint: constraint.clone(),
            source: copy(source),
        },
        Error::PermissionDenied { object, source } => Error::PermissionDenied {
            object: object.clone(),
            source: copy(source),
        },
        Error::SerializationFailure(source) => Error::SerializationFailure(copy(source)),
        Error::Deadlock(source) => Error::Deadlock(copy(source)),
        Error::Transient { kind, source } => Error::Transient {
            kind: *kind,
            source: copy(source),
        },
        Error::Tls(source) => Error::Tls(copy(source)),
        Error::Database(source) => Error::Database(copy(source)),
        other => Error::Database(sqlx::Error::Protocol(format!(
            "the shared flush failed: {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transient;

    #[test]
    fn a_flush_wide_failure_keeps_its_kind_for_every_movement() {
        let lost = Error::Transient {
            kind: Transient::ConnectionLost,
            source: sqlx::Error::WorkerCrashed,
        };
        let each = shared(&lost);
        assert!(each.outcome_unknown() && each.is_retryable(), "{each:?}");
        let deadlock = shared(&Error::Deadlock(sqlx::Error::PoolTimedOut));
        assert!(matches!(deadlock, Error::Deadlock(_)));
        let other = shared(&Error::NotFound { what: "account" });
        assert!(!other.is_retryable() && !other.outcome_unknown());
    }

    #[test]
    fn a_server_error_keeps_its_sqlstate_constraint_and_message() {
        let server = Copied {
            message: "new row violates check constraint \"c\"".into(),
            code: Some("23514".into()),
            constraint: Some("c".into()),
            table: Some("transactions".into()),
            kind: Kind::Check,
        };
        let flush = Error::CheckViolation {
            constraint: "c".into(),
            source: sqlx::Error::Database(Box::new(server)),
        };
        let each = shared(&flush);
        assert_eq!(each.constraint(), Some("c"));
        assert_eq!(each.sqlstate().as_deref(), Some("23514"));
        let Error::CheckViolation { source, .. } = &each else {
            panic!("{each:?}")
        };
        let db = source.as_database_error().unwrap();
        assert_eq!(db.table(), Some("transactions"));
        assert!(matches!(db.kind(), ErrorKind::CheckViolation));
        assert!(each.to_string().contains("check constraint c"), "{each}");
    }
}
