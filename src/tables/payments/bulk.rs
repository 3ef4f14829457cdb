//! Bulk writes of payments.

use serde_json::Value;
use sqlx::{Acquire, PgConnection};

use super::{Payment, PaymentId, check_payload};
use crate::Result;
use crate::tables::bulk::{self, BulkInserted, BulkOptions};
use crate::tables::copy::CopyText;

/// Stores many documents, one `insert ... select ... from unnest(...)` per chunk, all or nothing.
/// (Payments have no unique column but their generated id, so there is nothing to skip:
/// [`BulkOptions::on_conflict`] does not apply.)
///
/// Django: `Payment.objects.bulk_create([Payment(data={...}), ...])`
///
/// SQL: first `select nextval(pg_get_serial_sequence('payments', 'id')) from generate_series(1,
/// $1)` reserves one id per document (so each returned row is matched to its input by id, never
/// by the order `returning` happens to use); then per chunk, `insert into payments (id, data)
/// select * from unnest($1::bigint[], $2::jsonb[]) returning ...`. After a large load, `vacuum analyze payments` lets the planner
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
    let op =
        crate::ground::telemetry::op_span!("ledger.payments.insert_many", "INSERT", "payments");
    crate::ground::telemetry::traced(op, async move {
        bulk::validate_all(documents, check_payload)?;
        let chunk_size = options.checked_chunk_size()?;
        let mut tx = conn.begin().await?;
        let ids = reserve_ids(&mut tx, documents.len()).await?;
        let mut rows = Vec::with_capacity(documents.len());
        for (chunk, chunk_ids) in documents.chunks(chunk_size).zip(ids.chunks(chunk_size)) {
            rows.extend(
                sqlx::query_as!(
                    Payment,
                    r#"
                insert into payments (id, data)
                select * from unnest($1::bigint[], $2::jsonb[])
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
        Ok(bulk::align(&ids, rows, |p| p.id.get()))
    })
    .await
}

/// Takes `count` ids from the payments' identity sequence, in one round trip. Ids a rolled-back
/// transaction took are never reused: gaps, as with any sequence.
async fn reserve_ids(conn: &mut PgConnection, count: usize) -> Result<Vec<i64>> {
    let count = i32::try_from(count)
        .map_err(|_| crate::Error::invalid("documents", "more than 2^31 in one call"))?;
    Ok(sqlx::query_scalar!(
        r#"
        select nextval(pg_get_serial_sequence('payments', 'id')) as "id!"
        from generate_series(1, $1::int)
        "#,
        count
    )
    .fetch_all(conn)
    .await?)
}

/// Stores many documents through `COPY ... FROM STDIN`: same validation and atomicity as
/// [`insert_many`], no rows read back. Returns the new ids in input order.
///
/// Django: none.
///
/// SQL: ids reserved as in [`insert_many`], then `copy payments (id, data) from stdin` in text
/// format (JSON text, escaped).
///
/// # Errors
/// As [`insert_many`].
pub async fn copy_in(conn: &mut PgConnection, documents: &[Value]) -> Result<Vec<PaymentId>> {
    let op = crate::ground::telemetry::op_span!("ledger.payments.copy_in", "COPY", "payments");
    crate::ground::telemetry::traced(op, async move {
        bulk::validate_all(documents, check_payload)?;
        let mut tx = conn.begin().await?;
        let ids: Vec<PaymentId> = reserve_ids(&mut tx, documents.len())
            .await?
            .into_iter()
            .map(PaymentId)
            .collect();
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
    })
    .await
}
