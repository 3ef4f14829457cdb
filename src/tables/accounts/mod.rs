//! `accounts`: the seed's `Account` model, one balance in one currency owned by one user.
//!
//! Invariants: the balance is never negative ([`BALANCE_NON_NEGATIVE`]); the currency is three
//! uppercase letters ([`CURRENCY_FORMAT`], and [`validate_currency`] before any write); the owner
//! exists and cannot be deleted while the account does ([`USER_FKEY`], Django's `PROTECT`).
//!
//! **The seed filters `balance` and `status` on `User`, which has neither.** They are account
//! columns, so those filters live here, as streams: [`stream_balance_at_least`]
//! (`balance__gte`), [`stream_balance_between`] (`balance__range`), [`stream_status_in`]
//! (`status__in`), the AND, OR and NOT examples, and [`expire_trials`] (the bulk `update()`).
//! [`filter`] combines them at run time, a page at a time.
//!
//! **Reads that grow with the table are bounded.** Each listing of accounts is a stream (one
//! chunk in memory, a dropped stream costs one chunk) or a page ([`filter`]'s limit and `after`);
//! the `list_*` forms that read every match into a `Vec`, and [`rank_by_balance`], are
//! deprecated, each naming its stream. A balance changes only through the money movements of [`transactions`](crate::transactions).

mod bulk;
mod filters;
mod stream;

pub use bulk::{NewAccount, open_many, set_statuses};
#[allow(deprecated)]
pub use filters::*;
pub use stream::*;

use rust_decimal::Decimal;
use sqlx::PgExecutor;

use crate::ground::ids::UserId;
use crate::{Error, Result};

/// The seed's `CheckConstraint(check=Q(balance__gte=0), name='balance_non_negative')`.
pub const BALANCE_NON_NEGATIVE: &str = "balance_non_negative";
/// `check (currency ~ '^[A-Z]{3}$')`.
pub const CURRENCY_FORMAT: &str = "accounts_currency_format";
/// `foreign key (user_id) references users (id) on delete restrict`.
pub const USER_FKEY: &str = "accounts_user_id_fkey";
/// The currency of an account opened without one (the seed's `default='USD'`).
pub const DEFAULT_CURRENCY: &str = "USD";
/// Longest status (varchar(20)).
pub const MAX_STATUS_LEN: usize = 20;

pub use crate::ground::ids::AccountId;
pub use crate::ground::kinds::AccountStatus;

/// A row of `accounts`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct Account {
    /// Primary key.
    pub id: AccountId,
    /// The owner.
    pub user_id: UserId,
    /// numeric(15,2), never negative.
    pub balance: Decimal,
    /// ISO 4217 code, `USD` by default.
    pub currency: String,
    /// `active` by default; free text of at most 20 characters in the schema (the seed uses
    /// `active`, `vip`, `trial`, `expired`, `banned`; any other name reads as `Other`).
    pub status: AccountStatus,
}

/// Checks a currency code: three uppercase ASCII letters.
///
/// # Errors
/// [`Error::InvalidInput`] for the field `currency`.
pub fn validate_currency(currency: &str) -> Result<()> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(Error::invalid(
            "currency",
            format!("must be three uppercase letters such as USD, not {currency:?}"),
        ))
    }
}

/// Checks a status: 1 to 20 characters, no white space at either end, no U+0000 (which
/// PostgreSQL's text cannot hold).
///
/// # Errors
/// [`Error::InvalidInput`] for the field `status`.
pub fn validate_status(status: &str) -> Result<()> {
    Error::check_text("status", status)?;
    if status.is_empty() || status.trim() != status || status.chars().count() > MAX_STATUS_LEN {
        return Err(Error::invalid(
            "status",
            format!("must be 1 to {MAX_STATUS_LEN} characters without surrounding spaces"),
        ));
    }
    Ok(())
}

/// Opens an account with a zero balance and status `active` for a live user.
///
/// Django: `Account.objects.create(user=user, currency='USD')`
///
/// SQL: `insert into accounts (user_id, currency) select id, $2 from users where id = $1 and
/// deleted_at is null returning` the row: a missing or soft-deleted owner inserts nothing.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad currency (nothing is sent); [`Error::NotFound`] when the
/// user does not exist or is soft-deleted.
pub async fn open(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    currency: Option<&str>,
) -> Result<Account> {
    let op = crate::ground::telemetry::op_span!("ledger.accounts.open", "INSERT", "accounts");
    crate::ground::telemetry::traced(op, async move {
        let currency = currency.unwrap_or(DEFAULT_CURRENCY);
        validate_currency(currency)?;
        sqlx::query_as!(
            Account,
            r#"
        insert into accounts (user_id, currency)
        select id, $2 from users where id = $1 and deleted_at is null
        returning id, user_id, balance, currency, status
        "#,
            user_id.as_uuid(),
            currency
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "user" })
    })
    .await
}

/// The account with this id.
///
/// Django: `Account.objects.get(id=account_id)`
///
/// SQL: `select ... from accounts where id = $1`.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): an index scan of `accounts_pkey`.
///
/// # Errors
/// [`Error::NotFound`] when there is no such account.
pub async fn get(db: impl PgExecutor<'_>, id: AccountId) -> Result<Account> {
    let op = crate::ground::telemetry::op_span!("ledger.accounts.get", "SELECT", "accounts");
    crate::ground::telemetry::traced(op, async move {
        sqlx::query_as!(
            Account,
            r#"
        select id, user_id, balance, currency, status
        from accounts
        where id = $1
        "#,
            id.as_uuid()
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "account" })
    })
    .await
}

/// A user's accounts, by currency then id.
///
/// Django: `user.accounts.all()`
///
/// SQL: `select ... from accounts where user_id = $1 order by currency, id` (index
/// `accounts_user_id_idx`).
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): `accounts_user_id_idx`, then a sort of that
/// user's accounts.
///
/// # Errors
/// [`Error::Database`] only.
pub async fn list_for_user(db: impl PgExecutor<'_>, user_id: UserId) -> Result<Vec<Account>> {
    let op =
        crate::ground::telemetry::op_span!("ledger.accounts.list_for_user", "SELECT", "accounts");
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_as!(
            Account,
            r#"
        select id, user_id, balance, currency, status
        from accounts
        where user_id = $1
        order by currency, id
        "#,
            user_id.as_uuid()
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

/// Sets an account's status and returns the updated row.
///
/// Django: `Account.objects.filter(id=account_id).update(status='frozen')`
///
/// SQL: `update accounts set status = $2 where id = $1 returning` the row.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad status (nothing is sent); [`Error::NotFound`] for an unknown
/// id.
pub async fn set_status(db: impl PgExecutor<'_>, id: AccountId, status: &str) -> Result<Account> {
    let op = crate::ground::telemetry::op_span!("ledger.accounts.set_status", "UPDATE", "accounts");
    crate::ground::telemetry::traced(op, async move {
        validate_status(status)?;
        sqlx::query_as!(
            Account,
            r#"
        update accounts
        set status = $2
        where id = $1
        returning id, user_id, balance, currency, status
        "#,
            id.as_uuid(),
            status
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "account" })
    })
    .await
}

/// Moves every account in status `from` to status `to` in one statement; returns how many rows
/// changed.
///
/// Django: `User.objects.filter(status='trial').update(status='expired')` (on `Account`)
///
/// SQL: `update accounts set status = $2 where status = $1`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad target status (nothing is sent).
pub async fn update_status_where(db: impl PgExecutor<'_>, from: &str, to: &str) -> Result<u64> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.accounts.update_status_where",
        "UPDATE",
        "accounts"
    );
    crate::ground::telemetry::traced(op, async move {
        Error::check_text("status", from)?;
        validate_status(to)?;
        let done = sqlx::query!(
            "update accounts set status = $2 where status = $1",
            from,
            to
        )
        .execute(db)
        .await?;
        Ok(done.rows_affected())
    })
    .await
}

/// The seed's bulk update exactly: every `trial` account becomes `expired`.
///
/// Django: `User.objects.filter(status='trial').update(status='expired')`
///
/// SQL: as [`update_status_where`].
///
/// # Errors
/// [`Error::Database`] only.
pub async fn expire_trials(db: impl PgExecutor<'_>) -> Result<u64> {
    let op =
        crate::ground::telemetry::op_span!("ledger.accounts.expire_trials", "UPDATE", "accounts");
    crate::ground::telemetry::traced(op, async move {
        update_status_where(db, "trial", "expired").await
    })
    .await
}

/// An account's place in the ranking by balance of its currency.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct BalanceRank {
    /// The account.
    pub account_id: AccountId,
    /// Its currency: accounts are ranked among those of the same currency.
    pub currency: String,
    /// Its owner's name.
    pub user_name: String,
    /// Its balance.
    pub balance: Decimal,
    /// 1 for the richest of its currency; equal balances share a rank and the next rank is
    /// skipped, as `RANK()`.
    pub rank: i64,
}

/// Every account ranked by balance among the accounts of its currency, richest first, with its
/// owner's name: currencies in order, then rank.
///
/// Django: `Account.objects.annotate(rank=Window(expression=Rank(), partition_by=F('currency'),
/// order_by=F('balance').desc())).values('user__name', 'balance', 'rank')` — the cheat sheet's
/// window has no partition, and so ranks 100 EUR against 100 USD; on a one-currency database the
/// two agree.
///
/// SQL: `rank() over (partition by currency order by balance desc)` over `accounts join users`,
/// ordered by currency, rank, then account id (a tie-breaker for the output order only; tied
/// balances keep one rank).
///
/// **Reads every account into memory**; the same ranking as a stream, one chunk in memory:
/// [`stream_rank_by_balance`].
///
/// # Errors
/// [`Error::Database`] only.
#[deprecated(
    since = "0.1.1",
    note = "reads every account into memory: use `accounts::stream_rank_by_balance`"
)]
pub async fn rank_by_balance(db: impl PgExecutor<'_>) -> Result<Vec<BalanceRank>> {
    let op =
        crate::ground::telemetry::op_span!("ledger.accounts.rank_by_balance", "SELECT", "accounts");
    crate::ground::telemetry::traced(op, async move {
        Ok(sqlx::query_as!(
            BalanceRank,
            r#"
        select a.id as "account_id: AccountId",
               a.currency,
               u.name as user_name,
               a.balance,
               rank() over (partition by a.currency order by a.balance desc) as "rank!"
        from accounts a
        join users u on u.id = a.user_id
        order by a.currency, 5, a.id
        "#
        )
        .fetch_all(db)
        .await?)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_three_uppercase_letters() {
        assert!(validate_currency("USD").is_ok());
        for bad in ["usd", "US", "USDT", "U$D", "", "ÉUR"] {
            assert!(validate_currency(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_are_short_and_trimmed() {
        assert!(validate_status("expired").is_ok());
        for bad in ["", " vip", "vip ", &"x".repeat(21)] {
            assert!(validate_status(bad).is_err(), "{bad:?}");
        }
    }
}
