//! `ledger::payments` and the JSONB queries on `transactions.metadata`.

use ledger::Error;
use ledger::payments::{self, PaymentData, Shipping};
use ledger::transactions::{self, Movement};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::money::funded;
use crate::support::dec;

async fn store(pool: &PgPool, data: Value) -> payments::PaymentId {
    payments::insert_json(pool, &data).await.unwrap().id
}

async fn payment_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar!(r#"select count(*) as "n!" from payments"#)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The plan PostgreSQL chooses, as text.
async fn plan(pool: &PgPool, table: &str, fragment: Value) -> String {
    let plan: Value = match table {
        "payments" => sqlx::query_scalar!(
            "explain (format json) select id from payments where data @> $1",
            fragment
        )
        .fetch_one(pool)
        .await
        .unwrap(),
        _ => sqlx::query_scalar!(
            "explain (format json) select id from transactions where metadata @> $1",
            fragment
        )
        .fetch_one(pool)
        .await
        .unwrap(),
    }
    .unwrap_or_default();
    plan.to_string()
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn typed_payloads_round_trip_and_keep_unknown_keys(pool: PgPool) {
    let data = PaymentData {
        method: Some("credit_card".into()),
        last4: Some("4242".into()),
        brand: Some("Visa".into()),
        amount: Some(dec("9999999999999.99")),
        shipping: Some(Shipping {
            country: Some("US".into()),
            ..Default::default()
        }),
        discount: None,
        extra: [("gift".to_owned(), json!({"note": "¡Feliz cumpleaños!"}))]
            .into_iter()
            .collect(),
    };
    let stored = payments::insert(&pool, &data).await.unwrap();
    let document = stored.data.to_value().unwrap();
    assert_eq!(document["method"], "credit_card");
    assert!(
        document["amount"].is_number(),
        "amounts are JSON numbers: {}",
        stored.data
    );
    assert_eq!(document.get("discount"), None);
    let back = payments::get(&pool, stored.id)
        .await
        .unwrap()
        .typed()
        .unwrap();
    assert_eq!(back, data);

    // What Django data holds, shapes the typed fields do not have: read, kept as stored, and
    // written back unchanged.
    let django = json!({
        "method": "paypal",
        "amount": "a lot",
        "last4": 4242,
        "discount": {"code": "SPRING", "percent": 10},
        "shipping": {"country": 36, "city": "Reykjavík"},
        "brand": null
    });
    let stored = payments::insert_json(&pool, &django).await.unwrap();
    let typed = stored.typed().unwrap();
    assert_eq!(typed.method.as_deref(), Some("paypal"));
    assert_eq!(
        (typed.amount, typed.discount, &typed.last4),
        (None, None, &None)
    );
    assert_eq!(
        typed.extra["discount"],
        json!({"code": "SPRING", "percent": 10})
    );
    assert_eq!(typed.extra["amount"], "a lot");
    let shipping = typed.shipping.clone().unwrap();
    assert_eq!(
        (shipping.country, &shipping.extra["country"]),
        (None, &json!(36))
    );
    let rewritten = payments::insert(&pool, &typed).await.unwrap();
    let mut without_null = django.clone();
    without_null.as_object_mut().unwrap().remove("brand");
    assert_eq!(rewritten.data.to_value().unwrap(), without_null);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn bad_payloads_are_refused_and_nothing_is_written(pool: PgPool) {
    let too_big = json!({"blob": "x".repeat(payments::MAX_PAYLOAD_BYTES)});
    for bad in [
        json!([1, 2]),
        json!("card"),
        json!(null),
        json!(7),
        too_big,
        json!({"nul": "a\u{0}b"}),
    ] {
        let err = payments::insert_json(&pool, &bad).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { field: "data", .. }),
            "{err:?}"
        );
    }
    assert_eq!(payment_count(&pool).await, 0);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn key_value_nested_and_has_key_queries(pool: PgPool) {
    let visa_us = store(
        &pool,
        json!({"method": "credit_card", "brand": "Visa", "shipping": {"country": "US"}}),
    )
    .await;
    let mc_fr = store(&pool, json!({"method": "credit_card", "brand": "Mastercard", "shipping": {"country": "FR"}, "discount": 5})).await;
    let bank = store(&pool, json!({"method": "bank_transfer", "discount": null})).await;
    let ids = |rows: Vec<payments::Payment>| rows.into_iter().map(|p| p.id).collect::<Vec<_>>();

    assert_eq!(
        ids(payments::PaymentQuery::new()
            .limit(10)
            .list_by_method(&pool, "credit_card")
            .await
            .unwrap()),
        [visa_us, mc_fr]
    );
    assert_eq!(
        ids(payments::PaymentQuery::new()
            .limit(10)
            .list_by_brand(&pool, "Visa")
            .await
            .unwrap()),
        [visa_us]
    );
    assert_eq!(
        ids(payments::PaymentQuery::new()
            .limit(10)
            .list_by_shipping_country(&pool, "FR")
            .await
            .unwrap()),
        [mc_fr]
    );
    assert!(
        payments::PaymentQuery::new()
            .limit(10)
            .list_by_shipping_country(&pool, "DE")
            .await
            .unwrap()
            .is_empty()
    );
    // has_key is about the key, whatever its value (null included).
    assert_eq!(
        ids(payments::PaymentQuery::new()
            .limit(10)
            .list_with_key(&pool, "discount")
            .await
            .unwrap()),
        [mc_fr, bank]
    );
    assert!(
        payments::PaymentQuery::new()
            .limit(10)
            .list_with_key(&pool, "country")
            .await
            .unwrap()
            .is_empty(),
        "top level only"
    );
    // A nested miss: the key exists one level down only.
    assert!(
        payments::PaymentQuery::new()
            .limit(10)
            .list_by_method(&pool, "US")
            .await
            .unwrap()
            .is_empty()
    );
    let contained = payments::PaymentQuery::new()
        .limit(10)
        .list_containing(&pool, &json!({"shipping": {}}))
        .await
        .unwrap();
    assert_eq!(ids(contained), [visa_us, mc_fr]);
    assert!(matches!(
        payments::PaymentQuery::new()
            .limit(10)
            .list_containing(&pool, &json!(["x"]))
            .await,
        Err(Error::InvalidInput { .. })
    ));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn amount_comparisons_are_numeric_not_textual(pool: PgPool) {
    let nine = store(&pool, json!({"amount": 9})).await;
    let hundred = store(&pool, json!({"amount": 100})).await;
    let big = store(&pool, json!({"amount": 1000.5})).await;
    store(&pool, json!({"amount": "150"})).await; // a string: never a number
    store(&pool, json!({"amount": null})).await;
    store(&pool, json!({"method": "cash"})).await; // missing

    let at_least = |min: &'static str| {
        let pool = pool.clone();
        async move {
            payments::PaymentQuery::new()
                .limit(100)
                .list_amount_at_least(&pool, dec(min))
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.id)
                .collect::<Vec<_>>()
        }
    };
    // As text, "9" >= "100" and "1000.5" < "9": the numeric comparison gets both right.
    assert_eq!(at_least("100").await, [hundred, big]);
    assert_eq!(at_least("9").await, [nine, hundred, big]);
    assert_eq!(at_least("100.01").await, [big]);
    assert!(at_least("5000").await.is_empty());
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn containment_and_key_queries_use_the_gin_index(pool: PgPool) {
    sqlx::query!(
        r#"
        insert into payments (data)
        select jsonb_build_object('method', 'method-' || (i % 200), 'n', i)
               || case when i % 100 = 0 then '{"discount": 1}'::jsonb else '{}'::jsonb end
        from generate_series(1, 20000) as i
        "#
    )
    .execute(&pool)
    .await
    .unwrap();
    // A bulk insert leaves GIN entries in the index's pending list, which makes the planner shy of
    // the index until (auto)vacuum merges it; a real database has autovacuum for that.
    sqlx::query!("vacuum analyze payments")
        .execute(&pool)
        .await
        .unwrap();

    let by_method = plan(&pool, "payments", json!({"method": "method-7"})).await;
    assert!(by_method.contains("payments_data_gin_idx"), "{by_method}");
    let rows = payments::PaymentQuery::new()
        .limit(1000)
        .list_by_method(&pool, "method-7")
        .await
        .unwrap();
    assert_eq!(rows.len(), 100);
    assert_eq!(
        payments::PaymentQuery::new()
            .limit(1000)
            .list_with_key(&pool, "discount")
            .await
            .unwrap()
            .len(),
        200
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn transaction_metadata_supports_the_same_queries_and_index(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "0").await;
    let mut conn = pool.acquire().await.unwrap();
    let web =
        Movement::new(a.id, dec("10")).metadata(json!({"channel": "web", "device": {"os": "ios"}}));
    let web = transactions::deposit(&mut conn, &web).await.unwrap();
    let refund =
        Movement::new(a.id, dec("5")).metadata(json!({"channel": "branch", "refund_of": "inv-1"}));
    let refund = transactions::deposit(&mut conn, &refund).await.unwrap();

    let found = transactions::EntryQuery::new()
        .limit(10)
        .list_metadata_containing(&pool, &json!({"channel": "web"}))
        .await
        .unwrap();
    assert_eq!(found.iter().map(|e| e.id).collect::<Vec<_>>(), [web.id]);
    let nested = transactions::EntryQuery::new()
        .limit(10)
        .list_metadata_containing(&pool, &json!({"device": {"os": "ios"}}))
        .await
        .unwrap();
    assert_eq!(nested.len(), 1);
    let miss = transactions::EntryQuery::new()
        .limit(10)
        .list_metadata_containing(&pool, &json!({"device": {"os": "android"}}))
        .await
        .unwrap();
    assert!(miss.is_empty());
    let keyed = transactions::EntryQuery::new()
        .limit(10)
        .list_with_metadata_key(&pool, "refund_of")
        .await
        .unwrap();
    assert_eq!(keyed.iter().map(|e| e.id).collect::<Vec<_>>(), [refund.id]);

    sqlx::query!(
        r#"
        insert into transactions (to_account_id, amount, type, status, metadata)
        select $1, 1, 'deposit', 'completed', jsonb_build_object('channel', 'c-' || (i % 200))
        from generate_series(1, 20000) as i
        "#,
        a.id.as_uuid()
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query!("vacuum analyze transactions")
        .execute(&pool)
        .await
        .unwrap();
    let plan = plan(&pool, "transactions", json!({"channel": "c-3"})).await;
    assert!(plan.contains("transactions_metadata_gin_idx"), "{plan}");
}
