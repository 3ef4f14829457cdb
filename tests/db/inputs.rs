//! Input the server would refuse is refused by the crate first, as `InvalidInput` naming the
//! field: U+0000 in text, times outside PostgreSQL's range. Then, over generated strings (with
//! proptest's generators, from a fixed seed), no public text-taking call panics, returns a raw
//! `Error::Database`, or writes anything when it refuses.

use chrono::{NaiveDate, TimeZone, Utc};
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
async fn nul_and_out_of_range_times_are_refused_naming_the_field(pool: PgPool) {
    let nul = "a\u{0}b";
    let p = &pool;
    let cases: Vec<(&str, &'static str)> = vec![
        (
            "list_by_name",
            refused_field(users::list_by_name(p, nul).await),
        ),
        (
            "list_name_contains",
            refused_field(users::list_name_contains(p, nul).await),
        ),
        (
            "list_name_starts_with",
            refused_field(users::list_name_starts_with(p, nul).await),
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
            refused_field(users::list_created_on(p, Utc::now().date_naive(), nul).await),
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
            refused_field(payments::list_by_method(p, nul, None, 5).await),
        ),
        (
            "list_by_brand",
            refused_field(payments::list_by_brand(p, nul, None, 5).await),
        ),
        (
            "list_by_shipping_country",
            refused_field(payments::list_by_shipping_country(p, nul, None, 5).await),
        ),
        (
            "list_with_key",
            refused_field(payments::list_with_key(p, nul, None, 5).await),
        ),
        (
            "list_with_metadata_key",
            refused_field(transactions::list_with_metadata_key(p, nul, None, 5).await),
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
    ];
    for ((call, field), want) in cases.iter().zip(expected) {
        assert_eq!(*field, want, "{call}");
    }

    let ancient = Utc.with_ymd_and_hms(-5000, 1, 1, 0, 0, 0).unwrap();
    let cursor = Cursor::after(ancient, uuid::Uuid::nil());
    assert_eq!(
        refused_field(payments::list_containing(p, &json!({}), Some(&cursor), 5).await),
        "cursor"
    );
    assert_eq!(
        refused_field(transactions::top_spenders(p, i32::MAX, 5).await),
        "days"
    );
    assert!(
        transactions::top_spenders(p, transactions::MAX_DAYS, 5)
            .await
            .is_ok()
    );
    let old = NaiveDate::from_ymd_opt(-5000, 1, 1).unwrap();
    assert_eq!(
        refused_field(users::list_created_on(p, old, "UTC").await),
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
        typed("list_by_name", s, users::list_by_name(p, s).await);
        typed(
            "list_name_contains",
            s,
            users::list_name_contains(p, s).await,
        );
        typed(
            "list_name_starts_with",
            s,
            users::list_name_starts_with(p, s).await,
        );
        typed("find_by_email", s, users::find_by_email(p, s).await);
        typed(
            "list_created_on",
            s,
            users::list_created_on(p, Utc::now().date_naive(), s).await,
        );
        typed(
            "list_by_brand",
            s,
            payments::list_by_brand(p, s, None, 5).await,
        );
        typed(
            "list_with_key",
            s,
            payments::list_with_key(p, s, None, 5).await,
        );
        typed(
            "list_with_metadata_key",
            s,
            transactions::list_with_metadata_key(p, s, None, 5).await,
        );
        typed(
            "monthly_revenue",
            s,
            transactions::monthly_revenue(p, s).await,
        );
        let english = ledger::articles::Language::English;
        typed(
            "search",
            s,
            ledger::articles::search(p, s, english, 0.0, None, 5).await,
        );
        typed(
            "search_titles",
            s,
            ledger::articles::search_titles(p, s, english, None, 5).await,
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
