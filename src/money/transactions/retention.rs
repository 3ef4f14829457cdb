//! How long an idempotency key is remembered, and pruning the ones past it.
//!
//! Every keyed movement or batch adds a row to `idempotency_keys`. Kept forever, the table grows
//! with the ledger; a key only has to outlive every retry its caller may make. A team chooses the
//! lifetime ([`DEFAULT_KEY_RETENTION`], 7 days, unless it says otherwise) and prunes what is
//! older with [`prune_idempotency_keys`] or `ledger prune-keys`, in small batches, on a live
//! database.
//!
//! **A repeat inside the lifetime** replays the first result, as always. **A repeat after it**
//! finds its claim gone:
//! - a single movement ([`deposit`](super::deposit), [`withdraw`](super::withdraw),
//!   [`transfer`](super::transfer), and the [`Poster`](super::Poster)'s) still **replays**, and is
//!   never applied twice: its entry keeps the key in `transactions.idempotency_key`, whose unique
//!   constraint ([`IDEMPOTENCY_KEY_UNIQUE`](super::IDEMPOTENCY_KEY_UNIQUE)) catches the late
//!   repeat, which then answers with that entry (or
//!   [`Error::IdempotencyConflict`](crate::Error::IdempotencyConflict) for another movement).
//!   Pruning costs these keys nothing but the claim row;
//! - a batch ([`post_batch_with_key`](super::post_batch_with_key)) keeps its key only in
//!   `idempotency_keys`, so a late repeat **applies again**, as a new batch. Keep the lifetime
//!   longer than any caller's retries (a queue's redelivery window, a client's backoff), as
//!   Stripe keeps its keys 24 hours and says so.

use std::time::Duration;

use sqlx::PgPool;

use crate::{Error, Result};

/// The lifetime of a key unless a team chooses another: 7 days, beyond any retry schedule a
/// caller would run (minutes to hours), and a week of keys is a small table.
pub const DEFAULT_KEY_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The shortest lifetime [`prune_idempotency_keys`] accepts: an hour. A shorter one could
/// prune a key whose caller is still retrying through a failover or a deploy.
pub const MIN_KEY_RETENTION: Duration = Duration::from_secs(60 * 60);

/// Keys deleted per transaction by [`prune_idempotency_keys`] unless told otherwise.
pub const PRUNE_BATCH: i64 = 1_000;

/// Deletes the idempotency keys claimed longer than `retention` ago, oldest first, `batch` keys
/// per short transaction, until none is left; returns how many were deleted.
///
/// Django: none (a periodic task a team would write).
///
/// SQL, per batch (its own transaction, on a pooled connection):
///
/// ```sql
/// with doomed as (
///     select key from idempotency_keys
///     where created_at < now() - make_interval(secs => $1)
///     order by created_at
///     limit $2
///     for update skip locked
/// )
/// delete from idempotency_keys k using doomed d where k.key = d.key
/// ```
///
/// Movements are never blocked: a batch locks only keys past their lifetime (which no movement
/// claims: a repeat of one inserts anew once it is gone), skips any row another transaction
/// holds, and reads them by `idempotency_keys_created_at_idx`. A key inside its lifetime is never
/// touched.
///
/// # Errors
/// [`Error::InvalidInput`] for a `retention` under [`MIN_KEY_RETENTION`] or a `batch` outside
/// `1..=100_000`, before anything is sent; a database error stops the pruning, with the batches
/// before it committed.
pub async fn prune_idempotency_keys(pool: &PgPool, retention: Duration, batch: i64) -> Result<u64> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.prune_idempotency_keys",
        "DELETE",
        "idempotency_keys"
    );
    crate::ground::telemetry::traced(op, async move {
        if retention < MIN_KEY_RETENTION {
            return Err(Error::invalid(
                "retention",
                format!(
                    "must be at least {} seconds (an hour), not {}",
                    MIN_KEY_RETENTION.as_secs(),
                    retention.as_secs()
                ),
            ));
        }
        if !(1..=100_000).contains(&batch) {
            return Err(Error::invalid(
                "batch",
                format!("must be between 1 and 100000, not {batch}"),
            ));
        }
        let seconds = retention.as_secs_f64();
        let mut pruned = 0;
        loop {
            let deleted = sqlx::query!(
                r#"
                with doomed as (
                    select key from idempotency_keys
                    where created_at < now() - make_interval(secs => $1)
                    order by created_at
                    limit $2
                    for update skip locked
                )
                delete from idempotency_keys k using doomed d where k.key = d.key
                "#,
                seconds,
                batch
            )
            .execute(pool)
            .await?
            .rows_affected();
            pruned += deleted;
            if deleted < batch.unsigned_abs() {
                return Ok(pruned);
            }
        }
    })
    .await
}
