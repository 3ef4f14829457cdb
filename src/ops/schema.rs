//! The embedded migrations (the seed's `migrate`, `showmigrations`, `migrate myapp zero`).
//!
//! The SQL lives in `migrations/`, one reversible pair per concern; `MIGRATOR` embeds it in the
//! crate at build time, so a deployed binary needs neither the files nor `sqlx-cli`.

use sqlx::PgConnection;
use sqlx::migrate::{Migrate, Migrator};

use crate::Result;

/// Every migration of `migrations/`, embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

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

/// Applies every pending migration (`python manage.py migrate`).
///
/// # Errors
/// [`Error::Migrate`](crate::Error::Migrate) when a migration fails; that migration is rolled back.
pub async fn migrate(conn: &mut PgConnection) -> Result<()> {
    MIGRATOR.run(conn).await?;
    Ok(())
}

/// Reverts applied migrations down to `target` (`0` is `python manage.py migrate myapp zero`).
///
/// # Errors
/// [`Error::Migrate`](crate::Error::Migrate) when a down migration fails.
pub async fn revert_to(conn: &mut PgConnection, target: i64) -> Result<()> {
    MIGRATOR.undo(conn, target).await?;
    Ok(())
}

/// Every known migration with whether it is applied (`python manage.py showmigrations`).
///
/// Only reads: a database that was never migrated has no bookkeeping table, and then every
/// migration is unapplied (sqlx's own `Migrate::ensure_migrations_table` would create the table,
/// which a read-only or service role may not). Needs `SELECT` on `_sqlx_migrations`, which both
/// of [`crate::grants`]' roles have.
///
/// ```sql
/// select to_regclass('_sqlx_migrations') is not null;
/// select version, checksum from _sqlx_migrations order by version;
/// ```
///
/// # Errors
/// [`Error::PermissionDenied`](crate::Error::PermissionDenied) when the role may not read the
/// bookkeeping table; [`Error::Migrate`](crate::Error::Migrate) when it cannot be read otherwise.
pub async fn status(conn: &mut PgConnection) -> Result<Vec<MigrationStatus>> {
    let table = MIGRATOR.table_name.as_ref();
    let exists = sqlx::query_scalar!(r#"select to_regclass($1) is not null as "exists!""#, table)
        .fetch_one(&mut *conn)
        .await?;
    let applied = if exists {
        conn.list_applied_migrations(table).await?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| MigrationStatus {
            version: m.version,
            description: m.description.to_string(),
            applied: applied.iter().any(|a| a.version == m.version),
        })
        .collect())
}
