//! [`Poster`]: many tasks' movements, sharing commits, each with its own result.

use std::sync::Mutex;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::posting::Posting;
use super::requests::BatchItem;
use super::{LedgerEntry, Movement, Transfer};
use crate::{Error, Result};

mod flush;
mod shared;

use flush::run;

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
    /// How long a submission waits for room in a full queue before it gives up with
    /// [`Error::PosterFull`] (nothing queued, nothing written). Default `None`: it waits for as
    /// long as it takes (its caller's own timeout, if any, bounds it).
    pub submit_timeout: Option<Duration>,
}

impl Default for PosterOptions {
    fn default() -> Self {
        Self {
            max_batch: 512,
            linger: Duration::ZERO,
            queue: 8_192,
            submit_timeout: None,
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

    /// Sets [`PosterOptions::submit_timeout`].
    pub fn submit_timeout(mut self, wait: Duration) -> Self {
        self.submit_timeout = Some(wait);
        self
    }
}

/// One queued movement, where its result goes, and its caller's span (the flush's span follows
/// from it).
struct Request {
    movement: BatchItem,
    reply: oneshot::Sender<Result<LedgerEntry>>,
    caller: tracing::Span,
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
///    returning key`), under a `lock_timeout` of 20 ms set for that statement alone: a key that
///    a committed unit used replays that unit's entry (or is [`Error::IdempotencyConflict`]); a
///    key **held by a transaction still in flight** does not stall the flush: past 20 ms the flush
///    begins again and claims key by key, and each movement whose key is still held is posted
///    **on its own**, as the single call posts it (waiting for the key, then applying or
///    replaying), while the rest of the flush goes on without it;
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
/// So a flush is six statements however many movements it holds (eight with keys: the claim's
/// `lock_timeout` is set and set back). **A lone movement without a key** (a flush of one) is
/// posted as the single call posts it: one round trip. (A lone keyed one still goes through the
/// flush, whose claim is the one that cannot stall.) Each caller gets exactly what
/// the single call returns: its own [`LedgerEntry`], or its own refusal. A flush that fails as a
/// whole (a lost connection, a server restart, a failed `commit`) gives **every** movement in it
/// the same kind of error, and one that failed around `commit` says
/// [`outcome_unknown`](Error::outcome_unknown): repeat each with its idempotency key. A
/// serialization failure or deadlock retries the whole flush, as a unit of work does.
///
/// **Backpressure.** The queue holds [`PosterOptions::queue`] movements; a submission past that
/// *waits* for room, for as long as [`PosterOptions::submit_timeout`] allows (by default, as long
/// as it takes), then fails with [`Error::PosterFull`]: not queued, nothing written.
///
/// **Telemetry.** Each flush is a span, `ledger.transactions.Poster.flush`, that follows from
/// the spans of its callers' calls; with the `metrics` feature it records the queue's depth
/// (`ledger.poster.queue.depth`, a gauge read as the flush starts), the batch's size
/// (`ledger.poster.batch.size`), the flush's time (`ledger.poster.flush.duration`, seconds) and
/// counts flushes (`ledger.poster.flushes`: flushes per second is its rate). **Dropping a caller's future** before its
/// movement is queued submits nothing; after, the movement is posted (or refused) exactly once,
/// and only its result is lost: with an idempotency key, repeating the call returns it.
/// [`Poster::close`] stops taking movements, posts every one already queued and waits for the
/// flusher; a submission after it is [`Error::PosterClosed`].
///
/// Movements on one account are applied in the order they were queued, but for a movement whose
/// key another transaction held: posted on its own, it applies when that key is free. The poster holds one
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
    submit_timeout: Option<Duration>,
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
            submit_timeout: options.submit_timeout,
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
        let op = crate::ground::telemetry::op_span!(
            "ledger.transactions.Poster.deposit",
            "deposit",
            "transactions"
        );
        crate::ground::telemetry::traced(op, async move {
            self.submit(BatchItem::Deposit(movement)).await
        })
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
        let op = crate::ground::telemetry::op_span!(
            "ledger.transactions.Poster.withdraw",
            "withdraw",
            "transactions"
        );
        crate::ground::telemetry::traced(op, async move {
            self.submit(BatchItem::Withdrawal(movement)).await
        })
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
        let op = crate::ground::telemetry::op_span!(
            "ledger.transactions.Poster.transfer",
            "transfer",
            "transactions"
        );
        crate::ground::telemetry::traced(op, async move {
            self.submit(BatchItem::Transfer(transfer)).await
        })
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

    async fn submit(&self, movement: BatchItem) -> Result<LedgerEntry> {
        // Refused before it is queued: the caller's mistake never reaches a shared flush.
        Posting::of(&movement).validate()?;
        let sender = lock(&self.sender).clone().ok_or(Error::PosterClosed)?;
        let (reply, answer) = oneshot::channel();
        let request = Request {
            movement,
            reply,
            caller: tracing::Span::current(),
        };
        match self.submit_timeout {
            None => sender
                .send(request)
                .await
                .map_err(|_| Error::PosterClosed)?,
            Some(waited) => {
                sender
                    .send_timeout(request, waited)
                    .await
                    .map_err(|err| match err {
                        mpsc::error::SendTimeoutError::Timeout(_) => Error::PosterFull { waited },
                        mpsc::error::SendTimeoutError::Closed(_) => Error::PosterClosed,
                    })?
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_have_floors() {
        let o = PosterOptions::default().max_batch(0).queue(0);
        assert_eq!((o.max_batch, o.queue), (1, 1));
    }
}
