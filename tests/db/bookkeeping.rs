//! ledger in a service's own database: ledger's migrations are recorded in `_ledger_migrations`,
//! the service's own (`tests/service/migrations`, through a `Migrator` with sqlx's default
//! table) in `_sqlx_migrations`, and neither migrator sees the other's versions. A database an
//! older build migrated moves its bookkeeping on the next `schema::migrate`.

use std::path::Path;

use ledger::schema::{self, BOOKKEEPING, LEGACY_BOOKKEEPING};
use ledger::users::{self, NewUser};
use ledger::{Error, MIGRATOR};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{PgConnection, PgPool};

/// The service's migrator: its own migrations, in sqlx's default table.
async fn service() -> Migrator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/service/migrations");
    let migrator = Migrator::new(dir).await.unwrap();
    assert_eq!(migrator.table_name, LEGACY_BOOKKEEPING);
    migrator
}

/// The versions a bookkeeping table records, in order.
async fn recorded(conn: &mut PgConnection, table: &str) -> Vec<i64> {
    conn.list_applied_migrations(table)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.version)
        .collect()
}

fn versions(migrator: &Migrator) -> Vec<i64> {
    migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| m.version)
        .collect()
}

/// Both migrators, in the given order, three times over; after each round both report nothing
/// pending and each table records exactly its own migrator's versions.
async fn both_migrate(pool: PgPool, ledger_first: bool) {
    let service = service().await;
    let mut conn = pool.acquire().await.unwrap();
    for round in 0..3 {
        if ledger_first {
            schema::migrate(&mut conn).await.unwrap();
            service.run(&mut *conn).await.unwrap();
        } else {
            service.run(&mut *conn).await.unwrap();
            schema::migrate(&mut conn).await.unwrap();
        }
        schema::check(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            schema::status(&mut conn)
                .await
                .unwrap()
                .iter()
                .all(|m| m.applied)
        );
        assert_eq!(recorded(&mut conn, BOOKKEEPING).await, versions(&MIGRATOR));
        assert_eq!(
            recorded(&mut conn, LEGACY_BOOKKEEPING).await,
            versions(&service)
        );
    }
    // Each side's tables work.
    users::insert(&pool, &NewUser::new("svc@example.com", "Service"))
        .await
        .unwrap();
    // Not a query macro: `orders` is the service's table, absent from the database the macros
    // check against (ledger's schema alone).
    sqlx::query("insert into orders (reference, note) values ('A-1', 'first')")
        .execute(&pool)
        .await
        .unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_service_and_ledger_share_a_database_when_ledger_migrates_first(pool: PgPool) {
    both_migrate(pool, true).await;
}

#[sqlx::test(migrations = false)]
async fn a_service_and_ledger_share_a_database_when_the_service_migrates_first(pool: PgPool) {
    both_migrate(pool, false).await;
}

/// A database an older build of ledger migrated (its rows in `_sqlx_migrations`, beside the
/// service's, which had to `set_ignore_missing` to live with them): the next `schema::migrate`
/// moves ledger's rows, unchanged, and only those; the data stays; a second run moves nothing;
/// and the service's migrator no longer needs to ignore anything.
#[sqlx::test(migrations = false)]
async fn a_database_an_older_build_migrated_moves_its_bookkeeping_with_nothing_lost(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let mut older = Migrator::with_migrations(MIGRATOR.iter().cloned().collect());
    older.dangerous_set_table_name(LEGACY_BOOKKEEPING);
    older.run(&mut *conn).await.unwrap();
    let mut tolerant = service().await;
    tolerant.set_ignore_missing(true);
    tolerant.run(&mut *conn).await.unwrap();
    let ana = users::insert(&pool, &NewUser::new("ana@example.com", "Ana"))
        .await
        .unwrap();
    let before = rows(&mut conn, LEGACY_BOOKKEEPING).await;
    assert_eq!(before.len(), versions(&MIGRATOR).len() + 2);

    // Before the move, the service role's view already counts ledger's rows where they are.
    schema::check(&mut conn).await.unwrap();
    assert!(
        schema::status(&mut conn)
            .await
            .unwrap()
            .iter()
            .all(|m| m.applied)
    );

    schema::migrate(&mut conn).await.unwrap();
    let moved = rows(&mut conn, BOOKKEEPING).await;
    let kept = rows(&mut conn, LEGACY_BOOKKEEPING).await;
    let ledger_rows: Vec<_> = before
        .iter()
        .filter(|r| MIGRATOR.version_exists(r.0))
        .cloned()
        .collect();
    assert_eq!(
        moved, ledger_rows,
        "every row, with its checksum and time, unchanged"
    );
    assert_eq!(
        kept.iter().map(|r| r.0).collect::<Vec<_>>(),
        versions(&service().await)
    );
    assert_eq!(users::get(&pool, ana.id).await.unwrap(), ana);
    schema::check(&mut conn).await.unwrap();

    // Idempotent: nothing left to move, nothing changes.
    schema::migrate(&mut conn).await.unwrap();
    assert_eq!(rows(&mut conn, BOOKKEEPING).await, moved);
    assert_eq!(rows(&mut conn, LEGACY_BOOKKEEPING).await, kept);
    service().await.run(&mut *conn).await.unwrap();
}

/// `(version, checksum, installed_on)` of every row of a bookkeeping table, in order.
async fn rows(
    conn: &mut PgConnection,
    table: &str,
) -> Vec<(i64, Vec<u8>, chrono::DateTime<chrono::Utc>)> {
    // Not a query macro: the table is named at run time (the legacy one does not exist in the
    // database the macros check against).
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select version, checksum, installed_on from {table} order by version"
    )))
    .fetch_all(conn)
    .await
    .unwrap()
}

/// What a service calls at start: nothing pending is fine; a schema behind the crate names
/// what is pending, one ahead of it what it does not know, and neither writes anything.
#[sqlx::test(migrations = false)]
async fn the_start_up_check_names_what_is_pending_and_what_is_unknown(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let all = versions(&MIGRATOR);
    match schema::check(&mut conn).await {
        Err(Error::SchemaMismatch { pending, unknown }) => {
            assert_eq!(pending, all);
            assert!(unknown.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !sqlx::query_scalar!(r#"select to_regclass('_ledger_migrations') is not null as "t!""#)
            .fetch_one(&mut *conn)
            .await
            .unwrap(),
        "the check created nothing"
    );

    schema::migrate(&mut conn).await.unwrap();
    schema::check(&mut conn).await.unwrap();

    let last = *all.last().unwrap();
    let before_last = all[all.len() - 2];
    schema::revert_to(&mut conn, before_last).await.unwrap();
    let behind = schema::check(&mut conn).await.unwrap_err();
    assert!(
        matches!(&behind, Error::SchemaMismatch { pending, unknown } if *pending == [last] && unknown.is_empty()),
        "{behind:?}"
    );
    assert!(
        behind
            .to_string()
            .contains(&format!("migrations {last} pending (run `ledger migrate`")),
        "{behind}"
    );
    schema::migrate(&mut conn).await.unwrap();

    // A newer release's migration, recorded as sqlx records one.
    sqlx::query!(
        "insert into _ledger_migrations (version, description, success, checksum, execution_time) \
         values (99999999999999, 'from a newer release', true, '\\x00', 1)"
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let ahead = schema::check(&mut conn).await.unwrap_err();
    assert!(
        matches!(&ahead, Error::SchemaMismatch { pending, unknown } if pending.is_empty() && *unknown == [99_999_999_999_999]),
        "{ahead:?}"
    );
    assert_eq!(ahead.kind_name(), "SchemaMismatch");
}
