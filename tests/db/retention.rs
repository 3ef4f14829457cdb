//! Idempotency keys have a lifetime: pruning deletes the keys past it in small batches while
//! keyed movements go on, never a key inside it; a repeat inside the lifetime replays, a late
//! repeat of a single movement is refused with nothing written.

use std::time::Duration;

use ledger::transactions::{self, Transfer};
use ledger::{Error, accounts};
use sqlx::PgPool;
use tokio::task::JoinSet;

use crate::money::funded;
use crate::support::dec;

const DAY: Duration = Duration::from_secs(86_400);

async fn keys(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar!("select key from idempotency_keys order by key")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// 200 keys are 8 days old, 200 are 6 days old; with a 7-day lifetime and batches of 7, the
/// prune runs while 4 clients move money with fresh keys and repeat the 6-day-old ones, while
/// another transaction holds an old key's row and a movement is in flight inside a caller's
/// transaction: the prune waits on neither, every old key goes (the held one once it is free),
/// every young, fresh and in-flight key stays, each repeat replays its first entry, and the money
/// is conserved.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn pruning_under_keyed_traffic_removes_only_keys_past_their_lifetime(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100000").await.id;
    let b = funded(&pool, "b@example.com", "USD", "100000").await.id;
    let mut conn = pool.acquire().await.unwrap();
    let mut young = Vec::new();
    for i in 0..400 {
        let key = format!("k-{i:03}");
        let entry = transactions::transfer(
            &mut conn,
            &Transfer::new(a, b, dec("1")).idempotency_key(key.clone()),
        )
        .await
        .unwrap();
        if i >= 200 {
            young.push((key, entry.id));
        }
    }
    drop(conn);
    sqlx::query!(
        r#"
        update idempotency_keys
        set created_at = now() - case when key < 'k-200' then interval '8 days'
                                      else interval '6 days' end
        "#
    )
    .execute(&pool)
    .await
    .unwrap();

    // Held open while the prune runs: another transaction's lock on an old key (the prune must
    // skip it, not wait), and a movement in flight inside a caller's transaction (its fresh key
    // claimed, not committed).
    // (The in-flight movement is between two other accounts, whose locks the traffic does not
    // need.)
    let c = funded(&pool, "c@example.com", "USD", "10").await.id;
    let d = funded(&pool, "d@example.com", "USD", "0").await.id;
    let mut holder = pool.begin().await.unwrap();
    sqlx::query!("select key from idempotency_keys where key = 'k-000' for update")
        .fetch_one(&mut *holder)
        .await
        .unwrap();
    let mut in_flight = pool.begin().await.unwrap();
    transactions::transfer(
        &mut in_flight,
        &Transfer::new(c, d, dec("1")).idempotency_key("in-flight"),
    )
    .await
    .unwrap();

    // The clients' own pool: the test's is small, and two of its connections are held above.
    let clients = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let mut traffic = JoinSet::new();
    for client in 0..4 {
        let pool = clients.clone();
        let young = young.clone();
        traffic.spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            for round in 0..50 {
                let fresh = Transfer::new(b, a, dec("1"))
                    .idempotency_key(format!("fresh-{client}-{round}"));
                transactions::transfer(&mut conn, &fresh).await.unwrap();
                let (key, first) = &young[(client * 50 + round) % young.len()];
                let repeat = Transfer::new(a, b, dec("1")).idempotency_key(key.clone());
                let again = transactions::transfer(&mut conn, &repeat).await.unwrap();
                assert_eq!(again.id, *first, "a repeat inside the lifetime replays");
            }
        });
    }
    let pruned = tokio::time::timeout(
        Duration::from_secs(60),
        transactions::prune_idempotency_keys(&pool, 7 * DAY, 7),
    )
    .await
    .expect("the prune waits on no one")
    .unwrap();
    while let Some(done) = traffic.join_next().await {
        done.unwrap();
    }
    clients.close().await;
    assert_eq!(pruned, 199, "every old key but the one held");
    in_flight.commit().await.unwrap();
    holder.commit().await.unwrap();
    assert_eq!(
        transactions::prune_idempotency_keys(&pool, 7 * DAY, 7)
            .await
            .unwrap(),
        1,
        "the held key, once free"
    );
    let left = keys(&pool).await;
    assert!(
        left.iter()
            .filter(|k| k.starts_with("k-"))
            .all(|k| k.as_str() >= "k-200"),
        "only young keys"
    );
    assert_eq!(left.iter().filter(|k| k.starts_with("k-")).count(), 200);
    assert_eq!(left.iter().filter(|k| k.starts_with("fresh-")).count(), 200);
    assert!(left.iter().any(|k| k == "in-flight"));
    let total = accounts::get(&pool, a).await.unwrap().balance
        + accounts::get(&pool, b).await.unwrap().balance;
    assert_eq!(total, dec("200000.00"), "money conserved");
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());

    // Nothing left past its lifetime: a second prune deletes nothing.
    assert_eq!(
        transactions::prune_idempotency_keys(&pool, 7 * DAY, 1_000)
            .await
            .unwrap(),
        0
    );
}

/// After its key is pruned, the same single movement still replays its entry (which keeps the key
/// in `transactions.idempotency_key`), and another movement under that key is still a conflict:
/// nothing is written twice. Bad settings are refused before anything is sent.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_late_repeat_of_a_single_movement_replays_from_its_entry_and_bad_settings_are_typed(
    pool: PgPool,
) {
    let a = funded(&pool, "a@example.com", "USD", "100").await.id;
    let b = funded(&pool, "b@example.com", "USD", "0").await.id;
    let pay = Transfer::new(a, b, dec("10")).idempotency_key("late-1");
    let mut conn = pool.acquire().await.unwrap();
    let first = transactions::transfer(&mut conn, &pay).await.unwrap();
    sqlx::query!("update idempotency_keys set created_at = now() - interval '30 days'")
        .execute(&pool)
        .await
        .unwrap();
    let pruned = transactions::prune_idempotency_keys(
        &pool,
        transactions::DEFAULT_KEY_RETENTION,
        transactions::PRUNE_BATCH,
    )
    .await
    .unwrap();
    assert_eq!(pruned, 1);

    assert!(keys(&pool).await.is_empty());
    let late = transactions::transfer(&mut conn, &pay).await.unwrap();
    assert_eq!(late.id, first.id, "the late repeat replays the entry");
    let other = Transfer::new(a, b, dec("11")).idempotency_key("late-1");
    assert!(matches!(
        transactions::transfer(&mut conn, &other).await,
        Err(Error::IdempotencyConflict { .. })
    ));
    assert_eq!(accounts::get(&pool, b).await.unwrap().balance, dec("10.00"));

    // Through the poster, in one flush with a fresh movement: the late repeat replays its entry,
    // the other movement applies, and the flush does not fail for either.
    let poster = transactions::Poster::new(
        pool.clone(),
        transactions::PosterOptions::default().linger(Duration::from_millis(200)),
    );
    let (again, fresh) = tokio::join!(
        poster.transfer(pay.clone()),
        poster.transfer(Transfer::new(a, b, dec("1")).idempotency_key("fresh-1")),
    );
    assert_eq!(again.unwrap().id, first.id);
    assert_eq!(fresh.unwrap().amount, dec("1"));
    assert_eq!(accounts::get(&pool, b).await.unwrap().balance, dec("11.00"));
    drop(poster);

    for (retention, batch, field) in [
        (Duration::from_secs(60), 10, "retention"),
        (DAY, 0, "batch"),
        (DAY, 100_001, "batch"),
    ] {
        let err = transactions::prune_idempotency_keys(&pool, retention, batch)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field: f, .. } if *f == field),
            "{err:?}"
        );
    }
}
