//! The timeouts of `Config` on a real server: a lock held by another connection past
//! `lock_timeout` is a typed, retryable error with a known outcome, and the settings given in a
//! URL or `DB_*` variables are the session's.

use std::time::{Duration, Instant};

use ledger::config::Timeouts;
use ledger::transactions::{self, Transfer};
use ledger::{Config, Error, Transient, accounts};
use sqlx::{Acquire, PgConnection, PgPool};

use crate::money::{entries, funded};
use crate::support::{dec, url_of};

async fn show(conn: &mut PgConnection) -> (String, String, String, String) {
    let row = sqlx::query!(
        r#"
        select current_setting('lock_timeout') as "lock!",
            current_setting('statement_timeout') as "statement!",
            current_setting('idle_in_transaction_session_timeout') as "idle!",
            current_setting('application_name') as "name!"
        "#
    )
    .fetch_one(conn)
    .await
    .unwrap();
    (row.lock, row.statement, row.idle, row.name)
}

/// A second connection holds the source account's row; the transfer, with a 300 ms
/// `lock_timeout`, gives up with `Transient::LockTimeout` after about that long instead of
/// waiting for the holder, writes nothing (not even its idempotency key), and the same call
/// succeeds once the holder is gone.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_transfer_behind_a_held_row_times_out_typed_and_writes_nothing(pool: PgPool) {
    let from = funded(&pool, "from@example.com", "USD", "100").await.id;
    let to = funded(&pool, "to@example.com", "USD", "0").await.id;
    let entries_before = entries(&pool).await;
    let lock = Duration::from_millis(300);
    let service = Config::from_url(&url_of(&pool))
        .unwrap()
        .with_timeouts(Timeouts::default().lock(Some(lock)))
        .connect()
        .await
        .unwrap();

    let mut holder = pool.acquire().await.unwrap();
    let mut held = holder.begin().await.unwrap();
    sqlx::query!(
        "select id from accounts where id = $1 for update",
        from.as_uuid()
    )
    .fetch_one(&mut *held)
    .await
    .unwrap();

    let pay = Transfer::new(from, to, dec("10")).idempotency_key("held-row-1");
    let mut conn = service.acquire().await.unwrap();
    let started = Instant::now();
    let err = transactions::transfer(&mut conn, &pay).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(
            err,
            Error::Transient {
                kind: Transient::LockTimeout,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable() && !err.outcome_unknown(), "{err:?}");
    assert_eq!(err.sqlstate().as_deref(), Some("55P03"));
    assert!(
        waited >= lock && waited < Duration::from_secs(10),
        "gave up after {waited:?}"
    );
    assert_eq!(entries(&pool).await, entries_before, "no entry written");
    assert_eq!(
        accounts::get(&pool, from).await.unwrap().balance,
        dec("100.00")
    );
    let key = sqlx::query_scalar!(
        r#"select count(*) as "n!" from idempotency_keys where key = 'held-row-1'"#
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(key, 0, "the key's claim was rolled back with the rest");

    held.rollback().await.unwrap();
    let entry = transactions::transfer(&mut conn, &pay).await.unwrap();
    assert_eq!(entry.amount, dec("10"));
    assert_eq!(
        accounts::get(&pool, to).await.unwrap().balance,
        dec("10.00")
    );
    drop(conn);
    service.close().await;
}

/// What the session runs with: the defaults; the URL's `options` and `application_name`, in
/// libpq's words; `DB_*` variables over both; nothing sent through a transaction pooler.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn the_servers_timeouts_are_the_sessions(pool: PgPool) {
    let url = url_of(&pool);
    let mut conn = Config::from_url(&url).unwrap().connect_one().await.unwrap();
    assert_eq!(
        show(&mut conn).await,
        ("10s".into(), "0".into(), "1min".into(), "ledger".into())
    );

    let sep = if url.contains('?') { '&' } else { '?' };
    let named = format!(
        "{url}{sep}application_name=billing&options=-c%20lock_timeout%3D1500ms%20-c%20statement_timeout%3D2min"
    );
    let mut conn = Config::from_url(&named)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    assert_eq!(
        show(&mut conn).await,
        (
            "1500ms".into(),
            "2min".into(),
            "1min".into(),
            "billing".into()
        )
    );

    let vars = [
        ("DATABASE_URL", named.as_str()),
        ("DB_LOCK_TIMEOUT", "0"),
        ("DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", "5s"),
        ("DB_ACQUIRE_TIMEOUT", "2s"),
    ];
    let config = Config::from_lookup(|key| {
        vars.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap()
    .unwrap();
    assert_eq!(config.timeouts().acquire, Duration::from_secs(2));
    let pool = config.connect().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        show(&mut conn).await,
        ("0".into(), "2min".into(), "5s".into(), "billing".into())
    );
    drop(conn);
    pool.close().await;

    // A transaction pooler takes no startup `options`: the server's defaults stand.
    let pooled = Config::from_url(&url).unwrap().transaction_pooler();
    let mut conn = pooled.connect_one().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let (lock, statement, idle, _) = show(&mut tx).await;
    assert_eq!(
        (lock.as_str(), statement.as_str(), idle.as_str()),
        ("0", "0", "0")
    );
}

/// A stream's transaction waits on its reader by design: with a 1 s
/// `idle_in_transaction_session_timeout`, a reader that pauses 2 s between rows still reads
/// every row, through each kind of stream, and the same session then runs a query; a caller's
/// own transaction left idle that long is ended by the server, as the setting says.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_slow_reader_keeps_its_stream_past_the_idle_in_transaction_timeout(pool: PgPool) {
    use futures::StreamExt;
    let a = funded(&pool, "slow@example.com", "USD", "0").await.id;
    let mut conn = pool.acquire().await.unwrap();
    for _ in 0..3 {
        transactions::deposit(&mut conn, &ledger::transactions::Movement::new(a, dec("1")))
            .await
            .unwrap();
    }
    drop(conn);
    let reader = Config::from_url(&url_of(&pool))
        .unwrap()
        .with_timeouts(Timeouts::default().idle_in_transaction(Some(Duration::from_secs(1))))
        .max_connections(1)
        .connect()
        .await
        .unwrap();
    let pause = Duration::from_secs(2);
    let mut all = transactions::stream_all(&reader);
    let first = all.next().await.unwrap().unwrap();
    tokio::time::sleep(pause).await;
    let rest: Vec<_> = all.map(|r| r.unwrap()).collect().await;
    assert_eq!(rest.len() + 1, 3, "{first:?}");
    let mut unordered = transactions::stream_unordered(&reader);
    unordered.next().await.unwrap().unwrap();
    tokio::time::sleep(pause).await;
    assert_eq!(
        unordered
            .map(|r| r.unwrap())
            .collect::<Vec<_>>()
            .await
            .len(),
        2
    );
    let mut copied = transactions::copy_all_pooled(&reader);
    copied.next().await.unwrap().unwrap();
    tokio::time::sleep(pause).await;
    assert_eq!(
        copied.map(|r| r.unwrap()).collect::<Vec<_>>().await.len(),
        2
    );
    sqlx::query_scalar!(r#"select 1 as "one!""#)
        .fetch_one(&reader)
        .await
        .unwrap();

    // The setting itself holds for a caller's own idle transaction.
    let mut conn = reader.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query_scalar!(r#"select 1 as "one!""#)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tokio::time::sleep(pause).await;
    let ended = sqlx::query_scalar!(r#"select 1 as "one!""#)
        .fetch_one(&mut *tx)
        .await;
    assert!(ended.is_err(), "the server ended the idle transaction");
    drop(tx);
    drop(conn);
    reader.close().await;
}
