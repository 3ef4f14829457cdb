//! `transactions::Poster`: shared commits, each movement with its own result, exactly once.
//!
//! The races are made to happen: the movements of one test are queued together while the poster
//! lingers (so that they share a flush, which `xmin`, the writing transaction's id, shows), a key
//! is held by another connection's open transaction, an account is held locked while the flush
//! waits on it and its backend is terminated.

use std::time::Duration;

use futures::FutureExt;
use futures::future::join_all;
use ledger::Error;
use ledger::accounts::{self, Account, AccountId};
use ledger::transactions::{self, LedgerEntry, Movement, Poster, PosterOptions, Transfer};
use sqlx::PgPool;

use ledger::local::Cluster;
use sqlx::postgres::PgPoolOptions;

use crate::money::funded;
use crate::support::{self, dec};

/// A poster that waits long enough for a test's movements to share one flush.
fn lingering(pool: &PgPool) -> Poster {
    Poster::new(
        pool.clone(),
        PosterOptions::default().linger(Duration::from_millis(200)),
    )
}

async fn balance(pool: &PgPool, account: &Account) -> String {
    accounts::get(pool, account.id)
        .await
        .unwrap()
        .balance
        .to_string()
}

/// Another client's open transaction holding `key` (its claim, not yet committed): roll it
/// back to free the key.
async fn hold_key(pool: &PgPool, key: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut other = pool.begin().await.unwrap();
    sqlx::query!(
        "insert into idempotency_keys (key, entry_ids) values ($1, array[gen_random_uuid()])",
        key
    )
    .execute(&mut *other)
    .await
    .unwrap();
    other
}

/// How many transactions wrote these entries.
async fn commits(pool: &PgPool, entries: &[&LedgerEntry]) -> i64 {
    let ids: Vec<uuid::Uuid> = entries.iter().map(|e| e.id.as_uuid()).collect();
    sqlx::query_scalar!(
        r#"select count(distinct xmin::text) as "n!" from transactions where id = any($1)"#,
        &ids
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn each_movement_of_a_shared_commit_gets_its_own_result_and_a_refusal_refuses_only_itself(
    pool: PgPool,
) {
    let a = funded(&pool, "a@example.com", "USD", "100.00").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let frozen = funded(&pool, "f@example.com", "USD", "0").await;
    accounts::set_status(&pool, frozen.id, "frozen")
        .await
        .unwrap();
    let euro = funded(&pool, "e@example.com", "EUR", "0").await;
    let poster = lingering(&pool);

    let results = join_all([
        poster
            .transfer(Transfer::new(a.id, b.id, dec("30.00")))
            .boxed_local(),
        poster
            .transfer(Transfer::new(a.id, b.id, dec("30.00")))
            .boxed_local(),
        poster
            .deposit(Movement::new(frozen.id, dec("1.00")))
            .boxed_local(),
        poster
            .transfer(Transfer::new(a.id, b.id, dec("30.00")))
            .boxed_local(),
        poster
            .transfer(Transfer::new(a.id, euro.id, dec("1.00")))
            .boxed_local(),
        poster
            .transfer(Transfer::new(a.id, b.id, dec("30.00")))
            .boxed_local(),
        poster
            .deposit(Movement::new(b.id, dec("5.00")))
            .boxed_local(),
        poster
            .deposit(Movement::new(AccountId::new(), dec("5.00")))
            .boxed_local(),
    ])
    .await;
    poster.close().await;

    let applied: Vec<&LedgerEntry> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(applied.len(), 4, "{results:?}");
    assert_eq!(
        commits(&pool, &applied).await,
        1,
        "the four shared one commit"
    );
    assert!(
        matches!(results[2], Err(Error::AccountNotActive { .. })),
        "{:?}",
        results[2]
    );
    assert!(
        matches!(results[4], Err(Error::CurrencyMismatch { .. })),
        "{:?}",
        results[4]
    );
    // Queued in this order: the fourth transfer of 30.00 is the one that would overdraw.
    assert!(
        matches!(&results[5], Err(Error::InsufficientFunds { balance, .. }) if balance.to_string() == "10.00"),
        "{:?}",
        results[5]
    );
    assert!(matches!(
        results[7],
        Err(Error::NotFound { what: "account" })
    ));
    for entry in &applied {
        assert_eq!(entry.status.as_str(), "completed");
    }
    assert_eq!(balance(&pool, &a).await, "10.00");
    assert_eq!(balance(&pool, &b).await, "95.00");
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn movements_on_an_account_apply_in_the_order_they_were_queued(pool: PgPool) {
    let empty = funded(&pool, "o@example.com", "USD", "0").await;
    let poster = lingering(&pool);
    // Deposit first: the withdrawal in the same flush sees the deposited balance.
    let [deposit, withdrawal] = join_all([
        poster
            .deposit(Movement::new(empty.id, dec("10.00")))
            .boxed_local(),
        poster
            .withdraw(Movement::new(empty.id, dec("10.00")))
            .boxed_local(),
    ])
    .await
    .try_into()
    .unwrap();
    let (deposit, withdrawal) = (deposit.unwrap(), withdrawal.unwrap());
    assert_eq!(commits(&pool, &[&deposit, &withdrawal]).await, 1);
    assert_eq!(balance(&pool, &empty).await, "0.00");
    // Withdrawal first: refused for funds, whatever the deposit after it brings.
    let [withdrawal, deposit] = join_all([
        poster
            .withdraw(Movement::new(empty.id, dec("10.00")))
            .boxed_local(),
        poster
            .deposit(Movement::new(empty.id, dec("10.00")))
            .boxed_local(),
    ])
    .await
    .try_into()
    .unwrap();
    assert!(
        matches!(withdrawal, Err(Error::InsufficientFunds { .. })),
        "{withdrawal:?}"
    );
    deposit.unwrap();
    assert_eq!(balance(&pool, &empty).await, "10.00");
    // A refusal between two accepted movements on one account: the third is judged against the
    // balance the first left, as if the second had never been asked for.
    let [first, second, third] = join_all([
        poster.withdraw(Movement::new(empty.id, dec("6.00"))),
        poster.withdraw(Movement::new(empty.id, dec("6.00"))),
        poster.withdraw(Movement::new(empty.id, dec("4.00"))),
    ])
    .await
    .try_into()
    .unwrap();
    let (first, third) = (first.unwrap(), third.unwrap());
    assert!(
        matches!(&second, Err(Error::InsufficientFunds { balance, .. }) if balance.to_string() == "4.00"),
        "{second:?}"
    );
    assert_eq!(commits(&pool, &[&first, &third]).await, 1);
    assert_eq!(balance(&pool, &empty).await, "0.00");
    poster.close().await;
    // Bad input is refused before it is queued, and after close nothing is taken.
    let bad = poster.deposit(Movement::new(empty.id, dec("0.001"))).await;
    assert!(
        matches!(
            bad,
            Err(Error::InvalidInput {
                field: "amount",
                ..
            })
        ),
        "{bad:?}"
    );
    let late = poster.deposit(Movement::new(empty.id, dec("1.00"))).await;
    assert!(matches!(late, Err(Error::PosterClosed)), "{late:?}");
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_key_applies_once_in_a_flush_across_flushes_and_after_a_refusal(pool: PgPool) {
    let a = funded(&pool, "ka@example.com", "USD", "50.00").await;
    let b = funded(&pool, "kb@example.com", "USD", "0").await;
    let poster = lingering(&pool);
    let pay = Transfer::new(a.id, b.id, dec("20.00")).idempotency_key("pay-1");
    // The same key twice in one flush: one movement, one entry, both callers get it.
    let [first, second] = join_all([poster.transfer(pay.clone()), poster.transfer(pay.clone())])
        .await
        .try_into()
        .unwrap();
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first, second);
    // In a later flush: replayed from the committed key, nothing moved again.
    assert_eq!(poster.transfer(pay.clone()).await.unwrap(), first);
    // The single call sees the poster's key, and the poster the single call's.
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        transactions::transfer(&mut conn, &pay).await.unwrap(),
        first
    );
    let other = Transfer::new(a.id, b.id, dec("21.00")).idempotency_key("pay-1");
    let conflict = poster.transfer(other).await;
    assert!(
        matches!(conflict, Err(Error::IdempotencyConflict { .. })),
        "{conflict:?}"
    );
    assert_eq!(balance(&pool, &a).await, "30.00");

    // A keyed movement refused for funds gives its key back: the same call, once funded,
    // applies.
    let big = Transfer::new(a.id, b.id, dec("40.00")).idempotency_key("pay-2");
    let refused = poster.transfer(big.clone()).await;
    assert!(
        matches!(refused, Err(Error::InsufficientFunds { .. })),
        "{refused:?}"
    );
    let held =
        sqlx::query_scalar!(r#"select count(*) as "n!" from idempotency_keys where key = 'pay-2'"#)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(held, 0);
    poster
        .deposit(Movement::new(a.id, dec("10.00")))
        .await
        .unwrap();
    let applied = poster.transfer(big).await.unwrap();
    assert_eq!(applied.idempotency_key.as_deref(), Some("pay-2"));
    assert_eq!(balance(&pool, &a).await, "0.00");
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
    poster.close().await;
}

/// A key held by another connection's open transaction stalls only its own movement: the 100
/// other movements queued with it commit, while it waits on its own for the key; once the other
/// transaction rolls back, it applies, once.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_key_in_flight_elsewhere_waits_on_its_own_while_the_rest_of_the_flush_commits(
    pool: PgPool,
) {
    let a = funded(&pool, "wa@example.com", "USD", "500.00").await;
    let b = funded(&pool, "wb@example.com", "USD", "0").await;
    let other = hold_key(&pool, "held").await;
    let poster = lingering(&pool);
    let pay = Transfer::new(a.id, b.id, dec("5.00")).idempotency_key("held");
    let held = poster.transfer(pay.clone());
    tokio::pin!(held);
    let rest: Vec<Transfer> = (0..100)
        .map(|i| {
            let t = Transfer::new(a.id, b.id, dec("1.00"));
            if i % 2 == 0 {
                t.idempotency_key(format!("free-{i}"))
            } else {
                t
            }
        })
        .collect();
    let (rest, early) = tokio::join!(
        tokio::time::timeout(
            Duration::from_secs(20),
            join_all(rest.into_iter().map(|t| poster.transfer(t)))
        ),
        tokio::time::timeout(Duration::from_millis(100), &mut held),
    );
    let rest = rest.expect("the rest of the flush commits while the key is held");
    assert!(early.is_err(), "the held movement waits for its key");
    let entries: Vec<LedgerEntry> = rest.into_iter().map(Result::unwrap).collect();
    assert_eq!(entries.len(), 100);
    assert_eq!(balance(&pool, &a).await, "400.00");
    // Still held: the movement still waits, on its own.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut held)
            .await
            .is_err()
    );
    // The other client rolls back: the key is free, and the movement applies, once.
    other.rollback().await.unwrap();
    let entry = held.await.unwrap();
    assert_eq!(poster.transfer(pay).await.unwrap(), entry);
    assert_eq!(balance(&pool, &a).await, "395.00");
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
    poster.close().await;
}

/// A flush that fails as a whole gives each caller the flush's error with its SQLSTATE and
/// constraint, as the single call would: here a check constraint another client added refuses
/// the flush's one insert.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_flush_wide_failure_keeps_its_sqlstate_and_constraint_for_every_caller(pool: PgPool) {
    let a = funded(&pool, "ca@example.com", "USD", "100.00").await;
    let b = funded(&pool, "cb@example.com", "USD", "0").await;
    sqlx::query!(
        "alter table transactions add constraint no_sevens check (amount <> 7.77) not valid"
    )
    .execute(&pool)
    .await
    .unwrap();
    let poster = lingering(&pool);
    let results = join_all(
        ["1.00", "7.77", "2.00"]
            .map(|amount| poster.transfer(Transfer::new(a.id, b.id, dec(amount)))),
    )
    .await;
    for result in results {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::CheckViolation { constraint, .. } if constraint == "no_sevens"),
            "{err:?}"
        );
        assert_eq!(err.sqlstate().as_deref(), Some("23514"));
        assert_eq!(err.constraint(), Some("no_sevens"));
        assert!(!err.outcome_unknown(), "{err:?}");
    }
    assert_eq!(balance(&pool, &a).await, "100.00");
    poster.close().await;
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_flush_killed_before_its_commit_fails_every_movement_and_each_key_then_applies_once(
    pool: PgPool,
) {
    let a = funded(&pool, "xa@example.com", "USD", "100.00").await;
    let b = funded(&pool, "xb@example.com", "USD", "0").await;
    // Hold account a locked, so that the flush waits in its lock statement.
    let mut holder = pool.begin().await.unwrap();
    sqlx::query!(
        "select id from accounts where id = $1 for update",
        a.id.as_uuid()
    )
    .fetch_one(&mut *holder)
    .await
    .unwrap();
    let poster = lingering(&pool);
    let payments: Vec<Transfer> = (0..5)
        .map(|i| Transfer::new(a.id, b.id, dec("1.00")).idempotency_key(format!("kill-{i}")))
        .collect();
    let submitted = join_all(payments.iter().cloned().map(|t| poster.transfer(t)));
    // The flush waiting on the lock: its backend is terminated.
    let killer = support::terminate_when_waiting_on(&pool, "Lock");
    let (results, ()) = tokio::join!(submitted, killer);
    holder.rollback().await.unwrap();
    for result in &results {
        let err = result.as_ref().unwrap_err();
        assert!(err.outcome_unknown() && err.is_retryable(), "{err:?}");
    }
    // Each repeated with its key: applied exactly once.
    let again = join_all(payments.iter().cloned().map(|t| poster.transfer(t))).await;
    let again: Vec<LedgerEntry> = again.into_iter().map(Result::unwrap).collect();
    let twice = join_all(payments.iter().cloned().map(|t| poster.transfer(t))).await;
    for (first, second) in again.iter().zip(twice) {
        assert_eq!(*first, second.unwrap());
    }
    assert_eq!(balance(&pool, &a).await, "95.00");
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
    poster.close().await;
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_dropped_caller_loses_only_its_answer_and_close_posts_what_was_queued(pool: PgPool) {
    let a = funded(&pool, "da@example.com", "USD", "10.00").await;
    let b = funded(&pool, "db@example.com", "USD", "0").await;
    let poster = lingering(&pool);
    let pay = Transfer::new(a.id, b.id, dec("3.00")).idempotency_key("dropped");
    // Queued, then the caller gives up while the poster lingers.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(20), poster.transfer(pay.clone())).await;
    assert!(gave_up.is_err());
    // Queued by many callers, then closed at once: every one is posted.
    let many = join_all((0..20).map(|_| poster.deposit(Movement::new(b.id, dec("1.00")))));
    let (many, ()) = tokio::join!(many, poster.close());
    assert!(many.iter().all(Result::is_ok), "{many:?}");
    // The dropped one was posted once; repeating it with its key returns it.
    let replay = Poster::new(pool.clone(), PosterOptions::default());
    let entry = replay.transfer(pay).await.unwrap();
    assert_eq!(balance(&pool, &a).await, "7.00");
    assert_eq!(balance(&pool, &b).await, "23.00");
    assert_eq!(entry.amount.to_string(), "3.00");
    replay.close().await;
}

/// A flush killed after its insert, inside its `commit`: on a cluster of its own whose
/// `synchronous_standby_names` names a standby that never comes, `commit` writes the commit
/// record and then waits for that standby; the flush's backend is terminated there. Every
/// movement of the flush is `outcome_unknown` (they did commit, locally), and each one repeated
/// with its key returns its entry, applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_killed_inside_its_commit_is_outcome_unknown_and_each_key_replays_once() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("poster-commit-{}", std::process::id()));
    let _stop = support::StopCluster(dir.clone());
    let cluster = tokio::task::spawn_blocking(move || Cluster::ensure_durable(&dir))
        .await
        .unwrap()
        .unwrap();
    cluster.create_database("poster").await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(cluster.connect_options("poster"))
        .await
        .unwrap();
    ledger::schema::migrate(&mut pool.acquire().await.unwrap())
        .await
        .unwrap();
    let a = funded(&pool, "ca@example.com", "USD", "100.00").await;
    let b = funded(&pool, "cb@example.com", "USD", "0").await;
    let standby = |names: &'static str| {
        let pool = pool.clone();
        async move {
            // `alter system` takes no bind parameter, and runs outside any transaction: a
            // literal statement of its own, in the test only.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "alter system set synchronous_standby_names = '{names}'"
            )))
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query_scalar!(r#"select pg_reload_conf() as "reloaded!""#)
                .fetch_one(&pool)
                .await
                .unwrap();
        }
    };
    standby("nobody").await;

    let poster = Poster::new(
        pool.clone(),
        PosterOptions::default().linger(Duration::from_millis(100)),
    );
    let payments: Vec<Transfer> = (0..4)
        .map(|i| Transfer::new(a.id, b.id, dec("2.50")).idempotency_key(format!("commit-{i}")))
        .collect();
    let submitted = join_all(payments.iter().cloned().map(|t| poster.transfer(t)));
    let killer = support::terminate_when_waiting_on(&pool, "SyncRep");
    let (results, ()) = tokio::join!(submitted, killer);
    standby("").await;
    for result in &results {
        let err = result.as_ref().unwrap_err();
        assert!(err.outcome_unknown() && err.is_retryable(), "{err:?}");
    }
    // The commit record was written before the wait: the movements are there, once each, and
    // the repeats return them.
    let again = join_all(payments.iter().cloned().map(|t| poster.transfer(t))).await;
    let entries: Vec<LedgerEntry> = again.into_iter().map(Result::unwrap).collect();
    assert_eq!(commits(&pool, &entries.iter().collect::<Vec<_>>()).await, 1);
    assert_eq!(balance(&pool, &a).await, "90.00");
    assert_eq!(balance(&pool, &b).await, "10.00");
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
    poster.close().await;
    pool.close().await;
}

/// A submission that finds the queue full waits at most its `submit_timeout`, then fails with
/// `PosterFull`, known outcome: nothing queued, nothing written. The queue is kept full by a
/// flush that waits on an account another transaction holds.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_submission_past_its_deadline_on_a_full_queue_is_poster_full_and_writes_nothing(
    pool: PgPool,
) {
    let a = funded(&pool, "qa@example.com", "USD", "100.00").await;
    let b = funded(&pool, "qb@example.com", "USD", "0").await;
    let mut holder = pool.begin().await.unwrap();
    sqlx::query!(
        "select id from accounts where id = $1 for update",
        a.id.as_uuid()
    )
    .fetch_one(&mut *holder)
    .await
    .unwrap();
    let poster = Poster::new(
        pool.clone(),
        PosterOptions::default()
            .max_batch(1)
            .queue(1)
            .submit_timeout(Duration::from_millis(200)),
    );
    let pay = |cents: i64| Transfer::new(a.id, b.id, rust_decimal::Decimal::new(cents, 2));
    // The first is taken by the flusher, which waits on the lock; the second fills the queue.
    let first = poster.transfer(pay(100));
    let second = poster.transfer(pay(200));
    tokio::pin!(first, second);
    for pending in [
        tokio::time::timeout(Duration::from_millis(300), &mut first).await,
        tokio::time::timeout(Duration::from_millis(300), &mut second).await,
    ] {
        assert!(pending.is_err(), "the flusher waits on the held account");
    }
    let started = std::time::Instant::now();
    let late = poster.transfer(pay(300)).await;
    let waited = started.elapsed();
    let err = late.unwrap_err();
    assert!(matches!(err, Error::PosterFull { .. }), "{err:?}");
    assert!(!err.outcome_unknown() && err.is_retryable(), "{err:?}");
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    holder.rollback().await.unwrap();
    first.await.unwrap();
    second.await.unwrap();
    // Only the two queued movements were written.
    assert_eq!(balance(&pool, &a).await, "97.00");
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
    poster.close().await;
}

/// A lone keyed movement whose key another transaction holds does not stall the flusher: the
/// movement queued after it commits while the key is still held.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_lone_movement_on_a_held_key_does_not_stall_the_next_one(pool: PgPool) {
    let a = funded(&pool, "la@example.com", "USD", "50.00").await;
    let b = funded(&pool, "lb@example.com", "USD", "0").await;
    let other = hold_key(&pool, "lone").await;
    let poster = Poster::new(pool.clone(), PosterOptions::default());
    let pay = Transfer::new(a.id, b.id, dec("5.00")).idempotency_key("lone");
    let held = poster.transfer(pay.clone());
    tokio::pin!(held);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut held)
            .await
            .is_err(),
        "the held movement waits for its key"
    );
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        poster.transfer(Transfer::new(a.id, b.id, dec("1.00"))),
    )
    .await
    .expect("the next movement is not stalled behind the held key");
    next.unwrap();
    assert_eq!(balance(&pool, &a).await, "49.00");
    other.rollback().await.unwrap();
    let entry = held.await.unwrap();
    assert_eq!(poster.transfer(pay).await.unwrap(), entry);
    assert_eq!(balance(&pool, &a).await, "44.00");
    poster.close().await;
}
