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
//! for free. The connection spans (`ledger.connect`) carry them.
//!
//! With no subscriber, or one that does not want `INFO` spans of `ledger`, a span is `tracing`'s
//! disabled-callsite check and allocates nothing (not yet measured by a bench here). An operation
//! that calls another public operation (`payments::insert` calls `payments::insert_json`) nests
//! that one's span in its own. The [`Poster`](crate::transactions::Poster)'s movements each have
//! a span that lasts until their shared flush answers; each flush has its own
//! (`ledger.transactions.Poster.flush`, with `ledger.rows`), in the flusher's task.

use std::future::Future;

use tracing::Instrument;

use crate::{Error, Result};

/// Opens the span of one operation: `op_span!("ledger.users.get", "SELECT", "users")`.
/// More fields may follow (`ledger.rows = items.len()`): counts, never a parameter's value.
macro_rules! op_span {
    ($name:literal, $operation:literal, $collection:literal $(, $($more:tt)+)?) => {
        tracing::info_span!(
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
        )
    };
}
pub(crate) use op_span;

/// Runs `operation` inside `span`, and records `error.type` on the span when it fails.
pub(crate) async fn traced<T>(
    span: tracing::Span,
    operation: impl Future<Output = Result<T>>,
) -> Result<T> {
    let result = operation.instrument(span.clone()).await;
    if let Err(err) = &result {
        record_error(&span, err);
    }
    result
}

/// Records `error.type`: the SQLSTATE when the server gave one, else the error's kind.
pub(crate) fn record_error(span: &tracing::Span, err: &Error) {
    match err.sqlstate() {
        Some(code) => span.record("error.type", code.as_str()),
        None => span.record("error.type", err.kind_name()),
    };
}

/// A stream whose every poll runs inside its operation's span, which records `error.type` at
/// the first error item and closes when the stream is dropped.
pub(crate) struct Traced<S> {
    span: tracing::Span,
    inner: S,
}

/// Wraps a stream the crate returns in its operation's span.
pub(crate) fn traced_stream<S>(span: tracing::Span, inner: S) -> Traced<S> {
    Traced { span, inner }
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
        let _entered = this.span.enter();
        let next = std::pin::Pin::new(&mut this.inner).poll_next(cx);
        if let std::task::Poll::Ready(Some(Err(err))) = &next {
            record_error(&this.span, err);
        }
        next
    }
}
