//! Every entry through `COPY ... TO STDOUT`: [`copy_all`] and [`copy_all_pooled`], the
//! cancel-on-drop guard that ends an abandoned `COPY`, and the decoder of its text rows.
//! Re-exported by [`transactions`](super).

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use sqlx::PgPool;
use uuid::Uuid;

use super::LedgerEntry;
use crate::ground::telemetry::{self, op_span};
use crate::{Error, Result};

/// The columns every `COPY` here reads: the entry's columns in [`LedgerEntry`] order, with
/// `created_at` as microseconds since the Unix epoch so that its text reads back exactly
/// whatever the session's `DateStyle` and `TimeZone`.
macro_rules! copy_columns {
    () => {
        "id, from_account_id, to_account_id, amount, type, status, metadata, \
         (extract(epoch from created_at) * 1000000)::bigint, idempotency_key"
    };
}

/// What [`copy_all`] asks the server for.
const COPY_ALL: &str = concat!(
    "copy (select ",
    copy_columns!(),
    " from transactions) to stdout"
);

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
/// [`copy_all_pooled`] or [`stream_unordered`](super::stream_unordered), whose drop costs at
/// most one chunk.
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

/// [`copy_all`] on a connection of its own from `pool`, which may be dropped at any point for
/// the cost of one bounded chunk: the fastest whole-ledger read for code that may stop early.
///
/// Django: no equivalent; `psql -c "\copy (select ...) to stdout"`.
///
/// SQL: on a pooled connection, in one `repeatable read, read only` transaction, `lock table
/// transactions in access share mode`, then the table's size in pages, then one `copy (select
/// ... from transactions where ctid >= '(a,0)' and ctid < '(b,0)') to stdout` per range of
/// heap pages (8, then twice as many each time, up to [`COPY_PAGES`]; a TID range scan: each
/// reads only its pages), then `rollback`. The rows are those of one snapshot, as one `COPY`
/// of the table would read; the lock, taken before the snapshot, keeps the table's file from
/// being rewritten or shrunk under it. The order is the heap's, as [`copy_all`]'s is.
///
/// The `COPY`s run on a task of their own, which hands the text to the stream in blocks of up
/// to 64 KiB through a channel of four: the server, the task and the decoder work at the same
/// time. Dropped, the stream closes the channel; the task reads what is left of the chunk in
/// flight (at most [`COPY_PAGES`] pages, without decoding it), rolls back, and gives the
/// connection back to the pool, clean. Nothing is cancelled and no second connection is
/// needed, so the cost is the same whatever the table's size and however busy the pool. Behind
/// a transaction pooler the whole read is one transaction, which the pooler keeps on one server
/// connection.
///
/// Must be polled inside a tokio runtime (the task needs one); outside one, its only item is
/// an [`Error::Database`].
///
/// # Errors
/// As [`copy_all`]; the first item is the error of acquiring the connection, if any.
pub fn copy_all_pooled(
    pool: &PgPool,
) -> impl Stream<Item = Result<LedgerEntry>> + Send + Unpin + use<> {
    let pool = pool.clone();
    let rows = futures::stream::once(async move {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| copy_error(format!("copy_all_pooled needs a tokio runtime: {e}")))?;
        let (blocks, received) = tokio::sync::mpsc::channel(4);
        runtime.spawn(copy_chunks(pool, blocks));
        let received = futures::stream::unfold(received, |mut received| async move {
            received.recv().await.map(|block| (block, received))
        })
        .boxed();
        Ok::<_, Error>(copy_rows(received))
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

/// Heap pages per `COPY` of [`copy_all_pooled`] once it is under way: 0.5 MiB of heap, a few
/// thousand entries, which the server writes out in a few milliseconds; that is what a drop
/// may cost. The first `COPY` reads 8 pages and each next one twice as many, up to this, so
/// that a stream dropped after its first rows costs a fraction of it.
pub const COPY_PAGES: i64 = 64;

/// Heap pages of the first `COPY` of [`copy_all_pooled`].
const FIRST_COPY_PAGES: i64 = 8;

/// The task of [`copy_all_pooled`]: each chunk's `COPY`, its rows gathered into blocks and sent
/// to the stream until the stream is dropped; then the rest of that chunk is read and
/// discarded, and the transaction rolled back.
async fn copy_chunks(pool: PgPool, blocks: tokio::sync::mpsc::Sender<sqlx::Result<bytes::Bytes>>) {
    let read = async {
        let mut tx = pool.begin().await?;
        sqlx::query!("set transaction isolation level repeatable read, read only")
            .execute(&mut *tx)
            .await?;
        crate::ground::cursor::paced_by_reader(&mut tx).await?;
        sqlx::query!("lock table transactions in access share mode")
            .execute(&mut *tx)
            .await?;
        let pages = sqlx::query_scalar!(
            r#"
            select pg_relation_size('transactions'::regclass)
                   / current_setting('block_size')::bigint as "pages!"
            "#
        )
        .fetch_one(&mut *tx)
        .await?;
        let (mut first, mut span) = (0, FIRST_COPY_PAGES);
        while first < pages && !blocks.is_closed() {
            let last = first + span;
            span = (span * 2).min(COPY_PAGES);
            // COPY has no bind parameters: the bounds are two numbers written in.
            let statement = format!(
                concat!(
                    "copy (select ",
                    copy_columns!(),
                    " from transactions where ctid >= '({},0)' and ctid < '({},0)') to stdout"
                ),
                first, last
            );
            let mut rows = tx.copy_out_raw(&statement).await?;
            let mut block = bytes::BytesMut::new();
            while let Some(row) = rows.try_next().await? {
                if blocks.is_closed() {
                    continue;
                }
                block.extend_from_slice(&row);
                if block.len() >= BLOCK_BYTES {
                    // A failed send means the stream is gone: `is_closed` above then skips the
                    // rest of the chunk.
                    let _ = blocks.send(Ok(block.split().freeze())).await;
                }
            }
            if !block.is_empty() {
                let _ = blocks.send(Ok(block.freeze())).await;
            }
            first = last;
        }
        tx.rollback().await?;
        Ok::<_, sqlx::Error>(())
    };
    if let Err(error) = read.await {
        // The stream may be gone already; then there is no one to tell.
        let _ = blocks.send(Err(error)).await;
    }
}

/// The size of a block of `COPY` text handed from the task to the stream.
const BLOCK_BYTES: usize = 64 * 1024;

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
