//! The whole read as a fresh process does it: a new process, a one-connection pool from
//! `Config::connect`, ten rows of the same stream read and dropped as warm-up, then the clock
//! over the whole table, amounts summed. Prints rows per second.
//!
//! ```sh
//! cargo run --release --example fresh_read -- ledger_bench_streams_ledger            # stream_all
//! cargo run --release --example fresh_read -- ledger_bench_streams_ledger --unordered
//! cargo run --release --example fresh_read -- ledger_bench_streams_ledger --current-thread
//! ```
//!
//! Reads a database that `cargo bench --bench streams` filled (named as the first argument) on
//! the configured server (`DATABASE_URL`), so that its figure can be set beside the bench's, read
//! inside a long-lived process. `--current-thread` runs on tokio's current-thread runtime
//! instead of the multi-threaded one `#[tokio::main]` gives.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use ledger::Config;
use ledger::transactions;
use rust_decimal::Decimal;

type AnyResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let database = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .ok_or("name the database the streams bench filled")?
        .clone();
    let unordered = args.iter().any(|a| a == "--unordered");
    let runtime = if args.iter().any(|a| a == "--current-thread") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(read(&database, unordered))
}

async fn read(database: &str, unordered: bool) -> AnyResult {
    let config = Config::resolve()?;
    let pool = config
        .with_database(database)
        .max_connections(1)
        .connect()
        .await?;
    let open = || match unordered {
        true => transactions::stream_unordered(&pool).boxed(),
        false => transactions::stream_all(&pool).boxed(),
    };
    // Warm-up: ten rows of the same stream, then the stream dropped.
    let warm: Vec<_> = open().take(10).try_collect().await?;
    assert_eq!(warm.len(), 10);
    let started = Instant::now();
    let (rows, total) = open()
        .try_fold((0u64, Decimal::ZERO), |(n, sum), entry| async move {
            Ok((n + 1, sum + entry.amount))
        })
        .await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{} over {rows} entries (sum {total}): {elapsed:.3} s, {:.0} rows/s",
        if unordered {
            "stream_unordered"
        } else {
            "stream_all"
        },
        rows as f64 / elapsed
    );
    Ok(())
}
