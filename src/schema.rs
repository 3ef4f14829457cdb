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
/// # Errors
/// [`Error::Migrate`](crate::Error::Migrate) when the bookkeeping table cannot be read.
pub async fn status(conn: &mut PgConnection) -> Result<Vec<MigrationStatus>> {
    conn.ensure_migrations_table(&MIGRATOR.table_name).await?;
    let applied = conn.list_applied_migrations(&MIGRATOR.table_name).await?;
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
