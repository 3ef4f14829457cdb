//! Integration tests against real PostgreSQL: one fresh database per test (`#[sqlx::test]`).
//!
//! `#[sqlx::test]` reads `DATABASE_URL` when each test starts. Before any test runs,
//! [`provide_database_url`] makes sure it is set: from the environment or `.env`, from the seed's
//! `DB_*` variables, or else by starting (or finding) the private cluster of `ledger::local`.

mod accounts;
mod articles;
mod bank;
mod bookkeeping;
mod bulk;
mod cancel;
mod cli;
mod cli_target;
mod constraints;
mod django;
mod documents;
mod early_drop;
mod ha;
mod hosts;
mod idempotency;
mod inputs;
mod kinds;
mod listings;
mod local;
#[cfg(feature = "metrics")]
mod metrics;
mod money;
mod nullability;
mod payments;
mod pgbouncer;
mod plans;
mod poster;
mod replica;
mod reports;
mod retention;
mod roles;
mod schema;
mod secrets;
mod streamed;
mod support;
mod telemetry;
mod timeouts;
mod tls;
mod users;

/// Runs before `main`, while the process has one thread.
#[ctor::ctor(unsafe)]
fn provide_database_url() {
    if let Err(err) = database_url() {
        eprintln!("error: no database for the tests: {err}");
        std::process::exit(2);
    }
}

fn database_url() -> ledger::Result<()> {
    if std::env::var_os("DATABASE_URL").is_some() {
        return Ok(());
    }
    let url = match ledger::Config::from_env()? {
        // DATABASE_URL came from .env: sqlx reads .env itself.
        Some(config) if *config.source() == ledger::config::Source::Url => return Ok(()),
        Some(config) => config.url(),
        None => ledger::local::Cluster::ensure_default()?.url("postgres"),
    };
    // SAFETY: a constructor runs before main, while this process has no other thread. The
    // password, if any, stays in DB_PASSWORD, which sqlx does not read: hand it over as PGPASSWORD,
    // which it does.
    unsafe {
        std::env::set_var("DATABASE_URL", url);
        if let Some(password) = std::env::var_os("DB_PASSWORD") {
            std::env::set_var("PGPASSWORD", password);
        }
    }
    Ok(())
}
