//! The migrations themselves.

use ledger::{MIGRATOR, schema};
use sqlx::PgPool;

use crate::support;

async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar!(
        r#"
        select table_name as "table_name!"
        from information_schema.tables
        where table_schema = 'public' and table_name not like '\_ledger\_migrations'
        order by table_name
        "#
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn migrations_go_up_down_to_zero_and_up_again(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let all = [
        "accounts",
        "articles",
        "idempotency_keys",
        "ledger_uuid_ids",
        "payments",
        "transactions",
        "users",
    ];

    schema::migrate(&mut conn).await.unwrap();
    assert_eq!(tables(&pool).await, all);
    assert!(support::all_applied(&mut conn).await);

    schema::revert_to(&mut conn, 0).await.unwrap();
    assert!(tables(&pool).await.is_empty());
    assert!(
        schema::status(&mut conn)
            .await
            .unwrap()
            .iter()
            .all(|m| !m.applied)
    );

    schema::migrate(&mut conn).await.unwrap();
    assert_eq!(tables(&pool).await, all);
}

#[sqlx::test(migrations = false)]
async fn status_lists_every_migration_in_order(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    schema::migrate(&mut conn).await.unwrap();
    schema::revert_to(&mut conn, 3).await.unwrap();

    let status = schema::status(&mut conn).await.unwrap();
    let versions: Vec<i64> = status.iter().map(|m| m.version).collect();
    let applied: Vec<bool> = status.iter().map(|m| m.applied).collect();
    let expected: Vec<i64> = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| m.version)
        .collect();
    assert_eq!(versions, expected);
    let up_to_3: Vec<bool> = expected.iter().map(|v| *v <= 3).collect();
    assert_eq!(applied, up_to_3);
    assert!(applied.contains(&false));
}

/// Migration 0013 gives payments and articles Django's `bigint` identity ids. On a database an
/// older ledger filled, every row is numbered in `(created_at, uuid)` order, the uuid it had is
/// kept in `ledger_uuid_ids`, the next insert follows the last number, and going back down
/// restores each row's uuid.
// (Plain `sqlx::query`: these statements run against the pre-0013 schema, which the query macros,
// checked against the current one, cannot describe.)
#[sqlx::test(migrations = false)]
async fn uuid_payments_and_articles_become_numbered_and_keep_their_old_ids(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    MIGRATOR.run(&mut conn).await.unwrap();
    MIGRATOR.undo(&mut conn, 12).await.unwrap();
    let (newer, older) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    // Rows in the schema before migration 0013 (uuid ids), which the query macros, checked
    // against the current schema, cannot describe.
    sqlx::query(
        "insert into payments (id, data, created_at) values \
         ($1, '{\"n\": \"newer\"}', now()), ($2, '{\"n\": \"older\"}', now() - interval '1 day')",
    )
    .bind(newer)
    .bind(older)
    .execute(&mut *conn)
    .await
    .unwrap();
    // The same pre-0013 schema (a uuid id), which no query macro can describe.
    sqlx::query("insert into articles (id, title) values ($1, 'Kept')")
        .bind(older)
        .execute(&mut *conn)
        .await
        .unwrap();

    MIGRATOR.run(&mut conn).await.unwrap();
    let numbered: Vec<(i64, String)> =
        sqlx::query!(r#"select id as "id: i64", data ->> 'n' as "n!" from payments order by id"#)
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.id, row.n))
            .collect();
    assert_eq!(numbered, [(1, "older".into()), (2, "newer".into())]);
    let kept: Vec<(String, uuid::Uuid, i64)> =
        sqlx::query!(
            r#"select table_name, uuid as "uuid: uuid::Uuid", id from ledger_uuid_ids order by table_name, id"#
        )
            .fetch_all(&mut *conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.table_name, row.uuid, row.id))
            .collect();
    assert_eq!(
        kept,
        [
            ("articles".into(), older, 1),
            ("payments".into(), older, 1),
            ("payments".into(), newer, 2)
        ]
    );
    let next = ledger::payments::insert_json(&mut *conn, &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(next.id.get(), 3);

    MIGRATOR.undo(&mut conn, 12).await.unwrap();
    // Back in the pre-0013 schema (uuid ids), which no query macro can describe.
    let back: Vec<(uuid::Uuid, Option<String>)> =
        sqlx::query_as("select id, data ->> 'n' from payments order by created_at")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(
        (back[0].clone(), back[1].clone()),
        ((older, Some("older".into())), (newer, Some("newer".into())))
    );
    let article: uuid::Uuid = sqlx::query_scalar("select id from articles")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(article, older);
}
