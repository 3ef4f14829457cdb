//! Bulk writes of accounts: opening many at once, and updating many with different values.

use sqlx::{Acquire, PgConnection, PgExecutor};
use uuid::Uuid;

use super::{Account, AccountId, DEFAULT_CURRENCY, validate_currency, validate_status};
use crate::Result;
use crate::ground::ids::UserId;
use crate::tables::bulk::{self, BulkInserted, BulkOptions};

/// An account to open: its owner and currency (USD when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The owner, who must exist.
    pub user_id: UserId,
    /// ISO 4217 code.
    pub currency: Option<String>,
}

/// Opens many empty `active` accounts, one `insert ... select ... from unnest(...)` per chunk, all
/// or nothing. (Accounts have no unique column but their generated id, so there is nothing to
/// skip: [`BulkOptions::on_conflict`] does not apply.)
///
/// Django: `Account.objects.bulk_create([Account(user=u, currency='USD'), ...])`
///
/// SQL: per chunk, `insert into accounts (id, user_id, currency) select * from
/// unnest($1::uuid[], $2::uuid[], $3::text[]) returning ...`.
///
/// # Errors
/// [`Error::InvalidItem`](crate::Error::InvalidItem) for a bad currency;
/// [`Error::ForeignKeyViolation`](crate::Error::ForeignKeyViolation) with
/// [`USER_FKEY`](super::USER_FKEY) for an unknown owner. Nothing is written on any error.
pub async fn open_many(
    conn: &mut PgConnection,
    accounts: &[NewAccount],
    options: BulkOptions,
) -> Result<BulkInserted<Account>> {
    let op = crate::ground::telemetry::op_span!("ledger.accounts.open_many", "INSERT", "accounts");
    crate::ground::telemetry::traced(op, async move {
        bulk::validate_all(accounts, |a| {
            validate_currency(a.currency.as_deref().unwrap_or(DEFAULT_CURRENCY))
        })?;
        let chunk_size = options.checked_chunk_size()?;
        let ids: Vec<Uuid> = accounts.iter().map(|_| Uuid::new_v4()).collect();
        let mut tx = conn.begin().await?;
        let mut rows = Vec::with_capacity(accounts.len());
        for (chunk, chunk_ids) in accounts.chunks(chunk_size).zip(ids.chunks(chunk_size)) {
            let owners: Vec<Uuid> = chunk.iter().map(|a| a.user_id.as_uuid()).collect();
            let currencies: Vec<&str> = chunk
                .iter()
                .map(|a| a.currency.as_deref().unwrap_or(DEFAULT_CURRENCY))
                .collect();
            rows.extend(
                sqlx::query_as!(
                    Account,
                    r#"
                insert into accounts (id, user_id, currency)
                select * from unnest($1::uuid[], $2::uuid[], $3::text[])
                returning id, user_id, balance, currency,
                          status
                "#,
                    chunk_ids,
                    &owners,
                    &currencies as &[&str]
                )
                .fetch_all(&mut *tx)
                .await?,
            );
        }
        tx.commit().await?;
        Ok(bulk::align(&ids, rows, |a| a.id.as_uuid()))
    })
    .await
}

/// Sets a different status on each of many accounts in one statement; returns how many rows
/// changed. Ids that do not exist are ignored (and not counted).
///
/// Django: `Account.objects.bulk_update(accounts, ['status'])`
///
/// SQL: `update accounts a set status = v.status from unnest($1::uuid[], $2::text[]) as v(id,
/// status) where a.id = v.id`.
///
/// # Errors
/// [`Error::InvalidItem`](crate::Error::InvalidItem) for a bad status, or an account listed twice
/// (nothing is sent).
pub async fn set_statuses(db: impl PgExecutor<'_>, changes: &[(AccountId, &str)]) -> Result<u64> {
    let op =
        crate::ground::telemetry::op_span!("ledger.accounts.set_statuses", "UPDATE", "accounts");
    crate::ground::telemetry::traced(op, async move {
        bulk::validate_all(changes, |(_, status)| validate_status(status))?;
        bulk::reject_duplicates(changes, "account", |(id, _)| *id)?;
        let uuids: Vec<Uuid> = changes.iter().map(|(id, _)| id.as_uuid()).collect();
        let statuses: Vec<&str> = changes.iter().map(|(_, s)| *s).collect();
        let done = sqlx::query!(
            r#"
        update accounts as a
        set status = v.status
        from unnest($1::uuid[], $2::text[]) as v(id, status)
        where a.id = v.id
        "#,
            &uuids,
            &statuses as &[&str]
        )
        .execute(db)
        .await?;
        Ok(done.rows_affected())
    })
    .await
}
