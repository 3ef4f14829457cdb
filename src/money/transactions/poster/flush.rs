//! The poster's one task: it gathers queued movements into batches, commits each batch in one
//! transaction, and answers every caller: each movement its own verdict (applied, or refused for
//! its own reason, which the others do not share), or, when the flush fails as a whole, the
//! flush's error.

use std::collections::HashMap;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::super::LedgerEntry;
use super::super::book::Book;
use super::super::idempotency;
use super::super::movements;
use super::super::posting::Posting;
use super::super::requests::BatchItem;
use super::super::retry::retrying;
use super::super::writes::insert_entries;
use super::shared::shared;
use super::{PosterOptions, Request};
use crate::{Error, Result};

/// The flusher: takes what has queued, flushes it, until the queue is closed and empty.
pub(super) async fn run(
    pool: PgPool,
    mut receiver: mpsc::Receiver<Request>,
    options: PosterOptions,
) {
    let mut held = JoinSet::new();
    while let Some(first) = receiver.recv().await {
        // Reap the movements posted on their own that have finished.
        while held.try_join_next().is_some() {}
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + options.linger;
        while batch.len() < options.max_batch {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if options.linger.is_zero() {
                        break;
                    }
                    match tokio::time::timeout_at(deadline, receiver.recv()).await {
                        Ok(Some(request)) => batch.push(request),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        let op = crate::ground::telemetry::op_span!(
            "ledger.transactions.Poster.flush",
            "post_batch",
            "transactions",
            ledger.rows = batch.len()
        );
        for request in &batch {
            op.span.follows_from(request.caller.id());
        }
        let (queued, size, started) = (receiver.len(), batch.len(), std::time::Instant::now());
        tracing::Instrument::instrument(flush(&pool, batch, &mut held), op.span).await;
        crate::ground::telemetry::metered::poster_flush(queued, size, started.elapsed());
    }
    // Closed: the movements still posting on their own finish before the flusher does.
    while held.join_next().await.is_some() {}
}

/// Posts one batch and answers its callers. A lone movement without a key is posted as the
/// single call posts it (one round trip); a keyed one goes through the flush, whose claim waits
/// at most 20 ms for a key held elsewhere, so that no lone caller can stall the flusher. A
/// movement whose key another transaction held is posted on its own, in a task of `held` (the
/// flusher waits for them before it ends), while the flush goes on without it.
pub(super) async fn flush(pool: &PgPool, batch: Vec<Request>, held: &mut JoinSet<()>) {
    if let [only] = batch.as_slice()
        && Posting::of(&only.movement).key.is_none()
    {
        let Some(Request {
            movement, reply, ..
        }) = batch.into_iter().next()
        else {
            return;
        };
        // A caller that stopped waiting no longer wants the answer; the movement stands.
        let _ = reply.send(alone(pool, &movement).await);
        return;
    }
    let (movements, replies): (Vec<BatchItem>, Vec<_>) =
        batch.into_iter().map(|r| (r.movement, r.reply)).unzip();
    let outcomes = match acquire(pool).await {
        Ok(mut conn) => match retrying!(flush_once(&mut conn, &movements).await) {
            Ok(outcomes) => outcomes,
            Err(err) => {
                tracing::warn!(error = %err, movements = movements.len(), "a shared flush failed");
                movements
                    .iter()
                    .map(|_| Outcome::Done(Err(shared(&err))))
                    .collect()
            }
        },
        Err(err) => movements
            .iter()
            .map(|_| Outcome::Done(Err(shared(&err))))
            .collect(),
    };
    for ((reply, outcome), movement) in replies.into_iter().zip(outcomes).zip(movements) {
        match outcome {
            // A caller that stopped waiting no longer wants the answer; the movement stands.
            Outcome::Done(result) => drop(reply.send(result)),
            Outcome::Held => {
                let pool = pool.clone();
                let own = async move {
                    drop(reply.send(alone(&pool, &movement).await));
                };
                held.spawn(tracing::Instrument::in_current_span(own));
            }
        }
    }
}

/// A movement posted as the single call posts it, on a pooled connection of its own: for a
/// keyed one, its key claimed first, waiting for a transaction that holds it.
async fn alone(pool: &PgPool, movement: &BatchItem) -> Result<LedgerEntry> {
    let mut conn = acquire(pool).await?;
    movements::post(&mut conn, &Posting::of(movement)).await
}

/// A pooled connection, the wait for it recorded (`db.client.connection.wait_time`, pool
/// `poster`).
async fn acquire(pool: &PgPool) -> Result<PoolConnection<Postgres>> {
    let waited = std::time::Instant::now();
    let acquired = pool.acquire().await;
    crate::ground::telemetry::metered::connection_wait("poster", waited.elapsed());
    Ok(acquired?)
}

/// What a flush made of one movement.
pub(super) enum Outcome {
    /// Its answer.
    Done(Result<LedgerEntry>),
    /// Its key was held by a transaction in flight: it is posted on its own.
    Held,
}

/// What became of one movement of a flush, before the writes.
enum Verdict {
    /// Accepted: written with this id.
    Apply(Uuid),
    /// Refused, with the single call's error.
    Refused(Error),
    /// Its key was used by a committed unit: that unit's entry, or a conflict.
    Replayed(Result<LedgerEntry>),
    /// Its key was used by an earlier movement of this flush, written with this id.
    SameKeyAs(Uuid),
    /// Its key was held by a transaction in flight: not judged here.
    Held,
}

/// One attempt at a flush: every movement's outcome, or an error for all of them.
pub(super) async fn flush_once(
    conn: &mut PgConnection,
    movements: &[BatchItem],
) -> Result<Vec<Outcome>> {
    let postings: Vec<Posting<'_>> = movements.iter().map(Posting::of).collect();
    let keys = || postings.iter().filter_map(|p| p.key);
    let mut tx = conn.begin().await?;

    // 1. The keys, each with the id its first accepted movement will have, claimed in key order;
    //    past a key held by another transaction, again key by key, leaving the held ones out.
    let claims = match idempotency::claim_many(&mut tx, keys()).await {
        Err(Error::Transient {
            kind: crate::Transient::LockTimeout,
            ..
        }) => {
            tx.rollback().await?;
            tx = conn.begin().await?;
            idempotency::claim_each(&mut tx, keys()).await?
        }
        claims => claims?,
    };

    // 2. Every account that a movement judged here touches, locked in one statement.
    let judged = postings
        .iter()
        .filter(|p| p.key.is_none_or(|k| claims.fresh.contains(k)));
    let mut book = Book::lock(&mut tx, judged.flat_map(Posting::accounts)).await?;

    // 3. Each movement in submission order, against the balances the earlier ones left.
    let mut applied_keys: HashMap<&str, Uuid> = HashMap::new();
    let verdicts: Vec<Verdict> = postings
        .iter()
        .map(|posting| {
            if let Some(key) = posting.key {
                if claims.held.contains(key) {
                    return Verdict::Held;
                }
                if let Some(first) = claims.used.get(key) {
                    return Verdict::Replayed(idempotency::replayed_one(key, first, |e| {
                        posting.is_same_as(e)
                    }));
                }
                if let Some(id) = applied_keys.get(key) {
                    return Verdict::SameKeyAs(*id);
                }
            }
            if let Err(refusal) = book.judge(posting) {
                return Verdict::Refused(refusal);
            }
            let id = match posting.key {
                Some(key) => {
                    applied_keys.insert(key, claims.ids[key]);
                    claims.ids[key]
                }
                None => Uuid::new_v4(),
            };
            Verdict::Apply(id)
        })
        .collect();

    // 4. The accepted movements in one insert, the balances netted in one update, the claims
    //    of keys that nothing applied given back.
    let accepted: Vec<(Uuid, &Posting<'_>)> = verdicts
        .iter()
        .zip(&postings)
        .filter_map(|(v, p)| match v {
            Verdict::Apply(id) => Some((*id, p)),
            _ => None,
        })
        .collect();
    let mut written: HashMap<Uuid, LedgerEntry> = HashMap::new();
    if !accepted.is_empty() {
        let rows = insert_entries(&mut tx, &accepted, None).await?;
        written = rows.into_iter().map(|e| (e.id.as_uuid(), e)).collect();
        book.write(&mut tx).await?;
    }
    let unused: Vec<&str> = claims
        .keys
        .iter()
        .copied()
        .filter(|k| claims.fresh.contains(k) && !applied_keys.contains_key(k))
        .collect();
    idempotency::give_back(&mut tx, &unused).await?;

    // 5. One commit for all of them.
    tx.commit().await?;
    Ok(verdicts
        .into_iter()
        .zip(&postings)
        .map(|(verdict, posting)| match verdict {
            Verdict::Apply(id) => Outcome::Done(written.get(&id).cloned().ok_or_else(missing_row)),
            Verdict::Refused(err) => Outcome::Done(Err(err)),
            Verdict::Replayed(result) => Outcome::Done(result),
            Verdict::SameKeyAs(id) => Outcome::Done(match written.get(&id) {
                Some(entry) if posting.is_same_as(entry) => Ok(entry.clone()),
                Some(_) => Err(idempotency::conflict(posting.key.unwrap_or_default())),
                None => Err(missing_row()),
            }),
            Verdict::Held => Outcome::Held,
        })
        .collect())
}

/// The insert returned fewer rows than it was given: a bug, never a guess.
pub(super) fn missing_row() -> Error {
    Error::Database(sqlx::Error::Protocol(
        "the poster's insert returned no row for an accepted movement".into(),
    ))
}
