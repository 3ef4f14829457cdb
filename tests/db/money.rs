//! `ledger::transactions` movements: deposits, withdrawals, transfers, idempotency, retries,
//! concurrency, savepoints.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ledger::Error;
use ledger::accounts::{self, Account, AccountId};
use ledger::atomic;
use ledger::transactions::{self, Movement, Transfer};
use ledger::users::NewUser;
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{Acquire, Connection, PgConnection, PgPool};

use crate::support::{Proxy, dec, user};

/// An active account of a new user, funded by a deposit of `balance` (when positive).
pub async fn funded(pool: &PgPool, email: &str, currency: &str, balance: &str) -> Account {
    let owner = user(pool, email, "Owner").await;
    let account = accounts::open(pool, owner.id, Some(currency))
        .await
        .unwrap();
    let amount = dec(balance);
    if amount > Decimal::ZERO {
        let mut conn = pool.acquire().await.unwrap();
        transactions::deposit(&mut conn, &Movement::new(account.id, amount))
            .await
            .unwrap();
    }
    accounts::get(pool, account.id).await.unwrap()
}

async fn balance(pool: &PgPool, id: AccountId) -> Decimal {
    accounts::get(pool, id).await.unwrap().balance
}

pub async fn entries(pool: &PgPool) -> i64 {
    sqlx::query_scalar!(r#"select count(*) as "n!" from transactions"#)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn deposit_withdraw_and_transfer_each_write_one_completed_row(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "0").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let mut conn = pool.acquire().await.unwrap();

    let dep = transactions::deposit(
        &mut conn,
        &Movement::new(a.id, dec("100.00")).metadata(json!({"source": "cash"})),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            dep.kind.as_str(),
            dep.status.as_str(),
            dep.from_account_id,
            dep.to_account_id
        ),
        ("deposit", "completed", None, Some(a.id))
    );
    assert_eq!(dep.metadata, json!({"source": "cash"}));

    let wd = transactions::withdraw(&mut conn, &Movement::new(a.id, dec("30.25")))
        .await
        .unwrap();
    assert_eq!(
        (wd.kind.as_str(), wd.from_account_id, wd.to_account_id),
        ("withdrawal", Some(a.id), None)
    );

    let tr = transactions::transfer(&mut conn, &Transfer::new(a.id, b.id, dec("19.75")))
        .await
        .unwrap();
    assert_eq!(
        (tr.kind.as_str(), tr.from_account_id, tr.to_account_id),
        ("transfer", Some(a.id), Some(b.id))
    );

    assert_eq!(balance(&pool, a.id).await, dec("50.00"));
    assert_eq!(balance(&pool, b.id).await, dec("19.75"));
    assert_eq!(entries(&pool).await, 3);
    assert_eq!(transactions::get(&pool, tr.id).await.unwrap(), tr);
    let history = transactions::EntryQuery::new()
        .limit(10)
        .list_for_account(&pool, a.id)
        .await
        .unwrap();
    assert_eq!(history.len(), 3);
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn every_refusal_is_typed_and_writes_nothing(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let eur = funded(&pool, "e@example.com", "EUR", "0").await;
    let frozen = funded(&pool, "f@example.com", "USD", "0").await;
    accounts::set_status(&pool, frozen.id, "frozen")
        .await
        .unwrap();
    let ghost = AccountId::new();
    let before = entries(&pool).await;
    let mut conn = pool.acquire().await.unwrap();

    let t = |from, to, amount: &str| Transfer::new(from, to, dec(amount));
    let cases: Vec<(Transfer, &str)> = vec![
        (t(a.id, b.id, "0"), "invalid amount"),
        (t(a.id, b.id, "-5"), "invalid amount"),
        (t(a.id, b.id, "0.001"), "invalid amount"),
        (t(a.id, b.id, "10000000000000"), "invalid amount"),
        (t(a.id, a.id, "1"), "invalid to"),
        (t(a.id, b.id, "1").metadata(json!([1])), "invalid metadata"),
        (
            t(a.id, b.id, "1").idempotency_key(""),
            "invalid idempotency_key",
        ),
        (
            t(a.id, b.id, "1").idempotency_key("k".repeat(201)),
            "invalid idempotency_key",
        ),
        (t(ghost, b.id, "1"), "not found"),
        (t(a.id, ghost, "1"), "not found"),
        (t(a.id, frozen.id, "1"), "not active"),
        (t(frozen.id, a.id, "1"), "not active"),
        (t(a.id, eur.id, "1"), "currency"),
        (t(a.id, b.id, "100.01"), "insufficient"),
    ];
    for (request, expected) in cases {
        let err = transactions::transfer(&mut conn, &request)
            .await
            .unwrap_err();
        let kind = match &err {
            Error::InvalidInput { field, .. } => format!("invalid {field}"),
            Error::NotFound { .. } => "not found".into(),
            Error::AccountNotActive { .. } => "not active".into(),
            Error::CurrencyMismatch { .. } => "currency".into(),
            Error::InsufficientFunds { .. } => "insufficient".into(),
            other => format!("{other:?}"),
        };
        assert_eq!(kind, expected, "{request:?}");
    }
    let overdraft = transactions::withdraw(&mut conn, &Movement::new(b.id, dec("0.01"))).await;
    assert!(matches!(overdraft, Err(Error::InsufficientFunds { .. })));
    let to_frozen = transactions::deposit(&mut conn, &Movement::new(frozen.id, dec("1"))).await;
    assert!(matches!(to_frozen, Err(Error::AccountNotActive { .. })));

    assert_eq!(entries(&pool).await, before);
    assert_eq!(balance(&pool, a.id).await, dec("100"));
    assert_eq!(balance(&pool, b.id).await, Decimal::ZERO);
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_deposit_that_would_overflow_the_balance_is_refused(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "9999999999999.99").await;
    let mut conn = pool.acquire().await.unwrap();
    let err = transactions::deposit(&mut conn, &Movement::new(a.id, dec("0.01")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "amount",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(balance(&pool, a.id).await, dec("9999999999999.99"));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_repeated_idempotency_key_returns_the_first_movement(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let mut conn = pool.acquire().await.unwrap();
    let request = Transfer::new(a.id, b.id, dec("10")).idempotency_key("order-42");

    let first = transactions::transfer(&mut conn, &request).await.unwrap();
    let second = transactions::transfer(&mut conn, &request).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(balance(&pool, a.id).await, dec("90"));

    let different = Transfer::new(a.id, b.id, dec("11")).idempotency_key("order-42");
    let err = transactions::transfer(&mut conn, &different)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IdempotencyConflict { .. }), "{err:?}");
    let as_deposit = Movement::new(b.id, dec("10")).idempotency_key("order-42");
    let err = transactions::deposit(&mut conn, &as_deposit)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IdempotencyConflict { .. }), "{err:?}");

    assert_eq!(balance(&pool, a.id).await, dec("90"));
    assert_eq!(balance(&pool, b.id).await, dec("10"));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn racing_calls_with_one_idempotency_key_move_money_once(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let request = Transfer::new(a.id, b.id, dec("25")).idempotency_key("race");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (pool, request) = (pool.clone(), request.clone());
        tasks.spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            transactions::transfer(&mut conn, &request).await
        });
    }
    let results: Vec<_> = tasks.join_all().await;
    let ids: std::collections::HashSet<_> = results.into_iter().map(|r| r.unwrap().id).collect();
    assert_eq!(ids.len(), 1, "every caller got the same movement");
    assert_eq!(balance(&pool, a.id).await, dec("75"));
    assert_eq!(balance(&pool, b.id).await, dec("25"));
    assert_eq!(entries(&pool).await, 2); // the funding deposit and one transfer
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn concurrent_opposite_transfers_conserve_money_without_deadlocks(pool: PgPool) {
    const ACCOUNTS: usize = 5;
    const CLIENTS: u64 = 4;
    const TRANSFERS: u64 = 60;
    let mut hot = Vec::new();
    for i in 0..ACCOUNTS {
        hot.push(
            funded(&pool, &format!("hot{i}@example.com"), "USD", "100")
                .await
                .id,
        );
    }
    let start_total = dec("500");

    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (pool, hot) = (pool.clone(), hot.clone());
        clients.spawn(async move {
            let (mut ok, mut refused) = (0u64, 0u64);
            // A small deterministic generator: every client walks its own sequence of pairs,
            // in both directions.
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ client;
            for _ in 0..TRANSFERS {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let from = hot[(state % ACCOUNTS as u64) as usize];
                let to = hot[((state >> 8) % ACCOUNTS as u64) as usize];
                if from == to {
                    continue;
                }
                let amount = Decimal::new(((state >> 16) % 4000) as i64 + 1, 2);
                let mut conn = pool.acquire().await.unwrap();
                match transactions::transfer(&mut conn, &Transfer::new(from, to, amount)).await {
                    Ok(_) => ok += 1,
                    Err(Error::InsufficientFunds { .. }) => refused += 1,
                    Err(other) => panic!("no other error may reach a caller: {other:?}"),
                }
            }
            (ok, refused)
        });
    }
    let outcomes = clients.join_all().await;
    let succeeded: u64 = outcomes.iter().map(|(ok, _)| ok).sum();
    assert!(succeeded > 100, "the clients did real work: {outcomes:?}");

    let balances: Vec<Decimal> = futures_balances(&pool, &hot).await;
    assert_eq!(
        balances.iter().sum::<Decimal>(),
        start_total,
        "money is conserved"
    );
    assert!(balances.iter().all(|b| *b >= Decimal::ZERO));
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
    let transfers =
        sqlx::query_scalar!(r#"select count(*) as "n!" from transactions where type = 'transfer'"#)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(transfers as u64, succeeded, "one row per successful call");
}

async fn futures_balances(pool: &PgPool, ids: &[AccountId]) -> Vec<Decimal> {
    let mut out = Vec::new();
    for id in ids {
        out.push(balance(pool, *id).await);
    }
    out
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_deadlock_victim_is_retried_and_never_reaches_the_caller(pool: PgPool) {
    let x = funded(&pool, "x@example.com", "USD", "100").await.id;
    let y = funded(&pool, "y@example.com", "USD", "100").await.id;
    let (low, high) = if x < y { (x, y) } else { (y, x) };

    // Another client locks the higher account first ...
    let mut other = pool.acquire().await.unwrap();
    let mut other_tx = other.begin().await.unwrap();
    sqlx::query!(
        "select id from accounts where id = $1 for update",
        high.as_uuid()
    )
    .fetch_one(&mut *other_tx)
    .await
    .unwrap();

    // ... the transfer locks the lower one and queues behind it ...
    let transfer_pool = pool.clone();
    let transfer = tokio::spawn(async move {
        let mut conn = transfer_pool.acquire().await.unwrap();
        transactions::transfer(&mut conn, &Transfer::new(high, low, dec("10"))).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // ... and the other client now wants the lower one: a cycle. The transfer, waiting longest,
    // is the victim (deadlock_timeout, 1 s), rolls back and retries once the other commits.
    sqlx::query!(
        "select id from accounts where id = $1 for update",
        low.as_uuid()
    )
    .fetch_one(&mut *other_tx)
    .await
    .unwrap();
    other_tx.commit().await.unwrap();

    let entry = transfer.await.unwrap().expect("the retry succeeded");
    assert_eq!(entry.amount, dec("10"));
    assert_eq!(balance(&pool, high).await, dec("90"));
    assert_eq!(balance(&pool, low).await, dec("110"));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn movements_inside_a_callers_transaction_commit_or_roll_back_with_it(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let mut conn = pool.acquire().await.unwrap();

    let mut tx = conn.begin().await.unwrap();
    transactions::transfer(&mut tx, &Transfer::new(a.id, b.id, dec("40")))
        .await
        .unwrap();
    // A refusal inside rolls back to its savepoint; the caller's transaction carries on.
    let refused = transactions::transfer(&mut tx, &Transfer::new(a.id, b.id, dec("61"))).await;
    assert!(matches!(refused, Err(Error::InsufficientFunds { .. })));
    transactions::transfer(&mut tx, &Transfer::new(a.id, b.id, dec("60")))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(balance(&pool, a.id).await, dec("100"));

    let mut tx = conn.begin().await.unwrap();
    transactions::transfer(&mut tx, &Transfer::new(a.id, b.id, dec("40")))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(balance(&pool, b.id).await, dec("40"));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn the_savepoint_example_keeps_the_user_when_the_account_fails(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let outcome = atomic::create_user_then_try_account(
        &mut conn,
        &NewUser::new("test@example.com", "Test"),
        dec("-100"),
    )
    .await
    .unwrap();
    let err = outcome.account.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "amount",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        ledger::users::get(&pool, outcome.user.id).await.is_ok(),
        "the user survived"
    );
    assert!(
        accounts::list_for_user(&pool, outcome.user.id)
            .await
            .unwrap()
            .is_empty()
    );

    let ok = atomic::create_user_then_try_account(
        &mut conn,
        &NewUser::new("rich@example.com", "Rich"),
        dec("100"),
    )
    .await
    .unwrap();
    let rich = ok.account.unwrap();
    assert_eq!(rich.balance, dec("100"));
    // The opening money arrived through the ledger: one deposit row, and reconciliation agrees.
    assert_eq!(entries(&pool).await, 1);
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());

    // A bad outer block writes nothing at all.
    let err = atomic::create_user_then_try_account(&mut conn, &NewUser::new("bad", "X"), dec("1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { field: "email", .. }));
    let users = sqlx::query_scalar!(r#"select count(*) as "n!" from users"#)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 2);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn zero_money_reads_with_the_columns_two_decimals(pool: PgPool) {
    // sqlx alone reads a numeric zero as `0`; every money read here prints `0.00`.
    let owner = user(&pool, "zero@example.com", "Zero").await;
    let opened = accounts::open(&pool, owner.id, None).await.unwrap();
    assert_eq!(opened.balance.to_string(), "0.00");
    let read = accounts::get(&pool, opened.id).await.unwrap();
    assert_eq!(read.balance.to_string(), "0.00");
    assert_eq!(
        transactions::total_completed_across_currencies(&pool)
            .await
            .unwrap()
            .to_string(),
        "0.00"
    );
    assert_eq!(
        transactions::stats_across_currencies(&pool)
            .await
            .unwrap()
            .total
            .to_string(),
        "0.00"
    );

    // Emptied by a withdrawal: still two decimals, in the struct and in a dump.
    let mut conn = pool.acquire().await.unwrap();
    transactions::deposit(&mut conn, &Movement::new(opened.id, dec("5.00")))
        .await
        .unwrap();
    transactions::withdraw(&mut conn, &Movement::new(opened.id, dec("5.00")))
        .await
        .unwrap();
    let emptied = accounts::get(&pool, opened.id).await.unwrap();
    assert_eq!(emptied.balance.to_string(), "0.00");
    assert_eq!(emptied.balance.scale(), 2);
    let mut dump = Vec::new();
    ledger::dump::dump(
        &pool,
        &[ledger::dump::Table::Accounts],
        &mut dump,
        &mut |_, _| {},
    )
    .await
    .unwrap();
    let dump = String::from_utf8(dump).unwrap();
    assert!(dump.contains(r#""balance":"0.00""#), "{dump}");
}

/// A transfer that waits on an account's lock judges the account as the lock holder left it.
/// Another client withdraws 90.00 of 100.00 inside its transaction and holds the row while the
/// transfer of 50.00 queues behind it; after that commit the transfer is refused for the 10.00
/// left. Then a deposit of 100.00 holds the row the same way, and after it commits the same
/// transfer goes through. (A one-statement transfer that locked in one CTE and wrote in others
/// took the first one below zero: its write re-checked against an older view of the row.)
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_transfer_that_waited_on_a_lock_judges_the_row_as_committed(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100.00").await.id;
    let b = funded(&pool, "b@example.com", "USD", "0.00").await.id;
    for (expect_applied, a_after) in [(false, dec("10.00")), (true, dec("60.00"))] {
        let mut holder = pool.acquire().await.unwrap();
        let mut tx = holder.begin().await.unwrap();
        if expect_applied {
            transactions::deposit(&mut tx, &Movement::new(a, dec("100.00"))).await
        } else {
            transactions::withdraw(&mut tx, &Movement::new(a, dec("90.00"))).await
        }
        .unwrap();

        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await.unwrap();
                transactions::transfer(&mut conn, &Transfer::new(a, b, dec("50.00"))).await
            }
        });
        crate::idempotency::wait_until_blocked(&pool, "ledger_post").await;
        tx.commit().await.unwrap();

        match waiting.await.unwrap() {
            Ok(entry) => assert!(expect_applied, "applied against a stale balance: {entry:?}"),
            Err(Error::InsufficientFunds {
                balance, requested, ..
            }) => {
                assert!(!expect_applied, "refused against a stale balance");
                assert_eq!((balance, requested), (dec("10.00"), dec("50.00")));
            }
            Err(other) => panic!("{other:?}"),
        }
        assert_eq!(balance(&pool, a).await, a_after);
    }
    assert_eq!(balance(&pool, b).await, dec("50.00"));
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
}

/// Without a key, on a connection that caches its statements, a movement is one exchange with
/// the server: `select ... from ledger_post(...)`, autocommitted. With a key it is four (`begin`,
/// the claim, the call, `commit`), and so it is on the transaction-pooler profile (`begin`, the
/// call prepared, then executed, `commit`), which needs every statement inside a transaction.
/// Counted by a proxy between the client and the server.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_movement_without_a_key_is_one_round_trip(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100.00").await.id;
    let b = funded(&pool, "b@example.com", "USD", "0.00").await.id;
    let proxy = Proxy::start(&pool, Duration::ZERO).await;
    let (through_proxy, writes) = (proxy.options.clone(), proxy.writes.clone());
    for (pooler, key, exchanges) in [(false, None, 1), (false, Some("k1"), 4), (true, None, 4)] {
        let options = if pooler {
            through_proxy.clone().statement_cache_capacity(0)
        } else {
            through_proxy.clone()
        };
        let mut conn = PgConnection::connect_with(&options).await.unwrap();
        // Warm the statement cache, as any pooled connection soon is.
        let warm_key = format!("warm-{pooler}-{key:?}");
        for warm in [None, Some(warm_key)] {
            let mut deposit = Movement::new(b, dec("0.01"));
            deposit.idempotency_key = warm;
            transactions::deposit(&mut conn, &deposit).await.unwrap();
        }
        let mut request = Transfer::new(a, b, dec("1.00"));
        if let Some(key) = key {
            request = request.idempotency_key(key);
        }
        let before = writes.load(Ordering::SeqCst);
        transactions::transfer(&mut conn, &request).await.unwrap();
        let counted = writes.load(Ordering::SeqCst) - before;
        assert_eq!(counted, exchanges, "pooler profile {pooler}, key {key:?}");
        conn.close().await.unwrap();
    }
    assert_eq!(balance(&pool, a).await, dec("97.00"));
    assert_eq!(balance(&pool, b).await, dec("3.06"));
}
