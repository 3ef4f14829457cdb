//! [`ArticleQuery`] (the newest articles, without their bodies) and [`SearchQuery`] (full-text
//! search): where a listing resumes, how many rows it returns and, for a search, its language,
//! as values with defaults. Re-exported by [`articles`](super).

use sqlx::PgExecutor;

use super::{ArticleId, ArticleSummary, Language, SearchHit};
use crate::tables::page::{self, Cursor, forward_query};
use crate::{Error, Result};

forward_query! {
    /// How the newest articles are listed: from where ([`after`](Self::after), a [`Cursor`] on
    /// `(created_at, id)`, newest first) and how many ([`limit`](Self::limit)).
    ///
    /// `#[non_exhaustive]`: a setting added later has a default, so code written today keeps
    /// compiling.
    ///
    /// ```no_run
    /// # async fn demo(pool: ledger::PgPool) -> ledger::Result<()> {
    /// use ledger::articles::ArticleQuery;
    ///
    /// // Django: Article.objects.defer('content').order_by('-created_at')[:10]
    /// let newest = ArticleQuery::new().limit(10).list_summaries(&pool).await?;
    /// # let _ = newest;
    /// # Ok(())
    /// # }
    /// ```
    pub struct ArticleQuery {
        after: Cursor<i64>, "Where the listing resumes: the previous page's last row (`None`, the default: from the newest).";
    }
}

forward_query! {
    /// How a full-text search reads: in which [`Language`] (default English), from where
    /// ([`after`](Self::after): the last article of the previous page, which is ranked again on
    /// the server) and how many ([`limit`](Self::limit)).
    ///
    /// `#[non_exhaustive]`: a setting added later has a default, so code written today keeps
    /// compiling.
    ///
    /// ```no_run
    /// # async fn demo(pool: ledger::PgPool) -> ledger::Result<()> {
    /// use ledger::articles::{Language, SearchQuery};
    ///
    /// // Django: Article.objects.annotate(search=SearchVector('title', 'content')).filter(search='database')
    /// let spanish = SearchQuery::new().language(Language::Spanish).limit(10);
    /// let titles = spanish.search_titles(&pool, "base de datos").await?;
    /// let hits = SearchQuery::new().search(&pool, "postgres performance", 0.1).await?;
    /// # let _ = (titles, hits);
    /// # Ok(())
    /// # }
    /// ```
    pub struct SearchQuery {
        after: ArticleId, "Where the search resumes: the previous page's last article (`None`, the default: from the best match).";
        language: Language = Language::English, "The text search configuration the articles were indexed with.";
    }
}

impl ArticleQuery {
    /// The newest articles without their `content`, the one heavy column.
    ///
    /// Django: `Article.objects.defer('content')` — the seed defers `large_text_field` and
    /// `avatar_data`, which its `User` does not have; `content` is this schema's large text field.
    /// Rust has no lazily loaded fields, so a deferred read is a narrower struct.
    ///
    /// SQL: `select id, title, created_at from articles order by created_at desc, id desc limit $1`
    /// (index `articles_created_at_id_idx`); with `after`, only the rows past it:
    /// `(created_at, id) < ($2, $3)`.
    ///
    /// Read to the end by passing [`ArticleQuery::after`] the last row of each page.
    ///
    /// Plan (100,000 rows, checked by `tests/db/plans.rs`): `articles_created_at_id_idx`; no sort.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a limit outside `1..=MAX_PER_PAGE`, or a `Previous` cursor.
    pub async fn list_summaries(&self, db: impl PgExecutor<'_>) -> Result<Vec<ArticleSummary>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.articles.list_summaries",
            "SELECT",
            "articles"
        );
        crate::ground::telemetry::traced(op, async move {
            let limit = page::check_limit(self.limit)?;
            let (after_at, after_id) = page::resume_after(self.after.as_ref())?;
            Ok(sqlx::query_as!(
                ArticleSummary,
                r#"
            select id, title, created_at
            from articles
            where (created_at, id) < (coalesce($2::timestamptz, 'infinity'),
                                      coalesce($3::bigint, 9223372036854775807))
            order by created_at desc, id desc
            limit $1
            "#,
                limit,
                after_at,
                after_id
            )
            .fetch_all(db)
            .await?)
        })
        .await
    }
}

impl SearchQuery {
    /// Articles matching `query`, best first, without their bodies: ids, titles and ranks only.
    ///
    /// Django: `Article.objects.annotate(search=SearchVector('title', 'content')).filter(search='database')`
    ///
    /// SQL: `where language = $2 and search @@ websearch_to_tsquery($2, $1) order by ts_rank desc, id
    /// limit $3` (GIN index). With `after` (the last article of the previous page), only the
    /// articles ranked below it, or ranked equal with a greater id; its rank is computed again on the
    /// server, so an article deleted between two pages ends the listing there.
    ///
    /// Plan (100,000 rows, checked by `tests/db/plans.rs`): `articles_search_gin_idx`, then a sort by
    /// rank.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit. Any query string is accepted.
    pub async fn search_titles(
        &self,
        db: impl PgExecutor<'_>,
        query: &str,
    ) -> Result<Vec<ArticleSummary>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.articles.search_titles",
            "SELECT",
            "articles"
        );
        crate::ground::telemetry::traced(op, async move {
            let limit = page::check_limit(self.limit)?;
            let query = searchable(query);
            Ok(sqlx::query_as!(
                ArticleSummary,
                r#"
            select a.id, a.title, a.created_at
            from articles a, websearch_to_tsquery($2::text::regconfig, $1) as q
            where a.language = $2::text::regconfig and a.search @@ q
              and ($4::bigint is null or exists (
                  select from articles l
                  where l.id = $4
                    and (ts_rank(a.search, q) < ts_rank(l.search, q)
                         or (ts_rank(a.search, q) = ts_rank(l.search, q) and a.id > l.id))))
            order by ts_rank(a.search, q) desc, a.id
            limit $3
            "#,
                query,
                self.language.as_str(),
                limit,
                self.after.map(|id| id.get())
            )
            .fetch_all(db)
            .await?)
        })
        .await
    }

    /// Weighted, ranked search with highlighted snippets: title matches (weight A) outrank body
    /// matches (weight B); results below `min_rank` are dropped; ties are broken by id.
    ///
    /// Django: `vector = SearchVector('title', weight='A') + SearchVector('content', weight='B')`;
    /// `Article.objects.annotate(rank=SearchRank(vector, SearchQuery('postgres performance')))
    /// .filter(rank__gte=0.1).order_by('-rank')`
    ///
    /// SQL: an inner query ranks and limits the matches (`search @@ websearch_to_tsquery`, GIN index,
    /// `ts_rank(search, q) >= $3`, `order by rank desc, id limit $4`); only those rows get
    /// `ts_headline`, which re-parses the body and is the expensive part. With `after` (the last hit
    /// of the previous page), only the hits ranked below it, or equal with a greater id, as in
    /// [`search_titles`](Self::search_titles).
    ///
    /// Plan (100,000 rows, checked by `tests/db/plans.rs`): `articles_search_gin_idx`, then a sort by
    /// rank.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit or a negative `min_rank`. Any query string is accepted:
    /// one without searchable words returns no rows.
    pub async fn search(
        &self,
        db: impl PgExecutor<'_>,
        query: &str,
        min_rank: f32,
    ) -> Result<Vec<SearchHit>> {
        let op = crate::ground::telemetry::op_span!("ledger.articles.search", "SELECT", "articles");
        crate::ground::telemetry::traced(op, async move {
            let limit = page::check_limit(self.limit)?;
            if min_rank.is_nan() || min_rank < 0.0 {
                return Err(Error::invalid("min_rank", "must be zero or more"));
            }
            let query = searchable(query);
            Ok(sqlx::query_as!(
                SearchHit,
                r#"
            select hit.id as "id!: ArticleId",
                   hit.title as "title!",
                   hit.rank as "rank!",
                   ts_headline(
                       hit.language, hit.content, hit.q,
                       'StartSel=<<, StopSel=>>, MaxFragments=2, MaxWords=18, MinWords=6'
                   ) as "snippet!"
            from (
                select a.id, a.title, a.content, a.language, q, ts_rank(a.search, q) as rank
                from articles a, websearch_to_tsquery($2::text::regconfig, $1) as q
                where a.language = $2::text::regconfig
                  and a.search @@ q
                  and ts_rank(a.search, q) >= $3
                  and ($5::bigint is null or exists (
                      select from articles l
                      where l.id = $5
                        and (ts_rank(a.search, q) < ts_rank(l.search, q)
                             or (ts_rank(a.search, q) = ts_rank(l.search, q) and a.id > l.id))))
                order by rank desc, a.id
                limit $4
            ) as hit
            order by hit.rank desc, hit.id
            "#,
                query,
                self.language.as_str(),
                min_rank,
                limit,
                self.after.map(|id| id.get())
            )
            .fetch_all(db)
            .await?)
        })
        .await
    }
}

/// The query text as PostgreSQL can take it: U+0000, which text cannot hold and no article
/// contains, is dropped; everything else is `websearch_to_tsquery`'s to read.
fn searchable(query: &str) -> String {
    query.replace('\0', " ")
}
