//! The book a set of postings is judged against: their accounts, locked in one statement in
//! ascending id order; each posting, in order, checked against the balances the earlier ones
//! left ([`check`]) and, when accepted, moved in memory; then every account's net change written
//! in one statement. A batch and the poster's flush judge through a [`Book`]; a single movement's
//! `ledger_post` makes the same checks in SQL and, when it refuses, [`check`] says why.

use std::collections::HashMap;

use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::posting::Posting;
use super::requests::AMOUNT_LIMIT;
use crate::tables::accounts::{AccountId, AccountStatus};
use crate::{Error, Result};

/// A locked account row.
pub(super) struct Locked {
    pub(super) id: AccountId,
    pub(super) balance: Decimal,
    pub(super) currency: String,
    pub(super) status: AccountStatus,
}

/// The checks made against the locked rows (`row` finds one by id); any failure leaves the
/// database untouched.
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
        if account.status != AccountStatus::Active {
            return Err(Error::AccountNotActive {
                account: account.id,
                status: account.status.to_string(),
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

/// The locked accounts of a set of postings, their balances as locked and as judged so far.
pub(super) struct Book {
    before: HashMap<AccountId, Decimal>,
    state: HashMap<AccountId, Locked>,
}

impl Book {
    /// Locks every account `accounts` names (repeats are fine), in one statement, in ascending id
    /// order: concurrent writers queue instead of deadlocking.
    ///
    /// SQL: `select id, balance, currency, status from accounts where id = any($1) order by id
    /// for update`.
    pub(super) async fn lock(
        conn: &mut PgConnection,
        accounts: impl IntoIterator<Item = AccountId>,
    ) -> Result<Self> {
        let mut ids: Vec<Uuid> = accounts.into_iter().map(|id| id.as_uuid()).collect();
        ids.sort_unstable();
        ids.dedup();
        let locked = sqlx::query_as!(
            Locked,
            r#"
            select id, balance, currency, status as "status: AccountStatus"
            from accounts
            where id = any($1)
            order by id
            for update
            "#,
            &ids
        )
        .fetch_all(conn)
        .await?;
        Ok(Self {
            before: locked.iter().map(|l| (l.id, l.balance)).collect(),
            state: locked.into_iter().map(|l| (l.id, l)).collect(),
        })
    }

    /// Judges `posting` against the balances the postings judged before it left; when it passes,
    /// moves them (in memory: [`write`](Self::write) stores the net result).
    pub(super) fn judge(&mut self, posting: &Posting<'_>) -> Result<()> {
        check(posting, |id| self.state.get(&id))?;
        if let Some(from) = posting.from.and_then(|id| self.state.get_mut(&id)) {
            from.balance -= posting.amount;
        }
        if let Some(to) = posting.to.and_then(|id| self.state.get_mut(&id)) {
            to.balance += posting.amount;
        }
        Ok(())
    }

    /// Writes each account's net change in one statement: an account many postings touched is
    /// written once, and one they left unchanged not at all.
    ///
    /// SQL: `update accounts as a set balance = a.balance + v.delta from unnest($1::uuid[],
    /// $2::numeric[]) as v(id, delta) where a.id = v.id`.
    pub(super) async fn write(&self, conn: &mut PgConnection) -> Result<()> {
        let (accounts, deltas): (Vec<Uuid>, Vec<Decimal>) = self
            .state
            .values()
            .filter_map(|l| {
                let delta = l.balance - self.before.get(&l.id).copied().unwrap_or(l.balance);
                (!delta.is_zero()).then_some((l.id.as_uuid(), delta))
            })
            .unzip();
        if accounts.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            r#"
            update accounts as a
            set balance = a.balance + v.delta
            from unnest($1::uuid[], $2::numeric[]) as v(id, delta)
            where a.id = v.id
            "#,
            &accounts,
            &deltas
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}
