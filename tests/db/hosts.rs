//! Host lists against libpq itself: the same strings handed to `psql` and to [`Config`], on
//! ports nothing listens on (the order each tries the servers in, and what each refuses before
//! connecting), then on a real primary and hot standby of their own (which server each
//! `target_session_attrs` takes). `cargo test hosts` runs exactly these.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ledger::hosts::{Endpoint, Exhausted, Session, TargetSessionAttrs};
use ledger::local::{Cluster, Settings};
use ledger::{Config, Error, Transient};
use sqlx::{Connection, PgConnection};

use crate::support::blocking;

/// libpq's client: the one beside the server binaries the private cluster uses, else `psql` on
/// the PATH.
fn psql() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin/psql"))
        .filter(|path| path.exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| PathBuf::from("psql"))
}

/// What psql did with a connection string: the servers it tried, in order, or the line with
/// which it refused the string before trying any.
#[derive(Debug, PartialEq)]
enum Libpq {
    Tried(Vec<String>),
    Refused(String),
}

fn libpq(conninfo: &str, env: &[(&str, &str)]) -> Libpq {
    let out = Command::new(psql())
        .args(["-X", "-w", "-d", conninfo, "-c", "select 1"])
        .envs(env.iter().copied())
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env("PGCONNECT_TIMEOUT", "2")
        .output()
        .expect("psql runs");
    assert!(!out.status.success(), "nothing listens, yet psql connected");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let tried: Vec<String> = stderr
        .lines()
        .filter_map(|line| {
            let rest = line.split_once("connection to server ")?.1;
            if let Some(at) = rest.strip_prefix("at \"") {
                let (host, after) = at.split_once('"')?;
                let port = after.split_once("port ")?.1.split_whitespace().next()?;
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.to_owned()
                };
                Some(format!("{host}:{port}"))
            } else {
                let socket = rest.strip_prefix("on socket \"")?.split_once('"')?.0;
                let (dir, port) = socket.rsplit_once("/.s.PGSQL.")?;
                Some(format!("socket {dir}/.s.PGSQL.{port}"))
            }
        })
        .collect();
    if tried.is_empty() {
        Libpq::Refused(stderr.trim().to_owned())
    } else {
        Libpq::Tried(tried)
    }
}

/// What ledger does with the same configuration: the servers its walk tried, or its one line.
async fn ledger(config: Result<Config, Error>) -> Libpq {
    let config = match config {
        Ok(config) => config,
        Err(err) => return Libpq::Refused(err.to_string()),
    };
    let err = config.connect_one().await.expect_err("nothing listens");
    let walk = Exhausted::of(&err).unwrap_or_else(|| panic!("no walk in {err:?}"));
    assert_eq!(err.transient(), Some(Transient::ConnectionLost), "{err:?}");
    Libpq::Tried(walk.attempts().map(|(e, _)| e.to_string()).collect())
}

/// Ports on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

#[tokio::test]
async fn host_lists_are_walked_in_the_order_libpq_walks_them() {
    let [a, b, c] = closed_ports(3)[..] else {
        unreachable!()
    };
    let urls = [
        format!("postgres://u:pw@127.0.0.1:{a},127.0.0.1:{b},127.0.0.1:{c}/db"),
        format!("postgresql://u@127.0.0.1:{a},[::1]:{b}/db?sslmode=disable"),
        format!("postgres://u@127.0.0.1:{c},127.0.0.1:{a}/db?target_session_attrs=read-write"),
        format!("postgres://u@127.0.0.1:{a},127.0.0.1:{b}/db?target_session_attrs=primary"),
        format!("postgres://u@127.0.0.1:{b}/db?target_session_attrs=standby"),
        // Two passes: standbys first, then any server.
        format!("postgres://u@127.0.0.1:{a},127.0.0.1:{b}/db?target_session_attrs=prefer-standby"),
        format!("postgres://u@127.0.0.1:{a},127.0.0.1:{b}/db?connect_timeout=3"),
    ];
    for url in &urls {
        let theirs = libpq(url, &[]);
        assert!(matches!(theirs, Libpq::Tried(_)), "{url}: {theirs:?}");
        assert_eq!(ledger(Config::from_url(url)).await, theirs, "{url}");
    }

    // The seed's variables beside libpq's keywords: one port for every host, or one each.
    let cases = [
        ("127.0.0.1,127.0.0.1".to_owned(), format!("{a},{b}"), "any"),
        (
            "127.0.0.1,127.0.0.1".to_owned(),
            a.to_string(),
            "read-write",
        ),
    ];
    for (hosts, ports, attrs) in &cases {
        let conninfo =
            format!("host={hosts} port={ports} dbname=db user=u target_session_attrs={attrs}");
        let theirs = libpq(&conninfo, &[]);
        let vars = [
            ("DB_NAME", "db".to_owned()),
            ("DB_USER", "u".to_owned()),
            ("DB_HOST", hosts.clone()),
            ("DB_PORT", ports.clone()),
            ("DB_TARGET_SESSION_ATTRS", (*attrs).to_owned()),
        ];
        let config =
            Config::from_lookup(|key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
                .map(Option::unwrap);
        assert_eq!(ledger(config).await, theirs, "{conninfo}");
    }
}

#[tokio::test]
async fn what_libpq_refuses_before_connecting_ledger_refuses_in_one_line() {
    let [a, b] = closed_ports(2)[..] else {
        unreachable!()
    };
    // (URL, what psql says, what ledger says)
    let cases = [
        (
            format!("postgres://u@127.0.0.1:{a},127.0.0.1:{b}/db?target_session_attrs=writer"),
            "invalid target_session_attrs value: \"writer\"",
            "invalid target_session_attrs value: \"writer\"",
        ),
        (
            format!("postgres://u@127.0.0.1:x,127.0.0.1:{a}/db"),
            "invalid integer value \"x\" for connection option \"port\"",
            "database URL: port 1 of 2 is not a port number",
        ),
    ];
    for (url, psql_says, ledger_says) in &cases {
        match libpq(url, &[]) {
            Libpq::Refused(line) => assert!(line.contains(psql_says), "{url}: {line}"),
            other => panic!("{url}: psql tried {other:?}"),
        }
        match ledger(Config::from_url(url)).await {
            Libpq::Refused(line) => {
                assert!(line.contains(ledger_says), "{url}: {line}");
                assert!(!line.contains("pw"), "{line}");
            }
            other => panic!("{url}: ledger tried {other:?}"),
        }
    }
    // A connect_timeout that is not a number: libpq gives up at the first host, with the line
    // ledger gives before any.
    let url = format!("postgres://u@127.0.0.1:{a},127.0.0.1/db?connect_timeout=soon");
    let out = Command::new(psql())
        .args(["-X", "-w", "-d", &url, "-c", "select 1"])
        .env_remove("PGCONNECT_TIMEOUT")
        .output()
        .unwrap();
    let said = "invalid integer value \"soon\" for connection option \"connect_timeout\"";
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!("psql: error: connection to server at \"127.0.0.1\", port {a} failed: {said}")
    );
    assert_eq!(
        ledger(Config::from_url(&url)).await,
        Libpq::Refused(format!("configuration: {said}"))
    );

    // libpq keywords against the seed's variables: a port count that is neither 1 nor the hosts'.
    let theirs = libpq(
        &format!("host=127.0.0.1,127.0.0.1 port={a},{b},{a} dbname=db user=u"),
        &[],
    );
    assert_eq!(
        theirs,
        Libpq::Refused("psql: error: could not match 3 port numbers to 2 hosts".to_owned())
    );
    let vars = [
        ("DB_NAME", "db".to_owned()),
        ("DB_HOST", "127.0.0.1,127.0.0.1".to_owned()),
        ("DB_PORT", format!("{a},{b},{a}")),
    ];
    let ours =
        Config::from_lookup(|key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
            .unwrap_err();
    assert_eq!(
        ours.to_string(),
        "configuration: DB_PORT: could not match 3 port numbers to 2 hosts"
    );
}

#[tokio::test]
async fn where_ledger_differs_from_libpq_it_does_so_as_documented() {
    let [a] = closed_ports(1)[..] else {
        unreachable!()
    };
    // An empty entry: libpq tries its default unix socket there; ledger names the entry.
    let url = format!("postgres://u@127.0.0.1:{a},,127.0.0.1:{a}/db");
    match libpq(&url, &[]) {
        // (It stops there when a server on that socket refuses the role, and goes on when none.)
        Libpq::Tried(tried) => assert!(tried[1].starts_with("socket "), "{tried:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ledger(Config::from_url(&url)).await,
        Libpq::Refused(
            "configuration: database URL: host 2 of 3 is empty (libpq would read it as its \
             default unix socket; name the server)"
                .to_owned()
        )
    );
    // A bad port later in the list: libpq finds it only when its walk reaches that host, after
    // trying the ones before; ledger refuses the whole list before connecting anywhere.
    let url = format!("postgres://u@127.0.0.1:{a},127.0.0.1:x/db");
    let theirs = libpq(&url, &[]);
    assert_eq!(theirs, Libpq::Tried(vec![format!("127.0.0.1:{a}")]));
    assert_eq!(
        ledger(Config::from_url(&url)).await,
        Libpq::Refused(
            "configuration: database URL: port 2 of 2 is not a port number (1 to 65535)".to_owned()
        )
    );
    // A port out of range: libpq counts that host as failed and goes on to the next.
    let url = format!("postgres://u@127.0.0.1:99999,127.0.0.1:{a}/db");
    assert_eq!(
        libpq(&url, &[]),
        Libpq::Tried(vec![format!("127.0.0.1:{a}")])
    );
    assert_eq!(
        ledger(Config::from_url(&url)).await,
        Libpq::Refused(
            "configuration: database URL: port 1 of 2 is not a port number (1 to 65535)".to_owned()
        )
    );
    // `load_balance_hosts` is libpq 16's; this machine's psql may be older and refuse it.
    let url = format!("postgres://u@127.0.0.1:{a},127.0.0.1:{a}/db?load_balance_hosts=random");
    let theirs = libpq(&url, &[]);
    let ours = ledger(Config::from_url(&url)).await;
    assert_eq!(
        ours,
        Libpq::Tried(vec![format!("127.0.0.1:{a}"), format!("127.0.0.1:{a}")])
    );
    match theirs {
        Libpq::Refused(line) => {
            assert!(
                line.contains("invalid URI query parameter: \"load_balance_hosts\""),
                "{line}"
            );
        }
        tried => assert_eq!(tried, ours),
    }
}

/// A primary and its hot standby, each on its own unix socket; stopped and removed however the
/// test ends.
struct Pair {
    primary: Cluster,
    standby: Cluster,
    root: PathBuf,
}

impl Pair {
    async fn start(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("ledger-{name}-{}", std::process::id()));
        for dir in ["p", "s"] {
            let _ = Cluster::stop(&root.join(dir));
        }
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let dir = root.join("p");
        let primary = blocking(move || Cluster::ensure_with(&dir, &Settings::default()))
            .await
            .unwrap();
        primary.create_database("ledger").await.unwrap();
        let (dir, from) = (root.join("s"), primary.clone());
        let standby = blocking(move || Cluster::ensure_standby(&dir, &from))
            .await
            .unwrap();
        Self {
            primary,
            standby,
            root,
        }
    }

    fn endpoint(cluster: &Cluster) -> Endpoint {
        Endpoint::socket(cluster.dir(), cluster.port())
    }

    /// A URL listing `servers`, percent-encoded as libpq reads a socket directory.
    fn url(servers: &[&Cluster], attrs: &str) -> String {
        let list: Vec<String> = servers
            .iter()
            .map(|c| {
                let dir = c.dir().display().to_string().replace('/', "%2F");
                format!("{dir}:{}", c.port())
            })
            .collect();
        format!(
            "postgres://ledger@{}/ledger?target_session_attrs={attrs}",
            list.join(",")
        )
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for dir in ["s", "p"] {
            let _ = Cluster::stop(&self.root.join(dir));
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Which server psql's connection reached.
fn psql_in_recovery(conninfo: &str) -> bool {
    let out = Command::new(psql())
        .args([
            "-X",
            "-w",
            "-At",
            "-d",
            conninfo,
            "-c",
            "select pg_is_in_recovery()",
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim() == "t"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_session_attrs_takes_the_server_libpq_takes() {
    let pair = Pair::start("hosts-attrs").await;
    let (p, s) = (&pair.primary, &pair.standby);
    let attrs = [
        "any",
        "read-write",
        "read-only",
        "primary",
        "standby",
        "prefer-standby",
    ];
    let mut compared = 0;
    for order in [[p, s], [s, p]] {
        for attr in attrs {
            let url = Pair::url(&order, attr);
            let theirs = psql_in_recovery(&url);
            let config = Config::from_url(&url).unwrap();
            let mut conn = config.connect_one().await.unwrap();
            let ours = Session::of(&mut conn).await.unwrap();
            assert_eq!(ours.in_recovery, theirs, "{attr}, {url}");
            conn.close().await.unwrap();
            // The pool's connections reach the same server.
            let pool = config.connect().await.unwrap();
            let mut pooled = pool.acquire().await.unwrap();
            assert_eq!(Session::of(&mut pooled).await.unwrap(), ours, "{attr}");
            drop(pooled);
            pool.close().await;
            compared += 1;
        }
    }
    assert_eq!(compared, 12);

    // Only standbys listed, a primary asked for: psql and ledger both refuse, and ledger's
    // refusal is typed, transient, and names the server and what it is.
    let url = Pair::url(&[s, s], "read-write");
    let out = Command::new(psql())
        .args(["-X", "-w", "-d", &url, "-c", "select 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("read-only"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = Config::from_url(&url)
        .unwrap()
        .connect_one()
        .await
        .unwrap_err();
    assert_eq!(
        err.transient(),
        Some(Transient::NoMatchingServer),
        "{err:?}"
    );
    assert!(!err.outcome_unknown());
    let walk = Exhausted::of(&err).unwrap();
    let said: Vec<_> = walk
        .attempts()
        .map(|(e, why)| (e.clone(), why.to_owned()))
        .collect();
    assert_eq!(
        said,
        vec![(Pair::endpoint(s), "a standby".to_owned()); 2],
        "{walk}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_that_reaches_a_standby_is_replaced_by_the_primary() {
    let pair = Pair::start("hosts-pool").await;
    let (p, s) = (&pair.primary, &pair.standby);
    let config = Config::from_url(&Pair::url(&[p, s], "read-write")).unwrap();
    assert_eq!(
        config.hosts().unwrap().target_session_attrs(),
        TargetSessionAttrs::ReadWrite
    );
    // A pool whose dial reaches the standby, as one does after a failover turned the first
    // host of its list into a standby: every connection it opens is checked and replaced.
    let standby_first = Pair::endpoint(s).apply_to(&config.connect_options());
    let pool = config
        .pool_options()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(20))
        .connect_lazy_with(standby_first);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = pool.acquire().await.unwrap();
        let session = Session::of(&mut conn).await.unwrap();
        assert!(!session.in_recovery && !session.read_only, "{session:?}");
        held.push(conn);
    }
    // The writes go to the primary: a table made through the pool is on the primary.
    sqlx::raw_sql("create table reached(x int)")
        .execute(&mut *held[0])
        .await
        .unwrap();
    drop(held);
    pool.close().await;
    let mut primary = PgConnection::connect_with(&p.connect_options("ledger"))
        .await
        .unwrap();
    let found = sqlx::query_scalar!(r#"select to_regclass('reached') is not null as "found!""#)
        .fetch_one(&mut primary)
        .await
        .unwrap();
    assert!(found);
}

/// The plain building block under an HA engine: the primary is killed (`kill -9` of its
/// postmaster) and its synchronous standby promoted at once (`pg_ctl promote`), under keyed
/// transfers through one host-list pool. `ha.rs` runs the same workload on Patroni.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_follows_the_primary_through_a_kill_and_a_promotion_and_loses_no_acknowledged_transfer()
 {
    use crate::ha::{Bank, Load};
    use std::time::Instant;

    let pair = Pair::start("hosts-failover").await;
    let (p, s) = (&pair.primary, &pair.standby);
    {
        let pool = Config::local(p, "ledger").connect().await.unwrap();
        ledger::MIGRATOR.run(&pool).await.unwrap();
        pool.close().await;
    }
    // Synchronous replication: a commit is acknowledged only once the standby has it.
    let primary = p.clone();
    blocking(move || primary.configure("synchronous_standby_names = '*'"))
        .await
        .unwrap();

    let pool = Config::from_url(&Pair::url(&[p, s], "read-write"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let bank = Bank::open(&pool).await;
    let load = Load::start(&pool, bank, 4, "promote");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (old, new) = (p.clone(), s.clone());
    let killed = Instant::now();
    blocking(move || {
        old.kill().unwrap();
        new.configure("synchronous_standby_names = ''").unwrap();
        new.promote().unwrap();
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = load.stop().await;
    println!(
        "promotion: {} transfers acknowledged, longest time without one {:?}, refused after the \
         kill: {:?}",
        seen.acknowledged(),
        seen.outage_after(killed),
        seen.refused_after(killed)
    );

    // Every acknowledged transfer is on the new primary, exactly once, and nothing else is.
    let mut on_new = PgConnection::connect_with(&s.connect_options("ledger"))
        .await
        .unwrap();
    assert!(!Session::of(&mut on_new).await.unwrap().in_recovery);
    seen.verify(&mut on_new, &bank).await;
    // The pool's new connections are on the new primary.
    let mut pooled = pool.acquire().await.unwrap();
    assert!(!Session::of(&mut pooled).await.unwrap().in_recovery);
    drop(pooled);
    pool.close().await;
    assert!(
        !seen.refused_after(killed).is_empty(),
        "the kill was seen by no caller"
    );
}
