//! Failover on a real HA cluster: Patroni (Debian's `patroni` package) with one `etcd`
//! (`etcd-server`), one primary and two standbys on 127.0.0.1 in synchronous mode, started by
//! the test from the installed binaries as an unprivileged OS user, and a keyed money workload
//! through one multi-host pool (`target_session_attrs=read-write`) while the cluster loses its
//! primary, switches over, loses a standby and takes the old primary back. `cargo test ha`
//! runs exactly these. It is `#[ignore]`d (it needs both packages): `.ci/run` installs them and
//! runs it with `--ignored`, where a missing one fails the test.
//!
//! The workload, [`Load`], is shared with the plain promotion test of `hosts.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ledger::accounts;
use ledger::hosts::Session;
use ledger::ids::AccountId;
use ledger::replica::{Route, Router};
use ledger::transactions::{self, Movement, Transfer};
use ledger::{Config, Decimal};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;

use crate::support::{self, blocking, dec};

/// Two accounts that keyed transfers move 1.00 between, back and forth.
#[derive(Debug, Clone, Copy)]
pub struct Bank {
    a: AccountId,
    b: AccountId,
}

/// What each account starts with.
const FUNDS: &str = "1000.00";

impl Bank {
    /// The first account.
    pub fn a(&self) -> AccountId {
        self.a
    }

    pub async fn open(pool: &PgPool) -> Self {
        let owner = support::user(pool, "ha@example.com", "Failover").await;
        let mut conn = pool.acquire().await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let account = accounts::open(&mut *conn, owner.id, None).await.unwrap();
            transactions::deposit(&mut conn, &Movement::new(account.id, dec(FUNDS)))
                .await
                .unwrap();
            ids.push(account.id);
        }
        Self {
            a: ids[0],
            b: ids[1],
        }
    }
}

/// One acknowledged transfer.
#[derive(Debug, Clone)]
struct Acked {
    key: String,
    a_to_b: bool,
    at: Instant,
}

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Seen {
    acked: Vec<Acked>,
    /// Failed attempts: when, and the kind the caller saw.
    refused: Vec<(Instant, String)>,
    /// Keys that failed with `outcome_unknown()` at least once, then were acknowledged.
    unknown_then_acked: usize,
}

impl Seen {
    pub fn extend(&mut self, other: Seen) {
        self.acked.extend(other.acked);
        self.refused.extend(other.refused);
        self.unknown_then_acked += other.unknown_then_acked;
    }

    pub fn acknowledged(&self) -> usize {
        self.acked.len()
    }

    pub fn unknown_then_acked(&self) -> usize {
        self.unknown_then_acked
    }

    /// The longest stretch after `from` without an acknowledged transfer.
    pub fn outage_after(&self, from: Instant) -> Duration {
        let mut times: Vec<Instant> = self
            .acked
            .iter()
            .map(|a| a.at)
            .filter(|t| *t >= from)
            .collect();
        times.sort();
        let mut longest = Duration::ZERO;
        let mut last = from;
        for t in times {
            longest = longest.max(t - last);
            last = t;
        }
        longest
    }

    /// Every refused attempt, whatever its kind.
    pub fn refusals(&self) -> usize {
        self.refused.len()
    }

    /// The refused attempts after `from`, by kind.
    pub fn refused_after(&self, from: Instant) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (at, kind) in &self.refused {
            if *at >= from {
                *out.entry(kind.clone()).or_default() += 1;
            }
        }
        out
    }

    /// Every acknowledged transfer is on `conn`'s server exactly once, and nothing else is:
    /// the keys stored are the keys acknowledged, one entry each, the balances are what the
    /// acknowledged transfers make them, money is conserved, and `reconcile` is clean.
    pub async fn verify(&self, conn: &mut PgConnection, bank: &Bank) {
        let mut stored = sqlx::query_scalar!(
            "select key from idempotency_keys where key like 'ha-%' order by key"
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let mut acked: Vec<String> = self.acked.iter().map(|a| a.key.clone()).collect();
        stored.sort();
        acked.sort();
        assert_eq!(
            stored.len(),
            acked.len(),
            "keys stored against keys acknowledged"
        );
        assert_eq!(stored, acked, "the stored keys are the acknowledged ones");
        let transfers = sqlx::query_scalar!(
            r#"select count(*) as "n!" from transactions
               where type = 'transfer' and from_account_id in ($1, $2)"#,
            bank.a as _,
            bank.b as _
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(
            transfers,
            acked.len() as i64,
            "one entry per acknowledged key"
        );
        let a_to_b = self.acked.iter().filter(|a| a.a_to_b).count() as i64;
        let b_to_a = self.acked.len() as i64 - a_to_b;
        let a = accounts::get(&mut *conn, bank.a).await.unwrap().balance;
        let b = accounts::get(&mut *conn, bank.b).await.unwrap().balance;
        let funds = dec(FUNDS);
        assert_eq!(a, funds - Decimal::from(a_to_b) + Decimal::from(b_to_a));
        assert_eq!(a + b, funds + funds, "money is conserved");
        assert!(a >= Decimal::ZERO && b >= Decimal::ZERO);
        assert!(
            transactions::reconcile(&mut *conn)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

/// How long one transfer may go unacknowledged before the test fails: longer than any
/// scenario's outage (Patroni's 20 s leader key, then the promotion).
const GIVE_UP: Duration = Duration::from_secs(90);

/// Keyed clients moving 1.00 between the bank's two accounts through one pool, each repeating
/// a failed transfer with its key until it is acknowledged.
pub struct Load {
    stopping: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Seen>>,
}

impl Load {
    pub fn start(pool: &PgPool, bank: Bank, clients: usize, prefix: &str) -> Self {
        let stopping = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|client| {
                let (pool, stopping) = (pool.clone(), stopping.clone());
                let prefix = prefix.to_owned();
                tokio::spawn(async move {
                    let mut seen = Seen::default();
                    for n in 0.. {
                        if stopping.load(Ordering::Relaxed) {
                            break;
                        }
                        let key = format!("ha-{prefix}-{client}-{n}");
                        let a_to_b = n % 2 == 0;
                        let (from, to) = if a_to_b {
                            (bank.a, bank.b)
                        } else {
                            (bank.b, bank.a)
                        };
                        let transfer = Transfer::new(from, to, dec("1.00")).idempotency_key(&key);
                        let mut unknown = false;
                        let first_try = Instant::now();
                        loop {
                            let result = async {
                                let mut conn = pool.acquire().await?;
                                transactions::transfer(&mut conn, &transfer).await
                            }
                            .await;
                            match result {
                                Ok(_) => break,
                                Err(err) => {
                                    assert!(err.is_transient(), "{key}: {err:?}");
                                    assert!(
                                        first_try.elapsed() < GIVE_UP,
                                        "{key}: still refused after {GIVE_UP:?}: {err:?}"
                                    );
                                    unknown |= err.outcome_unknown();
                                    let kind = format!("{:?}", err.transient().unwrap());
                                    seen.refused.push((Instant::now(), kind));
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                            }
                        }
                        seen.unknown_then_acked += usize::from(unknown);
                        seen.acked.push(Acked {
                            key,
                            a_to_b,
                            at: Instant::now(),
                        });
                    }
                    seen
                })
            })
            .collect();
        Self { stopping, clients }
    }

    /// Stops the clients after their current transfer is acknowledged.
    pub async fn stop(self) -> Seen {
        self.stopping.store(true, Ordering::Relaxed);
        let mut seen = Seen::default();
        for client in self.clients {
            seen.extend(client.await.unwrap());
        }
        seen
    }
}

/// A port nothing listens on now, outside the ephemeral range (see `support::server_port`).
fn free_port() -> u16 {
    crate::support::server_port()
}

/// The unprivileged OS user a root test runs the servers as (PostgreSQL refuses root).
fn server_user() -> Option<(u32, u32)> {
    let is_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if !is_root {
        return None;
    }
    for name in ["postgres", "nobody"] {
        let id = |flag: &str| {
            let out = Command::new("id").args([flag, name]).output().ok()?;
            String::from_utf8(out.stdout)
                .ok()?
                .trim()
                .parse::<u32>()
                .ok()
        };
        if let (Some(uid), Some(gid)) = (id("-u"), id("-g")) {
            return Some((uid, gid));
        }
    }
    panic!("no unprivileged user (postgres, nobody) to run the servers as");
}

fn pg_bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries under /usr/lib/postgresql")
        .flatten()
        .map(|version| version.path().join("bin"))
        .filter(|bin| bin.join("pg_rewind").exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("a PostgreSQL bin directory with pg_rewind")
}

fn require(program: &str, package: &str) {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{program}` is missing: install Debian's `{package}` package (.ci/run does)"
    );
}

/// One member as `patronictl list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub node: usize,
    pub role: String,
    pub state: String,
    pub lag_mb: Option<i64>,
}

/// A Patroni cluster of three nodes and one etcd, removed however the test ends.
pub struct Patroni {
    root: PathBuf,
    etcd: Child,
    nodes: Vec<Option<Child>>,
    pg_ports: Vec<u16>,
    user: Option<(u32, u32)>,
}

pub const NODES: usize = 3;
const SUPERUSER_PASSWORD: &str = "ha-superuser";

impl Patroni {
    pub async fn start(name: &str) -> Self {
        require("patroni", "patroni");
        require("etcd", "etcd-server");
        let root = std::env::temp_dir().join(format!("ledger-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let user = server_user();
        let (client, peer) = (free_port(), free_port());
        let pg_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let rest_ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
        let bin = pg_bin_dir();
        for node in 0..NODES {
            let dir = root.join(format!("n{node}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                root.join(format!("n{node}.yml")),
                node_config(
                    name,
                    node,
                    &dir,
                    &bin,
                    client,
                    pg_ports[node],
                    rest_ports[node],
                ),
            )
            .unwrap();
        }
        if let Some((uid, gid)) = user {
            let status = Command::new("chown")
                .args(["-R", &format!("{uid}:{gid}")])
                .arg(&root)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let etcd = spawn_as(
            user,
            Command::new("etcd")
                .args(["--name", "etcd", "--data-dir"])
                .arg(root.join("etcd"))
                .args([
                    "--listen-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                    "--advertise-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                    "--listen-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                    "--initial-cluster",
                    &format!("etcd=http://127.0.0.1:{peer}"),
                ]),
            &root.join("etcd.log"),
        );
        let mut cluster = Self {
            root,
            etcd,
            nodes: (0..NODES).map(|_| None).collect(),
            pg_ports,
            user,
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        for node in 0..NODES {
            cluster.start_node(node);
            // The first node bootstraps; the others clone it.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        cluster
            .wait_healthy("bootstrap", Duration::from_secs(120))
            .await;
        cluster
    }

    /// The writer's URL: every node, `target_session_attrs=read-write`.
    pub fn url(&self, database: &str) -> String {
        let hosts: Vec<String> = self
            .pg_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!(
            "postgres://ledger:{SUPERUSER_PASSWORD}@{}/{database}?target_session_attrs=read-write&sslmode=disable",
            hosts.join(",")
        )
    }

    /// One node's URL, whatever its role.
    pub fn node_url(&self, node: usize, database: &str) -> String {
        format!(
            "postgres://ledger:{SUPERUSER_PASSWORD}@127.0.0.1:{}/{database}?sslmode=disable",
            self.pg_ports[node]
        )
    }

    pub async fn connect_node(&self, node: usize, database: &str) -> PgConnection {
        PgConnection::connect(&self.node_url(node, database))
            .await
            .unwrap()
    }

    fn config(&self, node: usize) -> PathBuf {
        self.root.join(format!("n{node}.yml"))
    }

    pub fn start_node(&mut self, node: usize) {
        let mut command = Command::new("patroni");
        command.arg(self.config(node));
        let log = self.root.join(format!("n{node}.log"));
        self.nodes[node] = Some(spawn_as(self.user, &mut command, &log));
    }

    /// `patronictl list`.
    pub async fn members(&self) -> Vec<Member> {
        let config = self.config(0);
        let out = blocking(move || {
            Command::new("patronictl")
                .arg("-c")
                .arg(config)
                .args(["list", "-f", "json"])
                .output()
                .unwrap()
        })
        .await;
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        list.iter()
            .filter_map(|m| {
                let node = m["Member"].as_str()?.strip_prefix('n')?.parse().ok()?;
                Some(Member {
                    node,
                    role: m["Role"].as_str()?.to_owned(),
                    state: m["State"].as_str()?.to_owned(),
                    lag_mb: m["Lag in MB"].as_i64(),
                })
            })
            .collect()
    }

    /// Waits until one node leads, one is its synchronous standby, every node runs and no
    /// replica lags.
    pub async fn wait_healthy(&self, what: &str, timeout: Duration) -> Vec<Member> {
        let deadline = Instant::now() + timeout;
        loop {
            let members = self.members().await;
            let running = |m: &Member| m.state == "running" || m.state == "streaming";
            let healthy = members.len() == NODES
                && members.iter().all(running)
                && members.iter().filter(|m| m.role == "Leader").count() == 1
                && members.iter().any(|m| m.role == "Sync Standby")
                && members
                    .iter()
                    .filter(|m| m.role != "Leader")
                    .all(|m| m.lag_mb == Some(0));
            if healthy {
                return members;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: the cluster is not healthy after {timeout:?}: {members:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until a node other than `old` leads, and returns it.
    pub async fn wait_new_leader(&self, old: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let members = self.members().await;
            if let Some(leader) = members
                .iter()
                .find(|m| m.role == "Leader" && m.state == "running" && m.node != old)
            {
                return leader.node;
            }
            assert!(
                Instant::now() < deadline,
                "no new leader after {timeout:?}: {members:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn leader(&self) -> usize {
        let members = self.members().await;
        members
            .iter()
            .find(|m| m.role == "Leader")
            .unwrap_or_else(|| panic!("no leader: {members:?}"))
            .node
    }

    /// The synchronous standby, waiting for Patroni to name one (it re-chooses after a
    /// member restarts).
    pub async fn sync_standby(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let members = self.members().await;
            if let Some(standby) = members.iter().find(|m| m.role == "Sync Standby") {
                return standby.node;
            }
            assert!(
                Instant::now() < deadline,
                "no synchronous standby: {members:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn postmaster_pid(&self, node: usize) -> Option<String> {
        let pid_file = self.root.join(format!("n{node}/data/postmaster.pid"));
        let text = std::fs::read_to_string(pid_file).ok()?;
        text.lines().next().map(|pid| pid.trim().to_owned())
    }

    /// `kill -9` of the node's postmaster; its Patroni goes on running.
    pub fn kill_postmaster(&self, node: usize) {
        let pid = self.postmaster_pid(node).expect("the postmaster runs");
        assert!(
            Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// The node's machine dies: `kill -9` of its Patroni and its postmaster.
    pub fn kill_node(&mut self, node: usize) {
        let pid = self.postmaster_pid(node);
        if let Some(mut patroni) = self.nodes[node].take() {
            let _ = patroni.kill();
            let _ = patroni.wait();
        }
        if let Some(pid) = pid {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }

    /// Stops the node as an operator would: Patroni shuts its server down and exits.
    pub async fn stop_node(&mut self, node: usize) {
        if let Some(mut patroni) = self.nodes[node].take() {
            let pid = patroni.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            blocking(move || patroni.wait().unwrap()).await;
        }
    }

    /// A planned switchover to `candidate`.
    pub async fn switchover(&self, leader: usize, candidate: usize) {
        let config = self.config(0);
        let out = blocking(move || {
            Command::new("patronictl")
                .arg("-c")
                .arg(config)
                .args([
                    "switchover",
                    "--leader",
                    &format!("n{leader}"),
                    "--candidate",
                    &format!("n{candidate}"),
                    "--force",
                ])
                .output()
                .unwrap()
        })
        .await;
        assert!(
            out.status.success(),
            "switchover: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn logs(&self) -> String {
        (0..NODES)
            .map(|node| {
                let log = std::fs::read_to_string(self.root.join(format!("n{node}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- n{node}.log\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Patroni {
    fn drop(&mut self) {
        for node in 0..NODES {
            if let Some(patroni) = &self.nodes[node] {
                let _ = Command::new("kill")
                    .args(["-TERM", &patroni.id().to_string()])
                    .status();
            }
        }
        for node in 0..NODES {
            if let Some(mut patroni) = self.nodes[node].take() {
                let deadline = Instant::now() + Duration::from_secs(20);
                while patroni.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = patroni.kill();
                let _ = patroni.wait();
            }
            if let Some(pid) = self.postmaster_pid(node) {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        }
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn spawn_as(user: Option<(u32, u32)>, command: &mut Command, log: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).unwrap();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(log, Some(uid), Some(gid)).unwrap();
        command.uid(uid).gid(gid);
    }
    command
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

/// One node's `patroni.yml`: synchronous mode (an acknowledged commit is on the synchronous
/// standby), `pg_rewind` for a primary that comes back, trust on loopback.
fn node_config(
    scope: &str,
    node: usize,
    dir: &Path,
    bin: &Path,
    etcd: u16,
    pg_port: u16,
    rest_port: u16,
) -> String {
    let dir = dir.display();
    format!(
        "scope: ledger-{scope}-{pid}
name: n{node}
log:
  level: INFO
restapi:
  listen: 127.0.0.1:{rest_port}
  connect_address: 127.0.0.1:{rest_port}
etcd3:
  hosts: 127.0.0.1:{etcd}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_log_hints: 'on'
  initdb:
  - encoding: UTF8
  - locale: C.UTF-8
  pg_hba:
  - local all all trust
  - local replication all trust
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:{pg_port}
  connect_address: 127.0.0.1:{pg_port}
  data_dir: {dir}/data
  bin_dir: {bin}
  pgpass: {dir}/pgpass
  authentication:
    superuser:
      username: ledger
      password: {SUPERUSER_PASSWORD}
    replication:
      username: replicator
      password: replicator
    rewind:
      username: rewinder
      password: rewinder
  parameters:
    unix_socket_directories: '{dir}'
",
        pid = std::process::id(),
        bin = bin.display(),
    )
}

/// Everything the scenarios did.
#[derive(Default)]
struct Record {
    seen: Seen,
    rows: Vec<Row>,
}

/// What one scenario did to the callers.
struct Row {
    scenario: &'static str,
    outage: Duration,
    acknowledged: usize,
    refused: BTreeMap<String, usize>,
}

/// The workload and what it saw, through the scenarios of one cluster.
struct Run {
    pool: PgPool,
    router: Router,
    bank: Bank,
    record: Record,
}

impl Run {
    /// Starts the clients, and lets them run before the scenario's event.
    async fn begin(&self, prefix: &str) -> Load {
        let load = Load::start(&self.pool, self.bank, CLIENTS, prefix);
        tokio::time::sleep(Duration::from_secs(2)).await;
        load
    }

    /// Lets writes go on for a while after the cluster is whole again, stops them, records the
    /// scenario, and checks the books and the routes on the leader.
    async fn settle(&mut self, cluster: &Patroni, load: Load, name: &'static str, event: Instant) {
        // Writes go on for a while after the cluster is whole again.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let scenario = load.stop().await;
        self.record.rows.push(Row {
            scenario: name,
            outage: scenario.outage_after(event),
            acknowledged: scenario.acknowledged(),
            refused: scenario.refused_after(event),
        });
        self.record.seen.extend(scenario);
        let leader = cluster.leader().await;
        let mut on_leader = cluster.connect_node(leader, "ledger").await;
        assert!(!Session::of(&mut on_leader).await.unwrap().in_recovery);
        self.record.seen.verify(&mut on_leader, &self.bank).await;
        // The pool's connections are on the leader too.
        let mut pooled = self.pool.acquire().await.unwrap();
        let port = sqlx::query_scalar!(r#"select inet_server_port() as "port!""#)
            .fetch_one(&mut *pooled)
            .await
            .unwrap();
        assert_eq!(port as u16, cluster.pg_ports[leader], "{name}");
        drop(pooled);
        // The router's writer follows the leader too, and its reads find a standby again.
        // (Its connections sat idle through the event: the first use of one to a server that
        // went away is a transient error, as for any caller, and the repeat is served.)
        let mut tries = 0;
        let session = loop {
            tries += 1;
            let attempt = async {
                let mut conn = self.router.writer().acquire().await?;
                Session::of(&mut conn).await
            };
            match attempt.await {
                Ok(session) => break session,
                Err(err) if err.is_transient() && tries < 10 => continue,
                Err(err) => panic!("{name}: {err:?}"),
            }
        };
        assert!(!session.in_recovery, "{name}");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut read = self.router.read().await.unwrap();
            if let Route::Replica(index) = read.route() {
                assert_ne!(index, leader, "{name}: the leader served as a replica");
                assert!(Session::of(&mut read).await.unwrap().in_recovery, "{name}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: no standby served a read: {:?}",
                self.router.stats()
            );
            drop(read);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

const CLIENTS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs patroni and etcd-server: apt-get install patroni etcd-server (docs/development.md)"]
async fn patroni_failover_switchover_and_rejoin_lose_no_acknowledged_movement() {
    let mut cluster = Patroni::start("ha").await;
    let leader = cluster.leader().await;
    {
        let config = Config::from_url(&cluster.node_url(leader, "postgres")).unwrap();
        config.create_database("ledger").await.unwrap();
        let pool = config.with_database("ledger").connect().await.unwrap();
        ledger::MIGRATOR.run(&pool).await.unwrap();
        pool.close().await;
    }
    let config = Config::from_url(&cluster.url("ledger")).unwrap();
    let pool = config.connect().await.unwrap();
    // Reads through a router over the same list: whichever hosts are standbys serve them.
    let router = Router::connect_hosts(&config)
        .await
        .unwrap()
        .retry_after(Duration::from_millis(200));
    assert_eq!(router.replicas(), NODES);
    let bank = Bank::open(&pool).await;
    let mut run = Run {
        pool,
        router,
        bank,
        record: Record::default(),
    };

    // 1. `kill -9` of the primary's postmaster: Patroni, still holding the leader key,
    //    restarts it (crash recovery), or hands over if it cannot.
    let load = run.begin("postmaster").await;
    let leader = cluster.leader().await;
    let event = Instant::now();
    cluster.kill_postmaster(leader);
    cluster
        .wait_healthy("postmaster killed", Duration::from_secs(90))
        .await;
    run.settle(
        &cluster,
        load,
        "`kill -9` of the primary's postmaster",
        event,
    )
    .await;

    // 2. A planned switchover to the synchronous standby.
    let load = run.begin("switchover").await;
    let (leader, candidate) = (cluster.leader().await, cluster.sync_standby().await);
    let event = Instant::now();
    cluster.switchover(leader, candidate).await;
    assert_eq!(
        cluster
            .wait_new_leader(leader, Duration::from_secs(60))
            .await,
        candidate
    );
    cluster
        .wait_healthy("switchover", Duration::from_secs(90))
        .await;
    run.settle(
        &cluster,
        load,
        "planned switchover (`patronictl switchover`)",
        event,
    )
    .await;

    // 3. The synchronous standby stopped, then started again: Patroni makes the other standby
    //    synchronous meanwhile.
    let load = run.begin("standby").await;
    let standby = cluster.sync_standby().await;
    let event = Instant::now();
    cluster.stop_node(standby).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.start_node(standby);
    cluster
        .wait_healthy("standby restarted", Duration::from_secs(90))
        .await;
    run.settle(
        &cluster,
        load,
        "synchronous standby stopped and restarted",
        event,
    )
    .await;

    // 4. The primary's machine dies (`kill -9` of its Patroni and its postmaster): the leader key
    //    expires (ttl 20 s) and the synchronous standby is promoted.
    let load = run.begin("node").await;
    let lost = cluster.leader().await;
    let event = Instant::now();
    cluster.kill_node(lost);
    cluster.wait_new_leader(lost, Duration::from_secs(90)).await;
    run.settle(
        &cluster,
        load,
        "primary's node killed (Patroni and postmaster)",
        event,
    )
    .await;

    // 5. The old primary comes back and rejoins as a standby (`pg_rewind`).
    let load = run.begin("rejoin").await;
    let event = Instant::now();
    cluster.start_node(lost);
    let members = cluster
        .wait_healthy("old primary rejoined", Duration::from_secs(120))
        .await;
    assert!(
        members.iter().any(|m| m.node == lost && m.role != "Leader"),
        "{members:?}"
    );
    run.settle(
        &cluster,
        load,
        "old primary rejoins as a standby (`pg_rewind`)",
        event,
    )
    .await;
    run.pool.close().await;
    run.router.writer().close().await;
    let record = run.record;

    println!(
        "| scenario | longest time without a write | transfers acknowledged | attempts refused meanwhile (what the caller saw) |"
    );
    println!("| :--- | ---: | ---: | :--- |");
    for row in &record.rows {
        let refused: Vec<String> = row
            .refused
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        println!(
            "| {} | {:.2} s | {} | {} |",
            row.scenario,
            row.outage.as_secs_f64(),
            row.acknowledged,
            if refused.is_empty() {
                "none".to_owned()
            } else {
                refused.join(", ")
            }
        );
    }
    println!(
        "{} transfers acknowledged in all; {} were repeated after an unknown outcome and applied once",
        record.seen.acknowledged(),
        record.seen.unknown_then_acked()
    );
    assert!(
        record.rows.iter().any(|r| !r.refused.is_empty()),
        "no caller saw any scenario: the workload did not run through them"
    );
}
