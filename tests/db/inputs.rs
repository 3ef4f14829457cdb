//! Input the server would refuse is refused by the crate first, as `InvalidInput` naming the
//! field: U+0000 in text, times outside PostgreSQL's range. Then, over generated strings (with
//! proptest's generators, from a fixed seed), no public text-taking call panics, returns a raw
//! `Error::Database`, or writes anything when it refuses.

use chrono::{NaiveDate, TimeZone, Utc};
use futures::TryStreamExt;
use ledger::page::Cursor;
use ledger::transactions::{self, Movement};
use ledger::users::{self, NewUser, UserFilter};
use ledger::{Error, accounts, payments};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::json;
use sqlx::PgPool;

use crate::support;

/// The field an `InvalidInput` names; panics on any other result.
fn refused_field<T: std::fmt::Debug>(result: ledger::Result<T>) -> &'static str {
    match result {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
#[allow(deprecated)] // the Vec form, tested until it is removed
async fn nul_and_out_of_range_times_are_refused_naming_the_field(pool: PgPool) {
    let nul = "a\u{0}b";
    let p = &pool;
    let owner = support::user(p, "status@example.com", "S").await;
    let account = accounts::open(p, owner.id, None).await.unwrap();
    let cases: Vec<(&str, &'static str)> = vec![
        (
            "list_by_name",
            refused_field(users::list_by_name(p, ledger::users::Visibility::Live, nul).await),
        ),
        (
            "list_name_contains",
            refused_field(users::list_name_contains(p, ledger::users::Visibility::Live, nul).await),
        ),
        (
            "list_name_starts_with",
            refused_field(
                users::list_name_starts_with(p, ledger::users::Visibility::Live, nul).await,
            ),
        ),
        (
            "find_by_email",
            refused_field(users::find_by_email(p, nul).await),
        ),
        (
            "exists_with_email",
            refused_field(users::exists_with_email(p, nul).await),
        ),
        (
            "insert email",
            refused_field(users::insert(p, &NewUser::new(nul, "Ana")).await),
        ),
        (
            "list_created_on",
            refused_field(
                users::list_created_on(
                    p,
                    ledger::users::Visibility::Live,
                    Utc::now().date_naive(),
                    nul,
                )
                .await,
            ),
        ),
        (
            "filter",
            refused_field(
                users::filter(
                    p,
                    &UserFilter {
                        name_contains: Some(nul.into()),
                        ..Default::default()
                    },
                )
                .await,
            ),
        ),
        (
            "list_by_method",
            refused_field(
                payments::PaymentQuery::new()
                    .limit(5)
                    .list_by_method(p, nul)
                    .await,
            ),
        ),
        (
            "list_by_brand",
            refused_field(
                payments::PaymentQuery::new()
                    .limit(5)
                    .list_by_brand(p, nul)
                    .await,
            ),
        ),
        (
            "list_by_shipping_country",
            refused_field(
                payments::PaymentQuery::new()
                    .limit(5)
                    .list_by_shipping_country(p, nul)
                    .await,
            ),
        ),
        (
            "list_with_key",
            refused_field(
                payments::PaymentQuery::new()
                    .limit(5)
                    .list_with_key(p, nul)
                    .await,
            ),
        ),
        (
            "list_with_metadata_key",
            refused_field(
                transactions::EntryQuery::new()
                    .limit(5)
                    .list_with_metadata_key(p, nul)
                    .await,
            ),
        ),
        (
            "monthly_revenue",
            refused_field(transactions::monthly_revenue(p, nul).await),
        ),
        (
            "open",
            refused_field(
                accounts::open(
                    p,
                    support::user(p, "o@example.com", "O").await.id,
                    Some(nul),
                )
                .await,
            ),
        ),
        (
            "list_status_in",
            refused_field(
                accounts::stream_status_in(p, &["active", nul])
                    .try_collect::<Vec<_>>()
                    .await,
            ),
        ),
        (
            "list_status_not",
            refused_field(
                accounts::stream_status_not(p, nul)
                    .try_collect::<Vec<_>>()
                    .await,
            ),
        ),
        (
            "list_balance_at_least_and_status",
            refused_field(
                accounts::stream_balance_at_least_and_status(p, rust_decimal::Decimal::ZERO, nul)
                    .try_collect::<Vec<_>>()
                    .await,
            ),
        ),
        (
            "list_balance_at_least_or_status",
            refused_field(
                accounts::stream_balance_at_least_or_status(p, rust_decimal::Decimal::ZERO, nul)
                    .try_collect::<Vec<_>>()
                    .await,
            ),
        ),
        (
            "set_status",
            refused_field(accounts::set_status(p, account.id, nul).await),
        ),
        (
            "update_status_where from",
            refused_field(accounts::update_status_where(p, nul, "expired").await),
        ),
        (
            "update_status_where to",
            refused_field(accounts::update_status_where(p, "active", nul).await),
        ),
    ];
    let expected = [
        "name",
        "fragment",
        "prefix",
        "email",
        "email",
        "email",
        "time_zone",
        "name_contains",
        "method",
        "brand",
        "country",
        "key",
        "key",
        "time_zone",
        "currency",
        "status",
        "status",
        "status",
        "status",
        "status",
        "status",
        "status",
    ];
    assert_eq!(cases.len(), expected.len());
    for ((call, field), want) in cases.iter().zip(expected) {
        assert_eq!(*field, want, "{call}");
    }
    let batch = accounts::set_statuses(p, &[(account.id, "vip"), (account.id, nul)]).await;
    match batch {
        Err(Error::InvalidItem { index: 1, source }) => {
            assert_eq!(refused_field::<()>(Err(*source)), "status");
        }
        other => panic!("expected item 1 refused, got {other:?}"),
    }
    // Nothing was written by the refused status changes (set_statuses refuses the whole batch).
    let stored = accounts::get(p, account.id).await.unwrap();
    assert_eq!(stored.status.as_str(), "active");

    let ancient = Utc.with_ymd_and_hms(-5000, 1, 1, 0, 0, 0).unwrap();
    let cursor = Cursor::after(ancient, 0);
    assert_eq!(
        refused_field(
            payments::PaymentQuery::new()
                .after(cursor)
                .limit(5)
                .list_containing(p, &json!({}))
                .await
        ),
        "cursor"
    );
    // A keyset cursor built by hand, both ways: refused before the server.
    for direction in [
        ledger::page::Direction::Next,
        ledger::page::Direction::Previous,
    ] {
        let cursor = Cursor {
            direction,
            created_at: ancient,
            id: uuid::Uuid::nil(),
        };
        assert_eq!(
            refused_field(
                ledger::users::UserQuery::new()
                    .per_page(5)
                    .keyset(p, Some(&cursor))
                    .await
            ),
            "cursor"
        );
    }
    assert_eq!(
        refused_field(transactions::top_spenders(p, "USD", i32::MAX, 5).await),
        "days"
    );
    assert!(
        transactions::top_spenders(p, "USD", transactions::MAX_DAYS, 5)
            .await
            .is_ok()
    );
    let old = NaiveDate::from_ymd_opt(-5000, 1, 1).unwrap();
    assert_eq!(
        refused_field(users::list_created_on(p, ledger::users::Visibility::Live, old, "UTC").await),
        "date"
    );
    let filter = UserFilter {
        created_on: Some(old),
        ..Default::default()
    };
    assert_eq!(refused_field(users::filter(p, &filter).await), "created_on");
}

/// `n` values of `strategy`, from a fixed seed: the same inputs on every run.
fn samples<T>(strategy: impl Strategy<Value = T>, n: usize) -> Vec<T> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// Any string, strings made of the characters that matter to SQL and PostgreSQL, and long ones.
fn strings() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 %_\\\\@.'\"\\x00\u{e9}\u{1F600}-]{0,16}",
        "[a-z\\x00]{200,400}",
    ]
}

/// Ok, or a typed refusal: never a raw database error for input the crate could refuse.
fn typed<T>(call: &str, input: &str, result: ledger::Result<T>) {
    if let Err(err @ (Error::Database(_) | Error::CheckViolation { .. })) = result {
        panic!("{call}({input:?}) reached the server as {err:?}");
    }
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
#[allow(deprecated)] // the Vec form, tested until it is removed
async fn generated_text_never_panics_reaches_the_server_raw_or_half_writes(pool: PgPool) {
    let p = &pool;
    let owner = support::user(p, "prop@example.com", "Prop").await;
    let account = support::account_with(p, owner.id, support::dec("100.00"), "active").await;
    let mut conn = pool.acquire().await.unwrap();
    let inputs = samples(strings(), 300);
    assert!(
        inputs.iter().any(|s| s.contains('\0')),
        "the samples hold U+0000"
    );
    for s in &inputs {
        typed(
            "list_by_name",
            s,
            users::list_by_name(p, ledger::users::Visibility::Live, s).await,
        );
        typed(
            "list_name_contains",
            s,
            users::list_name_contains(p, ledger::users::Visibility::Live, s).await,
        );
        typed(
            "list_name_starts_with",
            s,
            users::list_name_starts_with(p, ledger::users::Visibility::Live, s).await,
        );
        typed("find_by_email", s, users::find_by_email(p, s).await);
        typed(
            "list_created_on",
            s,
            users::list_created_on(
                p,
                ledger::users::Visibility::Live,
                Utc::now().date_naive(),
                s,
            )
            .await,
        );
        typed(
            "list_by_brand",
            s,
            payments::PaymentQuery::new()
                .limit(5)
                .list_by_brand(p, s)
                .await,
        );
        typed(
            "list_with_key",
            s,
            payments::PaymentQuery::new()
                .limit(5)
                .list_with_key(p, s)
                .await,
        );
        typed(
            "list_with_metadata_key",
            s,
            transactions::EntryQuery::new()
                .limit(5)
                .list_with_metadata_key(p, s)
                .await,
        );
        typed(
            "monthly_revenue",
            s,
            transactions::monthly_revenue(p, s).await,
        );
        typed(
            "list_status_in",
            s,
            accounts::stream_status_in(p, &[s.as_str()])
                .try_collect::<Vec<_>>()
                .await,
        );
        typed(
            "list_status_not",
            s,
            accounts::stream_status_not(p, s)
                .try_collect::<Vec<_>>()
                .await,
        );
        typed(
            "update_status_where",
            s,
            accounts::update_status_where(p, s, "active").await,
        );
        let english = ledger::articles::Language::English;
        typed(
            "search",
            s,
            ledger::articles::SearchQuery::new()
                .language(english)
                .limit(5)
                .search(p, s, 0.0)
                .await,
        );
        typed(
            "search_titles",
            s,
            ledger::articles::SearchQuery::new()
                .language(english)
                .limit(5)
                .search_titles(p, s)
                .await,
        );

        // Writes: each either writes its one row or refuses and writes nothing.
        let before = (
            support::count(p, support::Table::Users).await,
            payment_rows(p).await,
        );
        let user = users::insert(
            p,
            &NewUser::new(format!("{}@example.com", s.len()), s.clone()),
        )
        .await;
        let by_email = users::insert(p, &NewUser::new(s.clone(), "Name")).await;
        let payment = payments::insert_json(p, &json!({ "note": s, s.clone(): 1 })).await;
        let deposit = Movement::new(account.id, support::dec("0.01"))
            .metadata(json!({ "note": s }))
            .idempotency_key(s.clone());
        let moved = transactions::deposit(&mut conn, &deposit).await;
        let users_written = i64::from(user.is_ok()) + i64::from(by_email.is_ok());
        let after = (
            support::count(p, support::Table::Users).await,
            payment_rows(p).await,
        );
        assert_eq!(
            after,
            (
                before.0 + users_written,
                before.1 + i64::from(payment.is_ok())
            ),
            "{s:?}"
        );
        typed("insert", s, user);
        typed("insert email", s, by_email);
        typed("insert_json", s, payment);
        typed("deposit", s, moved);
    }
}

async fn payment_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar!(r#"select count(*) as "n!" from payments"#)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Any JSON value: bushy trees, and chains up to 80 levels deep (deeper than
/// `document::MAX_DEPTH`), with strings that may hold U+0000.
fn documents() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        strings().prop_map(Value::String),
    ];
    let bushy = leaf.clone().prop_recursive(8, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(strings(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    });
    // Chains of 1 to 80 arrays or objects around a leaf: either side of the depth limit.
    let deep = (leaf, 1usize..80, strings()).prop_map(|(mut value, levels, key)| {
        for level in 0..levels {
            value = if level % 2 == 0 {
                Value::Array(vec![value])
            } else {
                json!({ key.clone(): value })
            };
        }
        value
    });
    prop_oneof![bushy, deep]
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn generated_documents_and_amounts_are_stored_exactly_or_refused_cleanly(pool: PgPool) {
    let p = &pool;
    let owner = support::user(p, "json@example.com", "Json").await;
    let account = support::account_with(p, owner.id, support::dec("1000000.00"), "active").await;
    let other = support::account_with(p, owner.id, support::dec("0.00"), "active").await;
    let mut conn = pool.acquire().await.unwrap();

    let docs = samples(documents(), 200);
    fn depth(value: &serde_json::Value) -> usize {
        match value {
            serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let deepest = docs.iter().map(depth).max().unwrap();
    assert!(
        deepest > ledger::document::MAX_DEPTH,
        "the samples reach {deepest} levels"
    );
    for doc in &docs {
        let wrapped = json!({ "d": doc });
        let before = payment_rows(p).await;
        match payments::insert_json(p, &wrapped).await {
            // Stored: it reads back as the same tree.
            Ok(stored) => {
                assert_eq!(payment_rows(p).await, before + 1);
                let back = payments::get(p, stored.id).await.unwrap();
                assert_eq!(back.data, wrapped, "{}", back.data);
            }
            Err(err) => {
                assert_eq!(payment_rows(p).await, before, "{err}");
                typed("insert_json", &wrapped.to_string(), Err::<(), _>(err));
            }
        }
        typed(
            "list_containing",
            "",
            payments::PaymentQuery::new()
                .limit(5)
                .list_containing(p, &wrapped)
                .await,
        );
        let movement = Movement::new(account.id, support::dec("0.01")).metadata(wrapped.clone());
        typed(
            "deposit",
            "",
            transactions::deposit(&mut conn, &movement).await,
        );
        typed(
            "list_metadata_containing",
            "",
            transactions::EntryQuery::new()
                .limit(5)
                .list_metadata_containing(p, &wrapped)
                .await,
        );
    }

    // Amounts: any mantissa at any scale. Each movement applies exactly or is refused, and the
    // balances always add up.
    let amounts = samples(
        prop_oneof![(any::<i64>(), 0u32..=28), (-100i64..200_000, 0u32..=3)],
        300,
    );
    let mut applied = 0;
    let total_before = balance(p, account.id).await + balance(p, other.id).await;
    for (mantissa, scale) in amounts {
        let amount = rust_decimal::Decimal::new(mantissa, scale);
        let transfer = transactions::Transfer::new(account.id, other.id, amount);
        let before = (entry_rows(p).await, balance(p, account.id).await);
        match transactions::transfer(&mut conn, &transfer).await {
            Ok(entry) => {
                applied += 1;
                assert_eq!(entry.amount, amount);
                assert_eq!(balance(p, account.id).await, before.1 - amount);
            }
            Err(err) => {
                assert!(
                    matches!(
                        err,
                        Error::InvalidInput {
                            field: "amount",
                            ..
                        } | Error::InsufficientFunds { .. }
                    ),
                    "{amount}: {err:?}"
                );
                assert_eq!((entry_rows(p).await, balance(p, account.id).await), before);
            }
        }
        typed(
            "list_amount_at_least",
            "",
            payments::PaymentQuery::new()
                .limit(5)
                .list_amount_at_least(p, amount)
                .await,
        );
        typed(
            "list_with_balance_over",
            "",
            users::list_with_balance_over(p, ledger::users::Visibility::Live, amount).await,
        );
    }
    assert!(applied > 0, "some generated transfers apply");
    let total_after = balance(p, account.id).await + balance(p, other.id).await;
    assert_eq!(
        total_after, total_before,
        "transfers move money, never make or lose it"
    );
}

async fn balance(pool: &PgPool, id: ledger::accounts::AccountId) -> rust_decimal::Decimal {
    accounts::get(pool, id).await.unwrap().balance
}

async fn entry_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar!(r#"select count(*) as "n!" from transactions"#)
        .fetch_one(pool)
        .await
        .unwrap()
}
