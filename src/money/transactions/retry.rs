//! Retrying a unit of work, shared by the single movements and the batches.
//!
//! A unit is retried only when the server rolled it back for a conflict with another transaction
//! (serialization failure, 40001; deadlock, 40P01): the connection is still good and running the
//! unit again may succeed. Nothing below the unit retries (PostgreSQL manual, "Serialization
//! Failure Handling"). A [`Transient`](crate::Transient) failure — a lost connection, a cancelled
//! statement, a server going down — reaches the caller, who retries the *call*, with the same
//! idempotency key, on a connection that works.

use std::time::Duration;

/// How many times a unit of work is attempted before a serialization failure or deadlock reaches
/// the caller.
pub const MAX_ATTEMPTS: u32 = 5;

/// Runs `$unit` (an expression that awaits one attempt of a unit of work) until it succeeds,
/// fails with an error other than a conflict, or has been attempted [`MAX_ATTEMPTS`] times,
/// sleeping with jittered exponential backoff between attempts. A macro rather than a function
/// taking an async closure: such a closure's future is not `Send` for every borrow of the
/// connection, and callers spawn these futures on multi-threaded runtimes.
macro_rules! retrying {
    ($unit:expr) => {{
        let mut attempt = 1;
        loop {
            match $unit {
                Err(err) if err.is_conflict() && attempt < $crate::money::transactions::MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %err, "retrying a unit of work");
                    $crate::ground::telemetry::metered::retry(err.sqlstate());
                    tokio::time::sleep($crate::money::transactions::retry::backoff(attempt)).await;
                    attempt += 1;
                }
                result => {
                    // On the operation's span (`crate::telemetry`): attempts beyond the first.
                    tracing::Span::current().record("ledger.retries", attempt - 1);
                    break result;
                }
            }
        }
    }};
}
pub(super) use retrying;

/// Exponential backoff from 5 ms, with up to 100% jitter so that retrying clients spread out.
pub(super) fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let base = 5u64 << attempt.min(6);
    // RandomState is seeded per instance: a cheap source of jitter without another dependency.
    let jitter = RandomState::new().hash_one(attempt) % (base + 1);
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Result, Transient};

    #[tokio::test]
    async fn the_last_conflict_reaches_the_caller_after_max_attempts() {
        let mut attempts = 0;
        let result: Result<()> = retrying!({
            attempts += 1;
            Err(Error::Deadlock(sqlx::Error::PoolTimedOut))
        });
        assert!(matches!(result, Err(Error::Deadlock(_))), "{result:?}");
        assert_eq!(attempts, MAX_ATTEMPTS);

        let mut attempts = 0;
        let result: Result<u32> = retrying!({
            attempts += 1;
            if attempts < 3 {
                Err(Error::SerializationFailure(sqlx::Error::PoolTimedOut))
            } else {
                Ok(attempts)
            }
        });
        assert_eq!(
            result.ok(),
            Some(3),
            "a later attempt's success is returned"
        );
    }

    #[tokio::test]
    async fn bad_input_and_transient_failures_are_not_retried_by_the_unit() {
        let refusals = [
            Error::invalid("amount", "never retried"),
            Error::Transient {
                kind: Transient::ConnectionLost,
                source: sqlx::Error::PoolTimedOut,
            },
        ];
        for refusal in refusals {
            let mut refusal = Some(refusal);
            let mut attempts = 0;
            let result: Result<()> = retrying!({
                attempts += 1;
                Err(refusal.take().unwrap_or(Error::NotFound { what: "again" }))
            });
            assert!(!matches!(result, Err(Error::NotFound { .. })), "{result:?}");
            assert_eq!(attempts, 1, "{result:?}");
        }
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..10 {
            let d = backoff(attempt).as_millis() as u64;
            let base = 5u64 << attempt.min(6);
            assert!((base..=2 * base).contains(&d), "{attempt}: {d}");
        }
    }
}
