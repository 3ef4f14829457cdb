//! softwaremill/tb-perf's workload, its two PostgreSQL designs on their own schema, and ledger's
//! `Poster` and single `transfer` on ledger's schema: on one server, in one run, interleaved.
//!
//! Run with `cargo bench --bench tbperf`, on the server of `DATABASE_URL` or else the private
//! cluster (`fsync = off` there: run it against a server with `fsync = on` as well).
//! `BENCH_ROUNDS` (default 5) sets the rounds; each round runs every way once per caller count,
//! in an order that rotates from round to round.
//!
//! **The workload** (tb-perf, 2026-01): 100,000 accounts drawn with a Zipf law of exponent 1.0,
//! amounts 1 to 1,000, every account starting at 1,000,000, closed-loop callers (each waits for
//! its answer before it sends the next), `SUM(balance)` checked afterwards.
//!
//! **tb-perf's designs, as it describes them, on its own schema** (database
//! `ledger_bench_tbperf_peer`): `accounts (id bigint primary key, balance bigint)`, `transfers
//! (id bigserial primary key, source_id, dest_id bigint references accounts, amount bigint,
//! created_at timestamptz)` with an index on each of `source_id`, `dest_id` and `created_at`:
//! - **batched**: the callers queue their transfers; one task takes what is queued (up to
//!   8,190) and runs it on one connection as one `READ COMMITTED` transaction calling a PL/pgSQL
//!   function with three `bigint[]` arrays, which applies each transfer in its own `BEGIN ...
//!   EXCEPTION` block (a subtransaction) with conditional `UPDATE ... WHERE balance >= amount`
//!   in id order, and returns a result code per transfer;
//! - **`FOR UPDATE`**: each caller on a pooled connection of 16: `BEGIN`, both rows locked
//!   `FOR UPDATE` in id order, the check, two `UPDATE`s, the `INSERT`, `COMMIT`.
//!
//! tb-perf's client is its own; here both designs are driven from this process by the same
//! closed-loop callers and the same draws as ledger's, so that the server's work is what
//! differs. Ledger's side (database `ledger_bench_tbperf`): the same 100,000 accounts, funded
//! with a million each, through `Poster::transfer` and `transactions::transfer`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::Config;
use ledger::accounts::AccountId;
use ledger::transactions::{self, BatchItem, Movement, Poster, PosterOptions, Transfer};
use rust_decimal::Decimal;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

mod support;

const LEDGER_DB: &str = "ledger_bench_tbperf";
const PEER_DB: &str = "ledger_bench_tbperf_peer";
const ACCOUNTS: i64 = 100_000;
const ZIPF: f64 = 1.0;
const START_BALANCE: i64 = 1_000_000;
const CALLERS: [usize; 4] = [1, 16, 64, 384];
/// Transfers per round, shared among the callers (at least one each).
const PER_ROUND: usize = 12_000;
/// tb-perf's largest batch.
const MAX_BATCH: usize = 8_190;
/// tb-perf's `FOR UPDATE` design's connections.
const FOR_UPDATE_CONNECTIONS: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Way {
    PeerBatched,
    PeerForUpdate,
    Poster,
    Single,
}

impl Way {
    const ALL: [Way; 4] = [
        Way::PeerBatched,
        Way::PeerForUpdate,
        Way::Poster,
        Way::Single,
    ];

    fn label(self) -> &'static str {
        match self {
            Way::PeerBatched => "tb-perf batched (its schema, PL/pgSQL, a subtransaction each)",
            Way::PeerForUpdate => "tb-perf FOR UPDATE (its schema, 16 connections)",
            Way::Poster => "ledger Poster::transfer",
            Way::Single => "ledger transactions::transfer (16 connections)",
        }
    }
}

/// tb-perf's schema and batched function (the peer's own SQL, run once in its own database).
const PEER_SCHEMA: &str = r#"
create table accounts (id bigint primary key, balance bigint not null);
create table transfers (
    id bigserial primary key,
    source_id bigint not null references accounts (id),
    dest_id bigint not null references accounts (id),
    amount bigint not null,
    created_at timestamptz not null default now()
);
create index transfers_source_id_idx on transfers (source_id);
create index transfers_dest_id_idx on transfers (dest_id);
create index transfers_created_at_idx on transfers (created_at);

create function batched_transfers(sources bigint[], dests bigint[], amounts bigint[])
returns int[] language plpgsql as $$
declare
    results int[] := array[]::int[];
    moved int;
begin
    for i in 1 .. coalesce(array_length(sources, 1), 0) loop
        begin
            if sources[i] < dests[i] then
                update accounts set balance = balance - amounts[i]
                where id = sources[i] and balance >= amounts[i];
                get diagnostics moved = row_count;
                if moved = 0 then
                    raise exception 'insufficient funds' using errcode = 'P0001';
                end if;
                update accounts set balance = balance + amounts[i] where id = dests[i];
            else
                update accounts set balance = balance + amounts[i] where id = dests[i];
                update accounts set balance = balance - amounts[i]
                where id = sources[i] and balance >= amounts[i];
                get diagnostics moved = row_count;
                if moved = 0 then
                    raise exception 'insufficient funds' using errcode = 'P0001';
                end if;
            end if;
            insert into transfers (source_id, dest_id, amount)
            values (sources[i], dests[i], amounts[i]);
            results := results || 0;
        exception
            when sqlstate 'P0001' then results := results || 1;
            when others then results := results || 2;
        end;
    end loop;
    return results;
end
$$;
"#;

/// One round of one way: transfers per second, p50 and p99 latency in ms, and the share of
/// transfers refused for funds (tb-perf counts them as answered: its function returns a code).
struct Measure {
    tps: f64,
    p50: f64,
    p99: f64,
    refused: f64,
}

fn main() {
    support::block_on(run());
}

/// The cumulative weights of a Zipf law of exponent [`ZIPF`] over [`ACCOUNTS`] ranks.
fn zipf_cdf() -> Arc<Vec<f64>> {
    Arc::new(
        (1..=ACCOUNTS)
            .scan(0.0, |sum, rank| {
                *sum += 1.0 / (rank as f64).powf(ZIPF);
                Some(*sum)
            })
            .collect(),
    )
}

/// Two different account indexes and an amount of 1 to 1,000, from `seed`'s next draws.
fn draw(cdf: &[f64], seed: &mut u64) -> (usize, usize, i64) {
    let mut next = || {
        *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let pick = |unit: f64| {
        cdf.partition_point(|&c| c < unit * cdf[cdf.len() - 1])
            .min(cdf.len() - 1)
    };
    let a = pick(next());
    let mut b = pick(next());
    if b == a {
        b = (a + 1) % cdf.len();
    }
    let amount = 1 + (next() * 1_000.0) as i64 % 1_000;
    (a, b, amount)
}

async fn run() {
    let rounds = support::rounds();
    let server = Config::resolve_or_local().await.expect("a database");
    let ledger_config = support::fresh_database(&server, LEDGER_DB, 80).await;
    let ledger_pool = ledger_config.connect().await.expect("connect");
    ledger::schema::migrate(&mut ledger_pool.acquire().await.expect("a connection"))
        .await
        .expect("migrate");
    let accounts = Arc::new(ledger_accounts(&ledger_pool).await);
    let peer_config = support::fresh_database(&server, PEER_DB, 20).await;
    let peer_pool = peer_config
        .clone()
        .max_connections(FOR_UPDATE_CONNECTIONS + 1)
        .connect()
        .await
        .expect("connect");
    peer_schema(&peer_pool).await;
    let cdf = zipf_cdf();
    let settings = support::server_settings(&ledger_pool).await;
    println!(
        "server: PostgreSQL {settings}; {rounds} rounds, interleaved; {PER_ROUND} transfers per \
         round; {ACCOUNTS} accounts, Zipf s = {ZIPF}, amounts 1-1000"
    );
    let mut results: Vec<(usize, Way, Vec<Measure>)> = Vec::new();
    for callers in CALLERS {
        for way in Way::ALL {
            results.push((callers, way, Vec::new()));
        }
    }
    for round in 0..rounds {
        for callers in CALLERS {
            for i in 0..Way::ALL.len() {
                let way = Way::ALL[(i + round) % Way::ALL.len()];
                // Each run draws anew (the same draws every run would drift the same way).
                let draws = Draws {
                    cdf: Arc::clone(&cdf),
                    salt: (round * 100 + callers) as u64 * 1_000_003,
                };
                let measure = match way {
                    Way::PeerBatched => peer_batched(&peer_pool, &draws, callers).await,
                    Way::PeerForUpdate => peer_for_update(&peer_pool, &draws, callers).await,
                    Way::Poster => poster(&ledger_pool, &accounts, &draws, callers).await,
                    Way::Single => single(&ledger_config, &accounts, &draws, callers).await,
                };
                results
                    .iter_mut()
                    .find(|(c, w, _)| *c == callers && *w == way)
                    .expect("a slot")
                    .2
                    .push(measure);
            }
        }
    }
    print_table(&results);
    // Money conserved on both sides. (The peer's total reads the peer's schema: no query macro,
    // which checks against ledger's, can express it.)
    let peer_total: i64 = sqlx::query_scalar::<_, i64>("select sum(balance)::bigint from accounts")
        .fetch_one(&peer_pool)
        .await
        .expect("the peer's total");
    assert_eq!(peer_total, ACCOUNTS * START_BALANCE, "the peer's money");
    let ledger_total =
        sqlx::query_scalar!(r#"select coalesce(sum(balance), 0) as "total!" from accounts"#)
            .fetch_one(&ledger_pool)
            .await
            .expect("ledger's total");
    assert_eq!(ledger_total, Decimal::from(ACCOUNTS * START_BALANCE));
    assert!(
        transactions::reconcile(&ledger_pool)
            .await
            .expect("reconcile")
            .is_empty()
    );
    println!("\nmoney conserved on both sides; ledger's reconcile is clean");
}

fn print_table(results: &[(usize, Way, Vec<Measure>)]) {
    println!("\n| callers | way | transfers/s | × tb-perf batched | p50 ms | p99 ms | refused |");
    println!("| ---: | :--- | ---: | ---: | ---: | ---: | ---: |");
    for callers in CALLERS {
        let median = |way: Way, f: fn(&Measure) -> f64| {
            let (_, _, m) = results
                .iter()
                .find(|(c, w, _)| *c == callers && *w == way)
                .expect("a slot");
            support::median(m.iter().map(f).collect())
        };
        let base = median(Way::PeerBatched, |m| m.tps);
        for way in Way::ALL {
            let tps = median(way, |m| m.tps);
            println!(
                "| {callers} | {} | {tps:.0} | {:.2} | {:.2} | {:.2} | {:.2}% |",
                way.label(),
                tps / base,
                median(way, |m| m.p50),
                median(way, |m| m.p99),
                median(way, |m| m.refused) * 100.0,
            );
        }
    }
}

/// The Zipf law's weights, and what makes this run's draws its own.
struct Draws {
    cdf: Arc<Vec<f64>>,
    salt: u64,
}

/// `callers` closed-loop tasks sharing [`PER_ROUND`] transfers, each sending `post(a, b,
/// amount)` (account indexes) and waiting for it before the next; `post` says whether the
/// transfer was applied (`false`: refused for funds).
async fn drive<F, Fut>(draws: &Draws, callers: usize, post: F) -> Measure
where
    F: Fn(usize, usize, i64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let each = (PER_ROUND / callers).max(1);
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let (cdf, post) = (Arc::clone(&draws.cdf), post.clone());
            let salt = draws.salt;
            tokio::spawn(async move {
                let mut seed = caller as u64 * 7_919 + salt + 1;
                let mut latencies = Vec::with_capacity(each);
                let mut refused = 0usize;
                for _ in 0..each {
                    let (a, b, amount) = draw(&cdf, &mut seed);
                    let at = Instant::now();
                    if !post(a, b, amount).await {
                        refused += 1;
                    }
                    latencies.push(at.elapsed());
                }
                (latencies, refused)
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (each, no) = task.await.expect("a caller");
        latencies.extend(each);
        refused += no;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Measure {
        tps: latencies.len() as f64 / elapsed,
        p50: at(0.50).as_secs_f64() * 1e3,
        p99: at(0.99).as_secs_f64() * 1e3,
        refused: refused as f64 / latencies.len() as f64,
    }
}

/// The accounts with ids `HOT(0)` to `HOT(ACCOUNTS - 1)`, each funded with a million by one
/// batch of deposits.
async fn ledger_accounts(pool: &PgPool) -> Vec<AccountId> {
    let ids = support::numbered_accounts(pool, "tbperf@ledger.bench", 0, ACCOUNTS).await;
    let mut conn = pool.acquire().await.expect("a connection");
    let funding: Vec<BatchItem> = ids
        .iter()
        .map(|id| BatchItem::Deposit(Movement::new(*id, Decimal::from(START_BALANCE))))
        .collect();
    transactions::post_batch(&mut conn, &funding)
        .await
        .expect("fund");
    sqlx::query!("vacuum analyze accounts, transactions")
        .execute(pool)
        .await
        .expect("vacuum");
    ids
}

/// tb-perf's schema, its accounts funded, analyzed.
async fn peer_schema(pool: &PgPool) {
    // The peer's own schema and function, in a database of its own: not ledger's, so no query
    // macro (checked against ledger's schema) can express them.
    sqlx::raw_sql(PEER_SCHEMA)
        .execute(pool)
        .await
        .expect("the peer's schema");
    sqlx::query(
        "insert into accounts (id, balance) select n, $1 from generate_series(0, $2 - 1) n",
    )
    .bind(START_BALANCE)
    .bind(ACCOUNTS)
    .execute(pool)
    .await
    .expect("the peer's accounts");
    sqlx::raw_sql("vacuum analyze accounts")
        .execute(pool)
        .await
        .expect("vacuum");
}

/// One queued transfer of the peer's batched design and where its result code goes.
type Queued = ((i64, i64, i64), oneshot::Sender<i32>);

/// tb-perf's batched design: the callers queue; one task takes what is queued (up to
/// [`MAX_BATCH`]) and calls the function in one transaction on one connection.
async fn peer_batched(pool: &PgPool, draws: &Draws, callers: usize) -> Measure {
    let (sender, mut receiver) = mpsc::channel::<Queued>(MAX_BATCH * 2);
    let batcher = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.expect("a connection");
            let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
            while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let sources: Vec<i64> = batch.iter().map(|((s, _, _), _)| *s).collect();
                let dests: Vec<i64> = batch.iter().map(|((_, d, _), _)| *d).collect();
                let amounts: Vec<i64> = batch.iter().map(|((_, _, a), _)| *a).collect();
                // The peer's function, in the peer's database: see `peer_schema`.
                let codes: Vec<i32> = sqlx::query_scalar("select batched_transfers($1, $2, $3)")
                    .bind(&sources)
                    .bind(&dests)
                    .bind(&amounts)
                    .fetch_one(&mut *conn)
                    .await
                    .expect("a batch");
                for ((_, reply), code) in batch.drain(..).zip(codes) {
                    let _ = reply.send(code);
                }
            }
        }
    });
    let measure = drive(draws, callers, move |a, b, amount| {
        let sender = sender.clone();
        async move {
            let (reply, answer) = oneshot::channel();
            sender
                .send(((a as i64, b as i64, amount), reply))
                .await
                .expect("the batcher");
            match answer.await.expect("an answer") {
                0 => true,
                1 => false,
                code => panic!("the batched function failed a transfer: code {code}"),
            }
        }
    })
    .await;
    batcher.await.expect("the batcher");
    measure
}

/// tb-perf's `FOR UPDATE` design, on a pool of [`FOR_UPDATE_CONNECTIONS`].
async fn peer_for_update(pool: &PgPool, draws: &Draws, callers: usize) -> Measure {
    let pool = pool.clone();
    drive(draws, callers, move |a, b, amount| {
        let pool = pool.clone();
        async move {
            let (a, b) = (a as i64, b as i64);
            // The peer's statements, in the peer's database: see `peer_schema`.
            let mut tx = pool.begin().await.expect("begin");
            let rows: Vec<(i64, i64)> = sqlx::query_as(
                "select id, balance from accounts where id in ($1, $2) order by id for update",
            )
            .bind(a)
            .bind(b)
            .fetch_all(&mut *tx)
            .await
            .expect("the lock");
            let funds = rows.iter().find(|(id, _)| *id == a).map(|(_, b)| *b);
            if funds.is_none_or(|f| f < amount) {
                tx.rollback().await.expect("rollback");
                return false;
            }
            sqlx::query("update accounts set balance = balance - $2 where id = $1")
                .bind(a)
                .bind(amount)
                .execute(&mut *tx)
                .await
                .expect("debit");
            sqlx::query("update accounts set balance = balance + $2 where id = $1")
                .bind(b)
                .bind(amount)
                .execute(&mut *tx)
                .await
                .expect("credit");
            sqlx::query("insert into transfers (source_id, dest_id, amount) values ($1, $2, $3)")
                .bind(a)
                .bind(b)
                .bind(amount)
                .execute(&mut *tx)
                .await
                .expect("insert");
            tx.commit().await.expect("commit");
            true
        }
    })
    .await
}

async fn poster(
    pool: &PgPool,
    accounts: &Arc<Vec<AccountId>>,
    draws: &Draws,
    callers: usize,
) -> Measure {
    let poster = Arc::new(Poster::new(pool.clone(), PosterOptions::default()));
    let measure = drive(draws, callers, {
        let (poster, accounts) = (Arc::clone(&poster), Arc::clone(accounts));
        move |a, b, amount| {
            let t = Transfer::new(accounts[a], accounts[b], Decimal::from(amount));
            let poster = Arc::clone(&poster);
            async move { applied(poster.transfer(t).await) }
        }
    })
    .await;
    poster.close().await;
    measure
}

async fn single(
    config: &Config,
    accounts: &Arc<Vec<AccountId>>,
    draws: &Draws,
    callers: usize,
) -> Measure {
    let pool = config
        .clone()
        .max_connections(FOR_UPDATE_CONNECTIONS)
        .connect()
        .await
        .expect("connect");
    let measure = drive(draws, callers, {
        let (pool, accounts) = (pool.clone(), Arc::clone(accounts));
        move |a, b, amount| {
            let t = Transfer::new(accounts[a], accounts[b], Decimal::from(amount));
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await.expect("a connection");
                applied(transactions::transfer(&mut conn, &t).await)
            }
        }
    })
    .await;
    pool.close().await;
    measure
}

/// Whether ledger applied the transfer: `false` when it refused it for funds; any other error
/// ends the bench.
fn applied(result: ledger::Result<transactions::LedgerEntry>) -> bool {
    match result {
        Ok(_) => true,
        Err(ledger::Error::InsufficientFunds { .. }) => false,
        Err(err) => panic!("a transfer: {err}"),
    }
}
