//! Typed ids: a `UserId` cannot be passed where an `AccountId` is expected.
//!
//! Every table's id newtype lives here, at the ground of the crate (each table module re-exports
//! its own), so that the error type and any module can name an id without importing a table.

use std::fmt;

/// A string that is not a UUID, given where an id was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIdError(String);

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a UUID: {:?}", self.0)
    }
}

impl std::error::Error for ParseIdError {}

/// Declares a `#[sqlx(transparent)]` UUID newtype.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new random (v4) id.
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4())
            }

            /// The bare UUID.
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(id: uuid::Uuid) -> Self {
                Self(id)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, ParseIdError> {
                uuid::Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| ParseIdError(s.to_owned()))
            }
        }
    };
}

id_type! {
    /// The id of a [`User`](crate::users::User).
    UserId
}

id_type! {
    /// The id of an [`Account`](crate::accounts::Account).
    AccountId
}

id_type! {
    /// The id of a [`LedgerEntry`](crate::transactions::LedgerEntry).
    EntryId
}

id_type! {
    /// The id of a [`Payment`](crate::payments::Payment).
    PaymentId
}

id_type! {
    /// The id of an [`Article`](crate::articles::Article).
    ArticleId
}
