//! A stream dropped early costs the next caller at most the rest of one chunk, whatever the
//! table's size, and leaves the server doing nothing for it.
//!
//! Each stream is read for one row, and for half the table, then dropped; the next query on the
//! same one-connection pool is timed, and `pg_stat_activity` must show no backend still busy.
//! The bound is measured in the same test: a plain `select` of the whole table dropped after one
//! row (sqlx then reads the rest of the result off the socket) is the full drain that a cursor
//! avoids, and every stream's wait must be a small fraction of it.

use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use ledger::users::{self, NewUser};
use ledger::{accounts, transactions};
use sqlx::{Acquire, PgConnection, PgPool};

/// Entries in the table: large enough that a full drain takes far longer than one chunk.
pub const ROWS: i64 = 200_000;

/// Fills `transactions` with [`ROWS`] deposits into one account, a second apart (the books do
/// not balance: only the reads matter here).
pub async fn fill(conn: &mut PgConnection) {
    fill_rows(conn, ROWS).await;
}

/// [`fill`] with `rows` entries.
async fn fill_rows(conn: &mut PgConnection, rows: i64) {
    let owner = users::insert(&mut *conn, &NewUser::new("big@example.com", "Big"))
        .await
        .unwrap();
    let account = accounts::open(&mut *conn, owner.id, Some("USD"))
        .await
        .unwrap()
        .id;
    sqlx::query!(
        r#"
        insert into transactions (to_account_id, amount, type, status, created_at)
        select $1, 0.01, 'deposit', 'completed', now() - make_interval(secs => i)
        from generate_series(1, $2::bigint) as i
        "#,
        account.as_uuid(),
        rows
    )
    .execute(&mut *conn)
    .await
    .unwrap();
}

#[derive(Debug, Clone, Copy)]
enum Read {
    /// A plain `select` of the whole table, as `stream_all` was before its cursor: the drain.
    WholeSelect,
    StreamAll,
    StreamUnordered,
    Chunks,
    CopyAllPooled,
}

fn open(read: Read, pool: &PgPool) -> BoxStream<'_, ledger::Result<usize>> {
    match read {
        Read::WholeSelect => unreachable!("read by `drain_dropped`"),
        Read::StreamAll => transactions::stream_all(pool).map_ok(|_| 1).boxed(),
        Read::StreamUnordered => transactions::stream_unordered(pool).map_ok(|_| 1).boxed(),
        Read::CopyAllPooled => transactions::copy_all_pooled(pool).map_ok(|_| 1).boxed(),
        Read::Chunks => transactions::chunks(pool, 1000)
            .map_ok(|chunk| chunk.len())
            .boxed(),
    }
}

/// One row of a plain `select` of the whole table, in a transaction (as a transaction pooler
/// needs), then the stream, the transaction and the connection are dropped: the pool's return
/// of the connection reads the rest of the result.
async fn drain_dropped(one: &PgPool) {
    let mut conn = one.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let mut rows = sqlx::query!(
        r#"
        select id, from_account_id, to_account_id, amount, type as kind, status, metadata,
               created_at, idempotency_key
        from transactions
        "#
    )
    .fetch(&mut *tx);
    rows.next().await.unwrap().unwrap();
}

/// Reads at least `rows` rows of `read`, drops it, and returns how long the next query on the
/// same pool waited; asserts that no backend of the database is still busy afterwards.
async fn wait_after_drop(one: &PgPool, observer: &PgPool, read: Read, rows: usize) -> Duration {
    if let Read::WholeSelect = read {
        drain_dropped(one).await;
    } else {
        let mut stream = open(read, one);
        let mut seen = 0;
        while seen < rows {
            seen += stream.next().await.unwrap().unwrap();
        }
    }
    let started = Instant::now();
    // Held while the observer looks, so that its own return to the pool is not what it sees;
    // in a transaction, as the transaction-pooler profile needs.
    let mut conn = one.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query_scalar!(r#"select 1 as "one!""#)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let waited = started.elapsed();
    // Behind PgBouncer the next query may run on another server connection while the stream's
    // finishes its `rollback` (or the pooler's `DISCARD ALL`): a few looks, 20 ms apart, well
    // under what a backend still scanning the table for the dropped read would take.
    let mut busy = Vec::new();
    for _ in 0..5 {
        let mut look = observer.begin().await.unwrap();
        busy = sqlx::query_scalar!(
            r#"
            select coalesce(query, '') as "query!" from pg_stat_activity
            where datname = current_database() and pid <> pg_backend_pid()
              and backend_type = 'client backend' and state <> 'idle'
            "#
        )
        .fetch_all(&mut *look)
        .await
        .unwrap();
        look.commit().await.unwrap();
        if busy.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        busy.is_empty(),
        "{read:?}: a backend still works for the dropped read: {busy:?}"
    );
    waited
}

/// The whole check, on `one` (a pool of one connection) and `observer` (another pool of the same
/// database), after [`fill`]; `chunks` too if `with_chunks`.
pub async fn every_stream_dropped_early_costs_one_chunk(
    one: &PgPool,
    observer: &PgPool,
    with_chunks: bool,
) {
    let drain = wait_after_drop(one, observer, Read::WholeSelect, 1).await;
    let mut reads = vec![Read::StreamAll, Read::StreamUnordered, Read::CopyAllPooled];
    if with_chunks {
        reads.push(Read::Chunks);
    }
    for read in reads {
        for rows in [1, ROWS as usize / 2] {
            // The least of three, so that one stall of a loaded machine does not decide.
            let mut least = Duration::MAX;
            for _ in 0..3 {
                least = least.min(wait_after_drop(one, observer, read, rows).await);
            }
            eprintln!("{read:?} dropped after {rows} rows: next query {least:?}, drain {drain:?}");
            assert!(
                least * 10 < drain,
                "{read:?} dropped after {rows} rows: the next query waited {least:?}, \
                 a full drain {drain:?}"
            );
        }
    }
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn every_stream_dropped_early_costs_the_next_query_one_chunk(pool: PgPool) {
    fill(&mut pool.acquire().await.unwrap()).await;
    let one = crate::support::one_connection(&pool).await;
    every_stream_dropped_early_costs_one_chunk(&one, &pool, true).await;
}

/// `copy_all_pooled` dropped half-read finishes its chunk's `COPY` and gives its connection back
/// clean: the next caller gets the same backend, outside any transaction.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_pooled_copy_dropped_half_read_keeps_its_connection(pool: PgPool) {
    fill(&mut pool.acquire().await.unwrap()).await;
    let one = crate::support::one_connection(&pool).await;
    let backend = || async {
        sqlx::query_scalar!(r#"select pg_backend_pid() as "pid!""#)
            .fetch_one(&one)
            .await
            .unwrap()
    };
    let before = backend().await;
    for rows in [10, ROWS as usize / 2] {
        let read: Vec<_> = transactions::copy_all_pooled(&one)
            .take(rows)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(read.len(), rows);
        assert_eq!(
            backend().await,
            before,
            "the connection was closed, not reused"
        );
        let mut conn = one.acquire().await.unwrap();
        assert!(
            ledger::session::is_outside_transaction(&mut conn)
                .await
                .unwrap()
        );
    }
}

/// `copy_all_pooled` reads the heap a bounded range of pages per `COPY`: the statement its
/// backend last ran (read from `pg_stat_activity` while the stream is held after one row) is a
/// `COPY` of a `ctid` range, and the `select` inside it is a TID range scan, not a sequential
/// scan of the table.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_pooled_copy_reads_one_range_of_pages_per_copy(pool: PgPool) {
    fill(&mut pool.acquire().await.unwrap()).await;
    sqlx::query!("analyze transactions")
        .execute(&pool)
        .await
        .unwrap();
    let mut stream = transactions::copy_all_pooled(&pool);
    stream.next().await.unwrap().unwrap();
    let statement = sqlx::query_scalar!(
        r#"
        select query as "query!" from pg_stat_activity
        where datname = current_database() and query like 'copy (select %'
        "#
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    drop(stream);
    assert!(statement.contains("where ctid >= '("), "{statement}");
    assert!(statement.contains("and ctid < '("), "{statement}");
    let select = statement
        .strip_prefix("copy (")
        .and_then(|s| s.strip_suffix(") to stdout"))
        .unwrap_or_else(|| panic!("not a COPY of a select: {statement}"));
    // The statement under test is the one the server ran, known only at run time: no query
    // macro can hold it.
    let plan: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "explain (format json) {select}"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    let node = &plan[0]["Plan"];
    assert_eq!(node["Node Type"], "Tid Range Scan", "{plan}");
    assert_eq!(node["Relation Name"], "transactions", "{plan}");
}

/// Every stream reads one snapshot: entries committed by another connection while a stream is
/// held open after its first row (later in key order than every row it has, and on new heap
/// pages) are not in what it reads, though its later chunks are queried after the commit.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_stream_reads_the_snapshot_of_its_first_chunk(pool: PgPool) {
    const BEFORE: i64 = 20_000;
    fill_rows(&mut pool.acquire().await.unwrap(), BEFORE).await;
    let account = sqlx::query_scalar!(r#"select id as "id: uuid::Uuid" from accounts"#)
        .fetch_one(&pool)
        .await
        .unwrap();
    for read in [Read::StreamAll, Read::StreamUnordered, Read::CopyAllPooled] {
        let mut stream = open(read, &pool);
        let mut seen = stream.next().await.unwrap().unwrap();
        sqlx::query!(
            r#"
            insert into transactions (to_account_id, amount, type, status, created_at)
            select $1, 0.01, 'deposit', 'completed', now() + make_interval(days => i)
            from generate_series(1, 5000) as i
            "#,
            account
        )
        .execute(&pool)
        .await
        .unwrap();
        while let Some(rows) = stream.try_next().await.unwrap() {
            seen += rows;
        }
        let stored = sqlx::query_scalar!(r#"select count(*) as "n!" from transactions"#)
            .fetch_one(&pool)
            .await
            .unwrap();
        let before = stored as usize - 5000;
        assert_eq!(seen, before, "{read:?} read rows committed after it began");
    }
}
