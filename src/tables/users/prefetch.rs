//! Users with their accounts, in two queries whatever their number (Django's
//! `prefetch_related`), and the seed's raw-SQL balance question. Re-exported by
//! [`users`](super).

use std::collections::HashMap;

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};

use super::{User, UserId, Visibility};
use crate::Result;
use crate::tables::accounts::Account;

/// A user with all their accounts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserWithAccounts {
    /// The user.
    pub user: User,
    /// Their accounts, by currency then id.
    pub accounts: Vec<Account>,
}

/// Every user (live ones, or all) with their accounts, in exactly two queries whatever the number
/// of users.
///
/// **Reads every user into memory**: at a few million users that is an out-of-memory kill. A
/// page at a time, in the same two queries: [`UserQuery::keyset_with_accounts`](super::UserQuery::keyset_with_accounts).
///
/// Django: `User.objects.prefetch_related('accounts')` (then `user.accounts.all()` costs no query)
///
/// SQL: the live users (`order by created_at, id`), then `select ... from accounts where user_id
/// = any($1)` with all their ids in one array parameter; the rows are grouped in Rust. Two
/// statements: pass a connection, or `&mut *tx` for one snapshot.
///
/// # Errors
/// [`Error::Database`](crate::Error::Database) only.
#[deprecated(
    since = "0.1.0",
    note = "reads every user into memory: use `UserQuery::keyset_with_accounts`, a page at a time"
)]
pub async fn list_with_accounts(
    conn: &mut PgConnection,
    visibility: Visibility,
) -> Result<Vec<UserWithAccounts>> {
    let op =
        crate::ground::telemetry::op_span!("ledger.users.list_with_accounts", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move {
        let users = query_users!(
            select r#"
        from users
        where ($1::bool or deleted_at is null)
        order by created_at, id
        "#,
            visibility.shows_deleted()
        )
        .fetch_all(&mut *conn)
        .await?;
        with_accounts(conn, users).await
    })
    .await
}

/// `users` with their accounts, read in one query (`where user_id = any($1)`), by currency then
/// id; a user without accounts gets none.
pub(super) async fn with_accounts(
    conn: &mut PgConnection,
    users: Vec<User>,
) -> Result<Vec<UserWithAccounts>> {
    {
        let ids: Vec<uuid::Uuid> = users.iter().map(|u| u.id.as_uuid()).collect();
        let accounts = sqlx::query_as!(
            Account,
            r#"
        select id, user_id, balance, currency, status
        from accounts
        where user_id = any($1)
        order by currency, id
        "#,
            &ids
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut by_user: HashMap<UserId, Vec<Account>> = HashMap::with_capacity(users.len());
        for account in accounts {
            by_user.entry(account.user_id).or_default().push(account);
        }
        Ok(users
            .into_iter()
            .map(|user| UserWithAccounts {
                accounts: by_user.remove(&user.id).unwrap_or_default(),
                user,
            })
            .collect())
    }
}

/// Users (live ones, or all: [`Visibility`]) who hold more than `min` in at least one account,
/// mapped to [`User`].
///
/// Django: `User.objects.raw('SELECT * FROM users WHERE balance > %s', [1000])` — `users` has no
/// `balance` column (it is on `accounts`), so the seed's query fails as written; this is its
/// intent, with an explicit column list instead of `*`.
///
/// SQL: `select ... from users u where deleted_at is null and exists (select 1 from accounts a
/// where a.user_id = u.id and a.balance > $1) order by created_at, id`.
///
/// # Errors
/// [`Error::Database`](crate::Error::Database) only.
pub async fn list_with_balance_over(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    min: Decimal,
) -> Result<Vec<User>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.users.list_with_balance_over",
        "SELECT",
        "users"
    );
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_as!(
            User,
            r#"
        select u.id, u.email, u.name, u.created_at, u.deleted_at
        from users u
        where ($2::bool or u.deleted_at is null)
          and exists (select 1 from accounts a where a.user_id = u.id and a.balance > $1)
        order by u.created_at, u.id
        "#,
            min,
            visibility.shows_deleted()
        )
        .fetch_all(db)
        .await?)
    })
    .await
}
