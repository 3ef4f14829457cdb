//! A request as the posting it makes: the `transactions` row it will write (kind, accounts,
//! amount, metadata, key), the checks that need no database ([`Posting::validate`]), and how a
//! repeat is recognised ([`Posting::is_same_as`]). Every writer (a single movement, a batch, the
//! poster's flush) posts these.

use rust_decimal::Decimal;
use serde_json::Value;

use super::idempotency::validate_key;
use super::requests::{BatchItem, Movement, Transfer, validate_amount};
use super::{LedgerEntry, MAX_METADATA_BYTES};
use crate::ground::document;
use crate::ground::kinds::EntryKind;
use crate::tables::accounts::AccountId;
use crate::{Error, Result};

/// One movement, as the `transactions` row it will write.
#[derive(Debug)]
pub(super) struct Posting<'a> {
    pub(super) kind: EntryKind,
    pub(super) from: Option<AccountId>,
    pub(super) to: Option<AccountId>,
    pub(super) amount: Decimal,
    pub(super) metadata: &'a Value,
    pub(super) key: Option<&'a str>,
}

impl<'a> Posting<'a> {
    pub(super) fn deposit(movement: &'a Movement) -> Self {
        Self::one_account(EntryKind::Deposit, None, Some(movement.account), movement)
    }

    pub(super) fn withdrawal(movement: &'a Movement) -> Self {
        Self::one_account(
            EntryKind::Withdrawal,
            Some(movement.account),
            None,
            movement,
        )
    }

    fn one_account(
        kind: EntryKind,
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
            kind: EntryKind::Transfer,
            from: Some(transfer.from),
            to: Some(transfer.to),
            amount: transfer.amount,
            metadata: &transfer.metadata,
            key: transfer.idempotency_key.as_deref(),
        }
    }

    /// The posting of one item of a batch, or of a movement queued on the poster.
    pub(super) fn of(item: &'a BatchItem) -> Self {
        match item {
            BatchItem::Deposit(m) => Self::deposit(m),
            BatchItem::Withdrawal(m) => Self::withdrawal(m),
            BatchItem::Transfer(t) => Self::transfer(t),
        }
    }

    /// The accounts it touches: one, or two for a transfer.
    pub(super) fn accounts(&self) -> impl Iterator<Item = AccountId> + use<> {
        [self.from, self.to].into_iter().flatten()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_to_the_same_account_is_refused() {
        let id = AccountId::new();
        let t = Transfer::new(id, id, Decimal::ONE);
        assert!(matches!(
            Posting::transfer(&t).validate(),
            Err(Error::InvalidInput { field: "to", .. })
        ));
    }

    #[test]
    fn each_item_posts_its_kind_and_accounts() {
        let (a, b) = (AccountId::new(), AccountId::new());
        let items = [
            BatchItem::Deposit(Movement::new(a, Decimal::ONE)),
            BatchItem::Withdrawal(Movement::new(a, Decimal::ONE)),
            BatchItem::Transfer(Transfer::new(a, b, Decimal::ONE)),
        ];
        let posted: Vec<_> = items
            .iter()
            .map(Posting::of)
            .map(|p| (p.accounts().collect::<Vec<_>>(), p.kind))
            .map(|(accounts, kind)| (kind, accounts))
            .collect();
        assert_eq!(
            posted,
            [
                (EntryKind::Deposit, vec![a]),
                (EntryKind::Withdrawal, vec![a]),
                (EntryKind::Transfer, vec![a, b]),
            ]
        );
    }
}
