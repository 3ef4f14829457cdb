//! Group commit: `transactions::Poster` against the single `transfer` and against pgbench's
//! ordered-lock transfer script, at 1, 4, 16 and 64 clients, on 10 hot accounts, in one run,
//! interleaved.
//!
//! Run with `cargo bench --bench poster`, on the server of `DATABASE_URL` or else the private
//! cluster (`fsync = off`: run it against a server with `fsync = on` as well, where a commit
//! waits for its flush and sharing commits matters most). `pgbench` must be on `PATH`.
//! Everything runs in a database of its own, `ledger_bench_poster`, made afresh. `BENCH_ROUNDS`
//! (default 5) sets the rounds; each round runs every way once per client count, in an order
//! that rotates from round to round. The table gives, per client count and way, the median
//! throughput, its ratio to pgbench's, the median of each round's p50 and p99 latency per
//! movement (pgbench: its average latency, and no p99), and the WAL the server wrote per
//! transfer.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::Config;
use ledger::accounts::AccountId;
use ledger::transactions::{self, BatchItem, Movement, Poster, PosterOptions, Transfer};
use rust_decimal::Decimal;
use sqlx::PgPool;

mod support;

const DATABASE: &str = "ledger_bench_poster";
const CLIENTS: [usize; 4] = [1, 4, 16, 64];
const HOT: i64 = support::HOT_ACCOUNTS;
/// Transfers per client per round.
const PER_CLIENT: usize = 100;
/// The skewed load's accounts, and its Zipf exponent (pgbench's `random_zipfian` needs > 1).
const SKEWED: i64 = 100_000;
const ZIPF: f64 = 1.1;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Way {
    Pgbench,
    Single,
    Poster,
}

impl Way {
    const ALL: [Way; 3] = [Way::Pgbench, Way::Single, Way::Poster];

    fn label(self) -> &'static str {
        match self {
            Way::Pgbench => "pgbench, ordered-lock script, -M prepared",
            Way::Single => "transactions::transfer, one pooled connection per client",
            Way::Poster => "Poster::transfer (shared commits)",
        }
    }
}

/// One round of one way: movements per second, and the p50 and p99 latency in ms.
struct Measure {
    tps: f64,
    p50: f64,
    p99: f64,
    /// WAL written per movement, in bytes (the server's, over the round: others' writes too).
    wal: f64,
}

fn main() {
    support::block_on(run());
}

/// The accounts a load moves money among, how it picks them, and pgbench's script for it.
struct Load {
    name: String,
    accounts: Arc<Vec<AccountId>>,
    /// The cumulative weights of a Zipf-like skew over `accounts`; uniform when `None`.
    zipf: Option<Arc<Vec<f64>>>,
    script: std::path::PathBuf,
}

impl Load {
    /// Two different accounts, from `seed`'s next draws.
    fn pick(accounts: usize, zipf: Option<&[f64]>, seed: &mut u64) -> (usize, usize) {
        let mut draw = || {
            *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let unit = (*seed >> 11) as f64 / (1u64 << 53) as f64;
            match zipf {
                Some(cdf) => cdf
                    .partition_point(|&c| c < unit * cdf[cdf.len() - 1])
                    .min(accounts - 1),
                None => (unit * accounts as f64) as usize % accounts,
            }
        };
        let a = draw();
        let mut b = draw();
        if b == a {
            b = (a + 1) % accounts;
        }
        (a, b)
    }
}

async fn run() {
    let rounds = support::rounds();
    let server = Config::resolve_or_local().await.expect("a database");
    let config = support::fresh_database(&server, DATABASE, 80).await;
    let pool = config.connect().await.expect("connect");
    ledger::schema::migrate(&mut pool.acquire().await.expect("a connection"))
        .await
        .expect("migrate");
    let hot = support::hot_accounts(&pool, "hot@poster.bench").await;
    let hot_script = std::env::temp_dir().join("ledger-bench-poster-hot.sql");
    let body = support::PGBENCH_SCRIPT
        .replace("HOT(:a)", &support::hot_sql(":a"))
        .replace("HOT(:b)", &support::hot_sql(":b"));
    std::fs::write(&hot_script, body).expect("the pgbench script");
    let skewed = skewed_accounts(&pool).await;
    let skewed_script = std::env::temp_dir().join("ledger-bench-poster-zipf.sql");
    let body = support::PGBENCH_SCRIPT
        .replace(
            "\\set a random(0, 9)\n\\set b (:a + random(1, 9)) % 10\n",
            &format!(
                "\\set a random_zipfian(0, {last}, {ZIPF})\n\\set b random_zipfian(0, {last}, {ZIPF})\n\
                 \\set b case when :b = :a then (:a + 1) % {SKEWED} else :b end\n",
                last = SKEWED - 1
            ),
        )
        .replace("HOT(:a)", &support::hot_sql(":a"))
        .replace("HOT(:b)", &support::hot_sql(":b"));
    assert!(
        body.contains("random_zipfian"),
        "the script's first lines changed"
    );
    std::fs::write(&skewed_script, body).expect("the pgbench script");
    let cdf: Vec<f64> = (1..=SKEWED)
        .scan(0.0, |sum, rank| {
            *sum += 1.0 / (rank as f64).powf(ZIPF);
            Some(*sum)
        })
        .collect();
    let loads = [
        Load {
            name: format!("{HOT} hot accounts"),
            accounts: Arc::new(hot),
            zipf: None,
            script: hot_script,
        },
        Load {
            name: format!("{SKEWED} accounts, Zipf s = {ZIPF}"),
            accounts: Arc::new(skewed),
            zipf: Some(Arc::new(cdf)),
            script: skewed_script,
        },
    ];
    let settings = support::server_settings(&pool).await;
    println!(
        "server: PostgreSQL {settings}; {rounds} rounds, interleaved; {PER_CLIENT} transfers per \
         client per round"
    );
    for load in &loads {
        let mut results: Vec<(usize, Way, Vec<Measure>)> = Vec::new();
        for clients in CLIENTS {
            for way in Way::ALL {
                results.push((clients, way, Vec::new()));
            }
        }
        for round in 0..rounds {
            for clients in CLIENTS {
                for i in 0..Way::ALL.len() {
                    let way = Way::ALL[(i + round) % Way::ALL.len()];
                    let start = wal_position(&pool).await;
                    let mut measure = match way {
                        Way::Pgbench => pgbench(&config, &load.script, clients),
                        Way::Single => single(&config, load, clients).await,
                        Way::Poster => poster(&pool, load, clients).await,
                    };
                    measure.wal = wal_since(&pool, &start).await / (clients * PER_CLIENT) as f64;
                    results
                        .iter_mut()
                        .find(|(c, w, _)| *c == clients && *w == way)
                        .expect("a slot")
                        .2
                        .push(measure);
                }
            }
        }
        print_table(&load.name, &results);
    }
    assert!(
        transactions::reconcile(&pool)
            .await
            .expect("reconcile")
            .is_empty(),
        "every balance is its entries' sum, pgbench's included"
    );
}

fn print_table(load: &str, results: &[(usize, Way, Vec<Measure>)]) {
    println!("\n{load}\n");
    println!("| clients | way | transfers/s | × pgbench | p50 ms | p99 ms | WAL bytes/transfer |");
    println!("| ---: | :--- | ---: | ---: | ---: | ---: | ---: |");
    for clients in CLIENTS {
        let tps = |way: Way| {
            let (_, _, m) = results
                .iter()
                .find(|(c, w, _)| *c == clients && *w == way)
                .expect("a slot");
            support::median(m.iter().map(|m| m.tps).collect())
        };
        let base = tps(Way::Pgbench);
        for way in Way::ALL {
            let (_, _, m) = results
                .iter()
                .find(|(c, w, _)| *c == clients && *w == way)
                .expect("a slot");
            let p50 = support::median(m.iter().map(|m| m.p50).collect());
            let p99 = support::median(m.iter().map(|m| m.p99).collect());
            let wal = support::median(m.iter().map(|m| m.wal).collect());
            println!(
                "| {clients} | {} | {:.0} | {:.2} | {p50:.2} | {p99:.2} | {wal:.0} |",
                way.label(),
                tps(way),
                tps(way) / base
            );
        }
    }
}

/// `clients` tasks, each doing `PER_CLIENT` transfers between random hot accounts with `post`.
async fn drive<F, Fut>(load: &Load, clients: usize, post: F) -> Measure
where
    F: Fn(usize, Transfer) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ledger::Result<()>> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (accounts, zipf) = (Arc::clone(&load.accounts), load.zipf.clone());
            let post = post.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(PER_CLIENT);
                let mut seed = client as u64 * 7_919 + 1;
                for _ in 0..PER_CLIENT {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let (a, b) = Load::pick(
                        accounts.len(),
                        zipf.as_deref().map(Vec::as_slice),
                        &mut seed,
                    );
                    let cents = 1 + (seed >> 20) as i64 % 1_000;
                    let t = Transfer::new(accounts[a], accounts[b], Decimal::new(cents, 2));
                    let at = Instant::now();
                    post(client, t).await.expect("a transfer");
                    latencies.push(at.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a client"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Measure {
        tps: latencies.len() as f64 / elapsed,
        p50: at(0.50).as_secs_f64() * 1e3,
        p99: at(0.99).as_secs_f64() * 1e3,
        wal: 0.0,
    }
}

async fn single(config: &Config, load: &Load, clients: usize) -> Measure {
    let pool = config
        .clone()
        .max_connections(clients as u32)
        .connect()
        .await
        .expect("connect");
    let measure = drive(load, clients, {
        let pool = pool.clone();
        move |_, t| {
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await?;
                transactions::transfer(&mut conn, &t).await.map(drop)
            }
        }
    })
    .await;
    pool.close().await;
    measure
}

async fn poster(pool: &PgPool, load: &Load, clients: usize) -> Measure {
    let poster = Arc::new(Poster::new(pool.clone(), PosterOptions::default()));
    let measure = drive(load, clients, {
        let poster = Arc::clone(&poster);
        move |_, t| {
            let poster = Arc::clone(&poster);
            async move { poster.transfer(t).await.map(drop) }
        }
    })
    .await;
    poster.close().await;
    measure
}

fn pgbench(config: &Config, script: &Path, clients: usize) -> Measure {
    let text = support::pgbench(config, script, clients, PER_CLIENT);
    let latency = support::number_after(&text, "latency average = ");
    Measure {
        tps: support::number_after(&text, "tps = "),
        p50: latency,
        p99: f64::NAN,
        wal: 0.0,
    }
}

/// The server's current WAL insert position.
async fn wal_position(pool: &PgPool) -> String {
    sqlx::query_scalar!(r#"select pg_current_wal_insert_lsn()::text as "lsn!""#)
        .fetch_one(pool)
        .await
        .expect("the WAL position")
}

/// Bytes of WAL written since `start`.
async fn wal_since(pool: &PgPool, start: &str) -> f64 {
    sqlx::query_scalar!(
        r#"select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::text::pg_lsn)::float8 as "bytes!""#,
        start
    )
    .fetch_one(pool)
    .await
    .expect("the WAL written")
}

/// `SKEWED` accounts with ids `HOT(0)` to `HOT(SKEWED - 1)` (the hot accounts are the first ten),
/// each of the others funded with a million by one batch of deposits.
async fn skewed_accounts(pool: &PgPool) -> Vec<AccountId> {
    let ids = support::numbered_accounts(pool, "skewed@poster.bench", HOT, SKEWED).await;
    let mut conn = pool.acquire().await.expect("a connection");
    let funding: Vec<BatchItem> = ids
        .iter()
        .map(|id| BatchItem::Deposit(Movement::new(*id, Decimal::from(1_000_000))))
        .collect();
    transactions::post_batch(&mut conn, &funding)
        .await
        .expect("fund");
    let mut all: Vec<AccountId> = (0..HOT)
        .map(|n| {
            format!("00000000-0000-0000-0000-{n:012}")
                .parse::<uuid::Uuid>()
                .expect("an id")
                .into()
        })
        .collect();
    all.extend(ids);
    all
}
