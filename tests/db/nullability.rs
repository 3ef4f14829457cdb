//! Nullability contracts. The query macros infer a column's nullability from the catalog, and an
//! outer join, an aggregate or a window can produce a NULL where the catalog says none, or the
//! `!` and `?` overrides may claim otherwise. So every such query of the crate is listed here,
//! with the test that forces its NULL case (an empty table, a missing join side, an account with
//! no entries, a partition of one row) and decodes the row. A new query of that kind that is not
//! listed fails [`every_outer_join_aggregate_and_window_query_has_a_null_case_test`].

use futures::TryStreamExt;
use ledger::replica::{Fallback, Route, Router};
use ledger::transactions::{self, Movement, Transfer};
use ledger::users;
use ledger::{Decimal, accounts};
use sqlx::PgPool;

use crate::money::funded;
use crate::support::{self, dec};

/// Query (a fragment of its SQL, whitespace collapsed) → the test that forces its NULL case.
const CONTRACTS: &[(&str, &str)] = &[
    (
        "coalesce(sum(amount), 0.00) as \"total!: Numeric\" from transactions where status",
        "reports::aggregates_of_an_empty_ledger_are_zero_not_null",
    ),
    (
        "round(avg(amount), 2) as average",
        "reports::aggregates_of_an_empty_ledger_are_zero_not_null",
    ),
    (
        "sum(amount) as \"total!\", count(*) as \"count!\" from transactions group by 1",
        "reports::aggregates_of_an_empty_ledger_are_zero_not_null",
    ),
    (
        "from transactions t left join accounts fa on fa.id = t.from_account_id",
        "reports::money_sums_never_add_currencies_and_count_applied_movements_only",
    ),
    (
        "from transactions t left join accounts f",
        "reports::select_related_keeps_deposits_and_withdrawals_with_their_missing_side",
    ),
    (
        "select * from transactions where from_account_id = $1 union all",
        "nullability::null_cases_decode_through_every_function",
    ),
    (
        "sum(t.amount) as \"total_spent!\"",
        "nullability::null_cases_decode_through_every_function",
    ),
    (
        "coalesce((select sum(t.amount) from transactions t where t.to_account_id = a.id",
        "nullability::null_cases_decode_through_every_function",
    ),
    (
        "rank() over (partition by a.currency order by a.balance desc)",
        "nullability::null_cases_decode_through_every_function",
    ),
    (
        "sum(t.amount) over ( partition by a.user_id",
        "nullability::null_cases_decode_through_every_function",
    ),
    (
        "select count(*) as \"count!\" from users where deleted_at is null",
        "nullability::null_cases_decode_through_every_function",
    ),
    (
        "left join pg_stats s on s.schemaname = current_schema()",
        "users::a_paginator_counts_once_exactly_or_by_estimate",
    ),
    (
        "with gone as ( delete from users where id = $1 and not exists",
        "users::hard_delete_is_protected_while_the_user_owns_accounts",
    ),
    (
        "select count(*) as \"count!\" from users where ($1::bool or deleted_at is null)",
        "users::every_listing_shows_soft_deleted_users_when_asked_for_all",
    ),
    (
        "select setval(pg_get_serial_sequence(",
        "nullability::a_load_moves_the_identity_sequences_past_the_loaded_ids",
    ),
    (
        "select pg_is_in_recovery() as \"standby!\"",
        "nullability::null_cases_decode_through_every_function",
    ),
    (
        "select current_schema() as \"schema!\", (select pg_get_userbyid(relowner)",
        "nullability::grants_on_a_database_without_ledgers_tables_are_a_typed_refusal",
    ),
];

/// The tests' own counting queries, which decode `count(*)` into `i64` with `!`, and the
/// benches' own checks (a `coalesce`d sum is never NULL).
const TEST_CODE: &[&str] = &[
    "select count(*) as \"n!\" from",
    "select coalesce(sum(balance), 0) as \"total!\" from accounts",
    "select count(distinct xmin::text) as \"n!\" from",
    "select (select count(*) from",
    "from pg_stat_activity",
    "left join pg_attrdef d on d.adrelid = a.attrelid",
];

/// Whether the query can make a NULL its columns' catalog entries do not show.
fn can_invent_null(sql: &str) -> bool {
    let sql = sql.to_lowercase();
    let starts_select =
        sql.starts_with("select") || sql.starts_with("with") || sql.contains(" returning ");
    let risky = [
        "left join",
        " over (",
        "sum(",
        "avg(",
        "min(",
        "max(",
        "count(",
        "union",
    ]
    .iter()
    .any(|k| sql.contains(k));
    starts_select && risky
}

#[test]
fn every_outer_join_aggregate_and_window_query_has_a_null_case_test() {
    let sources: String = ["reports.rs", "users.rs", "nullability.rs"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(format!("{}/tests/db/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        })
        .collect();
    for (_, test) in CONTRACTS {
        let name = test.rsplit("::").next().unwrap();
        assert!(
            sources.contains(&format!("async fn {name}(")),
            "the contract names a test that does not exist: {test}"
        );
    }
    let mut unclaimed = Vec::new();
    for sql in support::offline_queries()
        .iter()
        .filter(|q| can_invent_null(q))
    {
        let claimed = CONTRACTS.iter().any(|(marker, _)| sql.contains(marker))
            || TEST_CODE.iter().any(|marker| sql.contains(marker));
        if !claimed {
            unclaimed.push(sql.chars().take(160).collect::<String>());
        }
    }
    assert!(
        unclaimed.is_empty(),
        "queries with an outer join, an aggregate, a window or a union that no nullability \
         contract names:\n{}",
        unclaimed.join("\n")
    );
}

/// Each NULL case that the older tests do not already force, decoded through the public
/// function that runs the query.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn null_cases_decode_through_every_function(pool: PgPool) {
    // Empty tables: a count of nothing, ranks and running totals of nothing, no spenders.
    assert_eq!(users::count_active(&pool).await.unwrap(), 0);
    assert!(
        accounts::stream_rank_by_balance(&pool)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        transactions::stream_running_totals(&pool)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        transactions::top_spenders(&pool, "USD", 30, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // An account with a balance and no entries: both correlated sums are NULL, coalesced.
    let owner = support::user(&pool, "null@example.com", "Null").await;
    let lone = support::account_with(&pool, owner.id, dec("5.00"), "active").await;
    let off = transactions::reconcile(&pool).await.unwrap();
    assert_eq!(off.len(), 1);
    assert_eq!((off[0].account_id, off[0].balance), (lone.id, dec("5.00")));
    assert_eq!(
        off[0].expected.to_string(),
        "0.00",
        "scale kept through coalesce"
    );

    // A deposit (no debit side) and a withdrawal (no credit side) through the union listing.
    let a = funded(&pool, "a@example.com", "USD", "50").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let mut conn = pool.acquire().await.unwrap();
    transactions::transfer(&mut conn, &Transfer::new(a.id, b.id, dec("20")))
        .await
        .unwrap();
    transactions::withdraw(&mut conn, &Movement::new(b.id, dec("5")))
        .await
        .unwrap();
    let history = transactions::EntryQuery::new()
        .limit(10)
        .list_for_account(&pool, b.id)
        .await
        .unwrap();
    let sides: Vec<(bool, bool)> = history
        .iter()
        .map(|e| (e.from_account_id.is_some(), e.to_account_id.is_some()))
        .collect();
    assert_eq!(
        sides,
        [(true, false), (true, true)],
        "withdrawal, then transfer"
    );
    let funding = transactions::EntryQuery::new()
        .limit(10)
        .list_for_account(&pool, a.id)
        .await
        .unwrap();
    assert!(
        funding.iter().any(|e| e.from_account_id.is_none()),
        "the deposit"
    );

    // Partitions of one row: a and b were each debited once.
    let totals = transactions::stream_running_totals(&pool)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(totals.len(), 2);
    assert!(
        totals.iter().all(|t| t.running_total == t.amount),
        "{totals:?}"
    );
    let spenders = transactions::top_spenders(&pool, "USD", 30, 10)
        .await
        .unwrap();
    assert!(spenders.iter().all(|s| s.total_spent > Decimal::ZERO));
    assert!(
        !spenders.iter().any(|s| s.user_id == owner.id),
        "no outgoing money"
    );
    let ranks = accounts::stream_rank_by_balance(&pool)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(ranks.len(), 3);
    assert_eq!(ranks[0].rank, 1);

    // The replica health check on a primary: no receive position, no replay time (NULL lag);
    // it decodes and the primary is refused as a replica.
    let router = Router::new(pool.clone()).with_reader(pool.clone());
    let read = router.read().await.unwrap();
    assert_eq!(read.route(), Route::Writer(Fallback::Unavailable));
}

/// `dump::load` sets the payments' and articles' identity sequences from `max(id)`, which is NULL
/// for a table the file leaves empty: the sequence then stays at 1, and otherwise moves past the
/// largest loaded id, so the next insert never collides with a loaded row.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_load_moves_the_identity_sequences_past_the_loaded_ids(pool: PgPool) {
    let file = std::env::temp_dir().join(format!("ledger-seq-{}.ndjson", std::process::id()));
    let at = "2026-01-01T00:00:00.000001Z";
    std::fs::write(
        &file,
        format!(
            "{{\"table\":\"payments\",\"row\":{{\"id\":5,\"data\":{{}},\"created_at\":\"{at}\"}}}}\n\
             {{\"table\":\"payments\",\"row\":{{\"id\":41,\"data\":{{\"a\":1}},\"created_at\":\"{at}\"}}}}\n\
             {{\"end\":{{\"records\":2}}}}\n"
        ),
    )
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let loaded = ledger::dump::load(&mut conn, &file, &mut |_, _| {}).await;
    std::fs::remove_file(&file).unwrap();
    assert_eq!(loaded.unwrap(), 2);

    let payment = ledger::payments::insert_json(&pool, &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(payment.id.get(), 42);
    // No article was loaded: max(id) is NULL and the sequence still starts at 1.
    let article =
        ledger::articles::insert(&pool, &ledger::articles::NewArticle::new("First", "body"))
            .await
            .unwrap();
    assert_eq!(article.id.get(), 1);
}

/// `grants::plan`'s catalog query on a database with no ledger table: the owner subquery is
/// NULL (`owner?`), the counts and arrays are not, and the plan is refused, typed.
#[sqlx::test(migrations = false)]
async fn grants_on_a_database_without_ledgers_tables_are_a_typed_refusal(pool: PgPool) {
    let roles = ledger::grants::Roles {
        service: Some("svc"),
        read_only: None,
    };
    let refused = ledger::grants::plan(&pool, &roles).await.unwrap_err();
    assert!(
        matches!(
            refused,
            ledger::Error::InvalidInput {
                field: "database",
                ..
            }
        ),
        "{refused:?}"
    );
}
