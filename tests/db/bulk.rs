//! Bulk writes (UNNEST and COPY), batch posting, bulk update, streaming and chunked reads.

use futures::{StreamExt, TryStreamExt};
use ledger::Error;
use ledger::accounts::{self, AccountId, NewAccount};
use ledger::articles::{self, Language, NewArticle};
use ledger::bulk::BulkOptions;
use ledger::payments;
use ledger::transactions::{self, BatchItem, Movement, Transfer};
use ledger::users::{self, NewUser, UserId};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::money::funded;
use crate::support::{Table, count, dec, user};

fn people(n: usize) -> Vec<NewUser> {
    (0..n)
        .map(|i| NewUser::new(format!("bulk{i}@example.com"), format!("Bulk {i}")))
        .collect()
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn insert_many_returns_rows_in_input_order_across_chunks(pool: PgPool) {
    let input = people(12);
    let mut conn = pool.acquire().await.unwrap();
    let done = users::insert_many(&mut conn, &input, BulkOptions::default().chunk_size(5))
        .await
        .unwrap();
    assert_eq!(done.skipped, 0);
    let emails: Vec<&str> = done.created().map(|u| u.email.as_str()).collect();
    let expected: Vec<&str> = input.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, expected);
    assert_eq!(count(&pool, Table::Users).await, 12);
    // Built from the inputs and the returned `created_at`: equal to what the table holds, with
    // awkward text included.
    for user in done.created() {
        assert_eq!(users::get(&mut *conn, user.id).await.unwrap(), *user);
    }
    let awkward = vec![NewUser::new(
        "Ünï.Code+tag@Example.COM",
        "  Zoë \\ O'Brien\t✓  ",
    )];
    let done = users::insert_many(&mut conn, &awkward, BulkOptions::default())
        .await
        .unwrap();
    let created = done.created().next().unwrap();
    assert_eq!(users::get(&mut *conn, created.id).await.unwrap(), *created);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_bad_row_is_named_by_index_and_nothing_is_written(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let mut input = people(10);
    input[7].email = "broken".into();
    let err = users::insert_many(&mut conn, &input, BulkOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidItem { index: 7, .. }),
        "{err:?}"
    );

    let mut input = people(10);
    input[9].email = input[2].email.clone();
    let err = users::insert_many(&mut conn, &input, BulkOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidItem { index: 9, .. }),
        "{err:?}"
    );
    let err = users::copy_in(&mut conn, &input).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidItem { index: 9, .. }),
        "{err:?}"
    );
    assert_eq!(count(&pool, Table::Users).await, 0);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn conflicts_fail_the_whole_batch_or_are_skipped_and_counted(pool: PgPool) {
    user(&pool, "bulk8@example.com", "Taken").await;
    let input = people(10);
    let mut conn = pool.acquire().await.unwrap();

    // The conflict is in the second chunk: the first chunk is rolled back too.
    let err = users::insert_many(&mut conn, &input, BulkOptions::default().chunk_size(5))
        .await
        .unwrap_err();
    assert_eq!(err.constraint(), Some(users::EMAIL_UNIQUE));
    assert_eq!(count(&pool, Table::Users).await, 1);
    let err = users::copy_in(&mut conn, &input).await.unwrap_err();
    assert_eq!(err.constraint(), Some(users::EMAIL_UNIQUE));
    assert_eq!(count(&pool, Table::Users).await, 1);

    let done = users::insert_many(
        &mut conn,
        &input,
        BulkOptions::default().chunk_size(5).skip_conflicts(),
    )
    .await
    .unwrap();
    assert_eq!(done.skipped, 1);
    assert!(done.rows[8].is_none());
    assert_eq!(
        done.rows[9].as_ref().map(|u| u.email.as_str()),
        Some("bulk9@example.com")
    );
    assert_eq!(count(&pool, Table::Users).await, 10);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn copy_in_round_trips_awkward_text(pool: PgPool) {
    let awkward = [
        "tab\there",
        "new\nline",
        "carriage\rreturn",
        r"back\slash",
        r"\N",
        r"\t literally",
        "Ünïcödé — 名前 😀",
        "'quotes' \"and\" ,commas;",
    ];
    let input: Vec<NewUser> = awkward
        .iter()
        .enumerate()
        .map(|(i, name)| NewUser::new(format!("awk{i}@example.com"), *name))
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    let ids = users::copy_in(&mut conn, &input).await.unwrap();
    for (id, expected) in ids.iter().zip(awkward) {
        assert_eq!(users::get(&pool, *id).await.unwrap().name, expected);
    }
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn payments_bulk_paths_round_trip_awkward_json(pool: PgPool) {
    let documents = vec![
        json!({"method": "credit_card", "amount": 9999999999999.99_f64, "note": "tab\t nl\n bs\\ q\"", "nested": {"deep": [1, {"x": null}]}}),
        json!({"unicode": "Zoë 😀 名前", "empty": {}, "list": []}),
        json!({"n": -0.01, "big": 12345678901234_i64}),
    ];
    let mut conn = pool.acquire().await.unwrap();
    let copied = payments::copy_in(&mut conn, &documents).await.unwrap();
    for (id, document) in copied.iter().zip(&documents) {
        assert_eq!(&payments::get(&pool, *id).await.unwrap().data, document);
    }
    let inserted = payments::insert_many(&mut conn, &documents, BulkOptions::default())
        .await
        .unwrap();
    let back: Vec<_> = inserted.created().map(|p| p.data.clone()).collect();
    assert_eq!(back, documents);
    // The typed reading keeps the 15 significant digits of a numeric(15,2) amount.
    let typed = payments::get(&pool, copied[0])
        .await
        .unwrap()
        .typed()
        .unwrap();
    assert_eq!(typed.amount, Some(dec("9999999999999.99")));

    let err = payments::insert_many(&mut conn, &[json!({}), json!([1])], BulkOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidItem { index: 1, .. }));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn accounts_and_articles_in_bulk_and_bulk_update_with_different_values(pool: PgPool) {
    let owner = user(&pool, "owner@example.com", "Owner").await;
    let mut conn = pool.acquire().await.unwrap();
    let wanted = vec![
        NewAccount {
            user_id: owner.id,
            currency: None,
        },
        NewAccount {
            user_id: owner.id,
            currency: Some("EUR".into()),
        },
        NewAccount {
            user_id: owner.id,
            currency: Some("JPY".into()),
        },
    ];
    let opened = accounts::open_many(&mut conn, &wanted, BulkOptions::default())
        .await
        .unwrap();
    let made: Vec<_> = opened.created().cloned().collect();
    assert_eq!(
        made.iter().map(|a| a.currency.as_str()).collect::<Vec<_>>(),
        ["USD", "EUR", "JPY"]
    );

    let changed = accounts::set_statuses(
        &pool,
        &[
            (made[0].id, "vip"),
            (made[1].id, "frozen"),
            (AccountId::new(), "x"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(changed, 2);
    assert_eq!(
        accounts::get(&pool, made[0].id).await.unwrap().status,
        "vip"
    );
    assert_eq!(
        accounts::get(&pool, made[1].id).await.unwrap().status,
        "frozen"
    );
    assert_eq!(
        accounts::get(&pool, made[2].id).await.unwrap().status,
        "active"
    );
    let err = accounts::set_statuses(&pool, &[(made[0].id, "ok"), (made[0].id, "again")])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidItem { index: 1, .. }));

    let ghost = vec![NewAccount {
        user_id: UserId::new(),
        currency: None,
    }];
    let err = accounts::open_many(&mut conn, &ghost, BulkOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.constraint(), Some(accounts::USER_FKEY));
    let bad = vec![NewAccount {
        user_id: owner.id,
        currency: Some("usd".into()),
    }];
    assert!(matches!(
        accounts::open_many(&mut conn, &bad, BulkOptions::default()).await,
        Err(Error::InvalidItem { index: 0, .. })
    ));
    assert_eq!(count(&pool, Table::Accounts).await, 3);

    let docs = vec![
        NewArticle::new("Bulk one", "postgres bulk loading"),
        NewArticle::new("Uno", "cargas masivas").language(Language::Spanish),
    ];
    let made = articles::insert_many(&mut conn, &docs, BulkOptions::default())
        .await
        .unwrap();
    assert_eq!(
        made.created().map(|a| a.language).collect::<Vec<_>>(),
        [Language::English, Language::Spanish]
    );
    let hits = articles::SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search_titles(&pool, "loading")
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn batch_posting_is_all_or_nothing_and_checks_every_step_in_order(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "0").await.id;
    let b = funded(&pool, "b@example.com", "USD", "0").await.id;
    let mut conn = pool.acquire().await.unwrap();

    // The transfer at index 1 overdraws `a`, although the deposit at index 2 would cover it.
    let early = vec![
        BatchItem::Deposit(Movement::new(a, dec("10"))),
        BatchItem::Transfer(Transfer::new(a, b, dec("15"))),
        BatchItem::Deposit(Movement::new(a, dec("100"))),
    ];
    let err = transactions::post_batch(&mut conn, &early)
        .await
        .unwrap_err();
    match &err {
        Error::InvalidItem { index: 1, source } => {
            assert!(matches!(**source, Error::InsufficientFunds { .. }))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        accounts::get(&pool, a).await.unwrap().balance,
        Decimal::ZERO
    );

    let with_key = vec![BatchItem::Deposit(
        Movement::new(a, dec("1")).idempotency_key("k"),
    )];
    assert!(matches!(
        transactions::post_batch(&mut conn, &with_key).await,
        Err(Error::InvalidItem { index: 0, .. })
    ));
    let ghost = vec![BatchItem::Withdrawal(Movement::new(
        AccountId::new(),
        dec("1"),
    ))];
    assert!(matches!(
        transactions::post_batch(&mut conn, &ghost).await,
        Err(Error::InvalidItem { index: 0, .. })
    ));

    let good = vec![
        BatchItem::Deposit(Movement::new(a, dec("100"))),
        BatchItem::Transfer(Transfer::new(a, b, dec("60"))),
        BatchItem::Withdrawal(Movement::new(b, dec("10.50"))),
        BatchItem::Transfer(Transfer::new(b, a, dec("49.50"))),
    ];
    let ids = transactions::post_batch(&mut conn, &good).await.unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(accounts::get(&pool, a).await.unwrap().balance, dec("89.50"));
    assert_eq!(
        accounts::get(&pool, b).await.unwrap().balance,
        Decimal::ZERO
    );
    assert_eq!(
        transactions::get(&pool, ids[2]).await.unwrap().kind,
        "withdrawal"
    );
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn streams_and_chunks_read_every_entry_in_order(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "0").await.id;
    let items: Vec<BatchItem> = (1..=2_345)
        .map(|i| BatchItem::Deposit(Movement::new(a, Decimal::new(i, 2))))
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    transactions::post_batch(&mut conn, &items).await.unwrap();
    drop(conn);

    let streamed: Vec<_> = transactions::stream_all(&pool).try_collect().await.unwrap();
    assert_eq!(streamed.len(), 2_345);
    assert!(
        streamed
            .windows(2)
            .all(|w| (w[0].created_at, w[0].id) < (w[1].created_at, w[1].id))
    );

    let chunks: Vec<Vec<_>> = transactions::chunks(&pool, 1_000)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        chunks.iter().map(Vec::len).collect::<Vec<_>>(),
        [1_000, 1_000, 345]
    );
    let flat: Vec<_> = chunks.into_iter().flatten().map(|e| e.id).collect();
    assert_eq!(flat, streamed.iter().map(|e| e.id).collect::<Vec<_>>());

    let bad: Result<Vec<Vec<_>>, _> = transactions::chunks(&pool, 0).try_collect().await;
    assert!(matches!(
        bad,
        Err(Error::InvalidInput { field: "size", .. })
    ));
}

/// The unordered stream and the `COPY` reader give exactly the rows `stream_all` gives,
/// including what only another client could write: text with every character `COPY` escapes
/// (tab, newline, carriage return, backslash, backspace, form feed, vertical tab), non-ASCII,
/// a NULL side, an odd timestamp and a 1,000-deep document, across many network chunks.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn unordered_and_copy_reads_give_every_entry_exactly(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "0").await.id;
    let b = funded(&pool, "b@example.com", "USD", "0").await.id;
    let items: Vec<BatchItem> = (1..=3_000)
        .map(|i| BatchItem::Deposit(Movement::new(a, Decimal::new(i, 2))))
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    transactions::post_batch(&mut conn, &items).await.unwrap();
    let awkward = "tab\there\nnew\rline \\ back\u{8}\u{c}\u{b} ünïcödé ✓ \"quoted\"";
    sqlx::query!(
        r#"
        insert into transactions (from_account_id, to_account_id, amount, type, status,
                                  metadata, created_at, idempotency_key)
        values ($1, $2, 12.30, 'transfer', 'completed', jsonb_build_object('note', $3::text),
                '1970-01-01 00:00:00.000001+00', $3),
               (null, $2, 0.01, 'deposit', 'pending',
                (repeat('{"a": ', 1000) || '1' || repeat('}', 1000))::jsonb,
                '2999-12-31 23:59:59.999999+00', null)
        "#,
        a.as_uuid(),
        b.as_uuid(),
        awkward
    )
    .execute(&pool)
    .await
    .unwrap();

    let by_id = |mut rows: Vec<transactions::LedgerEntry>| {
        rows.sort_by_key(|e| e.id);
        rows
    };
    let ordered = by_id(transactions::stream_all(&pool).try_collect().await.unwrap());
    let unordered = by_id(
        transactions::stream_unordered(&pool)
            .try_collect()
            .await
            .unwrap(),
    );
    let copied = by_id(
        transactions::copy_all(&mut conn)
            .try_collect()
            .await
            .unwrap(),
    );
    assert_eq!(ordered.len(), 3_002);
    assert!(unordered == ordered, "the unordered stream differs");
    assert!(copied == ordered, "the COPY reader differs");
    let odd = copied
        .iter()
        .find(|e| e.created_at.timestamp_micros() == 1)
        .unwrap();
    assert_eq!(odd.idempotency_key.as_deref(), Some(awkward));
    assert_eq!(odd.metadata, json!({"note": awkward}));
    assert_eq!(odd.amount.to_string(), "12.30", "the column's scale");
    // The connection is usable after the COPY.
    assert_eq!(transactions::get(&mut *conn, odd.id).await.unwrap(), *odd);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn dropping_a_stream_early_releases_its_connection(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "0").await.id;
    let items: Vec<BatchItem> = (1..=5_000)
        .map(|i| BatchItem::Deposit(Movement::new(a, Decimal::new(i, 2))))
        .collect();
    transactions::post_batch(&mut pool.acquire().await.unwrap(), &items)
        .await
        .unwrap();

    // A pool of one connection: if the dropped stream kept it, the next query could not run.
    let one = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    {
        let mut stream = transactions::stream_all(&one);
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.to_account_id, Some(a));
    } // dropped after one of 5,001 rows
    let total = transactions::total_completed_across_currencies(&one)
        .await
        .unwrap();
    assert_eq!(total, Decimal::new((1..=5_000).sum::<i64>(), 2));
    let again: Vec<_> = transactions::stream_all(&one)
        .take(3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
}
