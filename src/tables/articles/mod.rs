//! `articles`: the `Article` model the seed searches but never defines, with weighted full-text
//! search.
//!
//! Defined as the smallest model its search examples need: a `title` (weight A in search), a
//! `content` body (weight B), `created_at`, and the text search configuration the article is
//! written in ([`Language`], english by default). Invariant: the title is not blank
//! ([`TITLE_NOT_BLANK`]; checked in Rust first, with its 200-character limit).
//!
//! **Search.** The seed's `SearchVector('title', weight='A') + SearchVector('content',
//! weight='B')` is computed per row per query, which no index can serve. Here it is a stored
//! generated `tsvector` column, `search`, kept current by PostgreSQL on every write and indexed
//! with GIN (`articles_search_gin_idx`). User input goes through `websearch_to_tsquery`, which
//! accepts any string — quotes, `&|!:*()`, SQL-looking text, an empty or punctuation-only string
//! — and never raises a syntax error: the worst case is an empty result.

mod bulk;
mod listing;

pub use bulk::insert_many;
pub use listing::{ArticleQuery, SearchQuery};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;

use crate::{Error, Result};

/// `check (title ~ '[^[:space:]]')`: not blank.
pub const TITLE_NOT_BLANK: &str = "articles_title_not_blank";
/// Longest title (varchar(200)), in characters.
pub const MAX_TITLE_LEN: usize = 200;
/// Largest body accepted, in bytes. The generated `search` column is a `tsvector`, which
/// PostgreSQL caps at 1 MiB (error 54000, "string is too long for tsvector"); a body of distinct
/// short words takes up to about 2.5 times its size there, so 256 KiB always fits.
pub const MAX_CONTENT_BYTES: usize = 256 * 1024;
/// The seed's `rank__gte=0.1`.
pub const DEFAULT_MIN_RANK: f32 = 0.1;

pub use crate::ground::ids::ArticleId;

/// A PostgreSQL text search configuration: how an article's words are split and stemmed.
/// These are the configurations every PostgreSQL installation ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Language {
    /// No stemming, no stop words.
    Simple,
    /// The default.
    #[default]
    English,
    /// Spanish.
    Spanish,
    /// French.
    French,
    /// German.
    German,
    /// Portuguese.
    Portuguese,
    /// Italian.
    Italian,
    /// Dutch.
    Dutch,
    /// Russian.
    Russian,
}

impl Language {
    /// The configuration's name in PostgreSQL.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Simple => "simple",
            Language::English => "english",
            Language::Spanish => "spanish",
            Language::French => "french",
            Language::German => "german",
            Language::Portuguese => "portuguese",
            Language::Italian => "italian",
            Language::Dutch => "dutch",
            Language::Russian => "russian",
        }
    }
}

/// A row of `articles` (without the generated `search` vector, which has no Rust type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    /// Primary key.
    pub id: ArticleId,
    /// 1 to 200 characters, not blank.
    pub title: String,
    /// The body.
    pub content: String,
    /// The text search configuration the article is written in.
    pub language: Language,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
}

/// An article to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArticle {
    /// 1 to 200 characters, not blank.
    pub title: String,
    /// The body.
    pub content: String,
    /// The text search configuration (english by default).
    pub language: Language,
}

impl NewArticle {
    /// An English article.
    pub fn new(title: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            content: content.into(),
            language: Language::English,
        }
    }

    /// Sets the language.
    pub fn language(mut self, language: Language) -> Self {
        self.language = language;
        self
    }
}

/// An article without its body: what a result list shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArticleSummary {
    /// Primary key.
    pub id: ArticleId,
    /// The title.
    pub title: String,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// The article.
    pub id: ArticleId,
    /// Its title.
    pub title: String,
    /// `ts_rank` of the weighted vector against the query (a `real`).
    pub rank: f32,
    /// Up to two fragments of the body with the matches between `<<` and `>>` (`ts_headline`).
    pub snippet: String,
}

fn validate_content(content: &str) -> Result<()> {
    if content.contains('\0') {
        return Err(Error::invalid(
            "content",
            "must not contain the character U+0000",
        ));
    }
    if content.len() > MAX_CONTENT_BYTES {
        return Err(Error::invalid(
            "content",
            format!(
                "is {} bytes; at most {MAX_CONTENT_BYTES} fit the search index",
                content.len()
            ),
        ));
    }
    Ok(())
}

/// Checks a title: not blank, at most 200 characters, no U+0000 (PostgreSQL text cannot hold
/// it).
///
/// # Errors
/// [`Error::InvalidInput`] for the field `title`.
pub fn validate_title(title: &str) -> Result<()> {
    if title.trim().is_empty() {
        return Err(Error::invalid("title", "must not be blank"));
    }
    if title.contains('\0') {
        return Err(Error::invalid(
            "title",
            "must not contain the character U+0000",
        ));
    }
    if title.chars().count() > MAX_TITLE_LEN {
        return Err(Error::invalid(
            "title",
            format!("must be at most {MAX_TITLE_LEN} characters"),
        ));
    }
    Ok(())
}

/// Creates an article; its search vector is computed by the database.
///
/// Django: `Article.objects.create(title=..., content=...)`
///
/// SQL: `insert into articles (title, content, language) values ($1, $2, $3::regconfig)
/// returning ...` (the generated `search` column is filled in by PostgreSQL).
///
/// # Errors
/// [`Error::InvalidInput`] for a blank or over-long title (nothing is sent).
pub async fn insert(db: impl PgExecutor<'_>, article: &NewArticle) -> Result<Article> {
    let op = crate::ground::telemetry::op_span!("ledger.articles.insert", "INSERT", "articles");
    crate::ground::telemetry::traced(op, async move {
        validate_title(&article.title)?;
        validate_content(&article.content)?;
        Ok(sqlx::query_as!(
            Article,
            r#"
        insert into articles (title, content, language)
        values ($1, $2, $3::text::regconfig)
        returning id, title, content,
                  language::text as "language!: Language", created_at
        "#,
            article.title,
            article.content,
            article.language.as_str()
        )
        .fetch_one(db)
        .await?)
    })
    .await
}

/// The article with this id.
///
/// Django: `Article.objects.get(id=...)`
///
/// SQL: `select ... from articles where id = $1`.
///
/// # Errors
/// [`Error::NotFound`] when there is no such article.
pub async fn get(db: impl PgExecutor<'_>, id: ArticleId) -> Result<Article> {
    let op = crate::ground::telemetry::op_span!("ledger.articles.get", "SELECT", "articles");
    crate::ground::telemetry::traced(op, async move {
        sqlx::query_as!(
            Article,
            r#"
        select id, title, content,
               language::text as "language!: Language", created_at
        from articles
        where id = $1
        "#,
            id.get()
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "article" })
    })
    .await
}

/// Replaces an article's title and body; the search vector follows.
///
/// Django: `Article.objects.filter(id=...).update(title=..., content=...)`
///
/// SQL: `update articles set title = $2, content = $3 where id = $1 returning ...`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad title (nothing is sent); [`Error::NotFound`] for an unknown
/// id.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: ArticleId,
    title: &str,
    content: &str,
) -> Result<Article> {
    let op = crate::ground::telemetry::op_span!("ledger.articles.update", "UPDATE", "articles");
    crate::ground::telemetry::traced(op, async move {
        validate_title(title)?;
        validate_content(content)?;
        sqlx::query_as!(
            Article,
            r#"
        update articles
        set title = $2, content = $3
        where id = $1
        returning id, title, content,
                  language::text as "language!: Language", created_at
        "#,
            id.get(),
            title,
            content
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "article" })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_not_blank_and_at_most_200_characters() {
        assert!(validate_title("Postgres performance").is_ok());
        assert!(validate_title(&"é".repeat(200)).is_ok());
        for bad in ["", "  ", "\t\n", &"x".repeat(201)] {
            assert!(validate_title(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn language_names_match_postgres_configurations() {
        assert_eq!(Language::default().as_str(), "english");
        assert_eq!(
            serde_json::to_value(Language::Spanish).unwrap(),
            serde_json::json!("spanish")
        );
    }
}
