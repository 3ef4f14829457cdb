//! JSON documents: whatever PostgreSQL holds reads back (at any depth, from any client, through
//! lists, streams, dump and load), and what this crate could not read back is refused before
//! anything is written (nesting beyond `document::MAX_DEPTH`, oversized metadata); `load` refuses
//! values that a column would change (a third decimal).

use futures::TryStreamExt;
use ledger::accounts::AccountId;
use ledger::bulk::BulkOptions;
use ledger::dump::{self, Table};
use ledger::transactions::{self, BatchItem, Movement};
use ledger::{Error, document, payments};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support;

/// `{"a": {"a": ... 1}}`, `depth` objects deep.
fn nested(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!({ "a": value });
    }
    value
}

fn field_of(err: &Error) -> &'static str {
    match err {
        Error::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

async fn counts(pool: &PgPool) -> (i64, i64) {
    let row = sqlx::query!(
        r#"select (select count(*) from payments) as "payments!",
                  (select count(*) from transactions) as "entries!""#
    )
    .fetch_one(pool)
    .await
    .unwrap();
    (row.payments, row.entries)
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn documents_beyond_the_depth_limit_are_refused_on_every_write_path(pool: PgPool) {
    let deepest = nested(document::MAX_DEPTH);
    let too_deep = nested(document::MAX_DEPTH + 1);

    // At the limit: written, and read back equal.
    let stored = payments::insert_json(&pool, &deepest).await.unwrap();
    assert_eq!(stored.data, deepest);
    let found = payments::PaymentQuery::new()
        .limit(10)
        .list_containing(&pool, &json!({}))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].data, deepest);

    let mut conn = pool.acquire().await.unwrap();
    let err = payments::insert_json(&pool, &too_deep).await.unwrap_err();
    assert_eq!(field_of(&err), "data", "{err}");
    assert!(
        err.to_string().contains("nested more than 64 levels"),
        "{err}"
    );
    let documents = [json!({"ok": true}), too_deep.clone()];
    for err in [
        payments::insert_many(&mut conn, &documents, BulkOptions::default())
            .await
            .unwrap_err(),
        payments::copy_in(&mut conn, &documents).await.unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::InvalidItem { index: 1, source } if field_of(source) == "data"),
            "{err:?}"
        );
    }

    let owner = support::user(&pool, "deep@example.com", "Deep").await;
    let account = support::account_with(&pool, owner.id, support::dec("100.00"), "active").await;
    let deposit = Movement::new(account.id, support::dec("1.00")).metadata(too_deep.clone());
    let err = transactions::deposit(&mut conn, &deposit)
        .await
        .unwrap_err();
    assert_eq!(field_of(&err), "metadata", "{err}");
    let big = json!({"blob": "x".repeat(transactions::MAX_METADATA_BYTES)});
    let err = transactions::deposit(&mut conn, &deposit.clone().metadata(big))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bytes; at most 65536"), "{err}");
    let batch = [
        BatchItem::Deposit(Movement::new(account.id, support::dec("1.00"))),
        BatchItem::Deposit(deposit),
    ];
    let err = transactions::post_batch(&mut conn, &batch)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidItem { index: 1, source } if field_of(source) == "metadata"),
        "{err:?}"
    );

    assert_eq!(
        counts(&pool).await,
        (1, 0),
        "only the document at the limit"
    );
    let balance = ledger::accounts::get(&pool, account.id)
        .await
        .unwrap()
        .balance;
    assert_eq!(balance, support::dec("100.00"));
}

/// Dumps the database, edits the one transactions line with `edit`, empties the database, and
/// returns what `load` says about the edited file.
async fn load_edited(pool: &PgPool, edit: impl Fn(&mut Value)) -> Error {
    let mut text = Vec::new();
    dump::dump(pool, &Table::ALL, &mut text, &mut |_, _| {})
        .await
        .unwrap();
    let mut lines: Vec<String> = String::from_utf8(text)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(r#"{"table":"transactions""#))
        .unwrap();
    let mut record: Value = serde_json::from_str(&lines[at]).unwrap();
    edit(&mut record["row"]);
    lines[at] = record.to_string();
    let path = std::env::temp_dir().join(format!("ledger-edited-{}.ndjson", std::process::id()));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    sqlx::query!("truncate users, accounts, transactions, payments, articles, idempotency_keys")
        .execute(pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let err = dump::load(&mut conn, &path, &mut |_, _| {})
        .await
        .unwrap_err();
    std::fs::remove_file(&path).unwrap();
    let users: i64 = sqlx::query_scalar!(r#"select count(*) as "n!" from users"#)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(users, 0, "a refused load writes nothing");
    assert!(
        err.to_string().contains(&format!("line {}:", at + 1)),
        "{err}"
    );
    err
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn load_refuses_what_a_column_would_change_naming_line_table_and_column(pool: PgPool) {
    let seed = || async {
        let owner = support::user(&pool, "load@example.com", "Load").await;
        let account = support::account_with(&pool, owner.id, support::dec("0.00"), "active").await;
        let mut conn = pool.acquire().await.unwrap();
        let deposit = Movement::new(account.id, support::dec("10.00"));
        transactions::deposit(&mut conn, &deposit).await.unwrap();
    };

    seed().await;
    let err = load_edited(&pool, |row| row["amount"] = json!("1.005")).await;
    let message = err.to_string();
    assert!(
        message.contains("transactions.amount: 1.005 does not fit numeric(15,2)"),
        "{message}"
    );

    seed().await;
    let err = load_edited(&pool, |row| row["amount"] = json!("10000000000000.00")).await;
    let message = err.to_string();
    assert!(
        message.contains("transactions.amount: 10000000000000.00 does not fit numeric(15,2)"),
        "{message}"
    );

    for (key, expected) in [
        (
            "k".repeat(201),
            "transactions.idempotency_key: 201 characters do not fit varchar(200)",
        ),
        (
            "a\u{0}b".to_owned(),
            "transactions.idempotency_key: contains the character U+0000",
        ),
    ] {
        seed().await;
        let err = load_edited(&pool, |row| row["idempotency_key"] = json!(key)).await;
        assert!(err.to_string().contains(expected), "{err}");
    }
}

/// Writes, with plain SQL as any other client could, one transaction and one payment whose
/// document is `depth` objects deep; returns PostgreSQL's text of that document.
async fn store_deep_by_sql(pool: &PgPool, account: AccountId, depth: i32) -> String {
    sqlx::query!(
        r#"
        with doc as (
            select (repeat('{"a": ', $2) || '1' || repeat('}', $2))::jsonb as d
        ), entry as (
            insert into transactions (to_account_id, amount, type, status, metadata)
            select $1, 1.00, 'deposit', 'completed', d from doc
        )
        insert into payments (data) select d from doc
        "#,
        account.as_uuid(),
        depth
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query_scalar!(
        r#"select (repeat('{"a": ', $1) || '1' || repeat('}', $1))::jsonb::text as "t!""#,
        depth
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn dump_all(pool: &PgPool) -> Vec<u8> {
    let mut out = Vec::new();
    dump::dump(pool, &Table::ALL, &mut out, &mut |_, _| {})
        .await
        .unwrap();
    out
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn documents_of_any_depth_written_by_another_client_read_dump_and_load_back(pool: PgPool) {
    let owner = support::user(&pool, "nest@example.com", "Nest").await;
    let account = support::account_with(&pool, owner.id, support::dec("0.00"), "active").await;
    let mut texts = Vec::new();
    for depth in [1_000, 10_000] {
        texts.push(store_deep_by_sql(&pool, account.id, depth).await);
    }
    texts.sort();

    // Listed, one by one, streamed and in chunks: every row reads, with the stored text.
    let listed = transactions::EntryQuery::new()
        .limit(10)
        .list_for_account(&pool, account.id)
        .await
        .unwrap();
    let streamed: Vec<_> = transactions::stream_all(&pool).try_collect().await.unwrap();
    let chunked: Vec<Vec<_>> = transactions::chunks(&pool, 1).try_collect().await.unwrap();
    let payments = payments::PaymentQuery::new()
        .limit(10)
        .list_containing(&pool, &json!({}))
        .await
        .unwrap();
    let one = payments::get(&pool, payments[0].id).await.unwrap();
    assert_eq!(one, payments[0]);
    for (what, mut docs) in [
        (
            "listed",
            listed
                .iter()
                .map(|e| e.metadata.to_string())
                .collect::<Vec<_>>(),
        ),
        (
            "streamed",
            streamed.iter().map(|e| e.metadata.to_string()).collect(),
        ),
        (
            "chunks",
            chunked
                .concat()
                .iter()
                .map(|e| e.metadata.to_string())
                .collect(),
        ),
        (
            "payments",
            payments.iter().map(|p| p.data.to_string()).collect(),
        ),
    ] {
        docs.sort();
        assert!(
            docs == texts,
            "{what}: the stored documents did not read back"
        );
    }
    // The tree of a document deeper than serde_json's limit is an error, not a crash.
    let deep = &payments
        .iter()
        .max_by_key(|p| p.data.as_str().len())
        .unwrap()
        .data;
    let err = deep.to_value().unwrap_err();
    assert!(
        err.to_string().contains("recursion limit exceeded"),
        "{err}"
    );

    // Dumped, loaded into an empty database, dumped again: byte for byte the same.
    let first = dump_all(&pool).await;
    let first_text = String::from_utf8(first.clone()).unwrap();
    assert!(texts.iter().all(|t| first_text.contains(t.as_str())));
    let path = std::env::temp_dir().join(format!("ledger-deep-{}.ndjson", std::process::id()));
    std::fs::write(&path, &first).unwrap();
    sqlx::query!("truncate users, accounts, transactions, payments, articles, idempotency_keys")
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let loaded = dump::load(&mut conn, &path, &mut |_, _| {}).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded, 6, "1 user, 1 account, 2 transactions, 2 payments");
    assert!(
        dump_all(&pool).await == first,
        "the second dump differs from the first"
    );
}

/// A dump is one snapshot: rows committed while it runs (here, between the accounts table and
/// the transactions table, by another connection) are in no table of it, so it loads back.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn dump_taken_while_money_moves_is_one_snapshot_and_loads_back(pool: PgPool) {
    let owner = support::user(&pool, "snap@example.com", "Snap").await;
    let account = support::account_with(&pool, owner.id, support::dec("0.00"), "active").await;
    let mut conn = pool.acquire().await.unwrap();
    transactions::deposit(&mut conn, &Movement::new(account.id, support::dec("1.00")))
        .await
        .unwrap();
    drop(conn);

    // The write runs on a thread and runtime of its own while the dump's callback waits, after
    // the accounts table and before the transactions table.
    let options = pool.connect_options().as_ref().clone();
    let mut out = Vec::new();
    let mut wrote_during_dump = false;
    dump::dump(&pool, &Table::ALL, &mut out, &mut |table, _| {
        if table != Table::Accounts || wrote_during_dump {
            return;
        }
        wrote_during_dump = true;
        let options = options.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
                let late = ledger::accounts::open(&mut conn, owner.id, None)
                    .await
                    .unwrap();
                transactions::deposit(&mut conn, &Movement::new(late.id, support::dec("2.00")))
                    .await
                    .unwrap();
            });
        })
        .join()
        .unwrap();
    })
    .await
    .unwrap();
    assert!(wrote_during_dump);
    let accounts = support::count(&pool, support::Table::Accounts).await;
    assert_eq!(
        (accounts, counts(&pool).await.1),
        (2, 2),
        "the late write committed"
    );

    let text = String::from_utf8(out.clone()).unwrap();
    assert_eq!(
        text.matches(r#""table":"transactions""#).count(),
        1,
        "{text}"
    );
    let path = std::env::temp_dir().join(format!("ledger-snap-{}.ndjson", std::process::id()));
    std::fs::write(&path, &out).unwrap();
    sqlx::query!("truncate users, accounts, transactions, payments, articles, idempotency_keys")
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let loaded = dump::load(&mut conn, &path, &mut |_, _| {}).await;
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded.unwrap(), 3, "1 user, 1 account, 1 transaction");
}
