//! Aggregations: `aggregate` and monthly `annotate(...).values(...)`.

use std::io::Write;

use ledger::transactions;
use sqlx::PgConnection;

use crate::table::{Table, opt};

use super::{AnyResult, heading, step, value};

pub(super) async fn aggregations(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Aggregations")?;
    step(
        out,
        "Transaction.objects.filter(status='success').aggregate(total=Sum('amount'))",
        "transactions::total_completed(db)  (completed, and Django's success)",
    )?;
    value(out, transactions::total_completed(&mut *conn).await?)?;
    step(
        out,
        "Transaction.objects.aggregate(total=Sum, count=Count, average=Avg, maximum=Max)",
        "transactions::stats(db)",
    )?;
    let s = transactions::stats(&mut *conn).await?;
    let mut t = Table::new(&["total", "count", "average", "maximum", "minimum"]);
    t.row(vec![
        s.total.to_string(),
        s.count.to_string(),
        opt(s.average),
        opt(s.maximum),
        opt(s.minimum),
    ]);
    t.print(out)?;
    step(
        out,
        "Transaction.objects.annotate(month=TruncMonth('created_at')).values('month').annotate(revenue=Sum, count=Count)",
        r#"transactions::monthly_revenue(db, "UTC")"#,
    )?;
    let mut t = Table::new(&["month", "revenue", "count"]);
    for m in transactions::monthly_revenue(&mut *conn, "UTC").await? {
        t.row(vec![
            m.month.format("%Y-%m").to_string(),
            m.revenue.to_string(),
            m.count.to_string(),
        ]);
    }
    t.print(out)?;
    Ok(())
}
