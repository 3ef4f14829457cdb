//! Money movements: deposit, withdraw, transfer. Each owns a database transaction.
//!
//! Every movement is one unit of work, run by [`post`], and its heart is one call of the
//! `ledger_post` function (migration 0015), which in one round trip:
//!
//! 1. locks the account rows in **one statement, in ascending id order**
//!    (`select ... where id in (from, to) order by id for update`), so two transfers in opposite
//!    directions queue instead of deadlocking — the seed's `transfer_funds` locks `from` then `to`
//!    and deadlocks exactly there;
//! 2. checks existence, status, currency and funds against the rows as they are once locked (a
//!    fresh snapshot: the function is volatile);
//! 3. when every check passes, applies both balance changes and inserts the `transactions` row;
//!    otherwise writes nothing, and returns the locked rows, from which the Rust side builds the
//!    typed refusal.
//!
//! **Without an idempotency key, on a connection that is not in a transaction, that call is the
//! whole unit**: one round trip, committed by the server as the statement ends, and the row locks
//! are held only while it runs and its commit is flushed (the seed's version needs seven round
//! trips). With a key, inside the caller's transaction, or on a connection that caches no
//! prepared statement (the transaction-pooler profile, which needs every statement inside a
//! transaction), the unit is `begin` (a savepoint when
//! the caller's connection is already in a transaction), the **key's claim** (see
//! `idempotency`) when there is a key — a key already used returns the first movement (or
//! [`Error::IdempotencyConflict`]), and a key held by a call still in flight makes this one wait
//! for it — then the call, then `commit`: four round trips with a key.
//!
//! Why a function and not one statement: a statement that locked the rows in one CTE and wrote
//! them in others was tried, and under concurrent transfers it judged a row by an older version
//! than the one it wrote, taking a balance below zero
//! (`money::a_transfer_that_waited_on_a_lock_judges_the_row_as_committed` fails on it).
//!
//! The whole unit is retried on serialization failure (40001) or deadlock (40P01), up to
//! [`MAX_ATTEMPTS`](super::MAX_ATTEMPTS) times with jittered exponential backoff; after the last
//! attempt the caller gets that error. Only this outermost unit retries: nothing below it does.
//!
//! **Retrying a call.** A call can fail without saying whether it was applied: the connection is
//! lost around `commit`, the server restarts, the caller's future is dropped. Such failures are
//! [`Error::Transient`] ([`Error::is_retryable`] is true, and [`Error::outcome_unknown`] says
//! whether the movement may have been applied). **With an idempotency key, repeating the same call
//! is always safe**: it returns the one entry the key names, applied once, whether the first
//! attempt committed, rolled back, or is still in flight (the repeat waits for it). It is never
//! refused for funds that its own first attempt moved. **Without a key**, the outcome of such a
//! failure is unknown, and repeating the call may move the money twice.
//!
//! **Nesting.** The functions take `&mut PgConnection`. Given a pooled connection they run in a
//! transaction of their own. Given `&mut *tx` inside the caller's transaction they run in a
//! savepoint (sqlx's `begin` on a connection already in a transaction): a refusal rolls back to
//! the savepoint and the caller's transaction carries on, but the movement commits only with the
//! caller's transaction, and its locks (and its key) are held until then. The caller's
//! transaction should be `read committed` (PostgreSQL's default): under `repeatable read`, a key
//! or a row changed by a concurrent commit is a serialization failure.

use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgConnection;

use super::LedgerEntry;
use super::posting::{Posting, post};
use crate::accounts::AccountId;
use crate::{Error, Result};

/// 10^13: numeric(15,2) holds values below it (checked by a unit test).
pub(super) const AMOUNT_LIMIT: Decimal = Decimal::from_parts(1_316_134_912, 2_328, 0, false, 0);

/// A deposit or a withdrawal: money into or out of one account.
#[derive(Debug, Clone, PartialEq)]
pub struct Movement {
    /// The account credited (deposit) or debited (withdrawal).
    pub account: AccountId,
    /// Positive, at most two decimal places.
    pub amount: Decimal,
    /// Caller metadata, a JSON object (`{}` by default).
    pub metadata: Value,
    /// Makes a repeated call return the first result instead of moving money again.
    pub idempotency_key: Option<String>,
}

impl Movement {
    /// A movement of `amount` on `account`, no metadata, no idempotency key.
    pub fn new(account: AccountId, amount: Decimal) -> Self {
        Self {
            account,
            amount,
            metadata: Value::Object(Default::default()),
            idempotency_key: None,
        }
    }
}

/// A transfer between two accounts of the same currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// The debited account.
    pub from: AccountId,
    /// The credited account.
    pub to: AccountId,
    /// Positive, at most two decimal places.
    pub amount: Decimal,
    /// Caller metadata, a JSON object (`{}` by default).
    pub metadata: Value,
    /// Makes a repeated call return the first result instead of moving money again.
    pub idempotency_key: Option<String>,
}

impl Transfer {
    /// A transfer of `amount` from `from` to `to`, no metadata, no idempotency key.
    pub fn new(from: AccountId, to: AccountId, amount: Decimal) -> Self {
        Self {
            from,
            to,
            amount,
            metadata: Value::Object(Default::default()),
            idempotency_key: None,
        }
    }
}

/// The options a movement and a transfer share: one set of setters for both request types.
macro_rules! request_options {
    ($($request:ty),+) => {$(
        impl $request {
            /// Sets the metadata, a JSON object (`{}` by default).
            pub fn metadata(mut self, metadata: Value) -> Self {
                self.metadata = metadata;
                self
            }

            /// Sets the idempotency key: a repeated call with it returns the first result
            /// instead of moving money again.
            pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
                self.idempotency_key = Some(key.into());
                self
            }
        }
    )+};
}

request_options!(Movement, Transfer);

/// Puts money into an account.
///
/// Django: `Transaction.objects.create(to_account=acc, amount=amount, type='deposit', ...)`
/// with `acc.balance += amount; acc.save()` inside `transaction.atomic()`
///
/// SQL: `select ... from ledger_post(...)`, which locks the account (`for update`), checks it,
/// credits it and inserts a `deposit` row, `completed`: one round trip without a key. Owns its
/// transaction (see the module docs).
///
/// With an idempotency key, repeating the call after any failure is safe and returns the one
/// entry (see "Retrying a call" in the [module docs](crate::transactions)).
///
/// # Errors
/// [`Error::InvalidInput`] for a bad amount, metadata or key; [`Error::NotFound`] for an unknown
/// account; [`Error::AccountNotActive`]; [`Error::IdempotencyConflict`] when the key was used for
/// another movement; a serialization failure or deadlock after
/// [`MAX_ATTEMPTS`](super::MAX_ATTEMPTS); [`Error::Transient`] when the connection, the statement
/// or the server failed. Nothing is written on any error, except perhaps on a transient one whose
/// outcome is unknown ([`Error::outcome_unknown`]).
pub async fn deposit(conn: &mut PgConnection, movement: &Movement) -> Result<LedgerEntry> {
    let op = crate::telemetry::op_span!("ledger.transactions.deposit", "deposit", "transactions");
    crate::telemetry::traced(
        op,
        async move { post(conn, &Posting::deposit(movement)).await },
    )
    .await
}

/// Takes money out of an account.
///
/// Django: `Transaction.objects.create(from_account=acc, amount=amount, type='withdrawal', ...)`
/// with `acc.balance -= amount; acc.save()` inside `transaction.atomic()`
///
/// SQL: `select ... from ledger_post(...)`, which locks the account, checks the funds, debits it
/// and inserts a `withdrawal` row, `completed`. Owns its transaction. With a key, the key is
/// claimed first, so a repeat is never refused for the funds its first attempt took.
///
/// Retrying: with an idempotency key, repeat the same call after any failure; it returns the one
/// entry. Without a key, a failure with [`Error::outcome_unknown`] may hide a withdrawal that
/// happened.
///
/// # Errors
/// As [`deposit`], and [`Error::InsufficientFunds`] when the balance is below the amount.
pub async fn withdraw(conn: &mut PgConnection, movement: &Movement) -> Result<LedgerEntry> {
    let op = crate::telemetry::op_span!("ledger.transactions.withdraw", "withdraw", "transactions");
    crate::telemetry::traced(op, async move {
        post(conn, &Posting::withdrawal(movement)).await
    })
    .await
}

/// Moves money between two active accounts of the same currency.
///
/// Django: the seed's `transfer_funds(from_account_id, to_account_id, amount)`
///
/// SQL: `select ... from ledger_post(...)`, which locks both accounts in one statement in
/// ascending id order (deadlock-free, unlike the seed's `from`-then-`to`), checks status,
/// currency and funds against the locked rows, then debits, credits and inserts a `transfer`
/// row, `completed`: one round trip without a key. Owns its transaction. With a key, the key is
/// claimed first (see [`withdraw`]).
///
/// Retrying: with an idempotency key, repeat the same call after any failure; it returns the one
/// entry. Without a key, a failure with [`Error::outcome_unknown`] may hide a transfer that
/// happened.
///
/// ```no_run
/// # async fn pay(pool: sqlx::PgPool, from: ledger::accounts::AccountId,
/// #              to: ledger::accounts::AccountId) -> ledger::Result<()> {
/// use ledger::transactions::{self, Transfer};
/// use rust_decimal::Decimal;
///
/// let request = Transfer::new(from, to, Decimal::new(2_500, 2)) // 25.00
///     .metadata(serde_json::json!({ "invoice": "INV-7" }))
///     .idempotency_key("invoice-INV-7");
/// let entry = transactions::transfer(&mut *pool.acquire().await?, &request).await?;
/// // The same key again returns the same entry and moves nothing. After a failure whose outcome
/// // is unknown (a lost connection, say), this is how to find out: repeat the call.
/// let again = transactions::transfer(&mut *pool.acquire().await?, &request).await?;
/// assert_eq!(entry.id, again.id);
/// # Ok(())
/// # }
/// ```
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs` statement by statement inside
/// `ledger_post`): the lock, the check and both updates read `accounts_pkey`.
///
/// # Errors
/// As [`withdraw`], and [`Error::InvalidInput`] when `from == to`, [`Error::CurrencyMismatch`]
/// when the currencies differ.
pub async fn transfer(conn: &mut PgConnection, transfer: &Transfer) -> Result<LedgerEntry> {
    let op = crate::telemetry::op_span!("ledger.transactions.transfer", "transfer", "transactions");
    crate::telemetry::traced(
        op,
        async move { post(conn, &Posting::transfer(transfer)).await },
    )
    .await
}

/// Checks an amount: positive, at most two decimal places, below 10^13 (numeric(15,2)).
///
/// # Errors
/// [`Error::InvalidInput`] for the field `amount`.
pub fn validate_amount(amount: Decimal) -> Result<()> {
    if amount <= Decimal::ZERO {
        return Err(Error::invalid(
            "amount",
            format!("must be positive, not {amount}"),
        ));
    }
    if amount.normalize().scale() > 2 {
        return Err(Error::invalid(
            "amount",
            format!("must have at most 2 decimal places, not {amount}"),
        ));
    }
    if amount >= AMOUNT_LIMIT {
        return Err(Error::invalid(
            "amount",
            "must be below 10^13 (numeric(15,2))",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::TRANSFER;
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn amounts_are_positive_cents_that_fit_numeric_15_2() {
        for good in ["0.01", "1", "10.50", "10.500", "9999999999999.99"] {
            assert!(validate_amount(dec(good)).is_ok(), "{good}");
        }
        for bad in [
            "0",
            "-1",
            "0.001",
            "1.005",
            "10000000000000",
            "10000000000000.00",
        ] {
            assert!(
                matches!(
                    validate_amount(dec(bad)),
                    Err(Error::InvalidInput {
                        field: "amount",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_amount_limit_is_ten_to_the_thirteenth() {
        assert_eq!(AMOUNT_LIMIT, Decimal::from(10_000_000_000_000_i64));
    }

    #[test]
    fn a_transfer_to_the_same_account_is_refused() {
        let id = AccountId::new();
        let t = Transfer::new(id, id, Decimal::ONE);
        let p = Posting {
            kind: TRANSFER,
            from: Some(t.from),
            to: Some(t.to),
            amount: t.amount,
            metadata: &t.metadata,
            key: None,
        };
        assert!(matches!(
            p.validate(),
            Err(Error::InvalidInput { field: "to", .. })
        ));
    }
}
