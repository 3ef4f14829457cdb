//! `ledger tour`: the cheat sheet, section by section, run for real.
//!
//! Everything happens inside one transaction that is rolled back at the end: the tour creates its
//! own demo rows, runs every operation on them (and on whatever the database already holds), and
//! leaves no trace. Each step prints the seed's Django line, the ledger call, and the typed
//! result as a table.

use std::io::Write;

use ledger::accounts::{self, Account};
use ledger::transactions::{self, Movement, Transfer};
use ledger::users::{self, NewUser, User};
use ledger::{Config, schema};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{Acquire, PgConnection};

use crate::table::{Table, opt, short};

mod aggregations;
mod crud;
mod filtering;
mod full_text;
mod joins;
mod jsonb;
mod money;
mod ordering;
mod performance;
mod raw_sql;
mod windows;

use self::{
    aggregations::aggregations, crud::crud, filtering::filtering, full_text::full_text,
    joins::joins, jsonb::jsonb, money::money, ordering::ordering, performance::performance,
    raw_sql::raw_sql, windows::windows,
};

type AnyResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The demo users: non-ASCII names on purpose.
const PEOPLE: [(&str, &str); 8] = [
    ("ana@tour.example", "Ana García"),
    ("bjorn@tour.example", "Björn Ångström"),
    ("chloe@tour.example", "Chloé Dubois"),
    ("dmitri@tour.example", "Дмитрий Иванов"),
    ("eunji@tour.example", "김은지"),
    ("fatima@tour.example", "Fátima Núñez"),
    ("pct@tour.example", "100% Real_Name"),
    ("trial@tour.example", "Trial Tester"),
];

/// `(owner index, currency, deposit, status)` for each demo account.
const ACCOUNTS: [(usize, &str, &str, &str); 10] = [
    (0, "USD", "1500.00", "active"),
    (0, "EUR", "320.50", "active"),
    (1, "USD", "250.00", "active"),
    (2, "USD", "99.99", "vip"),
    (3, "USD", "500.00", "active"),
    (4, "USD", "250.00", "active"),
    (5, "USD", "75.25", "banned"),
    (6, "USD", "10.00", "active"),
    (7, "USD", "0", "trial"),
    (7, "USD", "0", "trial"),
];

/// Demo articles for the search section.
const ARTICLES: [(&str, &str); 4] = [
    (
        "Postgres performance tuning",
        "Indexes, vacuum and the query planner: a practical guide to a faster database.",
    ),
    (
        "Notes from a database conference",
        "Talks on replication, and one on postgres performance under heavy write load.",
    ),
    (
        "Choosing a database",
        "Relational or document store? Transactions and constraints decide it for a ledger.",
    ),
    ("Gardening", "Tomatoes need sun, water and patience."),
];

/// `(from account index, to account index, amount)`: transfers, and withdrawals without a `to`.
const MOVES: [(Option<usize>, Option<usize>, &str); 6] = [
    (Some(0), Some(2), "200.00"),
    (Some(4), Some(5), "120.00"),
    (Some(0), None, "60.00"),
    (Some(2), Some(0), "15.75"),
    (Some(5), None, "30.00"),
    (Some(0), Some(4), "99.99"),
];

fn heading(out: &mut impl Write, title: &str) -> AnyResult {
    writeln!(out, "\n== {title} ==")?;
    Ok(())
}

fn step(out: &mut impl Write, django: &str, ledger: &str) -> AnyResult {
    writeln!(out, "\n  django: {django}")?;
    writeln!(out, "  ledger: {ledger}")?;
    Ok(())
}

fn user_table(out: &mut impl Write, users: &[User]) -> AnyResult {
    let mut t = Table::new(&["id", "email", "name", "deleted_at"]);
    for u in users {
        t.row(vec![
            short(u.id),
            u.email.clone(),
            u.name.clone(),
            opt(u.deleted_at.map(|d| d.format("%F %T").to_string())),
        ]);
    }
    Ok(t.print(out)?)
}

fn account_table(out: &mut impl Write, accounts: &[Account]) -> AnyResult {
    let mut t = Table::new(&["id", "owner", "balance", "currency", "status"]);
    for a in accounts {
        t.row(vec![
            short(a.id),
            short(a.user_id),
            a.balance.to_string(),
            a.currency.clone(),
            a.status.to_string(),
        ]);
    }
    Ok(t.print(out)?)
}

fn value(out: &mut impl Write, text: impl std::fmt::Display) -> AnyResult {
    writeln!(out, "    -> {text}")?;
    Ok(())
}

/// Runs the tour on `conn`, a connection to `config`'s database that the caller migrated (or
/// found up to date).
pub async fn run(config: &Config, mut conn: PgConnection, out: &mut impl Write) -> AnyResult {
    writeln!(
        out,
        "ledger tour: the Django + PostgreSQL cheat sheet, in Rust"
    )?;
    heading(out, "Setup")?;
    writeln!(out, "  database: {config}")?;
    writeln!(
        out,
        "  settings: connect timeout {:?} (the seed's connect_timeout), connection max age {:?} (CONN_MAX_AGE)",
        ledger::config::CONNECT_TIMEOUT,
        ledger::config::CONNECTION_MAX_LIFETIME
    )?;
    heading(out, "Migrations")?;
    step(
        out,
        "python manage.py migrate",
        "schema::migrate(&mut conn)",
    )?;
    value(
        out,
        "run before the tour: always in the private cluster, elsewhere with `tour --migrate`",
    )?;
    step(
        out,
        "python manage.py showmigrations",
        "schema::status(&mut conn)",
    )?;
    let mut t = Table::new(&["version", "migration", "applied"]);
    for m in schema::status(&mut conn).await? {
        t.row(vec![
            format!("{:04}", m.version),
            m.description,
            if m.applied { "[X]" } else { "[ ]" }.into(),
        ]);
    }
    t.print(out)?;

    // Everything below runs in one transaction that is rolled back at the end.
    let mut tx = conn.begin().await?;
    let (people, accounts_made) = demo_data(&mut tx).await?;
    writeln!(
        out,
        "\n  (demo data inside a transaction that will be rolled back: {} users, {} accounts)",
        people.len(),
        accounts_made.len()
    )?;
    crud(&mut tx, out).await?;
    filtering(&mut tx, out).await?;
    ordering(&mut tx, out).await?;
    aggregations(&mut tx, out).await?;
    joins(&mut tx, out).await?;
    money(&mut tx, out, &accounts_made).await?;
    raw_sql(&mut tx, out).await?;
    jsonb(&mut tx, out).await?;
    windows(&mut tx, out).await?;
    full_text(&mut tx, out).await?;
    performance(&mut tx, out).await?;
    tx.rollback().await?;
    writeln!(out, "\n(rolled back: the database is as the tour found it)")?;
    Ok(())
}

async fn demo_data(conn: &mut PgConnection) -> AnyResult<(Vec<User>, Vec<Account>)> {
    let mut people = Vec::new();
    for (email, name) in PEOPLE {
        people.push(users::insert(&mut *conn, &NewUser::new(email, name)).await?);
    }
    let mut made = Vec::new();
    for (owner, currency, deposit, status) in ACCOUNTS {
        let account = accounts::open(&mut *conn, people[owner].id, Some(currency)).await?;
        let amount: Decimal = deposit.parse()?;
        if amount > Decimal::ZERO {
            let movement = Movement::new(account.id, amount).metadata(json!({"source": "tour"}));
            transactions::deposit(&mut *conn, &movement).await?;
        }
        made.push(accounts::set_status(&mut *conn, account.id, status).await?);
    }
    // A little traffic, so that the windows and reports have something to show.
    for (from, to, amount) in MOVES {
        let amount: Decimal = amount.parse()?;
        let entry = match (from, to) {
            (Some(from), Some(to)) => {
                let request = Transfer::new(made[from].id, made[to].id, amount);
                transactions::transfer(&mut *conn, &request).await?
            }
            (Some(from), None) => {
                transactions::withdraw(&mut *conn, &Movement::new(made[from].id, amount)).await?
            }
            _ => continue,
        };
        tracing::debug!(entry = %entry.id, "tour movement");
    }
    let mut current = Vec::with_capacity(made.len());
    for account in made {
        current.push(accounts::get(&mut *conn, account.id).await?);
    }
    Ok((people, current))
}
