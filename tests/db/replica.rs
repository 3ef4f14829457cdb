//! Read replicas on the real thing: each test starts a primary and a hot standby of its own
//! (`pg_basebackup -R`, from the installed binaries), migrated, and routes through a
//! [`Router`] with the standby as its reader. `cargo test replica` runs exactly these.

use std::path::PathBuf;
use std::time::Duration;

use ledger::accounts;
use ledger::articles::{self, Language, NewArticle};
use ledger::local::{Cluster, Settings};
use ledger::payments;
use ledger::replica::{Fallback, Route, Router};
use ledger::transactions::{self, Movement, Transfer};
use ledger::users::{self, NewUser};
use ledger::{Config, json};
use sqlx::{Connection, PgConnection, PgPool};

use crate::support::{self, blocking, dec};

const DATABASE: &str = "ledger";

/// A primary and its standby, both stopped and removed however the test ends.
struct Pair {
    primary: Cluster,
    standby: Cluster,
    dirs: [PathBuf; 2],
}

impl Pair {
    async fn start(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("ledger-{name}-{}", std::process::id()));
        let dirs = [root.join("p"), root.join("s")];
        for dir in &dirs {
            let _ = Cluster::stop(dir);
            let _ = std::fs::remove_dir_all(dir);
        }
        std::fs::create_dir_all(&root).unwrap();
        let primary_dir = dirs[0].clone();
        let primary = blocking(move || Cluster::ensure_with(&primary_dir, &Settings::default()))
            .await
            .unwrap();
        primary.create_database(DATABASE).await.unwrap();
        let pool = Config::local(&primary, DATABASE).connect().await.unwrap();
        ledger::MIGRATOR.run(&pool).await.unwrap();
        pool.close().await;
        let (standby_dir, from) = (dirs[1].clone(), primary.clone());
        let standby = blocking(move || Cluster::ensure_standby(&standby_dir, &from))
            .await
            .unwrap();
        Self {
            primary,
            standby,
            dirs,
        }
    }

    async fn writer(&self) -> PgPool {
        Config::local(&self.primary, DATABASE)
            .connect()
            .await
            .unwrap()
    }

    /// A router with the standby as its only reader, whose pool waits up to 10 s for a
    /// connection: on a loaded machine (the whole suite on two cores) the production default of
    /// 1 s can expire while the standby is up, and these tests are about routing, not timeouts.
    async fn router(&self) -> Router {
        self.router_waiting(Duration::from_secs(10)).await
    }

    async fn router_waiting(&self, acquire_timeout: Duration) -> Router {
        let replica = Config::local(&self.standby, DATABASE);
        let reader = replica
            .pool_options()
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(replica.connect_options().clone());
        Router::new(self.writer().await).with_reader(reader)
    }

    /// A direct connection to the standby, outside any router.
    async fn standby_connection(&self) -> PgConnection {
        PgConnection::connect_with(&self.standby.connect_options(DATABASE))
            .await
            .unwrap()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            let _ = Cluster::stop(dir);
        }
        if let Some(root) = self.dirs[0].parent() {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

async fn in_recovery(conn: &mut PgConnection) -> bool {
    sqlx::query_scalar!(r#"select pg_is_in_recovery() as "r!""#)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_routing_reads_on_the_standby_writes_on_the_primary() {
    let pair = Pair::start("replica-routing").await;
    let router = pair.router().await;

    let mut writer = router.writer().acquire().await.unwrap();
    assert!(!in_recovery(&mut writer).await, "the writer is the primary");
    let user = users::insert(&mut *writer, &NewUser::new("r@example.com", "Reader"))
        .await
        .unwrap();
    drop(writer);

    let written = router.commit_position().await.unwrap();
    let mut read = router.read_after(written).await.unwrap();
    assert_eq!(read.route(), Route::Replica(0));
    assert!(in_recovery(&mut read).await, "the read runs on the standby");
    assert_eq!(users::get(&mut *read, user.id).await.unwrap(), user);

    // A write on a replica connection fails with the server's read-only error, nothing else.
    let err = users::insert(&mut *read, &NewUser::new("w@example.com", "Writer"))
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate().as_deref(), Some("25006"), "{err}");
    drop(read);

    let stats = router.stats();
    assert_eq!((stats.replica, stats.writer), (1, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_read_your_writes_sees_each_write_at_once() {
    let pair = Pair::start("replica-ryw").await;
    // The standby applies each commit 50 ms after it was made: a read that did not wait for
    // the write's position would miss it every time.
    let mut standby = pair.standby_connection().await;
    sqlx::raw_sql("alter system set recovery_min_apply_delay = '50ms'")
        .execute(&mut standby)
        .await
        .unwrap();
    let reloaded = sqlx::query_scalar!(r#"select pg_reload_conf() as "reloaded!""#)
        .fetch_one(&mut standby)
        .await
        .unwrap();
    assert!(reloaded);
    let router = pair.router().await;
    let mut conn = router.writer().acquire().await.unwrap();
    let owner = users::insert(&mut *conn, &NewUser::new("o@example.com", "Owner"))
        .await
        .unwrap();
    let account = accounts::open(&mut *conn, owner.id, None).await.unwrap();
    for i in 1..=40 {
        let amount = dec(&format!("{i}.00"));
        let entry = transactions::deposit(&mut conn, &Movement::new(account.id, amount))
            .await
            .unwrap();
        let written = router.commit_position().await.unwrap();
        // At once: no sleep between the commit and the read.
        let mut read = router.read_after(written).await.unwrap();
        assert_eq!(
            transactions::get(&mut *read, entry.id)
                .await
                .unwrap()
                .amount,
            amount,
            "deposit {i} via {:?}",
            read.route()
        );
        let expected: rust_decimal::Decimal = (1..=i).map(rust_decimal::Decimal::from).sum();
        assert_eq!(
            accounts::get(&mut *read, account.id).await.unwrap().balance,
            expected
        );
    }
    let stats = router.stats();
    assert_eq!(stats.replica + stats.writer, 40);
    assert_eq!(
        stats.writer, stats.not_caught_up,
        "a fallback here can only be a timeout: {stats:?}"
    );
    assert!(
        stats.replica >= 30,
        "the standby should serve most reads: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_lagging_with_replay_paused_falls_back_to_the_writer_and_says_so() {
    let pair = Pair::start("replica-lag").await;
    let router = pair
        .router()
        .await
        .max_lag(Duration::from_millis(100))
        .read_your_writes_timeout(Duration::from_millis(200));
    let mut standby = pair.standby_connection().await;
    sqlx::query!("select pg_wal_replay_pause()")
        .execute(&mut standby)
        .await
        .unwrap();

    let user = users::insert(router.writer(), &NewUser::new("l@example.com", "Late"))
        .await
        .unwrap();
    let written = router.commit_position().await.unwrap();

    // Read-your-writes: the standby never reaches the write; the writer answers.
    let mut read = router.read_after(written).await.unwrap();
    assert_eq!(read.route(), Route::Writer(Fallback::NotCaughtUp(written)));
    assert!(!in_recovery(&mut read).await);
    assert_eq!(users::get(&mut *read, user.id).await.unwrap(), user);
    drop(read);
    let on_standby = users::find_by_email(&mut standby, "l@example.com")
        .await
        .unwrap();
    assert_eq!(on_standby, None, "the standby has not replayed the write");

    // A plain read: the standby lags past the bound once its last replay is older than it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let read = router.read().await.unwrap();
    assert_eq!(read.route(), Route::Writer(Fallback::Lagging));
    drop(read);
    let stats = router.stats();
    assert_eq!(
        (stats.not_caught_up, stats.lagging, stats.replica),
        (1, 1, 0)
    );

    // Replay resumes: the standby catches up and serves again.
    sqlx::query!("select pg_wal_replay_resume()")
        .execute(&mut standby)
        .await
        .unwrap();
    let patient = router.read_your_writes_timeout(Duration::from_secs(10));
    let mut read = patient.read_after(written).await.unwrap();
    assert_eq!(read.route(), Route::Replica(0));
    assert_eq!(users::get(&mut *read, user.id).await.unwrap(), user);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_stopped_reads_keep_working_and_return_when_it_does() {
    let pair = Pair::start("replica-stop").await;
    // The production timeout: a stopped standby must cost one short wait, not ten seconds.
    let router = pair
        .router_waiting(ledger::replica::READER_CONNECT_TIMEOUT)
        .await
        .retry_after(Duration::from_millis(200));
    let user = users::insert(router.writer(), &NewUser::new("s@example.com", "Still"))
        .await
        .unwrap();
    let written = router.commit_position().await.unwrap();
    // The pool holds a live connection to the standby when it stops.
    let read = router.read_after(written).await.unwrap();
    assert_eq!(read.route(), Route::Replica(0));
    drop(read);

    let dir = pair.standby.dir().to_owned();
    assert!(blocking(move || Cluster::stop(&dir)).await.unwrap());
    // A health check younger than the TTL is reused without a query (by design), so a read
    // within it may still be handed the dead pooled connection: past it, the router probes.
    tokio::time::sleep(ledger::replica::DEFAULT_HEALTH_TTL).await;
    for _ in 0..3 {
        let mut read = router.read().await.unwrap();
        assert_eq!(read.route(), Route::Writer(Fallback::Unavailable));
        assert_eq!(users::get(&mut *read, user.id).await.unwrap(), user);
    }
    let mut read = router.read_after(written).await.unwrap();
    assert_eq!(read.route(), Route::Writer(Fallback::Unavailable));
    assert_eq!(users::get(&mut *read, user.id).await.unwrap(), user);
    drop(read);
    assert_eq!(router.stats().unavailable, 4);

    // Back up: once the replica's skip has passed, it serves again.
    let (dir, primary) = (pair.standby.dir().to_owned(), pair.primary.clone());
    blocking(move || Cluster::ensure_standby(&dir, &primary))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let patient = router.read_your_writes_timeout(Duration::from_secs(10));
    let read = patient.read_after(written).await.unwrap();
    assert_eq!(read.route(), Route::Replica(0));
}

/// What the module documentation of `ledger::replica` promises: a read of every module runs on
/// a standby, and the units of work fail there with the read-only error, writing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)] // the Vec form, tested until it is removed
async fn replica_serves_a_read_of_every_module_and_refuses_units_of_work() {
    let pair = Pair::start("replica-modules").await;
    let router = pair.router().await;
    let mut w = router.writer().acquire().await.unwrap();
    let owner = users::insert(&mut *w, &NewUser::new("m@example.com", "Mod"))
        .await
        .unwrap();
    let a = accounts::open(&mut *w, owner.id, None).await.unwrap();
    let b = accounts::open(&mut *w, owner.id, None).await.unwrap();
    transactions::deposit(&mut w, &Movement::new(a.id, dec("50.00")))
        .await
        .unwrap();
    transactions::transfer(&mut w, &Transfer::new(a.id, b.id, dec("20.00")))
        .await
        .unwrap();
    let payment = payments::insert_json(&mut *w, &json!({"method": "card", "amount": "9.99"}))
        .await
        .unwrap();
    let article = articles::insert(&mut *w, &NewArticle::new("Replicas", "standby reads"))
        .await
        .unwrap();
    drop(w);
    let written = router.commit_position().await.unwrap();

    let mut r = router.read_after(written).await.unwrap();
    assert_eq!(r.route(), Route::Replica(0));
    assert!(in_recovery(&mut r).await);
    assert_eq!(
        users::list_by_name(&mut *r, ledger::users::Visibility::Live, "Mod")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ledger::users::UserQuery::new()
            .per_page(10)
            .keyset(&mut *r, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let with_accounts = ledger::users::UserQuery::new()
        .keyset_with_accounts(&mut r, None)
        .await
        .unwrap();
    assert_eq!(with_accounts.items[0].accounts.len(), 2);
    let balances: Vec<_> = accounts::list_for_user(&mut *r, owner.id)
        .await
        .unwrap()
        .into_iter()
        .map(|acc| acc.balance)
        .collect();
    assert_eq!(
        balances.iter().copied().sum::<ledger::Decimal>(),
        dec("50.00")
    );
    let entries = transactions::EntryQuery::new()
        .limit(10)
        .list_for_account(&mut *r, a.id)
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert!(transactions::reconcile(&mut *r).await.unwrap().is_empty());
    assert_eq!(
        transactions::top_spenders(&mut *r, "USD", 30, 5)
            .await
            .unwrap()
            .len(),
        1
    );
    let found = payments::PaymentQuery::new()
        .limit(10)
        .list_containing(&mut *r, &json!({"method": "card"}))
        .await
        .unwrap();
    assert_eq!(found[0].id, payment.id);
    let hits = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search(&mut *r, "standby", 0.0)
        .await
        .unwrap();
    assert_eq!(hits[0].id, article.id);

    // Units of work lock rows: a standby refuses, and its balances stay as they were.
    let err = transactions::transfer(&mut r, &Transfer::new(a.id, b.id, dec("1.00")))
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate().as_deref(), Some("25006"), "{err}");
    let err = transactions::deposit(&mut r, &Movement::new(a.id, dec("1.00")))
        .await
        .unwrap_err();
    // Typed: transient (through a multi-host pool a repeat reaches the primary), nothing written.
    assert_eq!(err.transient(), Some(ledger::Transient::ReadOnly), "{err}");
    assert!(!err.outcome_unknown());
    assert_eq!(
        accounts::get(&mut *r, a.id).await.unwrap().balance,
        dec("30.00")
    );
}

/// A health check is reused for the health TTL: one check serves many reads, and a reused check
/// that no longer proves enough (a position the replica had not reached) is made again, not
/// trusted. On one thread, so that the statements can be counted.
#[tokio::test]
async fn replica_health_check_is_reused_within_its_ttl() {
    let pair = Pair::start("replica-ttl").await;
    let router = pair.router().await.health_ttl(Duration::from_secs(60));
    let counter = support::StatementCounter::start();
    for _ in 0..5 {
        assert_eq!(router.read().await.unwrap().route(), Route::Replica(0));
    }
    assert_eq!(counter.count(), 1, "one check for five reads");

    let user = users::insert(router.writer(), &NewUser::new("t@example.com", "Ttl"))
        .await
        .unwrap();
    let written = router.commit_position().await.unwrap();
    let before = counter.count();
    let mut read = router.read_after(written).await.unwrap();
    assert_eq!(read.route(), Route::Replica(0), "{:?}", router.stats());
    assert!(
        counter.count() > before,
        "the cached position was too old: checked again ({before} -> {})",
        counter.count()
    );
    assert_eq!(users::get(&mut *read, user.id).await.unwrap(), user);
    drop(read);

    let every_read = pair.router().await.health_ttl(Duration::ZERO);
    let before = counter.count();
    for _ in 0..3 {
        drop(every_read.read().await.unwrap());
    }
    assert_eq!(
        counter.count(),
        before + 3,
        "a zero TTL checks before every read"
    );
}
