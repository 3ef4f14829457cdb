//! What the round-based benches (`django`, `wire`, `streams`) share: a fresh database, the
//! same rows in Django's schema and ledger's, the Django project, rounds, medians, and reading a
//! figure out of a tool's output. Each bench uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use ledger::Config;
use ledger::accounts::AccountId;
use ledger::transactions::{self, Movement};
use ledger::users::{self, NewUser};
use rust_decimal::Decimal;
use sqlx::PgPool;

/// Drops and creates the database `name` on `server`'s server; returns its config, with a pool
/// of `pool_size` connections.
pub async fn fresh_database(server: &Config, name: &str, pool_size: u32) -> Config {
    let admin = server.connect().await.expect("connect");
    for sql in [
        format!("drop database if exists {name} with (force)"),
        format!("create database {name}"),
    ] {
        // A database's name cannot be a bind parameter: no query macro can express these.
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .expect("database");
    }
    admin.close().await;
    server.with_database(name).max_connections(pool_size)
}

/// `BENCH_ROUNDS`, or 5.
/// The server's settings that the figures depend on, for the bench's first line:
/// `15.18, fsync on, synchronous_commit on, shared_buffers 128MB`.
pub async fn server_settings(pool: &PgPool) -> String {
    sqlx::query_scalar!(
        r#"
        select current_setting('server_version') || ', fsync ' || current_setting('fsync')
               || ', synchronous_commit ' || current_setting('synchronous_commit')
               || ', shared_buffers ' || current_setting('shared_buffers') as "settings!"
        "#
    )
    .fetch_one(pool)
    .await
    .expect("the server's settings")
}

/// Runs a bench's `run` on a multi-threaded tokio runtime.
pub fn block_on<T>(run: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(run)
}

pub fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The number that follows `prefix` on the first line of `text` that starts with it (psql's
/// "Time: 12.3 ms", pgbench's "tps = 456.7 (...)").
pub fn number_after(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix:?} in the output: {text}"))
}

/// The test project's `manage.py`, run by one virtualenv's Python on one database.
pub struct Django {
    pub python: PathBuf,
    pub dir: PathBuf,
    pub url: String,
}

impl Django {
    /// Runs `manage.py args` and returns the JSON of its last output line (or null).
    pub fn manage(&self, args: &[&str]) -> serde_json::Value {
        let output = Command::new(&self.python)
            .args(["-W", "ignore", "manage.py"])
            .args(args)
            .current_dir(&self.dir)
            .env("DATABASE_URL", &self.url)
            .output()
            .expect("python runs");
        assert!(
            output.status.success(),
            "manage.py {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).expect("utf-8");
        serde_json::from_str(text.lines().last().unwrap_or("null")).unwrap_or_default()
    }
}

/// The same rows in either schema: 100 users, their accounts, `entries` deposits, and 10 hot
/// accounts with room for every transfer. Returns the hot accounts' ids.
pub async fn fill(pool: &PgPool, entries: i64) -> Vec<AccountId> {
    // Setup, not measured: several statements in one round trip, which a query macro cannot
    // send, in SQL that both schemas take (Django's has no column defaults).
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "insert into users (id, email, name, created_at) \
           select gen_random_uuid(), 'f' || i || '@fill.example', 'Fill ' || i, now() \
           from generate_series(1, 100) i; \
         insert into accounts (id, user_id, balance, currency, status) \
           select gen_random_uuid(), id, 1000000000, 'USD', 'active' from users; \
         insert into transactions (id, to_account_id, amount, type, status, metadata, created_at) \
           select gen_random_uuid(), a.id, (i % 10000) / 100.0 + 0.01, 'deposit', 'completed', \
                  '{{}}', now() - (i || ' seconds')::interval \
           from generate_series(1, {entries}) i \
           join (select id, row_number() over (order by id) - 1 as k from accounts) a \
             on a.k = i % 100"
    )))
    .execute(pool)
    .await
    .expect("fill");
    // Alone: VACUUM cannot run in the batch above, which PostgreSQL runs as one transaction.
    // It has no parameters or rows for a query macro to check.
    sqlx::raw_sql("vacuum analyze")
        .execute(pool)
        .await
        .expect("vacuum");
    sqlx::query_scalar!("select id from accounts order by id limit 10")
        .fetch_all(pool)
        .await
        .expect("hot accounts")
}

/// How many hot accounts the transfer benches share.
pub const HOT_ACCOUNTS: i64 = 10;

/// pgbench's side of the transfer comparison: the seed's transfer with both rows locked in one
/// statement in id order (so that it cannot deadlock), as a client without ledger would write
/// it. Six round trips: `BEGIN`, the lock, two updates, the insert, `END`. `HOT(n)` is the n-th
/// hot account's id (see `hot_accounts`).
pub const PGBENCH_SCRIPT: &str = r"\set a random(0, 9)
\set b (:a + random(1, 9)) % 10
\set cents random(1, 1000)
BEGIN;
SELECT balance FROM accounts WHERE id IN (HOT(:a), HOT(:b)) ORDER BY id FOR UPDATE;
UPDATE accounts SET balance = balance - :cents / 100.0 WHERE id = HOT(:a);
UPDATE accounts SET balance = balance + :cents / 100.0 WHERE id = HOT(:b);
INSERT INTO transactions (from_account_id, to_account_id, amount, type, status) VALUES (HOT(:a), HOT(:b), :cents / 100.0, 'transfer', 'completed');
END;
";

/// The n-th hot account's id: `00000000-0000-0000-0000-00000000000n`.
pub fn hot_sql(n: &str) -> String {
    format!("('00000000-0000-0000-0000-' || lpad(({n})::text, 12, '0'))::uuid")
}

/// Accounts with ids `HOT(first)` to `HOT(end - 1)` (see [`hot_sql`]), owned by one new user
/// with this email, balance zero.
pub async fn numbered_accounts(pool: &PgPool, email: &str, first: i64, end: i64) -> Vec<AccountId> {
    let owner = users::insert(pool, &NewUser::new(email, "Numbered"))
        .await
        .expect("owner");
    sqlx::query_scalar!(
        r#"
        insert into accounts (id, user_id, balance, currency, status)
        select ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, $1, 0, 'USD', 'active'
        from generate_series($2::bigint, $3::bigint - 1) n
        returning id
        "#,
        owner.id.as_uuid(),
        first,
        end
    )
    .fetch_all(pool)
    .await
    .expect("numbered accounts")
}

/// Ten accounts with ids `HOT(0)` to `HOT(9)`, owned by one user, each funded with a billion by
/// a deposit.
pub async fn hot_accounts(pool: &PgPool, email: &str) -> Vec<AccountId> {
    let ids = numbered_accounts(pool, email, 0, HOT_ACCOUNTS).await;
    let mut conn = pool.acquire().await.expect("a connection");
    let mut hot = Vec::new();
    for id in ids {
        let funding = Movement::new(id, Decimal::from(1_000_000_000));
        transactions::deposit(&mut conn, &funding)
            .await
            .expect("fund");
        hot.push(id);
    }
    hot
}

/// Runs pgbench's `script` from `clients` clients, `per_client` transactions each, prepared
/// statements, and returns its report (which must show no failed transaction).
pub fn pgbench(
    config: &Config,
    script: &std::path::Path,
    clients: usize,
    per_client: usize,
) -> String {
    let output = Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string(), "-t", &per_client.to_string()])
        .arg("-f")
        .arg(script)
        .envs(config.libpq_env())
        .output()
        .expect("pgbench on PATH");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && text.contains("number of failed transactions: 0"),
        "pgbench: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}
