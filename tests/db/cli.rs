//! The `ledger` binary, end to end: spawned as a user would run it.

use std::process::{Command, Output};

use ledger::transactions::{self, BatchItem, Movement};
use sqlx::PgPool;

use crate::support::url_of;

pub fn ledger(args: &[&str], database_url: Option<&str>) -> Output {
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

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command's stderr without the line a command that writes or dumps prints first, naming its
/// target (`ledger seed: socket ..., database ..., user ...`).
pub fn without_target(stderr: &str) -> String {
    match stderr.split_once('\n') {
        Some((first, rest)) if first.starts_with("ledger ") => rest.to_owned(),
        _ => stderr.to_owned(),
    }
}

#[sqlx::test(migrations = false)]
async fn tour_walks_every_section_and_leaves_no_rows_behind(pool: PgPool) {
    let out = ledger(&["tour", "--migrate"], Some(&url_of(&pool)));
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

    let zero = ledger(&["migrate", "--target", "0", "--yes"], Some(&url));
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
    // The message names where the URL came from.
    assert_eq!(
        stderr,
        "error: configuration: --database-url: invalid IPv6 address\n"
    );
    let out = ledger(&["status"], Some("postgres://ana:hunter2-secret@[::1/db"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr,
        "error: configuration: DATABASE_URL: invalid IPv6 address\n"
    );
}

#[test]
fn the_pool_settings_apply_and_are_checked_beside_database_url_as_beside_db_name() {
    let url = "postgres://ana:hunter2-secret@127.0.0.1:1/bank";
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"));
    command
        .args(["status"])
        .env("DATABASE_URL", url)
        .env("DB_MAX_CONNECTIONS", "abc");
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: configuration: DB_MAX_CONNECTIONS must be a positive number, not \"abc\"\n"
    );
    let flag = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["--database-url", url, "status"])
        .env_remove("DATABASE_URL")
        .env("DB_TRANSACTION_POOLER", "yes")
        .output()
        .unwrap();
    assert_eq!(
        text(&flag.stderr),
        "error: configuration: DB_TRANSACTION_POOLER must be 1 or 0, not \"yes\"\n"
    );

    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["config"])
        .env("DATABASE_URL", url)
        .env("DB_MAX_CONNECTIONS", "7")
        .env("DB_TRANSACTION_POOLER", "1")
        .env_remove("DB_NAME")
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let stdout = text(&shown.stdout);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("pool size"),
        "pool size 7 DB_MAX_CONNECTIONS (environment)"
    );
    assert_eq!(
        line("transaction pooler"),
        "transaction pooler on (no statement cache) DB_TRANSACTION_POOLER (environment)"
    );
    assert_eq!(line("host"), "host 127.0.0.1 DATABASE_URL (environment)");
    assert!(
        line("password").starts_with("password <redacted>"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");
}

fn scratch_file(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    dir.join(format!("{name}-{}", uuid::Uuid::new_v4()))
}

async fn wipe(pool: &PgPool) {
    sqlx::query!("truncate users, accounts, transactions, payments, articles, idempotency_keys")
        .execute(pool)
        .await
        .unwrap();
}

#[sqlx::test(migrations = false)]
async fn seed_dump_wipe_load_gives_identical_rows(pool: PgPool) {
    let url = url_of(&pool);
    let seeded = ledger(
        &[
            "seed",
            "--yes",
            "--migrate",
            "--users",
            "300",
            "--seed",
            "42",
        ],
        Some(&url),
    );
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    assert!(text(&seeded.stdout).starts_with("seeded 300 users"));
    assert!(
        ledger::transactions::reconcile(&pool)
            .await
            .unwrap()
            .is_empty()
    );
    // Awkward values the demo does not make: max-precision money, control characters, nulls.
    sqlx::query!(
        r#"insert into users (email, name, deleted_at) values ('odd@example.com', E'tab\there\nnewline \\ back', now())"#
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query!(
        r#"insert into payments (data) values ('{"amount": 9999999999999.99, "s": "quote \" and \\ and é", "n": null}')"#
    )
    .execute(&pool)
    .await
    .unwrap();
    // Keyed movements: their keys must survive the round trip and still replay afterwards.
    let active = sqlx::query_scalar!(
        r#"select id from accounts where status = 'active' order by id limit 1"#
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let batch = [
        BatchItem::Deposit(Movement::new(active, "1.00".parse().unwrap())),
        BatchItem::Deposit(Movement::new(active, "2.00".parse().unwrap())),
    ];
    let mut conn = pool.acquire().await.unwrap();
    let batch_ids = transactions::post_batch_with_key(&mut conn, "dump-batch", &batch)
        .await
        .unwrap();
    let single = Movement::new(active, "3.00".parse().unwrap()).idempotency_key("dump-single");
    let single_entry = transactions::deposit(&mut conn, &single).await.unwrap();

    let first = scratch_file("dump-1");
    let out = ledger(&["dump", "-o", first.to_str().unwrap()], Some(&url));
    assert!(out.status.success(), "{}", text(&out.stderr));
    wipe(&pool).await;
    let load = ledger(&["load", first.to_str().unwrap()], Some(&url));
    assert!(load.status.success(), "{}", text(&load.stderr));
    let second = scratch_file("dump-2");
    assert!(
        ledger(&["dump", "-o", second.to_str().unwrap()], Some(&url))
            .status
            .success()
    );

    let (a, b) = (
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap(),
    );
    assert!(a.len() > 10_000);
    assert!(
        a == b,
        "a dump of the loaded database is byte for byte the original dump"
    );
    let replayed = transactions::post_batch_with_key(&mut conn, "dump-batch", &batch)
        .await
        .unwrap();
    assert_eq!(replayed, batch_ids, "a restored batch key replays");
    let replayed = transactions::deposit(&mut conn, &single).await.unwrap();
    assert_eq!(replayed, single_entry, "a restored movement key replays");
    assert!(
        ledger::transactions::reconcile(&pool)
            .await
            .unwrap()
            .is_empty()
    );
    let _ = (std::fs::remove_file(first), std::fs::remove_file(second));
}

#[sqlx::test(migrations = false)]
async fn malformed_truncated_or_conflicting_files_name_the_line_and_write_nothing(pool: PgPool) {
    let url = url_of(&pool);
    assert!(
        ledger(&["seed", "--yes", "--migrate", "--users", "20"], Some(&url))
            .status
            .success()
    );
    let good = scratch_file("good");
    assert!(
        ledger(
            &["dump", "-o", good.to_str().unwrap(), "--table", "users"],
            Some(&url)
        )
        .status
        .success()
    );
    let lines: Vec<String> = std::fs::read_to_string(&good)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 21);
    let users_before = ledger::users::count_active(&pool).await.unwrap();

    let write = |name: &str, content: String| {
        let path = scratch_file(name);
        std::fs::write(&path, content).unwrap();
        path
    };
    let mut broken = lines.clone();
    broken[4] = "{not json".into();
    let mut wrong_shape = lines.clone();
    wrong_shape[6] = r#"{"table":"users","row":{"id":"x"}}"#.into();
    let mut unknown = lines.clone();
    unknown[2] = r#"{"table":"orders","row":{}}"#.into();
    let cases = [
        (
            "malformed",
            write("malformed", broken.join("\n") + "\n"),
            "line 5:",
        ),
        (
            "wrong shape",
            write("shape", wrong_shape.join("\n") + "\n"),
            "line 7:",
        ),
        (
            "unknown table",
            write("unknown", unknown.join("\n") + "\n"),
            "line 3:",
        ),
        (
            "cut mid-line",
            write(
                "cut",
                lines.join("\n")[..lines.join("\n").len() - 40].to_owned(),
            ),
            "line 20:",
        ),
        (
            "cut at a line",
            write("cut-line", lines[..10].join("\n") + "\n"),
            "line 11: no trailer",
        ),
        // The rows exist already: the first record conflicts with them.
        (
            "conflicting",
            good.clone(),
            "line 1: this users row is already in the database (users_pkey)",
        ),
    ];
    for (what, path, expected) in cases {
        let out = ledger(&["load", path.to_str().unwrap()], Some(&url));
        let stderr = without_target(&text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    }
    assert_eq!(
        ledger::users::count_active(&pool).await.unwrap(),
        users_before
    );

    let missing = ledger(&["load", "/nonexistent/dump.ndjson"], Some(&url));
    assert!(text(&missing.stderr).contains("reading /nonexistent/dump.ndjson"));
    let table = ledger(&["dump", "--table", "orders"], Some(&url));
    assert_eq!(table.status.code(), Some(2), "clap's usage error");
    let stderr = text(&table.stderr);
    assert!(stderr.contains("invalid value 'orders'"), "{stderr}");
    assert!(
        stderr.contains("[possible values: users, accounts, transactions, payments, articles"),
        "{stderr}"
    );
}

/// Each failure is one `error:` line that says what was tried and what to do.
#[sqlx::test(migrations = false)]
async fn each_cli_failure_prints_one_clear_line(pool: PgPool) {
    let one_line = |out: &Output, expected: &str| {
        let stderr = without_target(&text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        stderr
    };

    let mysql = ledger(&["status"], Some("mysql://root@localhost/shop"));
    one_line(&mysql, "not a PostgreSQL URL (scheme mysql://)");

    // Nothing listens on port 1: the message names the target once, and the cause once.
    let refused = ledger(
        &["status"],
        Some("postgres://nobody:s3cret@127.0.0.1:1/nope"),
    );
    let stderr = one_line(
        &refused,
        "cannot connect to 127.0.0.1:1, database nope, user nobody",
    );
    assert_eq!(stderr.matches("Connection refused").count(), 1, "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");

    let url = url_of(&pool);
    let stop = ledger(&["--database-url", &url, "db", "stop"], None);
    one_line(&stop, "is not ledger's to stop");

    let seeded = ledger(
        &["seed", "--yes", "--migrate", "--users", "5", "--seed", "7"],
        Some(&url),
    );
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    let again = ledger(
        &["seed", "--yes", "--migrate", "--users", "5", "--seed", "7"],
        Some(&url),
    );
    one_line(&again, "or pass another --seed");

    let help = ledger(&["--help"], None);
    assert!(text(&help.stdout).contains("LEDGER_LOG"));
}

#[sqlx::test(migrations = false)]
async fn shell_runs_psql_without_the_password_on_its_command_line(pool: PgPool) {
    let out = ledger(
        &["shell", "--", "-Atc", "select current_database()"],
        Some(&url_of(&pool)),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let database = pool.connect_options().get_database().unwrap().to_owned();
    assert_eq!(text(&out.stdout).trim(), database);
}

#[sqlx::test(migrations = false)]
async fn an_empty_database_url_counts_as_unset(pool: PgPool) {
    // With DATABASE_URL empty, the binary falls back to DB_NAME (and friends), as the library does.
    let options = pool.connect_options();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ledger"));
    command
        .arg("status")
        .env("DATABASE_URL", "")
        .env("DB_NAME", options.get_database().unwrap());
    command
        .env("DB_USER", options.get_username())
        .env("DB_PORT", options.get_port().to_string());
    command.env(
        "DB_HOST",
        match options.get_socket() {
            Some(dir) => dir.display().to_string(),
            None => options.get_host().to_owned(),
        },
    );
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("[ ] 0001_users"));
}

#[test]
fn every_command_has_help() {
    for command in [
        "tour",
        "migrate",
        "status",
        "config",
        "grants",
        "seed",
        "dump",
        "load",
        "adopt",
        "shell",
        "prune-keys",
        "db",
    ] {
        let out = ledger(&[command, "--help"], None);
        assert!(out.status.success(), "{command}");
        assert!(text(&out.stdout).contains("Usage:"), "{command}");
    }
}

/// `ledger dump --format django` then `ledger load` (which tells a fixture from NDJSON by its
/// first character): a fixture of the seed's models, ledger's extra columns left out, reads back
/// to the same fixture; the payments' ids come back, and so would Django's `loaddata`'s (see
/// `tests/db/django.rs`).
#[sqlx::test(migrations = false)]
async fn a_django_fixture_dumps_and_loads_back_the_same(pool: PgPool) {
    let url = url_of(&pool);
    let seeded = ledger(
        &["seed", "--yes", "--migrate", "--users", "50", "--seed", "3"],
        Some(&url),
    );
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    let first = scratch_file("fixture-1");
    let out = ledger(
        &["dump", "--format", "django", "-o", first.to_str().unwrap()],
        Some(&url),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    assert!(
        records
            .iter()
            .any(|r| r["model"] == "myapp.payment" && r["pk"].is_i64())
    );
    assert!(
        records
            .iter()
            .all(|r| r["fields"].get("idempotency_key").is_none()
                && r["fields"].get("language").is_none())
    );
    wipe(&pool).await;
    let load = ledger(&["load", first.to_str().unwrap()], Some(&url));
    assert!(load.status.success(), "{}", text(&load.stderr));
    assert_eq!(
        text(&load.stdout).trim(),
        format!("loaded {} records", records.len())
    );
    let second = scratch_file("fixture-2");
    let again = ledger(
        &["dump", "--format", "django", "-o", second.to_str().unwrap()],
        Some(&url),
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
    // A model of another app is refused by record, and nothing is written.
    wipe(&pool).await;
    let other = scratch_file("fixture-other");
    std::fs::write(
        &other,
        r#"[{"model": "auth.user", "pk": 1, "fields": {"username": "x"}}]"#,
    )
    .unwrap();
    let refused = ledger(&["load", other.to_str().unwrap()], Some(&url));
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("record 1: model \"auth.user\""),
        "{}",
        text(&refused.stderr)
    );
    let users = sqlx::query_scalar!(r#"select count(*) as "n!" from users"#)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
    for file in [first, second, other] {
        let _ = std::fs::remove_file(file);
    }
}

/// A fixture record that points at a row neither in the file nor in the database is refused
/// naming that record (PostgreSQL checks the key after the `COPY`, so its error names no line):
/// through the library and the binary, with nothing written.
#[sqlx::test(migrations = false)]
async fn a_fixture_record_pointing_nowhere_is_refused_by_its_position(pool: PgPool) {
    let url = url_of(&pool);
    assert!(ledger(&["migrate"], Some(&url)).status.success());
    let ann = "0b8f7c3e-1111-4a2b-9c3d-000000000001";
    let nobody = "0b8f7c3e-2222-4a2b-9c3d-000000000002";
    let fixture = serde_json::json!([
        {"model": "myapp.user", "pk": ann, "fields": {
            "email": "ann@example.com", "name": "Ann",
            "created_at": "2026-01-01T00:00:00Z", "deleted_at": null}},
        {"model": "myapp.account", "pk": "0b8f7c3e-3333-4a2b-9c3d-000000000003", "fields": {
            "user": ann, "balance": "1.00", "currency": "USD", "status": "active"}},
        {"model": "myapp.account", "pk": "0b8f7c3e-4444-4a2b-9c3d-000000000004", "fields": {
            "user": nobody, "balance": "2.00", "currency": "USD", "status": "active"}},
    ]);
    let path = scratch_file("orphan.json");
    std::fs::write(&path, fixture.to_string()).unwrap();

    let mut conn = pool.acquire().await.unwrap();
    let err = ledger::fixture::load(&mut conn, &path, "myapp", &mut |_, _| {})
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(
            "record 3: its user_id 0b8f7c3e-2222-4a2b-9c3d-000000000002 is neither in \
                       the file nor in the database's users"
        ),
        "{message}"
    );
    let out = ledger(&["load", path.to_str().unwrap()], Some(&url));
    let stderr = without_target(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("record 3: its user_id"), "{stderr}");
    let users = sqlx::query_scalar!(r#"select count(*) as "n!" from users"#)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 0, "nothing written");
    let _ = std::fs::remove_file(&path);
}
