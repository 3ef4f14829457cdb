//! `accounts`: the seed's `Account` model, one balance in one currency owned by one user.
//!
//! Invariants: the balance is never negative ([`BALANCE_NON_NEGATIVE`]); the currency is three
//! uppercase letters ([`CURRENCY_FORMAT`]); the owner exists and cannot be deleted while the account
//! does ([`USER_FKEY`], Django's `PROTECT`).

use rust_decimal::Decimal;

use crate::ids::id_type;
use crate::users::UserId;

/// The seed's `CheckConstraint(check=Q(balance__gte=0), name='balance_non_negative')`.
pub const BALANCE_NON_NEGATIVE: &str = "balance_non_negative";
/// `check (currency ~ '^[A-Z]{3}$')`.
pub const CURRENCY_FORMAT: &str = "accounts_currency_format";
/// `foreign key (user_id) references users (id) on delete restrict`.
pub const USER_FKEY: &str = "accounts_user_id_fkey";

id_type! {
    /// The id of an [`Account`].
    AccountId
}

/// A row of `accounts`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    /// Primary key.
    pub id: AccountId,
    /// The owner.
    pub user_id: UserId,
    /// numeric(15,2), never negative.
    pub balance: Decimal,
    /// ISO 4217 code, `USD` by default.
    pub currency: String,
    /// `active` by default.
    pub status: String,
}
