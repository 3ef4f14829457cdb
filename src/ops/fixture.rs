//! Django's fixtures: `ledger load` reads what `manage.py dumpdata <app>` writes, and
//! `ledger dump --format django` writes what `manage.py loaddata` reads.
//!
//! **Format.** One JSON array of records, `{"model": "<app>.<model>", "pk": ..., "fields":
//! {...}}`, for the seed's five models: `user`, `account`, `transaction` (foreign keys as
//! `user`, `from_account`, `to_account`), `payment` and `article`. Decimals are strings, times
//! RFC 3339 with microseconds (Django's own `dumpdata` keeps milliseconds; `loaddata` reads
//! either), JSON documents verbatim at any depth.
//!
//! **What differs from the NDJSON format** ([`crate::dump`]), both ways:
//! - ledger's columns that Django's models lack are left out of a fixture: a ledger entry's
//!   `idempotency_key`, a payment's `created_at`, an article's `language`, and the
//!   `idempotency_keys` table. A ledger restored from a fixture therefore replays no key: the
//!   NDJSON format is the backup; the fixture is for Django.
//! - a fixture loaded into ledger gives every payment the load's time as `created_at`, and every
//!   article the `english` search configuration.
//!
//! **Load** has the NDJSON load's atomicity and error rules: every record is checked first (a
//! known model of the app, the model's fields, values that fit their columns exactly), then all of
//! them are written in one transaction with `COPY`; any refusal names the record (its position in
//! the array, from 1) and writes nothing. Django's `loaddata` reads the whole file into memory, and
//! so does this: a fixture is one JSON array, which cannot be streamed record by record.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::{PgConnection, PgPool};

use crate::ground::document::Document;
use crate::ground::ids::{EntryId, PaymentId, UserId};
use crate::ground::kinds::{EntryKind, EntryStatus};
use crate::money::transactions::LedgerEntry;
use crate::ops::dump::{self, Table};
use crate::tables::accounts::{Account, AccountId, AccountStatus};
use crate::tables::articles::{Article, ArticleId, Language};
use crate::tables::payments::Payment;
use crate::tables::users::User;
use crate::{Error, Result};

/// Whether a file holds a Django fixture (its first non-blank byte opens a JSON array) rather than
/// ledger's NDJSON.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read.
pub fn is_fixture(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|source| Error::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    let mut head = [0_u8; 512];
    let read = file.read(&mut head).map_err(|source| Error::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    Ok(head[..read]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'['))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordIn {
    model: String,
    pk: Box<RawValue>,
    fields: Box<RawValue>,
}

#[derive(Serialize)]
struct RecordOut<'a, P, F> {
    model: String,
    pk: &'a P,
    fields: F,
}

#[derive(Serialize, Deserialize)]
struct UserFields {
    email: String,
    name: String,
    created_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
struct AccountFields {
    user: UserId,
    balance: Decimal,
    currency: String,
    status: AccountStatus,
}

#[derive(Serialize, Deserialize)]
struct TransactionFields {
    from_account: Option<AccountId>,
    to_account: Option<AccountId>,
    amount: Decimal,
    #[serde(rename = "type")]
    kind: EntryKind,
    status: EntryStatus,
    metadata: Document,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct PaymentFields {
    data: Document,
}

#[derive(Serialize, Deserialize)]
struct ArticleFields {
    title: String,
    content: String,
    created_at: DateTime<Utc>,
}

/// One ledger NDJSON record, as [`dump::load`] reads it.
#[derive(Serialize)]
struct LedgerRecord<R> {
    table: Table,
    row: R,
}

/// Turns one fixture record into the line ledger's NDJSON load reads.
fn to_ledger_line(app_label: &str, record: &RecordIn, loaded_at: DateTime<Utc>) -> Result<String> {
    fn parse<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Result<T> {
        serde_json::from_str(raw.get()).map_err(|e| Error::invalid("fixture", e.to_string()))
    }
    fn line<R: Serialize>(table: Table, row: R) -> Result<String> {
        serde_json::to_string(&LedgerRecord { table, row })
            .map_err(|e| Error::invalid("fixture", e.to_string()))
    }
    let model = record
        .model
        .strip_prefix(app_label)
        .and_then(|m| m.strip_prefix('.'))
        .unwrap_or("");
    match model {
        "user" => {
            let f: UserFields = parse(&record.fields)?;
            line(
                Table::Users,
                User {
                    id: parse(&record.pk)?,
                    email: f.email,
                    name: f.name,
                    created_at: f.created_at,
                    deleted_at: f.deleted_at,
                },
            )
        }
        "account" => {
            let f: AccountFields = parse(&record.fields)?;
            line(
                Table::Accounts,
                Account {
                    id: parse(&record.pk)?,
                    user_id: f.user,
                    balance: f.balance,
                    currency: f.currency,
                    status: f.status,
                },
            )
        }
        "transaction" => {
            let f: TransactionFields = parse(&record.fields)?;
            line(
                Table::Transactions,
                LedgerEntry {
                    id: parse(&record.pk)?,
                    from_account_id: f.from_account,
                    to_account_id: f.to_account,
                    amount: f.amount,
                    kind: f.kind,
                    status: f.status,
                    metadata: f.metadata,
                    created_at: f.created_at,
                    idempotency_key: None,
                },
            )
        }
        "payment" => {
            let f: PaymentFields = parse(&record.fields)?;
            line(
                Table::Payments,
                Payment {
                    id: parse(&record.pk)?,
                    data: f.data,
                    created_at: loaded_at,
                },
            )
        }
        "article" => {
            let f: ArticleFields = parse(&record.fields)?;
            line(
                Table::Articles,
                Article {
                    id: parse(&record.pk)?,
                    title: f.title,
                    content: f.content,
                    language: Language::English,
                    created_at: f.created_at,
                },
            )
        }
        _ => Err(Error::invalid(
            "fixture",
            format!(
                "model {:?} is not one of the seed's ({app_label}.user, .account, \
                 .transaction, .payment, .article): dump with `manage.py dumpdata {app_label}`",
                record.model
            ),
        )),
    }
}

/// Loads a Django fixture of the app's models, all or nothing. Calls `progress(table, rows)`
/// after each table. Returns the number of records loaded.
///
/// Django: `python manage.py loaddata backup.json`
///
/// SQL: as [`dump::load`]: `begin`; per table in foreign-key order, `copy <table> (...) from
/// stdin`; the identity sequences moved past the loaded ids; `commit`.
///
/// # Errors
/// [`Error::InvalidInput`] for the field `file` naming the record (from 1) that is not JSON, not
/// a record, of another model, lacks a field, or holds a value its column would change or refuse,
/// or that the database refuses (a conflicting id, say). [`Error::Io`] when the file cannot be
/// read. Nothing is written on any error.
pub async fn load(
    conn: &mut PgConnection,
    path: &Path,
    app_label: &str,
    progress: &mut (dyn FnMut(Table, u64) + Send),
) -> Result<u64> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        what: format!("reading {}", path.display()),
        source,
    })?;
    let records: Vec<RecordIn> = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            "file",
            format!("not a Django fixture (a JSON array of records): {e}"),
        )
    })?;
    let loaded_at = Utc::now();
    // The NDJSON load does the checking and the writing: record N of the fixture is its record N.
    let mut lines = Vec::with_capacity(records.len() + 1);
    for (index, record) in records.iter().enumerate() {
        lines.push(
            to_ledger_line(app_label, record, loaded_at).map_err(|e| match e {
                Error::InvalidInput { reason, .. } => {
                    Error::invalid("file", format!("record {}: {reason}", index + 1))
                }
                other => other,
            })?,
        );
    }
    lines.push(format!("{{\"end\":{{\"records\":{}}}}}", records.len()));
    drop(text);
    dump::load_records(conn, &dump::Records::Converted(&lines), progress).await
}

/// Writes the seed's five tables as a Django fixture of the app's models, from one snapshot,
/// streaming: memory stays flat. Calls `progress(table, rows)` as [`dump::dump`] does. Returns
/// the number of records.
///
/// Django: `python manage.py dumpdata myapp > backup.json`
///
/// SQL: as [`dump::dump`] (one `repeatable read, read only` transaction).
///
/// # Errors
/// [`Error::Database`] when reading fails; [`Error::Io`] when writing to `out` fails.
pub async fn dump(
    pool: &PgPool,
    app_label: &str,
    out: &mut (dyn Write + Send),
    progress: &mut (dyn FnMut(Table, u64) + Send),
) -> Result<u64> {
    let mut writer = FixtureWriter {
        app_label,
        out,
        pending: Vec::new(),
        records: 0,
        failed: None,
    };
    writer.write_raw(b"[")?;
    let tables = [
        Table::Users,
        Table::Accounts,
        Table::Transactions,
        Table::Payments,
        Table::Articles,
    ];
    let result = dump::dump(pool, &tables, &mut writer, progress).await;
    if let Some(error) = writer.failed.take() {
        return Err(error);
    }
    result?;
    writer.write_raw(b"\n]\n")?;
    writer.out.flush().map_err(|source| Error::Io {
        what: "writing the fixture".into(),
        source,
    })?;
    Ok(writer.records)
}

/// Takes ledger's NDJSON from [`dump::dump`] line by line and writes Django records.
struct FixtureWriter<'a> {
    app_label: &'a str,
    out: &'a mut (dyn Write + Send),
    pending: Vec<u8>,
    records: u64,
    /// A conversion error, kept to be returned instead of the I/O error it was reported as.
    failed: Option<Error>,
}

#[derive(Deserialize)]
struct LedgerLine {
    table: Option<Table>,
    row: Option<Box<RawValue>>,
}

impl FixtureWriter<'_> {
    fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|source| Error::Io {
            what: "writing the fixture".into(),
            source,
        })
    }

    fn record(&mut self, line: &[u8]) -> Result<()> {
        fn parse<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Result<T> {
            serde_json::from_str(raw.get()).map_err(|e| Error::invalid("row", e.to_string()))
        }
        let line: LedgerLine =
            serde_json::from_slice(line).map_err(|e| Error::invalid("row", e.to_string()))?;
        let (Some(table), Some(row)) = (line.table, line.row) else {
            return Ok(()); // the trailer
        };
        let model = |name: &str| format!("{}.{name}", self.app_label);
        let text = match table {
            Table::Users => {
                let u: User = parse(&row)?;
                to_json(&RecordOut {
                    model: model("user"),
                    pk: &u.id,
                    fields: UserFields {
                        email: u.email,
                        name: u.name,
                        created_at: u.created_at,
                        deleted_at: u.deleted_at,
                    },
                })?
            }
            Table::Accounts => {
                let a: Account = parse(&row)?;
                to_json(&RecordOut {
                    model: model("account"),
                    pk: &a.id,
                    fields: AccountFields {
                        user: a.user_id,
                        balance: a.balance,
                        currency: a.currency,
                        status: a.status,
                    },
                })?
            }
            Table::Transactions => {
                let t: LedgerEntry = parse(&row)?;
                let id: EntryId = t.id;
                to_json(&RecordOut {
                    model: model("transaction"),
                    pk: &id,
                    fields: TransactionFields {
                        from_account: t.from_account_id,
                        to_account: t.to_account_id,
                        amount: t.amount,
                        kind: t.kind,
                        status: t.status,
                        metadata: t.metadata,
                        created_at: t.created_at,
                    },
                })?
            }
            Table::Payments => {
                let p: Payment = parse(&row)?;
                let id: PaymentId = p.id;
                to_json(&RecordOut {
                    model: model("payment"),
                    pk: &id,
                    fields: PaymentFields { data: p.data },
                })?
            }
            Table::Articles => {
                let a: Article = parse(&row)?;
                let id: ArticleId = a.id;
                to_json(&RecordOut {
                    model: model("article"),
                    pk: &id,
                    fields: ArticleFields {
                        title: a.title,
                        content: a.content,
                        created_at: a.created_at,
                    },
                })?
            }
            Table::IdempotencyKeys => return Ok(()),
        };
        let separator: &[u8] = if self.records == 0 { b"\n" } else { b",\n" };
        self.write_raw(separator)?;
        self.write_raw(text.as_bytes())?;
        self.records += 1;
        Ok(())
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::invalid("row", e.to_string()))
}

impl Write for FixtureWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            if let Err(error) = self.record(&line[..end]) {
                let message = error.to_string();
                self.failed = Some(error);
                return Err(std::io::Error::other(message));
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
