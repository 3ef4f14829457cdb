//! The listings that grow with a table, as streams (issue 36): each gives the rows of the
//! `Vec` form it replaces (deprecated, still tested here), on data with two currencies, every
//! account status, soft-deleted users and movements of every status written by another client;
//! on a pool and inside a caller's transaction (which sees its own uncommitted rows); refuses
//! bad input as its one item without sending anything; and, dropped early, costs the next query
//! one chunk, not the table.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use ledger::transactions::{self, Movement, Transfer};
use ledger::users::{self, NewUser, Visibility};
use ledger::{Error, accounts};
use sqlx::{PgConnection, PgPool};

use crate::support::{StatementCounter, account_with, dec, user};

/// Users (one soft-deleted), USD and EUR accounts of every seed status, movements through the
/// crate, and movements of every status and both spellings of "applied" written as another
/// client would.
async fn two_currencies(pool: &PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let ana = user(pool, "ana@example.com", "Ana").await;
    let bob = user(pool, "bob@example.com", "Bob").await;
    let gone = user(pool, "gone@example.com", "Gone").await;
    let usd = [
        account_with(pool, ana.id, dec("0"), "active").await,
        account_with(pool, bob.id, dec("0"), "active").await,
        account_with(pool, gone.id, dec("0"), "active").await,
    ];
    let eur = [
        accounts::open(&mut *conn, ana.id, Some("EUR"))
            .await
            .unwrap(),
        accounts::open(&mut *conn, bob.id, Some("EUR"))
            .await
            .unwrap(),
    ];
    for (account, amount) in [
        (&usd[0], "500.00"),
        (&usd[1], "120.50"),
        (&usd[2], "99.99"),
        (&eur[0], "700.00"),
        (&eur[1], "100.00"),
    ] {
        transactions::deposit(&mut conn, &Movement::new(account.id, dec(amount)))
            .await
            .unwrap();
    }
    transactions::transfer(
        &mut conn,
        &Transfer::new(usd[0].id, usd[1].id, dec("20.25")),
    )
    .await
    .unwrap();
    transactions::transfer(
        &mut conn,
        &Transfer::new(eur[0].id, eur[1].id, dec("40.00")),
    )
    .await
    .unwrap();
    transactions::withdraw(&mut conn, &Movement::new(eur[0].id, dec("10.10")))
        .await
        .unwrap();
    for status in ["pending", "failed", "success"] {
        sqlx::query!(
            r#"
            insert into transactions (from_account_id, amount, type, status)
            values ($1, 3.00, 'withdrawal', $2)
            "#,
            usd[1].id.as_uuid(),
            status
        )
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    // Statuses last: money moves between active accounts only.
    for (account, status) in [(&usd[1], "vip"), (&usd[2], "trial"), (&eur[1], "banned")] {
        accounts::set_status(&mut *conn, account.id, status)
            .await
            .unwrap();
    }
    users::soft_delete(&mut *conn, gone.id).await.unwrap();
}

/// Asserts that every stream yields the rows of its `Vec` form, read through `conn`.
#[allow(deprecated)]
async fn every_stream_matches_its_list(conn: &mut PgConnection) {
    macro_rules! same {
        ($list:expr, $stream:expr) => {{
            let listed = $list.await.unwrap();
            let streamed: Vec<_> = $stream.try_collect().await.unwrap();
            assert!(
                !listed.is_empty(),
                "{}: no rows to compare",
                stringify!($list)
            );
            assert_eq!(streamed, listed, "{}", stringify!($stream));
        }};
    }
    same!(
        users::list_active(&mut *conn),
        users::stream_active(&mut *conn)
    );
    for visibility in [Visibility::Live, Visibility::All] {
        same!(
            users::list_ids(&mut *conn, visibility),
            users::stream_ids(&mut *conn, visibility)
        );
        same!(
            users::list_id_email(&mut *conn, visibility),
            users::stream_id_email(&mut *conn, visibility)
        );
    }
    same!(
        accounts::list_balance_at_least(&mut *conn, dec("100")),
        accounts::stream_balance_at_least(&mut *conn, dec("100"))
    );
    same!(
        accounts::list_balance_between(&mut *conn, dec("50"), dec("500")),
        accounts::stream_balance_between(&mut *conn, dec("50"), dec("500"))
    );
    same!(
        accounts::list_status_in(&mut *conn, &["active", "vip"]),
        accounts::stream_status_in(&mut *conn, &["active", "vip"])
    );
    same!(
        accounts::list_balance_at_least_and_status(&mut *conn, dec("100"), "active"),
        accounts::stream_balance_at_least_and_status(&mut *conn, dec("100"), "active")
    );
    same!(
        accounts::list_balance_at_least_or_status(&mut *conn, dec("400"), "trial"),
        accounts::stream_balance_at_least_or_status(&mut *conn, dec("400"), "trial")
    );
    same!(
        accounts::list_status_not(&mut *conn, "banned"),
        accounts::stream_status_not(&mut *conn, "banned")
    );
    same!(
        accounts::rank_by_balance(&mut *conn),
        accounts::stream_rank_by_balance(&mut *conn)
    );
    same!(
        transactions::running_totals(&mut *conn),
        transactions::stream_running_totals(&mut *conn)
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn every_growing_listing_streams_the_rows_of_its_list(pool: PgPool) {
    two_currencies(&pool).await;
    every_stream_matches_its_list(&mut pool.acquire().await.unwrap()).await;

    // The streams' money keeps its column's scale and its currency: nothing was added across
    // currencies, and the running totals restart per user and currency.
    let ranked: Vec<_> = accounts::stream_rank_by_balance(&pool)
        .try_collect()
        .await
        .unwrap();
    let firsts: Vec<_> = ranked
        .iter()
        .filter(|r| r.rank == 1)
        .map(|r| (r.currency.as_str(), r.balance.to_string()))
        .collect();
    assert_eq!(
        firsts,
        [("EUR", "649.90".to_owned()), ("USD", "479.75".to_owned())]
    );
    let totals: Vec<_> = transactions::stream_running_totals(&pool)
        .map_ok(|t| (t.currency, t.running_total.to_string()))
        .try_collect()
        .await
        .unwrap();
    assert!(
        totals.contains(&("EUR".to_owned(), "50.10".to_owned())),
        "{totals:?}"
    );
    assert!(
        totals.contains(&("USD".to_owned(), "20.25".to_owned())),
        "{totals:?}"
    );
    // Bob's USD: only the `success` row counts, not `pending` or `failed`.
    assert!(
        totals.contains(&("USD".to_owned(), "3.00".to_owned())),
        "{totals:?}"
    );
    assert_eq!(totals.len(), 4, "{totals:?}");
}

/// Inside a caller's transaction each stream reads in a savepoint of it: it sees the
/// transaction's own uncommitted rows, and leaves the transaction usable.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_stream_in_a_callers_transaction_sees_its_uncommitted_rows(pool: PgPool) {
    two_currencies(&pool).await;
    let mut tx = pool.begin().await.unwrap();
    let new = users::insert(&mut *tx, &NewUser::new("new@example.com", "New"))
        .await
        .unwrap();
    accounts::open(&mut *tx, new.id, Some("USD")).await.unwrap();
    every_stream_matches_its_list(&mut tx).await;
    let ids: Vec<_> = users::stream_ids(&mut *tx, Visibility::Live)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids.last(), Some(&new.id));
    tx.rollback().await.unwrap();
    let ids: Vec<_> = users::stream_ids(&pool, Visibility::Live)
        .try_collect()
        .await
        .unwrap();
    assert!(!ids.contains(&new.id));
}

/// Bad input is the stream's one item, an `InvalidInput` naming the field, and nothing reaches
/// the server.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_stream_refuses_bad_input_as_its_one_item_and_sends_nothing(pool: PgPool) {
    two_currencies(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let counter = StatementCounter::start();
    let refusals: Vec<(&str, Vec<ledger::Result<accounts::Account>>)> = vec![
        (
            "balance range",
            accounts::stream_balance_between(&mut *conn, dec("500"), dec("100"))
                .collect()
                .await,
        ),
        (
            "status",
            accounts::stream_status_in(&mut *conn, &["active", "a\0b"])
                .collect()
                .await,
        ),
        (
            "status",
            accounts::stream_status_not(&mut *conn, "\0")
                .collect()
                .await,
        ),
        (
            "status",
            accounts::stream_balance_at_least_and_status(&mut *conn, dec("1"), "\0")
                .collect()
                .await,
        ),
        (
            "status",
            accounts::stream_balance_at_least_or_status(&mut *conn, dec("1"), "\0")
                .collect()
                .await,
        ),
    ];
    assert_eq!(counter.count(), 0, "a refused stream sent a statement");
    drop(counter);
    for (field, items) in refusals {
        match items.as_slice() {
            [Err(Error::InvalidInput { field: got, .. })] => assert_eq!(*got, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    // The connection is still clean: a stream on it reads.
    let n = users::stream_active(&mut *conn)
        .try_fold(0, |n, _| async move { Ok(n + 1) })
        .await
        .unwrap();
    assert_eq!(n, 2);
}

/// Users in the table: far more than one chunk, so a full drain is much longer than one.
const USERS: i64 = 200_000;

/// How long the next query on `one` waits after `dropped` has run.
async fn next_query_wait(one: &PgPool) -> Duration {
    let started = Instant::now();
    sqlx::query_scalar!(r#"select 1 as "one!""#)
        .fetch_one(one)
        .await
        .unwrap();
    started.elapsed()
}

/// A users stream dropped after its first row, or after half the table, costs the next query
/// at most the rest of one chunk: a tenth of what a plain `select` of the table dropped after
/// its first row costs (sqlx drains the rest of its result), measured in the same test.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_users_stream_dropped_early_costs_the_next_query_one_chunk(pool: PgPool) {
    sqlx::query!(
        r#"
        insert into users (email, name, created_at)
        select 'u' || i || '@example.com', 'User ' || i, now() - make_interval(secs => i)
        from generate_series(1, $1::bigint) as i
        "#,
        USERS
    )
    .execute(&pool)
    .await
    .unwrap();
    let one = crate::support::one_connection(&pool).await;

    let mut drain = Duration::MAX;
    for _ in 0..3 {
        {
            let mut conn = one.acquire().await.unwrap();
            let mut rows =
                sqlx::query!("select id, email, name, created_at from users").fetch(&mut *conn);
            rows.next().await.unwrap().unwrap();
        }
        drain = drain.min(next_query_wait(&one).await);
    }
    for rows in [1, USERS as usize / 2] {
        let mut least = Duration::MAX;
        for _ in 0..3 {
            {
                let mut live = users::stream_active(&one);
                for _ in 0..rows {
                    live.next().await.unwrap().unwrap();
                }
            }
            least = least.min(next_query_wait(&one).await);
        }
        eprintln!("stream_active dropped after {rows} rows: next query {least:?}, drain {drain:?}");
        assert!(
            least * 10 < drain,
            "stream_active dropped after {rows} rows: the next query waited {least:?}, \
             a full drain {drain:?}"
        );
    }
}

/// The name and date filters' replacement, [`users::filter`] a page at a time, holds the rows of
/// each deprecated `Vec` form, walked to the end through `after` with a page of 2.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
#[allow(deprecated)] // the Vec forms, compared until they are removed
async fn the_name_and_date_filters_pages_hold_the_rows_of_their_lists(pool: PgPool) {
    for (email, name) in [
        ("a1@example.com", "Ana García"),
        ("a2@example.com", "Ana García"),
        ("a3@example.com", "Ana garcía"),
        ("a4@example.com", "Andrés 100%"),
        ("a5@example.com", "Bob"),
    ] {
        user(&pool, email, name).await;
    }
    let gone = user(&pool, "a6@example.com", "Ana García").await;
    users::soft_delete(&pool, gone.id).await.unwrap();
    let today = chrono::Utc::now().date_naive();
    for visibility in [Visibility::Live, Visibility::All] {
        let include_deleted = visibility == Visibility::All;
        let cases = [
            (
                users::list_by_name(&pool, visibility, "Ana García")
                    .await
                    .unwrap(),
                users::UserFilter {
                    name: Some("Ana García".into()),
                    ..Default::default()
                },
            ),
            (
                users::list_name_contains(&pool, visibility, "GARCÍA")
                    .await
                    .unwrap(),
                users::UserFilter {
                    name_contains: Some("GARCÍA".into()),
                    ..Default::default()
                },
            ),
            (
                users::list_name_starts_with(&pool, visibility, "An")
                    .await
                    .unwrap(),
                users::UserFilter {
                    name_starts_with: Some("An".into()),
                    ..Default::default()
                },
            ),
            (
                users::list_created_on(&pool, visibility, today, "UTC")
                    .await
                    .unwrap(),
                users::UserFilter {
                    created_on: Some(today),
                    time_zone: Some("UTC".into()),
                    ..Default::default()
                },
            ),
        ];
        for (mut listed, criteria) in cases {
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let criteria = users::UserFilter {
                    include_deleted,
                    limit: Some(2),
                    after: after.clone(),
                    ..criteria.clone()
                };
                let page = users::filter(&pool, &criteria).await.unwrap();
                after = page.last().map(users::NameKey::of);
                let done = page.len() < 2;
                paged.extend(page);
                if done {
                    break;
                }
            }
            assert!(!listed.is_empty(), "{criteria:?}");
            // The same rows, each once (the server orders by its collation; compare by id).
            listed.sort_by_key(|u| u.id);
            paged.sort_by_key(|u| u.id);
            assert_eq!(paged, listed, "{criteria:?} with {visibility:?}");
        }
    }
}
