//! The migrations themselves.

use ledger::{MIGRATOR, schema};
use sqlx::PgPool;

async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar!(
        r#"
        select table_name as "table_name!"
        from information_schema.tables
        where table_schema = 'public' and table_name not like '\_sqlx%'
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
        "payments",
        "transactions",
        "users",
    ];

    schema::migrate(&mut conn).await.unwrap();
    assert_eq!(tables(&pool).await, all);
    assert!(
        schema::status(&mut conn)
            .await
            .unwrap()
            .iter()
            .all(|m| m.applied)
    );

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
