//! Transactions and savepoints: the seed's `transfer_funds` and a nested `atomic` that rolls back.

use std::io::Write;

use ledger::accounts::{self, Account};
use ledger::atomic;
use ledger::transactions::{self, Transfer};
use ledger::users::NewUser;
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::table::{Table, opt, short};

use super::{AnyResult, account_table, heading, step, value};

pub(super) async fn money(
    conn: &mut PgConnection,
    out: &mut impl Write,
    made: &[Account],
) -> AnyResult {
    heading(out, "Transactions (Atomic)")?;
    // Two active USD demo accounts, the richer one paying.
    let mut usable: Vec<&Account> = made
        .iter()
        .filter(|a| a.status == "active" && a.currency == "USD")
        .collect();
    usable.sort_by_key(|a| std::cmp::Reverse(a.balance));
    let [from, to] = [usable[0].id, usable[1].id];
    step(
        out,
        "transfer_funds(from_account_id, to_account_id, Decimal('125.50'))",
        "transactions::transfer(&mut conn, &Transfer::new(from, to, Decimal::new(12_550, 2)))  (locks both rows in id order)",
    )?;
    let request =
        Transfer::new(from, to, Decimal::new(12_550, 2)).idempotency_key("tour-transfer-1");
    let entry = transactions::transfer(&mut *conn, &request).await?;
    let mut t = Table::new(&["id", "type", "from", "to", "amount", "status"]);
    t.row(vec![
        short(entry.id),
        entry.kind.to_string(),
        opt(entry.from_account_id.map(short)),
        opt(entry.to_account_id.map(short)),
        entry.amount.to_string(),
        entry.status.to_string(),
    ]);
    t.print(out)?;
    let again = transactions::transfer(&mut *conn, &request).await?;
    value(
        out,
        format!(
            "same idempotency key again -> same entry: {}",
            again.id == entry.id
        ),
    )?;
    let overdraft = Transfer::new(to, from, Decimal::from(1_000_000));
    let refused = transactions::transfer(&mut *conn, &overdraft).await;
    value(
        out,
        format!(
            "overdraft -> Err({})",
            refused.err().map(|e| e.to_string()).unwrap_or_default()
        ),
    )?;
    account_table(
        out,
        &[
            accounts::get(&mut *conn, from).await?,
            accounts::get(&mut *conn, to).await?,
        ],
    )?;

    heading(out, "Savepoints")?;
    step(
        out,
        "with atomic(): create user; with atomic(): Account.objects.create(user=user, balance=-100)",
        "atomic::create_user_then_try_account(&mut conn, &new_user, Decimal::from(-100))",
    )?;
    let outcome = atomic::create_user_then_try_account(
        &mut *conn,
        &NewUser::new("test@tour.example", "Test"),
        Decimal::from(-100),
    )
    .await?;
    value(
        out,
        format!(
            "inner block: Err({}); user {} still created",
            outcome
                .account
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            outcome.user.email
        ),
    )?;
    Ok(())
}
