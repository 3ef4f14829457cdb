//! How the router asks a replica where it stands: the per-replica state ([`Reader`]), what a
//! replica says of itself ([`Health`]), and the router's choice of a replica or the writer.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgExecutor, PgPool, Postgres};

use super::{Fallback, Lsn, Read, Route, Router};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub(super) struct Reader {
    pub(super) pool: PgPool,
    /// Set when the replica failed: skipped until then.
    pub(super) down_until: Arc<Mutex<Option<Instant>>>,
    /// The last health check and when it was made.
    pub(super) last: Arc<Mutex<Option<(Instant, Health)>>>,
}

impl Reader {
    pub(super) fn is_skipped(&self, now: Instant) -> bool {
        let down_until = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        down_until.is_some_and(|until| now < until)
    }

    pub(super) fn mark_down(&self, until: Instant) {
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The last check if younger than `ttl`, aged: its lag grown by its age (a replica's lag
    /// grows at most as fast as time passes), its replay position as it was (which only grows).
    pub(super) fn cached(&self, now: Instant, ttl: Duration) -> Option<Health> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let (at, health) = (*last)?;
        let age = now.saturating_duration_since(at);
        (age < ttl).then(|| Health {
            lag: health.lag.map(|lag| lag + age),
            ..health
        })
    }

    pub(super) fn remember(&self, at: Instant, health: Health) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((at, health));
    }
}

/// What a replica said of itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct Health {
    pub(super) standby: bool,
    pub(super) replayed: Lsn,
    /// `None`: it has replayed nothing since it started, and has WAL to replay.
    pub(super) lag: Option<Duration>,
}

/// Outcome of asking one replica.
pub(super) enum Probe {
    Serves(PoolConnection<Postgres>, Health),
    Failed,
}

impl Router {
    /// The readers' indexes, starting one further on each call.
    pub(super) fn order(&self) -> impl Iterator<Item = usize> + use<> {
        let n = self.readers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).map(move |i| (start + i) % n)
    }

    /// Asks replica `index` where it stands, on the connection a read would use. A check
    /// younger than the health TTL that already meets `enough` is reused without a query.
    pub(super) async fn probe(&self, index: usize, enough: impl Fn(&Health) -> bool) -> Probe {
        let reader = &self.readers[index];
        let now = Instant::now();
        if reader.is_skipped(now) {
            return Probe::Failed;
        }
        let reused = reader.cached(now, self.health_ttl).filter(|h| enough(h));
        let health = async {
            let waited = std::time::Instant::now();
            let mut conn = reader.pool.acquire().await?;
            crate::ground::telemetry::metered::connection_wait("replica.reader", waited.elapsed());
            let health = match reused {
                Some(health) => health,
                None => {
                    let health = health(&mut *conn).await?;
                    reader.remember(now, health);
                    health
                }
            };
            Ok::<_, Error>((conn, health))
        };
        match health.await {
            Ok((conn, health)) if health.standby => Probe::Serves(conn, health),
            Ok(_) => {
                tracing::warn!(replica = index, "the replica is not a standby: skipped");
                reader.mark_down(Instant::now() + self.retry_after);
                Probe::Failed
            }
            Err(err) => {
                tracing::warn!(replica = index, error = %err, "the replica failed: skipped");
                reader.mark_down(Instant::now() + self.retry_after);
                Probe::Failed
            }
        }
    }

    pub(super) fn on_replica(&self, index: usize, conn: PoolConnection<Postgres>) -> Read {
        self.counters.replica.fetch_add(1, Ordering::Relaxed);
        crate::ground::telemetry::metered::replica_read("replica", None);
        Read {
            conn,
            route: Route::Replica(index),
        }
    }

    pub(super) async fn on_writer(&self, reason: Fallback) -> Result<Read> {
        let c = &self.counters;
        let counter = match reason {
            Fallback::NoReplicas => &c.no_replicas,
            Fallback::Unavailable => &c.unavailable,
            Fallback::Lagging => &c.lagging,
            Fallback::NotCaughtUp(_) => &c.not_caught_up,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let fallback = match reason {
            Fallback::NoReplicas => None,
            Fallback::Unavailable => Some("unavailable"),
            Fallback::Lagging => Some("lagging"),
            Fallback::NotCaughtUp(_) => Some("not_caught_up"),
        };
        crate::ground::telemetry::metered::replica_read("writer", fallback);
        if reason != Fallback::NoReplicas {
            tracing::warn!(%reason, "read on the writer");
        }
        let waited = std::time::Instant::now();
        let conn = self.writer.acquire().await?;
        crate::ground::telemetry::metered::connection_wait("replica.writer", waited.elapsed());
        Ok(Read {
            conn,
            route: Route::Writer(reason),
        })
    }
}

/// SQL: whether the server is a standby, how far it replayed, and how far it lags.
async fn health(executor: impl PgExecutor<'_>) -> Result<Health> {
    let row = sqlx::query!(
        r#"select pg_is_in_recovery() as "standby!",
                  (coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn) - '0/0'::pg_lsn)::bigint
                      as "replayed!",
                  case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
                            and exists (select from pg_stat_wal_receiver
                                        where status = 'streaming')
                       then 0::bigint
                       else (extract(epoch from clock_timestamp()
                                              - pg_last_xact_replay_timestamp())
                             * 1000000)::bigint
                  end as lag_micros"#
    )
    .fetch_one(executor)
    .await?;
    Ok(Health {
        standby: row.standby,
        replayed: Lsn::from_offset(row.replayed),
        lag: row
            .lag_micros
            .map(|micros| Duration::from_micros(u64::try_from(micros).unwrap_or(0))),
    })
}
