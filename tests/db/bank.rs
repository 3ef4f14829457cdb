//! The bank under faults, short: a durable cluster of the test's own, restarted twice (fast, then
//! immediate) while clients move money with keys and statements are cancelled, backends
//! terminated and client futures dropped; every acknowledged row's `created_at` must fall inside
//! the call that wrote it. The long run is `cargo run --release --example bank`.

#[path = "../../examples/bank/harness.rs"]
mod harness;

use std::time::Duration;

use ledger::local::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_under_faults_moves_money_exactly_once_per_acknowledged_call() {
    bank_under_faults("bank", false).await;
}

/// The same, with every single movement through one shared `Poster`: a cancel or termination
/// hits a flush of many callers' movements, each repeated with its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_under_faults_through_a_poster_moves_money_exactly_once_per_acknowledged_call() {
    bank_under_faults("bank-poster", true).await;
}

async fn bank_under_faults(name: &str, poster: bool) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()));
    let _stop = crate::support::StopCluster(dir.clone());
    let cluster = tokio::task::spawn_blocking(move || Cluster::ensure_durable(&dir))
        .await
        .unwrap()
        .unwrap();
    let config = harness::Config {
        clients: 6,
        accounts: 10,
        duration: Duration::from_secs(20),
        fault_interval: Duration::from_millis(150),
        restart_every: Duration::from_secs(7),
        seed: 20_261_127,
        poster,
    };

    let report = harness::run(&cluster, "bank", &config).await.unwrap();
    println!("{report}");

    assert!(report.anomalies.is_empty(), "{report}");
    assert!(report.calls > 500, "{report}");
    for fault in [
        "restart (fast)",
        "restart (immediate)",
        "statement cancelled",
        "backend terminated",
        "dropped future",
    ] {
        assert!(
            report.faults.get(fault).copied().unwrap_or(0) > 0,
            "no {fault}: {report}"
        );
    }
    assert!(report.retried_calls > 0, "{report}");
    assert!(
        report.refused.contains_key("insufficient funds"),
        "{report}"
    );
    assert!(
        report
            .errors
            .keys()
            .all(|class| !class.starts_with("unclassified")),
        "every failure is classified: {report}"
    );
}
