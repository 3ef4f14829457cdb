//! `users`: the seed's `User` model.
//!
//! Invariants: `email` is unique (constraint [`EMAIL_UNIQUE`]) and has the shape `local@domain`
//! ([`EMAIL_FORMAT`]); a user is *live* while `deleted_at` is null (soft delete).

use chrono::{DateTime, Utc};

use crate::ids::id_type;

/// `unique (email)`.
pub const EMAIL_UNIQUE: &str = "users_email_key";
/// `check (email ~ '^[^@[:space:]]+@[^@[:space:]]+$')`.
pub const EMAIL_FORMAT: &str = "users_email_format";

id_type! {
    /// The id of a [`User`].
    UserId
}

/// A row of `users`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    /// Primary key.
    pub id: UserId,
    /// Unique email address.
    pub email: String,
    /// Display name, at most 100 characters.
    pub name: String,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the user was soft-deleted; `None` while live.
    pub deleted_at: Option<DateTime<Utc>>,
}
