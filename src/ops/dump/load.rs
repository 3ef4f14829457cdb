//! Loading a dump: every record checked first (a malformed or out-of-range one refused by its
//! line, nothing written), then each table copied in foreign-key order in one transaction.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use sqlx::postgres::PgDatabaseError;
use sqlx::{Acquire, PgConnection};

use super::{RecordIn, Table};
use crate::money::transactions::{IdempotencyKey, LedgerEntry};
use crate::tables::accounts::Account;
use crate::tables::articles::Article;
use crate::tables::copy::CopyText;
use crate::tables::payments::Payment;
use crate::tables::users::User;
use crate::{Error, Result};

/// Where a load reads its records: ledger's NDJSON file, or records already in memory (a Django
/// fixture, converted by [`crate::fixture`]). Read twice, once to check and once to copy.
pub(crate) enum Records<'a> {
    /// An NDJSON file; a refusal names its line.
    File(&'a Path),
    /// One NDJSON record per entry, the trailer last; a refusal names the record.
    Converted(&'a [String]),
}

impl Records<'_> {
    /// Every line, from the start.
    fn lines(&self) -> Result<Box<dyn Iterator<Item = std::io::Result<String>> + '_>> {
        Ok(match self {
            Records::File(path) => Box::new(open(path)?.lines()),
            Records::Converted(lines) => Box::new(lines.iter().cloned().map(Ok)),
        })
    }

    /// A refusal at position `at` (from 1): "line 3: ..." or "record 3: ...".
    fn refusal(&self, at: u64, reason: impl std::fmt::Display) -> Error {
        let noun = match self {
            Records::File(_) => "line",
            Records::Converted(_) => "record",
        };
        Error::invalid("file", format!("{noun} {at}: {reason}"))
    }
}

/// Loads a file written by [`dump`](super::dump) into the database, all or nothing. Calls `progress(table,
/// rows)` after each table. Returns the number of records loaded.
///
/// Django: `python manage.py loaddata backup.json`
///
/// SQL: `begin`; per table in foreign-key order, `copy <table> (<every column>) from stdin`; the
/// payments' and articles' identity sequences moved past the loaded ids (`setval`); `commit`.
///
/// # Errors
/// [`Error::InvalidInput`] for the field `file` naming the line of a malformed record, a missing
/// or wrong trailer (a truncated file), or a row the database refuses (a conflicting id, say;
/// the database error is in the message). [`Error::Io`] when the file cannot be read.
/// Nothing is written on any error.
#[tracing::instrument(name = "ledger.load", skip_all, fields(path = %path.display()))]
pub async fn load(
    conn: &mut PgConnection,
    path: &Path,
    progress: &mut (dyn FnMut(Table, u64) + Send),
) -> Result<u64> {
    load_records(conn, &Records::File(path), progress).await
}

/// [`load`], from either source.
pub(crate) async fn load_records(
    conn: &mut PgConnection,
    records: &Records<'_>,
    progress: &mut (dyn FnMut(Table, u64) + Send),
) -> Result<u64> {
    let counts = check_records(records)?;
    let mut tx = conn.begin().await?;
    let mut loaded = 0;
    for table in Table::ALL {
        if counts[table as usize] == 0 {
            continue;
        }
        loaded += copy_table(&mut tx, records, table).await?;
        progress(table, counts[table as usize]);
    }
    advance_identities(&mut tx).await?;
    // A deferred foreign key (a database Django made) is checked here, at the commit.
    tx.commit()
        .await
        .map_err(|e| orphan(records, e).unwrap_or_else(|e| e.into()))?;
    Ok(loaded)
}

/// A foreign-key refusal as the record that caused it: PostgreSQL checks a key after the
/// statement (or at the commit, for a deferred one), so its error names no line of the `COPY`,
/// only the value (`Key (user_id)=(...) is not present in table "users"`). The first record whose
/// row holds that value in that column is the one that points nowhere. `Err(err)` for any other
/// error, or when no record holds it.
fn orphan(records: &Records<'_>, err: sqlx::Error) -> std::result::Result<Error, sqlx::Error> {
    let Some((column, value, target, constraint)) = err
        .as_database_error()
        .and_then(|d| d.try_downcast_ref::<PgDatabaseError>())
        .filter(|d| d.code() == crate::sqlstate::FOREIGN_KEY_VIOLATION)
        .and_then(|d| {
            let detail = d.detail()?;
            let rest = detail.strip_prefix("Key (")?;
            let (column, rest) = rest.split_once(")=(")?;
            let (value, rest) = rest.split_once(") is not present in table \"")?;
            let target = rest.split('"').next()?;
            Some((
                column.to_owned(),
                value.to_owned(),
                target.to_owned(),
                d.constraint().unwrap_or_default().to_owned(),
            ))
        })
    else {
        return Err(err);
    };
    let Ok(lines) = records.lines() else {
        return Err(err);
    };
    for (at, line) in (1u64..).zip(lines) {
        let Ok(line) = line else { break };
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let held = &record["row"][column.as_str()];
        if held.as_str() == Some(value.as_str())
            || value.parse::<i64>().is_ok_and(|n| held.as_i64() == Some(n))
        {
            return Ok(records.refusal(
                at,
                format!(
                    "its {column} {value} is neither in the file nor in the database's \
                     {target} ({constraint})"
                ),
            ));
        }
    }
    Err(err)
}

/// Moves the payments' and articles' identity sequences past the ids a load wrote, as Django's
/// `loaddata` resets its sequences: the next insert must not collide with a loaded row.
async fn advance_identities(conn: &mut PgConnection) -> Result<()> {
    sqlx::query!(
        r#"
        select (select setval(pg_get_serial_sequence('payments', 'id'), greatest(max(id), 1),
                              max(id) is not null)
                from payments) as "payments?",
               (select setval(pg_get_serial_sequence('articles', 'id'), greatest(max(id), 1),
                              max(id) is not null)
                from articles) as "articles?"
        "#
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(())
}

fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| Error::Io {
            what: format!("reading {}", path.display()),
            source,
        })
}

/// Reads every line: each must be a record of a known table whose row has the table's shape, and
/// the last must be the trailer with the right count. Returns the rows per table.
fn check_records(records: &Records<'_>) -> Result<[u64; Table::ALL.len()]> {
    let mut counts = [0u64; Table::ALL.len()];
    let mut trailer: Option<(u64, u64)> = None;
    let mut line_no = 0;
    for line in records.lines()? {
        line_no += 1;
        let line = line.map_err(|e| records.refusal(line_no, e))?;
        if let Some((at, _)) = trailer {
            return Err(records.refusal(line_no, format!("data after the trailer of line {at}")));
        }
        let record: RecordIn =
            serde_json::from_str(&line).map_err(|e| records.refusal(line_no, e))?;
        match record {
            RecordIn {
                end: Some(end),
                table: None,
                row: None,
            } => trailer = Some((line_no, end.records)),
            RecordIn {
                table: Some(table),
                row: Some(row),
                end: None,
            } => {
                check_row(table, &row).map_err(|e| records.refusal(line_no, e))?;
                counts[table as usize] += 1;
            }
            _ => {
                return Err(records.refusal(
                    line_no,
                    "not a record: expected {\"table\", \"row\"} or {\"end\"}",
                ));
            }
        }
    }
    let total: u64 = counts.iter().sum();
    match trailer {
        Some((_, counted)) if counted == total => Ok(counts),
        Some((at, counted)) => Err(records.refusal(
            at,
            format!("the trailer counts {counted} records, the file has {total}"),
        )),
        None => Err(records.refusal(line_no + 1, "no trailer: the file is truncated")),
    }
}

/// Checks that a row parses and that every value fits its column exactly: a load changes nothing
/// it stores (an amount with a third decimal is refused, not rounded by `numeric(15,2)`). JSON
/// documents are restored as they are, at any depth and size (see [`crate::document`]).
fn check_row(table: Table, row: &RawValue) -> std::result::Result<(), String> {
    fn parse<T: serde::de::DeserializeOwned>(row: &RawValue) -> std::result::Result<T, String> {
        serde_json::from_str(row.get()).map_err(|e| e.to_string())
    }
    match table {
        Table::Users => {
            let user = parse::<User>(row)?;
            fits_text("users.email", &user.email, 254)?;
            fits_text("users.name", &user.name, 100)
        }
        Table::Accounts => {
            let account = parse::<Account>(row)?;
            fits_text("accounts.currency", &account.currency, 3)?;
            fits_text("accounts.status", account.status.as_str(), 20)?;
            fits_money("accounts.balance", account.balance)
        }
        Table::Transactions => {
            let entry = parse::<LedgerEntry>(row)?;
            fits_text("transactions.type", entry.kind.as_str(), 20)?;
            fits_text("transactions.status", entry.status.as_str(), 20)?;
            if let Some(key) = &entry.idempotency_key {
                fits_text("transactions.idempotency_key", key, 200)?;
            }
            fits_money("transactions.amount", entry.amount)
        }
        Table::Payments => parse::<Payment>(row).map(drop),
        Table::Articles => {
            let article = parse::<Article>(row)?;
            fits_text("articles.title", &article.title, 200)?;
            fits_text("articles.content", &article.content, usize::MAX)
        }
        Table::IdempotencyKeys => {
            let key = parse::<IdempotencyKey>(row)?;
            fits_text("idempotency_keys.key", &key.key, 200)
        }
    }
}

/// `varchar(max)` (characters, as PostgreSQL counts them), and no U+0000, which no text column
/// can hold.
fn fits_text(column: &str, value: &str, max: usize) -> std::result::Result<(), String> {
    if value.contains('\0') {
        return Err(format!(
            "{column}: contains the character U+0000, which PostgreSQL cannot store"
        ));
    }
    let chars = value.chars().count();
    if chars > max {
        return Err(format!(
            "{column}: {chars} characters do not fit varchar({max})"
        ));
    }
    Ok(())
}

fn fits_money(column: &str, value: Decimal) -> std::result::Result<(), String> {
    if value.normalize().scale() > 2 || value.abs() >= Decimal::from(10_000_000_000_000_i64) {
        return Err(format!(
            "{column}: {value} does not fit numeric(15,2) exactly (at most 2 decimal places, \
             below 10^13); refusing to round it"
        ));
    }
    Ok(())
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Encodes one checked row as a `COPY` line.
fn encode(
    table: Table,
    row: &RawValue,
    data: &mut CopyText,
) -> std::result::Result<(), serde_json::Error> {
    match table {
        Table::Users => {
            let u: User = serde_json::from_str(row.get())?;
            data.display(u.id)
                .text(&u.email)
                .text(&u.name)
                .text(&time(&u.created_at));
            match u.deleted_at {
                Some(t) => data.text(&time(&t)),
                None => data.null(),
            };
        }
        Table::Accounts => {
            let a: Account = serde_json::from_str(row.get())?;
            data.display(a.id)
                .display(a.user_id)
                .display(a.balance)
                .text(&a.currency)
                .text(a.status.as_str());
        }
        Table::Transactions => {
            let t: LedgerEntry = serde_json::from_str(row.get())?;
            data.display(t.id);
            match t.from_account_id {
                Some(id) => data.display(id),
                None => data.null(),
            };
            match t.to_account_id {
                Some(id) => data.display(id),
                None => data.null(),
            };
            data.display(t.amount)
                .text(t.kind.as_str())
                .text(t.status.as_str())
                .text(t.metadata.as_str());
            data.text(&time(&t.created_at));
            match &t.idempotency_key {
                Some(key) => data.text(key),
                None => data.null(),
            };
        }
        Table::Payments => {
            let p: Payment = serde_json::from_str(row.get())?;
            data.display(p.id)
                .text(p.data.as_str())
                .text(&time(&p.created_at));
        }
        Table::Articles => {
            let a: Article = serde_json::from_str(row.get())?;
            data.display(a.id)
                .text(&a.title)
                .text(&a.content)
                .text(a.language.as_str());
            data.text(&time(&a.created_at));
        }
        Table::IdempotencyKeys => {
            let k: IdempotencyKey = serde_json::from_str(row.get())?;
            // An array literal of UUIDs, which need no quoting: {id,id}.
            let ids: Vec<String> = k.entry_ids.iter().map(ToString::to_string).collect();
            data.text(&k.key)
                .text(&format!("{{{}}}", ids.join(",")))
                .text(&time(&k.created_at));
        }
    }
    data.end_row();
    Ok(())
}

async fn copy_table(conn: &mut PgConnection, records: &Records<'_>, table: Table) -> Result<u64> {
    // COPY takes no bind parameters and returns no columns: no query macro can express it.
    let statement = match table {
        Table::Users => "copy users (id, email, name, created_at, deleted_at) from stdin",
        Table::Accounts => "copy accounts (id, user_id, balance, currency, status) from stdin",
        Table::Transactions => {
            "copy transactions (id, from_account_id, to_account_id, amount, type, status, \
             metadata, created_at, idempotency_key) from stdin"
        }
        Table::Payments => "copy payments (id, data, created_at) from stdin",
        Table::Articles => "copy articles (id, title, content, language, created_at) from stdin",
        Table::IdempotencyKeys => "copy idempotency_keys (key, entry_ids, created_at) from stdin",
    };
    let mut copy = conn.copy_in_raw(statement).await?;
    // The file line of each row sent, to name the record PostgreSQL refuses.
    let mut lines: Vec<u64> = Vec::new();
    let mut data = CopyText::new();
    let mut line_no = 0;
    for line in records.lines()? {
        line_no += 1;
        let line = line.map_err(|e| records.refusal(line_no, e))?;
        let record: RecordIn =
            serde_json::from_str(&line).map_err(|e| records.refusal(line_no, e))?;
        let (Some(t), Some(row)) = (record.table, record.row) else {
            continue;
        };
        if t != table {
            continue;
        }
        encode(table, &row, &mut data).map_err(|e| records.refusal(line_no, e))?;
        lines.push(line_no);
        if data.len() >= 1 << 20 {
            copy.send(data.take()).await?;
        }
    }
    copy.send(data.take()).await?;
    copy.finish().await.map_err(|e| match orphan(records, e) {
        Ok(named) => named,
        Err(e) => refused_line(records, e, table, &lines),
    })
}

/// Names the file line of the row a `COPY` refused (PostgreSQL reports "COPY users, line 3"),
/// and says so plainly when the row is already in the database.
fn refused_line(records: &Records<'_>, err: sqlx::Error, table: Table, lines: &[u64]) -> Error {
    let copy_line = err
        .as_database_error()
        .and_then(|d| d.try_downcast_ref::<PgDatabaseError>())
        .and_then(|d| d.r#where())
        .and_then(|w| w.split("line ").nth(1))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<usize>().ok());
    let line = copy_line.and_then(|n| lines.get(n.wrapping_sub(1)));
    match (line, Error::from(err)) {
        (Some(line), Error::UniqueViolation { constraint, .. }) => records.refusal(
            *line,
            format!(
                "this {} row is already in the database ({constraint}): load into an empty \
                 database, or delete the rows the file holds first",
                table.name()
            ),
        ),
        (Some(line), err) => records.refusal(*line, err),
        (None, err) => err,
    }
}
