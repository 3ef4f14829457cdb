//! What the round-based benches (`django`, `wire`) share: a fresh database, rounds, medians, and
//! reading a figure out of a tool's output. Each bench uses a part of it.
#![allow(dead_code)]

use ledger::Config;

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
