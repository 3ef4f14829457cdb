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

use sqlx::{Acquire, Connection, PgConnection};
use uuid::Uuid;

use super::book::{Locked, check};
use super::idempotency::{self, Claim};
use super::posting::Posting;
use super::requests::{Movement, Transfer};
use super::retry::retrying;
use super::writes::post_function;
use super::{COMPLETED, IDEMPOTENCY_KEY_UNIQUE, LedgerEntry};
use crate::{Error, Result};

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
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.deposit",
        "deposit",
        "transactions"
    );
    crate::ground::telemetry::traced(
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
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.withdraw",
        "withdraw",
        "transactions"
    );
    crate::ground::telemetry::traced(op, async move {
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
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.transfer",
        "transfer",
        "transactions"
    );
    crate::ground::telemetry::traced(
        op,
        async move { post(conn, &Posting::transfer(transfer)).await },
    )
    .await
}

/// Runs the posting as one unit of work, retrying it on serialization failure or deadlock.
pub(super) async fn post(conn: &mut PgConnection, posting: &Posting<'_>) -> Result<LedgerEntry> {
    posting.validate()?;
    match retrying!(post_once(conn, posting).await) {
        // Another client wrote the key straight into `transactions`, without claiming it.
        Err(err) if err.constraint() == Some(IDEMPOTENCY_KEY_UNIQUE) => {
            let key = posting.key.unwrap_or_default();
            let first = idempotency::find_by_key(&mut *conn, key).await?;
            let entry =
                idempotency::replayed_one(key, first.as_slice(), |e| posting.is_same_as(e))?;
            tracing::Span::current().record("ledger.idempotency.replayed", true);
            crate::ground::telemetry::metered::replay("transactions");
            Ok(entry)
        }
        result => result,
    }
}

async fn post_once(conn: &mut PgConnection, posting: &Posting<'_>) -> Result<LedgerEntry> {
    let id = Uuid::new_v4();
    if posting.key.is_none()
        && !Connection::is_in_transaction(&*conn)
        && Connection::cached_statements_size(&*conn) > 0
    {
        // Nothing to claim and no caller's transaction to keep usable: the one statement is
        // the whole unit, committed by the server as it ends. A connection that caches no
        // statement is the transaction-pooler profile (`Config::transaction_pooler`): there
        // sqlx prepares and executes in two exchanges, between which a pooler may hand the
        // server connection to another client, so the unit begins a transaction below.
        return apply(conn, posting, id).await;
    }
    let mut tx = Acquire::begin(conn).await?;
    if let Some(key) = posting.key {
        let same = |first: &[LedgerEntry]| matches!(first, [entry] if posting.is_same_as(entry));
        if let Claim::Replayed(first) = idempotency::claim_one(&mut tx, key, &[id], same).await? {
            tx.rollback().await?;
            return first.map(|mut entries| entries.remove(0));
        }
    }
    // A refusal returns here and dropping `tx` rolls the claim back.
    let entry = apply(&mut tx, posting, id).await?;
    tx.commit().await?;
    Ok(entry)
}

/// Locks, checks and writes in one call of `ledger_post` ([`post_function`]); when it wrote
/// nothing, [`check`] runs on the rows it locked to say why.
async fn apply(conn: &mut PgConnection, posting: &Posting<'_>, id: Uuid) -> Result<LedgerEntry> {
    let rows = post_function(conn, posting, id).await?;
    if let Some(row) = rows.first()
        && let (Some(created_at), Some(metadata)) = (row.created_at, row.metadata.clone())
    {
        return Ok(LedgerEntry {
            id: id.into(),
            from_account_id: posting.from,
            to_account_id: posting.to,
            amount: posting.amount,
            kind: posting.kind.clone(),
            status: COMPLETED.into(),
            metadata,
            created_at,
            idempotency_key: posting.key.map(str::to_owned),
        });
    }
    let locked: Vec<Locked> = rows
        .into_iter()
        .map(|row| Locked {
            id: row.id,
            balance: row.balance.into(),
            currency: row.currency,
            status: row.status,
        })
        .collect();
    check(posting, |id| locked.iter().find(|row| row.id == id))?;
    // `ledger_post` checks exactly what `check` does: reaching here is a bug in one of them.
    Err(Error::Database(sqlx::Error::Protocol(
        "the posting wrote nothing, yet its accounts pass every check".into(),
    )))
}
