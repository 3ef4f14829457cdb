//! The command line says where it is: with nothing configured only `tour` and `db` may use the
//! private cluster (every other command refuses in one line); a command that writes or dumps
//! names its target first; `seed` outside the private cluster and `migrate --target` ask for
//! `--yes`. Each from the built binary.

use std::path::PathBuf;
use std::process::{Command, Output};

use sqlx::PgPool;

use crate::cli::{ledger, text, without_target};
use crate::support::url_of;

/// A directory with no `.env`, for a binary that must find no configuration at all.
fn bare_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ledger-bare-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `ledger args` in `dir`, with no database variable and no private cluster directory to find.
fn unconfigured(dir: &PathBuf, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ledger"));
    command.current_dir(dir).args(args);
    for key in ["DATABASE_URL", "DB_NAME", "DB_HOST", "DB_USER", "PGHOST"] {
        command.env_remove(key);
    }
    // Were a command to fall back, it would start a cluster here: the test would see it.
    command.env("LEDGER_PG_DIR", dir.join("cluster"));
    command.output().expect("the binary runs")
}

#[test]
fn with_nothing_configured_every_command_but_tour_and_db_refuses_in_one_line() {
    let dir = bare_dir("refuse");
    let backup = dir.join("backup.ndjson");
    let backup_arg = backup.display().to_string();
    for args in [
        vec!["status"],
        vec!["migrate"],
        vec!["migrate", "--target", "0", "--yes"],
        vec!["config"],
        vec!["grants", "--service", "svc", "--apply"],
        vec!["seed", "--yes"],
        vec!["dump", "-o", &backup_arg],
        vec!["load", "whatever.ndjson"],
        vec!["adopt", "--apply"],
        vec!["prune-keys"],
        vec!["shell"],
    ] {
        let out = unconfigured(&dir, &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        for needle in [
            "error: no database configured",
            "DATABASE_URL",
            "DB_NAME",
            "--database-url",
        ] {
            assert!(stderr.contains(needle), "{args:?}: {stderr}");
        }
    }
    assert!(!backup.exists(), "a refused dump wrote no file");
    assert!(
        !dir.join("cluster").exists(),
        "no command started the private cluster"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Each command that writes or dumps names host, database and role on stderr before anything
/// else, never the password.
#[sqlx::test(migrations = false)]
async fn every_command_that_writes_or_dumps_names_its_target_first(pool: PgPool) {
    let url = url_of(&pool);
    // The test server trusts local connections: a password in the URL is sent and ignored.
    let user = pool.connect_options().get_username().to_owned();
    let secret_url = url.replacen(
        &format!("://{user}@"),
        &format!("://{user}:Hunter2-Target@"),
        1,
    );
    assert_ne!(secret_url, url, "the URL names its user: {url}");
    let database = pool.connect_options().get_database().unwrap().to_owned();
    let dir = bare_dir("target");
    let backup = dir.join("backup.ndjson").display().to_string();
    for args in [
        vec!["migrate"],
        vec!["seed", "--yes", "--users", "3"],
        vec!["dump", "-o", &backup],
        vec!["load", &backup],
        vec!["grants", "--read-only", "postgres", "--apply"],
        vec!["prune-keys", "--keep-days", "30"],
    ] {
        let out = ledger(&args, Some(&secret_url));
        let stderr = text(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        let command = args[..1].join(" ");
        assert!(
            first.starts_with(&format!("ledger {command}")),
            "{args:?}: {stderr}"
        );
        assert!(
            first.contains(&format!("database {database}"))
                && first.contains(&format!("user {user}")),
            "{args:?}: {first}"
        );
        assert!(!stderr.contains("Hunter2-Target"), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `seed` into a configured database asks for `--yes` and writes nothing without it; `migrate
/// --target` lists what each reverted migration drops and reverts nothing without it.
#[sqlx::test(migrations = false)]
async fn seed_and_a_revert_outside_the_private_cluster_ask_for_yes_first(pool: PgPool) {
    let url = url_of(&pool);
    assert!(ledger(&["migrate"], Some(&url)).status.success());

    let seed = ledger(&["seed", "--users", "3"], Some(&url));
    let refusal = without_target(&text(&seed.stderr));
    assert_eq!(seed.status.code(), Some(1), "{refusal}");
    assert!(
        refusal.starts_with("error: seed writes demo rows into ") && refusal.contains("--yes"),
        "{refusal}"
    );
    let users = sqlx::query_scalar!(r#"select count(*) as "n!" from users"#)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 0, "nothing seeded");

    let revert = ledger(&["migrate", "--target", "0"], Some(&url));
    let stderr = text(&revert.stderr);
    assert_eq!(revert.status.code(), Some(1), "{stderr}");
    for needle in [
        "0001_users: drop table users",
        "0002_accounts",
        "pass --yes to revert",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in {stderr}");
    }
    let status = ledger(&["status"], Some(&url));
    assert!(
        !text(&status.stdout).contains("[ ]"),
        "nothing was reverted: {}",
        text(&status.stdout)
    );
    // Nothing above the target: nothing to confirm.
    let last = ledger::MIGRATOR.iter().map(|m| m.version).max().unwrap();
    let noop = ledger(&["migrate", "--target", &last.to_string()], Some(&url));
    assert!(noop.status.success(), "{}", text(&noop.stderr));
    let yes = ledger(&["migrate", "--target", "0", "--yes"], Some(&url));
    assert!(yes.status.success(), "{}", text(&yes.stderr));
    assert!(!text(&yes.stdout).contains("[X]"));
}
