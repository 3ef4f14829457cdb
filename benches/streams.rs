//! A read left early and a read to the end: ledger's streams against Django's
//! `.iterator(chunk_size=1000)`, on the same server, in one run, interleaved.
//!
//! For each size (200,000 and 1,000,000 entries): the first ten rows, then the stream dropped (a
//! `break`), then `select 1` on the same connection (ledger: a pool of one connection); and the
//! whole table read. Django runs with psycopg2-binary, the cheat sheet's driver
//! (`target/django-venv-psycopg2`, required), and with psycopg 3 (`target/django-venv`, if
//! present); its times are taken inside its process, so its start-up is outside them.
//!
//! ```sh
//! tests/django/setup.sh target/django-venv-psycopg2 tests/django/requirements-psycopg2.txt
//! tests/django/setup.sh
//! cargo bench --bench streams   # BENCH_ROUNDS (default 5), BENCH_SIZES (200000,1000000)
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use ledger::Config;
use ledger::transactions::{self, LedgerEntry};
use rust_decimal::Decimal;
use sqlx::PgPool;

mod support;

const SIZES: [i64; 2] = [200_000, 1_000_000];
/// Rows read before a stream is dropped.
const FIRST: usize = 10;

fn main() {
    support::block_on(run());
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stream {
    All,
    Unordered,
    Chunks,
    /// `copy_all_pooled`: `COPY ... TO STDOUT` by ranges of heap pages on a pooled connection.
    Copy,
    /// One `select` of every entry in time order, fetched as it arrives: the baseline the
    /// streams are held to (what `stream_all` was before its chunks, which a drop pays for in
    /// full).
    SingleSelect,
}

impl Stream {
    fn label(self) -> &'static str {
        match self {
            Stream::All => "ledger `stream_all` (keyset chunks, time order)",
            Stream::Unordered => "ledger `stream_unordered` (cursor)",
            Stream::Chunks => "ledger `chunks(pool, 1000)` (keyset)",
            Stream::Copy => "ledger `copy_all_pooled` (`COPY` by page range)",
            Stream::SingleSelect => "one `select` (the baseline: no chunks, no cursor)",
        }
    }

    fn open(self, pool: &PgPool) -> BoxStream<'_, ledger::Result<Vec<LedgerEntry>>> {
        match self {
            Stream::All => transactions::stream_all(pool).map_ok(|e| vec![e]).boxed(),
            Stream::Unordered => transactions::stream_unordered(pool)
                .map_ok(|e| vec![e])
                .boxed(),
            Stream::Chunks => transactions::chunks(pool, 1000).boxed(),
            Stream::Copy => transactions::copy_all_pooled(pool)
                .map_ok(|e| vec![e])
                .boxed(),
            Stream::SingleSelect => sqlx::query_as!(
                LedgerEntry,
                r#"
                select id, from_account_id, to_account_id, amount, type as kind, status,
                    metadata, created_at, idempotency_key
                from transactions
                order by created_at, id
                "#
            )
            .fetch(pool)
            .map_ok(|e| vec![e])
            .map_err(ledger::Error::from)
            .boxed(),
        }
    }
}

/// The first [`FIRST`] rows, the drop, and the next query: `(first, next query)` in seconds.
async fn drop_early(one: &PgPool, stream: Stream) -> (f64, f64) {
    let start = Instant::now();
    let mut rows = stream.open(one);
    let mut seen = 0;
    while seen < FIRST {
        seen += rows.next().await.expect("a row").expect("rows").len();
    }
    let first = start.elapsed().as_secs_f64();
    let start = Instant::now();
    drop(rows);
    sqlx::query_scalar!(r#"select 1 as "one!""#)
        .fetch_one(one)
        .await
        .expect("select 1");
    (first, start.elapsed().as_secs_f64())
}

/// The whole table, summed: seconds.
async fn read_all(one: &PgPool, stream: Stream) -> f64 {
    let start = Instant::now();
    let total = stream
        .open(one)
        .try_fold(Decimal::ZERO, |sum, chunk| async move {
            Ok(sum + chunk.iter().map(|e| e.amount).sum::<Decimal>())
        })
        .await
        .expect("read");
    assert!(total > Decimal::ZERO);
    start.elapsed().as_secs_f64()
}

struct Row {
    label: String,
    first: Vec<f64>,
    next: Vec<f64>,
    whole: Vec<f64>,
}

impl Row {
    fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            first: Vec::new(),
            next: Vec::new(),
            whole: Vec::new(),
        }
    }
}

async fn run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut djangos: Vec<(&str, PathBuf)> = Vec::new();
    for (driver, venv) in [
        ("psycopg2", "target/django-venv-psycopg2"),
        ("psycopg", "target/django-venv"),
    ] {
        let python = root.join(venv).join("bin/python");
        if python.exists() {
            djangos.push((driver, python));
        } else if driver == "psycopg2" {
            eprintln!(
                "no virtualenv at {}: run tests/django/setup.sh {venv} \
                 tests/django/requirements-psycopg2.txt",
                python.display()
            );
            std::process::exit(2);
        }
    }
    let rounds = support::rounds();
    let config = Config::resolve_or_local().await.expect("a database");

    let sizes: Vec<i64> = match std::env::var("BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().expect("BENCH_SIZES: numbers"))
            .collect(),
        Err(_) => SIZES.to_vec(),
    };
    for size in sizes {
        let django_db = support::fresh_database(&config, "ledger_bench_streams_django", 2).await;
        let django_pool = django_db.connect().await.expect("connect");
        let django: Vec<(&str, support::Django)> = djangos
            .iter()
            .map(|(driver, python)| {
                let project = support::Django {
                    python: python.clone(),
                    dir: root.join("tests/django"),
                    url: django_db.url(),
                };
                (*driver, project)
            })
            .collect();
        django[0].1.manage(&["migrate", "-v0"]);
        support::fill(&django_pool, size).await;

        let ledger_db = support::fresh_database(&config, "ledger_bench_streams_ledger", 1).await;
        let one = ledger_db.connect().await.expect("connect");
        ledger::schema::migrate(&mut one.acquire().await.expect("a connection"))
            .await
            .expect("migrate");
        support::fill(&one, size).await;
        let settings = support::server_settings(&one).await;
        println!("\n{size} entries; PostgreSQL {settings}; {rounds} rounds, interleaved");

        let streams = [
            Stream::All,
            Stream::Unordered,
            Stream::Chunks,
            Stream::Copy,
            Stream::SingleSelect,
        ];
        let mut rows: Vec<Row> = django
            .iter()
            .map(|(driver, _)| Row::new(&format!("Django `.iterator(chunk_size=1000)`, {driver}")))
            .chain(streams.iter().map(|s| Row::new(s.label())))
            .collect();
        for round in 0..rounds {
            let ways = rows.len();
            for k in 0..ways {
                let i = (k + round) % ways;
                if let Some((_, project)) = django.get(i) {
                    let n = FIRST.to_string();
                    let out = project.manage(&["bench_ops", "drop", "--n", &n]);
                    rows[i].first.push(out["first"].as_f64().expect("first"));
                    rows[i]
                        .next
                        .push(out["next_query"].as_f64().expect("next_query"));
                    let out = project.manage(&["bench_ops", "iterate"]);
                    rows[i]
                        .whole
                        .push(out["seconds"].as_f64().expect("seconds"));
                } else {
                    let stream = streams[i - django.len()];
                    let (first, next) = drop_early(&one, stream).await;
                    rows[i].first.push(first);
                    rows[i].next.push(next);
                    rows[i].whole.push(read_all(&one, stream).await);
                }
            }
            eprintln!("{size}: round {} of {rounds} done", round + 1);
        }

        let whole_django = support::median(rows[0].whole.clone());
        println!(
            "\n| {size} entries | first {FIRST} rows | next query after the drop | whole table | \
             rows/s | whole vs Django psycopg2 |"
        );
        println!("| :--- | ---: | ---: | ---: | ---: | ---: |");
        for row in rows {
            let whole = support::median(row.whole);
            println!(
                "| {} | {:.2} ms | {:.2} ms | {:.0} ms | {:.0} | {:.2}× |",
                row.label,
                support::median(row.first) * 1000.0,
                support::median(row.next) * 1000.0,
                whole * 1000.0,
                size as f64 / whole,
                whole_django / whole,
            );
        }
        django_pool.close().await;
        one.close().await;
    }
}
