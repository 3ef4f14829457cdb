//! Ledger against the wire's own tools, on one server, in one run, interleaved: `insert_many` and
//! `copy_in` against psql's `COPY` into the same table, and `transfer` against pgbench running
//! an ordered-lock transfer script; and what a pool costs a transfer, against connections held
//! for the whole run.
//!
//! Run with `cargo bench --bench wire`, on the server of `DATABASE_URL` or else the private
//! cluster; `psql` and `pgbench` must be on `PATH` (PostgreSQL's client packages). Everything
//! runs in a database of its own, `ledger_bench_wire`, made afresh. `BENCH_ROUNDS` (default 5)
//! sets the rounds; each round runs every alternative once, in an order that rotates from round
//! to round, and the table gives the medians and each one's ratio to its group's first line.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use ledger::Config;
use ledger::accounts::AccountId;
use ledger::bulk::BulkOptions;
use ledger::copy::CopyText;
use ledger::transactions::{self, Transfer};
use ledger::users::{self, NewUser, UserId};
use rust_decimal::Decimal;
use sqlx::PgPool;
use sqlx::pool::PoolConnection;
use sqlx::postgres::Postgres;

mod support;

const DATABASE: &str = "ledger_bench_wire";
const USERS: usize = 10_000;
const TRANSFERS: usize = 2_000;
const CLIENTS: usize = 4;
const HOT: i64 = support::HOT_ACCOUNTS;

fn main() {
    support::block_on(run());
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Way {
    InsertMany,
    CopyIn,
    PsqlCopy,
    HeldConnections,
    LedgerPool,
    LargerPool,
    PingingPool,
    UncheckedPool,
    LedgerPoolWithKey,
    Pgbench,
}

impl Way {
    const ALL: [Way; 10] = [
        Way::PsqlCopy,
        Way::InsertMany,
        Way::CopyIn,
        Way::HeldConnections,
        Way::LedgerPool,
        Way::LargerPool,
        Way::PingingPool,
        Way::UncheckedPool,
        Way::LedgerPoolWithKey,
        Way::Pgbench,
    ];

    fn label(self) -> &'static str {
        match self {
            Way::PsqlCopy => "psql `COPY users (id, email, name) FROM STDIN`, text",
            Way::InsertMany => "`users::insert_many`",
            Way::CopyIn => "`users::copy_in`",
            Way::HeldConnections => "`transfer`, each client holds one connection",
            Way::LedgerPool => "`transfer`, a connection from `Config::connect`'s pool each",
            Way::LargerPool => "`transfer`, the same with twice as many connections as clients",
            Way::PingingPool => {
                "`transfer`, from a pool that pings on every acquire (sqlx's default)"
            }
            Way::UncheckedPool => "`transfer`, `Config::connect`'s pool without its release check",
            Way::LedgerPoolWithKey => {
                "`transfer` with an idempotency key, `Config::connect`'s pool"
            }
            Way::Pgbench => "pgbench, ordered-lock script, `-M prepared`",
        }
    }

    /// The first line of this way's group: what its ratio is taken against.
    fn baseline(self) -> Way {
        match self {
            Way::PsqlCopy | Way::InsertMany | Way::CopyIn => Way::PsqlCopy,
            _ => Way::HeldConnections,
        }
    }
}

struct Bench {
    config: Config,
    pool: PgPool,
    larger: PgPool,
    pinging: PgPool,
    unchecked: PgPool,
    hot: Vec<AccountId>,
    script: std::path::PathBuf,
}

async fn run() {
    let rounds = support::rounds();
    let server = Config::resolve_or_local().await.expect("a database");
    let config = support::fresh_database(&server, DATABASE, CLIENTS as u32).await;
    let pool = config.connect().await.expect("connect");
    ledger::schema::migrate(&mut pool.acquire().await.expect("a connection"))
        .await
        .expect("migrate");
    let pinging = config
        .pool_options()
        .test_before_acquire(true)
        .connect_with(config.connect_options().clone())
        .await
        .expect("connect");
    let unchecked = config
        .pool_options()
        .after_release(|_, _| Box::pin(async { Ok(true) }))
        .connect_with(config.connect_options().clone())
        .await
        .expect("connect");
    let larger = config
        .clone()
        .max_connections(2 * CLIENTS as u32)
        .connect()
        .await
        .expect("connect");
    let hot = support::hot_accounts(&pool, "hot@wire.bench").await;
    let script = std::env::temp_dir().join("ledger-bench-wire-transfer.sql");
    let body = support::PGBENCH_SCRIPT
        .replace("HOT(:a)", &support::hot_sql(":a"))
        .replace("HOT(:b)", &support::hot_sql(":b"));
    std::fs::write(&script, body).expect("the pgbench script");
    let settings = support::server_settings(&pool).await;
    println!("server: PostgreSQL {settings}; {rounds} rounds, interleaved");

    let bench = Bench {
        config,
        pool,
        larger,
        pinging,
        unchecked,
        hot,
        script,
    };
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); Way::ALL.len()];
    for round in 0..rounds {
        for k in 0..Way::ALL.len() {
            let i = (k + round) % Way::ALL.len();
            let seconds = bench.time(Way::ALL[i], round).await;
            times[i].push(seconds);
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }

    let medians: Vec<f64> = times.into_iter().map(support::median).collect();
    let median_of = |way: Way| medians[Way::ALL.iter().position(|w| *w == way).expect("a way")];
    println!("\n| work | path | median | per second | ratio |");
    println!("| :--- | :--- | ---: | ---: | ---: |");
    for (way, seconds) in Way::ALL.iter().zip(&medians) {
        let (work, count) = match way.baseline() {
            Way::PsqlCopy => (format!("create {USERS} users"), USERS),
            _ => (
                format!("{TRANSFERS} transfers, {CLIENTS} clients, {HOT} hot accounts"),
                TRANSFERS,
            ),
        };
        println!(
            "| {work} | {} | {:.1} ms | {:.0} | {:.2}× |",
            way.label(),
            seconds * 1000.0,
            count as f64 / seconds,
            seconds / median_of(way.baseline()),
        );
    }
    std::fs::remove_file(&bench.script).ok();
    let off = transactions::reconcile(&bench.pool)
        .await
        .expect("reconcile");
    assert!(off.is_empty(), "the books balance after every transfer");
}

impl Bench {
    /// Runs one alternative once and returns its time in seconds.
    async fn time(&self, way: Way, round: usize) -> f64 {
        match way {
            Way::InsertMany => {
                let people = people("m", round);
                let mut conn = self.pool.acquire().await.expect("a connection");
                let start = Instant::now();
                users::insert_many(&mut conn, &people, BulkOptions::default())
                    .await
                    .expect("insert_many");
                start.elapsed().as_secs_f64()
            }
            Way::CopyIn => {
                let people = people("c", round);
                let mut conn = self.pool.acquire().await.expect("a connection");
                let start = Instant::now();
                users::copy_in(&mut conn, &people).await.expect("copy_in");
                start.elapsed().as_secs_f64()
            }
            Way::PsqlCopy => psql_copy(&self.config, &people("p", round)),
            Way::Pgbench => pgbench(&self.config, &self.script),
            Way::HeldConnections => {
                let mut held = Vec::new();
                for _ in 0..CLIENTS {
                    held.push(self.pool.acquire().await.expect("a connection"));
                }
                self.transfers(way, round, Some(held)).await
            }
            _ => self.transfers(way, round, None).await,
        }
    }

    /// `TRANSFERS` transfers among the hot accounts from `CLIENTS` tasks at once.
    async fn transfers(
        &self,
        way: Way,
        round: usize,
        held: Option<Vec<PoolConnection<Postgres>>>,
    ) -> f64 {
        let mut held = held.map(|v| v.into_iter().map(Some).collect::<Vec<_>>());
        let start = Instant::now();
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let pool = match way {
                    Way::PingingPool => self.pinging.clone(),
                    Way::UncheckedPool => self.unchecked.clone(),
                    Way::LargerPool => self.larger.clone(),
                    _ => self.pool.clone(),
                };
                let hot = self.hot.clone();
                let mut own = held.as_mut().and_then(|h| h[client].take());
                tokio::spawn(async move {
                    for i in 0..TRANSFERS / CLIENTS {
                        let a = (client * 7 + i * 3) % hot.len();
                        let b = (a + 1 + (i * 5 + client) % (hot.len() - 1)) % hot.len();
                        let mut request =
                            Transfer::new(hot[a], hot[b], Decimal::new((i % 1000 + 1) as i64, 2));
                        if way == Way::LedgerPoolWithKey {
                            request = request.idempotency_key(format!("wire-{round}-{client}-{i}"));
                        }
                        let result = match own.as_mut() {
                            Some(conn) => transactions::transfer(conn, &request).await,
                            None => {
                                let mut conn = pool.acquire().await.expect("a connection");
                                transactions::transfer(&mut conn, &request).await
                            }
                        };
                        result.expect("every transfer succeeds");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a client");
        }
        start.elapsed().as_secs_f64()
    }
}

fn people(tag: &str, round: usize) -> Vec<NewUser> {
    (0..USERS)
        .map(|i| NewUser::new(format!("{tag}{round}-{i}@wire.bench"), format!("Wire {i}")))
        .collect()
}

/// psql's `COPY ... FROM STDIN` of the rows `copy_in` sends, timed by psql's `\timing` (the
/// statement alone: psql's start-up and connection are outside it).
fn psql_copy(config: &Config, people: &[NewUser]) -> f64 {
    let mut data = CopyText::new();
    for person in people {
        data.display(UserId::new())
            .text(&person.email)
            .text(&person.name);
        data.end_row();
    }
    let mut psql = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "\\timing on"])
        .args(["-c", "copy users (id, email, name) from stdin"])
        .envs(config.libpq_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql on PATH");
    psql.stdin
        .take()
        .expect("stdin")
        .write_all(&data.take())
        .expect("the rows");
    let output = psql.wait_with_output().expect("psql");
    assert!(
        output.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    support::number_after(&String::from_utf8_lossy(&output.stdout), "Time: ") / 1000.0
}

/// pgbench's ordered-lock transfers: `TRANSFERS` in all from `CLIENTS` clients, prepared
/// statements; its time from its own rate, without connection set-up.
fn pgbench(config: &Config, script: &Path) -> f64 {
    let text = support::pgbench(config, script, CLIENTS, TRANSFERS / CLIENTS);
    TRANSFERS as f64 / support::number_after(&text, "tps = ")
}
