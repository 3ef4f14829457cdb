//! The positional listings of the previous release (`search(db, query, language, min_rank,
//! after, limit)`), kept for one release as deprecated bridges to [`ArticleQuery`] and
//! [`SearchQuery`], which they call. Re-exported by [`articles`](super); removed in the next
//! release.

use sqlx::PgExecutor;

use super::{ArticleId, ArticleQuery, ArticleSummary, Language, SearchHit, SearchQuery};
use crate::Result;
use crate::page::Cursor;

/// The newest articles without their `content`, the one heavy column.
///
/// Django: `Article.objects.defer('content')` — the seed defers `large_text_field` and
///
/// SQL: see [`ArticleQuery::list_summaries`].
///
/// # Errors
/// As [`ArticleQuery::list_summaries`].
#[deprecated(
    since = "0.2.0",
    note = "use `ArticleQuery::new().after(after.copied()).limit(limit).list_summaries(db)`"
)]
pub async fn list_summaries(
    db: impl PgExecutor<'_>,
    after: Option<&Cursor<i64>>,
    limit: i64,
) -> Result<Vec<ArticleSummary>> {
    ArticleQuery::new()
        .after(after.copied())
        .limit(limit)
        .list_summaries(db)
        .await
}

/// Articles matching `query`, best first, without their bodies: ids, titles and ranks only.
///
/// Django: `Article.objects.annotate(search=SearchVector('title', 'content')).filter(search='database')`
///
/// SQL: see [`SearchQuery::search_titles`].
///
/// # Errors
/// As [`SearchQuery::search_titles`].
#[deprecated(
    since = "0.2.0",
    note = "use `SearchQuery::new().language(language).after(after).limit(limit).search_titles(db, query)`"
)]
pub async fn search_titles(
    db: impl PgExecutor<'_>,
    query: &str,
    language: Language,
    after: Option<ArticleId>,
    limit: i64,
) -> Result<Vec<ArticleSummary>> {
    SearchQuery::new()
        .language(language)
        .after(after)
        .limit(limit)
        .search_titles(db, query)
        .await
}

/// Weighted, ranked search with highlighted snippets: title matches (weight A) outrank body
/// matches (weight B); results below `min_rank` are dropped; ties are broken by id.
///
/// Django: `vector = SearchVector('title', weight='A') + SearchVector('content', weight='B')`;
///
/// SQL: see [`SearchQuery::search`].
///
/// # Errors
/// As [`SearchQuery::search`].
#[deprecated(
    since = "0.2.0",
    note = "use `SearchQuery::new().language(language).after(after).limit(limit).search(db, query, min_rank)`"
)]
pub async fn search(
    db: impl PgExecutor<'_>,
    query: &str,
    language: Language,
    min_rank: f32,
    after: Option<ArticleId>,
    limit: i64,
) -> Result<Vec<SearchHit>> {
    SearchQuery::new()
        .language(language)
        .after(after)
        .limit(limit)
        .search(db, query, min_rank)
        .await
}
