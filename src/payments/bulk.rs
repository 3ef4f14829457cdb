//! Bulk writes of payments.

use serde_json::Value;
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use super::{Payment, PaymentId, check_payload};
use crate::Result;
use crate::bulk::{self, BulkInserted, BulkOptions};
use crate::copy::CopyText;

/// Stores many documents, one `insert ... select ... from unnest(...)` per chunk, all or nothing.
/// (Payments have no unique column but their generated id, so there is nothing to skip:
/// [`BulkOptions::on_conflict`] does not apply.)
///
/// Django: `Payment.objects.bulk_create([Payment(data={...}), ...])`
///
/// SQL: per chunk, `insert into payments (id, data) select * from unnest($1::uuid[],
/// $2::jsonb[]) returning ...`. After a large load, `vacuum analyze payments` lets the planner
/// use the GIN index again (see the module docs).
///
/// # Errors
/// [`Error::InvalidItem`](crate::Error::InvalidItem) naming the first document that is not an
/// object or is too large. Nothing is written on any error.
pub async fn insert_many(
    conn: &mut PgConnection,
    documents: &[Value],
    options: BulkOptions,
) -> Result<BulkInserted<Payment>> {
    bulk::validate_all(documents, check_payload)?;
    let chunk_size = options.checked_chunk_size()?;
    let ids: Vec<Uuid> = documents.iter().map(|_| Uuid::new_v4()).collect();
    let mut tx = conn.begin().await?;
    let mut rows = Vec::with_capacity(documents.len());
    for (chunk, chunk_ids) in documents.chunks(chunk_size).zip(ids.chunks(chunk_size)) {
        rows.extend(
            sqlx::query_as!(
                Payment,
                r#"
                insert into payments (id, data)
                select * from unnest($1::uuid[], $2::jsonb[])
                returning id, data, created_at
                "#,
                chunk_ids,
                chunk
            )
            .fetch_all(&mut *tx)
            .await?,
        );
    }
    tx.commit().await?;
    Ok(bulk::align(&ids, rows, |p| p.id.as_uuid()))
}

/// Stores many documents through `COPY ... FROM STDIN`: same validation and atomicity as
/// [`insert_many`], no rows read back. Returns the new ids in input order.
///
/// Django: none.
///
/// SQL: `copy payments (id, data) from stdin` in text format (JSON text, escaped).
///
/// # Errors
/// As [`insert_many`].
pub async fn copy_in(conn: &mut PgConnection, documents: &[Value]) -> Result<Vec<PaymentId>> {
    bulk::validate_all(documents, check_payload)?;
    let ids: Vec<PaymentId> = documents.iter().map(|_| PaymentId::new()).collect();
    let mut tx = conn.begin().await?;
    // COPY has no bind parameters and no result columns: no query macro can express it.
    let mut copy = tx
        .copy_in_raw("copy payments (id, data) from stdin")
        .await?;
    let mut data = CopyText::new();
    for (id, document) in ids.iter().zip(documents) {
        data.display(id).text(&document.to_string());
        data.end_row();
        if data.len() >= 1 << 20 {
            copy.send(data.take()).await?;
        }
    }
    copy.send(data.take()).await?;
    copy.finish().await?;
    tx.commit().await?;
    Ok(ids)
}
