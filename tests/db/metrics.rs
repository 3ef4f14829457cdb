//! The `metrics` feature (`cargo test --features metrics`): what the operations record through
//! the `metrics` facade, read from `metrics-util`'s debugging recorder installed on the test's
//! thread. Each instrument of `ledger::telemetry` is made to move: operation timings with and
//! without `error.type`, a replay, a deadlock retry, a transient failure, a replica route and
//! the pool waits of the poster and the router.

use std::time::Duration;

use ledger::replica::Router;
use ledger::transactions::{self, Movement, Poster, PosterOptions};
use ledger::{Config, accounts, users};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshot};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::support;

/// One recorded metric: its name, its labels, its value.
type Metric = (String, Vec<(String, String)>, DebugValue);

/// The counters' sum, or the histograms' sample count, of `name` over the keys that carry every
/// label of `labels`.
fn total(snapshot: &[Metric], name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshot
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, value)| match value {
            DebugValue::Counter(n) => *n,
            DebugValue::Histogram(samples) => samples.len() as u64,
            DebugValue::Gauge(_) => 0,
        })
        .sum()
}

fn flatten(snapshot: Snapshot) -> Vec<Metric> {
    snapshot
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, value)
        })
        .collect()
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn every_instrument_records_what_its_operations_did(pool: PgPool) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _installed = metrics::set_default_local_recorder(&recorder);

    // Operations, ok and refused; a keyed deposit and its replay.
    let owner = support::user(&pool, "metrics@example.com", "M").await;
    let account = accounts::open(&pool, owner.id, None).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let keyed = Movement::new(account.id, support::dec("5.00")).idempotency_key("metrics-1");
    transactions::deposit(&mut conn, &keyed).await.unwrap();
    transactions::deposit(&mut conn, &keyed).await.unwrap();
    let too_much = Movement::new(account.id, support::dec("500.00"));
    assert!(transactions::withdraw(&mut conn, &too_much).await.is_err());
    drop(conn);

    // A deadlock, retried once.
    crate::telemetry::deadlocked_transfer(&pool).await.unwrap();

    // A transient failure: a one-connection pool whose connection is held.
    let small = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(100))
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap();
    let held = small.acquire().await.unwrap();
    let timed_out = users::get(&small, owner.id).await;
    assert!(
        matches!(
            timed_out,
            Err(ledger::Error::Transient {
                kind: ledger::Transient::PoolTimedOut,
                ..
            })
        ),
        "{timed_out:?}"
    );
    drop(held);

    // The router with no replica reads on the writer; the poster waits for its pool.
    let config = Config::from_url(&support::url_of(&pool)).unwrap();
    let router = Router::connect(&config, &[]).await.unwrap();
    drop(router.read().await.unwrap());
    let poster = Poster::new(pool.clone(), PosterOptions::default());
    poster
        .deposit(Movement::new(account.id, support::dec("1.00")))
        .await
        .unwrap();
    poster.close().await;
    // A shared flush: its queue depth, batch size, time and count.
    let poster = Poster::new(
        pool.clone(),
        PosterOptions::default().linger(Duration::from_millis(100)),
    );
    let (one, two) = tokio::join!(
        poster.deposit(Movement::new(account.id, support::dec("1.00"))),
        poster.deposit(Movement::new(account.id, support::dec("2.00"))),
    );
    one.unwrap();
    two.unwrap();
    poster.close().await;

    let snapshot = flatten(snapshotter.snapshot());
    let duration = "db.client.operation.duration";
    let deposits = [("ledger.operation", "ledger.transactions.deposit")];
    assert_eq!(total(&snapshot, duration, &deposits), 2, "{snapshot:#?}");
    assert_eq!(
        total(
            &snapshot,
            duration,
            &[
                ("ledger.operation", "ledger.transactions.withdraw"),
                ("error.type", "InsufficientFunds"),
                ("db.system.name", "postgresql"),
                ("db.collection.name", "transactions"),
            ]
        ),
        1
    );
    // This test's account, and the two of the deadlocked transfer.
    assert_eq!(
        total(
            &snapshot,
            duration,
            &[
                ("ledger.operation", "ledger.accounts.open"),
                ("db.operation.name", "INSERT")
            ]
        ),
        3
    );
    assert_eq!(total(&snapshot, "ledger.idempotency.replays", &[]), 1);
    assert_eq!(
        total(
            &snapshot,
            "ledger.retries",
            &[("db.response.status_code", "40P01")]
        ),
        1
    );
    assert_eq!(
        total(
            &snapshot,
            "ledger.transient_failures",
            &[("ledger.transient.kind", "PoolTimedOut")]
        ),
        1
    );
    assert_eq!(
        total(
            &snapshot,
            duration,
            &[
                ("ledger.operation", "ledger.users.get"),
                ("error.type", "PoolTimedOut")
            ]
        ),
        1
    );
    assert_eq!(
        total(
            &snapshot,
            "ledger.replica.reads",
            &[("ledger.replica.route", "writer")]
        ),
        1
    );
    assert_eq!(
        total(&snapshot, "ledger.replica.fallbacks", &[]),
        0,
        "no replica is no fallback"
    );
    let wait = "db.client.connection.wait_time";
    assert_eq!(
        total(
            &snapshot,
            wait,
            &[("db.client.connection.pool.name", "replica.writer")]
        ),
        1
    );
    assert!(
        total(
            &snapshot,
            wait,
            &[("db.client.connection.pool.name", "poster")]
        ) >= 1
    );
    assert!(
        total(
            &snapshot,
            duration,
            &[("ledger.operation", "ledger.Config.connect")]
        ) >= 1
    );
    // Two posters, three movements: at least two flushes, one of them of two movements.
    assert!(total(&snapshot, "ledger.poster.flushes", &[]) >= 2);
    assert!(total(&snapshot, "ledger.poster.flush.duration", &[]) >= 2);
    let sizes: Vec<f64> = snapshot
        .iter()
        .filter(|(name, _, _)| name == "ledger.poster.batch.size")
        .flat_map(|(_, _, value)| match value {
            DebugValue::Histogram(samples) => samples.iter().map(|s| s.into_inner()).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert!(sizes.contains(&2.0), "{sizes:?}");
    assert!(
        snapshot
            .iter()
            .any(|(name, _, value)| name == "ledger.poster.queue.depth"
                && matches!(value, DebugValue::Gauge(_))),
        "{snapshot:#?}"
    );
}
