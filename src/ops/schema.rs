//! The embedded migrations (the seed's `migrate`, `showmigrations`, `migrate myapp zero`), and the
//! check a service makes at start.
//!
//! The SQL lives in `migrations/`, one reversible pair per concern; [`MIGRATOR`] embeds it in the
//! crate at build time, so a deployed binary needs neither the files nor `sqlx-cli`.
//!
//! **Bookkeeping of its own.** ledger records its migrations in [`BOOKKEEPING`]
//! (`_ledger_migrations`, set in the crate's `sqlx.toml`), not in sqlx's default
//! `_sqlx_migrations`: a service whose own `sqlx::migrate!()` keeps that table shares the
//! database with ledger, and neither migrator sees the other's versions (sqlx refuses an applied
//! version it does not know, `VersionMissing`). A database that an earlier build of ledger
//! migrated has ledger's rows in [`LEGACY_BOOKKEEPING`]: [`migrate`] (and `ledger migrate`) moves
//! them, matched by version *and* checksum, in one transaction under sqlx's migration lock, before
//! anything else; a second run finds nothing to move. The service's own rows stay where they are.
//!
//! **Migrations are a deploy step**, not something a service does at start: run `ledger migrate`
//! (or [`migrate`], or `MIGRATOR.run`) as the owner, directly against the server (not through
//! PgBouncer), from a release job, an init container or a CI step, before the new release
//! starts; the service then calls [`check`], which refuses to start on a schema that is behind or
//! ahead of the crate. From 0.1.0 on, every migration is written to be safe under the previous
//! release while a rolling deploy runs: it adds, and never removes or renames, what that release
//! reads or writes. (0001 to 0017 are the first release's schema: a database that ran a
//! development build migrates once, with that build stopped.)

use sqlx::migrate::{Migrate, Migrator};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::{Error, Result};

/// Every migration of `migrations/`, embedded at build time, recorded in [`BOOKKEEPING`].
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The table ledger records its migrations in (`sqlx.toml`'s `[migrate] table-name`).
pub const BOOKKEEPING: &str = "_ledger_migrations";

/// sqlx's default bookkeeping table, where builds of ledger before 0.1.0 recorded their
/// migrations, and where a service's own `sqlx::migrate!()` keeps its own.
pub const LEGACY_BOOKKEEPING: &str = "_sqlx_migrations";

/// One migration and whether this database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The version (the number the file name starts with).
    pub version: i64,
    /// The description (the rest of the file name).
    pub description: String,
    /// Whether it is applied.
    pub applied: bool,
}

/// Applies every pending migration (`python manage.py migrate`), after moving ledger's rows of an
/// older database's [`LEGACY_BOOKKEEPING`] into [`BOOKKEEPING`].
///
/// A deploy step, run as the owner of the tables: a service checks with [`check`] instead.
///
/// ```sql
/// -- under sqlx's migration lock (pg_advisory_lock), in one transaction:
/// with mine as (
///     delete from _sqlx_migrations l using unnest($1::int8[], $2::bytea[]) m(version, checksum)
///     where l.version = m.version and l.checksum = m.checksum
///     returning l.*
/// )
/// insert into _ledger_migrations (...) select ... from mine on conflict (version) do nothing;
/// ```
///
/// # Errors
/// [`Error::Migrate`](crate::Error::Migrate) when a migration fails; that migration is rolled back.
/// [`Error::PermissionDenied`](crate::Error::PermissionDenied) for a role that may not change the
/// schema.
pub async fn migrate(conn: &mut PgConnection) -> Result<()> {
    move_legacy_bookkeeping(conn).await?;
    MIGRATOR.run(conn).await?;
    Ok(())
}

/// Reverts applied migrations down to `target` (`0` is `python manage.py migrate myapp zero`),
/// after the same move as [`migrate`].
///
/// # Errors
/// [`Error::Migrate`](crate::Error::Migrate) when a down migration fails.
pub async fn revert_to(conn: &mut PgConnection, target: i64) -> Result<()> {
    move_legacy_bookkeeping(conn).await?;
    MIGRATOR.undo(conn, target).await?;
    Ok(())
}

/// Every known migration with whether it is applied (`python manage.py showmigrations`).
///
/// Only reads: a database that was never migrated has no bookkeeping table, and then every
/// migration is unapplied (sqlx's own `Migrate::ensure_migrations_table` would create the table,
/// which a read-only or service role may not). A database whose move to [`BOOKKEEPING`] is still
/// to come (an older build migrated it) counts ledger's rows of [`LEGACY_BOOKKEEPING`] too. Needs
/// `SELECT` on the bookkeeping, which both of [`crate::grants`]' roles have.
///
/// ```sql
/// select to_regclass('_ledger_migrations') is not null;
/// select version, checksum from _ledger_migrations order by version;
/// ```
///
/// # Errors
/// [`Error::PermissionDenied`](crate::Error::PermissionDenied) when the role may not read the
/// bookkeeping table; [`Error::Migrate`](crate::Error::Migrate) when it cannot be read otherwise.
pub async fn status(conn: &mut PgConnection) -> Result<Vec<MigrationStatus>> {
    let applied = applied_versions(conn).await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| MigrationStatus {
            version: m.version,
            description: m.description.to_string(),
            applied: applied.contains(&m.version),
        })
        .collect())
}

/// Refuses a schema this build of ledger was not made for: what a service calls at start, in
/// place of migrating (see the module docs).
///
/// ```no_run
/// # async fn start() -> ledger::Result<()> {
/// let pool = ledger::Config::resolve()?.connect().await?;
/// // "the database schema does not match this build of ledger: migrations 15, 16 pending (run
/// // `ledger migrate` as a release step)"
/// ledger::schema::check(&mut *pool.acquire().await?).await?;
/// # Ok(())
/// # }
/// ```
///
/// Reads as [`status`] does, and also the applied versions the crate does not know.
///
/// # Errors
/// [`Error::SchemaMismatch`] naming what is pending (the schema is behind: run the release
/// step) and what is applied but unknown (ahead: a newer release migrated it, so this one must
/// not run on it); the errors of [`status`].
pub async fn check(conn: &mut PgConnection) -> Result<()> {
    let applied = applied_versions(conn).await?;
    let known: Vec<i64> = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| m.version)
        .collect();
    let pending: Vec<i64> = known
        .iter()
        .copied()
        .filter(|v| !applied.contains(v))
        .collect();
    let unknown: Vec<i64> = applied
        .iter()
        .copied()
        .filter(|v| !known.contains(v))
        .collect();
    if pending.is_empty() && unknown.is_empty() {
        Ok(())
    } else {
        Err(Error::SchemaMismatch { pending, unknown })
    }
}

/// The versions recorded as applied (successfully) in [`BOOKKEEPING`], and ledger's rows of
/// [`LEGACY_BOOKKEEPING`] not moved yet; nothing when neither table exists.
async fn applied_versions(conn: &mut PgConnection) -> Result<Vec<i64>> {
    let tables = sqlx::query!(
        r#"
        select to_regclass($1) is not null as "current!", to_regclass($2) is not null as "legacy!"
        "#,
        BOOKKEEPING,
        LEGACY_BOOKKEEPING
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut applied: Vec<i64> = if tables.current {
        conn.list_applied_migrations(&MIGRATOR.table_name)
            .await?
            .into_iter()
            .map(|m| m.version)
            .collect()
    } else {
        Vec::new()
    };
    if tables.legacy {
        let (versions, checksums) = ledger_migrations();
        // Not a query macro: the legacy table is absent from the freshly migrated database the
        // macros are checked against (it exists only where an older build migrated).
        let legacy: Vec<i64> = sqlx::query_scalar(
            "select l.version from _sqlx_migrations l \
             join unnest($1::int8[], $2::bytea[]) m(version, checksum) \
             on l.version = m.version and l.checksum = m.checksum where l.success",
        )
        .bind(&versions)
        .bind(&checksums)
        .fetch_all(&mut *conn)
        .await?;
        applied.extend(legacy);
    }
    applied.sort_unstable();
    applied.dedup();
    Ok(applied)
}

/// ledger's up migrations: their versions and checksums, in order.
fn ledger_migrations() -> (Vec<i64>, Vec<Vec<u8>>) {
    MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| (m.version, m.checksum.to_vec()))
        .unzip()
}

/// Moves ledger's rows (same version and checksum) from [`LEGACY_BOOKKEEPING`] to
/// [`BOOKKEEPING`], in one transaction under sqlx's migration lock (the advisory lock every sqlx
/// migrator of this database takes). Returns how many moved; a no-op without the legacy table.
async fn move_legacy_bookkeeping(conn: &mut PgConnection) -> Result<u64> {
    let legacy = sqlx::query_scalar!(
        r#"select to_regclass($1) is not null as "exists!""#,
        LEGACY_BOOKKEEPING
    )
    .fetch_one(&mut *conn)
    .await?;
    if !legacy {
        return Ok(0);
    }
    conn.ensure_migrations_table(&MIGRATOR.table_name).await?;
    conn.lock().await?;
    let moved = move_rows(conn).await;
    conn.unlock().await?;
    moved
}

async fn move_rows(conn: &mut PgConnection) -> Result<u64> {
    let (versions, checksums) = ledger_migrations();
    let mut tx = conn.begin().await?;
    // Not a query macro: the legacy table is absent from the database the macros are checked
    // against. The one name formatted in is the crate's own constant.
    let moved = sqlx::query(AssertSqlSafe(format!(
        "with mine as ( \
             delete from {LEGACY_BOOKKEEPING} l \
             using unnest($1::int8[], $2::bytea[]) m(version, checksum) \
             where l.version = m.version and l.checksum = m.checksum \
             returning l.version, l.description, l.installed_on, l.success, l.checksum, \
                 l.execution_time \
         ) \
         insert into {BOOKKEEPING} \
             (version, description, installed_on, success, checksum, execution_time) \
         select version, description, installed_on, success, checksum, execution_time \
         from mine \
         on conflict (version) do nothing"
    )))
    .bind(&versions)
    .bind(&checksums)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if moved > 0 {
        tracing::info!(
            moved,
            "moved ledger's migration rows from {LEGACY_BOOKKEEPING} to {BOOKKEEPING}"
        );
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_migrator_records_in_ledgers_own_table() {
        assert_eq!(MIGRATOR.table_name, BOOKKEEPING);
        assert_ne!(BOOKKEEPING, LEGACY_BOOKKEEPING);
    }
}
