//! What `inspect` reads of a Django database before anything is planned: the migrations Django
//! recorded, the seed's columns with their types, the foreign keys' delete rules, the rows that
//! break one of ledger's rules, and the model changes dual running needs.

use sqlx::{AssertSqlSafe, PgConnection};

use super::plan::{constraint_condition, table_exists};
use super::target::{ADDITIONS, CHECKS, SEED_COLUMNS};
use super::{SAMPLES, Violation, is_done};
use crate::{Error, Result};

/// The app's applied Django migrations; refuses a database Django did not migrate.
pub(super) async fn django_migrations(
    conn: &mut PgConnection,
    app_label: &str,
) -> Result<Vec<String>> {
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

/// The money tables under either name they may have now: ledger's, or Django's for the two
/// models without a `db_table` (`<app>_payment`, `<app>_article`) before the rename step.
pub(super) fn money_tables(app_label: &str) -> [String; 7] {
    [
        "users".to_owned(),
        "accounts".to_owned(),
        "transactions".to_owned(),
        "payments".to_owned(),
        "articles".to_owned(),
        format!("{app_label}_payment"),
        format!("{app_label}_article"),
    ]
}

/// Checks every seed column's type and nullability, under the table name it has now (Django's
/// or, after the rename step, ledger's).
pub(super) async fn check_seed_columns(conn: &mut PgConnection, app_label: &str) -> Result<()> {
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
        &money_tables(app_label) as &[String]
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut problems = Vec::new();
    let required = SEED_COLUMNS.iter().map(|c| (c, true));
    let additions = ADDITIONS.iter().map(|c| (c, false));
    for ((table, column, want_type, want_not_null), required) in required.chain(additions) {
        let names: Vec<String> = match *table {
            "payment" => vec!["payments".into(), format!("{app_label}_payment")],
            "article" => vec!["articles".into(), format!("{app_label}_article")],
            other => vec![other.into()],
        };
        let found = rows
            .iter()
            .find(|r| names.contains(&r.table) && r.column == *column);
        match found {
            None if required => {
                problems.push(format!("{}.{column} is missing", names[names.len() - 1]))
            }
            None => {}
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

/// Refuses a foreign key of the money tables that deletes or nulls on the database: what
/// Django 6.1's database-level `on_delete` writes (`models.DB_CASCADE`: `on delete cascade`;
/// `models.DB_SET_NULL`: `on delete set null`; `models.DB_SET_DEFAULT`: `on delete set
/// default`). Django then leaves the delete to the server, so dropping that key for ledger's
/// `on delete restrict` would silently turn Django's `user.delete()` from a cascade into an
/// error; and ledger never lets a delete elsewhere remove or orphan money rows. The cheat
/// sheet's `on_delete=models.PROTECT` (no action on the server, enforced in Python) is what
/// adoption takes.
///
/// SQL: `pg_constraint.confdeltype` of the keys on `accounts.user_id`,
/// `transactions.from_account_id` and `transactions.to_account_id`.
pub(super) async fn check_delete_rules(conn: &mut PgConnection) -> Result<()> {
    let rows = sqlx::query!(
        r#"
        select c.relname::text as "table!", a.attname::text as "column!",
               k.conname::text as "name!", k.confdeltype::text as "rule!"
        from pg_constraint k
        join pg_class c on c.oid = k.conrelid
        join pg_attribute a on a.attrelid = c.oid and a.attnum = any(k.conkey)
        where k.contype = 'f'
          and c.relnamespace = current_schema()::regnamespace
          and (c.relname::text, a.attname::text) in
              (('accounts', 'user_id'), ('transactions', 'from_account_id'),
               ('transactions', 'to_account_id'))
          and k.confdeltype in ('c', 'n', 'd')
        order by 1, 2, 3
        "#
    )
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let found: Vec<String> = rows
        .iter()
        .map(|r| {
            let (sql, django) = match r.rule.as_str() {
                "c" => ("on delete cascade", "DB_CASCADE"),
                "n" => ("on delete set null", "DB_SET_NULL"),
                _ => ("on delete set default", "DB_SET_DEFAULT"),
            };
            format!(
                "{}.{}'s foreign key {} is `{sql}` (Django 6.1's on_delete=models.{django})",
                r.table, r.column, r.name
            )
        })
        .collect();
    Err(Error::NotAdoptable(format!(
        "{}: ledger's keys are `on delete restrict`, so that no delete elsewhere removes or \
         orphans money rows, and replacing these would turn Django's delete into an error; \
         change the field to on_delete=models.PROTECT (the cheat sheet's), run makemigrations \
         and migrate, then adopt",
        found.join("; ")
    )))
}

/// Rows breaking each rule that is not validated yet.
pub(super) async fn violations(conn: &mut PgConnection, app_label: &str) -> Result<Vec<Violation>> {
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
        // Not query macros: the table and the rule differ per check, and the table may still
        // bear Django's name (with the app label). Both come from `plan`'s constants and a
        // checked label.
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

pub(super) fn django_changes(app_label: &str) -> Vec<String> {
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
        "optional, for cheaper writes: User's `models.Index(fields=['email'])` is redundant \
         beside `unique=True` (ledger's own schema drops it, migration 0016); remove it from \
         Meta.indexes and run makemigrations and migrate, and Django drops its index"
            .into(),
    ]
}
