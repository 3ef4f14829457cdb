//! Window functions: running totals and ranks.

use std::io::Write;

use futures::TryStreamExt;
use ledger::accounts;
use ledger::transactions;
use sqlx::PgConnection;

use crate::table::{Table, short};

use super::{AnyResult, heading, step};

pub(super) async fn windows(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Window Functions")?;
    step(
        out,
        "Transaction.objects.annotate(running_total=Window(Sum('amount'), partition_by=[F('from_account__user')], order_by=F('created_at').asc()))",
        "transactions::stream_running_totals(db)  (per user and currency, applied movements only)",
    )?;
    let mut t = Table::new(&["entry", "user", "currency", "amount", "running_total"]);
    let mut rows = transactions::stream_running_totals(&mut *conn);
    while let Some(r) = rows.try_next().await? {
        t.row(vec![
            short(r.id),
            short(r.user_id),
            r.currency,
            r.amount.to_string(),
            r.running_total.to_string(),
        ]);
    }
    drop(rows);
    t.print(out)?;
    step(
        out,
        "Account.objects.annotate(rank=Window(Rank(), order_by=F('balance').desc())).values('user__name', 'balance', 'rank')",
        "accounts::stream_rank_by_balance(db)  (ranked within each currency)",
    )?;
    let mut t = Table::new(&["currency", "rank", "user", "balance"]);
    let mut rows = accounts::stream_rank_by_balance(&mut *conn);
    while let Some(r) = rows.try_next().await? {
        t.row(vec![
            r.currency,
            r.rank.to_string(),
            r.user_name,
            r.balance.to_string(),
        ]);
    }
    t.print(out)?;
    Ok(())
}
