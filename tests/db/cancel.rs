//! Cancel safety: a call dropped at any of its await points leaves its connection clean for the
//! next caller, and nothing locked, half-written or uncommitted behind it.
//!
//! [`DropAfter`] polls an operation until it has been suspended `k` times and then drops it;
//! [`drop_at_every_await`] runs it for `k = 0, 1, 2, ...` until it completes, so that every point
//! at which the operation really waits (for a connection, for the server) is a point at which it
//! is dropped once. The pool has one connection, so the next caller gets the very session the
//! dropped call left behind (or its replacement).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use ledger::accounts::AccountId;
use ledger::transactions::{self, BatchItem, Movement, Transfer};
use ledger::users::{self, NewUser};
use ledger::{Config, session};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Acquire, PgPool, Row};

use crate::money::{entries, funded};
use crate::support::{Proxy, dec};

/// Polls the inner future until it has returned `Pending` `left` times, then gives up on it
/// (`None`) and drops it at that await point.
struct DropAfter<F: Future> {
    fut: Pin<Box<F>>,
    left: usize,
}

impl<F: Future> Future for DropAfter<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.fut.as_mut().poll(cx) {
            Poll::Ready(out) => Poll::Ready(Some(out)),
            Poll::Pending if self.left == 0 => Poll::Ready(None),
            Poll::Pending => {
                self.left -= 1;
                Poll::Pending
            }
        }
    }
}

/// Runs `op(k)` dropped after `k` suspensions, for every `k` until it completes, checking the
/// next caller's session after each drop. Returns how many await points it dropped at and the
/// completed run's output.
async fn drop_at_every_await<T, Fut>(
    one: &PgPool,
    observer: &PgPool,
    mut op: impl FnMut(usize) -> Fut,
) -> (usize, T)
where
    Fut: Future<Output = ledger::Result<T>>,
{
    for k in 0..10_000 {
        let out = DropAfter {
            fut: Box::pin(op(k)),
            left: k,
        }
        .await;
        assert_next_caller_is_clean(one, observer, k).await;
        if let Some(done) = out {
            return (
                k,
                done.unwrap_or_else(|e| panic!("the run not dropped failed: {e}")),
            );
        }
    }
    panic!("the operation never completed");
}

/// The next caller's first statement runs in a transaction of its own (it starts with the
/// statement and has written nothing), no backend of this database sits in a transaction, and
/// none holds a lock.
async fn assert_next_caller_is_clean(one: &PgPool, observer: &PgPool, k: usize) {
    let mut conn = one.acquire().await.unwrap();
    // A simple query, whose transaction starts with it when no other is open (see
    // `ledger::session`).
    let row = sqlx::raw_sql(
        "select now() = statement_timestamp(), pg_current_xact_id_if_assigned() is null",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let fresh: bool = row.get(0);
    let wrote_nothing: bool = row.get(1);
    assert!(
        fresh && wrote_nothing,
        "dropped after {k}: the next caller ran inside an older transaction"
    );
    let stale = sqlx::query_scalar!(
        r#"
        select count(*) as "n!" from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid()
          and (state like 'idle in transaction%' or state = 'active')
        "#
    )
    .fetch_one(observer)
    .await
    .unwrap();
    assert_eq!(stale, 0, "dropped after {k}: a session is still busy");
    let locks = sqlx::query_scalar!(
        r#"
        select count(*) as "n!" from pg_locks l
        join pg_stat_activity a on a.pid = l.pid
        where a.datname = current_database() and l.pid <> pg_backend_pid()
          and l.locktype <> 'virtualxid'
        "#
    )
    .fetch_one(observer)
    .await
    .unwrap();
    assert_eq!(locks, 0, "dropped after {k}: a lock is still held");
}

/// The books balance: every account's balance is what its completed entries say, and none is
/// negative.
async fn assert_books_balance(observer: &PgPool) {
    assert!(transactions::reconcile(observer).await.unwrap().is_empty());
    let negative =
        sqlx::query_scalar!(r#"select count(*) as "n!" from accounts where balance < 0"#)
            .fetch_one(observer)
            .await
            .unwrap();
    assert_eq!(negative, 0);
}

/// ledger's own pool (with its release check), of one connection, through a proxy that holds
/// each of the server's replies for a millisecond: every read the client makes then waits, so
/// every await point that waits on the server is one the operation is dropped at.
async fn one_connection(pool: &PgPool) -> (PgPool, Proxy) {
    let proxy = Proxy::start(pool, Duration::from_millis(1)).await;
    let one = Config::from_url(&proxy.url())
        .unwrap()
        .max_connections(1)
        .connect()
        .await
        .unwrap();
    (one, proxy)
}

async fn two_accounts(pool: &PgPool) -> (AccountId, AccountId) {
    let a = funded(pool, "a@example.com", "USD", "1000.00").await.id;
    let b = funded(pool, "b@example.com", "USD", "1000.00").await.id;
    (a, b)
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_connection_released_inside_a_transaction_is_closed_not_handed_on(pool: PgPool) {
    let (one, _proxy) = one_connection(&pool).await;
    let first_backend = {
        let mut conn = one.acquire().await.unwrap();
        assert!(session::is_outside_transaction(&mut conn).await.unwrap());
        // A transaction sqlx knows nothing about, as a dropped `BEGIN` left one in sqlx 0.9.0.
        sqlx::raw_sql("begin").execute(&mut *conn).await.unwrap();
        assert!(!session::is_outside_transaction(&mut conn).await.unwrap());
        sqlx::query_scalar!(r#"select pg_backend_pid() as "pid!""#)
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };

    let ana = users::insert(&one, &NewUser::new("ana@example.com", "Ana"))
        .await
        .unwrap();

    // Acknowledged means committed: another connection sees the row.
    assert_eq!(
        users::get(&pool, ana.id).await.unwrap().email,
        "ana@example.com"
    );
    let backend = sqlx::query_scalar!(r#"select pg_backend_pid() as "pid!""#)
        .fetch_one(&one)
        .await
        .unwrap();
    assert_ne!(backend, first_backend, "the stale session was handed on");
}

/// What the release check prevents: the same sequence on a plain sqlx pool returns `Ok` for a
/// write that no other connection can see, because it ran inside the stale transaction.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn without_the_release_check_an_acknowledged_write_is_not_committed(pool: PgPool) {
    let plain = PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    {
        let mut conn = plain.acquire().await.unwrap();
        sqlx::raw_sql("begin").execute(&mut *conn).await.unwrap();
    }
    let ana = users::insert(&plain, &NewUser::new("ana@example.com", "Ana"))
        .await
        .unwrap();
    assert!(
        users::find_by_email(&pool, "ana@example.com")
            .await
            .unwrap()
            .is_none()
    );
    plain.close().await;
    // Closed, the stale transaction is rolled back: the acknowledged row is gone for good.
    assert!(matches!(
        users::get(&pool, ana.id).await,
        Err(ledger::Error::NotFound { .. })
    ));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_single_statement_write_dropped_at_every_await_leaves_a_clean_session(pool: PgPool) {
    let (one, _proxy) = one_connection(&pool).await;
    let (points, user) = drop_at_every_await(&one, &pool, |k| {
        let one = one.clone();
        async move { users::insert(&one, &NewUser::new(format!("u{k}@example.com"), "U")).await }
    })
    .await;
    assert!(points > 0, "the insert never waited");
    assert_eq!(users::get(&pool, user.id).await.unwrap().id, user.id);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn movements_dropped_at_every_await_leave_the_books_balanced(pool: PgPool) {
    let (a, b) = two_accounts(&pool).await;
    let (one, _proxy) = one_connection(&pool).await;
    type Make = fn(AccountId, AccountId, usize) -> BatchItem;
    let kinds: [(&str, Make); 6] = [
        ("deposit", |a, _, _| {
            BatchItem::Deposit(Movement::new(a, dec("1.00")))
        }),
        ("withdraw", |a, _, _| {
            BatchItem::Withdrawal(Movement::new(a, dec("1.00")))
        }),
        ("transfer", |a, b, _| {
            BatchItem::Transfer(Transfer::new(a, b, dec("1.00")))
        }),
        ("deposit with a key", |a, _, k| {
            BatchItem::Deposit(Movement::new(a, dec("1.00")).idempotency_key(format!("d{k}")))
        }),
        ("withdraw with a key", |a, _, k| {
            BatchItem::Withdrawal(Movement::new(a, dec("1.00")).idempotency_key(format!("w{k}")))
        }),
        ("transfer with a key", |a, b, k| {
            BatchItem::Transfer(Transfer::new(b, a, dec("1.00")).idempotency_key(format!("t{k}")))
        }),
    ];
    for (name, make) in kinds {
        let (points, entry) = drop_at_every_await(&one, &pool, |k| {
            let one = one.clone();
            let item = make(a, b, k);
            async move {
                let mut conn = one.acquire().await?;
                match &item {
                    BatchItem::Deposit(m) => transactions::deposit(&mut conn, m).await,
                    BatchItem::Withdrawal(m) => transactions::withdraw(&mut conn, m).await,
                    BatchItem::Transfer(t) => transactions::transfer(&mut conn, t).await,
                }
            }
        })
        .await;
        assert!(points > 0, "{name} never waited");
        assert_eq!(
            transactions::get(&pool, entry.id).await.unwrap(),
            entry,
            "{name}"
        );
        assert_books_balance(&pool).await;
    }
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_batch_dropped_at_every_await_is_all_or_nothing(pool: PgPool) {
    let (a, b) = two_accounts(&pool).await;
    let (one, _proxy) = one_connection(&pool).await;
    let items = vec![
        BatchItem::Deposit(Movement::new(a, dec("5.00"))),
        BatchItem::Transfer(Transfer::new(a, b, dec("2.00"))),
        BatchItem::Withdrawal(Movement::new(b, dec("1.00"))),
    ];
    let before = entries(&pool).await;
    let (points, ids) = drop_at_every_await(&one, &pool, |_| {
        let one = one.clone();
        let items = items.clone();
        async move {
            let mut conn = one.acquire().await?;
            transactions::post_batch(&mut conn, &items).await
        }
    })
    .await;
    assert!(points > 0);
    assert_eq!(ids.len(), 3);
    // Each dropped run wrote all three entries or none.
    assert_eq!((entries(&pool).await - before) % 3, 0);
    assert_books_balance(&pool).await;
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_unit_of_work_in_the_callers_transaction_dropped_at_every_await_keeps_it_usable(
    pool: PgPool,
) {
    let (a, b) = two_accounts(&pool).await;
    let (one, _proxy) = one_connection(&pool).await;
    let (points, ()) = drop_at_every_await(&one, &pool, |k| {
        let one = one.clone();
        async move {
            let mut conn = one.acquire().await?;
            let mut tx = conn.begin().await?;
            let t = Transfer::new(a, b, dec("1.00")).idempotency_key(format!("in-tx-{k}"));
            transactions::transfer(&mut tx, &t).await?;
            transactions::deposit(&mut tx, &Movement::new(b, dec("1.00"))).await?;
            tx.commit().await?;
            Ok(())
        }
    })
    .await;
    assert!(points > 0);
    assert_books_balance(&pool).await;
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_stream_dropped_at_every_await_leaves_a_clean_session(pool: PgPool) {
    let (a, _) = two_accounts(&pool).await;
    deposits(&pool, a, 6_000).await;
    let (one, _proxy) = one_connection(&pool).await;
    for ordered in [true, false] {
        // Past the first chunk (1,000 rows), into the second (5,000), then stops early.
        let (points, read) = drop_at_every_await(&one, &pool, |_| {
            let one = one.clone();
            async move {
                let stream = if ordered {
                    transactions::stream_all(&one).boxed()
                } else {
                    transactions::stream_unordered(&one).boxed()
                };
                stream.take(5_200).try_collect::<Vec<_>>().await
            }
        })
        .await;
        assert!(points > 1);
        assert_eq!(read.len(), 5_200);
    }
    // Inside a caller's transaction the stream runs in a savepoint, which it releases.
    let mut conn = one.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let read: Vec<_> = transactions::stream_all(&mut *tx)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(read.len(), 6_000 + 2);
    assert_eq!(
        transactions::total_completed_across_currencies(&mut *tx)
            .await
            .unwrap(),
        dec("2060.00")
    );
    tx.commit().await.unwrap();
}

/// `n` deposits of 0.01 into `account`, in one batch.
async fn deposits(pool: &PgPool, account: AccountId, n: usize) {
    let items: Vec<BatchItem> = (0..n)
        .map(|_| BatchItem::Deposit(Movement::new(account, dec("0.01"))))
        .collect();
    transactions::post_batch(&mut pool.acquire().await.unwrap(), &items)
        .await
        .unwrap();
}

/// `COPY` is where sqlx itself is not cancel-safe: a `COPY` dropped half-way leaves messages on
/// the connection that sqlx does not know to expect. On ledger's pool the release check finds
/// the session unusable and closes it; the next caller gets a new connection, and a bulk copy
/// writes all of its rows or none.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn bulk_copies_dropped_at_every_await_never_reach_the_next_caller(pool: PgPool) {
    let (a, _) = two_accounts(&pool).await;
    deposits(&pool, a, 20_000).await;
    let (one, _proxy) = one_connection(&pool).await;
    let (points, ids) = drop_at_every_await(&one, &pool, |k| {
        let one = one.clone();
        let people: Vec<NewUser> = (0..500)
            .map(|i| NewUser::new(format!("copy{k}-{i}@example.com"), "Copied"))
            .collect();
        async move {
            let mut conn = one.acquire().await?;
            users::copy_in(&mut conn, &people).await
        }
    })
    .await;
    assert!(points > 0);
    assert_eq!(ids.len(), 500);
    // The run that completed wrote its 500; a dropped run wrote all of its rows (dropped while
    // its `commit` was answered) or none.
    let copied = users::count(&pool, users::Visibility::All).await.unwrap() - 2;
    assert!(copied >= 500 && copied % 500 == 0, "{copied} rows copied");
    let (points, read) = drop_at_every_await(&one, &pool, |_| {
        let one = one.clone();
        async move {
            let mut conn = one.acquire().await?;
            // Ten rows, then the stream is dropped half-read even in the run that completes.
            transactions::copy_all(&mut conn)
                .take(10)
                .try_collect::<Vec<_>>()
                .await
        }
    })
    .await;
    assert!(points > 0);
    assert_eq!(read.len(), 10);
}
