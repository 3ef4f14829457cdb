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
//! stopped. The last step records ledger's migrations as applied in `_ledger_migrations`, and
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

use crate::ops::schema::MIGRATOR;
use crate::{Error, Result};

mod checks;
mod extra;
mod plan;
mod target;

use checks::{
    check_delete_rules, check_seed_columns, django_changes, django_migrations, violations,
};
use plan::{Planned, Run, check_app_label, plan};

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

/// How [`apply_with`] may change the database beyond ledger's own steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Give each column of the model's own that is `NOT NULL` without a database default (which
    /// would make every ledger insert into its table fail) a default of its type's zero (`''`,
    /// `0`, `false`, `now()`, `'{}'`), saying so through `progress` first. Off: such a column is
    /// refused, naming it.
    pub default_extra_columns: bool,
}

impl Options {
    /// Nothing beyond ledger's steps ([`Options::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Options::default_extra_columns`].
    pub fn default_extra_columns(mut self, on: bool) -> Self {
        self.default_extra_columns = on;
        self
    }
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

/// Whether a planned step is done.
async fn step_done(conn: &mut PgConnection, planned: &Planned) -> Result<bool> {
    match planned.run {
        Run::RecordMigrations => migrations_recorded(conn).await,
        _ => is_done(conn, &planned.done).await,
    }
}

/// Whether ledger's bookkeeping ([`schema::BOOKKEEPING`](crate::schema::BOOKKEEPING), or an
/// older build's rows not moved yet) records every ledger migration as applied.
async fn migrations_recorded(conn: &mut PgConnection) -> Result<bool> {
    let status = crate::ops::schema::status(conn).await?;
    Ok(status.iter().all(|m| m.applied))
}

async fn is_done(conn: &mut PgConnection, done: &str) -> Result<bool> {
    // Not a query macro: the condition names a different table, column or constraint for each
    // step (and Django's table names carry the app label, known only at run time). It is built
    // from `plan`'s constants and a checked app label, never from other input.
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
/// `django_migrations` row for the app, lacks a table or column of the seed, has one of another
/// type, has a money table's foreign key that deletes on the server (Django 6.1's
/// `DB_CASCADE`, `DB_SET_NULL`, `DB_SET_DEFAULT`), or has a column of the model's own that is
/// `NOT NULL` without a database default (every ledger insert into its table would fail: the
/// message names it and the two ways out, a `db_default` in the model or
/// [`Options::default_extra_columns`]); [`Error::Database`] otherwise.
pub async fn inspect(conn: &mut PgConnection, app_label: &str) -> Result<Report> {
    check_app_label(app_label)?;
    let django_migrations = django_migrations(conn, app_label).await?;
    check_seed_columns(conn, app_label).await?;
    check_delete_rules(conn).await?;
    extra::refuse(&extra::columns(conn, app_label).await?, false)?;
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
/// As [`inspect`] (a foreign key that deletes on the server is refused here too), and
/// [`Error::NotAdoptable`] when rows break a rule (nothing is changed then).
/// A step that fails (a lock not granted in time, say) returns its database error; the steps
/// before it stay done, and the next run resumes from it.
pub async fn apply(
    conn: &mut PgConnection,
    app_label: &str,
    progress: &mut (dyn FnMut(&Step) + Send),
) -> Result<Report> {
    apply_with(conn, app_label, &Options::default(), progress).await
}

/// [`apply`], with [`Options`]: `default_extra_columns` gives the model's own `NOT NULL` columns
/// without a database default one (each said through `progress` as a step first), where
/// [`apply`] refuses them.
///
/// Django: `python manage.py migrate`
///
/// SQL: as [`apply`], and `alter table ... alter column ... set default ...` for each such
/// column, in one transaction after `set local lock_timeout = '5s'` (a catalog change).
///
/// # Errors
/// As [`apply`]; [`Error::NotAdoptable`] for such a column whose type has no zero ledger knows.
pub async fn apply_with(
    conn: &mut PgConnection,
    app_label: &str,
    options: &Options,
    progress: &mut (dyn FnMut(&Step) + Send),
) -> Result<Report> {
    // The dry run's checks, without its per-step reads: the loop below reads each step's state
    // just before running it.
    check_app_label(app_label)?;
    django_migrations(conn, app_label).await?;
    check_seed_columns(conn, app_label).await?;
    check_delete_rules(conn).await?;
    let extra = extra::columns(conn, app_label).await?;
    extra::refuse(&extra, options.default_extra_columns)?;
    let violations = violations(conn, app_label).await?;
    if !violations.is_empty() {
        let rules: Vec<String> = violations
            .iter()
            .map(|v| format!("{} ({} rows)", v.rule, v.rows))
            .collect();
        return Err(Error::NotAdoptable(format!(
            "rows break ledger's rules: {}; `ledger adopt` without --apply lists them",
            rules.join(", ")
        )));
    }
    if !extra.is_empty() {
        progress(&Step {
            name: format!(
                "set a default for the model's own not-null columns: {}",
                extra
                    .iter()
                    .map(|c| format!("{}.{} {}", c.table, c.column, c.zero().unwrap_or("?")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            sql: extra
                .iter()
                .filter_map(extra::ExtraColumn::set_default)
                .collect(),
            lock: Lock::Catalog,
            done: false,
        });
        extra::set_defaults(conn, &extra, LOCK_TIMEOUT).await?;
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
            // The steps' DDL, built by `plan`: DDL takes no bind parameters and returns no rows,
            // so no query macro can express it.
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
