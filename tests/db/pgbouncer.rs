//! PgBouncer 1.18 in transaction pooling mode, on the real thing: each test starts a private
//! cluster of its own and `ledger::local::Bouncer` in front of it (from the installed
//! `pgbouncer`), and talks only through it, with
//! [`ledger::Config::transaction_pooler`]. PgBouncer gets two server connections per database,
//! so that concurrent clients share them. `cargo test pgbouncer` runs exactly these.
//!
//! They need an installed `pgbouncer`, so they are `#[ignore]`d saying so: plain `cargo test`
//! lists them as ignored, and `.ci/run` (which installs the package) runs them with
//! `--ignored`, where a missing `pgbouncer` fails the test.

use std::path::PathBuf;

use futures::TryStreamExt;
use ledger::articles::{self, Language, NewArticle};
use ledger::bulk::BulkOptions;
use ledger::dump::{self, Table};
use ledger::local::{Bouncer, Cluster, Settings};
use ledger::transactions::{self, Movement, Transfer};
use ledger::users::{self, NewUser};
use ledger::{Config, Decimal, accounts, atomic, json, payments};
use sqlx::{Acquire, PgPool};

use crate::support::{blocking, dec};

const DATABASE: &str = "ledger";
/// Two server connections per database, so that concurrent clients share them.
const TWO_SERVERS: &str = "default_pool_size = 2";

/// A cluster and PgBouncer in front of it, stopped and removed however the test ends.
struct Through {
    bouncer: Bouncer,
    root: PathBuf,
}

impl Through {
    /// `conf`: lines appended to PgBouncer's `[pgbouncer]` section.
    ///
    /// # Panics
    /// Without an installed `pgbouncer` (the tests are `#[ignore]`d for that reason).
    async fn start(name: &str, conf: &'static str) -> Self {
        assert!(
            Bouncer::is_installed(),
            "{name}: pgbouncer is not installed (apt-get install pgbouncer)"
        );
        let root = std::env::temp_dir().join(format!("ledger-{name}-{}", std::process::id()));
        let _ = Cluster::stop(&root.join("pg"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let dir = root.join("pg");
        let cluster = blocking(move || Cluster::ensure_with(&dir, &Settings::default()))
            .await
            .unwrap();
        cluster.create_database(DATABASE).await.unwrap();
        let direct = Config::local(&cluster, DATABASE).connect().await.unwrap();
        ledger::MIGRATOR.run(&direct).await.unwrap();
        direct.close().await;
        let dir = root.join("bouncer");
        let bouncer = blocking(move || Bouncer::start(&dir, &cluster, conf))
            .await
            .unwrap();
        Self { bouncer, root }
    }

    /// A pool of eight client connections through PgBouncer, with the transaction-pooler
    /// profile.
    async fn pool(&self) -> PgPool {
        self.bouncer
            .config(DATABASE)
            .max_connections(8)
            .connect()
            .await
            .unwrap()
    }
}

impl Drop for Through {
    fn drop(&mut self) {
        let _ = Cluster::stop(&self.root.join("pg"));
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The money path: four clients move money among four accounts at once, through two server
/// connections; every cent is still there, every account reconciles, and a retried movement
/// with an idempotency key moves money once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pgbouncer: apt-get install pgbouncer (docs/development.md)"]
async fn pgbouncer_money_path_concurrent_transfers_conserve_every_cent() {
    let through = Through::start("pgbouncer-money", TWO_SERVERS).await;
    let pool = through.pool().await;
    let mut tx = pool.begin().await.unwrap();
    let owner = users::insert(&mut *tx, &NewUser::new("b@example.com", "Bouncer"))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(accounts::open(&mut *tx, owner.id, None).await.unwrap().id);
    }
    tx.commit().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    for id in &ids {
        transactions::deposit(&mut conn, &Movement::new(*id, dec("1000.00")))
            .await
            .unwrap();
    }
    drop(conn);

    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (pool, ids) = (pool.clone(), ids.clone());
            tokio::spawn(async move {
                for i in 0..25 {
                    let from = ids[(client + i) % 4];
                    let to = ids[(client + i + 1) % 4];
                    let mut conn = pool.acquire().await.unwrap();
                    transactions::transfer(&mut conn, &Transfer::new(from, to, dec("3.25")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }

    let retried = Movement::new(ids[0], dec("5.00")).idempotency_key("pgbouncer-retry");
    let mut conn = pool.acquire().await.unwrap();
    let first = transactions::deposit(&mut conn, &retried).await.unwrap();
    let again = transactions::deposit(&mut conn, &retried).await.unwrap();
    assert_eq!(first.id, again.id);

    let mut tx = conn.begin().await.unwrap();
    let balances: Vec<Decimal> = accounts::list_for_user(&mut *tx, owner.id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.balance)
        .collect();
    assert_eq!(balances.iter().copied().sum::<Decimal>(), dec("4005.00"));
    assert!(transactions::reconcile(&mut *tx).await.unwrap().is_empty());
    let entries: Vec<_> = transactions::stream_all(&mut *tx)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(entries.len(), 4 + 100 + 1);
    tx.commit().await.unwrap();
}

/// One reading and one writing call of every module, each inside a transaction, from three
/// clients at once through two server connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pgbouncer: apt-get install pgbouncer (docs/development.md)"]
async fn pgbouncer_every_module_inside_transactions_from_concurrent_clients() {
    let through = Through::start("pgbouncer-modules", TWO_SERVERS).await;
    let pool = through.pool().await;
    let clients: Vec<_> = (0..3)
        .map(|client| {
            let pool = pool.clone();
            tokio::spawn(async move { every_module(&pool, client).await })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let mut out = Vec::new();
    let records = dump::dump(&pool, &Table::ALL, &mut out, &mut |_, _| {})
        .await
        .unwrap();
    // Per client: 1 + 2 + 2 + 1 users, 2 accounts, 2 entries, 1 payment, 1 article.
    assert_eq!(records, 3 * 12);

    // The dump loads back through the pooler into the emptied database: the same dump again.
    let path = through.root.join("dump.ndjson");
    std::fs::write(&path, &out).unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query!("truncate users, accounts, transactions, payments, articles, idempotency_keys")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let loaded = dump::load(&mut conn, &path, &mut |_, _| {}).await.unwrap();
    assert_eq!(loaded, records);
    let mut again = Vec::new();
    dump::dump(&pool, &Table::ALL, &mut again, &mut |_, _| {})
        .await
        .unwrap();
    assert!(again == out, "the reloaded dump differs");
}

async fn every_module(pool: &PgPool, client: usize) {
    let mut tx = pool.begin().await.unwrap();
    let email = format!("c{client}@example.com");
    let owner = users::insert(&mut *tx, &NewUser::new(&email, "Client"))
        .await
        .unwrap();
    let account = accounts::open(&mut *tx, owner.id, None).await.unwrap();
    let bulk: Vec<_> = (0..2)
        .map(|i| NewUser::new(format!("bulk{client}-{i}@example.com"), "Bulk"))
        .collect();
    let inserted = users::insert_many(&mut tx, &bulk, BulkOptions::default())
        .await
        .unwrap();
    assert_eq!(inserted.rows.len(), 2);
    let copied: Vec<_> = (0..2)
        .map(|i| NewUser::new(format!("copy{client}-{i}@example.com"), "Copy"))
        .collect();
    assert_eq!(users::copy_in(&mut tx, &copied).await.unwrap().len(), 2);
    tx.commit().await.unwrap();

    let mut conn = pool.acquire().await.unwrap();
    transactions::deposit(&mut conn, &Movement::new(account.id, dec("12.50")))
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    let payment = payments::insert_json(&mut *tx, &json!({"method": "card", "client": client}))
        .await
        .unwrap();
    let title = format!("Pooler {client}");
    let article = articles::insert(&mut *tx, &NewArticle::new(&title, "transaction pooling"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Nested atomic blocks: savepoints inside the unit's own transaction.
    let nested = NewUser::new(format!("atomic{client}@example.com"), "Atomic");
    let outcome = atomic::create_user_then_try_account(&mut conn, &nested, dec("7.00"))
        .await
        .unwrap();
    assert!(outcome.account.is_ok(), "{:?}", outcome.account);

    let mut tx = conn.begin().await.unwrap();
    assert_eq!(
        users::find_by_email(&mut *tx, &email).await.unwrap(),
        Some(owner.clone())
    );
    let page = ledger::users::UserQuery::new()
        .per_page(100)
        .keyset(&mut *tx, None)
        .await
        .unwrap();
    assert!(page.items.iter().any(|u| u.id == owner.id));
    let mine = ledger::users::UserQuery::new()
        .per_page(100)
        .keyset_with_accounts(&mut tx, None)
        .await
        .unwrap();
    assert!(
        mine.items
            .iter()
            .any(|u| u.user.id == owner.id && u.accounts.len() == 1)
    );
    let entries = transactions::EntryQuery::new()
        .limit(10)
        .list_for_account(&mut *tx, account.id)
        .await
        .unwrap();
    assert_eq!(entries[0].amount, dec("12.50"));
    let found = payments::PaymentQuery::new()
        .limit(10)
        .list_containing(&mut *tx, &json!({"client": client}))
        .await
        .unwrap();
    assert_eq!(found.iter().map(|p| p.id).collect::<Vec<_>>(), [payment.id]);
    let hits = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search(&mut *tx, "pooling", 0.0)
        .await
        .unwrap();
    assert!(hits.iter().any(|a| a.id == article.id));
    assert!(
        transactions::total_completed_across_currencies(&mut *tx)
            .await
            .unwrap()
            >= dec("12.50")
    );
    tx.commit().await.unwrap();
}

/// Without the profile, sqlx caches its prepared statements: the first transaction prepares
/// `sqlx_s_1`, PgBouncer's reset removes it, and the next transaction's cached statement is
/// gone. This is why [`ledger::Config::transaction_pooler`] exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pgbouncer: apt-get install pgbouncer (docs/development.md)"]
async fn pgbouncer_without_the_profile_a_cached_statement_is_gone_in_the_next_transaction() {
    let through = Through::start("pgbouncer-cache", TWO_SERVERS).await;
    let options = through.bouncer.connect_options(DATABASE);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let user = users::insert(&mut *tx, &NewUser::new("x@example.com", "X"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    users::get(&mut *tx, user.id).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let err = users::get(&mut *tx, user.id).await.unwrap_err();
    // invalid_sql_statement_name: prepared statement "sqlx_s_1" does not exist.
    assert_eq!(err.sqlstate().as_deref(), Some("26000"), "{err:?}");
}

/// With the profile, a statement outside a transaction fails the same way every time, and
/// writes nothing: sqlx's prepare and execute land on different server sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pgbouncer: apt-get install pgbouncer (docs/development.md)"]
async fn pgbouncer_a_statement_outside_a_transaction_fails_and_writes_nothing() {
    let through = Through::start("pgbouncer-outside", TWO_SERVERS).await;
    let pool = through.pool().await;
    for i in 0..3 {
        let err = users::insert(&pool, &NewUser::new(format!("o{i}@example.com"), "Out"))
            .await
            .unwrap_err();
        assert_eq!(err.sqlstate().as_deref(), Some("26000"), "{err:?}");
    }
    let mut tx = pool.begin().await.unwrap();
    assert!(
        users::stream_ids(&mut *tx, ledger::users::Visibility::Live)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}

/// Without PgBouncer's reset in transaction mode, two clients on one server connection no longer
/// collide: sqlx 0.9.0 named every statement `sqlx_s_N` even with its cache off and never closed
/// one, so the second client's `sqlx_s_1` failed with 42P05; sqlx 0.9.1 uses the unnamed
/// statement when the cache is off. (The reset stays in the recommended profile: it leaves
/// nothing of one client's session for the next.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pgbouncer: apt-get install pgbouncer (docs/development.md)"]
async fn pgbouncer_without_the_reset_two_clients_statements_do_not_collide() {
    let through = Through::start(
        "pgbouncer-reset",
        "default_pool_size = 1\nserver_reset_query_always = 0",
    )
    .await;
    let pool = through.pool().await;
    let mut clients = [pool.acquire().await.unwrap(), pool.acquire().await.unwrap()];
    for client in [0, 1, 0] {
        let mut tx = clients[client].begin().await.unwrap();
        let server = sqlx::query_scalar!(r#"select pg_backend_pid() as "pid!""#)
            .persistent(false)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        users::stream_ids(&mut *tx, ledger::users::Visibility::Live)
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
        let named = sqlx::query_scalar!(r#"select count(*) as "n!" from pg_prepared_statements"#)
            .persistent(false)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(named, 0, "a named statement was left on server {server}");
        tx.commit().await.unwrap();
    }
}

/// Behind a transaction pooler a stream is one transaction, which PgBouncer keeps on one server
/// connection for its cursor: dropped early, it still costs the next query at most one chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pgbouncer: apt-get install pgbouncer (docs/development.md)"]
async fn pgbouncer_a_stream_dropped_early_costs_the_next_query_one_chunk() {
    let through = Through::start("pgbouncer-early-drop", TWO_SERVERS).await;
    let observer = through.pool().await;
    let mut tx = observer.begin().await.unwrap();
    crate::early_drop::fill(&mut tx).await;
    tx.commit().await.unwrap();
    let one = through
        .bouncer
        .config(DATABASE)
        .max_connections(1)
        .connect()
        .await
        .unwrap();
    // `chunks` runs each chunk as a statement on the pool, outside a transaction, which this
    // profile does not allow (see docs/replicas-and-pgbouncer.md).
    crate::early_drop::every_stream_dropped_early_costs_one_chunk(&one, &observer, false).await;
}
