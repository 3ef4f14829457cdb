//! A password never leaves the process: every command, on its failure paths and with
//! `LEDGER_LOG=trace`, with the password given in each of the ways the configuration takes one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::PgPool;

use crate::support::url_of;

const MARKER: &str = "Marker-PW-7f3a9c";

/// Every command, with arguments that reach its database (or its failure) without changing
/// anything that matters: most fail (no server, or an unmigrated database), which is the point.
const COMMANDS: [&[&str]; 14] = [
    &["status"],
    &["config"],
    &["migrate", "--target", "99"],
    &["grants", "--service", "svc"],
    &["grants", "--service", "svc", "--apply"],
    &["seed", "--users", "1"],
    &["tour"],
    &["dump", "--table", "users"],
    &["dump", "--format", "django"],
    &["load", "/nonexistent/backup.ndjson"],
    &["adopt"],
    &["db", "url"],
    &["db", "url", "--database", "other"],
    &["shell", "--", "-c", "select 1"],
];

/// Runs `ledger` in `dir` (which may hold a `.env`) with `vars` as its only configuration.
fn run(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ledger"));
    command
        .current_dir(dir)
        .args(args)
        .env("LEDGER_LOG", "trace");
    for key in [
        "DATABASE_URL",
        "DB_NAME",
        "DB_USER",
        "DB_PASSWORD",
        "DB_HOST",
        "DB_PORT",
        "PGPASSWORD",
    ] {
        command.env_remove(key);
    }
    command.envs(vars.iter().copied());
    command.output().expect("the binary runs")
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ledger-secrets-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts that no command's stdout or stderr holds the marker, and returns how many failed.
fn assert_never_shown(what: &str, dir: &Path, vars: &[(&str, &str)], extra: &[&str]) -> usize {
    let mut failed = 0;
    for args in COMMANDS {
        let args: Vec<&str> = extra.iter().chain(args.iter()).copied().collect();
        let out = run(dir, &args, vars);
        failed += usize::from(!out.status.success());
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(MARKER),
                "{what}: `ledger {}` printed the password on {stream}:\n{text}",
                args.join(" ")
            );
            assert!(
                !text.contains("panicked"),
                "{what}: {}: {text}",
                args.join(" ")
            );
        }
    }
    failed
}

#[test]
fn no_command_shows_a_password_given_in_a_url_a_variable_or_dotenv_when_the_server_is_down() {
    let dir = scratch_dir("down");
    let url = format!("postgres://app:{MARKER}@127.0.0.1:1/bank");
    let failed = assert_never_shown("DATABASE_URL", &dir, &[("DATABASE_URL", &url)], &[]);
    // Only `config` and the two `db url` need no server.
    assert_eq!(failed, COMMANDS.len() - 3, "the server is down");
    assert_never_shown("--database-url", &dir, &[], &["--database-url", &url]);
    let django = [
        ("DB_NAME", "bank"),
        ("DB_USER", "app"),
        ("DB_PASSWORD", MARKER),
        ("DB_HOST", "127.0.0.1"),
        ("DB_PORT", "1"),
    ];
    assert_never_shown("DB_PASSWORD", &dir, &django, &[]);
    assert_never_shown(
        "PGPASSWORD",
        &dir,
        &[
            ("PGPASSWORD", MARKER),
            ("DB_NAME", "bank"),
            ("DB_PORT", "1"),
        ],
        &[],
    );

    let dotenv = scratch_dir("dotenv");
    std::fs::write(
        dotenv.join(".env"),
        format!("DB_NAME=bank\nDB_USER=app\nDB_PASSWORD={MARKER}\nDB_HOST=127.0.0.1\nDB_PORT=1\n"),
    )
    .unwrap();
    assert_never_shown(".env", &dotenv, &[], &[]);
    let config = run(&dotenv, &["config"], &[]);
    let shown = String::from_utf8_lossy(&config.stdout);
    assert!(
        shown.contains("<redacted>") && shown.contains("DB_PASSWORD (.env)"),
        "{shown}"
    );
    let _ = (
        std::fs::remove_dir_all(dir),
        std::fs::remove_dir_all(dotenv),
    );
}

#[sqlx::test(migrations = false)]
async fn no_command_shows_a_password_when_the_server_answers(pool: PgPool) {
    // The private cluster trusts its socket's owner: the password is sent nowhere, but it is in
    // the configuration of every command, and each one runs to its end or its refusal.
    let dir = scratch_dir("up");
    let base = url_of(&pool);
    let (scheme, rest) = base.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    let user = pool.connect_options().get_username().to_owned();
    let url = format!("{scheme}://{user}:{MARKER}@{host}");
    assert_never_shown("DATABASE_URL", &dir, &[("DATABASE_URL", &url)], &[]);
    let status = run(&dir, &["status"], &[("DATABASE_URL", &url)]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}
