//! What a caller asks to move: a [`Movement`] (deposit or withdrawal), a [`Transfer`], one
//! [`BatchItem`] of a batch or of the poster, and the amount rule they share
//! ([`validate_amount`]). Re-exported by [`transactions`](super). How a request becomes the row
//! it writes is `posting`.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::tables::accounts::AccountId;
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

/// One movement of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchItem {
    /// See [`deposit`](super::deposit).
    Deposit(Movement),
    /// See [`withdraw`](super::withdraw).
    Withdrawal(Movement),
    /// See [`transfer`](super::transfer).
    Transfer(Transfer),
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
}
