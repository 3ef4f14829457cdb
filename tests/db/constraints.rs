//! Every named constraint, provoked, surfaces as its typed error carrying its name.
//!
//! The writes here bypass the crate's own validation on purpose (raw `query!`), so that the
//! database's last line of defence is what is tested.

use ledger::ids::{AccountId, EntryId, UserId};
use ledger::{Error, accounts, articles, payments, transactions, users};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

async fn insert_user(pool: &PgPool, email: &str) -> Result<UserId, Error> {
    Ok(sqlx::query_scalar!(
        "insert into users (email, name) values ($1, 'Ana') returning id",
        email
    )
    .fetch_one(pool)
    .await?)
}

async fn insert_account(
    pool: &PgPool,
    user_id: UserId,
    balance: Decimal,
    currency: &str,
) -> Result<AccountId, Error> {
    Ok(sqlx::query_scalar!(
        "insert into accounts (user_id, balance, currency) values ($1, $2, $3) returning id",
        user_id.as_uuid(),
        balance,
        currency
    )
    .fetch_one(pool)
    .await?)
}

async fn insert_entry(
    pool: &PgPool,
    from: Option<AccountId>,
    to: Option<AccountId>,
    amount: Decimal,
    kind: &str,
    status: &str,
    metadata: serde_json::Value,
) -> Result<EntryId, Error> {
    Ok(sqlx::query_scalar!(
        r#"
        insert into transactions (from_account_id, to_account_id, amount, type, status, metadata)
        values ($1, $2, $3, $4, $5, $6)
        returning id
        "#,
        from.as_ref().map(AccountId::as_uuid),
        to.as_ref().map(AccountId::as_uuid),
        amount,
        kind,
        status,
        metadata
    )
    .fetch_one(pool)
    .await?)
}

async fn count_rows(pool: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as!(
        CountRows,
        r#"
        select (select count(*) from users) as "users!",
               (select count(*) from accounts) as "accounts!",
               (select count(*) from transactions) as "transactions!"
        "#
    )
    .fetch_one(pool)
    .await
    .map(|c| (c.users, c.accounts, c.transactions))
    .unwrap()
}

struct CountRows {
    users: i64,
    accounts: i64,
    transactions: i64,
}

fn assert_violation<T: std::fmt::Debug>(result: Result<T, Error>, variant: &str, constraint: &str) {
    let err = result.expect_err("the write should have been refused");
    let actual = match &err {
        Error::UniqueViolation { .. } => "unique",
        Error::CheckViolation { .. } => "check",
        Error::ForeignKeyViolation { .. } => "foreign key",
        other => panic!("expected a {variant} violation of {constraint}, got {other:?}"),
    };
    assert_eq!(
        (actual, err.constraint()),
        (variant, Some(constraint)),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

/// Two accounts of one user, for the transactions table's constraints.
async fn two_accounts(pool: &PgPool) -> (AccountId, AccountId) {
    let user = insert_user(pool, "owner@example.com").await.unwrap();
    let a = insert_account(pool, user, Decimal::from(100), "USD")
        .await
        .unwrap();
    let b = insert_account(pool, user, Decimal::from(100), "USD")
        .await
        .unwrap();
    (a, b)
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn duplicate_email_violates_users_email_key(pool: PgPool) {
    insert_user(&pool, "ana@example.com").await.unwrap();
    let dup = insert_user(&pool, "ana@example.com").await;
    assert_violation(dup, "unique", users::EMAIL_UNIQUE);
    assert_eq!(count_rows(&pool).await, (1, 0, 0));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn malformed_email_violates_users_email_format(pool: PgPool) {
    for email in [
        "",
        "no-at-sign",
        "two@@example.com",
        "spa ce@example.com",
        "@example.com",
    ] {
        assert_violation(
            insert_user(&pool, email).await,
            "check",
            users::EMAIL_FORMAT,
        );
    }
    assert_eq!(count_rows(&pool).await, (0, 0, 0));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn negative_balance_violates_balance_non_negative(pool: PgPool) {
    let user = insert_user(&pool, "ana@example.com").await.unwrap();
    let result = insert_account(&pool, user, Decimal::new(-1, 2), "USD").await;
    assert_violation(result, "check", accounts::BALANCE_NON_NEGATIVE);
    assert_eq!(count_rows(&pool).await, (1, 0, 0));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn bad_currency_violates_accounts_currency_format(pool: PgPool) {
    let user = insert_user(&pool, "ana@example.com").await.unwrap();
    for currency in ["usd", "US", "U$D", ""] {
        let result = insert_account(&pool, user, Decimal::ZERO, currency).await;
        assert_violation(result, "check", accounts::CURRENCY_FORMAT);
    }
    assert_eq!(count_rows(&pool).await, (1, 0, 0));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn account_of_unknown_user_violates_accounts_user_id_fkey(pool: PgPool) {
    let result = insert_account(&pool, UserId::new(), Decimal::ZERO, "USD").await;
    assert_violation(result, "foreign key", accounts::USER_FKEY);
    assert_eq!(count_rows(&pool).await, (0, 0, 0));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn deleting_a_user_with_accounts_is_protected(pool: PgPool) {
    let user = insert_user(&pool, "ana@example.com").await.unwrap();
    insert_account(&pool, user, Decimal::ZERO, "USD")
        .await
        .unwrap();
    let result = sqlx::query_scalar!(
        "delete from users where id = $1 returning id",
        user.as_uuid()
    )
    .fetch_one(&pool)
    .await
    .map_err(Error::from);
    assert_violation(result, "foreign key", accounts::USER_FKEY);
    assert_eq!(count_rows(&pool).await, (1, 1, 0));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn zero_or_negative_amount_violates_positive_amount(pool: PgPool) {
    let (a, _) = two_accounts(&pool).await;
    for amount in [Decimal::ZERO, Decimal::new(-500, 2)] {
        let result = insert_entry(
            &pool,
            None,
            Some(a),
            amount,
            "deposit",
            "completed",
            json!({}),
        )
        .await;
        assert_violation(result, "check", transactions::POSITIVE_AMOUNT);
    }
    assert_eq!(count_rows(&pool).await.2, 0);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn unknown_type_violates_transactions_type_valid(pool: PgPool) {
    let (a, b) = two_accounts(&pool).await;
    let result = insert_entry(
        &pool,
        Some(a),
        Some(b),
        Decimal::ONE,
        "refund",
        "completed",
        json!({}),
    )
    .await;
    assert_violation(result, "check", transactions::TYPE_VALID);
    assert_eq!(count_rows(&pool).await.2, 0);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn unknown_status_violates_transactions_status_valid(pool: PgPool) {
    let (a, _) = two_accounts(&pool).await;
    // 'success' (Django's spelling) is held since migration 0014; anything else is refused.
    let result = insert_entry(
        &pool,
        None,
        Some(a),
        Decimal::ONE,
        "deposit",
        "refunded",
        json!({}),
    )
    .await;
    assert_violation(result, "check", transactions::STATUS_VALID);
    assert_eq!(count_rows(&pool).await.2, 0);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn sides_that_do_not_match_the_type_violate_accounts_match_type(pool: PgPool) {
    let (a, b) = two_accounts(&pool).await;
    let wrong = [
        (Some(a), Some(b), "deposit"),
        (None, None, "deposit"),
        (None, Some(b), "withdrawal"),
        (Some(a), Some(b), "withdrawal"),
        (Some(a), None, "transfer"),
        (None, Some(b), "transfer"),
        (Some(a), Some(a), "transfer"),
    ];
    for (from, to, kind) in wrong {
        let result =
            insert_entry(&pool, from, to, Decimal::ONE, kind, "completed", json!({})).await;
        assert_violation(result, "check", transactions::ACCOUNTS_MATCH_TYPE);
    }
    // The right shapes pass.
    for (from, to, kind) in [
        (None, Some(b), "deposit"),
        (Some(a), None, "withdrawal"),
        (Some(a), Some(b), "transfer"),
    ] {
        insert_entry(&pool, from, to, Decimal::ONE, kind, "completed", json!({}))
            .await
            .unwrap();
    }
    assert_eq!(count_rows(&pool).await.2, 3);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn non_object_metadata_violates_transactions_metadata_object(pool: PgPool) {
    let (a, _) = two_accounts(&pool).await;
    for metadata in [json!([1, 2]), json!("text"), json!(null), json!(42)] {
        let result = insert_entry(
            &pool,
            None,
            Some(a),
            Decimal::ONE,
            "deposit",
            "completed",
            metadata,
        )
        .await;
        assert_violation(result, "check", transactions::METADATA_OBJECT);
    }
    assert_eq!(count_rows(&pool).await.2, 0);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn unknown_accounts_violate_the_transactions_foreign_keys(pool: PgPool) {
    let (a, _) = two_accounts(&pool).await;
    let ghost = Some(AccountId::new());
    let from = insert_entry(
        &pool,
        ghost,
        None,
        Decimal::ONE,
        "withdrawal",
        "completed",
        json!({}),
    )
    .await;
    assert_violation(from, "foreign key", transactions::FROM_ACCOUNT_FKEY);
    let to = insert_entry(
        &pool,
        None,
        ghost,
        Decimal::ONE,
        "deposit",
        "completed",
        json!({}),
    )
    .await;
    assert_violation(to, "foreign key", transactions::TO_ACCOUNT_FKEY);
    // An account with ledger entries is protected too.
    insert_entry(
        &pool,
        None,
        Some(a),
        Decimal::ONE,
        "deposit",
        "completed",
        json!({}),
    )
    .await
    .unwrap();
    let delete = sqlx::query_scalar!(
        "delete from accounts where id = $1 returning id",
        a.as_uuid()
    )
    .fetch_one(&pool)
    .await
    .map_err(Error::from);
    assert_violation(delete, "foreign key", transactions::TO_ACCOUNT_FKEY);
    assert_eq!(count_rows(&pool).await, (1, 2, 1));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_reused_idempotency_key_violates_transactions_idempotency_key_key(pool: PgPool) {
    let (a, _) = two_accounts(&pool).await;
    let insert = |key: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar!(
                r#"
                insert into transactions (to_account_id, amount, type, status, idempotency_key)
                values ($1, 1, 'deposit', 'completed', $2)
                returning id
                "#,
                a.as_uuid(),
                key
            )
            .fetch_one(&pool)
            .await
            .map_err(Error::from)
        }
    };
    insert("k-1").await.unwrap();
    assert_violation(
        insert("k-1").await,
        "unique",
        transactions::IDEMPOTENCY_KEY_UNIQUE,
    );
    assert_eq!(count_rows(&pool).await.2, 1);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_key_without_entries_violates_idempotency_keys_entries_present(pool: PgPool) {
    let result = sqlx::query_scalar!(
        r#"insert into idempotency_keys (key, entry_ids) values ('k', '{}') returning entry_ids"#
    )
    .fetch_one(&pool)
    .await
    .map(|_| Uuid::nil())
    .map_err(Error::from);
    assert_violation(
        result,
        "check",
        transactions::IDEMPOTENCY_KEYS_ENTRIES_PRESENT,
    );
    let keys = sqlx::query_scalar!(r#"select count(*) as "n!" from idempotency_keys"#)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(keys, 0);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn non_object_payment_violates_payments_data_object(pool: PgPool) {
    for data in [json!(["card"]), json!("card"), json!(true)] {
        let result =
            sqlx::query_scalar!("insert into payments (data) values ($1) returning id", data)
                .fetch_one(&pool)
                .await
                .map_err(Error::from);
        assert_violation(result, "check", payments::DATA_OBJECT);
    }
    let count = sqlx::query_scalar!(r#"select count(*) as "n!" from payments"#)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn blank_title_violates_articles_title_not_blank(pool: PgPool) {
    for title in ["", "   ", "\t"] {
        let result = sqlx::query_scalar!(
            "insert into articles (title, content) values ($1, 'body') returning id",
            title
        )
        .fetch_one(&pool)
        .await
        .map_err(Error::from);
        assert_violation(result, "check", articles::TITLE_NOT_BLANK);
    }
    let count = sqlx::query_scalar!(r#"select count(*) as "n!" from articles"#)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn every_constraint_in_the_schema_is_exported(pool: PgPool) {
    let in_schema = sqlx::query_scalar!(
        r#"
        select c.conname as "name!"
        from pg_constraint c
        join pg_namespace n on n.oid = c.connamespace
        where n.nspname = 'public' and c.contype in ('c', 'f', 'u')
        order by 1
        "#
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut exported = vec![
        users::EMAIL_UNIQUE,
        users::EMAIL_FORMAT,
        accounts::BALANCE_NON_NEGATIVE,
        accounts::CURRENCY_FORMAT,
        accounts::USER_FKEY,
        transactions::POSITIVE_AMOUNT,
        transactions::TYPE_VALID,
        transactions::STATUS_VALID,
        transactions::ACCOUNTS_MATCH_TYPE,
        transactions::METADATA_OBJECT,
        transactions::FROM_ACCOUNT_FKEY,
        transactions::TO_ACCOUNT_FKEY,
        transactions::IDEMPOTENCY_KEY_UNIQUE,
        transactions::IDEMPOTENCY_KEYS_ENTRIES_PRESENT,
        payments::DATA_OBJECT,
        articles::TITLE_NOT_BLANK,
    ];
    exported.sort_unstable();
    assert_eq!(in_schema, exported);
}
