//! A `tracing` span for every operation, named and attributed by OpenTelemetry's stable
//! database semantic conventions, so that a service's OpenTelemetry pipeline
//! (`tracing-opentelemetry`, or any `tracing` subscriber) shows each call of the crate as one
//! client span.
//!
//! Each public operation opens one span at `INFO` level, named after the function
//! (`ledger.users.get`), with these fields:
//!
//! | field | value |
//! | :--- | :--- |
//! | `otel.name` | `"{db.operation.name} {db.collection.name}"`, the span name OpenTelemetry asks for (`SELECT users`) |
//! | `otel.kind` | `client` |
//! | `db.system.name` | `postgresql` |
//! | `db.operation.name` | the SQL verb (`SELECT`, `INSERT`, `UPDATE`, `DELETE`, `COPY`), or the unit of work for one of several statements (`transfer`) |
//! | `db.collection.name` | the table |
//! | `error.type` | on failure only: the SQLSTATE when the server gave one (`23505`), else the error's kind (`InvalidInput`, `ConnectionLost`, ...) |
//! | `ledger.retries` | the units of work that retry: how many times they did |
//! | `ledger.idempotency.replayed` | a keyed movement: whether it replayed a stored result |
//!
//! No field holds a parameter's value: no email, name, amount, key or document reaches a
//! span, only which operation ran on which table and how it ended. `db.namespace`,
//! `server.address` and `server.port` are left out of the operation spans: a read takes the
//! caller's executor (a pool, a connection, a transaction), which does not say which server it
//! is on without another round trip, and OpenTelemetry asks for them only when they are known
//! for free. The connection spans (`ledger.Config.connect`, `ledger.Config.connect_one`) carry them.
//!
//! With no subscriber, or one that does not want `INFO` spans of `ledger`, a span is `tracing`'s
//! disabled-callsite check and allocates nothing (not yet measured by a bench here).  Each call opens one
//! span: operations that share a statement (`payments::insert` and `insert_json`) share it
//! below their spans. The [`Poster`](crate::transactions::Poster)'s movements each have
//! a span that lasts until their shared flush answers; each flush has its own
//! (`ledger.transactions.Poster.flush`, with `ledger.rows`), in the flusher's task.
//!
//! ## Metrics
//!
//! With the `metrics` feature, the operations also record through the `metrics` facade (install any
//! recorder: Prometheus, OpenTelemetry, StatsD). Names and labels follow OpenTelemetry's
//! database metrics where it has one:
//!
//! | metric | kind | labels |
//! | :--- | :--- | :--- |
//! | `db.client.operation.duration` | histogram, seconds | `db.system.name`, `db.operation.name`, `db.collection.name`, `ledger.operation` (the span's name), `error.type` on failure |
//! | `db.client.connection.wait_time` | histogram, seconds | `db.client.connection.pool.name` (`poster`, `replica.writer`, `replica.reader`): the pool waits of the connections ledger acquires itself |
//! | `ledger.retries` | counter | `db.response.status_code` (40001, 40P01): a unit of work retried |
//! | `ledger.transient_failures` | counter | `ledger.transient.kind` (`ConnectionLost`, `PoolTimedOut`, ...) |
//! | `ledger.idempotency.replays` | counter | `db.collection.name`: a keyed call that returned its stored result |
//! | `ledger.replica.reads` | counter | `ledger.replica.route` (`replica`, `writer`) |
//! | `ledger.replica.fallbacks` | counter | `ledger.replica.fallback` (`unavailable`, `lagging`, `not_caught_up`) |
//!
//! Without the feature each call is an empty inline function.

use std::future::Future;

use tracing::Instrument;

use crate::{Error, Result};

/// One operation: its span, and the names its metrics are labelled with.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct Op {
    pub(crate) span: tracing::Span,
    pub(crate) name: &'static str,
    pub(crate) operation: &'static str,
    pub(crate) collection: &'static str,
}

/// Opens the span of one operation: `op_span!("ledger.users.get", "SELECT", "users")`.
/// More fields may follow (`ledger.rows = items.len()`): counts, never a parameter's value.
macro_rules! op_span {
    ($name:literal, $operation:literal, $collection:literal $(, $($more:tt)+)?) => {
        $crate::ground::telemetry::Op {
            span: tracing::info_span!(
                $name,
                otel.name = concat!($operation, " ", $collection),
                otel.kind = "client",
                db.system.name = "postgresql",
                db.operation.name = $operation,
                db.collection.name = $collection,
                error.type = tracing::field::Empty,
                ledger.retries = tracing::field::Empty,
                ledger.idempotency.replayed = tracing::field::Empty,
                $($($more)+)?
            ),
            name: $name,
            operation: $operation,
            collection: $collection,
        }
    };
}
pub(crate) use op_span;

/// Runs `operation` inside its span, records `error.type` on the span when it fails, and (with
/// the `metrics` feature) times it.
pub(crate) async fn traced<T>(op: Op, operation: impl Future<Output = Result<T>>) -> Result<T> {
    let started = std::time::Instant::now();
    let result = operation.instrument(op.span.clone()).await;
    let failure = result.as_ref().err().map(|err| Failure::on(&op.span, err));
    metered::operation(&op, started.elapsed(), failure.as_ref());
    result
}

/// How an operation failed, as its metrics label it.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) struct Failure {
    /// `error.type`.
    pub(crate) error_type: String,
    /// The kind of a transient failure.
    pub(crate) transient: Option<&'static str>,
}

impl Failure {
    /// How `err` failed, recorded on `span` as OpenTelemetry's `error.type`: the SQLSTATE when
    /// the server gave one, else the error's kind.
    fn on(span: &tracing::Span, err: &Error) -> Self {
        let error_type = err.sqlstate().unwrap_or_else(|| err.kind_name().to_owned());
        span.record("error.type", error_type.as_str());
        Self {
            error_type,
            transient: matches!(err, Error::Transient { .. }).then(|| err.kind_name()),
        }
    }
}

/// The `metrics` feature's instruments (see the module docs).
#[cfg(feature = "metrics")]
pub(crate) mod metered {
    use std::time::Duration;

    use super::{Failure, Op};

    pub(crate) fn operation(op: &Op, elapsed: Duration, failure: Option<&Failure>) {
        let mut labels = vec![
            metrics::Label::new("db.system.name", "postgresql"),
            metrics::Label::new("db.operation.name", op.operation),
            metrics::Label::new("db.collection.name", op.collection),
            metrics::Label::new("ledger.operation", op.name),
        ];
        if let Some(failure) = failure {
            labels.push(metrics::Label::new(
                "error.type",
                failure.error_type.clone(),
            ));
            if let Some(kind) = failure.transient {
                metrics::counter!("ledger.transient_failures", "ledger.transient.kind" => kind)
                    .increment(1);
            }
        }
        metrics::histogram!("db.client.operation.duration", labels).record(elapsed.as_secs_f64());
    }

    pub(crate) fn connection_wait(pool: &'static str, elapsed: Duration) {
        metrics::histogram!("db.client.connection.wait_time", "db.client.connection.pool.name" => pool)
            .record(elapsed.as_secs_f64());
    }

    pub(crate) fn retry(sqlstate: Option<String>) {
        let code = sqlstate.unwrap_or_default();
        metrics::counter!("ledger.retries", "db.response.status_code" => code).increment(1);
    }

    pub(crate) fn replay(collection: &'static str) {
        metrics::counter!("ledger.idempotency.replays", "db.collection.name" => collection)
            .increment(1);
    }

    pub(crate) fn poster_flush(queued: usize, batch: usize, elapsed: Duration) {
        metrics::gauge!("ledger.poster.queue.depth").set(queued as f64);
        metrics::histogram!("ledger.poster.batch.size").record(batch as f64);
        metrics::histogram!("ledger.poster.flush.duration").record(elapsed.as_secs_f64());
        metrics::counter!("ledger.poster.flushes").increment(1);
    }

    pub(crate) fn replica_read(route: &'static str, fallback: Option<&'static str>) {
        metrics::counter!("ledger.replica.reads", "ledger.replica.route" => route).increment(1);
        if let Some(fallback) = fallback {
            metrics::counter!("ledger.replica.fallbacks", "ledger.replica.fallback" => fallback)
                .increment(1);
        }
    }
}

/// Without the `metrics` feature: nothing is recorded.
#[cfg(not(feature = "metrics"))]
pub(crate) mod metered {
    use std::time::Duration;

    use super::{Failure, Op};

    #[inline]
    pub(crate) fn operation(_: &Op, _: Duration, _: Option<&Failure>) {}
    #[inline]
    pub(crate) fn connection_wait(_: &'static str, _: Duration) {}
    #[inline]
    pub(crate) fn retry(_: Option<String>) {}
    #[inline]
    pub(crate) fn replay(_: &'static str) {}
    #[inline]
    pub(crate) fn poster_flush(_: usize, _: usize, _: Duration) {}
    #[inline]
    pub(crate) fn replica_read(_: &'static str, _: Option<&'static str>) {}
}

/// A stream whose every poll runs inside its operation's span, which records `error.type` at
/// an error item and closes when the stream is dropped (then, with the `metrics` feature, the
/// operation is timed from the call to the drop).
pub(crate) struct Traced<S> {
    op: Op,
    started: std::time::Instant,
    failed: Option<Failure>,
    inner: S,
}

/// Wraps a stream the crate returns in its operation's span.
pub(crate) fn traced_stream<S>(op: Op, inner: S) -> Traced<S> {
    Traced {
        op,
        started: std::time::Instant::now(),
        failed: None,
        inner,
    }
}

impl<S> Drop for Traced<S> {
    fn drop(&mut self) {
        metered::operation(&self.op, self.started.elapsed(), self.failed.as_ref());
    }
}

impl<S, T> futures::Stream for Traced<S>
where
    S: futures::Stream<Item = Result<T>> + Unpin,
{
    type Item = Result<T>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let this = &mut *self;
        let _entered = this.op.span.enter();
        let next = std::pin::Pin::new(&mut this.inner).poll_next(cx);
        if let std::task::Poll::Ready(Some(Err(err))) = &next {
            let failure = Failure::on(&this.op.span, err);
            this.failed.get_or_insert(failure);
        }
        next
    }
}
