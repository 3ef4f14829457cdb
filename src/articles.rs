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

/// An article without its body: what a result list shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArticleSummary {
    /// Primary key.
    pub id: ArticleId,
    /// The title.
    pub title: String,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
}

/// The newest articles without their `content`, the one heavy column.
///
/// Django: `Article.objects.defer('content')` — the seed defers `large_text_field` and
/// `avatar_data`, which its `User` does not have; `content` is this schema's large text field.
/// Rust has no lazily loaded fields, so a deferred read is a narrower struct.
///
/// SQL: `select id, title, created_at from articles order by created_at desc, id desc limit $1`.
///
/// # Errors
/// [`Error::InvalidInput`](crate::Error::InvalidInput) for a limit outside `1..=MAX_PER_PAGE`.
pub async fn list_summaries(
    db: impl sqlx::PgExecutor<'_>,
    limit: i64,
) -> crate::Result<Vec<ArticleSummary>> {
    let limit = crate::page::check_limit(limit)?;
    Ok(sqlx::query_as!(
        ArticleSummary,
        r#"
        select id as "id: ArticleId", title, created_at
        from articles
        order by created_at desc, id desc
        limit $1
        "#,
        limit
    )
    .fetch_all(db)
    .await?)
}
