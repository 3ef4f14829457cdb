//! Streams 1,000,000 ledger entries and reports the process's peak memory.
//!
//! ```sh
//! cargo run --release --example stream_rss            # 1,000,000 rows
//! cargo run --release --example stream_rss -- 200000  # another count
//! ```
//!
//! Uses a database of its own (`ledger_stream_rss`) on the configured server or the private
//! cluster; the first run loads the rows through `transactions::post_batch`. Peak RSS is the
//! kernel's `VmHWM`, reset after loading (`/proc/self/clear_refs`) so that it measures the
//! streaming alone; where the reset is refused the figure includes the load, and says so.

use std::time::Instant;

use futures::TryStreamExt;
use ledger::transactions::{self, BatchItem, Movement};
use ledger::users::{self, NewUser};
use ledger::{Config, accounts, schema};
use rust_decimal::Decimal;

type AnyResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> AnyResult {
    let rows: i64 = std::env::args()
        .nth(1)
        .map_or(Ok(1_000_000), |a| a.parse())?;
    let config = Config::resolve().await?;
    config.create_database("ledger_stream_rss").await?;
    let pool = config.with_database("ledger_stream_rss").connect().await?;
    schema::migrate(&mut *pool.acquire().await?).await?;

    let present = transactions::stats(&pool).await?.count;
    if present < rows {
        let started = Instant::now();
        let mut conn = pool.acquire().await?;
        let email = format!("rss-{}@bench.example", uuid::Uuid::new_v4());
        let owner = users::insert(&mut *conn, &NewUser::new(email, "Streamer")).await?;
        let mut targets = Vec::new();
        for _ in 0..100 {
            targets.push(accounts::open(&mut *conn, owner.id, None).await?.id);
        }
        let mut made = present;
        while made < rows {
            let batch = (rows - made).min(100_000);
            let items: Vec<BatchItem> = (0..batch)
                .map(|i| {
                    let account = targets[(i % 100) as usize];
                    let movement = Movement::new(account, Decimal::new(i % 100_000 + 1, 2))
                        .metadata(serde_json::json!({"source": "stream_rss", "n": made + i}));
                    BatchItem::Deposit(movement)
                })
                .collect();
            transactions::post_batch(&mut conn, &items).await?;
            made += batch;
            eprintln!("loaded {made} entries");
        }
        eprintln!("load: {:.1?}", started.elapsed());
    }

    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = vm_hwm_kib();
    let started = Instant::now();
    let (count, total) = transactions::stream_all(&pool)
        .try_fold((0u64, Decimal::ZERO), |(n, sum), entry| async move {
            Ok((n + 1, sum + entry.amount))
        })
        .await?;
    let elapsed = started.elapsed();
    let peak = vm_hwm_kib();
    println!("streamed {count} entries (sum {total}) in {elapsed:.2?}");
    println!(
        "{:.0} rows/s; peak RSS {} MiB{}",
        count as f64 / elapsed.as_secs_f64(),
        peak.map_or_else(
            || "unknown".to_owned(),
            |k| format!("{:.1}", k as f64 / 1024.0)
        ),
        if reset {
            format!(
                " while streaming (VmHWM reset after loading; {} MiB before)",
                before.map_or(0.0, |k| k as f64 / 1024.0).round()
            )
        } else {
            " (VmHWM could not be reset: includes loading)".to_owned()
        }
    );
    Ok(())
}
