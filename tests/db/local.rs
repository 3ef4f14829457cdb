//! The private cluster of `ledger::local`, in a scratch directory of its own.

use std::process::Command;

use ledger::local::Cluster;
use ledger::users::NewUser;
use sqlx::Connection;

#[tokio::test]
async fn a_private_cluster_starts_serves_stops_and_restarts_with_its_data() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("pg-{}", std::process::id()));
    let cluster = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || Cluster::ensure(&dir)
    })
    .await
    .unwrap()
    .unwrap();
    cluster.create_database("scratch").await.unwrap();
    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options("scratch"))
        .await
        .unwrap();
    ledger::schema::migrate(&mut conn).await.unwrap();
    let kept = NewUser::new("kept@example.com", "Kept");
    ledger::users::insert(&mut conn, &kept).await.unwrap();
    conn.close().await.unwrap();

    // Found running: ensure is idempotent.
    let again = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || Cluster::ensure(&dir)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(again.dir(), cluster.dir());

    let stop_dir = dir.clone();
    let stopped = tokio::task::spawn_blocking(move || Cluster::stop(&stop_dir))
        .await
        .unwrap()
        .unwrap();
    assert!(stopped);
    assert!(
        sqlx::PgConnection::connect_with(&cluster.connect_options("scratch"))
            .await
            .is_err()
    );
    let stop_dir = dir.clone();
    assert!(
        !tokio::task::spawn_blocking(move || Cluster::stop(&stop_dir))
            .await
            .unwrap()
            .unwrap()
    );

    // Restarted, the data is still there.
    let restarted = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || Cluster::ensure(&dir)
    })
    .await
    .unwrap()
    .unwrap();
    let mut conn = sqlx::PgConnection::connect_with(&restarted.connect_options("scratch"))
        .await
        .unwrap();
    let found = ledger::users::find_by_email(&mut conn, "kept@example.com")
        .await
        .unwrap();
    assert_eq!(found.map(|u| u.name).as_deref(), Some("Kept"));
    conn.close().await.unwrap();
    let stop_dir = dir.clone();
    tokio::task::spawn_blocking(move || Cluster::stop(&stop_dir))
        .await
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_server_or_binaries_the_error_says_what_to_install_or_set() {
    let scratch = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-binaries");
    // `tour` is the command that starts the private cluster when nothing is configured.
    let out = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("tour")
        .env_remove("DATABASE_URL")
        .env_remove("DB_NAME")
        .env("LEDGER_PG_BIN", "/nonexistent/bin")
        .env("LEDGER_PG_DIR", &scratch)
        .current_dir(std::env::temp_dir()) // no .env here
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("set DATABASE_URL"), "{stderr}");
    assert!(stderr.contains("apt-get install postgresql"), "{stderr}");
}

#[tokio::test]
async fn a_directory_too_deep_for_a_unix_socket_falls_back_to_a_short_one() {
    let deep = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("a-rather-long-directory-name-".repeat(4))
        .join(format!("pg-{}", std::process::id()));
    let cluster = tokio::task::spawn_blocking({
        let deep = deep.clone();
        move || Cluster::ensure(&deep)
    })
    .await
    .unwrap()
    .unwrap();
    assert_ne!(cluster.dir(), deep.as_path());
    assert!(cluster.dir().starts_with(std::env::temp_dir()));
    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options("postgres"))
        .await
        .unwrap();
    let one = sqlx::query_scalar!(r#"select 1 as "one!""#)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
    // Stopping by the requested directory finds the same fallback.
    let stopped = tokio::task::spawn_blocking(move || Cluster::stop(&deep))
        .await
        .unwrap()
        .unwrap();
    assert!(stopped);
    let _ = std::fs::remove_dir_all(cluster.dir());
}
