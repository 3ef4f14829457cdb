//! The poster's one task: it gathers queued movements into batches, commits each batch in one
//! transaction, and answers every caller: each movement its own verdict (applied, or refused for
//! its own reason, which the others do not share), or, when the flush fails as a whole, the
//! flush's error.

use std::collections::HashMap;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::super::LedgerEntry;
use super::super::book::Book;
use super::super::idempotency;
use super::super::posting::Posting;
use super::super::requests::BatchItem;
use super::super::retry::retrying;
use super::super::writes::insert_entries;
use super::{PosterOptions, Request};
use crate::{Error, Result};

/// The flusher: takes what has queued, flushes it, until the queue is closed and empty.
pub(super) async fn run(
    pool: PgPool,
    mut receiver: mpsc::Receiver<Request>,
    options: PosterOptions,
) {
    while let Some(first) = receiver.recv().await {
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
        let op = crate::telemetry::op_span!(
            "ledger.transactions.Poster.flush",
            "post_batch",
            "transactions",
            ledger.rows = batch.len()
        );
        tracing::Instrument::instrument(flush(&pool, batch), op.span).await;
    }
}

pub(super) async fn flush(pool: &PgPool, batch: Vec<Request>) {
    let (movements, replies): (Vec<BatchItem>, Vec<_>) =
        batch.into_iter().map(|r| (r.movement, r.reply)).unzip();
    let waited = std::time::Instant::now();
    let acquired = pool.acquire().await;
    crate::telemetry::metered::connection_wait("poster", waited.elapsed());
    let results = match acquired {
        Ok(mut conn) => match retrying!(flush_once(&mut conn, &movements).await) {
            Ok(results) => results,
            Err(err) => {
                tracing::warn!(error = %err, movements = movements.len(), "a shared flush failed");
                movements.iter().map(|_| Err(shared(&err))).collect()
            }
        },
        Err(err) => {
            let err = Error::from(err);
            movements.iter().map(|_| Err(shared(&err))).collect()
        }
    };
    for (reply, result) in replies.into_iter().zip(results) {
        // A caller that stopped waiting no longer wants the answer; the movement stands.
        let _ = reply.send(result);
    }
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
}

/// One attempt at a flush: every movement's result, or an error for all of them.
pub(super) async fn flush_once(
    conn: &mut PgConnection,
    movements: &[BatchItem],
) -> Result<Vec<Result<LedgerEntry>>> {
    let postings: Vec<Posting<'_>> = movements.iter().map(Posting::of).collect();
    let mut tx = conn.begin().await?;

    // 1. The keys, each with the id its first accepted movement will have, claimed in key order.
    let claims = idempotency::claim_many(&mut tx, postings.iter().filter_map(|p| p.key)).await?;

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
            Verdict::Apply(id) => written.get(&id).cloned().ok_or_else(missing_row),
            Verdict::Refused(err) => Err(err),
            Verdict::Replayed(result) => result,
            Verdict::SameKeyAs(id) => match written.get(&id) {
                Some(entry) if posting.is_same_as(entry) => Ok(entry.clone()),
                Some(_) => Err(idempotency::conflict(posting.key.unwrap_or_default())),
                None => Err(missing_row()),
            },
        })
        .collect())
}

/// The insert returned fewer rows than it was given: a bug, never a guess.
pub(super) fn missing_row() -> Error {
    Error::Database(sqlx::Error::Protocol(
        "the poster's insert returned no row for an accepted movement".into(),
    ))
}

/// The error each movement of a flush gets when the flush failed as a whole: the same kind (so
/// that [`Error::outcome_unknown`] and [`Error::is_retryable`] answer as for the flush), with the
/// flush's error in the text.
pub(super) fn shared(err: &Error) -> Error {
    let source = || sqlx::Error::Protocol(format!("the shared flush failed: {err}"));
    match err {
        Error::Transient { kind, .. } => Error::Transient {
            kind: *kind,
            source: source(),
        },
        Error::SerializationFailure(_) => Error::SerializationFailure(source()),
        Error::Deadlock(_) => Error::Deadlock(source()),
        Error::PermissionDenied { object, .. } => Error::PermissionDenied {
            object: object.clone(),
            source: source(),
        },
        _ => Error::Database(source()),
    }
}
