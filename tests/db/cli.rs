//! The `ledger` binary, end to end: spawned as a user would run it.

use std::process::{Command, Output};

use sqlx::PgPool;

/// The harness's `DATABASE_URL` pointed at this test's own database: the same string with the
/// path replaced, so any password in it (or PGPASSWORD in the environment) still applies.
fn url_of(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("set by the test harness");
    let options = pool.connect_options();
    let database = options.get_database().expect("a test database");
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{database}{query}")
}

fn ledger(args: &[&str], database_url: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ledger"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("DB_NAME");
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    command.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[sqlx::test(migrations = false)]
async fn tour_walks_every_section_and_leaves_no_rows_behind(pool: PgPool) {
    let out = ledger(&["tour"], Some(&url_of(&pool)));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    for section in [
        "== Setup ==",
        "== Migrations ==",
        "== Basic CRUD ==",
        "== Filtering ==",
        "== Ordering, Limiting, Pagination ==",
        "== Transactions (Atomic) ==",
        "== Savepoints ==",
        "== Aggregations ==",
        "== JOINs ==",
        "== Window Functions ==",
        "== Raw SQL ==",
        "== JSONB ==",
        "== Full-Text Search ==",
        "== Performance Tips ==",
    ] {
        assert!(stdout.contains(section), "missing {section}");
    }
    for line in [
        "User.objects.filter(name__icontains='GARCÍA')",
        "User.objects.filter(Q(balance__gte=100) | Q(status='vip'))",
        "User.objects.prefetch_related('accounts')",
        "Payment.objects.filter(data__shipping__country='US')",
        "never an SQL error",
        "-> same idempotency key again -> same entry: true",
        "-> 0 accounts disagree with their ledger",
        "(rolled back: the database is as the tour found it)",
    ] {
        assert!(stdout.contains(line), "missing {line}");
    }
    // It migrated, and everything else it wrote was rolled back.
    let rows = sqlx::query_scalar!(
        r#"
        select (select count(*) from users) + (select count(*) from accounts)
             + (select count(*) from transactions) + (select count(*) from payments)
             + (select count(*) from articles) as "n!"
        "#
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(rows, 0);
}

#[sqlx::test(migrations = false)]
async fn migrate_status_and_migrate_to_zero(pool: PgPool) {
    let url = url_of(&pool);
    let status = ledger(&["status"], Some(&url));
    assert!(status.status.success());
    assert!(text(&status.stdout).contains("[ ] 0001_users"));

    let up = ledger(&["migrate"], Some(&url));
    assert!(up.status.success(), "{}", text(&up.stderr));
    assert!(text(&up.stdout).contains("[X] 0007_idempotency"));

    let zero = ledger(&["migrate", "--target", "0"], Some(&url));
    assert!(zero.status.success(), "{}", text(&zero.stderr));
    assert!(!text(&zero.stdout).contains("[X]"));
}

#[test]
fn an_unreachable_server_is_one_clear_line_without_the_password() {
    let out = ledger(
        &["status"],
        Some("postgres://ana:hunter2-secret@127.0.0.1:1/nowhere"),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_malformed_url_is_a_clear_error() {
    let out = ledger(
        &[
            "--database-url",
            "postgres://ana:hunter2-secret@[::1/db",
            "status",
        ],
        None,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: configuration: DATABASE_URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
