//! Ledger against the cheat sheet's own Django code, on the same server, in one run, interleaved:
//! `bulk_create` against `users::insert_many` and `users::copy_in`, `.iterator(chunk_size=1000)`
//! against `transactions::stream_all` and `stream_unordered`, and the seed's `transfer_funds`
//! against `transactions::transfer` (4 clients, 10 hot accounts).
//!
//! Run with `cargo bench --bench django` after `tests/django/setup.sh`; on the server of
//! `DATABASE_URL`, or else the private cluster. Django runs on a database its own migrations made
//! (`ledger_bench_django`), ledger on one its migrations made (`ledger_bench_ledger`); both get
//! the same rows. Django's times are taken inside its process (`manage.py bench_ops`), so its
//! start-up is outside them. `BENCH_ROUNDS` (default 5) sets the rounds; the medians are
//! printed with each ratio.

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::TryStreamExt;
use ledger::Config;
use ledger::bulk::BulkOptions;
use ledger::transactions::{self, Transfer};
use ledger::users::{self, NewUser};
use rust_decimal::Decimal;
use sqlx::PgPool;

mod support;

const USERS_PER_ROUND: usize = 10_000;
const ENTRIES: i64 = 200_000;
const TRANSFERS: usize = 2_000;
const CLIENTS: usize = 4;

fn main() {
    support::block_on(run());
}

/// A fresh database on the configured server: `(pool, url)`.
async fn fresh(config: &Config, name: &str) -> (PgPool, String) {
    let config = support::fresh_database(config, name, CLIENTS as u32).await;
    let pool = config.connect().await.expect("connect");
    (pool, config.url())
}

async fn run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("LEDGER_DJANGO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/django-venv/bin/python"));
    if !python.exists() {
        eprintln!(
            "no Django virtualenv at {}: run tests/django/setup.sh",
            python.display()
        );
        std::process::exit(2);
    }
    let rounds = support::rounds();
    let config = Config::resolve_or_local().await.expect("a database");

    let (django_pool, django_url) = fresh(&config, "ledger_bench_django").await;
    let django = support::Django {
        python,
        dir: root.join("tests/django"),
        url: django_url,
    };
    django.manage(&["migrate", "-v0"]);
    let django_hot: Vec<String> = support::fill(&django_pool, ENTRIES)
        .await
        .iter()
        .map(|id| id.to_string())
        .collect();

    let (pool, _) = fresh(&config, "ledger_bench_ledger").await;
    ledger::schema::migrate(&mut pool.acquire().await.expect("a connection"))
        .await
        .expect("migrate");
    let hot = support::fill(&pool, ENTRIES).await;

    let server = support::server_settings(&pool).await;
    println!("server: PostgreSQL {server}; {rounds} rounds, interleaved");

    let mut times: Vec<(&str, Vec<f64>)> = [
        "django bulk_create 10k users",
        "ledger insert_many 10k users",
        "ledger copy_in 10k users",
        "django .iterator(1000), 200k+ entries",
        "ledger stream_all, 200k+ entries",
        "ledger stream_unordered, 200k+ entries",
        "django transfer_funds x2000, 4 threads",
        "ledger transfer x2000, 4 tasks",
    ]
    .into_iter()
    .map(|name| (name, Vec::new()))
    .collect();
    let mut django_failed = 0;
    for round in 0..rounds {
        let r = round.to_string();
        let n = USERS_PER_ROUND.to_string();
        let out = django.manage(&["bench_ops", "bulk_create", "--n", &n, "--round", &r]);
        times[0].1.push(out["seconds"].as_f64().expect("seconds"));

        let people: Vec<NewUser> = (0..USERS_PER_ROUND)
            .map(|i| {
                NewUser::new(
                    format!("u{round}-{i}@ledger.bench"),
                    format!("Bench User {i}"),
                )
            })
            .collect();
        let mut conn = pool.acquire().await.expect("a connection");
        let start = Instant::now();
        users::insert_many(&mut conn, &people, BulkOptions::default())
            .await
            .expect("insert_many");
        times[1].1.push(start.elapsed().as_secs_f64());
        let copied: Vec<NewUser> = (0..USERS_PER_ROUND)
            .map(|i| {
                NewUser::new(
                    format!("c{round}-{i}@ledger.bench"),
                    format!("Bench User {i}"),
                )
            })
            .collect();
        let start = Instant::now();
        users::copy_in(&mut conn, &copied).await.expect("copy_in");
        times[2].1.push(start.elapsed().as_secs_f64());
        drop(conn);

        let out = django.manage(&["bench_ops", "iterate"]);
        times[3].1.push(out["seconds"].as_f64().expect("seconds"));
        let start = Instant::now();
        let total: Decimal = transactions::stream_all(&pool)
            .try_fold(Decimal::ZERO, |sum, e| async move { Ok(sum + e.amount) })
            .await
            .expect("stream_all");
        times[4].1.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let unordered: Decimal = transactions::stream_unordered(&pool)
            .try_fold(Decimal::ZERO, |sum, e| async move { Ok(sum + e.amount) })
            .await
            .expect("stream_unordered");
        times[5].1.push(start.elapsed().as_secs_f64());
        assert_eq!(total, unordered);

        let mut args = vec!["bench_ops", "transfers", "--n", "2000", "--accounts"];
        args.extend(django_hot.iter().map(String::as_str));
        let out = django.manage(&args);
        times[6].1.push(out["seconds"].as_f64().expect("seconds"));
        django_failed += out["failed"].as_i64().unwrap_or(0);

        let start = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|k| {
                let pool = pool.clone();
                let hot = hot.clone();
                tokio::spawn(async move {
                    for i in 0..TRANSFERS / CLIENTS {
                        let a = hot[(k + i) % hot.len()];
                        let mut b = hot[(k + 3 * i + 1) % hot.len()];
                        if a == b {
                            b = hot[(hot.iter().position(|h| *h == a).unwrap() + 1) % hot.len()];
                        }
                        let mut conn = pool.acquire().await.expect("a connection");
                        transactions::transfer(&mut conn, &Transfer::new(a, b, Decimal::new(1, 2)))
                            .await
                            .expect("transfer");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        times[7].1.push(start.elapsed().as_secs_f64());
        eprintln!("round {} of {rounds} done", round + 1);
    }

    let medians: Vec<(&str, f64)> = times
        .into_iter()
        .map(|(n, v)| (n, support::median(v)))
        .collect();
    println!("\n| work | median | vs Django |");
    println!("| :--- | ---: | ---: |");
    for (i, (name, seconds)) in medians.iter().enumerate() {
        let django_index = match i {
            0..=2 => 0,
            3..=5 => 3,
            _ => 6,
        };
        let ratio = medians[django_index].1 / seconds;
        println!("| {name} | {:.1} ms | {ratio:.2}× |", seconds * 1000.0);
    }
    println!(
        "\nDjango's transfer_funds failed {django_failed} of {} transfers (deadlocks between \
         its unordered locks; counted, not retried); every ledger transfer succeeded.",
        TRANSFERS * rounds
    );
    django_pool.close().await;
}
