//! Nested atomic blocks: the seed's savepoint example, and how to write your own.
//!
//! Django's `transaction.atomic()` becomes `conn.begin()`; an `atomic()` inside another becomes
//! `tx.begin()` on the open transaction, which sqlx turns into a `savepoint`. Dropping a
//! transaction without committing rolls it back — to the savepoint for a nested one, so the outer
//! block carries on:
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> ledger::Result<()> {
//! use sqlx::Acquire;
//! use ledger::{accounts, users::{self, NewUser}};
//!
//! let mut conn = pool.acquire().await?;
//! let mut outer = conn.begin().await?;                       // with transaction.atomic():
//! let user = users::insert(&mut *outer, &NewUser::new("test@example.com", "Test")).await?;
//! {
//!     let mut inner = outer.begin().await?;                  //     with transaction.atomic():
//!     if accounts::open(&mut *inner, user.id, Some("usd")).await.is_ok() {
//!         inner.commit().await?;
//!     }                                                      //     (dropped: rolled back)
//! }
//! outer.commit().await?;                                     // the user is still created
//! # Ok(())
//! # }
//! ```
//!
//! The money movements of [`transactions`](crate::transactions) nest the same way: called with
//! `&mut *tx` they run in a savepoint of the caller's transaction.

use rust_decimal::Decimal;
use sqlx::{Acquire, PgConnection};

use crate::accounts::{Account, AccountId};
use crate::users::{self, NewUser, User, UserId};
use crate::{Error, Result};

/// What [`create_user_then_try_account`] did.
#[derive(Debug)]
pub struct SavepointOutcome {
    /// The user, created and committed.
    pub user: User,
    /// The account, or why the inner block was rolled back.
    pub account: Result<Account>,
}

/// The seed's savepoint example: in one transaction, create a user, then in a nested block try
/// to create an account with `opening_balance`. A negative balance breaks
/// `balance_non_negative`; the nested block rolls back to its savepoint and the user is still
/// committed.
///
/// Django:
/// `with transaction.atomic(): user = User.objects.create(...); try: with transaction.atomic():
/// Account.objects.create(user=user, balance=-100) except Exception: pass`
///
/// A positive `opening_balance` is written straight into the row, as the seed does; such money
/// has no `transactions` row, and [`reconcile`](crate::transactions::reconcile) reports the
/// account. Real money arrives through [`deposit`](crate::transactions::deposit).
///
/// SQL: `begin`; `insert into users`; `savepoint`; `insert into accounts (user_id, balance)`;
/// `rollback to savepoint` or `release savepoint`; `commit`.
///
/// # Errors
/// Only for the outer block: [`Error::InvalidInput`] or [`Error::UniqueViolation`] for the user
/// (then nothing is written). The inner block's failure is returned in
/// [`SavepointOutcome::account`].
pub async fn create_user_then_try_account(
    conn: &mut PgConnection,
    user: &NewUser,
    opening_balance: Decimal,
) -> Result<SavepointOutcome> {
    let mut outer = conn.begin().await?;
    let user = users::insert(&mut *outer, user).await?;
    let account = {
        let mut inner = outer.begin().await?;
        // The seed writes the balance directly; this crate otherwise moves money only through
        // `transactions`, so this one insert lives here, where the example needs it.
        let inserted = sqlx::query_as!(
            Account,
            r#"
            insert into accounts (user_id, balance)
            values ($1, $2)
            returning id as "id: AccountId", user_id as "user_id: UserId", balance, currency, status
            "#,
            user.id.as_uuid(),
            opening_balance
        )
        .fetch_one(&mut *inner)
        .await
        .map_err(Error::from);
        match inserted {
            Ok(account) => inner.commit().await.map(|()| account).map_err(Error::from),
            Err(err) => Err(err), // `inner` drops here: rollback to the savepoint
        }
    };
    outer.commit().await?;
    Ok(SavepointOutcome { user, account })
}
