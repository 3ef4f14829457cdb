//! Every entry through `COPY ... TO STDOUT`: [`copy_all`] and [`copy_all_pooled`], the
//! cancel-on-drop guard that ends an abandoned `COPY`, and the decoder of its text rows.
//! Re-exported by [`transactions`](super).

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use sqlx::postgres::PgPoolCopyExt;
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use super::LedgerEntry;
use crate::telemetry::{self, op_span};
use crate::{Error, Result};

/// What [`copy_all`] asks the server for: the entry's columns in [`LedgerEntry`] order, with
/// `created_at` as microseconds since the Unix epoch so that its text reads back exactly
/// whatever the session's `DateStyle` and `TimeZone`.
const COPY_ALL: &str = "copy (select id, from_account_id, to_account_id, amount, type, status, \
     metadata, (extract(epoch from created_at) * 1000000)::bigint, idempotency_key \
     from transactions) to stdout";

/// Every entry, unordered, read with `COPY ... TO STDOUT` and decoded here as the bytes arrive:
/// the fastest way to read the whole ledger. Memory stays flat (one network chunk and its rows
/// at a time).
///
/// Django: no equivalent; `psql -c "\copy (select ...) to stdout"`.
///
/// SQL: `copy (select ... from transactions) to stdout` (text format). The connection is busy
/// until the stream ends.
///
/// Unlike the other streams, this one must be read to the end: sqlx does not track a `COPY` it
/// has started, so a stream dropped half-read leaves the rest of the `COPY` on the connection
/// and its next statement fails with a protocol error. A pooled connection from
/// [`Config::pool_options`](crate::Config::pool_options) is then closed by the pool's release
/// check, never handed on; a held connection must be closed. For a read that may stop early, use
/// [`stream_unordered`](super::stream_unordered), whose drop costs at most one chunk.
///
/// # Errors
/// Items are [`Error::Database`]: the server's error, or a row this decoder cannot read (which
/// would be a bug: every column is a type whose text form it knows).
pub fn copy_all(
    conn: &mut sqlx::PgConnection,
) -> impl Stream<Item = Result<LedgerEntry>> + Send + '_ {
    let op = op_span!("ledger.transactions.copy_all", "COPY", "transactions");
    let rows = futures::stream::once(async move {
        // COPY has no bind parameters and no result columns: no query macro can express it.
        let bytes = conn.copy_out_raw(COPY_ALL).await?;
        Ok::<_, Error>(copy_rows(bytes))
    })
    .try_flatten()
    .boxed();
    telemetry::traced_stream(op, rows)
}

/// [`copy_all`] on a connection of its own from `pool`, which a drop half-read leaves usable:
/// the fastest whole-ledger read for code that may stop early.
///
/// Django: no equivalent; `psql -c "\copy (select ...) to stdout"`.
///
/// SQL: the same `copy (...) to stdout`, tagged with a comment that names this call. Dropped
/// before the end, the stream hands its connection to a task that cancels the `COPY`
/// (`select pg_cancel_backend(pid) from pg_stat_activity` where the tagged statement is still
/// active: the same role may cancel its own backends) and reads what the server had already
/// sent, up to the cancellation's error; the connection then goes back to the pool, clean. The
/// cost is the rows in flight when the cancel lands, not the rest of the table. Dropped before
/// the first row arrives (while the `COPY` starts), the connection is in a state sqlx does not
/// track, and the pool's release check closes it. Outside a tokio runtime the task cannot run,
/// and the same happens.
///
/// # Errors
/// As [`copy_all`]; the first item is the error of acquiring the connection, if any.
pub fn copy_all_pooled(
    pool: &PgPool,
) -> impl Stream<Item = Result<LedgerEntry>> + Send + Unpin + use<> {
    let pool = pool.clone();
    let rows = futures::stream::once(async move {
        let tag = format!("ledger copy_all {}", Uuid::new_v4());
        let statement = format!("{COPY_ALL} /* {tag} */");
        let bytes = pool.copy_out_raw(&statement).await?;
        Ok::<_, Error>(copy_rows(CancelOnDrop {
            bytes: Some(bytes),
            pool,
            tag,
        }))
    })
    .try_flatten()
    .boxed();
    let op = op_span!(
        "ledger.transactions.copy_all_pooled",
        "COPY",
        "transactions"
    );
    telemetry::traced_stream(op, rows)
}

/// A `COPY ... TO STDOUT` in progress on a pooled connection; cancelled and read to its end by
/// a task of its own if dropped before the end (see [`copy_all_pooled`]).
struct CancelOnDrop {
    bytes: Option<futures::stream::BoxStream<'static, sqlx::Result<bytes::Bytes>>>,
    pool: PgPool,
    tag: String,
}

impl Stream for CancelOnDrop {
    type Item = sqlx::Result<bytes::Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let Some(bytes) = self.bytes.as_mut() else {
            return Poll::Ready(None);
        };
        let next = bytes.poll_next_unpin(cx);
        if let Poll::Ready(None | Some(Err(_))) = &next {
            // sqlx has read the `COPY` to its end (or its error and the server's ready).
            self.bytes = None;
        }
        next
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(mut bytes) = self.bytes.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (pool, tag) = (self.pool.clone(), std::mem::take(&mut self.tag));
        runtime.spawn(async move {
            let pattern = format!("%{tag}%");
            // On an idle pooled connection if there is one, else on a new one: the pool may
            // have no other (the dropped stream's is busy until the cancel lands). In a
            // transaction, which the transaction-pooler profile needs for a statement.
            let cancelled = async {
                let mut conn = match pool.try_acquire() {
                    Some(pooled) => sqlx::Either::Left(pooled),
                    None => sqlx::Either::Right(
                        sqlx::PgConnection::connect_with(&pool.connect_options()).await?,
                    ),
                };
                let conn: &mut sqlx::PgConnection = match &mut conn {
                    sqlx::Either::Left(pooled) => pooled,
                    sqlx::Either::Right(own) => own,
                };
                let mut tx = Connection::begin(conn).await?;
                let cancelled = sqlx::query_scalar!(
                    r#"
                select pg_cancel_backend(pid) as "cancelled!"
                from pg_stat_activity
                where state = 'active' and query like $1 and pid <> pg_backend_pid()
                "#,
                    pattern
                )
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(cancelled)
            }
            .await;
            if let Err(error) = cancelled {
                tracing::warn!(%error, "could not cancel a dropped COPY; reading it to the end");
            }
            while bytes.next().await.is_some() {}
        });
    }
}

/// Splits the `COPY` text stream into lines, however the chunks cut them, and decodes each.
fn copy_rows<S, B>(bytes: S) -> impl Stream<Item = Result<LedgerEntry>> + Send
where
    S: Stream<Item = sqlx::Result<B>> + Send + Unpin,
    B: AsRef<[u8]>,
{
    struct State<S> {
        bytes: S,
        carry: Vec<u8>,
        rows: std::collections::VecDeque<Result<LedgerEntry>>,
        done: bool,
    }
    let state = State {
        bytes,
        carry: Vec::new(),
        rows: std::collections::VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(row) = state.rows.pop_front() {
                return Some((row, state));
            }
            if state.done {
                return None;
            }
            match state.bytes.try_next().await {
                Ok(Some(chunk)) => {
                    state.carry.extend_from_slice(chunk.as_ref());
                    let complete = state.carry.iter().rposition(|&b| b == b'\n');
                    if let Some(end) = complete {
                        let rest = state.carry.split_off(end + 1);
                        let lines = std::mem::replace(&mut state.carry, rest);
                        state.rows.extend(
                            lines
                                .split(|&b| b == b'\n')
                                .filter(|line| !line.is_empty())
                                .map(decode_copy_row),
                        );
                    }
                }
                Ok(None) => {
                    state.done = true;
                    if !state.carry.is_empty() {
                        state
                            .rows
                            .push_back(Err(copy_error("the last row has no line end")));
                    }
                }
                Err(err) => {
                    state.done = true;
                    state.rows.push_back(Err(err.into()));
                }
            }
        }
    })
}

fn copy_error(message: impl Into<String>) -> Error {
    sqlx::Error::Decode(format!("COPY row: {}", message.into()).into()).into()
}

/// One line of `COPY` text output: tab-separated fields, `\N` for NULL, and backslash escapes
/// (`\\`, `\t`, `\n`, `\r`, `\b`, `\f`, `\v`) inside values.
fn decode_copy_row(line: &[u8]) -> Result<LedgerEntry> {
    let fields: Vec<Option<String>> = line
        .split(|&b| b == b'\t')
        .map(unescape_copy_field)
        .collect::<Result<_>>()?;
    let [id, from, to, amount, kind, status, metadata, micros, key]: [Option<String>; 9] = fields
        .try_into()
        .map_err(|f: Vec<_>| copy_error(format!("{} fields, expected 9", f.len())))?;
    let required = |field: Option<String>, name: &str| {
        field.ok_or_else(|| copy_error(format!("{name} is NULL")))
    };
    let uuid = |text: String| {
        Uuid::parse_str(&text).map_err(|e| copy_error(format!("uuid {text:?}: {e}")))
    };
    let account = |field: Option<String>| field.map(uuid).transpose().map(|id| id.map(Into::into));
    let micros = required(micros, "created_at")?;
    let micros: i64 = micros
        .parse()
        .map_err(|e| copy_error(format!("created_at {micros:?}: {e}")))?;
    let amount = required(amount, "amount")?;
    Ok(LedgerEntry {
        id: uuid(required(id, "id")?)?.into(),
        from_account_id: account(from)?,
        to_account_id: account(to)?,
        amount: amount
            .parse()
            .map_err(|e| copy_error(format!("amount {amount:?}: {e}")))?,
        kind: required(kind, "type")?.as_str().into(),
        status: required(status, "status")?.as_str().into(),
        metadata: crate::Document::from_text(required(metadata, "metadata")?)
            .map_err(|e| copy_error(format!("metadata: {e}")))?,
        created_at: DateTime::<Utc>::from_timestamp_micros(micros)
            .ok_or_else(|| copy_error(format!("created_at {micros} is out of range")))?,
        idempotency_key: key,
    })
}

fn unescape_copy_field(field: &[u8]) -> Result<Option<String>> {
    if field == b"\\N" {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        out.push(match bytes.next() {
            Some(b'\\') => b'\\',
            Some(b't') => b'\t',
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'v') => 0x0b,
            other => {
                return Err(copy_error(format!(
                    "unknown escape \\{}",
                    other.map_or(String::new(), |b| char::from(b).to_string())
                )));
            }
        });
    }
    String::from_utf8(out)
        .map(Some)
        .map_err(|e| copy_error(format!("not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = "6f9619ff-8b86-d011-b42d-00cf4fc964ff\t\\N\t6f9619ff-8b86-d011-b42d-00cf4fc964fe\t\
                       1.50\tdeposit\tcompleted\t{\"k\": \"a\\\\tb\"}\t1000000\tkey\\\\1";

    #[test]
    fn a_copy_row_decodes_nulls_escapes_and_the_epoch() {
        let entry = decode_copy_row(ROW.as_bytes()).unwrap();
        assert_eq!(entry.from_account_id, None);
        assert_eq!(entry.amount.to_string(), "1.50");
        assert_eq!(entry.metadata.as_str(), r#"{"k": "a\tb"}"#);
        assert_eq!(entry.created_at.timestamp(), 1);
        assert_eq!(entry.idempotency_key.as_deref(), Some("key\\1"));
    }

    #[test]
    fn a_malformed_copy_row_is_a_decode_error_not_a_panic() {
        let short = ROW.rsplit_once('\t').unwrap().0;
        let null_id = ROW.replacen("6f9619ff-8b86-d011-b42d-00cf4fc964ff", "\\N", 1);
        let bad_escape = ROW.replace("key\\\\1", "key\\q");
        let bad_time = ROW.replace("1000000", "9223372036854775807");
        for (line, says) in [
            (short, "8 fields"),
            (null_id.as_str(), "id is NULL"),
            (bad_escape.as_str(), "unknown escape \\q"),
            (bad_time.as_str(), "out of range"),
        ] {
            let err = decode_copy_row(line.as_bytes()).unwrap_err();
            let text = match &err {
                Error::Database(source) => source.to_string(),
                other => panic!("{other:?}"),
            };
            assert!(text.contains(says), "{text}");
        }
    }
}
