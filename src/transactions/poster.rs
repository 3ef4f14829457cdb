//! [`Poster`]: many tasks' movements, sharing commits, each with its own result.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::batch::{insert_entries, net_balances};
use super::idempotency;
use super::movements::{Locked, Posting, check, lock_accounts};
use super::retry::retrying;
use super::{LedgerEntry, Movement, Transfer};
use crate::accounts::AccountId;
use crate::{Error, Result};

/// How a [`Poster`] batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PosterOptions {
    /// The most movements one flush (one transaction) holds. Default 512.
    pub max_batch: usize,
    /// How long a flush waits, after its first movement, for more. Default zero: a flush takes
    /// what queued while the previous one committed, which under load is the batch, and costs
    /// a lone caller nothing.
    pub linger: Duration,
    /// How many movements may wait in the queue; a submission past it waits. Default 8,192.
    pub queue: usize,
}

impl Default for PosterOptions {
    fn default() -> Self {
        Self {
            max_batch: 512,
            linger: Duration::ZERO,
            queue: 8_192,
        }
    }
}

impl PosterOptions {
    /// Sets [`PosterOptions::max_batch`] (at least 1).
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Sets [`PosterOptions::linger`].
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sets [`PosterOptions::queue`] (at least 1).
    pub fn queue(mut self, queue: usize) -> Self {
        self.queue = queue.max(1);
        self
    }
}

/// One queued movement and where its result goes.
struct Request {
    movement: Owned,
    reply: oneshot::Sender<Result<LedgerEntry>>,
}

/// A movement the queue owns.
enum Owned {
    Deposit(Movement),
    Withdraw(Movement),
    Transfer(Transfer),
}

impl Owned {
    fn posting(&self) -> Posting<'_> {
        match self {
            Owned::Deposit(m) => Posting::deposit(m),
            Owned::Withdraw(m) => Posting::withdrawal(m),
            Owned::Transfer(t) => Posting::transfer(t),
        }
    }
}

/// Movements from many tasks, posted in shared transactions, each with its own result.
///
/// Each single movement ([`deposit`](super::deposit), [`transfer`](super::transfer)) is its own
/// transaction and its own WAL flush: on a server with `fsync = on`, the flush is most of a
/// movement's time, and a hot account serializes every movement on it behind the previous commit.
/// A [`Poster`] takes movements from any number of tasks into a bounded queue; one flusher task
/// takes what has queued (up to [`PosterOptions::max_batch`], waiting up to
/// [`PosterOptions::linger`] for more) and posts it as **one transaction**:
///
/// 1. `begin`; the keyed movements' **keys are claimed** in one statement, in key order
///    (`insert into idempotency_keys ... select ... from unnest(...) on conflict do nothing
///    returning key`): a key that a committed unit used replays that unit's entry (or is
///    [`Error::IdempotencyConflict`]), and a key held by a transaction still in flight makes the
///    flush wait for it, as a single call would;
/// 2. every account of the flush is **locked in one statement, in ascending id order** (no
///    deadlock with single calls, batches or another poster);
/// 3. the movements are judged **in submission order** against the locked balances as each
///    previous movement of the flush left them (the single calls' checks): an
///    overdraft, a frozen account, a currency mismatch refuses that movement only;
/// 4. the accepted movements are written in one `insert ... select from unnest(...)`, and the
///    balances **netted per account** in one `update ... from unnest(...)`: a hot account is
///    written once per flush; the claims of keyed movements that were refused are deleted;
/// 5. `commit`: one WAL flush for the whole batch.
///
/// So a flush is six statements however many movements it holds. Each caller gets exactly what
/// the single call returns: its own [`LedgerEntry`], or its own refusal. A flush that fails as a
/// whole (a lost connection, a server restart, a failed `commit`) gives **every** movement in it
/// the same kind of error, and one that failed around `commit` says
/// [`outcome_unknown`](Error::outcome_unknown): repeat each with its idempotency key. A
/// serialization failure or deadlock retries the whole flush, as a unit of work does.
///
/// **Backpressure.** The queue holds [`PosterOptions::queue`] movements; a submission past that
/// *waits* for room (it never fails for a full queue). **Dropping a caller's future** before its
/// movement is queued submits nothing; after, the movement is posted (or refused) exactly once,
/// and only its result is lost: with an idempotency key, repeating the call returns it.
/// [`Poster::close`] stops taking movements, posts every one already queued and waits for the
/// flusher; a submission after it is [`Error::PosterClosed`].
///
/// Movements on one account are applied in the order they were queued. The poster holds one
/// pooled connection while it flushes.
///
/// ```no_run
/// # async fn run(pool: sqlx::PgPool, a: ledger::accounts::AccountId,
/// #              b: ledger::accounts::AccountId) -> ledger::Result<()> {
/// use std::sync::Arc;
/// use ledger::transactions::{Poster, PosterOptions, Transfer};
/// use rust_decimal::Decimal;
///
/// let poster = Arc::new(Poster::new(pool, PosterOptions::default()));
/// let tasks: Vec<_> = (0..64)
///     .map(|i| {
///         let poster = Arc::clone(&poster);
///         tokio::spawn(async move {
///             let t = Transfer::new(a, b, Decimal::new(100, 2)).idempotency_key(format!("t-{i}"));
///             poster.transfer(t).await // this movement's own entry, or its own refusal
///         })
///     })
///     .collect();
/// for task in tasks {
///     let _entry = task.await.expect("task")?;
/// }
/// poster.close().await;
/// # Ok(())
/// # }
/// ```
pub struct Poster {
    sender: Mutex<Option<mpsc::Sender<Request>>>,
    flusher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Poster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster").finish_non_exhaustive()
    }
}

impl Poster {
    /// Starts the flusher task (on the current tokio runtime) over connections of `pool`.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn new(pool: PgPool, options: PosterOptions) -> Self {
        let (sender, receiver) = mpsc::channel(options.queue.max(1));
        let flusher = tokio::spawn(run(pool, receiver, options));
        Self {
            sender: Mutex::new(Some(sender)),
            flusher: Mutex::new(Some(flusher)),
        }
    }

    /// [`deposit`](super::deposit), in a shared transaction.
    ///
    /// Django: `Transaction.objects.create(to_account=acc, amount=amount, type='deposit')` with
    /// `acc.balance += amount`, one `transaction.atomic()` per call; here many calls share one.
    ///
    /// SQL: as the [type docs](Poster) say, per flush.
    ///
    /// # Errors
    /// As [`deposit`](super::deposit); [`Error::PosterClosed`] after [`Poster::close`].
    pub async fn deposit(&self, movement: Movement) -> Result<LedgerEntry> {
        let op = crate::telemetry::op_span!(
            "ledger.transactions.Poster.deposit",
            "deposit",
            "transactions"
        );
        crate::telemetry::traced(
            op,
            async move { self.submit(Owned::Deposit(movement)).await },
        )
        .await
    }

    /// [`withdraw`](super::withdraw), in a shared transaction.
    ///
    /// Django: `Transaction.objects.create(from_account=acc, amount=amount, type='withdrawal')`
    /// with `acc.balance -= amount`.
    ///
    /// SQL: as the [type docs](Poster) say, per flush.
    ///
    /// # Errors
    /// As [`withdraw`](super::withdraw); [`Error::PosterClosed`] after [`Poster::close`].
    pub async fn withdraw(&self, movement: Movement) -> Result<LedgerEntry> {
        let op = crate::telemetry::op_span!(
            "ledger.transactions.Poster.withdraw",
            "withdraw",
            "transactions"
        );
        crate::telemetry::traced(
            op,
            async move { self.submit(Owned::Withdraw(movement)).await },
        )
        .await
    }

    /// [`transfer`](super::transfer), in a shared transaction.
    ///
    /// Django: the seed's `transfer_funds(from_account_id, to_account_id, amount)`.
    ///
    /// SQL: as the [type docs](Poster) say, per flush.
    ///
    /// # Errors
    /// As [`transfer`](super::transfer); [`Error::PosterClosed`] after [`Poster::close`].
    pub async fn transfer(&self, transfer: Transfer) -> Result<LedgerEntry> {
        let op = crate::telemetry::op_span!(
            "ledger.transactions.Poster.transfer",
            "transfer",
            "transactions"
        );
        crate::telemetry::traced(
            op,
            async move { self.submit(Owned::Transfer(transfer)).await },
        )
        .await
    }

    /// Stops taking movements, posts every one already queued, and waits for the flusher to
    /// finish. Idempotent.
    pub async fn close(&self) {
        drop(lock(&self.sender).take());
        let flusher = lock(&self.flusher).take();
        if let Some(flusher) = flusher {
            // A flusher that panicked has already answered nobody more; nothing to add.
            let _ = flusher.await;
        }
    }

    async fn submit(&self, movement: Owned) -> Result<LedgerEntry> {
        // Refused before it is queued: the caller's mistake never reaches a shared flush.
        movement.posting().validate()?;
        let sender = lock(&self.sender).clone().ok_or(Error::PosterClosed)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Request { movement, reply })
            .await
            .map_err(|_| Error::PosterClosed)?;
        drop(sender);
        // The flusher answers every request it takes; a closed reply means it stopped (its
        // runtime shut down) with this movement's outcome unknown.
        answer.await.unwrap_or_else(|_| {
            Err(Error::Transient {
                kind: crate::Transient::ConnectionLost,
                source: sqlx::Error::WorkerCrashed,
            })
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The flusher: takes what has queued, flushes it, until the queue is closed and empty.
async fn run(pool: PgPool, mut receiver: mpsc::Receiver<Request>, options: PosterOptions) {
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

async fn flush(pool: &PgPool, batch: Vec<Request>) {
    let (movements, replies): (Vec<Owned>, Vec<_>) =
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
async fn flush_once(
    conn: &mut PgConnection,
    movements: &[Owned],
) -> Result<Vec<Result<LedgerEntry>>> {
    let postings: Vec<Posting<'_>> = movements.iter().map(Owned::posting).collect();
    let mut tx = conn.begin().await?;

    // 1. The keys, each with the id its first accepted movement will have, claimed in key order.
    let mut key_ids: HashMap<&str, Uuid> = HashMap::new();
    for key in postings.iter().filter_map(|p| p.key) {
        key_ids.entry(key).or_insert_with(Uuid::new_v4);
    }
    let mut keys: Vec<&str> = key_ids.keys().copied().collect();
    keys.sort_unstable();
    let claimed: HashSet<String> = if keys.is_empty() {
        HashSet::new()
    } else {
        let ids: Vec<Uuid> = keys.iter().map(|k| key_ids[k]).collect();
        sqlx::query_scalar!(
            r#"
            insert into idempotency_keys (key, entry_ids)
            select k, array[e] from unnest($1::text[], $2::uuid[]) with ordinality as c(k, e, n)
            order by n
            on conflict (key) do nothing
            returning key as "key!"
            "#,
            &keys as &[&str],
            &ids
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect()
    };
    let mut used_before: HashMap<&str, Vec<LedgerEntry>> = HashMap::new();
    for key in keys.iter().filter(|k| !claimed.contains(**k)) {
        used_before.insert(key, idempotency::replay(&mut tx, key).await?);
    }

    // 2. Every account that a movement judged here touches, locked in one statement.
    let mut touched: Vec<Uuid> = postings
        .iter()
        .filter(|p| p.key.is_none_or(|k| claimed.contains(k)))
        .flat_map(|p| [p.from, p.to])
        .flatten()
        .map(|id| id.as_uuid())
        .collect();
    touched.sort_unstable();
    touched.dedup();
    let locked = lock_accounts(&mut tx, &touched).await?;
    let before: HashMap<AccountId, Decimal> = locked.iter().map(|l| (l.id, l.balance)).collect();
    let mut state: HashMap<AccountId, Locked> = locked.into_iter().map(|l| (l.id, l)).collect();

    // 3. Each movement in submission order, against the balances the earlier ones left.
    let mut applied_keys: HashMap<&str, Uuid> = HashMap::new();
    let verdicts: Vec<Verdict> = postings
        .iter()
        .map(|posting| {
            if let Some(key) = posting.key {
                if let Some(first) = used_before.get(key) {
                    return Verdict::Replayed(match first.as_slice() {
                        [entry] if posting.is_same_as(entry) => Ok(entry.clone()),
                        _ => Err(idempotency::conflict(key)),
                    });
                }
                if let Some(id) = applied_keys.get(key) {
                    return Verdict::SameKeyAs(*id);
                }
            }
            if let Err(refusal) = check(posting, |id| state.get(&id)) {
                return Verdict::Refused(refusal);
            }
            if let Some(from) = posting.from.and_then(|id| state.get_mut(&id)) {
                from.balance -= posting.amount;
            }
            if let Some(to) = posting.to.and_then(|id| state.get_mut(&id)) {
                to.balance += posting.amount;
            }
            let id = match posting.key {
                Some(key) => {
                    applied_keys.insert(key, key_ids[key]);
                    key_ids[key]
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
        net_balances(&mut tx, &before, &state).await?;
    }
    let unused: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| claimed.contains(*k) && !applied_keys.contains_key(k))
        .collect();
    if !unused.is_empty() {
        sqlx::query!(
            "delete from idempotency_keys where key = any($1)",
            &unused as &[&str]
        )
        .execute(&mut *tx)
        .await?;
    }

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
fn missing_row() -> Error {
    Error::Database(sqlx::Error::Protocol(
        "the poster's insert returned no row for an accepted movement".into(),
    ))
}

/// The error each movement of a flush gets when the flush failed as a whole: the same kind (so
/// that [`Error::outcome_unknown`] and [`Error::is_retryable`] answer as for the flush), with the
/// flush's error in the text.
fn shared(err: &Error) -> Error {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transient;

    #[test]
    fn a_flush_wide_failure_keeps_its_kind_for_every_movement() {
        let lost = Error::Transient {
            kind: Transient::ConnectionLost,
            source: sqlx::Error::WorkerCrashed,
        };
        let each = shared(&lost);
        assert!(each.outcome_unknown() && each.is_retryable(), "{each:?}");
        let deadlock = shared(&Error::Deadlock(sqlx::Error::PoolTimedOut));
        assert!(matches!(deadlock, Error::Deadlock(_)));
        let other = shared(&Error::NotFound { what: "account" });
        assert!(!other.is_retryable() && !other.outcome_unknown());
    }

    #[test]
    fn options_have_floors() {
        let o = PosterOptions::default().max_batch(0).queue(0);
        assert_eq!((o.max_batch, o.queue), (1, 1));
    }
}
