//! Reads on replicas, writes on the writer, and read-your-writes on request: [`Router`].
//!
//! Django's answer is `DATABASES` with a `replica` entry and a `DATABASE_ROUTERS` class whose
//! `db_for_read` picks it. Ledger's is a [`Router`]: the writer's pool and any number of reader
//! pools (streaming replicas, for example `pg_basebackup -R` standbys).
//!
//! - **Writes and units of work** run on [`Router::writer`], always.
//! - **Reads that may lag** run on what [`Router::read`] hands back: a connection to a replica
//!   that answers and lags by at most [`Router::max_lag`], else to the writer.
//! - **Read-your-writes**: after a write commits, [`Router::commit_position`] gives the writer's
//!   WAL position ([`Lsn`]). [`Router::read_after`] with it waits, up to
//!   [`Router::read_your_writes_timeout`], for a replica that has replayed that far, and falls
//!   back to the writer if none has.
//! - **A replica that is down** (it refuses connections, or is no longer a standby) is skipped
//!   for [`Router::retry_after`] without being tried again, so that a dead replica costs one
//!   connect timeout, not one per read. Every fallback to the writer is logged (`tracing`, level
//!   `warn`) and counted ([`Router::stats`]).
//!
//! **Lag** is measured on the replica, in the same round trip that checks it: zero when its WAL
//! receiver is streaming and it has replayed all it received, else the age of the last
//! transaction it replayed (`now() - pg_last_xact_replay_timestamp()`). A replica whose replay is
//! paused, or that lost its primary, thus ages past the bound and is skipped. A check is reused
//! for [`Router::health_ttl`] (default 100 ms), aged by the time since it was made, so that a
//! busy service pays one extra round trip per replica every 100 ms rather than one per read
//! (see docs/benchmarks.md).
//!
//! # What runs on a replica
//! Every function of this crate that takes an executor and only reads (`get`, `find_*`, `list*`,
//! `filter`, `search*`, `count*`, the reports, the pages and paginators, `stream_*` and `chunks`,
//! `payments::PaymentQuery::list_containing`, `dump`) is safe on a replica: a hot standby runs them as
//! read-only transactions. Everything that writes (`insert*`, `open`, `update*`, `delete*`,
//! `copy_in`, `load`, `migrate`) and every unit of work in `transactions` (which lock accounts
//! with `for update`) fails there with SQLSTATE 25006 (`read_only_sql_transaction`): give those
//! the writer. `tests/db/replica.rs` runs a read of every module on a real standby.
//!
//! ```no_run
//! # async fn demo(owner: ledger::users::UserId) -> ledger::Result<()> {
//! use ledger::replica::Router;
//! use ledger::{Config, accounts};
//!
//! // DATABASE_URL for the writer, DATABASE_REPLICA_URLS (comma-separated) for the readers.
//! let router = Router::connect(&Config::resolve()?, &Config::replicas_from_env()?).await?;
//!
//! let account = accounts::open(router.writer(), owner, None).await?;
//! let written = router.commit_position().await?;
//!
//! // Sees the account: a replica that has replayed `written`, or else the writer.
//! let mut read = router.read_after(written).await?;
//! let again = accounts::get(&mut *read, account.id).await?;
//! assert_eq!(again.id, account.id);
//!
//! // May lag by up to `max_lag`.
//! let mut read = router.read().await?;
//! let listed = accounts::list_for_user(&mut *read, owner).await?;
//! # let _ = listed;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

use crate::{Config, Result};

mod lsn;
mod probe;

pub use lsn::Lsn;
use probe::{Probe, Reader};

/// How far a replica may lag and still serve [`Router::read`], by default.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(1);
/// How long [`Router::read_after`] waits for a replica to catch up, by default.
pub const DEFAULT_READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a replica that failed is skipped before it is tried again, by default.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a reader pool waits for a connection (and so for a replica that does not answer).
pub const READER_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a replica's health check is reused, by default.
pub const DEFAULT_HEALTH_TTL: Duration = Duration::from_millis(100);
/// How often [`Router::read_after`] asks the replicas how far they have replayed.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Where a [`Read`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// On the replica at this index of the router's readers.
    Replica(usize),
    /// On the writer, and why.
    Writer(Fallback),
}

/// Why a read went to the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fallback {
    /// The router has no readers.
    NoReplicas,
    /// Every replica is down, was skipped since it failed, or is no longer a standby.
    Unavailable,
    /// Every replica that answered lags by more than the router's `max_lag`.
    Lagging,
    /// No replica replayed the requested position within the read-your-writes timeout.
    NotCaughtUp(Lsn),
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::NoReplicas => f.write_str("no replica is configured"),
            Fallback::Unavailable => f.write_str("no replica is available"),
            Fallback::Lagging => f.write_str("every replica lags past the bound"),
            Fallback::NotCaughtUp(lsn) => write!(f, "no replica has replayed {lsn} in time"),
        }
    }
}

/// What a router has routed since it was made: reads per destination and fallbacks per reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Reads served by a replica.
    pub replica: u64,
    /// Reads served by the writer (the sum of the four counts below).
    pub writer: u64,
    /// ... because there is no reader.
    pub no_replicas: u64,
    /// ... because no replica was available.
    pub unavailable: u64,
    /// ... because every replica that answered lagged.
    pub lagging: u64,
    /// ... because no replica caught up with a read-your-writes position in time.
    pub not_caught_up: u64,
}

#[derive(Debug, Default)]
struct Counters {
    replica: AtomicU64,
    no_replicas: AtomicU64,
    unavailable: AtomicU64,
    lagging: AtomicU64,
    not_caught_up: AtomicU64,
}

/// A connection for reading, from a replica or the writer; derefs to [`PgConnection`], so
/// `&mut *read` is an executor. Returned to its pool when dropped.
#[derive(Debug)]
pub struct Read {
    conn: PoolConnection<Postgres>,
    route: Route,
}

impl Read {
    /// Where this read runs.
    pub fn route(&self) -> Route {
        self.route
    }
}

impl Deref for Read {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for Read {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

/// The writer's pool and the replicas' pools; cheap to clone (the pools are shared).
///
/// See the [module documentation](self) for the routing rules and an example.
#[derive(Debug, Clone)]
pub struct Router {
    writer: PgPool,
    readers: Vec<Reader>,
    max_lag: Duration,
    read_your_writes_timeout: Duration,
    retry_after: Duration,
    health_ttl: Duration,
    next: Arc<AtomicUsize>,
    counters: Arc<Counters>,
}

impl Router {
    /// A router with the writer's pool and no readers (every read goes to the writer).
    pub fn new(writer: PgPool) -> Self {
        Self {
            writer,
            readers: Vec::new(),
            max_lag: DEFAULT_MAX_LAG,
            read_your_writes_timeout: DEFAULT_READ_YOUR_WRITES_TIMEOUT,
            retry_after: DEFAULT_RETRY_AFTER,
            health_ttl: DEFAULT_HEALTH_TTL,
            next: Arc::new(AtomicUsize::new(0)),
            counters: Arc::new(Counters::default()),
        }
    }

    /// Connects the writer (which must answer now) and one lazily connected pool per replica
    /// (which may be down at start), each replica's pool with [`READER_CONNECT_TIMEOUT`].
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) when the writer cannot be reached.
    pub async fn connect(writer: &Config, replicas: &[Config]) -> Result<Self> {
        let mut router = Self::new(writer.connect().await?);
        for replica in replicas {
            let pool = replica
                .pool_options()
                .acquire_timeout(READER_CONNECT_TIMEOUT)
                .connect_lazy_with(replica.connect_options());
            router = router.with_reader(pool);
        }
        Ok(router)
    }

    /// A router over one host list, the way a Django team lists its cluster
    /// (`postgres://app@db-1,db-2,db-3/bank`, see [`crate::hosts`]): the writer is `config`'s
    /// pool asking for `read-write` (it follows the primary through a failover, see
    /// [`Config::connect`]), and **every** host of the list is a candidate reader. Which of them
    /// are standbys is found by the health check each read makes anyway (a host that is not a
    /// standby, or does not answer, is skipped for [`Router::retry_after`]), so after a failover
    /// the promoted standby stops serving reads as a replica, and the old primary serves them
    /// again once it rejoins as a standby, with no configuration change.
    ///
    /// ```no_run
    /// # async fn run() -> ledger::Result<()> {
    /// let cluster = ledger::Config::from_url("postgres://app@db-1,db-2,db-3/bank")?;
    /// let router = ledger::replica::Router::connect_hosts(&cluster).await?;
    /// assert_eq!(router.replicas(), 3);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Config::connect`] for the writer: no server of the list takes writes.
    pub async fn connect_hosts(config: &Config) -> Result<Self> {
        let writer = match config.hosts() {
            Some(hosts) => config.clone().with_hosts(
                hosts
                    .clone()
                    .with_target_session_attrs(crate::net::hosts::TargetSessionAttrs::ReadWrite),
            ),
            None => config.clone(),
        };
        Self::connect(&writer, &config.each_host()).await
    }

    /// Adds a replica's pool. Give it a short acquire timeout: a replica that does not answer
    /// costs one timeout before it is skipped for [`Router::retry_after`].
    pub fn with_reader(mut self, pool: PgPool) -> Self {
        self.readers.push(Reader {
            pool,
            down_until: Arc::new(Mutex::new(None)),
            last: Arc::new(Mutex::new(None)),
        });
        self
    }

    /// Sets how far a replica may lag and still serve [`Router::read`] (default
    /// [`DEFAULT_MAX_LAG`]).
    pub fn max_lag(mut self, max_lag: Duration) -> Self {
        self.max_lag = max_lag;
        self
    }

    /// Sets how long [`Router::read_after`] waits for a replica to catch up (default
    /// [`DEFAULT_READ_YOUR_WRITES_TIMEOUT`]).
    pub fn read_your_writes_timeout(mut self, timeout: Duration) -> Self {
        self.read_your_writes_timeout = timeout;
        self
    }

    /// Sets how long a failed replica is skipped (default [`DEFAULT_RETRY_AFTER`]).
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Sets how long a replica's health check is reused (default [`DEFAULT_HEALTH_TTL`]; zero
    /// checks before every read). A reused check is aged: its lag counts as grown by the check's
    /// age, so `max_lag` still holds; a read-your-writes position it has not reached, or a bound
    /// the aged lag misses, makes a fresh check rather than a fallback.
    pub fn health_ttl(mut self, ttl: Duration) -> Self {
        self.health_ttl = ttl;
        self
    }

    /// The writer's pool: for every write and every unit of work.
    pub fn writer(&self) -> &PgPool {
        &self.writer
    }

    /// The number of replicas.
    pub fn replicas(&self) -> usize {
        self.readers.len()
    }

    /// The writer's position after the writes that committed before this call: hand it to
    /// [`Router::read_after`] to read them back. One round trip to the writer.
    ///
    /// SQL: as [`Lsn::current`].
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) when the writer cannot be reached.
    pub async fn commit_position(&self) -> Result<Lsn> {
        Lsn::current(&self.writer).await
    }

    /// A connection for a read that may lag by up to [`Router::max_lag`]: a replica (taken in
    /// turn) that answers, is a standby and lags no more, else the writer.
    ///
    /// SQL, on the replica, before it is handed out: `select pg_is_in_recovery(),
    /// pg_last_wal_replay_lsn(), <lag>` (see the module documentation).
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) when the fallback to the writer cannot get a connection.
    pub async fn read(&self) -> Result<Read> {
        if self.readers.is_empty() {
            return self.on_writer(Fallback::NoReplicas).await;
        }
        let mut lagging = false;
        for index in self.order() {
            match self
                .probe(index, |h| h.lag.is_some_and(|lag| lag <= self.max_lag))
                .await
            {
                Probe::Serves(conn, health) => {
                    if health.lag.is_some_and(|lag| lag <= self.max_lag) {
                        return Ok(self.on_replica(index, conn));
                    }
                    lagging = true;
                }
                Probe::Failed => {}
            }
        }
        let reason = if lagging {
            Fallback::Lagging
        } else {
            Fallback::Unavailable
        };
        self.on_writer(reason).await
    }

    /// A connection that sees every write committed at or before `position`: a replica that has
    /// replayed that far, waited for up to [`Router::read_your_writes_timeout`], else the writer.
    /// A replica that has caught up serves whatever its lag.
    ///
    /// SQL: as [`Router::read`], repeated every few milliseconds while it waits.
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) when the fallback to the writer cannot get a connection.
    pub async fn read_after(&self, position: Lsn) -> Result<Read> {
        if self.readers.is_empty() {
            return self.on_writer(Fallback::NoReplicas).await;
        }
        let deadline = Instant::now() + self.read_your_writes_timeout;
        loop {
            let mut any_answered = false;
            for index in self.order() {
                if let Probe::Serves(conn, health) =
                    self.probe(index, |h| h.replayed >= position).await
                {
                    if health.replayed >= position {
                        return Ok(self.on_replica(index, conn));
                    }
                    any_answered = true;
                }
            }
            if !any_answered {
                return self.on_writer(Fallback::Unavailable).await;
            }
            let now = Instant::now();
            if now >= deadline {
                return self.on_writer(Fallback::NotCaughtUp(position)).await;
            }
            tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
        }
    }

    /// Reads routed so far, and why some went to the writer.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let (no_replicas, unavailable, lagging, not_caught_up) = (
            load(&c.no_replicas),
            load(&c.unavailable),
            load(&c.lagging),
            load(&c.not_caught_up),
        );
        Stats {
            replica: load(&c.replica),
            writer: no_replicas + unavailable + lagging + not_caught_up,
            no_replicas,
            unavailable,
            lagging,
            not_caught_up,
        }
    }
}
