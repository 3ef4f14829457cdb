//! The bank under faults: clients move money with idempotency keys while a fault driver cancels
//! statements, terminates backends, drops client futures and restarts the server; afterwards every
//! acknowledged call is checked against the rows.
//!
//! Shared by `cargo test bank` (a short run) and `cargo run --release --example bank` (a long one).
//!
//! Every call carries a key of its own and is repeated, with that key, after every retryable
//! failure, until it is acknowledged (`Ok`) or refused (a domain error such as
//! `InsufficientFunds`). That is the rule the crate documents: with a key, repeating a call is
//! always safe and returns the one result. The checks then hold the ledger to it:
//!
//! - every acknowledged call's rows exist exactly once and are the movement asked for, and its key
//!   names exactly them; a refused call left no row and no key;
//! - every row of `transactions` belongs to the funding or to an acknowledged call;
//! - each balance is its opening balance plus the acknowledged calls' effects (so money is
//!   conserved), none is negative, and `reconcile` finds nothing;
//! - after each restart, the same pool served calls again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ledger::accounts::{self, AccountId};
use ledger::local::{Cluster, Shutdown};
use ledger::transactions::{self, BatchItem, EntryId, Movement, Poster, PosterOptions, Transfer};
use ledger::users::{self, NewUser};
use ledger::{Error, Transient};
use rust_decimal::Decimal;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Concurrent clients.
    pub clients: usize,
    /// Hot accounts the clients move money among.
    pub accounts: usize,
    /// How long the clients run while faults are injected.
    pub duration: Duration,
    /// Mean time between two cancels, terminations or drops.
    pub fault_interval: Duration,
    /// Time between two restarts, alternating fast and immediate.
    pub restart_every: Duration,
    /// Seed of every random choice.
    pub seed: u64,
    /// Whether the single movements go through one shared `transactions::Poster` (shared
    /// commits) instead of each call's own transaction. Batches keep `post_batch_with_key`.
    pub poster: bool,
}

/// What happened, and what was wrong.
#[derive(Debug, Default)]
pub struct Report {
    /// Calls made (each counted once, however often it was repeated).
    pub calls: u64,
    /// Calls acknowledged, by kind.
    pub applied: BTreeMap<&'static str, u64>,
    /// Calls refused, by reason.
    pub refused: BTreeMap<String, u64>,
    /// Attempts that failed and were repeated, by error class.
    pub errors: BTreeMap<String, u64>,
    /// Calls that failed at least once and were then acknowledged or refused.
    pub retried_calls: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Rows of `transactions` written by the acknowledged calls.
    pub rows: u64,
    /// Every broken promise found by the checks; empty on a good run.
    pub anomalies: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "calls: {}", self.calls)?;
        writeln!(f, "  acknowledged: {:?}", self.applied)?;
        writeln!(f, "  refused: {:?}", self.refused)?;
        writeln!(
            f,
            "  failed at least once, then answered: {}",
            self.retried_calls
        )?;
        writeln!(f, "faults injected: {:?}", self.faults)?;
        writeln!(f, "failed attempts by class: {:?}", self.errors)?;
        writeln!(f, "rows written by acknowledged calls: {}", self.rows)?;
        writeln!(f, "anomalies: {}", self.anomalies.len())?;
        for anomaly in self.anomalies.iter().take(20) {
            writeln!(f, "  {anomaly}")?;
        }
        Ok(())
    }
}

/// Runs the bank on `database` of `cluster` (created if missing), which must be this run's alone:
/// the fault driver restarts the whole cluster.
///
/// # Errors
/// Only for a failed setup; whatever goes wrong while the faults run is in the report.
pub async fn run(cluster: &Cluster, database: &str, config: &Config) -> ledger::Result<Report> {
    cluster.create_database(database).await?;
    let options = cluster.connect_options(database);
    let pool = PgPoolOptions::new()
        .max_connections(config.clients as u32 + 2)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options.clone())
        .await?;
    ledger::schema::migrate(&mut *pool.acquire().await?).await?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(cluster.connect_options("postgres"))
        .await?;

    let opening = Decimal::new(100_000, 2); // 1,000.00
    let mut hot = Vec::with_capacity(config.accounts);
    for i in 0..config.accounts {
        let owner =
            users::insert(&pool, &NewUser::new(format!("bank{i}@example.com"), "Bank")).await?;
        let account = accounts::open(&pool, owner.id, Some("USD")).await?;
        transactions::deposit(
            &mut *pool.acquire().await?,
            &Movement::new(account.id, opening),
        )
        .await?;
        hot.push(account.id);
    }
    let funding_rows = hot.len() as u64;

    let started = Instant::now();
    let deadline = started + config.duration;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let poster = config
        .poster
        .then(|| Arc::new(Poster::new(pool.clone(), PosterOptions::default())));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..config.clients {
        let (pool, hot, tally) = (pool.clone(), hot.clone(), tally.clone());
        let poster = poster.clone();
        let mut rng = Rng::new(config.seed ^ (client as u64 + 1).wrapping_mul(0x9E37_79B9));
        clients.spawn(async move {
            let mut records = Vec::new();
            let mut seq = 0u64;
            while Instant::now() < deadline {
                seq += 1;
                let call = Call::random(&mut rng, &hot, format!("c{client}-{seq}"));
                let record =
                    execute(&pool, poster.as_deref(), call, &mut rng, deadline, &tally).await;
                records.push(record);
            }
            records
        });
    }
    let restarts = drive_faults(cluster, &admin, database, config, deadline, &tally).await;
    let mut records: Vec<Record> = clients.join_all().await.into_iter().flatten().collect();

    // The faults are over: every call still unanswered is repeated, with its key, until answered.
    for record in records.iter_mut().filter(|r| r.outcome.is_none()) {
        let late = Instant::now() + Duration::from_secs(60);
        let mut rng = Rng::new(config.seed);
        let answered = execute(
            &pool,
            poster.as_deref(),
            record.call.clone(),
            &mut rng,
            late,
            &tally,
        )
        .await;
        record.failures += answered.failures;
        record.outcome = answered.outcome;
        record.at = answered.at;
        record.answered = answered.answered;
    }

    if let Some(poster) = &poster {
        poster.close().await;
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
    let mut report = Report {
        calls: records.len() as u64,
        errors: tally.errors,
        faults: tally.faults,
        ..Report::default()
    };
    check(
        &pool,
        &records,
        &hot,
        opening,
        funding_rows,
        &restarts,
        &mut report,
    )
    .await?;
    pool.close().await;
    admin.close().await;
    Ok(report)
}

/// One call the client makes, under its own key.
#[derive(Debug, Clone)]
struct Call {
    key: String,
    op: Op,
}

#[derive(Debug, Clone)]
enum Op {
    Deposit(Movement),
    Withdraw(Movement),
    Transfer(Transfer),
    Batch(Vec<BatchItem>),
}

impl Call {
    fn random(rng: &mut Rng, hot: &[AccountId], key: String) -> Call {
        let account = |rng: &mut Rng| hot[rng.below(hot.len() as u64) as usize];
        let amount =
            |rng: &mut Rng, max_cents: u64| Decimal::new(rng.below(max_cents) as i64 + 1, 2);
        let pair = |rng: &mut Rng| {
            let from = account(rng);
            let mut to = account(rng);
            while to == from {
                to = account(rng);
            }
            (from, to)
        };
        let op = match rng.below(100) {
            0..=54 => {
                let (from, to) = pair(rng);
                Op::Transfer(Transfer::new(from, to, amount(rng, 5_000)).idempotency_key(&key))
            }
            55..=69 => {
                Op::Deposit(Movement::new(account(rng), amount(rng, 3_000)).idempotency_key(&key))
            }
            // Some withdrawals overdraw on purpose: refused, and nothing may be written.
            70..=84 => {
                let max = if rng.below(4) == 0 { 300_000 } else { 3_000 };
                Op::Withdraw(Movement::new(account(rng), amount(rng, max)).idempotency_key(&key))
            }
            _ => {
                let items = (0..2 + rng.below(3))
                    .map(|_| match rng.below(3) {
                        0 => BatchItem::Deposit(Movement::new(account(rng), amount(rng, 2_000))),
                        1 => BatchItem::Withdrawal(Movement::new(account(rng), amount(rng, 4_000))),
                        _ => {
                            let (from, to) = pair(rng);
                            BatchItem::Transfer(Transfer::new(from, to, amount(rng, 4_000)))
                        }
                    })
                    .collect();
                Op::Batch(items)
            }
        };
        Call { key, op }
    }

    fn kind(&self) -> &'static str {
        match self.op {
            Op::Deposit(_) => "deposit",
            Op::Withdraw(_) => "withdrawal",
            Op::Transfer(_) => "transfer",
            Op::Batch(_) => "batch",
        }
    }

    /// The movements the call makes, as (type, from, to, amount).
    fn movements(&self) -> Vec<(&'static str, Option<AccountId>, Option<AccountId>, Decimal)> {
        let item = |item: &BatchItem| match item {
            BatchItem::Deposit(m) => ("deposit", None, Some(m.account), m.amount),
            BatchItem::Withdrawal(m) => ("withdrawal", Some(m.account), None, m.amount),
            BatchItem::Transfer(t) => ("transfer", Some(t.from), Some(t.to), t.amount),
        };
        match &self.op {
            Op::Deposit(m) => vec![item(&BatchItem::Deposit(m.clone()))],
            Op::Withdraw(m) => vec![item(&BatchItem::Withdrawal(m.clone()))],
            Op::Transfer(t) => vec![item(&BatchItem::Transfer(t.clone()))],
            Op::Batch(items) => items.iter().map(item).collect(),
        }
    }

    async fn attempt(
        &self,
        pool: &PgPool,
        poster: Option<&Poster>,
    ) -> ledger::Result<Vec<EntryId>> {
        if let Some(poster) = poster {
            match &self.op {
                Op::Deposit(m) => return Ok(vec![poster.deposit(m.clone()).await?.id]),
                Op::Withdraw(m) => return Ok(vec![poster.withdraw(m.clone()).await?.id]),
                Op::Transfer(t) => return Ok(vec![poster.transfer(t.clone()).await?.id]),
                Op::Batch(_) => {}
            }
        }
        let mut conn = pool.acquire().await?;
        match &self.op {
            Op::Deposit(m) => Ok(vec![transactions::deposit(&mut conn, m).await?.id]),
            Op::Withdraw(m) => Ok(vec![transactions::withdraw(&mut conn, m).await?.id]),
            Op::Transfer(t) => Ok(vec![transactions::transfer(&mut conn, t).await?.id]),
            Op::Batch(items) => {
                transactions::post_batch_with_key(&mut conn, &self.key, items).await
            }
        }
    }
}

/// A call and its final answer: `Ok(entry ids)`, `Err(refusal)`, or `None` while unanswered.
struct Record {
    call: Call,
    outcome: Option<Result<Vec<EntryId>, String>>,
    failures: u32,
    at: Instant,
    /// Wall-clock time (the server's clock: the same machine) when the call began and when it
    /// was answered: every row it wrote has its `created_at` between the two.
    started: DateTime<Utc>,
    answered: DateTime<Utc>,
}

#[derive(Default)]
struct Tally {
    errors: BTreeMap<String, u64>,
    faults: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn error(tally: &Mutex<Tally>, class: String) {
        *tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .errors
            .entry(class)
            .or_default() += 1;
    }

    fn fault(tally: &Mutex<Tally>, kind: &'static str) {
        *tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .faults
            .entry(kind)
            .or_default() += 1;
    }
}

/// Makes the call, repeating it with its key after every retryable failure, until it is answered
/// or `give_up` passes. Now and then the attempt's future is dropped after a few milliseconds, as
/// a client that times out would.
async fn execute(
    pool: &PgPool,
    poster: Option<&Poster>,
    call: Call,
    rng: &mut Rng,
    give_up: Instant,
    tally: &Mutex<Tally>,
) -> Record {
    let mut failures = 0;
    let started = Utc::now();
    loop {
        let attempt = call.attempt(pool, poster);
        let result = if rng.below(40) == 0 {
            let after = Duration::from_micros(rng.below(4_000));
            match tokio::time::timeout(after, attempt).await {
                Ok(result) => Some(result),
                Err(_) => {
                    Tally::fault(tally, "dropped future");
                    None
                }
            }
        } else {
            Some(attempt.await)
        };
        let outcome = match result {
            Some(Ok(ids)) => Some(Ok(ids)),
            None => None,
            Some(Err(err)) if err.is_retryable() => {
                Tally::error(tally, class(&err));
                None
            }
            Some(Err(Error::Database(source))) => {
                // Not classified: with a key, repeating is safe all the same; count it.
                Tally::error(tally, format!("unclassified: {source}"));
                None
            }
            Some(Err(err)) => Some(Err(refusal(&err))),
        };
        if outcome.is_some() || Instant::now() >= give_up {
            return Record {
                call,
                outcome,
                failures,
                at: Instant::now(),
                started,
                answered: Utc::now(),
            };
        }
        failures += 1;
        tokio::time::sleep(Duration::from_millis(5 + rng.below(20))).await;
    }
}

fn class(err: &Error) -> String {
    match err.transient() {
        Some(Transient::ConnectionLost) => "connection lost".into(),
        Some(Transient::Cancelled) => "cancelled".into(),
        Some(Transient::ServerUnavailable) => "server unavailable".into(),
        Some(Transient::PoolTimedOut) => "pool timed out".into(),
        Some(other) => format!("{other}"),
        None => "serialization failure or deadlock".into(),
    }
}

fn refusal(err: &Error) -> String {
    match err {
        Error::InsufficientFunds { .. } => "insufficient funds".into(),
        Error::InvalidItem { source, .. } => format!("batch item: {}", refusal(source)),
        other => format!("{other}"),
    }
}

/// Cancels, terminates and restarts until `deadline`; returns when each restart finished.
async fn drive_faults(
    cluster: &Cluster,
    admin: &PgPool,
    database: &str,
    config: &Config,
    deadline: Instant,
    tally: &Mutex<Tally>,
) -> Vec<Instant> {
    let mut rng = Rng::new(config.seed.rotate_left(17));
    let mut restarts = Vec::new();
    let mut next_restart = Instant::now() + config.restart_every;
    let mut fast = true;
    loop {
        let mean = config.fault_interval.as_micros() as u64;
        tokio::time::sleep(Duration::from_micros(mean / 2 + rng.below(mean.max(1)))).await;
        let now = Instant::now();
        // Leave time after the last restart to see the pool serve again.
        if now + Duration::from_secs(3) >= deadline {
            return restarts;
        }
        if now >= next_restart {
            let (mode, kind) = if fast {
                (Shutdown::Fast, "restart (fast)")
            } else {
                (Shutdown::Immediate, "restart (immediate)")
            };
            fast = !fast;
            let cluster = cluster.clone();
            match tokio::task::spawn_blocking(move || cluster.restart(mode)).await {
                Ok(Ok(())) => {
                    Tally::fault(tally, kind);
                    restarts.push(Instant::now());
                }
                Ok(Err(err)) => Tally::error(tally, format!("restart failed: {err}")),
                Err(err) => Tally::error(tally, format!("restart panicked: {err}")),
            }
            next_restart = Instant::now() + config.restart_every;
            continue;
        }
        let terminate = rng.below(3) == 0;
        // One random busy backend of the bank's database (never the admin's own).
        let hit = sqlx::query_scalar!(
            r#"
            select case when $2 then pg_terminate_backend(pid) else pg_cancel_backend(pid) end
                as "hit!"
            from pg_stat_activity
            where datname = $1 and pid <> pg_backend_pid() and state = 'active'
            order by random()
            limit 1
            "#,
            database,
            terminate
        )
        .fetch_optional(admin)
        .await;
        if let Ok(Some(true)) = hit {
            Tally::fault(
                tally,
                if terminate {
                    "backend terminated"
                } else {
                    "statement cancelled"
                },
            );
        }
    }
}

/// Holds the rows to every acknowledged and refused call.
async fn check(
    pool: &PgPool,
    records: &[Record],
    hot: &[AccountId],
    opening: Decimal,
    funding_rows: u64,
    restarts: &[Instant],
    report: &mut Report,
) -> ledger::Result<()> {
    let rows: HashMap<EntryId, Row> = sqlx::query_as!(
        Row,
        r#"
        select id, type as kind,
               from_account_id,
               to_account_id,
               amount, idempotency_key, created_at
        from transactions
        "#
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| (row.id, row))
    .collect();
    let keys: HashMap<String, Vec<EntryId>> =
        sqlx::query!(r#"select key, entry_ids as "entry_ids: Vec<EntryId>" from idempotency_keys"#)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|k| (k.key, k.entry_ids))
            .collect();
    let mut keyed_rows: HashMap<&str, u64> = HashMap::new();
    for key in rows.values().filter_map(|r| r.idempotency_key.as_deref()) {
        *keyed_rows.entry(key).or_default() += 1;
    }

    let anomalies = &mut report.anomalies;
    let mut expected: HashMap<AccountId, Decimal> = hot.iter().map(|id| (*id, opening)).collect();
    let mut claimed: HashSet<EntryId> = HashSet::new();
    for record in records {
        let call = &record.call;
        if record.failures > 0 && record.outcome.is_some() {
            report.retried_calls += 1;
        }
        match &record.outcome {
            None => anomalies.push(format!("{}: never answered", call.key)),
            Some(Err(reason)) => {
                *report.refused.entry(reason.clone()).or_default() += 1;
                if keys.contains_key(&call.key) || keyed_rows.contains_key(call.key.as_str()) {
                    anomalies.push(format!("{}: refused ({reason}) but written", call.key));
                }
                if !reason.contains("insufficient funds") {
                    anomalies.push(format!("{}: unexpected refusal: {reason}", call.key));
                }
            }
            Some(Ok(ids)) => {
                *report.applied.entry(call.kind()).or_default() += 1;
                report.rows += ids.len() as u64;
                if keys.get(&call.key) != Some(ids) {
                    anomalies.push(format!(
                        "{}: the key does not name the rows returned",
                        call.key
                    ));
                }
                let single = !matches!(call.op, Op::Batch(_));
                let with_key = keyed_rows.get(call.key.as_str()).copied().unwrap_or(0);
                if with_key != u64::from(single) {
                    anomalies.push(format!("{}: {with_key} rows carry the key", call.key));
                }
                let movements = call.movements();
                if movements.len() != ids.len() {
                    anomalies.push(format!(
                        "{}: {} rows for {} movements",
                        call.key,
                        ids.len(),
                        movements.len()
                    ));
                }
                for (id, (kind, from, to, amount)) in ids.iter().zip(&movements) {
                    if !claimed.insert(*id) {
                        anomalies.push(format!("{}: row {id} acknowledged twice", call.key));
                    }
                    if let Some(row) = rows.get(id)
                        && !(record.started..=record.answered).contains(&row.created_at)
                    {
                        anomalies.push(format!(
                            "{}: row {id} was written at {}, outside its call ({} to {})",
                            call.key, row.created_at, record.started, record.answered
                        ));
                    }
                    match rows.get(id) {
                        Some(row)
                            if row.kind == *kind
                                && row.from_account_id == *from
                                && row.to_account_id == *to
                                && row.amount == *amount => {}
                        Some(_) => {
                            anomalies.push(format!("{}: row {id} is another movement", call.key))
                        }
                        None => anomalies.push(format!("{}: row {id} is missing", call.key)),
                    }
                    if let Some(from) = from {
                        *expected.entry(*from).or_default() -= amount;
                    }
                    if let Some(to) = to {
                        *expected.entry(*to).or_default() += amount;
                    }
                }
            }
        }
    }
    if rows.len() as u64 != funding_rows + claimed.len() as u64 {
        anomalies.push(format!(
            "{} rows in transactions, but {} funding rows and {} acknowledged",
            rows.len(),
            funding_rows,
            claimed.len()
        ));
    }

    for id in hot {
        let account = accounts::get(pool, *id).await?;
        let want = expected.get(&account.id).copied().unwrap_or_default();
        if account.balance != want {
            anomalies.push(format!(
                "account {}: balance {} but the acknowledged calls imply {want}",
                account.id, account.balance
            ));
        }
        if account.balance < Decimal::ZERO {
            anomalies.push(format!("account {}: negative balance", account.id));
        }
    }
    for finding in transactions::reconcile(pool).await? {
        anomalies.push(format!("reconcile: {finding:?}"));
    }
    for (n, restart) in restarts.iter().enumerate() {
        let served = records
            .iter()
            .any(|r| r.at > *restart && matches!(r.outcome, Some(Ok(_))));
        if !served {
            anomalies.push(format!(
                "restart {}: the pool served no call after it",
                n + 1
            ));
        }
    }
    Ok(())
}

struct Row {
    id: EntryId,
    kind: String,
    from_account_id: Option<AccountId>,
    to_account_id: Option<AccountId>,
    amount: Decimal,
    idempotency_key: Option<String>,
    created_at: DateTime<Utc>,
}

/// splitmix64: small, seeded, and good enough to pick calls and faults.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
