//! The steps of an adoption: for each of ledger's rules, keys, indexes and defaults (the data in
//! `target`), the SQL that checks whether the step is done and the SQL that carries it out.

use crate::ops::schema::MIGRATOR;
use crate::{Error, Result};

use super::Lock;
use super::target::{
    CHECKS, Check, DEFAULTS, FOREIGN_KEYS, ForeignKey, INDEXES, Index, POST_FUNCTION,
};

/// How a step is run.
pub(super) enum Run {
    /// Statements in one transaction, with `lock_timeout`.
    Transaction,
    /// `create index concurrently`, outside any transaction, after dropping an invalid index of
    /// the same name that an interrupted build left.
    Index {
        /// The index's name.
        name: &'static str,
    },
    /// Records ledger's migrations as applied.
    RecordMigrations,
}

pub(super) struct Planned {
    pub(super) name: String,
    /// A `select` of one boolean: whether the step is done.
    pub(super) done: String,
    pub(super) sql: Vec<String>,
    pub(super) lock: Lock,
    pub(super) run: Run,
}

/// The app label as a table-name prefix: Django's labels are Python identifiers; this accepts
/// the lowercase ASCII ones, which are also plain PostgreSQL identifiers.
pub(super) fn check_app_label(app_label: &str) -> Result<()> {
    let mut chars = app_label.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && app_label.len() <= 40;
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            "app_label",
            format!(
                "{app_label:?} is not a lowercase Django app label (letters, digits, _; at most \
                 40)"
            ),
        ))
    }
}

/// `select exists (a table of that name in the current schema)`.
pub(super) fn table_exists(table: &str) -> String {
    format!(
        "select exists (select from pg_class where relname = '{table}' and relkind in ('r', 'p') \
         and relnamespace = current_schema()::regnamespace)"
    )
}

pub(super) fn column_condition(table: &str, column: &str, extra: &str) -> String {
    format!(
        "select exists (select from pg_attribute a join pg_class c on c.oid = a.attrelid \
         where c.relname = '{table}' and c.relnamespace = current_schema()::regnamespace \
         and a.attname = '{column}' and not a.attisdropped{extra})"
    )
}

pub(super) fn constraint_condition(table: &str, name: &str, extra: &str) -> String {
    format!(
        "select exists (select from pg_constraint k join pg_class c on c.oid = k.conrelid \
         where c.relname = '{table}' and c.relnamespace = current_schema()::regnamespace \
         and k.conname = '{name}'{extra})"
    )
}

/// Locks a referenced table before the one that refers to it, the order in which the seed's
/// money path takes them (accounts, then transactions), so that a step on a foreign key, which
/// locks both, never deadlocks with a transfer that holds one and waits for the other.
pub(super) fn lock_in_order(referenced: &str, referring: &str) -> String {
    format!("lock table {referenced}, {referring} in access exclusive mode")
}

/// Every step, in order, for the app `app`.
pub(super) fn plan(app: &str) -> Vec<Planned> {
    let catalog = |name: String, done: String, sql: Vec<String>| Planned {
        name,
        done,
        sql,
        lock: Lock::Catalog,
        run: Run::Transaction,
    };
    let mut steps = Vec::new();
    for (model, table) in [("payment", "payments"), ("article", "articles")] {
        steps.push(catalog(
            format!("rename {app}_{model} to {table}"),
            table_exists(table),
            vec![format!("alter table {app}_{model} rename to {table}")],
        ));
    }
    steps.push(catalog(
        "add payments.created_at (now() for the rows there)".into(),
        column_condition("payments", "created_at", ""),
        vec![
            "alter table payments add column created_at timestamptz not null default now()".into(),
        ],
    ));
    steps.push(catalog(
        "add articles.created_at (now() for the rows there)".into(),
        column_condition("articles", "created_at", ""),
        vec![
            "alter table articles add column created_at timestamptz not null default now()".into(),
        ],
    ));
    steps.push(catalog(
        "add articles.language".into(),
        column_condition("articles", "language", ""),
        vec![
            "alter table articles add column language regconfig not null default 'english'".into(),
        ],
    ));
    steps.push(Planned {
        name: "add articles.search (stored generated tsvector)".into(),
        done: column_condition("articles", "search", ""),
        sql: vec![
            "alter table articles add column search tsvector generated always as \
             (setweight(to_tsvector(language, title), 'A') || \
             setweight(to_tsvector(language, content), 'B')) stored"
                .into(),
        ],
        lock: Lock::Rewrite,
        run: Run::Transaction,
    });
    steps.push(catalog(
        "add transactions.idempotency_key".into(),
        column_condition("transactions", "idempotency_key", ""),
        vec!["alter table transactions add column idempotency_key varchar(200)".into()],
    ));
    for (table, column, default) in DEFAULTS {
        steps.push(catalog(
            format!("default {table}.{column} = {default}"),
            column_condition(table, column, " and a.atthasdef"),
            vec![format!(
                "alter table {table} alter column {column} set default {default}"
            )],
        ));
    }
    steps.push(catalog(
        "create idempotency_keys".into(),
        table_exists("idempotency_keys"),
        vec![
            "create table idempotency_keys (key varchar(200) not null, entry_ids uuid[] not \
             null, created_at timestamptz not null default now(), constraint \
             idempotency_keys_pkey primary key (key), constraint \
             idempotency_keys_entries_present check (cardinality(entry_ids) > 0))"
                .into(),
        ],
    ));
    steps.push(catalog(
        "create ledger_uuid_ids".into(),
        table_exists("ledger_uuid_ids"),
        vec![
            "create table ledger_uuid_ids (table_name text not null, uuid uuid not null, id \
             bigint not null, constraint ledger_uuid_ids_pkey primary key (table_name, uuid))"
                .into(),
        ],
    ));
    for check in CHECKS {
        let Check {
            table,
            name,
            expression,
            ..
        } = check;
        steps.push(catalog(
            format!("add check {name} (not valid)"),
            constraint_condition(table, name, ""),
            vec![format!(
                "alter table {table} add constraint {name} check ({expression}) not valid"
            )],
        ));
        steps.push(Planned {
            name: format!("validate {name}"),
            done: constraint_condition(table, name, " and k.convalidated"),
            sql: vec![format!("alter table {table} validate constraint {name}")],
            lock: Lock::Scan,
            run: Run::Transaction,
        });
    }
    for fk in FOREIGN_KEYS {
        let ForeignKey {
            table,
            name,
            column,
            references,
        } = fk;
        steps.push(catalog(
            format!("add foreign key {name} (on delete restrict, not valid)"),
            constraint_condition(table, name, ""),
            vec![
                lock_in_order(references, table),
                format!(
                    "alter table {table} add constraint {name} foreign key ({column}) \
                     references {references} (id) on delete restrict not valid"
                ),
            ],
        ));
        steps.push(Planned {
            name: format!("validate {name}"),
            done: constraint_condition(table, name, " and k.convalidated"),
            sql: vec![format!("alter table {table} validate constraint {name}")],
            lock: Lock::Scan,
            run: Run::Transaction,
        });
        // Django's own key on the same column, whatever its hash: found when the step runs.
        steps.push(catalog(
            format!("drop Django's deferred foreign key on {table}.{column}"),
            format!(
                "select not exists (select from pg_constraint k join pg_class c on c.oid = \
                 k.conrelid join pg_attribute a on a.attrelid = c.oid and a.attnum = \
                 any(k.conkey) where c.relname = '{table}' and c.relnamespace = \
                 current_schema()::regnamespace and k.contype = 'f' and a.attname = '{column}' \
                 and k.conname <> '{name}')"
            ),
            vec![
                lock_in_order(references, table),
                format!(
                    "do $$ declare name text; begin for name in select k.conname from \
                 pg_constraint k join pg_class c on c.oid = k.conrelid join pg_attribute a on \
                 a.attrelid = c.oid and a.attnum = any(k.conkey) where c.relname = '{table}' \
                 and c.relnamespace = current_schema()::regnamespace and k.contype = 'f' and \
                 a.attname = '{column}' and k.conname <> '{name}' loop execute format('alter \
                 table {table} drop constraint %I', name); end loop; end $$"
                ),
            ],
        ));
    }
    for index in INDEXES {
        let Index {
            table,
            name,
            definition,
            unique,
        } = index;
        let unique_sql = if *unique { "unique " } else { "" };
        let columns = definition.trim_start_matches("USING ");
        let (method, rest) = columns.split_once(' ').unwrap_or(("btree", columns));
        // A unique index becomes a constraint by its name, so only that name will do.
        let same_name = if *unique {
            format!(" and i.relname = '{name}'")
        } else {
            String::new()
        };
        steps.push(Planned {
            name: format!("index {name} (unless an equivalent exists)"),
            done: format!(
                "select exists (select from pg_index x join pg_class c on c.oid = x.indrelid \
                 join pg_class i on i.oid = x.indexrelid where c.relname = '{table}' and \
                 c.relnamespace = current_schema()::regnamespace and x.indisvalid and \
                 x.indisunique = {unique}{same_name} and \
                 regexp_replace(pg_get_indexdef(x.indexrelid), '^.* USING ', 'USING ') = \
                 '{definition}')"
            ),
            sql: vec![format!(
                "create {unique_sql}index concurrently {name} on {table} using {method} {rest}"
            )],
            lock: Lock::Concurrent,
            run: Run::Index { name },
        });
    }
    steps.push(catalog(
        "unique constraint transactions_idempotency_key_key (on its index)".into(),
        constraint_condition("transactions", "transactions_idempotency_key_key", ""),
        vec![
            "alter table transactions add constraint transactions_idempotency_key_key unique \
             using index transactions_idempotency_key_key"
                .into(),
        ],
    ));
    // The function's text is migration 0015's, so an adopted database runs the same body.
    steps.push(catalog(
        "create function ledger_post (a movement in one round trip)".into(),
        "select exists (select from pg_proc where proname = 'ledger_post' and pronamespace = \
         current_schema()::regnamespace)"
            .into(),
        vec![POST_FUNCTION.into()],
    ));
    let versions: Vec<String> = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| m.version.to_string())
        .collect();
    steps.push(Planned {
        name: format!(
            "record ledger's migrations {} to {} as applied",
            versions.first().map_or("", String::as_str),
            versions.last().map_or("", String::as_str)
        ),
        // Checked in Rust (`migrations_recorded`): the table may not exist yet.
        done: String::new(),
        sql: vec![format!(
            "insert into _ledger_migrations (version, description, success, checksum, \
             execution_time) values (<each of {}>)",
            versions.join(", ")
        )],
        lock: Lock::Catalog,
        run: Run::RecordMigrations,
    });
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_labels_are_lowercase_identifiers() {
        for good in ["myapp", "_x", "bank2", "a_b"] {
            assert!(check_app_label(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "MyApp",
            "2app",
            "my-app",
            "a;drop table users",
            "é",
            &"a".repeat(41),
        ] {
            assert!(check_app_label(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_index_step_creates_what_its_check_looks_for() {
        for step in plan("myapp") {
            if let Run::Index { .. } = step.run {
                let create = &step.sql[0];
                assert!(create.contains(" concurrently "), "{create}");
                let tail = create.split(" using ").nth(1).unwrap();
                assert!(step.done.contains(&format!("'USING {tail}')")), "{create}");
            }
        }
    }
}
