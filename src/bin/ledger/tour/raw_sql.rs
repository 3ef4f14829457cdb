//! Raw SQL: `cursor.execute` and `Manager.raw`.

use std::io::Write;

use ledger::transactions;
use ledger::users;
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::table::Table;

use super::{AnyResult, heading, step, user_table, value};

pub(super) async fn raw_sql(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Raw SQL")?;
    step(
        out,
        "cursor.execute('SELECT u.name, SUM(t.amount) AS total_spent ... LIMIT %s', [10])",
        r#"transactions::top_spenders(db, "USD", 30, 10)  (one currency: the sheet's adds them)"#,
    )?;
    let mut t = Table::new(&["name", "total_spent"]);
    for s in transactions::top_spenders(&mut *conn, "USD", 30, 10).await? {
        t.row(vec![s.name, s.total_spent.to_string()]);
    }
    t.print(out)?;
    step(
        out,
        "(the same report as the cheat sheet writes it: USD and EUR added together)",
        "transactions::top_spenders_across_currencies(db, 30, 10)",
    )?;
    let mut t = Table::new(&["name", "total_spent (mixed currencies)"]);
    for s in transactions::top_spenders_across_currencies(&mut *conn, 30, 10).await? {
        t.row(vec![s.name, s.total_spent.to_string()]);
    }
    t.print(out)?;
    step(
        out,
        "User.objects.raw('SELECT * FROM users WHERE balance > %s', [1000])",
        "users::list_with_balance_over(db, ledger::users::Visibility::Live, Decimal::from(1000))  (balance lives on accounts)",
    )?;
    user_table(
        out,
        &users::list_with_balance_over(
            &mut *conn,
            ledger::users::Visibility::Live,
            Decimal::from(1000),
        )
        .await?,
    )?;
    step(out, "(no Django equivalent)", "transactions::reconcile(db)")?;
    let off = transactions::reconcile(&mut *conn).await?;
    value(
        out,
        format!("{} accounts disagree with their ledger", off.len()),
    )?;
    Ok(())
}
