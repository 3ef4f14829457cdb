//! `ledger dump` and `ledger load`: the seed's `dumpdata` and `loaddata`.
//!
//! **Format**: NDJSON, one record per line, tables in foreign-key order (users, accounts,
//! transactions, payments, articles, then the used idempotency keys), rows in id order, then one
//! trailer line:
//!
//! ```text
//! {"table":"users","row":{"id":"…","email":"ana@example.com","name":"Ana García","created_at":"2026-05-01T10:00:00.123456Z","deleted_at":null}}
//! {"table":"accounts","row":{"id":"…","user_id":"…","balance":"1500.00","currency":"USD","status":"active"}}
//! {"end":{"records":2}}
//! ```
//!
//! Decimals are strings (exact to the cent), times RFC 3339 with microseconds, ids UUIDs (numbers
//! for payments and articles), JSON
//! documents (`metadata`, `data`) the text PostgreSQL stores, verbatim, at any depth (see
//! [`Document`](crate::Document)); every column is written, so a load restores the rows exactly. (Django's fixtures are one JSON array,
//! which cannot be streamed line by line; NDJSON can, in constant memory, both ways.)
//!
//! **Load** is one transaction: the file is read once to check every record (valid JSON, a known
//! table, the row's shape, the trailer's count — so a file truncated anywhere is refused), then
//! once per table in foreign-key order, each table's rows sent with `COPY`. Any refusal names the
//! record's line and writes nothing. A load is lossless or refuses: a value its column would
//! change or refuse (an amount or balance with a third decimal or beyond `numeric(15,2)`, a text
//! longer than its `varchar` or holding U+0000) is refused naming the line, table and column,
//! never rounded. A load writes balances and ledger rows as they were dumped;
//! [`transactions::reconcile`](crate::transactions::reconcile) checks them afterwards.

use std::io::Write;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::PgPool;

use crate::money::transactions::query_entries;
use crate::money::transactions::{EntryId, IdempotencyKey};
use crate::tables::accounts::Account;
use crate::tables::articles::{Article, Language};
use crate::tables::payments::Payment;
use crate::tables::users::query_users;
use crate::{Error, Result};

mod load;

pub use load::load;
pub(crate) use load::{Records, load_records};

/// The tables a dump holds, in foreign-key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// `users`
    Users,
    /// `accounts`
    Accounts,
    /// `transactions`
    Transactions,
    /// `payments`
    Payments,
    /// `articles`
    Articles,
    /// `idempotency_keys`: the keys of movements and batches, so that a restored ledger still
    /// replays them instead of moving money again.
    IdempotencyKeys,
}

impl Table {
    /// Every table, in foreign-key order.
    pub const ALL: [Table; 6] = [
        Table::Users,
        Table::Accounts,
        Table::Transactions,
        Table::Payments,
        Table::Articles,
        Table::IdempotencyKeys,
    ];

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Accounts => "accounts",
            Table::Transactions => "transactions",
            Table::Payments => "payments",
            Table::Articles => "articles",
            Table::IdempotencyKeys => "idempotency_keys",
        }
    }
}

impl std::str::FromStr for Table {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Table::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                Error::invalid(
                    "table",
                    format!(
                        "unknown table {name:?} (users, accounts, transactions, payments, \
                         articles, idempotency_keys)"
                    ),
                )
            })
    }
}

#[derive(Serialize)]
struct RecordOut<'a, T> {
    table: Table,
    row: &'a T,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordIn {
    table: Option<Table>,
    /// Kept as text: a row may hold a document nested deeper than a `Value` can be.
    row: Option<Box<RawValue>>,
    end: Option<Trailer>,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    records: u64,
}

/// Writes the chosen tables (all when `tables` is empty) to `out`, streaming each table so that
/// memory stays flat. Calls `progress(table, rows written)` every 10,000 rows and at the end of
/// each table. Returns the number of records.
///
/// Django: `python manage.py dumpdata myapp > backup.json`
///
/// SQL: `begin`, `set transaction isolation level repeatable read, read only`, then one
/// `select ... order by id` per table, read as a stream, and `commit`. One snapshot for every
/// table: a dump taken while money moves holds no ledger entry whose account it lacks, and it
/// runs unchanged on a hot standby and through a transaction pooler.
///
/// # Errors
/// [`Error::Database`] when reading fails; [`Error::Io`] when writing to `out` fails.
#[tracing::instrument(name = "ledger.dump", skip_all)]
pub async fn dump(
    pool: &PgPool,
    tables: &[Table],
    out: &mut (dyn Write + Send),
    progress: &mut (dyn FnMut(Table, u64) + Send),
) -> Result<u64> {
    let mut chosen: Vec<Table> = if tables.is_empty() {
        Table::ALL.to_vec()
    } else {
        tables.to_vec()
    };
    chosen.sort();
    chosen.dedup();
    let mut tx = pool.begin().await?;
    sqlx::query!("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    crate::ground::cursor::paced_by_reader(&mut tx).await?;
    let mut records = 0;
    for table in chosen {
        let mut written = 0u64;
        let mut emit = |row: &dyn erased::Row| -> Result<()> {
            row.write(table, out)?;
            written += 1;
            if written.is_multiple_of(10_000) {
                progress(table, written);
            }
            Ok(())
        };
        match table {
            Table::Users => {
                let mut rows = query_users!(
                    select r#"from users order by id"#
                )
                .fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    emit(&row)?;
                }
            }
            Table::Accounts => {
                let mut rows = sqlx::query_as!(
                    Account,
                    r#"
                    select id, user_id, balance, currency, status
                    from accounts order by id
                    "#
                )
                .fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    emit(&row)?;
                }
            }
            Table::Transactions => {
                let mut rows = query_entries!(
                    select r#"
                    from transactions order by id
                    "#
                )
                .fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    emit(&row)?;
                }
            }
            Table::Payments => {
                let mut rows = sqlx::query_as!(
                    Payment,
                    r#"select id, data, created_at from payments order by id"#
                )
                .fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    emit(&row)?;
                }
            }
            Table::Articles => {
                let mut rows = sqlx::query_as!(
                    Article,
                    r#"
                    select id, title, content,
                           language::text as "language!: Language", created_at
                    from articles order by id
                    "#
                )
                .fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    emit(&row)?;
                }
            }
            Table::IdempotencyKeys => {
                let mut rows = sqlx::query_as!(
                    IdempotencyKey,
                    r#"
                    select key, entry_ids as "entry_ids: Vec<EntryId>", created_at
                    from idempotency_keys order by key
                    "#
                )
                .fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    emit(&row)?;
                }
            }
        }
        progress(table, written);
        records += written;
    }
    tx.commit().await?;
    let trailer = serde_json::json!({ "end": Trailer { records } });
    writeln!(out, "{trailer}").map_err(write_error)?;
    out.flush().map_err(write_error)?;
    Ok(records)
}

fn write_error(source: std::io::Error) -> Error {
    Error::Io {
        what: "writing the dump".to_owned(),
        source,
    }
}

/// Object-safe writing of any row type, so `dump` has one emitter for five row types.
mod erased {
    use super::*;

    pub trait Row {
        fn write(&self, table: Table, out: &mut (dyn Write + Send)) -> Result<()>;
    }

    impl<T: Serialize> Row for T {
        fn write(&self, table: Table, out: &mut (dyn Write + Send)) -> Result<()> {
            serde_json::to_writer(&mut *out, &RecordOut { table, row: self })
                .map_err(|e| write_error(e.into()))?;
            out.write_all(b"\n").map_err(write_error)
        }
    }
}
