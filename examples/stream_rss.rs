//! Streams 1,000,000 ledger entries and reports the process's peak memory.
//!
//! ```sh
//! cargo run --release --example stream_rss            # 1,000,000 rows, `stream_all`
//! cargo run --release --example stream_rss -- 200000  # another count
//! cargo run --release --example stream_rss -- --path=stream_unordered   # or copy_all, copy_all_pooled
//! cargo run --release --example stream_rss -- --path=users_stream_active # 1,000,000 live users
//! cargo run --release --example stream_rss -- --path=users_list_active   # the deprecated Vec form
//! ```
//!
//! Uses a database of its own (`ledger_stream_rss`) on the configured server or the private
//! cluster. When rows are missing, a child process (this example with `--load-only`) loads them
//! (entries through `transactions::post_batch`, users through `users::copy_in`), so that the
//! measuring process never holds a batch. Peak RSS is the kernel's `VmHWM` for this process,
//! which only connects and reads.

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
    let load_only = std::env::args().any(|a| a == "--load-only");
    let rows: i64 = match std::env::args().skip(1).find(|a| !a.starts_with("--")) {
        Some(n) => n.parse()?,
        None => 1_000_000,
    };
    let config = Config::resolve_or_local().await?;
    config.create_database("ledger_stream_rss").await?;
    let pool = config.with_database("ledger_stream_rss").connect().await?;
    schema::migrate(&mut *pool.acquire().await?).await?;

    let path = std::env::args()
        .find_map(|a| a.strip_prefix("--path=").map(str::to_owned))
        .unwrap_or_else(|| "stream_all".to_owned());
    let of_users = path.starts_with("users_");
    let present = if of_users {
        users::count_active(&pool).await?
    } else {
        transactions::stats_across_currencies(&pool).await?.count
    };
    if load_only {
        return match of_users {
            true => load_users(&pool, present, rows).await,
            false => load(&pool, present, rows).await,
        };
    }
    if present < rows {
        let status = std::process::Command::new(std::env::current_exe()?)
            .arg(rows.to_string())
            .arg(format!("--path={path}"))
            .arg("--load-only")
            .status()?;
        if !status.success() {
            return Err(format!("loading failed: {status}").into());
        }
    }

    if of_users {
        return read_users(&pool, &path).await;
    }
    let sum = |(n, sum): (u64, Decimal), entry: transactions::LedgerEntry| async move {
        Ok((n + 1, sum + entry.amount))
    };
    let zero = (0u64, Decimal::ZERO);
    let started = Instant::now();
    let (count, total) = match path.as_str() {
        "stream_all" => transactions::stream_all(&pool).try_fold(zero, sum).await?,
        "stream_unordered" => {
            transactions::stream_unordered(&pool)
                .try_fold(zero, sum)
                .await?
        }
        "copy_all" => {
            let mut conn = pool.acquire().await?;
            transactions::copy_all(&mut conn)
                .try_fold(zero, sum)
                .await?
        }
        "copy_all_pooled" => {
            transactions::copy_all_pooled(&pool)
                .try_fold(zero, sum)
                .await?
        }
        other => return Err(format!("unknown --path={other}").into()),
    };
    println!("{path}: streamed {count} entries (sum {total})");
    report(count, started);
    Ok(())
}

fn report(count: u64, started: Instant) {
    let elapsed = started.elapsed();
    println!(
        "{count} rows in {elapsed:.2?}, {:.0} rows/s; peak RSS of this process (VmHWM): {}",
        count as f64 / elapsed.as_secs_f64(),
        vm_hwm_kib().map_or_else(
            || "unknown".to_owned(),
            |k| format!("{:.1} MiB", k as f64 / 1024.0)
        )
    );
}

/// Reads every live user, as a stream or (deprecated) into one `Vec`, and sums the lengths of
/// their emails, so that every row is decoded and looked at.
async fn read_users(pool: &sqlx::PgPool, path: &str) -> AnyResult {
    let started = Instant::now();
    let (count, bytes) = match path {
        "users_stream_active" => {
            users::stream_active(pool)
                .try_fold((0u64, 0usize), |(n, b), user| async move {
                    Ok((n + 1, b + user.email.len()))
                })
                .await?
        }
        "users_list_active" => {
            #[allow(deprecated)]
            let all = users::list_active(pool).await?;
            (all.len() as u64, all.iter().map(|u| u.email.len()).sum())
        }
        other => return Err(format!("unknown --path={other}").into()),
    };
    println!("{path}: read {count} live users ({bytes} bytes of email)");
    report(count, started);
    Ok(())
}

/// Copies users in until `rows` are live, 100,000 per `COPY`.
async fn load_users(pool: &sqlx::PgPool, present: i64, rows: i64) -> AnyResult {
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut made = present;
    while made < rows {
        let batch = (rows - made).min(100_000);
        let new: Vec<NewUser> = (0..batch)
            .map(|i| NewUser::new(format!("u{}-{run}@rss.example", made + i), "Streamed User"))
            .collect();
        users::copy_in(&mut conn, &new).await?;
        made += batch;
        eprintln!("loaded {made} users");
    }
    eprintln!("load: {:.1?}", started.elapsed());
    Ok(())
}

/// Posts deposits until the ledger holds `rows` entries, 100,000 per batch.
async fn load(pool: &sqlx::PgPool, present: i64, rows: i64) -> AnyResult {
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
    Ok(())
}
