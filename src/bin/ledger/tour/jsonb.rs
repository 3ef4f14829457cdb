//! JSONB: storing a document, key look-ups (nested and numeric) and `has_key`.

use std::io::Write;

use ledger::payments::{self, PaymentData, Shipping};
use ledger::transactions;
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::PgConnection;

use crate::table::{Table, short};

use super::{AnyResult, heading, step, value};

fn payment_table(out: &mut impl Write, rows: &[payments::Payment]) -> AnyResult {
    let mut t = Table::new(&["id", "data"]);
    for p in rows {
        t.row(vec![short(p.id), p.data.to_string()]);
    }
    Ok(t.print(out)?)
}

pub(super) async fn jsonb(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "JSONB")?;
    step(
        out,
        "Payment.objects.create(data={'method': 'credit_card', 'last4': '4242', 'brand': 'Visa'})",
        "payments::insert(db, &PaymentData { method, last4, brand, .. })",
    )?;
    let card = PaymentData {
        method: Some("credit_card".into()),
        last4: Some("4242".into()),
        brand: Some("Visa".into()),
        amount: Some(Decimal::new(12_050, 2)),
        shipping: Some(Shipping {
            country: Some("US".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    payment_table(out, &[payments::insert(&mut *conn, &card).await?])?;
    for data in [
        json!({"method": "credit_card", "brand": "Mastercard", "amount": 9, "discount": 2, "shipping": {"country": "FR"}}),
        json!({"method": "bank_transfer", "amount": 1000, "reference": "INV-77"}),
        json!({"method": "credit_card", "brand": "Visa", "amount": "150"}),
    ] {
        payments::insert_json(&mut *conn, &data).await?;
    }
    step(
        out,
        "Payment.objects.filter(data__method='credit_card')",
        r#"payments::PaymentQuery::new().limit(10).list_by_method(db, "credit_card")  (data @> {...}, GIN)"#,
    )?;
    payment_table(
        out,
        &payments::PaymentQuery::new()
            .limit(10)
            .list_by_method(&mut *conn, "credit_card")
            .await?,
    )?;
    step(
        out,
        "Payment.objects.filter(data__brand='Visa')",
        r#"payments::PaymentQuery::new().limit(10).list_by_brand(db, "Visa")"#,
    )?;
    payment_table(
        out,
        &payments::PaymentQuery::new()
            .limit(10)
            .list_by_brand(&mut *conn, "Visa")
            .await?,
    )?;
    step(
        out,
        "Payment.objects.filter(data__amount__gte=100)",
        "payments::PaymentQuery::new().limit(10).list_amount_at_least(db, Decimal::from(100))  (numbers compare as numbers: 9 < 100; \"150\" is a string)",
    )?;
    payment_table(
        out,
        &payments::PaymentQuery::new()
            .limit(10)
            .list_amount_at_least(&mut *conn, Decimal::from(100))
            .await?,
    )?;
    step(
        out,
        "Payment.objects.filter(data__has_key='discount')",
        r#"payments::PaymentQuery::new().limit(10).list_with_key(db, "discount")"#,
    )?;
    payment_table(
        out,
        &payments::PaymentQuery::new()
            .limit(10)
            .list_with_key(&mut *conn, "discount")
            .await?,
    )?;
    step(
        out,
        "Payment.objects.filter(data__shipping__country='US')",
        r#"payments::PaymentQuery::new().limit(10).list_by_shipping_country(db, "US")"#,
    )?;
    payment_table(
        out,
        &payments::PaymentQuery::new()
            .limit(10)
            .list_by_shipping_country(&mut *conn, "US")
            .await?,
    )?;
    step(
        out,
        "Transaction.objects.filter(metadata__source='tour')",
        r#"transactions::EntryQuery::new().limit(3).list_metadata_containing(db, &json!({"source": "tour"}))"#,
    )?;
    let entries = transactions::EntryQuery::new()
        .limit(3)
        .list_metadata_containing(&mut *conn, &json!({"source": "tour"}))
        .await?;
    value(
        out,
        format!("{} entries (first 3 of the demo deposits)", entries.len()),
    )?;
    Ok(())
}
