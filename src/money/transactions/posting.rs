//! How a movement is posted: the [`Posting`] (the `transactions` row a movement will write, and
//! its checks), one call of the `ledger_post` function per attempt, the locks, the idempotency
//! key's claim and the retries around them. [`movements`](super::movements) documents the unit of
//! work; the batch paths and the poster share the locking and the checks.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::{Acquire, Connection, PgConnection};
use uuid::Uuid;

use super::idempotency::{self, validate_key};
use super::movements::{AMOUNT_LIMIT, Movement, Transfer, validate_amount};
use super::retry::retrying;
use super::{
    COMPLETED, DEPOSIT, IDEMPOTENCY_KEY_UNIQUE, LedgerEntry, MAX_METADATA_BYTES, TRANSFER,
    WITHDRAWAL,
};
use crate::accounts::AccountId;
use crate::document::{self, Document};
use crate::numeric::Numeric;
use crate::{Error, Result};

/// One movement, as the `transactions` row it will write.
#[derive(Debug)]
pub(super) struct Posting<'a> {
    pub(super) kind: &'static str,
    pub(super) from: Option<AccountId>,
    pub(super) to: Option<AccountId>,
    pub(super) amount: Decimal,
    pub(super) metadata: &'a Value,
    pub(super) key: Option<&'a str>,
}

impl<'a> Posting<'a> {
    pub(super) fn deposit(movement: &'a Movement) -> Self {
        Self::one_account(DEPOSIT, None, Some(movement.account), movement)
    }

    pub(super) fn withdrawal(movement: &'a Movement) -> Self {
        Self::one_account(WITHDRAWAL, Some(movement.account), None, movement)
    }

    fn one_account(
        kind: &'static str,
        from: Option<AccountId>,
        to: Option<AccountId>,
        movement: &'a Movement,
    ) -> Self {
        Self {
            kind,
            from,
            to,
            amount: movement.amount,
            metadata: &movement.metadata,
            key: movement.idempotency_key.as_deref(),
        }
    }

    pub(super) fn transfer(transfer: &'a Transfer) -> Self {
        Self {
            kind: TRANSFER,
            from: Some(transfer.from),
            to: Some(transfer.to),
            amount: transfer.amount,
            metadata: &transfer.metadata,
            key: transfer.idempotency_key.as_deref(),
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        validate_amount(self.amount)?;
        if !self.metadata.is_object() {
            return Err(Error::invalid("metadata", "must be a JSON object"));
        }
        document::check("metadata", self.metadata, MAX_METADATA_BYTES)?;
        if let Some(key) = self.key {
            validate_key(key)?;
        }
        if self.from.is_some() && self.from == self.to {
            return Err(Error::invalid("to", "must be another account than from"));
        }
        Ok(())
    }

    /// Whether `entry` is this posting, made earlier: same type, accounts and amount (metadata is
    /// not compared).
    pub(super) fn is_same_as(&self, entry: &LedgerEntry) -> bool {
        entry.kind == self.kind
            && entry.from_account_id == self.from
            && entry.to_account_id == self.to
            && entry.amount == self.amount
    }
}

/// Runs the posting as one unit of work, retrying it on serialization failure or deadlock.
pub(super) async fn post(conn: &mut PgConnection, posting: &Posting<'_>) -> Result<LedgerEntry> {
    posting.validate()?;
    match retrying!(post_once(conn, posting).await) {
        // Another client wrote the key straight into `transactions`, without claiming it.
        Err(err) if err.constraint() == Some(IDEMPOTENCY_KEY_UNIQUE) => {
            let key = posting.key.unwrap_or_default();
            match find_by_key(&mut *conn, key).await? {
                Some(entry) if posting.is_same_as(&entry) => {
                    tracing::Span::current().record("ledger.idempotency.replayed", true);
                    crate::telemetry::metered::replay("transactions");
                    Ok(entry)
                }
                _ => Err(Error::IdempotencyConflict {
                    key: key.to_owned(),
                }),
            }
        }
        result => result,
    }
}

/// A locked account row.
pub(super) struct Locked {
    pub(super) id: AccountId,
    pub(super) balance: Decimal,
    pub(super) currency: String,
    pub(super) status: String,
}

/// Locks the accounts in one statement, in ascending id order, and returns them.
pub(super) async fn lock_accounts(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Locked>> {
    // One statement, ascending id order: concurrent transfers queue instead of deadlocking.
    Ok(sqlx::query_as!(
        Locked,
        r#"
        select id, balance, currency, status
        from accounts
        where id = any($1)
        order by id
        for update
        "#,
        ids
    )
    .fetch_all(conn)
    .await?)
}

pub(super) async fn post_once(
    conn: &mut PgConnection,
    posting: &Posting<'_>,
) -> Result<LedgerEntry> {
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
        let claimed = idempotency::claim(&mut tx, key, &[id]).await?;
        // On the operation's span (`crate::telemetry`).
        tracing::Span::current().record("ledger.idempotency.replayed", !claimed);
        if !claimed {
            crate::telemetry::metered::replay("transactions");
            let mut first = idempotency::replay(&mut tx, key).await?;
            tx.rollback().await?;
            return match first.pop() {
                Some(entry) if first.is_empty() && posting.is_same_as(&entry) => Ok(entry),
                _ => Err(idempotency::conflict(key)),
            };
        }
    }
    // A refusal returns here and dropping `tx` rolls the claim back.
    let entry = apply(&mut tx, posting, id).await?;
    tx.commit().await?;
    Ok(entry)
}

/// A locked account as the posting statement saw it, and what the statement wrote, if anything.
struct Applied {
    id: AccountId,
    balance: Numeric,
    currency: String,
    status: String,
    created_at: Option<DateTime<Utc>>,
    metadata: Option<Document>,
}

/// Locks, checks and writes in one call of `ledger_post` (migration 0015): the posting's
/// accounts are locked in ascending id order, the conditions of [`check`] are evaluated in SQL
/// against the locked rows as they are once locked, and only when every one passes are both
/// balances changed and the `transactions` row inserted. The call returns the locked rows, with
/// the new row's `created_at` and `metadata` when it wrote one. When it wrote nothing, [`check`]
/// runs on the same rows to say why.
///
/// SQL: `select ... from ledger_post($1, ..., $9)`; inside, `select ... for update` on
/// `accounts_pkey`, then two `update`s and one `insert` by primary key.
pub(super) async fn apply(
    conn: &mut PgConnection,
    posting: &Posting<'_>,
    id: Uuid,
) -> Result<LedgerEntry> {
    let rows = sqlx::query_as!(
        Applied,
        r#"
        select account_id as "id!: AccountId", account_balance as "balance!: Numeric",
               account_currency as "currency!", account_status as "status!",
               entry_created_at as "created_at?", entry_metadata as "metadata?: Document"
        from ledger_post($1, $2, $3, $4, $5, $6, $7, $8, $9)
        "#,
        id,
        posting.from.map(|id| id.as_uuid()),
        posting.to.map(|id| id.as_uuid()),
        posting.amount,
        posting.kind,
        COMPLETED,
        posting.metadata,
        posting.key,
        AMOUNT_LIMIT
    )
    .fetch_all(&mut *conn)
    .await?;
    if let Some(row) = rows.first()
        && let (Some(created_at), Some(metadata)) = (row.created_at, row.metadata.clone())
    {
        return Ok(LedgerEntry {
            id: id.into(),
            from_account_id: posting.from,
            to_account_id: posting.to,
            amount: posting.amount,
            kind: posting.kind.into(),
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

/// The checks made against the locked rows; any failure leaves the database untouched.
pub(super) fn check<'l>(
    posting: &Posting<'_>,
    row: impl Fn(AccountId) -> Option<&'l Locked>,
) -> Result<()> {
    let find = |id: Option<AccountId>| -> Result<Option<&Locked>> {
        match id {
            None => Ok(None),
            Some(id) => row(id).map(Some).ok_or(Error::NotFound { what: "account" }),
        }
    };
    let (from, to) = (find(posting.from)?, find(posting.to)?);
    for account in [from, to].into_iter().flatten() {
        if account.status != "active" {
            return Err(Error::AccountNotActive {
                account: account.id,
                status: account.status.clone(),
            });
        }
    }
    if let (Some(from), Some(to)) = (from, to)
        && from.currency != to.currency
    {
        return Err(Error::CurrencyMismatch {
            from_currency: from.currency.clone(),
            to_currency: to.currency.clone(),
        });
    }
    if let Some(to) = to
        && to.balance + posting.amount >= AMOUNT_LIMIT
    {
        return Err(Error::invalid(
            "amount",
            "the credited balance would exceed numeric(15,2)",
        ));
    }
    if let Some(from) = from
        && from.balance < posting.amount
    {
        return Err(Error::InsufficientFunds {
            account: from.id,
            balance: from.balance,
            requested: posting.amount,
        });
    }
    Ok(())
}

pub(super) async fn find_by_key(conn: &mut PgConnection, key: &str) -> Result<Option<LedgerEntry>> {
    Ok(query_entries!(
        select r#"
        from transactions
        where idempotency_key = $1
        "#,
        key
    )
    .fetch_optional(conn)
    .await?)
}
