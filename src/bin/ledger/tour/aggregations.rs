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
        "transactions::total_completed(db)  (per currency: completed, and Django's success)",
    )?;
    let mut t = Table::new(&["currency", "total", "count"]);
    for c in transactions::total_completed(&mut *conn).await? {
        t.row(vec![c.currency, c.total.to_string(), c.count.to_string()]);
    }
    t.print(out)?;
    step(
        out,
        "(the sheet's figure: every currency added together)",
        "transactions::total_completed_across_currencies(db)",
    )?;
    value(
        out,
        transactions::total_completed_across_currencies(&mut *conn).await?,
    )?;
    step(
        out,
        "Transaction.objects.aggregate(total=Sum, count=Count, average=Avg, maximum=Max)",
        "transactions::stats(db)  (per currency, applied movements only)",
    )?;
    let mut t = Table::new(&[
        "currency", "total", "count", "average", "maximum", "minimum",
    ]);
    for s in transactions::stats(&mut *conn).await? {
        t.row(vec![
            s.currency,
            s.total.to_string(),
            s.count.to_string(),
            s.average.to_string(),
            s.maximum.to_string(),
            s.minimum.to_string(),
        ]);
    }
    t.print(out)?;
    step(
        out,
        "(the sheet's figures: every status and currency together)",
        "transactions::stats_across_currencies(db)",
    )?;
    let s = transactions::stats_across_currencies(&mut *conn).await?;
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
        r#"transactions::monthly_revenue(db, "UTC")  (per currency, applied movements only)"#,
    )?;
    let mut t = Table::new(&["month", "currency", "revenue", "count"]);
    for m in transactions::monthly_revenue(&mut *conn, "UTC").await? {
        t.row(vec![
            m.month.format("%Y-%m").to_string(),
            m.currency,
            m.revenue.to_string(),
            m.count.to_string(),
        ]);
    }
    t.print(out)?;
    Ok(())
}
