//! What each connection path costs: a direct connection (sqlx's statement cache on, or the
//! transaction-pooler profile), PgBouncer in transaction mode, and a hot standby behind
//! `ledger::replica::Router`.
//!
//! `cargo bench --bench paths` starts clusters of its own from the installed binaries (a primary,
//! its standby, PgBouncer in front of the primary) in `$TMPDIR/ledger-bench-paths`, with
//! PostgreSQL's durable defaults (`fsync = on`); `PATHS_FSYNC=off` makes them like the
//! development cluster. Every alternative runs in each of `ROUNDS` rounds, in an order that
//! rotates from round to round, and the table gives each one's median time per operation across
//! rounds, and its ratio to the first line of its group. Stops the servers when it ends.

use std::path::Path;
use std::time::{Duration, Instant};

use ledger::accounts::{self, AccountId};
use ledger::local::{Bouncer, Cluster, Settings};
use ledger::replica::{Lsn, Router};
use ledger::transactions::{self, Movement, Transfer};
use ledger::users::{self, NewUser};
use ledger::{Config, Decimal};
use sqlx::PgPool;

const ROUNDS: usize = 9;
const READS: u32 = 400;
const TRANSFERS: u32 = 150;
const DATABASE: &str = "ledger";

#[derive(Debug, Clone, Copy)]
enum Way {
    DirectCached,
    DirectNoCheckOnAcquire,
    DirectHeld,
    DirectCachedInTransaction,
    DirectProfileInTransaction,
    BouncerProfileInTransaction,
    RouterRead,
    RouterReadAfter,
}

struct Pools {
    cached: PgPool,
    unchecked: PgPool,
    profile: PgPool,
    bounced: PgPool,
    router: Router,
    replayed: Lsn,
    accounts: Vec<AccountId>,
}

impl Way {
    fn label(self) -> &'static str {
        match self {
            Way::DirectCached => "direct, statement cache on, no transaction",
            Way::DirectCachedInTransaction => "direct, statement cache on, in a transaction",
            Way::DirectProfileInTransaction => "direct, pooler profile, in a transaction",
            Way::BouncerProfileInTransaction => "PgBouncer, pooler profile, in a transaction",
            Way::RouterRead => "standby via `Router::read` (health check reused for 100 ms)",
            Way::RouterReadAfter => "standby via `Router::read_after(lsn)`",
            _ => unreachable!("reads run on these paths only"),
        }
    }

    /// The label of a unit of work (which begins its own transaction) by this path.
    fn unit_label(self) -> &'static str {
        match self {
            Way::DirectCached => "direct, pool checks on every acquire (sqlx's default)",
            Way::DirectNoCheckOnAcquire => {
                "direct, `Config::connect`'s pool (checks idle ones only)"
            }
            Way::DirectHeld => "direct, one connection held for all",
            Way::DirectProfileInTransaction => "direct, pooler profile",
            Way::BouncerProfileInTransaction => "PgBouncer, pooler profile",
            _ => unreachable!("transfers run on the writer"),
        }
    }

    /// One `accounts::get` by this path.
    async fn read(self, p: &Pools, id: AccountId) {
        match self {
            Way::DirectCached => {
                accounts::get(&p.cached, id).await.expect("read");
            }
            Way::DirectCachedInTransaction => in_transaction(&p.cached, id).await,
            Way::DirectNoCheckOnAcquire | Way::DirectHeld => unreachable!("transfers only"),
            Way::DirectProfileInTransaction => in_transaction(&p.profile, id).await,
            Way::BouncerProfileInTransaction => in_transaction(&p.bounced, id).await,
            Way::RouterRead => {
                let mut read = p.router.read().await.expect("route");
                accounts::get(&mut *read, id).await.expect("read");
            }
            Way::RouterReadAfter => {
                let mut read = p.router.read_after(p.replayed).await.expect("route");
                accounts::get(&mut *read, id).await.expect("read");
            }
        }
    }

    /// One transfer (a unit of work, which begins its own transaction) by this path.
    async fn transfer(self, p: &Pools, from: AccountId, to: AccountId) {
        let pool = match self {
            Way::DirectCached | Way::DirectHeld => &p.cached,
            Way::DirectNoCheckOnAcquire => &p.unchecked,
            Way::DirectProfileInTransaction => &p.profile,
            Way::BouncerProfileInTransaction => &p.bounced,
            _ => unreachable!("transfers run on the writer"),
        };
        let mut conn = pool.acquire().await.expect("connection");
        transactions::transfer(&mut conn, &Transfer::new(from, to, Decimal::new(1, 2)))
            .await
            .expect("transfer");
    }
}

async fn in_transaction(pool: &PgPool, id: AccountId) {
    let mut tx = pool.begin().await.expect("begin");
    accounts::get(&mut *tx, id).await.expect("read");
    tx.commit().await.expect("commit");
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let durable = std::env::var("PATHS_FSYNC").map_or(true, |v| v != "off");
    let root = std::env::temp_dir().join("ledger-bench-paths");
    let result = runtime.block_on(bench(&root, durable));
    for dir in ["s", "p"] {
        let _ = Cluster::stop(&root.join(dir));
    }
    if let Err(err) = result {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

async fn bench(root: &Path, durable: bool) -> Result<(), Box<dyn std::error::Error>> {
    // Made afresh, so that `PATHS_FSYNC` applies.
    for dir in ["s", "p"] {
        Cluster::stop(&root.join(dir))?;
    }
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root)?;
    let settings = Settings {
        durable,
        ..Settings::default()
    };
    let primary = Cluster::ensure_with(&root.join("p"), &settings)?;
    primary.create_database(DATABASE).await?;
    let config = Config::local(&primary, DATABASE).max_connections(4);
    // sqlx's check on every acquire, as `Config::connect` did before it checked idle ones only.
    let cached = config
        .pool_options()
        .test_before_acquire(true)
        .connect_with(config.connect_options().clone())
        .await?;
    ledger::MIGRATOR.run(&cached).await?;
    let standby = Cluster::ensure_standby(&root.join("s"), &primary)?;
    let bouncer = Bouncer::start(&root.join("b"), &primary, "default_pool_size = 4")?;

    let owner = users::insert(&cached, &NewUser::new("paths@example.com", "Paths")).await?;
    let mut conn = cached.acquire().await?;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let account = accounts::open(&mut *conn, owner.id, None).await?;
        transactions::deposit(
            &mut conn,
            &Movement::new(account.id, "1000000.00".parse::<Decimal>()?),
        )
        .await?;
        ids.push(account.id);
    }
    drop(conn);
    let replica = Config::local(&standby, DATABASE).max_connections(4);
    let reader = replica
        .pool_options()
        .acquire_timeout(ledger::replica::READER_CONNECT_TIMEOUT)
        .connect_lazy_with(replica.connect_options().clone());
    let router = Router::new(cached.clone())
        .with_reader(reader)
        .read_your_writes_timeout(Duration::from_secs(5));
    let replayed = router.commit_position().await?;
    // Wait until the standby has the accounts.
    drop(router.read_after(replayed).await?);
    // `Config::connect`: connections that sat idle for a second or more are checked, no others.
    let unchecked = config.connect().await?;
    let pools = Pools {
        cached,
        unchecked,
        profile: config.clone().transaction_pooler().connect().await?,
        bounced: bouncer
            .config(DATABASE)
            .max_connections(4)
            .connect()
            .await?,
        router,
        replayed,
        accounts: ids,
    };

    let reads = [
        Way::DirectCached,
        Way::DirectCachedInTransaction,
        Way::DirectProfileInTransaction,
        Way::BouncerProfileInTransaction,
        Way::RouterRead,
        Way::RouterReadAfter,
    ];
    let transfers = [
        Way::DirectCached,
        Way::DirectNoCheckOnAcquire,
        Way::DirectHeld,
        Way::DirectProfileInTransaction,
        Way::BouncerProfileInTransaction,
    ];
    // Warm every path once (connections, statement caches).
    for path in reads {
        path.read(&pools, pools.accounts[0]).await;
    }
    for path in transfers {
        path.transfer(&pools, pools.accounts[0], pools.accounts[1])
            .await;
    }

    let mut read_times = vec![Vec::new(); reads.len()];
    let mut transfer_times = vec![Vec::new(); transfers.len()];
    for round in 0..ROUNDS {
        for k in 0..reads.len() {
            let i = (round + k) % reads.len();
            let start = Instant::now();
            for n in 0..READS {
                reads[i].read(&pools, pools.accounts[n as usize % 10]).await;
            }
            read_times[i].push(start.elapsed() / READS);
        }
        for k in 0..transfers.len() {
            let i = (round + k) % transfers.len();
            let start = Instant::now();
            if matches!(transfers[i], Way::DirectHeld) {
                let mut conn = pools.cached.acquire().await?;
                for n in 0..TRANSFERS {
                    let from = pools.accounts[n as usize % 10];
                    let to = pools.accounts[(n as usize + 3) % 10];
                    let transfer = Transfer::new(from, to, Decimal::new(1, 2));
                    transactions::transfer(&mut conn, &transfer).await?;
                }
            } else {
                for n in 0..TRANSFERS {
                    let from = pools.accounts[n as usize % 10];
                    let to = pools.accounts[(n as usize + 3) % 10];
                    transfers[i].transfer(&pools, from, to).await;
                }
            }
            transfer_times[i].push(start.elapsed() / TRANSFERS);
        }
    }
    let stats = pools.router.stats();
    let off = transactions::reconcile(&pools.cached).await?;

    println!(
        "fsync = {}, {ROUNDS} rounds, median per operation\n",
        if durable { "on" } else { "off" }
    );
    println!("| operation | path | median | ratio |");
    println!("| :--- | :--- | ---: | ---: |");
    table("`accounts::get`", &reads, Way::label, &mut read_times);
    table(
        "`transfer`",
        &transfers,
        Way::unit_label,
        &mut transfer_times,
    );
    println!(
        "\nrouter: {} reads on the standby, {} on the writer; {} accounts disagree after the \
         transfers",
        stats.replica,
        stats.writer,
        off.len()
    );
    Ok(())
}

fn table(
    operation: &str,
    paths: &[Way],
    label: fn(Way) -> &'static str,
    times: &mut [Vec<Duration>],
) {
    let medians: Vec<Duration> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect();
    for (path, median) in paths.iter().zip(&medians) {
        println!(
            "| {operation} | {} | {:.0} µs | {:.2}× |",
            label(*path),
            median.as_secs_f64() * 1e6,
            median.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
}
