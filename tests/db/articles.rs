//! `ledger::articles`: CRUD, the `defer` listing, weighted full-text search.

use ledger::Error;
use ledger::articles::{self, ArticleId, Language, NewArticle};
use serde_json::Value;
use sqlx::PgPool;

async fn article_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar!(r#"select count(*) as "n!" from articles"#)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn corpus(pool: &PgPool) -> (ArticleId, ArticleId, ArticleId) {
    let in_title = articles::insert(
        pool,
        &NewArticle::new(
            "Postgres performance tuning",
            "Indexes, vacuum and the planner: a practical guide to a faster database.",
        ),
    )
    .await
    .unwrap();
    let in_body = articles::insert(
        pool,
        &NewArticle::new(
            "Notes from a conference",
            "Many talks were about cooking. One covered postgres and its performance under load.",
        ),
    )
    .await
    .unwrap();
    let other = articles::insert(
        pool,
        &NewArticle::new("Gardening", "Tomatoes need sun and water."),
    )
    .await
    .unwrap();
    (in_title.id, in_body.id, other.id)
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn insert_get_update_and_the_deferred_listing(pool: PgPool) {
    let a = articles::insert(&pool, &NewArticle::new("First", "body one"))
        .await
        .unwrap();
    assert_eq!((a.title.as_str(), a.language), ("First", Language::English));
    assert_eq!(articles::get(&pool, a.id).await.unwrap(), a);

    let updated = articles::update(&pool, a.id, "First, revised", "databases everywhere")
        .await
        .unwrap();
    assert_eq!(updated.title, "First, revised");
    // The generated search vector followed the update.
    let found = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search_titles(&pool, "databases")
        .await
        .unwrap();
    assert_eq!(found.iter().map(|s| s.id).collect::<Vec<_>>(), [a.id]);

    let listed = articles::ArticleQuery::new()
        .limit(10)
        .list_summaries(&pool)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].title, "First, revised");
    assert!(matches!(
        articles::get(&pool, ArticleId(i64::MAX)).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        articles::update(&pool, ArticleId(i64::MAX), "x", "y").await,
        Err(Error::NotFound { .. })
    ));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn bad_titles_and_bodies_are_refused_and_nothing_is_written(pool: PgPool) {
    let long = "t".repeat(201);
    for (title, content, field) in [
        ("", "body", "title"),
        ("   ", "body", "title"),
        (long.as_str(), "body", "title"),
        ("nul\0", "body", "title"),
        ("fine", "nul \0 inside", "content"),
    ] {
        let err = articles::insert(&pool, &NewArticle::new(title, content))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { field: f, .. } if f == field),
            "{err:?}"
        );
    }
    assert_eq!(article_count(&pool).await, 0);

    let a = articles::insert(&pool, &NewArticle::new("Kept", "as is"))
        .await
        .unwrap();
    assert!(articles::update(&pool, a.id, " ", "x").await.is_err());
    assert_eq!(articles::get(&pool, a.id).await.unwrap(), a);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn title_matches_outrank_body_matches_and_the_threshold_cuts(pool: PgPool) {
    let (in_title, in_body, _) = corpus(&pool).await;
    let hits = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search(&pool, "postgres performance", 0.0)
        .await
        .unwrap();
    assert_eq!(
        hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        [in_title, in_body]
    );
    assert!(
        hits[0].rank > hits[1].rank,
        "weight A beats weight B: {hits:?}"
    );
    assert!(
        hits[1].snippet.contains("<<postgres>>"),
        "{}",
        hits[1].snippet
    );

    let between = (hits[0].rank + hits[1].rank) / 2.0;
    let strict = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search(&pool, "postgres performance", between)
        .await
        .unwrap();
    assert_eq!(strict.iter().map(|h| h.id).collect::<Vec<_>>(), [in_title]);
    // Stemming: "tuned" finds "tuning".
    let stemmed = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search(&pool, "tuned", 0.0)
        .await
        .unwrap();
    assert_eq!(stemmed.iter().map(|h| h.id).collect::<Vec<_>>(), [in_title]);
    // websearch syntax: a quoted phrase, and exclusion.
    let phrase = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search(&pool, r#""performance tuning""#, 0.0)
        .await
        .unwrap();
    assert_eq!(phrase.len(), 1);
    let without = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search(&pool, "postgres -cooking", 0.0)
        .await
        .unwrap();
    assert_eq!(without.iter().map(|h| h.id).collect::<Vec<_>>(), [in_title]);
    assert!(matches!(
        articles::SearchQuery::new()
            .language(Language::English)
            .limit(10)
            .search(&pool, "x", -1.0)
            .await,
        Err(Error::InvalidInput {
            field: "min_rank",
            ..
        })
    ));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn hostile_search_strings_never_raise_an_error(pool: PgPool) {
    corpus(&pool).await;
    let long = "postgres ".repeat(2_000);
    let hostile = [
        "",
        "   ",
        "!!!",
        "&|!:*()",
        "'",
        "\"",
        "\"unclosed phrase",
        "postgres & | ! performance",
        "a:*",
        "(postgres",
        "'; drop table articles; --",
        "\\",
        "the and of", // stop words only
        "nul\0byte",
        "🙂 émoji",
        long.as_str(),
    ];
    for query in hostile {
        let hits = articles::SearchQuery::new()
            .language(Language::English)
            .limit(10)
            .search(&pool, query, 0.0)
            .await;
        assert!(hits.is_ok(), "{query:?}: {hits:?}");
        let titles = articles::SearchQuery::new()
            .language(Language::English)
            .limit(10)
            .search_titles(&pool, query)
            .await;
        assert!(titles.is_ok(), "{query:?}: {titles:?}");
    }
    assert_eq!(
        article_count(&pool).await,
        3,
        "and the table is still there"
    );
    let long_hits = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search(&pool, &long, 0.0)
        .await
        .unwrap();
    assert_eq!(long_hits.len(), 2);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn each_language_is_searched_with_its_own_configuration(pool: PgPool) {
    let es = articles::insert(
        &pool,
        &NewArticle::new("Bases de datos", "Las consultas corrían lentamente.")
            .language(Language::Spanish),
    )
    .await
    .unwrap();
    let found = articles::SearchQuery::new()
        .language(Language::Spanish)
        .limit(10)
        .search(&pool, "correr consultas", 0.0)
        .await
        .unwrap();
    assert_eq!(found.iter().map(|h| h.id).collect::<Vec<_>>(), [es.id]);
    assert!(
        articles::SearchQuery::new()
            .language(Language::English)
            .limit(10)
            .search(&pool, "consultas", 0.0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        articles::get(&pool, es.id).await.unwrap().language,
        Language::Spanish
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn search_uses_the_gin_index(pool: PgPool) {
    sqlx::query!(
        r#"
        insert into articles (title, content)
        select 'Article ' || i, 'filler text about topic' || (i % 500) || ' and more words'
        from generate_series(1, 20000) as i
        "#
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query!("vacuum analyze articles")
        .execute(&pool)
        .await
        .unwrap();
    let plan: Value = sqlx::query_scalar!(
        r#"
        explain (format json)
        select id from articles
        where language = 'english'::regconfig
          and search @@ websearch_to_tsquery('english'::regconfig, $1)
        "#,
        "topic7"
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .unwrap_or_default();
    assert!(
        plan.to_string().contains("articles_search_gin_idx"),
        "{plan}"
    );
    let hits = articles::SearchQuery::new()
        .language(Language::English)
        .limit(1000)
        .search_titles(&pool, "topic7")
        .await
        .unwrap();
    assert_eq!(hits.len(), 40);
}

/// `len` bytes of distinct short words: the body whose `tsvector` is largest for its size.
fn distinct_words(len: usize) -> String {
    let mut body = String::with_capacity(len + 16);
    let mut i = 0u64;
    while body.len() < len {
        body.push_str(&format!("w{i:x} "));
        i += 1;
    }
    body.truncate(len);
    body
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn the_largest_body_fits_the_search_index_and_a_larger_one_is_refused(pool: PgPool) {
    // Past the limit, the server itself refuses: the generated tsvector would exceed 1 MiB.
    let huge = distinct_words(1 << 20);
    let err = sqlx::query!(
        "insert into articles (title, content) values ('Huge', $1)",
        huge
    )
    .execute(&pool)
    .await
    .unwrap_err();
    let code = err.as_database_error().and_then(|e| e.code()).unwrap();
    assert_eq!(code, "54000", "{err}");

    // At the limit, the worst case for its size is stored and searchable.
    let largest = distinct_words(articles::MAX_CONTENT_BYTES);
    let stored = articles::insert(&pool, &NewArticle::new("Largest", largest.as_str()))
        .await
        .unwrap();
    assert_eq!(stored.content.len(), articles::MAX_CONTENT_BYTES);
    let hits = articles::SearchQuery::new()
        .language(Language::English)
        .limit(5)
        .search_titles(&pool, "w1f")
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);

    let over = distinct_words(articles::MAX_CONTENT_BYTES + 1);
    let err = articles::insert(&pool, &NewArticle::new("Over", over.as_str()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "content",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(article_count(&pool).await, 1);
}
