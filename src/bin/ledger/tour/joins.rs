//! JOINs: `select_related` and `prefetch_related`.

use std::io::Write;

use ledger::transactions;
use ledger::users;
use sqlx::PgConnection;

use crate::table::{Table, opt};

use super::{AnyResult, heading, step};

pub(super) async fn joins(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "JOINs")?;
    step(
        out,
        "Transaction.objects.select_related('from_account', 'to_account')",
        "transactions::EntryQuery::new().limit(5).list_with_accounts(db)  (one query, left joins)",
    )?;
    let mut t = Table::new(&["type", "amount", "from balance", "to balance"]);
    for row in transactions::EntryQuery::new()
        .limit(5)
        .list_with_accounts(&mut *conn)
        .await?
    {
        t.row(vec![
            row.entry.kind.to_string(),
            row.entry.amount.to_string(),
            opt(row.from_account.map(|a| a.balance)),
            opt(row.to_account.map(|a| a.balance)),
        ]);
    }
    t.print(out)?;
    step(
        out,
        "User.objects.prefetch_related('accounts')",
        "UserQuery::new().per_page(20).keyset_with_accounts(&mut conn, None)  (two queries a page, however many users)",
    )?;
    let mut t = Table::new(&["user", "accounts"]);
    let page = users::UserQuery::new()
        .per_page(20)
        .keyset_with_accounts(&mut *conn, None)
        .await?;
    for u in page.items {
        let list: Vec<String> = u
            .accounts
            .iter()
            .map(|a| format!("{} {}", a.balance, a.currency))
            .collect();
        t.row(vec![u.user.name, list.join(", ")]);
    }
    t.print(out)?;
    Ok(())
}
