//! The benches the crate is judged by: bulk versus row by row, streaming versus buffering,
//! keyset versus OFFSET, and the deadlock-free transfer versus the seed's.
//!
//! Run with `cargo bench` on the zero-setup database (or `DATABASE_URL`); each group compares its
//! alternatives in one run on the same data, and setup stays outside the timed part. The benches
//! use databases of their own (`ledger_bench_*`), created and migrated on first use.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::TryStreamExt;
use ledger::accounts::{self, AccountId};
use ledger::bulk::BulkOptions;
use ledger::page::{Cursor, Direction};
use ledger::transactions::{self, BatchItem, LedgerEntry, Movement, Transfer};
use ledger::users::{self, Counting, NewUser, UserOrder, UserQuery};
use ledger::{Config, schema};
use rust_decimal::Decimal;
use sqlx::{Acquire, PgPool};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A migrated database of the benches' own on the configured server or the private cluster.
async fn database(name: &str, pool_size: u32) -> PgPool {
    let config = Config::resolve_or_local()
        .await
        .expect("a database for the benches");
    config
        .create_database(name)
        .await
        .expect("create the bench database");
    let pool = config
        .with_database(name)
        .max_connections(pool_size)
        .connect()
        .await
        .expect("connect");
    schema::migrate(&mut pool.acquire().await.expect("a connection"))
        .await
        .expect("migrate");
    pool
}

fn people(n: usize, round: u64) -> Vec<NewUser> {
    (0..n)
        .map(|i| {
            NewUser::new(
                format!("u{round}-{i}@bench.example"),
                format!("Bench User {i}"),
            )
        })
        .collect()
}

async fn clear_users(pool: &PgPool) {
    sqlx::query!("truncate users cascade")
        .execute(pool)
        .await
        .expect("truncate");
}

/// 1. Creating users: row by row (autocommit and one transaction), UNNEST, COPY.
fn create_users(c: &mut Criterion) {
    let rt = runtime();
    let pool = rt.block_on(database("ledger_bench_write", 4));
    let round = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("create_users");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for n in [1_000usize, 10_000] {
        group.throughput(Throughput::Elements(n as u64));
        for method in [
            "row_autocommit",
            "row_one_transaction",
            "unnest_returning_every_column",
            "unnest",
            "copy",
        ] {
            group.bench_with_input(BenchmarkId::new(method, n), &n, |b, &n| {
                b.to_async(&rt).iter_custom(|iters| {
                    let (pool, round) = (pool.clone(), round.clone());
                    async move {
                        let mut timed = Duration::ZERO;
                        for _ in 0..iters {
                            clear_users(&pool).await;
                            let batch = people(n, round.fetch_add(1, Ordering::Relaxed));
                            let mut conn = pool.acquire().await.expect("a connection");
                            let start = Instant::now();
                            match method {
                                "row_autocommit" => {
                                    for user in &batch {
                                        users::insert(&mut *conn, user).await.expect("insert");
                                    }
                                }
                                "row_one_transaction" => {
                                    let mut tx = conn.begin().await.expect("begin");
                                    for user in &batch {
                                        users::insert(&mut *tx, user).await.expect("insert");
                                    }
                                    tx.commit().await.expect("commit");
                                }
                                "unnest_returning_every_column" => {
                                    // `insert_many` before it returned only `created_at`: the
                                    // same statement, reading every column back.
                                    unnest_returning_every_column(&mut conn, &batch).await;
                                }
                                "unnest" => {
                                    let options = BulkOptions::default().chunk_size(10_000);
                                    users::insert_many(&mut conn, &batch, options)
                                        .await
                                        .expect("insert_many");
                                }
                                _ => {
                                    users::copy_in(&mut conn, &batch).await.expect("copy_in");
                                }
                            }
                            timed += start.elapsed();
                        }
                        timed
                    }
                });
            });
        }
    }
    group.finish();
}

/// One UNNEST insert reading every column back, as `users::insert_many` did before it returned
/// only `created_at`.
async fn unnest_returning_every_column(conn: &mut sqlx::PgConnection, batch: &[NewUser]) {
    let ids: Vec<uuid::Uuid> = batch.iter().map(|_| uuid::Uuid::new_v4()).collect();
    let emails: Vec<&str> = batch.iter().map(|u| u.email.as_str()).collect();
    let names: Vec<&str> = batch.iter().map(|u| u.name.as_str()).collect();
    let mut tx = conn.begin().await.expect("begin");
    let rows = sqlx::query!(
        r#"
        insert into users (id, email, name)
        select * from unnest($1::uuid[], $2::text[], $3::text[])
        returning id, email, name, created_at, deleted_at
        "#,
        &ids,
        &emails as &[&str],
        &names as &[&str]
    )
    .fetch_all(&mut *tx)
    .await
    .expect("insert");
    tx.commit().await.expect("commit");
    assert_eq!(rows.len(), batch.len());
}

const READ_ROWS: i64 = 100_000;
const PAGE_USERS: i64 = 200_100;

/// The read benches' data: 100,000 transactions and 200,100 live users, loaded once.
async fn read_database() -> PgPool {
    let pool = database("ledger_bench_read", 4).await;
    let entries = sqlx::query_scalar!(r#"select count(*) as "n!" from transactions"#)
        .fetch_one(&pool)
        .await
        .expect("count");
    if entries < READ_ROWS {
        let mut conn = pool.acquire().await.expect("a connection");
        let owner = users::insert(&mut *conn, &NewUser::new("reader@bench.example", "Reader"))
            .await
            .expect("owner");
        let mut accounts = Vec::new();
        for _ in 0..100 {
            accounts.push(
                accounts::open(&mut *conn, owner.id, None)
                    .await
                    .expect("open")
                    .id,
            );
        }
        let items: Vec<BatchItem> = (0..READ_ROWS - entries)
            .map(|i| {
                let account = accounts[(i % 100) as usize];
                let amount = Decimal::new(i % 10_000 + 1, 2);
                let metadata = serde_json::json!({"source": "bench", "n": i});
                BatchItem::Deposit(Movement::new(account, amount).metadata(metadata))
            })
            .collect();
        for chunk in items.chunks(50_000) {
            transactions::post_batch(&mut conn, chunk)
                .await
                .expect("post_batch");
        }
    }
    let live = users::count_active(&pool).await.expect("count");
    if live < PAGE_USERS {
        let mut conn = pool.acquire().await.expect("a connection");
        let batch: Vec<NewUser> = (live..PAGE_USERS)
            .map(|i| NewUser::new(format!("page{i}@bench.example"), format!("Page User {i}")))
            .collect();
        for chunk in batch.chunks(50_000) {
            users::copy_in(&mut conn, chunk).await.expect("copy_in");
        }
    }
    sqlx::query!("vacuum analyze")
        .execute(&pool)
        .await
        .expect("vacuum");
    pool
}

/// 2. Reading 100,000 transactions: buffered, streamed, chunked, and `COPY TO` as the floor.
fn read_transactions(c: &mut Criterion) {
    let rt = runtime();
    let pool = rt.block_on(read_database());
    let mut group = c.benchmark_group("read_100k_transactions");
    group.sample_size(10);
    group.throughput(Throughput::Elements(READ_ROWS as u64));
    group.bench_function("fetch_all", |b| {
        b.to_async(&rt).iter(|| async {
            let rows: Vec<LedgerEntry> = sqlx::query_as!(
                LedgerEntry,
                r#"
                select id as "id: _", from_account_id as "from_account_id: _",
                       to_account_id as "to_account_id: _",
                       amount, type as kind, status, metadata, created_at, idempotency_key
                from transactions
                order by created_at, id
                "#
            )
            .fetch_all(&pool)
            .await
            .expect("fetch_all");
            assert!(rows.len() as i64 >= READ_ROWS);
        });
    });
    group.bench_function("stream", |b| {
        b.to_async(&rt).iter(|| async {
            let n = transactions::stream_all(&pool)
                .try_fold(0i64, |n, _| async move { Ok(n + 1) })
                .await
                .expect("stream");
            assert!(n >= READ_ROWS);
        });
    });
    group.bench_function("stream_unordered", |b| {
        b.to_async(&rt).iter(|| async {
            let n = transactions::stream_unordered(&pool)
                .try_fold(0i64, |n, _| async move { Ok(n + 1) })
                .await
                .expect("stream");
            assert!(n >= READ_ROWS);
        });
    });
    group.bench_function("copy_all_typed", |b| {
        b.to_async(&rt).iter(|| async {
            let mut conn = pool.acquire().await.expect("a connection");
            let n = transactions::copy_all(&mut conn)
                .try_fold(0i64, |n, _| async move { Ok(n + 1) })
                .await
                .expect("copy_all");
            assert!(n >= READ_ROWS);
        });
    });
    group.bench_function("chunks_1000", |b| {
        b.to_async(&rt).iter(|| async {
            let n = transactions::chunks(&pool, 1_000)
                .try_fold(0i64, |n, chunk| async move { Ok(n + chunk.len() as i64) })
                .await
                .expect("chunks");
            assert!(n >= READ_ROWS);
        });
    });
    group.bench_function("copy_to_stdout", |b| {
        b.to_async(&rt).iter(|| async {
            let mut conn = pool.acquire().await.expect("a connection");
            // COPY has no result columns to check: no query macro can express it.
            let copy = conn
                .copy_out_raw(
                    "copy (select id, from_account_id, to_account_id, amount, type, status, \
                     metadata, created_at, idempotency_key from transactions \
                     order by created_at, id) to stdout",
                )
                .await
                .expect("copy out");
            let lines = copy
                .try_fold(0i64, |n, bytes| async move {
                    Ok(n + bytes.iter().filter(|b| **b == b'\n').count() as i64)
                })
                .await
                .expect("copy stream");
            assert!(lines >= READ_ROWS);
        });
    });
    group.finish();
}

/// 3. Pages 1, 100 and 10,000 of live users (20 per page): OFFSET versus keyset.
fn pagination(c: &mut Criterion) {
    let rt = runtime();
    let pool = rt.block_on(read_database());
    // Django's Paginator object, counted once (exactly, and by the planner's estimate).
    let (exact, estimated) = rt.block_on(async {
        sqlx::query!("analyze users")
            .execute(&pool)
            .await
            .expect("analyze");
        let exact = UserQuery::new()
            .order(UserOrder::NewestFirst)
            .per_page(20)
            .paginator(&pool, Counting::Exact);
        let estimated = UserQuery::new()
            .order(UserOrder::NewestFirst)
            .per_page(20)
            .paginator(&pool, Counting::Estimated);
        (
            exact.await.expect("count"),
            estimated.await.expect("estimate"),
        )
    });
    let mut group = c.benchmark_group("pagination_newest_first");
    for (name, count) in [
        ("count_each_page", None),
        ("count_once", Some(Counting::Exact)),
        ("estimate_once", Some(Counting::Estimated)),
    ] {
        group.bench_function(BenchmarkId::new(name, "new + page 1"), |b| {
            b.to_async(&rt).iter(|| async {
                let page = match count {
                    None => {
                        let mut conn = pool.acquire().await.expect("connection");
                        UserQuery::new()
                            .order(UserOrder::NewestFirst)
                            .per_page(20)
                            .get_page(&mut conn, "1")
                            .await
                    }
                    Some(counting) => {
                        UserQuery::new()
                            .order(UserOrder::NewestFirst)
                            .per_page(20)
                            .paginator(&pool, counting)
                            .await
                            .expect("paginator")
                            .get_page(&pool, "1")
                            .await
                    }
                };
                assert_eq!(page.expect("page").items.len(), 20);
            });
        });
    }
    for (name, paginator) in [("count_once", &exact), ("estimate_once", &estimated)] {
        group.bench_function(BenchmarkId::new(name, "another page 1"), |b| {
            b.to_async(&rt).iter(|| async {
                let page = paginator.get_page(&pool, "1").await.expect("page");
                assert_eq!(page.items.len(), 20);
            });
        });
    }
    eprintln!(
        "live users: exact {}, estimated {}",
        exact.paginator().count(),
        estimated.paginator().count()
    );
    for page in [1i64, 100, 10_000] {
        let offset = (page - 1) * 20;
        // The cursor a client would hold on arriving at this page: the key of the row before it.
        let cursor = rt.block_on(async {
            if offset == 0 {
                return None;
            }
            let before = UserQuery::new()
                .order(UserOrder::NewestFirst)
                .slice(&pool, offset - 1..offset)
                .await
                .expect("slice");
            before.first().map(|u| Cursor {
                direction: Direction::Next,
                created_at: u.created_at,
                id: u.id.as_uuid(),
            })
        });
        group.bench_with_input(BenchmarkId::new("offset", page), &offset, |b, &offset| {
            b.to_async(&rt).iter(|| async {
                let rows = UserQuery::new()
                    .order(UserOrder::NewestFirst)
                    .slice(&pool, offset..offset + 20)
                    .await
                    .expect("offset page");
                assert_eq!(rows.len(), 20);
            });
        });
        group.bench_with_input(BenchmarkId::new("keyset", page), &cursor, |b, cursor| {
            b.to_async(&rt).iter(|| async {
                let rows = UserQuery::new()
                    .per_page(20)
                    .keyset(&pool, cursor.as_ref())
                    .await
                    .expect("keyset page");
                assert_eq!(rows.items.len(), 20);
            });
        });
    }
    group.finish();
}

/// The seed's `transfer_funds`: two `select ... for update` in argument order, two updates, one
/// insert. No retry, as in the seed: a deadlock reaches the caller.
async fn seed_transfer(
    pool: &PgPool,
    from: AccountId,
    to: AccountId,
    amount: Decimal,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let from_balance = sqlx::query_scalar!(
        "select balance from accounts where id = $1 for update",
        from.as_uuid()
    )
    .fetch_one(&mut *tx)
    .await?
    .0;
    let to_balance = sqlx::query_scalar!(
        "select balance from accounts where id = $1 for update",
        to.as_uuid()
    )
    .fetch_one(&mut *tx)
    .await?
    .0;
    if from_balance < amount {
        return Err(sqlx::Error::Protocol("insufficient funds".into()));
    }
    sqlx::query!(
        "update accounts set balance = $2 where id = $1",
        from.as_uuid(),
        from_balance - amount
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "update accounts set balance = $2 where id = $1",
        to.as_uuid(),
        to_balance + amount
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        r#"
        insert into transactions (from_account_id, to_account_id, amount, type, status)
        values ($1, $2, $3, 'transfer', 'completed')
        "#,
        from.as_uuid(),
        to.as_uuid(),
        amount
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Ten hot accounts with a million each, so that no transfer is refused for funds.
async fn hot_accounts(pool: &PgPool) -> Vec<AccountId> {
    let mut conn = pool.acquire().await.expect("a connection");
    let owner = users::insert(
        &mut *conn,
        &NewUser::new(format!("hot-{}@bench.example", uuid::Uuid::new_v4()), "Hot"),
    )
    .await
    .expect("owner");
    let mut hot = Vec::new();
    for _ in 0..10 {
        let account = accounts::open(&mut *conn, owner.id, None)
            .await
            .expect("open");
        let funding = Movement::new(account.id, Decimal::from(1_000_000));
        transactions::deposit(&mut conn, &funding)
            .await
            .expect("fund");
        hot.push(account.id);
    }
    hot
}

/// 4. Transfers per second on 10 hot accounts, 1 and 4 clients: the crate's versus the seed's.
fn transfers(c: &mut Criterion) {
    let rt = runtime();
    let pool = rt.block_on(database("ledger_bench_transfer", 8));
    let hot = Arc::new(rt.block_on(hot_accounts(&pool)));
    let seed_deadlocks = Arc::new(AtomicU64::new(0));
    let seed_attempts = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("transfers_10_hot_accounts");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    for clients in [1u64, 4] {
        for method in ["ledger", "seed"] {
            let (pool, hot) = (pool.clone(), hot.clone());
            let (deadlocks, attempts) = (seed_deadlocks.clone(), seed_attempts.clone());
            let rt = &rt;
            group.bench_function(BenchmarkId::new(method, clients), move |b| {
                b.to_async(rt).iter_custom(|iters| {
                    let (pool, hot) = (pool.clone(), hot.clone());
                    let (deadlocks, attempts) = (deadlocks.clone(), attempts.clone());
                    async move {
                        let start = Instant::now();
                        let mut tasks = tokio::task::JoinSet::new();
                        for client in 0..clients {
                            let (pool, hot) = (pool.clone(), hot.clone());
                            let (deadlocks, attempts) = (deadlocks.clone(), attempts.clone());
                            let share = iters / clients + u64::from(client < iters % clients);
                            tasks.spawn(async move {
                                let mut state = 0x2545_F491_4F6C_DD1D ^ (client + 1) ^ iters;
                                for _ in 0..share {
                                    state ^= state << 13;
                                    state ^= state >> 7;
                                    state ^= state << 17;
                                    let from = hot[(state % 10) as usize];
                                    let mut to = hot[((state >> 8) % 10) as usize];
                                    if to == from {
                                        to = hot[((state % 10 + 1) % 10) as usize];
                                    }
                                    let amount = Decimal::new((state >> 16) as i64 % 1000 + 1, 2);
                                    if method == "ledger" {
                                        let mut conn = pool.acquire().await.expect("a connection");
                                        let request = Transfer::new(from, to, amount);
                                        transactions::transfer(&mut conn, &request)
                                            .await
                                            .expect("no error reaches the caller");
                                    } else {
                                        attempts.fetch_add(1, Ordering::Relaxed);
                                        if let Err(err) =
                                            seed_transfer(&pool, from, to, amount).await
                                        {
                                            let code =
                                                err.as_database_error().and_then(|d| d.code());
                                            assert_eq!(code.as_deref(), Some("40P01"), "{err}");
                                            deadlocks.fetch_add(1, Ordering::Relaxed);
                                        }
                                    }
                                }
                            });
                        }
                        tasks.join_all().await;
                        start.elapsed()
                    }
                });
            });
        }
    }
    group.finish();
    let (deadlocks, attempts) = (
        seed_deadlocks.load(Ordering::Relaxed),
        seed_attempts.load(Ordering::Relaxed),
    );
    eprintln!("seed transfer_funds: {deadlocks} deadlocks in {attempts} attempts");
    let off = rt
        .block_on(transactions::reconcile(&pool))
        .expect("reconcile");
    eprintln!(
        "ledger reconciliation after the benches: {} accounts disagree",
        off.len()
    );
}

criterion_group!(
    benches,
    create_users,
    read_transactions,
    pagination,
    transfers
);
criterion_main!(benches);
