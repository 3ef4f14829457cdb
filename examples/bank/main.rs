//! The bank under faults, for as long as you like:
//!
//! ```text
//! cargo run --release --example bank -- --clients 8 --seconds 300
//! ```
//!
//! Starts a private, durable (`fsync = on`) PostgreSQL cluster of its own in a scratch directory,
//! runs the clients and the fault driver of `harness.rs`, prints the report, stops the cluster
//! and exits 1 if any anomaly was found. Options: `--clients N` (8), `--seconds S` (60),
//! `--accounts N` (10), `--fault-ms MS` mean time between cancels and terminations (250),
//! `--restart-every S` (30), `--seed N` (1), `--dir PATH` (a new directory under the system's
//! temporary directory).

mod harness;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ledger::local::Cluster;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, String> {
    let mut config = harness::Config {
        clients: 8,
        accounts: 10,
        duration: Duration::from_secs(60),
        fault_interval: Duration::from_millis(250),
        restart_every: Duration::from_secs(30),
        seed: 1,
        poster: false,
    };
    let mut dir = std::env::temp_dir().join(format!("ledger-bank-{}", std::process::id()));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--clients" => config.clients = number()? as usize,
            "--seconds" => config.duration = Duration::from_secs(number()?),
            "--accounts" => config.accounts = number()?.max(2) as usize,
            "--fault-ms" => config.fault_interval = Duration::from_millis(number()?),
            "--restart-every" => config.restart_every = Duration::from_secs(number()?),
            "--seed" => config.seed = number()?,
            "--poster" => config.poster = number()? == 1,
            "--dir" => dir = PathBuf::from(&value),
            _ => return Err(format!("unknown option {flag}")),
        }
    }

    let cluster = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || Cluster::ensure_durable(&dir))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    println!(
        "bank: {} clients, {} accounts, {} s, a fault every ~{} ms, a restart every {} s, seed {}{}",
        config.clients,
        config.accounts,
        config.duration.as_secs(),
        config.fault_interval.as_millis(),
        config.restart_every.as_secs(),
        config.seed,
        if config.poster {
            ", through one Poster"
        } else {
            ""
        }
    );
    let result = harness::run(&cluster, "bank", &config).await;
    let stopped = tokio::task::spawn_blocking(move || Cluster::stop(&dir)).await;
    let report = result.map_err(|e| e.to_string())?;
    if let Ok(Ok(true)) = stopped {
        let _ = std::fs::remove_dir_all(cluster.dir());
    }
    print!("{report}");
    Ok(report.anomalies.is_empty())
}
