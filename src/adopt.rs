//! `ledger adopt`: take over, in place, a database that Django's migrations made from the seed's
//! models, so that ledger and the team's Django code run side by side on it.
//!
//! [`inspect`] is the dry run. It checks `django_migrations` and the catalog (every table and
//! column of the seed, with its type and nullability), lists each step still to do and the lock it
//! takes, and finds every row that breaks a rule ledger enforces and Django does not, grouped by
//! rule with counts and sample ids. It changes nothing.
//!
//! [`apply`] runs the steps that are not done yet, each on its own, in an order that is safe on a
//! live database:
//! - a table rename, a column with a constant or `now()` default, a column default, a dropped
//!   constraint: catalog changes, each in a short transaction with `lock_timeout = 5s`, so a
//!   step that cannot get its lock fails instead of queueing writers behind it;
//! - a check or foreign key: added `not valid` (a catalog change), then validated in a step of
//!   its own, which scans under `share update exclusive` while reads and writes go on. A step on
//!   a foreign key locks both of its tables first, the referenced one before the other, as the
//!   money path does: without that, dropping Django's key deadlocked with a running
//!   `transfer_funds` (found by `tests/db/django.rs`);
//! - an index: `create index concurrently` (an invalid one left by an interrupted build is dropped
//!   and built again), unless an equivalent valid index exists under any name, as Django's often
//!   do;
//! - the one step that rewrites a table: `articles.search`, a stored generated column, is added
//!   under an exclusive lock for as long as the rewrite takes. [`Report`] shows it as
//!   [`Lock::Rewrite`]; on a large `articles` table, run `apply` in a quiet window.
//!
//! Each step checks the catalog first, so a run that crashed or was interrupted resumes where it
//! stopped. The last step records ledger's migrations as applied in `_sqlx_migrations`, and
//! `ledger migrate` continues from there. Django's own tables (`auth_*`, `django_*`, any other
//! app's) are never touched, and no row is changed or removed: a database whose rows break a rule
//! is refused ([`Error::NotAdoptable`]) until they are fixed, and `success`, the status Django's
//! data holds, is one that ledger's rules hold too.
//!
//! **Dual running.** Ledger's tables for `Payment` and `Article` are `payments` and `articles`;
//! Django's are `<app>_payment` and `<app>_article`. `apply` renames them, and
//! [`Report::django_changes`] names the one `Meta` line each model then needs (`db_table`), with
//! the `migrate --fake` that records it. The other models already name their tables.

use std::fmt;

use sqlx::migrate::Migrate;
use sqlx::{AssertSqlSafe, PgConnection};

use crate::schema::MIGRATOR;
use crate::{Error, Result};

/// How long a catalog step waits for its lock before it gives up (the run can be repeated).
const LOCK_TIMEOUT: &str = "5s";
/// How many sample ids a broken rule shows.
const SAMPLES: i64 = 5;

/// What a step holds while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lock {
    /// A catalog change: an exclusive lock held for milliseconds, taken with `lock_timeout`.
    Catalog,
    /// A validating scan under `share update exclusive`: reads and writes go on.
    Scan,
    /// `create index concurrently`: reads and writes go on.
    Concurrent,
    /// A table rewrite under an exclusive lock, for as long as the table takes to copy.
    Rewrite,
}

impl fmt::Display for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lock::Catalog => "catalog only",
            Lock::Scan => "scan, writes go on",
            Lock::Concurrent => "concurrently, writes go on",
            Lock::Rewrite => "REWRITES the table under an exclusive lock",
        })
    }
}

/// One step of the adoption.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// What it does, e.g. "add check users_email_format (not valid)".
    pub name: String,
    /// The SQL it runs.
    pub sql: Vec<String>,
    /// What it holds while it runs.
    pub lock: Lock,
    /// Whether the database already has it.
    pub done: bool,
}

/// Rows that break one of ledger's rules.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The rule: the constraint ledger adds.
    pub rule: &'static str,
    /// Its table.
    pub table: &'static str,
    /// What it requires.
    pub requires: &'static str,
    /// How many rows break it.
    pub rows: i64,
    /// Up to five of their ids, smallest first.
    pub sample_ids: Vec<String>,
}

/// What [`inspect`] found, or what [`apply`] left.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// The Django app whose models these are.
    pub app_label: String,
    /// The app's migrations that `django_migrations` records as applied.
    pub django_migrations: Vec<String>,
    /// Every step, done or not, in order.
    pub steps: Vec<Step>,
    /// Rows that break a rule ledger adds; [`apply`] refuses while there are any.
    pub violations: Vec<Violation>,
    /// The change each Django model needs to keep working after the adoption.
    pub django_changes: Vec<String>,
}

impl Report {
    /// Whether every step is done.
    pub fn is_adopted(&self) -> bool {
        self.steps.iter().all(|s| s.done)
    }

    /// The steps still to do.
    pub fn pending(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| !s.done)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Django app {:?}: {} migration(s) applied ({})",
            self.app_label,
            self.django_migrations.len(),
            self.django_migrations.join(", ")
        )?;
        let pending: Vec<&Step> = self.pending().collect();
        if pending.is_empty() {
            writeln!(f, "\nThe schema is ledger's: nothing to change.")?;
        } else {
            writeln!(
                f,
                "\n{} of {} steps to run:",
                pending.len(),
                self.steps.len()
            )?;
            for step in pending {
                writeln!(f, "  - {} [{}]", step.name, step.lock)?;
                for sql in &step.sql {
                    writeln!(f, "      {sql};")?;
                }
            }
        }
        if self.violations.is_empty() {
            writeln!(f, "\nEvery row meets ledger's rules.")?;
        } else {
            writeln!(
                f,
                "\nRows that break ledger's rules (fix them, then run again):"
            )?;
            for v in &self.violations {
                writeln!(
                    f,
                    "  - {} on {} ({}): {} row(s), e.g. {}",
                    v.rule,
                    v.table,
                    v.requires,
                    v.rows,
                    v.sample_ids.join(", ")
                )?;
            }
        }
        writeln!(f, "\nDjango, for running side by side:")?;
        for change in &self.django_changes {
            writeln!(f, "  - {change}")?;
        }
        Ok(())
    }
}

/// A rule ledger enforces with a check constraint.
struct Check {
    table: &'static str,
    name: &'static str,
    expression: &'static str,
    requires: &'static str,
}

const CHECKS: &[Check] = &[
    Check {
        table: "users",
        name: "users_email_format",
        expression: r"email ~ '^[^@[:space:]]+@[^@[:space:]]+$'",
        requires: "one @, no white space",
    },
    Check {
        table: "accounts",
        name: "balance_non_negative",
        expression: "balance >= 0",
        requires: "balance >= 0 (the seed's)",
    },
    Check {
        table: "accounts",
        name: "accounts_currency_format",
        expression: "currency ~ '^[A-Z]{3}$'",
        requires: "three uppercase letters",
    },
    Check {
        table: "transactions",
        name: "positive_amount",
        expression: "amount > 0",
        requires: "amount > 0 (the seed's)",
    },
    Check {
        table: "transactions",
        name: "transactions_type_valid",
        expression: "type in ('transfer', 'deposit', 'withdrawal')",
        requires: "transfer, deposit or withdrawal",
    },
    Check {
        table: "transactions",
        name: "transactions_status_valid",
        expression: "status in ('pending', 'completed', 'failed', 'success')",
        requires: "pending, completed, failed or success",
    },
    Check {
        table: "transactions",
        name: "transactions_accounts_match_type",
        expression: "case type \
            when 'transfer' then from_account_id is not null and to_account_id is not null \
                and from_account_id <> to_account_id \
            when 'deposit' then from_account_id is null and to_account_id is not null \
            when 'withdrawal' then from_account_id is not null and to_account_id is null \
            else true end",
        requires: "a transfer has two different accounts, a deposit only `to`, a withdrawal \
                   only `from`",
    },
    Check {
        table: "transactions",
        name: "transactions_metadata_object",
        expression: "jsonb_typeof(metadata) = 'object'",
        requires: "metadata is a JSON object",
    },
    Check {
        table: "payments",
        name: "payments_data_object",
        expression: "jsonb_typeof(data) = 'object'",
        requires: "data is a JSON object",
    },
    Check {
        table: "articles",
        name: "articles_title_not_blank",
        expression: "title ~ '[^[:space:]]'",
        requires: "a title that is not blank",
    },
];

/// A foreign key ledger names and restricts (Django's are `deferrable initially deferred`, named
/// with a hash, and enforce `PROTECT` in Python).
struct ForeignKey {
    table: &'static str,
    name: &'static str,
    column: &'static str,
    references: &'static str,
}

const FOREIGN_KEYS: &[ForeignKey] = &[
    ForeignKey {
        table: "accounts",
        name: "accounts_user_id_fkey",
        column: "user_id",
        references: "users",
    },
    ForeignKey {
        table: "transactions",
        name: "transactions_from_account_id_fkey",
        column: "from_account_id",
        references: "accounts",
    },
    ForeignKey {
        table: "transactions",
        name: "transactions_to_account_id_fkey",
        column: "to_account_id",
        references: "accounts",
    },
];

/// An index of ledger's: built unless a valid index with the same definition exists.
struct Index {
    table: &'static str,
    name: &'static str,
    /// `pg_get_indexdef` from `USING` on.
    definition: &'static str,
    unique: bool,
}

const INDEXES: &[Index] = &[
    Index {
        table: "users",
        name: "users_email_idx",
        definition: "USING btree (email)",
        unique: false,
    },
    Index {
        table: "users",
        name: "users_live_created_at_id_idx",
        definition: "USING btree (created_at DESC, id DESC) WHERE (deleted_at IS NULL)",
        unique: false,
    },
    Index {
        table: "users",
        name: "users_live_name_id_idx",
        definition: "USING btree (name, id) WHERE (deleted_at IS NULL)",
        unique: false,
    },
    Index {
        table: "users",
        name: "users_live_name_pattern_idx",
        definition: "USING btree (name varchar_pattern_ops) WHERE (deleted_at IS NULL)",
        unique: false,
    },
    Index {
        table: "accounts",
        name: "accounts_user_id_idx",
        definition: "USING btree (user_id)",
        unique: false,
    },
    Index {
        table: "accounts",
        name: "accounts_balance_idx",
        definition: "USING btree (balance)",
        unique: false,
    },
    Index {
        table: "transactions",
        name: "transactions_from_account_id_created_at_idx",
        definition: "USING btree (from_account_id, created_at)",
        unique: false,
    },
    Index {
        table: "transactions",
        name: "transactions_to_account_id_created_at_idx",
        definition: "USING btree (to_account_id, created_at)",
        unique: false,
    },
    Index {
        table: "transactions",
        name: "transactions_created_at_id_idx",
        definition: "USING btree (created_at, id)",
        unique: false,
    },
    Index {
        table: "transactions",
        name: "transactions_metadata_gin_idx",
        definition: "USING gin (metadata)",
        unique: false,
    },
    Index {
        table: "transactions",
        name: "transactions_idempotency_key_key",
        definition: "USING btree (idempotency_key)",
        unique: true,
    },
    Index {
        table: "payments",
        name: "payments_data_gin_idx",
        definition: "USING gin (data)",
        unique: false,
    },
    Index {
        table: "articles",
        name: "articles_search_gin_idx",
        definition: "USING gin (search)",
        unique: false,
    },
    Index {
        table: "articles",
        name: "articles_created_at_id_idx",
        definition: "USING btree (created_at DESC, id DESC)",
        unique: false,
    },
];

/// The column defaults ledger's inserts rely on (Django sends every value itself).
const DEFAULTS: &[(&str, &str, &str)] = &[
    ("users", "id", "gen_random_uuid()"),
    ("users", "created_at", "now()"),
    ("accounts", "id", "gen_random_uuid()"),
    ("accounts", "balance", "0"),
    ("accounts", "currency", "'USD'"),
    ("accounts", "status", "'active'"),
    ("transactions", "id", "gen_random_uuid()"),
    ("transactions", "status", "'pending'"),
    ("transactions", "metadata", "'{}'::jsonb"),
    ("transactions", "created_at", "now()"),
    ("payments", "data", "'{}'::jsonb"),
    ("articles", "content", "''"),
    ("articles", "created_at", "now()"),
];

/// The columns of the seed's models as Django 4.1+ makes them on PostgreSQL: `(model table,
/// column, type, not null)`. `payment` and `article` are prefixed with the app label.
const SEED_COLUMNS: &[(&str, &str, &str, bool)] = &[
    ("users", "id", "uuid", true),
    ("users", "email", "character varying(254)", true),
    ("users", "name", "character varying(100)", true),
    ("users", "created_at", "timestamp with time zone", true),
    ("users", "deleted_at", "timestamp with time zone", false),
    ("accounts", "id", "uuid", true),
    ("accounts", "user_id", "uuid", true),
    ("accounts", "balance", "numeric(15,2)", true),
    ("accounts", "currency", "character varying(3)", true),
    ("accounts", "status", "character varying(20)", true),
    ("transactions", "id", "uuid", true),
    ("transactions", "from_account_id", "uuid", false),
    ("transactions", "to_account_id", "uuid", false),
    ("transactions", "amount", "numeric(15,2)", true),
    ("transactions", "type", "character varying(20)", true),
    ("transactions", "status", "character varying(20)", true),
    ("transactions", "metadata", "jsonb", true),
    (
        "transactions",
        "created_at",
        "timestamp with time zone",
        true,
    ),
    ("payment", "id", "bigint", true),
    ("payment", "data", "jsonb", true),
    ("article", "id", "bigint", true),
    ("article", "title", "character varying(200)", true),
    ("article", "content", "text", true),
    ("article", "created_at", "timestamp with time zone", true),
];

/// How a step is run.
enum Run {
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

struct Planned {
    name: String,
    /// A `select` of one boolean: whether the step is done.
    done: String,
    sql: Vec<String>,
    lock: Lock,
    run: Run,
}

/// The app label as a table-name prefix: Django's labels are Python identifiers; this accepts
/// the lowercase ASCII ones, which are also plain PostgreSQL identifiers.
fn check_app_label(app_label: &str) -> Result<()> {
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
fn table_exists(table: &str) -> String {
    format!(
        "select exists (select from pg_class where relname = '{table}' and relkind in ('r', 'p') \
         and relnamespace = current_schema()::regnamespace)"
    )
}

fn column_condition(table: &str, column: &str, extra: &str) -> String {
    format!(
        "select exists (select from pg_attribute a join pg_class c on c.oid = a.attrelid \
         where c.relname = '{table}' and c.relnamespace = current_schema()::regnamespace \
         and a.attname = '{column}' and not a.attisdropped{extra})"
    )
}

fn constraint_condition(table: &str, name: &str, extra: &str) -> String {
    format!(
        "select exists (select from pg_constraint k join pg_class c on c.oid = k.conrelid \
         where c.relname = '{table}' and c.relnamespace = current_schema()::regnamespace \
         and k.conname = '{name}'{extra})"
    )
}

/// Locks a referenced table before the one that refers to it, the order in which the seed's
/// money path takes them (accounts, then transactions), so that a step on a foreign key, which
/// locks both, never deadlocks with a transfer that holds one and waits for the other.
fn lock_in_order(referenced: &str, referring: &str) -> String {
    format!("lock table {referenced}, {referring} in access exclusive mode")
}

/// Every step, in order, for the app `app`.
fn plan(app: &str) -> Vec<Planned> {
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
            "insert into _sqlx_migrations (version, description, success, checksum, \
             execution_time) values (<each of {}>)",
            versions.join(", ")
        )],
        lock: Lock::Catalog,
        run: Run::RecordMigrations,
    });
    steps
}

/// Whether a planned step is done.
async fn step_done(conn: &mut PgConnection, planned: &Planned) -> Result<bool> {
    match planned.run {
        Run::RecordMigrations => migrations_recorded(conn).await,
        _ => is_done(conn, &planned.done).await,
    }
}

/// Whether `_sqlx_migrations` records every ledger migration as applied.
async fn migrations_recorded(conn: &mut PgConnection) -> Result<bool> {
    let exists =
        sqlx::query_scalar!(r#"select to_regclass('_sqlx_migrations') is not null as "exists!""#)
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        return Ok(false);
    }
    let applied = conn.list_applied_migrations(&MIGRATOR.table_name).await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .all(|m| applied.iter().any(|a| a.version == m.version)))
}

async fn is_done(conn: &mut PgConnection, done: &str) -> Result<bool> {
    // The condition is built from this module's constants and a checked app label.
    Ok(sqlx::query_scalar(AssertSqlSafe(done.to_owned()))
        .fetch_one(conn)
        .await?)
}

/// The dry run: what [`apply`] would do on this database, and every row that breaks one of
/// ledger's rules. Changes nothing.
///
/// Django: `python manage.py migrate --plan`
///
/// SQL: catalog reads (`pg_class`, `pg_attribute`, `pg_constraint`, `pg_index`,
/// `django_migrations`), then per rule not yet validated `select count(*) ... where not
/// coalesce((<rule>), true)` and the five smallest ids breaking it.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad app label; [`Error::NotAdoptable`] when the database has no
/// `django_migrations` row for the app, lacks a table or column of the seed, or has one of
/// another type; [`Error::Database`] otherwise.
pub async fn inspect(conn: &mut PgConnection, app_label: &str) -> Result<Report> {
    check_app_label(app_label)?;
    let django_migrations = django_migrations(conn, app_label).await?;
    check_seed_columns(conn, app_label).await?;
    let mut steps = Vec::new();
    for planned in plan(app_label) {
        let done = step_done(conn, &planned).await?;
        steps.push(Step {
            name: planned.name,
            sql: planned.sql,
            lock: planned.lock,
            done,
        });
    }
    let violations = violations(conn, app_label).await?;
    Ok(Report {
        app_label: app_label.to_owned(),
        django_migrations,
        steps,
        violations,
        django_changes: django_changes(app_label),
    })
}

/// Brings the schema to ledger's, step by step (see the module docs), and records ledger's
/// migrations as applied. Calls `progress` before each step it runs. Returns the report of the
/// adopted database. Safe to run again: done steps are skipped, and an interrupted run resumes.
///
/// Takes a connection, not a transaction: `create index concurrently` cannot run inside one, and
/// each other step commits on its own so that no lock is held longer than its step.
///
/// Django: `python manage.py migrate`
///
/// SQL: the steps' own (see [`inspect`]'s report), each after `set local lock_timeout = '5s'`.
///
/// # Errors
/// As [`inspect`], and [`Error::NotAdoptable`] when rows break a rule (nothing is changed then).
/// A step that fails (a lock not granted in time, say) returns its database error; the steps
/// before it stay done, and the next run resumes from it.
pub async fn apply(
    conn: &mut PgConnection,
    app_label: &str,
    progress: &mut (dyn FnMut(&Step) + Send),
) -> Result<Report> {
    let before = inspect(conn, app_label).await?;
    if !before.violations.is_empty() {
        let rules: Vec<String> = before
            .violations
            .iter()
            .map(|v| format!("{} ({} rows)", v.rule, v.rows))
            .collect();
        return Err(Error::NotAdoptable(format!(
            "rows break ledger's rules: {}; `ledger adopt` without --apply lists them",
            rules.join(", ")
        )));
    }
    for planned in plan(app_label) {
        if step_done(conn, &planned).await? {
            continue;
        }
        progress(&Step {
            name: planned.name.clone(),
            sql: planned.sql.clone(),
            lock: planned.lock,
            done: false,
        });
        match planned.run {
            Run::Transaction => {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "set local lock_timeout = '{LOCK_TIMEOUT}'"
                )))
                .execute(&mut *tx)
                .await?;
                for sql in &planned.sql {
                    sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
            Run::Index { name } => {
                let valid = sqlx::query_scalar!(
                    r#"
                    select x.indisvalid
                    from pg_index x
                    join pg_class i on i.oid = x.indexrelid
                    where i.relname = $1 and i.relnamespace = current_schema()::regnamespace
                    "#,
                    name
                )
                .fetch_optional(&mut *conn)
                .await?;
                match valid {
                    Some(true) => {
                        return Err(Error::NotAdoptable(format!(
                            "an index named {name} exists with another definition than \
                             ledger's; rename or drop it"
                        )));
                    }
                    Some(false) => {
                        sqlx::raw_sql(AssertSqlSafe(format!(
                            "drop index concurrently if exists {name}"
                        )))
                        .execute(&mut *conn)
                        .await?;
                    }
                    None => {}
                }
                for sql in &planned.sql {
                    sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Run::RecordMigrations => record_migrations(conn).await?,
        }
    }
    inspect(conn, app_label).await
}

/// Marks every ledger migration as applied without running it, as `sqlx migrate` would have.
async fn record_migrations(conn: &mut PgConnection) -> Result<()> {
    conn.ensure_migrations_table(&MIGRATOR.table_name).await?;
    let applied = conn.list_applied_migrations(&MIGRATOR.table_name).await?;
    for migration in MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
    {
        if !applied.iter().any(|a| a.version == migration.version) {
            conn.skip(&MIGRATOR.table_name, migration).await?;
        }
    }
    Ok(())
}

/// The app's applied Django migrations; refuses a database Django did not migrate.
async fn django_migrations(conn: &mut PgConnection, app_label: &str) -> Result<Vec<String>> {
    let has_table =
        sqlx::query_scalar!(r#"select to_regclass('django_migrations') is not null as "exists!""#)
            .fetch_one(&mut *conn)
            .await?;
    if !has_table {
        return Err(Error::NotAdoptable(
            "no django_migrations table: this database was not made by Django's migrations".into(),
        ));
    }
    // `django_migrations` is Django's table, absent from the schema the query macros are checked
    // against: this one query is checked here, at run time.
    let names: Vec<String> =
        sqlx::query_scalar("select name from django_migrations where app = $1 order by id")
            .bind(app_label)
            .fetch_all(&mut *conn)
            .await?;
    if names.is_empty() {
        return Err(Error::NotAdoptable(format!(
            "django_migrations has no migration of the app {app_label:?} (pass the app label \
             the models live in)"
        )));
    }
    Ok(names)
}

/// Checks every seed column's type and nullability, under the table name it has now (Django's
/// or, after the rename step, ledger's).
async fn check_seed_columns(conn: &mut PgConnection, app_label: &str) -> Result<()> {
    let rows = sqlx::query!(
        r#"
        select c.relname as "table!", a.attname as "column!",
               format_type(a.atttypid, a.atttypmod) as "type!", a.attnotnull as "not_null!"
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        where c.relnamespace = current_schema()::regnamespace
          and c.relkind in ('r', 'p')
          and a.attnum > 0 and not a.attisdropped
          and c.relname = any($1)
        "#,
        &[
            "users".to_owned(),
            "accounts".to_owned(),
            "transactions".to_owned(),
            "payments".to_owned(),
            "articles".to_owned(),
            format!("{app_label}_payment"),
            format!("{app_label}_article"),
        ] as &[String]
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut problems = Vec::new();
    for (table, column, want_type, want_not_null) in SEED_COLUMNS {
        let names: Vec<String> = match *table {
            "payment" => vec!["payments".into(), format!("{app_label}_payment")],
            "article" => vec!["articles".into(), format!("{app_label}_article")],
            other => vec![other.into()],
        };
        let found = rows
            .iter()
            .find(|r| names.contains(&r.table) && r.column == *column);
        match found {
            None => problems.push(format!("{}.{column} is missing", names[names.len() - 1])),
            Some(r) if r.r#type != *want_type || r.not_null != *want_not_null => {
                problems.push(format!(
                    "{}.{column} is {}{}, the seed's model makes {want_type}{}",
                    r.table,
                    r.r#type,
                    if r.not_null { " not null" } else { "" },
                    if *want_not_null { " not null" } else { "" },
                ));
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::NotAdoptable(problems.join("; ")))
    }
}

/// Rows breaking each rule that is not validated yet.
async fn violations(conn: &mut PgConnection, app_label: &str) -> Result<Vec<Violation>> {
    let mut found = Vec::new();
    for check in CHECKS {
        let validated = is_done(
            conn,
            &constraint_condition(check.table, check.name, " and k.convalidated"),
        )
        .await?;
        if validated {
            continue;
        }
        let table = match check.table {
            "payments" if !is_done(conn, &table_exists("payments")).await? => {
                format!("{app_label}_payment")
            }
            "articles" if !is_done(conn, &table_exists("articles")).await? => {
                format!("{app_label}_article")
            }
            other => other.to_owned(),
        };
        let broken = format!(
            "from {table} where not coalesce(({}), true)",
            check.expression
        );
        let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!("select count(*) {broken}")))
            .fetch_one(&mut *conn)
            .await?;
        if rows == 0 {
            continue;
        }
        let sample_ids: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "select id::text {broken} order by id limit {SAMPLES}"
        )))
        .fetch_all(&mut *conn)
        .await?;
        found.push(Violation {
            rule: check.name,
            table: check.table,
            requires: check.requires,
            rows,
            sample_ids,
        });
    }
    Ok(found)
}

fn django_changes(app_label: &str) -> Vec<String> {
    vec![
        "Payment: add `class Meta: db_table = 'payments'` (the table is renamed from \
         <app>_payment)"
            .replace("<app>", app_label),
        "Article: add `class Meta: db_table = 'articles'` (renamed from <app>_article)"
            .replace("<app>", app_label),
        format!(
            "then `python manage.py makemigrations {app_label}` and `python manage.py migrate \
             {app_label} --fake`: the tables are renamed already"
        ),
        "users, accounts, transactions: no change (their Meta names the table)".into(),
    ]
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
