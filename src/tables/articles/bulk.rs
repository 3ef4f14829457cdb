//! Bulk writes of articles.

use sqlx::{Acquire, PgConnection};

use super::{Article, Language, NewArticle, validate_content, validate_title};
use crate::Result;
use crate::tables::bulk::{self, BulkInserted, BulkOptions};

/// Creates many articles, one `insert ... select ... from unnest(...)` per chunk, all or nothing;
/// PostgreSQL computes each search vector. (Articles have no unique column but their generated
/// id, so there is nothing to skip: [`BulkOptions::on_conflict`] does not apply.)
///
/// Django: `Article.objects.bulk_create([Article(title=..., content=...), ...])`
///
/// SQL: first `select nextval(pg_get_serial_sequence('articles', 'id')) from generate_series(1,
/// $1)` reserves one id per article (each returned row is matched to its input by id); then per
/// chunk, `insert into articles (id, title, content, language) select id, title, content,
/// language::regconfig from unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) returning
/// ...`.
///
/// # Errors
/// [`Error::InvalidItem`](crate::Error::InvalidItem) naming the first bad article. Nothing is
/// written on any error.
pub async fn insert_many(
    conn: &mut PgConnection,
    articles: &[NewArticle],
    options: BulkOptions,
) -> Result<BulkInserted<Article>> {
    let op =
        crate::ground::telemetry::op_span!("ledger.articles.insert_many", "INSERT", "articles");
    crate::ground::telemetry::traced(op, async move {
        bulk::validate_all(articles, |a| {
            validate_title(&a.title)?;
            validate_content(&a.content)
        })?;
        let chunk_size = options.checked_chunk_size()?;
        let count = i32::try_from(articles.len())
            .map_err(|_| crate::Error::invalid("articles", "more than 2^31 in one call"))?;
        let mut tx = conn.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar!(
            r#"
        select nextval(pg_get_serial_sequence('articles', 'id')) as "id!"
        from generate_series(1, $1::int)
        "#,
            count
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut rows = Vec::with_capacity(articles.len());
        for (chunk, chunk_ids) in articles.chunks(chunk_size).zip(ids.chunks(chunk_size)) {
            let titles: Vec<&str> = chunk.iter().map(|a| a.title.as_str()).collect();
            let contents: Vec<&str> = chunk.iter().map(|a| a.content.as_str()).collect();
            let languages: Vec<&str> = chunk.iter().map(|a| a.language.as_str()).collect();
            rows.extend(
                sqlx::query_as!(
                    Article,
                    r#"
                insert into articles (id, title, content, language)
                select id, title, content, language::regconfig
                from unnest($1::bigint[], $2::text[], $3::text[], $4::text[])
                    as input(id, title, content, language)
                returning id, title, content,
                          language::text as "language!: Language", created_at
                "#,
                    chunk_ids,
                    &titles as &[&str],
                    &contents as &[&str],
                    &languages as &[&str]
                )
                .fetch_all(&mut *tx)
                .await?,
            );
        }
        tx.commit().await?;
        Ok(bulk::align(&ids, rows, |a| a.id.get()))
    })
    .await
}
