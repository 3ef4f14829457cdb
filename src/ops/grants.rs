//! The privileges of the roles a production deployment runs as (`ledger grants`).
//!
//! Security reviews ask for three roles, and ledger needs no more:
//! - the **owner** runs `ledger migrate` (or `ledger adopt --apply`) and owns every object;
//! - the **service** reads and writes rows: `SELECT, INSERT, UPDATE, DELETE` on ledger's tables,
//!   `USAGE, SELECT` on their sequences, `EXECUTE` on ledger's functions, and only `SELECT` on
//!   ledger's migration bookkeeping (`_ledger_migrations`), so that it can check the schema but
//!   never record a migration;
//! - the **read-only** role (standbys, reports, `ledger dump`, `ledger status`) has `SELECT` on
//!   the same tables and the bookkeeping, and nothing else.
//!
//! [`plan`] reads the catalog (the tables' sequences and the functions' signatures, which differ
//! between a database ledger migrated and one it adopted from Django) and returns the statements;
//! [`apply`] runs them in one transaction. Both roles also get `ALTER DEFAULT PRIVILEGES FOR ROLE
//! <owner>`, so that what a later migration creates (run as the owner) is covered without another
//! run. Every statement is idempotent: running the plan again, on a live database, changes
//! nothing; a `GRANT` updates one catalog row and takes no lock that waits for readers or writers.
//!
//! **Why not `pg_read_all_data` / `pg_write_all_data`.** PostgreSQL 14's predefined roles give
//! `SELECT` (or `INSERT, UPDATE, DELETE`) on every table of every schema: in a database ledger
//! shares with Django, that is `auth_user`'s password hashes and `django_session` for a role
//! that needs neither, and write access to `_ledger_migrations`, with which a service could mark a
//! migration applied that never ran. The grants here name ledger's tables only, and, in a
//! database Django migrated, `SELECT` on `django_migrations` for the read-only role, so that
//! `ledger adopt`'s dry run works as it once the database is adopted. (Before adoption the dry
//! run reads Django's own tables, which are not ledger's yet: run it as the owner, or as a role
//! with `pg_read_all_data`.)
//!
//! ```no_run
//! # async fn run(conn: &mut sqlx::PgConnection) -> ledger::Result<()> {
//! use ledger::grants::{self, Roles};
//!
//! let roles = Roles { service: Some("ledger_service"), read_only: Some("ledger_reader") };
//! for statement in grants::plan(&mut *conn, &roles).await? {
//!     println!("{statement};");
//! }
//! grants::apply(conn, &roles).await?; // as the owner
//! # Ok(())
//! # }
//! ```

use sqlx::{AssertSqlSafe, Connection, PgConnection, PgExecutor};

use crate::{Error, Result};

/// Ledger's tables: every one that `migrations/` creates (a test checks the list against the
/// catalog of a migrated database).
pub const TABLES: [&str; 7] = [
    "users",
    "accounts",
    "transactions",
    "payments",
    "articles",
    "idempotency_keys",
    "ledger_uuid_ids",
];

/// ledger's migration bookkeeping, which only the owner writes.
pub use crate::ops::schema::BOOKKEEPING;

/// The roles to grant to; `None` leaves that role out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles<'a> {
    /// The role the service connects as: reads and writes rows.
    pub service: Option<&'a str>,
    /// The role of standbys, reports and dumps: reads.
    pub read_only: Option<&'a str>,
}

/// The statements that give `roles` what they need on this database, in the order [`apply`]
/// runs them (each without its terminating `;`).
///
/// Replaces the `GRANT`s a team otherwise writes by hand. Reads the catalog:
/// ```sql
/// select pg_get_userbyid(relowner) from pg_class where oid = to_regclass('users');
/// select s.oid::regclass::text from pg_class s join pg_depend d on d.objid = s.oid ...
///  where s.relkind = 'S' and d.refobjid = any(<ledger's tables>);
/// select p.oid::regprocedure::text from pg_proc p
///  where p.pronamespace = current_schema()::regnamespace and p.proname like 'ledger\_%';
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] for a role name that is empty, longer than PostgreSQL's 63 bytes or
/// holds U+0000, or when neither role is given; [`Error::InvalidInput`] (field `database`) when
/// ledger's tables are not there yet (run `ledger migrate`, or `ledger adopt --apply`, first).
pub async fn plan(conn: impl PgExecutor<'_>, roles: &Roles<'_>) -> Result<Vec<String>> {
    check_roles(roles)?;
    let tables: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
    let catalog = sqlx::query!(
        r#"
        select
            current_schema() as "schema!",
            (select pg_get_userbyid(relowner) from pg_class where oid = to_regclass('users'))
                as "owner?",
            (select count(*) from unnest($1::text[]) t(name) where to_regclass(t.name) is null)
                as "missing!",
            to_regclass('_ledger_migrations') is not null as "bookkeeping!",
            to_regclass('django_migrations') is not null as "django!",
            array(
                select s.oid::regclass::text
                from pg_class s
                join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = s.oid
                    and d.refclassid = 'pg_class'::regclass
                where s.relkind = 'S'
                  and d.refobjid in (select to_regclass(t.name) from unnest($1::text[]) t(name))
                order by 1
            ) as "sequences!",
            array(
                select p.oid::regprocedure::text
                from pg_proc p
                where p.pronamespace = current_schema()::regnamespace
                  and p.proname like 'ledger\_%'
                order by 1
            ) as "functions!"
        "#,
        &tables
    )
    .fetch_one(conn)
    .await?;
    let (Some(owner), 0, true) = (catalog.owner, catalog.missing, catalog.bookkeeping) else {
        return Err(Error::invalid(
            "database",
            "ledger's tables are not all in it yet: run `ledger migrate` (or `ledger adopt \
             --apply`) as the owner first",
        ));
    };
    let schema = quote_ident(&catalog.schema);
    let owner = quote_ident(&owner);
    let tables = TABLES.join(", ");
    let mut out = Vec::new();
    if let Some(service) = roles.service {
        let role = quote_ident(service);
        out.push(format!("grant usage on schema {schema} to {role}"));
        out.push(format!(
            "grant select, insert, update, delete on table {tables} to {role}"
        ));
        out.push(format!("grant select on table {BOOKKEEPING} to {role}"));
        if !catalog.sequences.is_empty() {
            out.push(format!(
                "grant usage, select on sequence {} to {role}",
                catalog.sequences.join(", ")
            ));
        }
        for function in &catalog.functions {
            out.push(format!("grant execute on function {function} to {role}"));
        }
        let defaults = format!("alter default privileges for role {owner} in schema {schema}");
        out.push(format!(
            "{defaults} grant select, insert, update, delete on tables to {role}"
        ));
        out.push(format!(
            "{defaults} grant usage, select on sequences to {role}"
        ));
        out.push(format!("{defaults} grant execute on functions to {role}"));
    }
    if let Some(read_only) = roles.read_only {
        let role = quote_ident(read_only);
        out.push(format!("grant usage on schema {schema} to {role}"));
        out.push(format!(
            "grant select on table {tables}, {BOOKKEEPING} to {role}"
        ));
        if catalog.django {
            // `ledger adopt`'s dry run reads Django's bookkeeping beside ledger's tables.
            out.push(format!("grant select on table django_migrations to {role}"));
        }
        out.push(format!(
            "alter default privileges for role {owner} in schema {schema} grant select on tables \
             to {role}"
        ));
    }
    Ok(out)
}

/// Runs [`plan`]'s statements in one transaction (all or none), as a role that owns ledger's
/// objects (or a superuser), with `lock_timeout = '5s'`. Takes `&mut PgConnection`: it begins a
/// transaction of its own.
///
/// # Errors
/// As [`plan`]; [`Error::InvalidInput`] when a named role does not exist (create it first, with
/// its password: `create role ledger_service login password '...'`);
/// [`Error::PermissionDenied`] when the connected role may not grant on ledger's objects.
pub async fn apply(conn: &mut PgConnection, roles: &Roles<'_>) -> Result<Vec<String>> {
    let statements = plan(&mut *conn, roles).await?;
    let names: Vec<String> = [roles.service, roles.read_only]
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    let missing = sqlx::query_scalar!(
        r#"select name as "name!" from unnest($1::text[]) name
           where not exists (select from pg_roles where rolname = name)"#,
        &names
    )
    .fetch_all(&mut *conn)
    .await?;
    if let Some(name) = missing.first() {
        return Err(Error::invalid(
            "role",
            format!(
                "role {name:?} does not exist: create it first (create role {} login password \
                 '...')",
                quote_ident(name)
            ),
        ));
    }
    let mut tx = conn.begin().await?;
    sqlx::query!("set local lock_timeout = '5s'")
        .execute(&mut *tx)
        .await?;
    for statement in &statements {
        // The statements are built from quoted identifiers and catalog names (regclass and
        // regprocedure text, which PostgreSQL quotes itself).
        sqlx::raw_sql(AssertSqlSafe(statement.as_str()))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(statements)
}

fn check_roles(roles: &Roles<'_>) -> Result<()> {
    if roles.service.is_none() && roles.read_only.is_none() {
        return Err(Error::invalid(
            "roles",
            "name a service role, a read-only role, or both",
        ));
    }
    for name in [roles.service, roles.read_only].into_iter().flatten() {
        Error::check_text("role", name)?;
        if name.is_empty() || name.len() > 63 {
            return Err(Error::invalid(
                "role",
                "a role name is 1 to 63 bytes (PostgreSQL's NAMEDATALEN)",
            ));
        }
    }
    Ok(())
}

/// `"name"`, with any `"` doubled: an identifier PostgreSQL reads back as exactly `name`.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_checked_before_the_server() {
        for roles in [
            Roles::default(),
            Roles {
                service: Some(""),
                read_only: None,
            },
            Roles {
                service: Some("a\0b"),
                read_only: None,
            },
            Roles {
                service: None,
                read_only: Some(&"r".repeat(64)),
            },
        ] {
            let err = check_roles(&roles).unwrap_err();
            assert!(
                matches!(err, Error::InvalidInput { .. }),
                "{roles:?}: {err}"
            );
        }
        assert!(
            check_roles(&Roles {
                service: Some("Ledger Service"),
                read_only: Some(&"r".repeat(63)),
            })
            .is_ok()
        );
    }

    #[test]
    fn identifiers_are_quoted_whole() {
        assert_eq!(quote_ident("ledger_service"), "\"ledger_service\"");
        assert_eq!(
            quote_ident("a\"; drop table users; --"),
            "\"a\"\"; drop table users; --\""
        );
    }
}
