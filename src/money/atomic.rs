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
//! The money movements of [`transactions`] nest the same way: called with
//! `&mut *tx` they run in a savepoint of the caller's transaction.

use rust_decimal::Decimal;
use sqlx::{Acquire, PgConnection};

use crate::money::transactions::{self, Movement};
use crate::tables::accounts::{self, Account};
use crate::tables::users::{self, NewUser, User, UserId};
use crate::{Error, Result};

/// What [`create_user_then_try_account`] did.
#[derive(Debug)]
pub struct SavepointOutcome {
    /// The user, created and committed.
    pub user: User,
    /// The account, or why the inner block was rolled back.
    pub account: Result<Account>,
}

/// The seed's savepoint example: in one transaction, create a user, then in a nested block open
/// an account and deposit `opening_balance` into it. A negative opening balance (the seed's
/// `balance=-100`) is refused; the nested block rolls back to its savepoint, taking the new
/// account with it, and the user is still committed.
///
/// Django:
/// `with transaction.atomic(): user = User.objects.create(...); try: with transaction.atomic():
/// Account.objects.create(user=user, balance=-100) except Exception: pass`
///
/// The seed writes the balance straight into the row; here the opening money arrives through
/// [`deposit`](crate::transactions::deposit), so it has its `transactions` row and
/// [`reconcile`](crate::transactions::reconcile) stays clean. A zero opening balance opens an
/// empty account.
///
/// SQL: `begin`; `insert into users`; `savepoint`; `insert into accounts`; the deposit (a nested
/// savepoint: lock, credit, insert the `transactions` row); `rollback to savepoint` or
/// `release savepoint`; `commit`.
///
/// # Errors
/// Only for the outer block: [`Error::InvalidInput`] or [`Error::UniqueViolation`] for the user
/// (then nothing is written). The inner block's failure ([`Error::InvalidInput`] for a negative
/// or ill-formed amount) is returned in [`SavepointOutcome::account`].
pub async fn create_user_then_try_account(
    conn: &mut PgConnection,
    user: &NewUser,
    opening_balance: Decimal,
) -> Result<SavepointOutcome> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.atomic.create_user_then_try_account",
        "atomic",
        "users"
    );
    crate::ground::telemetry::traced(op, async move {
        let mut outer = conn.begin().await?;
        let user = users::insert(&mut *outer, user).await?;
        let account = {
            let mut inner = outer.begin().await?;
            match open_with(&mut inner, user.id, opening_balance).await {
                Ok(account) => inner.commit().await.map(|()| account).map_err(Error::from),
                Err(err) => Err(err), // `inner` drops here: rollback to the savepoint
            }
        };
        outer.commit().await?;
        Ok(SavepointOutcome { user, account })
    })
    .await
}

async fn open_with(conn: &mut PgConnection, owner: UserId, opening: Decimal) -> Result<Account> {
    let account = accounts::open(&mut *conn, owner, None).await?;
    if opening == Decimal::ZERO {
        return Ok(account);
    }
    transactions::deposit(&mut *conn, &Movement::new(account.id, opening)).await?;
    accounts::get(&mut *conn, account.id).await
}
