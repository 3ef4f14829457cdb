//! Idempotency keys under races: the first call with a key is held open in a transaction while a
//! second call with the same key runs on another connection, then the first commits or rolls
//! back. Balances are chosen so that the wrong interleaving gives another answer: the first call
//! takes the whole balance, so a second call judged against the debited balance would be refused.

use std::time::Duration;

use ledger::accounts::{self, AccountId};
use ledger::transactions::{
    self, BatchItem, EntryId, LedgerEntry, Movement, Transfer, post_batch_with_key,
};
use ledger::{Error, Transient};
use rust_decimal::Decimal;
use sqlx::{Acquire, PgConnection, PgPool};

use crate::money::funded;
use crate::support::dec;

/// One keyed call of each kind, on `from` (debited) and `to` (credited).
#[derive(Debug, Clone, Copy)]
enum Call {
    Deposit,
    Withdraw,
    Transfer,
}

impl Call {
    const ALL: [Call; 3] = [Call::Deposit, Call::Withdraw, Call::Transfer];

    async fn run(
        self,
        conn: &mut PgConnection,
        from: AccountId,
        to: AccountId,
        amount: Decimal,
        key: &str,
    ) -> ledger::Result<LedgerEntry> {
        match self {
            Call::Deposit => {
                transactions::deposit(conn, &Movement::new(to, amount).idempotency_key(key)).await
            }
            Call::Withdraw => {
                transactions::withdraw(conn, &Movement::new(from, amount).idempotency_key(key))
                    .await
            }
            Call::Transfer => {
                let request = Transfer::new(from, to, amount).idempotency_key(key);
                transactions::transfer(conn, &request).await
            }
        }
    }
}

/// Waits until a backend of this test's database waits on a lock while running a statement that
/// mentions `needle`: the second call is then provably blocked behind the first.
pub async fn wait_until_blocked(pool: &PgPool, needle: &str) {
    let pattern = format!("%{needle}%");
    for _ in 0..500 {
        let blocked = sqlx::query_scalar!(
            r#"
            select count(*) as "n!" from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'
              and query like $1
            "#,
            pattern
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if blocked > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no backend blocked on a statement like {needle:?} within 5 s");
}

async fn rows_with_key(pool: &PgPool, key: &str) -> i64 {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from transactions where idempotency_key = $1"#,
        key
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn entry_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar!(r#"select count(*) as "n!" from transactions"#)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn balance(pool: &PgPool, id: AccountId) -> Decimal {
    accounts::get(pool, id).await.unwrap().balance
}

/// The expected balances of `from` and `to` (starting at 10.00 and 0) after one call of 10.00.
fn after_one(call: Call) -> (Decimal, Decimal) {
    match call {
        Call::Deposit => (dec("10.00"), dec("10.00")),
        Call::Withdraw => (dec("0.00"), dec("0.00")),
        Call::Transfer => (dec("0.00"), dec("10.00")),
    }
}

/// How the first attempt ends, and where the repeat runs.
#[derive(Debug, Clone, Copy)]
enum Race {
    /// The first commits; the repeat runs on a pooled connection of its own.
    Commit,
    /// The first rolls back; the repeat runs on a pooled connection of its own.
    Rollback,
    /// The first commits; the repeat runs inside a caller's transaction, which then carries on.
    CommitNested,
}

/// For each kind of call: `from` holds 10.00, `to` nothing. The first call (the whole 10.00, key
/// `<race>-<n>`) runs in a transaction held open; the repeat starts on another connection, is
/// seen blocked on the key, and then the first ends as `race` says. Returns, per call, the
/// first entry, the repeat's result, the accounts and the key.
async fn race(pool: &PgPool, race: Race) -> Vec<RaceOutcome> {
    let mut outcomes = Vec::new();
    for (n, call) in Call::ALL.into_iter().enumerate() {
        let from = funded(pool, &format!("from{n}@example.com"), "USD", "10.00").await;
        let to = funded(pool, &format!("to{n}@example.com"), "USD", "0").await;
        let key = format!("{race:?}-{n}");

        let mut held = pool.begin().await.unwrap();
        let first = call
            .run(&mut held, from.id, to.id, dec("10.00"), &key)
            .await
            .unwrap();

        let second = tokio::spawn({
            let (pool, key) = (pool.clone(), key.clone());
            async move {
                let mut conn = pool.acquire().await.unwrap();
                if !matches!(race, Race::CommitNested) {
                    return call
                        .run(&mut conn, from.id, to.id, dec("10.00"), &key)
                        .await;
                }
                let mut outer = conn.begin().await.unwrap();
                let result = call
                    .run(&mut outer, from.id, to.id, dec("10.00"), &key)
                    .await;
                // The caller's transaction carries on after the replay.
                let owner = accounts::get(&mut *outer, from.id).await.unwrap();
                assert_eq!(owner.id, from.id);
                outer.commit().await.unwrap();
                result
            }
        });
        wait_until_blocked(pool, "idempotency_keys").await;
        match race {
            Race::Commit | Race::CommitNested => held.commit().await.unwrap(),
            Race::Rollback => held.rollback().await.unwrap(),
        }
        outcomes.push(RaceOutcome {
            call,
            first,
            second: second.await.unwrap(),
            from: from.id,
            to: to.id,
            key,
        });
    }
    outcomes
}

struct RaceOutcome {
    call: Call,
    first: LedgerEntry,
    second: ledger::Result<LedgerEntry>,
    from: AccountId,
    to: AccountId,
    key: String,
}

impl RaceOutcome {
    /// Exactly one row carries the key, and the balances show one call of 10.00.
    async fn assert_applied_once(&self, pool: &PgPool) {
        let call = self.call;
        assert_eq!(rows_with_key(pool, &self.key).await, 1, "{call:?}");
        assert_eq!(
            (balance(pool, self.from).await, balance(pool, self.to).await),
            after_one(call),
            "{call:?}"
        );
    }
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_repeat_waits_for_the_first_attempt_and_returns_it_instead_of_refusing_funds(
    pool: PgPool,
) {
    for outcome in race(&pool, Race::Commit).await {
        let (call, second) = (outcome.call, &outcome.second);
        assert_eq!(
            second.as_ref().ok(),
            Some(&outcome.first),
            "{call:?}: {second:?}"
        );
        outcome.assert_applied_once(&pool).await;
    }
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_repeat_of_a_rolled_back_first_attempt_applies_it_once(pool: PgPool) {
    for outcome in race(&pool, Race::Rollback).await {
        let (call, second) = (outcome.call, &outcome.second);
        let second = second.as_ref().unwrap();
        assert_ne!(
            second.id, outcome.first.id,
            "{call:?}: the first never happened"
        );
        outcome.assert_applied_once(&pool).await;
    }
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_repeat_inside_a_callers_transaction_returns_the_first_and_leaves_it_usable(
    pool: PgPool,
) {
    for outcome in race(&pool, Race::CommitNested).await {
        let (call, second) = (outcome.call, &outcome.second);
        assert_eq!(
            second.as_ref().ok(),
            Some(&outcome.first),
            "{call:?}: {second:?}"
        );
        outcome.assert_applied_once(&pool).await;
    }
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn another_movement_under_a_held_key_waits_and_is_a_conflict_not_a_refusal(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "10.00").await;
    let empty = funded(&pool, "empty@example.com", "USD", "0").await;

    let mut first_conn = pool.acquire().await.unwrap();
    let mut held = first_conn.begin().await.unwrap();
    transactions::withdraw(
        &mut held,
        &Movement::new(a.id, dec("10.00")).idempotency_key("shared"),
    )
    .await
    .unwrap();

    // Another account, which could not pay: judged by its balance it would be InsufficientFunds.
    let second = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            let request = Movement::new(empty.id, dec("5.00")).idempotency_key("shared");
            transactions::withdraw(&mut conn, &request).await
        }
    });
    wait_until_blocked(&pool, "idempotency_keys").await;
    held.commit().await.unwrap();

    let err = second.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::IdempotencyConflict { key } if key == "shared"),
        "{err:?}"
    );
    assert_eq!(rows_with_key(&pool, "shared").await, 1);
    assert_eq!(balance(&pool, empty.id).await, dec("0"));
}

fn batch(a: AccountId, b: AccountId) -> Vec<BatchItem> {
    vec![
        BatchItem::Withdrawal(Movement::new(a, dec("6.00"))),
        BatchItem::Transfer(Transfer::new(a, b, dec("4.00"))),
        BatchItem::Deposit(Movement::new(b, dec("1.00"))),
    ]
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_keyed_batch_applies_once_and_a_repeat_returns_its_entries(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "10.00").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let items = batch(a.id, b.id);
    let mut conn = pool.acquire().await.unwrap();
    let before = entry_count(&pool).await;

    let first = post_batch_with_key(&mut conn, "payroll", &items)
        .await
        .unwrap();
    let again = post_batch_with_key(&mut conn, "payroll", &items)
        .await
        .unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(again, first, "the same ids, in the same order");
    assert_eq!(entry_count(&pool).await, before + 3);
    assert_eq!(balance(&pool, a.id).await, dec("0.00"));
    assert_eq!(balance(&pool, b.id).await, dec("5.00"));

    // Another batch under the key: fewer items, or one item changed.
    let conflicts = [
        items[..2].to_vec(),
        vec![
            items[0].clone(),
            items[1].clone(),
            BatchItem::Deposit(Movement::new(b.id, dec("1.01"))),
        ],
    ];
    for other in conflicts {
        let err = post_batch_with_key(&mut conn, "payroll", &other)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::IdempotencyConflict { .. }), "{err:?}");
    }
    // One namespace: a single movement cannot take a batch's key, nor a batch a movement's.
    let single = Movement::new(b.id, dec("1.00")).idempotency_key("payroll");
    let err = transactions::deposit(&mut conn, &single).await.unwrap_err();
    assert!(matches!(err, Error::IdempotencyConflict { .. }), "{err:?}");
    transactions::deposit(
        &mut conn,
        &Movement::new(b.id, dec("1.00")).idempotency_key("single"),
    )
    .await
    .unwrap();
    let err = post_batch_with_key(&mut conn, "single", &items[..1])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IdempotencyConflict { .. }), "{err:?}");

    // Bad keys and keyed items are refused before anything is sent.
    for key in ["", "a\0b"] {
        let err = post_batch_with_key(&mut conn, key, &items)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    field: "idempotency_key",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    let keyed_item = [BatchItem::Deposit(
        Movement::new(b.id, dec("1.00")).idempotency_key("item"),
    )];
    let err = post_batch_with_key(&mut conn, "fresh", &keyed_item)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidItem { index: 0, .. }),
        "{err:?}"
    );
    assert_eq!(entry_count(&pool).await, before + 4);
    assert_eq!(balance(&pool, b.id).await, dec("6.00"));
}

/// Holds a keyed batch open, starts the same (or another) batch on another connection, then
/// commits or rolls back the first.
async fn race_batches(
    pool: &PgPool,
    second_items: Vec<BatchItem>,
    first_items: &[BatchItem],
    commit_first: bool,
) -> (Vec<EntryId>, ledger::Result<Vec<EntryId>>) {
    let mut first_conn = pool.acquire().await.unwrap();
    let mut held = first_conn.begin().await.unwrap();
    let first = post_batch_with_key(&mut held, "batch-race", first_items)
        .await
        .unwrap();
    let second = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            post_batch_with_key(&mut conn, "batch-race", &second_items).await
        }
    });
    wait_until_blocked(pool, "idempotency_keys").await;
    if commit_first {
        held.commit().await.unwrap();
    } else {
        held.rollback().await.unwrap();
    }
    (first, second.await.unwrap())
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_repeated_batch_waits_for_the_first_and_returns_its_entries(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "10.00").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let items = batch(a.id, b.id);
    let (first, second) = race_batches(&pool, items.clone(), &items, true).await;
    assert_eq!(second.unwrap(), first);
    assert_eq!(balance(&pool, a.id).await, dec("0.00"));
    assert_eq!(balance(&pool, b.id).await, dec("5.00"));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_repeated_batch_applies_when_the_first_rolls_back(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "10.00").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let items = batch(a.id, b.id);
    let before = entry_count(&pool).await;
    let (first, second) = race_batches(&pool, items.clone(), &items, false).await;
    let second = second.unwrap();
    assert_eq!(second.len(), 3);
    assert!(second.iter().all(|id| !first.contains(id)));
    assert_eq!(entry_count(&pool).await, before + 3);
    assert_eq!(balance(&pool, a.id).await, dec("0.00"));
    assert_eq!(balance(&pool, b.id).await, dec("5.00"));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn another_batch_under_a_held_key_is_a_conflict(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "10.00").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let items = batch(a.id, b.id);
    let other = vec![BatchItem::Deposit(Movement::new(b.id, dec("99.00")))];
    let (_, second) = race_batches(&pool, other, &items, true).await;
    let err = second.unwrap_err();
    assert!(matches!(err, Error::IdempotencyConflict { .. }), "{err:?}");
    assert_eq!(balance(&pool, b.id).await, dec("5.00"));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_cancelled_or_terminated_call_is_transient_and_its_keyed_repeat_applies_once(
    pool: PgPool,
) {
    let a = funded(&pool, "a@example.com", "USD", "10.00").await;
    let request = Movement::new(a.id, dec("10.00")).idempotency_key("cut-off");

    for (kill, expected) in [
        ("pg_cancel_backend", Transient::Cancelled),
        ("pg_terminate_backend", Transient::ConnectionLost),
    ] {
        // Another transaction holds the account, so the withdrawal waits on its lock.
        let mut blocker_conn = pool.acquire().await.unwrap();
        let mut blocker = blocker_conn.begin().await.unwrap();
        sqlx::query!(
            "select id from accounts where id = $1 for update",
            a.id.as_uuid()
        )
        .fetch_one(&mut *blocker)
        .await
        .unwrap();

        let call = tokio::spawn({
            let (pool, request) = (pool.clone(), request.clone());
            async move {
                let mut conn = pool.acquire().await.unwrap();
                transactions::withdraw(&mut conn, &request).await
            }
        });
        wait_until_blocked(&pool, "ledger_post").await;
        // Only the withdrawal waits on a lock; the kill statement itself does not match.
        let killed = sqlx::query_scalar!(
            r#"
            select count(*) as "n!" from (
                select pg_cancel_backend(pid) as done from pg_stat_activity
                where $1 = 'pg_cancel_backend' and datname = current_database()
                  and wait_event_type = 'Lock'
                union all
                select pg_terminate_backend(pid) from pg_stat_activity
                where $1 = 'pg_terminate_backend' and datname = current_database()
                  and wait_event_type = 'Lock'
            ) as k where done
            "#,
            kill
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(killed, 1, "{kill}");

        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.transient(), Some(expected), "{kill}: {err:?}");
        assert!(err.is_retryable(), "{kill}");
        assert_eq!(
            err.outcome_unknown(),
            expected == Transient::ConnectionLost,
            "{kill}"
        );
        blocker.rollback().await.unwrap();
        assert_eq!(rows_with_key(&pool, "cut-off").await, 0, "{kill}");
    }

    // The caller's rule: repeat the same call with the same key.
    let mut conn = pool.acquire().await.unwrap();
    let entry = transactions::withdraw(&mut conn, &request).await.unwrap();
    let again = transactions::withdraw(&mut conn, &request).await.unwrap();
    assert_eq!(entry, again);
    assert_eq!(rows_with_key(&pool, "cut-off").await, 1);
    assert_eq!(balance(&pool, a.id).await, dec("0.00"));
}

/// The backend process serving the only connection of `pool`, once that connection is back in
/// the pool (sqlx returns it only after a check of its own).
async fn backend_of(pool: &PgPool) -> i32 {
    let pid = sqlx::query_scalar!(r#"select pg_backend_pid() as "pid!""#)
        .fetch_one(pool)
        .await
        .unwrap();
    while pool.num_idle() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pid
}

/// Terminates backend `pid` and waits until it has gone.
async fn terminate(pool: &PgPool, pid: i32) {
    let signalled = sqlx::query_scalar!(r#"select pg_terminate_backend($1) as "done!""#, pid)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(signalled, "backend {pid}");
    while sqlx::query_scalar!(
        r#"select exists (select from pg_stat_activity where pid = $1) as "alive!""#,
        pid
    )
    .fetch_one(pool)
    .await
    .unwrap()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `Config::pool_options` checks a pooled connection before handing it out only when it sat
/// idle for `CHECK_IDLE_AFTER` or longer. A connection whose backend died while idle that long is
/// replaced before the caller sees it; one whose backend died just after it went back to the pool
/// is found by the caller's first statement, a transient error, and never pooled again.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn the_pool_checks_the_connections_that_sat_idle_and_only_those(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "10.00").await;
    let service = crate::support::one_connection(&pool).await;

    // Reused at once: not checked, so the deposit's first statement finds the backend gone.
    let first = backend_of(&service).await;
    terminate(&pool, first).await;
    let mut conn = service.acquire().await.unwrap();
    let err = transactions::deposit(&mut conn, &Movement::new(a.id, dec("1.00")))
        .await
        .unwrap_err();
    assert_eq!(err.transient(), Some(Transient::ConnectionLost), "{err:?}");
    drop(conn);
    let second = backend_of(&service).await;
    assert_ne!(second, first, "a dead connection is not pooled again");

    // Idle past the threshold: checked, found dead, replaced; the caller sees nothing of it.
    terminate(&pool, second).await;
    tokio::time::sleep(ledger::config::CHECK_IDLE_AFTER + Duration::from_millis(200)).await;
    let mut conn = service.acquire().await.unwrap();
    transactions::deposit(&mut conn, &Movement::new(a.id, dec("1.00")))
        .await
        .unwrap();
    drop(conn);
    assert_ne!(backend_of(&service).await, second);
    assert_eq!(balance(&pool, a.id).await, dec("11.00"));
}
