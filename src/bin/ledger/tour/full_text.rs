//! Full-text search: `SearchVector` filters and `SearchRank` ordering.

use std::io::Write;

use ledger::articles::{self, Language, NewArticle};
use sqlx::PgConnection;

use crate::table::Table;

use super::{ARTICLES, AnyResult, heading, step, value};

pub(super) async fn full_text(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Full-Text Search")?;
    for (title, content) in ARTICLES {
        articles::insert(&mut *conn, &NewArticle::new(title, content)).await?;
    }
    step(
        out,
        "Article.objects.annotate(search=SearchVector('title', 'content')).filter(search='database')",
        r#"articles::SearchQuery::new().language(Language::English).limit(10).search_titles(db, "database")  (stored tsvector, GIN)"#,
    )?;
    let mut t = Table::new(&["title"]);
    for a in articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search_titles(&mut *conn, "database")
        .await?
    {
        t.row(vec![a.title]);
    }
    t.print(out)?;
    step(
        out,
        "Article.objects.annotate(rank=SearchRank(vector, SearchQuery('postgres performance'))).filter(rank__gte=0.1).order_by('-rank')",
        r#"articles::SearchQuery::new().language(Language::English).limit(10).search(db, "postgres performance", 0.1)"#,
    )?;
    let mut t = Table::new(&["rank", "title", "snippet"]);
    for hit in articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search(
            &mut *conn,
            "postgres performance",
            articles::DEFAULT_MIN_RANK,
        )
        .await?
    {
        t.row(vec![format!("{:.3}", hit.rank), hit.title, hit.snippet]);
    }
    t.print(out)?;
    let hostile = "'; drop table articles; -- \"unclosed & | !";
    let safe = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search(&mut *conn, hostile, 0.0)
        .await?;
    value(
        out,
        format!(
            "hostile input {hostile:?} -> Ok({} hits), never an SQL error",
            safe.len()
        ),
    )?;
    Ok(())
}
