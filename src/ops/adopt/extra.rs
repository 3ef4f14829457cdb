//! The model's own fields: columns of the money tables that the cheat sheet does not have.
//!
//! A real Django app extends the sheet's models. A column ledger's inserts never name is fine
//! when it may hold NULL or has a database default (Django 5's `db_default`); one that is
//! `NOT NULL` without a database default (a Django `default=` lives in Python only) would make
//! every ledger insert into its table fail, so adoption refuses it, naming the column and the two
//! ways out: a `db_default` in the model, or a default that `--apply --default-extra-columns`
//! sets after saying so.

use sqlx::{AssertSqlSafe, PgConnection};

use super::target::{ADDITIONS, SEED_COLUMNS};
use crate::{Error, Result};

/// A column ledger's inserts do not name, `NOT NULL`, with no database default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExtraColumn {
    pub(super) table: String,
    pub(super) column: String,
    /// `format_type`'s name of its type (`character varying(20)`).
    pub(super) r#type: String,
}

impl ExtraColumn {
    /// The default `--default-extra-columns` sets: the type's zero (`''`, `0`, `false`,
    /// `now()`, `'{}'`), or `None` for a type without an obvious one.
    pub(super) fn zero(&self) -> Option<&'static str> {
        let t = self.r#type.as_str();
        if t.starts_with("character") || t == "text" || t == "citext" {
            Some("''")
        } else if matches!(
            t,
            "smallint" | "integer" | "bigint" | "real" | "double precision"
        ) || t.starts_with("numeric")
        {
            Some("0")
        } else if t == "boolean" {
            Some("false")
        } else if t.starts_with("timestamp") {
            Some("now()")
        } else if t == "date" {
            Some("current_date")
        } else if t == "jsonb" || t == "json" {
            Some("'{}'")
        } else if t == "uuid" {
            Some("gen_random_uuid()")
        } else {
            None
        }
    }

    /// `alter table ... alter column ... set default ...`, when the type has a zero.
    pub(super) fn set_default(&self) -> Option<String> {
        self.zero().map(|zero| {
            format!(
                "alter table {} alter column {} set default {zero}",
                quote(&self.table),
                quote(&self.column)
            )
        })
    }

    fn describe(&self) -> String {
        format!("{}.{} ({})", self.table, self.column, self.r#type)
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The money tables' columns that are not the sheet's nor ledger's, hold no NULL, and have no
/// database default (nor are an identity or generated column), in table and column order.
///
/// SQL: `pg_attribute` of the five tables under their current names (Django's or ledger's),
/// `attnotnull and not atthasdef and attidentity = '' and attgenerated = ''`.
pub(super) async fn columns(conn: &mut PgConnection, app_label: &str) -> Result<Vec<ExtraColumn>> {
    let tables = super::checks::money_tables(app_label);
    let rows = sqlx::query!(
        r#"
        select c.relname::text as "table!", a.attname::text as "column!",
               format_type(a.atttypid, a.atttypmod) as "type!"
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        where c.relnamespace = current_schema()::regnamespace
          and c.relkind in ('r', 'p')
          and c.relname = any($1)
          and a.attnum > 0 and not a.attisdropped
          and a.attnotnull and not a.atthasdef
          and a.attidentity = '' and a.attgenerated = ''
        order by 1, a.attnum
        "#,
        &tables as &[String]
    )
    .fetch_all(&mut *conn)
    .await?;
    let known = |table: &str, column: &str| {
        let model = match table {
            t if t == "payments" || t.ends_with("_payment") => "payment",
            t if t == "articles" || t.ends_with("_article") => "article",
            other => other,
        };
        SEED_COLUMNS
            .iter()
            .chain(ADDITIONS)
            .any(|(t, c, _, _)| *t == model && *c == column)
    };
    Ok(rows
        .into_iter()
        .filter(|r| !known(&r.table, &r.column))
        .map(|r| ExtraColumn {
            table: r.table,
            column: r.column,
            r#type: r.r#type,
        })
        .collect())
}

/// Refuses `extra` unless `set_defaults` may give each a default; says which and why.
pub(super) fn refuse(extra: &[ExtraColumn], set_defaults: bool) -> Result<()> {
    if extra.is_empty() {
        return Ok(());
    }
    let without_zero: Vec<String> = extra
        .iter()
        .filter(|c| c.zero().is_none())
        .map(ExtraColumn::describe)
        .collect();
    if set_defaults && without_zero.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = extra.iter().map(ExtraColumn::describe).collect();
    let offered: Vec<String> = extra
        .iter()
        .filter_map(|c| {
            c.zero()
                .map(|zero| format!("{}.{} default {zero}", c.table, c.column))
        })
        .collect();
    let second = if without_zero.is_empty() {
        format!(
            "or let `ledger adopt --apply --default-extra-columns` set one, which it says before it \
             does ({})",
            offered.join(", ")
        )
    } else {
        format!(
            "`--default-extra-columns` knows no default for {}",
            without_zero.join(", ")
        )
    };
    Err(Error::NotAdoptable(format!(
        "{} {} not null with no database default, and ledger's inserts do not name {}: every \
         ledger insert into {} would fail. Give each field a database default in its model \
         (Django 5's `db_default=...`, then makemigrations and migrate), {second}",
        named.join(", "),
        if named.len() == 1 { "is" } else { "are" },
        if named.len() == 1 { "it" } else { "them" },
        if named.len() == 1 {
            "its table"
        } else {
            "their tables"
        },
    )))
}

/// Sets each column's default (the type's zero), in one short transaction under the adoption's
/// lock timeout: a catalog change, no rewrite.
pub(super) async fn set_defaults(
    conn: &mut PgConnection,
    extra: &[ExtraColumn],
    lock_timeout: &str,
) -> Result<()> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    // DDL takes no bind parameters: no query macro can express it. The names come from the
    // catalog (quoted), the defaults from `zero`'s fixed list.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "set local lock_timeout = '{lock_timeout}'"
    )))
    .execute(&mut *tx)
    .await?;
    for sql in extra.iter().filter_map(ExtraColumn::set_default) {
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(r#type: &str) -> ExtraColumn {
        ExtraColumn {
            table: "users".into(),
            column: "code".into(),
            r#type: r#type.into(),
        }
    }

    #[test]
    fn each_type_has_its_zero_or_none() {
        for (t, zero) in [
            ("character varying(20)", Some("''")),
            ("text", Some("''")),
            ("integer", Some("0")),
            ("numeric(15,2)", Some("0")),
            ("boolean", Some("false")),
            ("timestamp with time zone", Some("now()")),
            ("date", Some("current_date")),
            ("jsonb", Some("'{}'")),
            ("uuid", Some("gen_random_uuid()")),
            ("inet", None),
        ] {
            assert_eq!(column(t).zero(), zero, "{t}");
        }
        assert_eq!(
            column("text").set_default().as_deref(),
            Some("alter table \"users\" alter column \"code\" set default ''")
        );
    }

    #[test]
    fn the_refusal_names_the_column_and_both_ways_out() {
        assert!(refuse(&[], false).is_ok());
        let err = refuse(&[column("character varying(20)")], false)
            .unwrap_err()
            .to_string();
        for needle in [
            "users.code (character varying(20)) is not null with no database default",
            "db_default",
            "--default-extra-columns",
            "users.code default ''",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        assert!(refuse(&[column("text")], true).is_ok());
        let err = refuse(&[column("inet")], true).unwrap_err().to_string();
        assert!(
            err.contains("knows no default for users.code (inet)"),
            "{err}"
        );
    }
}
