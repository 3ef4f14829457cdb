//! `articles`: the `Article` model the seed searches but never defines.
//!
//! Defined as the smallest model its search examples need: a `title` (weight A in search) and a
//! `content` body (weight B), plus `created_at`. Invariant: the title is not blank
//! ([`TITLE_NOT_BLANK`]).

use chrono::{DateTime, Utc};

use crate::ids::id_type;

/// `check (title ~ '[^[:space:]]')`: not blank.
pub const TITLE_NOT_BLANK: &str = "articles_title_not_blank";

id_type! {
    /// The id of an [`Article`].
    ArticleId
}

/// A row of `articles`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Article {
    /// Primary key.
    pub id: ArticleId,
    /// At most 200 characters, not blank.
    pub title: String,
    /// The body.
    pub content: String,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
}
