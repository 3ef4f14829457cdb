//! Reading the whole ledger without holding it in memory.

use chrono::{DateTime, Utc};
use futures::{Stream, TryStreamExt};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::LedgerEntry;
use crate::bulk::MAX_CHUNK_SIZE;
use crate::{Error, Result};

/// Every entry in time order (`created_at`, then id), as a stream: rows are decoded as they
/// arrive, so memory stays flat whatever the table size.
///
/// Django: `for tx in Transaction.objects.order_by('created_at').iterator(chunk_size=1000)`
///
/// SQL: one `select ... from transactions order by created_at, id` whose rows sqlx reads off the
/// socket as the stream is polled. The stream holds its connection until it ends or is dropped;
/// dropping it early is fine (sqlx discards the rest of the result before the connection is used
/// again).
pub fn stream_all<'e>(
    db: impl PgExecutor<'e> + 'e,
) -> impl Stream<Item = Result<LedgerEntry>> + Send + 'e {
    query_entries!(
        select r#"
        from transactions
        order by created_at, id
        "#
    )
    .fetch(db)
    .map_err(Error::from)
}

/// Every entry in time order, `size` rows at a time (the seed's `iterator(chunk_size=1000)`).
/// Each chunk is one keyset query on a pooled connection that is released between chunks, so
/// at most one chunk is in memory and no connection or transaction is held while the caller
/// works; rows committed meanwhile after the last key read are picked up, earlier ones are not.
///
/// SQL: `where (created_at, id) > ($1, $2) order by created_at, id limit $3` (index
/// `transactions_created_at_id_idx`).
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): each chunk is a range scan of
/// `transactions_created_at_id_idx`; no sort.
///
/// # Errors
/// The first item is [`Error::InvalidInput`] for a size outside `1..=MAX_CHUNK_SIZE`.
pub fn chunks(
    pool: &PgPool,
    size: usize,
) -> impl Stream<Item = Result<Vec<LedgerEntry>>> + Send + use<> {
    let pool = pool.clone();
    futures::stream::try_unfold(
        Some(None),
        move |state: Option<Option<(DateTime<Utc>, Uuid)>>| {
            let pool = pool.clone();
            async move {
                let Some(after) = state else {
                    return Ok(None);
                };
                if !(1..=MAX_CHUNK_SIZE).contains(&size) {
                    return Err(Error::invalid(
                        "size",
                        format!("must be between 1 and {MAX_CHUNK_SIZE}"),
                    ));
                }
                let limit = size as i64;
                let rows = match after {
                    None => {
                        query_entries!(
                            select r#"
                        from transactions
                        order by created_at, id
                        limit $1
                        "#,
                            limit
                        )
                        .fetch_all(&pool)
                        .await?
                    }
                    Some((created_at, id)) => {
                        query_entries!(
                            select r#"
                        from transactions
                        where (created_at, id) > ($1, $2)
                        order by created_at, id
                        limit $3
                        "#,
                            created_at,
                            id,
                            limit
                        )
                        .fetch_all(&pool)
                        .await?
                    }
                };
                if rows.is_empty() {
                    return Ok(None);
                }
                let next = if rows.len() < size {
                    None
                } else {
                    rows.last().map(|r| Some((r.created_at, r.id.as_uuid())))
                };
                Ok(Some((rows, next)))
            }
        },
    )
}
