//! Plan checks: the hot queries, exactly as the crate sends them (their text is read from the
//! committed `.sqlx/`), are `EXPLAIN`ed with realistic parameters on realistic volumes: 100,000
//! users (5 % soft-deleted), 100,000 accounts, 100,000 ledger entries over a year, 20,000
//! payments and 20,000 articles, analyzed. A case fails on a sequential scan of a table it does
//! not name as read whole, on a sort where it expects an index to give the order, and on an
//! expected index that the plan does not use. Each function's doc comment states the same plan
//! shape under "Plan".

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use ledger::Decimal;
use ledger::accounts::AccountId;
use ledger::transactions::EntryId;
use ledger::users::UserId;
use serde_json::{Value, json};
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, PgPool, Row};
use uuid::Uuid;

/// Ids the parameters refer to, read from the fixture.
struct Fixture {
    user: UserId,
    account: AccountId,
    accounts: Vec<AccountId>,
    entry_at: DateTime<Utc>,
    entry: EntryId,
    user_at: DateTime<Utc>,
}

/// One hot query and the plan it must have.
struct Case {
    /// The function that sends it.
    function: &'static str,
    /// A fragment of its SQL (whitespace collapsed) found in exactly one `.sqlx/` query.
    marker: &'static str,
    args: fn(&Fixture) -> PgArguments,
    /// Indexes the plan must use.
    indexes: &'static [&'static str],
    /// Tables it may read whole.
    seq_scan_ok: &'static [&'static str],
    /// Whether a sort is fine (a few rows of one owner), or the order must come from an index.
    sort_ok: bool,
}

macro_rules! bind {
    ($($value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut a = PgArguments::default();
        $(a.add($value).expect("bind");)*
        a
    }};
}

const NONE_TS: Option<DateTime<Utc>> = None;
const NONE_UUID: Option<Uuid> = None;
const NONE_SERIAL: Option<i64> = None;
const NONE_TEXT: Option<String> = None;

fn cases() -> Vec<Case> {
    vec![
        Case {
            function: "users::get",
            marker: "select id, email, name, created_at, deleted_at from users where id = $1",
            args: |f| bind![f.user],
            indexes: &["users_pkey"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            function: "users::find_by_email",
            marker: "select id, email, name, created_at, deleted_at from users where email = $1",
            args: |_| bind!["u4242@plan.example"],
            indexes: &["users_email_key"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            function: "users::list_by_name",
            marker: "where name = $1 and ($2::bool or deleted_at is null) order by name, id",
            args: |_| bind!["User 0042", false],
            indexes: &["users_live_name_id_idx|users_live_name_pattern_idx"],
            seq_scan_ok: &[],
            // The 20 users of one name, fetched by the index and sorted.
            sort_ok: true,
        },
        Case {
            function: "users::list_name_starts_with",
            marker: "where name like $1 escape '\\' and ($2::bool or deleted_at is null) order by",
            args: |_| bind!["User 004%", false],
            indexes: &["users_live_name_pattern_idx"],
            seq_scan_ok: &[],
            // The users of one prefix, fetched by the pattern index and sorted by collation.
            sort_ok: true,
        },
        Case {
            function: "users::list_created_on",
            marker: "where created_at >= $1::date::timestamp at time zone $2",
            args: |f| bind![f.user_at.date_naive(), "UTC", false],
            indexes: &["users_live_created_at_id_idx"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            // `explain declare` plans as the cursor does, for the first rows fast.
            function: "users::stream_active",
            marker: "declare ledger_users_active no scroll cursor for",
            args: |_| bind![],
            indexes: &["users_live_created_at_id_idx"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            function: "UserQuery::keyset (newest first)",
            marker: "deleted_at is null) and (created_at, id) < ($1, $2) order by created_at desc",
            args: |f| bind![f.user_at, f.user, 20_i64, false],
            indexes: &["users_live_created_at_id_idx"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            function: "UserQuery::keyset (oldest first)",
            marker: "deleted_at is null) and (created_at, id) > ($1, $2) order by created_at, id",
            args: |f| bind![f.user_at, f.user, 20_i64, false],
            indexes: &["users_live_created_at_id_idx"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            function: "UserQuery::slice (newest first)",
            marker: "deleted_at is null) order by created_at desc, id desc limit $1 offset $2",
            args: |_| bind![20_i64, 200_i64, false],
            indexes: &["users_live_created_at_id_idx"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            function: "UserQuery::slice (oldest first)",
            marker: "deleted_at is null) order by created_at, id limit $1 offset $2",
            args: |_| bind![20_i64, 200_i64, false],
            indexes: &["users_live_created_at_id_idx"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            function: "users::filter (name, first page)",
            marker: "($1::text is null or name = $1) and ($2::text is null or name ilike $2",
            args: |_| {
                bind![
                    Some("User 0042"),
                    NONE_TEXT,
                    NONE_TEXT,
                    None::<NaiveDate>,
                    "UTC",
                    false,
                    20_i64,
                    NONE_TEXT,
                    NONE_UUID,
                ]
            },
            indexes: &["users_live_name_id_idx|users_live_name_pattern_idx"],
            seq_scan_ok: &[],
            // As `list_by_name`: a top-20 sort of the users of one name.
            sort_ok: true,
        },
        Case {
            function: "accounts::get",
            marker: "select id, user_id, balance, currency, status from accounts where id = $1",
            args: |f| bind![f.account],
            indexes: &["accounts_pkey"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            function: "accounts::list_for_user",
            marker: "from accounts where user_id = $1 order by currency, id",
            args: |f| bind![f.user],
            indexes: &["accounts_user_id_idx"],
            seq_scan_ok: &[],
            sort_ok: true,
        },
        Case {
            function: "accounts::stream_balance_at_least (and the deprecated list form)",
            marker: "declare ledger_accounts_at_least no scroll cursor for",
            args: |_| bind![Decimal::new(999_000, 2)],
            indexes: &["accounts_balance_idx"],
            seq_scan_ok: &[],
            sort_ok: true,
        },
        Case {
            function: "transactions::deposit / transfer (the lock)",
            marker: "from accounts where id = any($1) order by id for update",
            args: |f| bind![f.accounts.clone()],
            indexes: &["accounts_pkey"],
            seq_scan_ok: &[],
            sort_ok: true,
        },
        Case {
            function: "transactions::get",
            marker: "from transactions where id = $1",
            args: |f| bind![f.entry],
            indexes: &["transactions_pkey"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            function: "transactions::EntryQuery::list_for_account",
            marker: "select * from transactions where from_account_id = $1 union all",
            args: |f| bind![f.account, 20_i64, NONE_TS, NONE_UUID],
            indexes: &[
                "transactions_from_account_id_created_at_idx",
                "transactions_to_account_id_created_at_idx",
            ],
            seq_scan_ok: &[],
            sort_ok: true,
        },
        Case {
            function: "transactions::stream_all page / chunks",
            marker: "from transactions where (created_at, id) > ($1, $2) order by created_at, id limit $3",
            args: |f| bind![f.entry_at, f.entry, 1000_i64],
            indexes: &["transactions_created_at_id_idx"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            function: "transactions::EntryQuery::list_with_accounts",
            marker: "from transactions t left join accounts f on f.id = t.from_account_id",
            args: |_| bind![20_i64, NONE_TS, NONE_UUID],
            indexes: &["transactions_created_at_id_idx", "accounts_pkey"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
        Case {
            function: "transactions::EntryQuery::list_metadata_containing",
            marker: "from transactions where metadata @> $1 and (created_at, id) <",
            args: |_| bind![json!({"source": "src7"}), 20_i64, NONE_TS, NONE_UUID],
            // PostgreSQL keeps no statistics for `@>`: it estimates 0.1 % of rows match and,
            // for one page, walks the ledger in time order checking each entry rather than
            // read every match through the GIN index and sort. Either is an index plan; the
            // walk reads far more rows when matches are rarer than 1 in 1,000.
            indexes: &["transactions_metadata_gin_idx|transactions_created_at_id_idx"],
            seq_scan_ok: &[],
            sort_ok: true,
        },
        Case {
            function: "transactions::top_spenders (7 days)",
            marker: "where t.created_at > coalesce($3::timestamptz, now()) - make_interval(",
            args: |_| bind![7_i32, 10_i64, NONE_TS, Some("USD")],
            indexes: &["transactions_created_at_id_idx"],
            // The week is read by index (about 450 transfers); at 100,000 accounts and the
            // default random_page_cost the planner hashes accounts rather than probe its key
            // 450 times. Both plans are linear in the window, not in the ledger.
            seq_scan_ok: &["accounts"],
            sort_ok: true,
        },
        Case {
            function: "transactions::reconcile",
            marker: "coalesce((select sum(t.amount) from transactions t where t.to_account_id = a.id",
            args: |_| bind![],
            indexes: &[
                "transactions_from_account_id_created_at_idx",
                "transactions_to_account_id_created_at_idx",
            ],
            seq_scan_ok: &["accounts"],
            sort_ok: true,
        },
        Case {
            function: "transactions idempotency replay",
            marker: "from idempotency_keys k cross join lateral unnest(k.entry_ids)",
            args: |_| bind!["key-7"],
            indexes: &["idempotency_keys_pkey", "transactions_pkey"],
            seq_scan_ok: &[],
            sort_ok: true,
        },
        Case {
            function: "payments::PaymentQuery::list_containing",
            marker: "from payments where data @> $1 and (created_at, id) >",
            args: |_| {
                bind![
                    json!({"shipping": {"country": "IS"}}),
                    20_i64,
                    NONE_TS,
                    NONE_SERIAL
                ]
            },
            indexes: &["payments_data_gin_idx"],
            seq_scan_ok: &[],
            sort_ok: true,
        },
        Case {
            function: "payments::PaymentQuery::list_with_key",
            marker: "from payments where data ? $1 and (created_at, id) >",
            args: |_| bind!["gift", 20_i64, NONE_TS, NONE_SERIAL],
            indexes: &["payments_data_gin_idx"],
            seq_scan_ok: &[],
            sort_ok: true,
        },
        Case {
            function: "articles::SearchQuery::search",
            marker: "select hit.id as",
            args: |_| bind!["topic7", "english", 0.0_f32, 20_i64, NONE_SERIAL],
            indexes: &["articles_search_gin_idx"],
            seq_scan_ok: &[],
            sort_ok: true,
        },
        Case {
            function: "articles::SearchQuery::search_titles",
            marker: "select a.id, a.title, a.created_at from articles a, websearch_to_tsquery(",
            args: |_| bind!["topic7", "english", 20_i64, NONE_SERIAL],
            indexes: &["articles_search_gin_idx"],
            seq_scan_ok: &[],
            sort_ok: true,
        },
        Case {
            function: "articles::ArticleQuery::list_summaries",
            marker: "select id, title, created_at from articles where (created_at, id) <",
            args: |_| bind![20_i64, NONE_TS, NONE_SERIAL],
            indexes: &["articles_created_at_id_idx"],
            seq_scan_ok: &[],
            sort_ok: false,
        },
    ]
}

/// Every node of a JSON plan: (node type, relation, index).
fn nodes(plan: &Value, out: &mut Vec<(String, String, String)>) {
    let text = |key: &str| plan[key].as_str().unwrap_or_default().to_owned();
    out.push((text("Node Type"), text("Relation Name"), text("Index Name")));
    for child in plan["Plans"].as_array().into_iter().flatten() {
        nodes(child, out);
    }
}

const FIXTURE: &str = r#"
insert into users (email, name, created_at, deleted_at)
select 'u' || i || '@plan.example', 'User ' || lpad((i % 5000)::text, 4, '0'),
       timestamptz '2024-01-01' + i * interval '10 minutes',
       case when i % 20 = 0 then timestamptz '2026-01-01' end
from generate_series(1, 100000) as i;

insert into accounts (user_id, balance, status)
select id, ((n * 7919) % 1000000) / 100.0, case when n % 20 = 0 then 'frozen' else 'active' end
from (select id, row_number() over (order by created_at) as n from users) as u;

with a as (select id, row_number() over (order by id) as n from accounts)
insert into transactions (from_account_id, to_account_id, amount, type, status, metadata, created_at)
select case when i % 2 = 0 then f.id end, t.id, 1 + (i % 500),
       case when i % 2 = 0 then 'transfer' else 'deposit' end,
       case when i % 10 = 0 then 'pending' else 'completed' end,
       jsonb_build_object('source', 'src' || (i % 1000), 'channel',
                          case when i % 3 = 0 then 'web' else 'app' end),
       now() - i * interval '5 minutes'
from generate_series(1, 100000) as i
join a as f on f.n = (i % 100000) + 1
join a as t on t.n = ((i * 7 + 1) % 100000) + 1;

insert into idempotency_keys (key, entry_ids)
select 'key-' || n, array[id]
from (select id, row_number() over (order by id) as n from transactions limit 1000) as e;

insert into payments (data, created_at)
select jsonb_build_object(
           'method', (array['card', 'paypal', 'bank', 'cash'])[1 + i % 4],
           'amount', i % 1000,
           'shipping', jsonb_build_object('country', case when i % 500 = 0 then 'IS'
               else (array['US', 'FR', 'DE', 'JP'])[1 + i % 4] end)
       ) || case when i % 1000 = 0 then '{"gift": true}'::jsonb else '{}'::jsonb end,
       now() - i * interval '1 hour'
from generate_series(1, 20000) as i;

insert into articles (title, content, created_at)
select 'Article ' || i, 'filler text about topic' || (i % 500) || ' and more words',
       now() - i * interval '1 hour'
from generate_series(1, 20000) as i;
"#;

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn plans_of_the_hot_queries_use_their_indexes_on_realistic_volumes(pool: PgPool) {
    sqlx::raw_sql(FIXTURE).execute(&pool).await.unwrap();
    sqlx::query!(
        "vacuum analyze users, accounts, transactions, idempotency_keys, payments, articles"
    )
    .execute(&pool)
    .await
    .unwrap();
    let fixture = fixture(&pool).await;
    let queries = crate::support::offline_queries();
    let mut failures = Vec::new();
    for case in cases() {
        let found: Vec<&String> = queries.iter().filter(|q| q.contains(case.marker)).collect();
        assert_eq!(
            found.len(),
            1,
            "{}: the marker {:?} must name exactly one query",
            case.function,
            case.marker
        );
        let sql = format!("explain (format json) {}", found[0]);
        let row = sqlx::query_with(sqlx::AssertSqlSafe(sql), (case.args)(&fixture))
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.function));
        let plan: Value = row.get(0);
        let mut all = Vec::new();
        nodes(&plan[0]["Plan"], &mut all);
        let used: BTreeSet<&str> = all.iter().map(|(_, _, i)| i.as_str()).collect();
        let mut problems = Vec::new();
        for (kind, relation, _) in &all {
            if kind == "Seq Scan" && !case.seq_scan_ok.contains(&relation.as_str()) {
                problems.push(format!("a sequential scan of {relation}"));
            }
            if !case.sort_ok && kind.ends_with("Sort") {
                problems.push(format!("a {kind} where an index should give the order"));
            }
        }
        for wanted in case.indexes {
            // `a|b`: either index serves.
            if !wanted.split('|').any(|index| used.contains(index)) {
                problems.push(format!("{wanted} unused"));
            }
        }
        if !problems.is_empty() {
            let shape: Vec<String> = all
                .iter()
                .map(|(k, r, i)| format!("{k} {r} {i}").trim().to_owned())
                .collect();
            failures.push(format!(
                "{}: {}\n    plan: {}",
                case.function,
                problems.join("; "),
                shape.join(" > ")
            ));
        }
    }
    failures.extend(ledger_post_problems(&pool, &fixture).await);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The statements inside `ledger_post` (migration 0015), every movement's lock, check and
/// writes, planned as PostgreSQL plans them there: each `p_` argument is a bind parameter. Each
/// must read `accounts` (and write `transactions`) by primary key, with no sequential scan.
async fn ledger_post_problems(pool: &PgPool, fixture: &Fixture) -> Vec<String> {
    let migration = include_str!("../../migrations/0015_post_function.up.sql");
    let body = migration
        .split_once("\nbegin\n")
        .and_then(|(_, rest)| rest.split_once("\nend\n$$"))
        .expect("ledger_post's body")
        .0;
    // Longest names first: `p_to` is a prefix of nothing, but `p_type` must not become `$3ype`.
    let parameters = [
        ("p_credit_limit", "$9"),
        ("p_metadata", "$7"),
        ("p_amount", "$4"),
        ("p_status", "$6"),
        ("p_entry", "$1"),
        ("p_from", "$2"),
        ("p_type", "$5"),
        ("p_key", "$8"),
        ("p_to", "$3"),
    ];
    let mut problems = Vec::new();
    let mut planned = 0;
    let code: String = body
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    for statement in code.split(';') {
        let mut sql = statement.split_whitespace().collect::<Vec<_>>().join(" ");
        for (prefix, replacement) in [("if v_passed then", ""), ("return query", "")] {
            if let Some(rest) = sql.strip_prefix(prefix) {
                sql = format!("{replacement}{rest}").trim().to_owned();
            }
        }
        if let Some(rest) = sql.strip_prefix("perform") {
            sql = format!("select{rest}");
        }
        if !(sql.starts_with("select") || sql.starts_with("update") || sql.starts_with("insert")) {
            continue;
        }
        sql = sql
            .replace(" into v_passed", "")
            .replace(" into v_created_at, v_metadata", "")
            .replace("v_created_at", "null::timestamptz")
            .replace("v_metadata", "null::jsonb");
        for (name, number) in parameters {
            sql = sql.replace(name, number);
        }
        let mut args = PgArguments::default();
        args.add(Uuid::new_v4()).unwrap();
        args.add(fixture.accounts[0]).unwrap();
        args.add(fixture.accounts[1]).unwrap();
        args.add(Decimal::ONE).unwrap();
        args.add("transfer").unwrap();
        args.add("completed").unwrap();
        args.add(json!({})).unwrap();
        args.add(None::<String>).unwrap();
        args.add(Decimal::from(10_000_000_000_000_i64)).unwrap();
        let explain = format!("explain (format json) {sql}");
        let row = sqlx::query_with(sqlx::AssertSqlSafe(explain), args)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("ledger_post: {sql}: {e}"));
        planned += 1;
        let plan: Value = row.get(0);
        let mut all = Vec::new();
        nodes(&plan[0]["Plan"], &mut all);
        let scans_seq = all.iter().any(|(kind, _, _)| kind == "Seq Scan");
        let reads_accounts = sql.contains("accounts");
        let by_key = all.iter().any(|(_, _, index)| index == "accounts_pkey");
        if scans_seq || (reads_accounts && !sql.starts_with("insert") && !by_key) {
            problems.push(format!("ledger_post: {sql}\n    plan: {all:?}"));
        }
    }
    // The lock, the check, two updates, the insert and the rows returned.
    assert_eq!(planned, 6, "the statements of ledger_post");
    problems
}

async fn fixture(pool: &PgPool) -> Fixture {
    let user = sqlx::query!(
        "select id, created_at from users where deleted_at is null and name = 'User 0042' \
         order by created_at limit 1"
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let accounts = sqlx::query_scalar!("select id from accounts order by id limit 2")
        .fetch_all(pool)
        .await
        .unwrap();
    let account = sqlx::query_scalar!(
        "select id from accounts where user_id = $1",
        user.id.as_uuid()
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let entry = sqlx::query!(
        "select id, created_at from transactions order by created_at, id offset 50000 limit 1"
    )
    .fetch_one(pool)
    .await
    .unwrap();
    Fixture {
        user: user.id,
        account,
        accounts,
        entry_at: entry.created_at,
        entry: entry.id,
        user_at: user.created_at,
    }
}
