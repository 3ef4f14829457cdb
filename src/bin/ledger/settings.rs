//! `ledger config`: the settings the command line resolved, and where each came from.
//!
//! The command line resolves its configuration as the library does ([`Config::from_env`], with
//! `--database-url` in place of `DATABASE_URL`); this module only explains the result. It needs
//! to know, for each variable, whether the process environment or `.env` set it: the environment
//! is read at start ([`Origins::capture`]), before anything loads `.env` into it.

use std::collections::BTreeSet;
use std::io::Write;

use ledger::Config;
use ledger::config::Source;

use crate::AnyResult;

/// The variables a setting can come from.
const VARIABLES: [&str; 11] = [
    "DATABASE_URL",
    "DATABASE_REPLICA_URLS",
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
    "DB_HOST",
    "DB_PORT",
    "DB_SSLMODE",
    "DB_SSLROOTCERT",
    "DB_MAX_CONNECTIONS",
    "DB_TRANSACTION_POOLER",
];

/// Which variables the process environment set before `.env` was read.
#[derive(Debug, Default)]
pub struct Origins {
    environment: BTreeSet<&'static str>,
}

impl Origins {
    /// Reads the environment; call before anything loads `.env`.
    pub fn capture() -> Self {
        let environment = VARIABLES
            .into_iter()
            .chain(["PGPASSWORD"])
            .filter(|key| std::env::var_os(key).is_some_and(|v| !v.is_empty()))
            .collect();
        Self { environment }
    }

    /// "DB_HOST (environment)", "DB_HOST (.env)", or `None` when neither set it.
    fn of(&self, key: &str, dotenv: &BTreeSet<String>) -> Option<String> {
        if self.environment.contains(key) {
            Some(format!("{key} (environment)"))
        } else if dotenv.contains(key) {
            Some(format!("{key} (.env)"))
        } else {
            None
        }
    }
}

/// The keys `.env` sets (none when it is missing or unreadable: resolving the config already
/// reported a malformed one).
fn dotenv_keys() -> BTreeSet<String> {
    dotenvy::dotenv_iter()
        .map(|vars| vars.filter_map(Result::ok).map(|(key, _)| key).collect())
        .unwrap_or_default()
}

/// Prints one line per setting: its name, its value (the password only as `<redacted>`), and
/// where it came from.
pub fn print(
    config: &Config,
    origins: &Origins,
    flag: bool,
    replicas: usize,
    out: &mut impl Write,
) -> AnyResult {
    let dotenv = dotenv_keys();
    let of = |key: &str| origins.of(key, &dotenv);
    let url_origin = if flag {
        "--database-url".to_owned()
    } else {
        of("DATABASE_URL").unwrap_or_else(|| "DATABASE_URL".to_owned())
    };
    // Each connection setting comes from the URL, the DB_* variable or a default.
    let from = |key: &str, default: &str| -> String {
        match config.source() {
            Source::Url => url_origin.clone(),
            Source::LocalCluster(dir) => format!("the private cluster ({})", dir.display()),
            _ => of(key).unwrap_or_else(|| format!("default ({default})")),
        }
    };
    let o = config.connect_options();
    let host = match o.get_socket() {
        Some(dir) => format!("socket directory {}", dir.display()),
        None => o.get_host().to_owned(),
    };
    let password = if config.has_password() {
        "<redacted>"
    } else {
        "(none: ~/.pgpass or trust)"
    };
    let password_origin = match (config.source(), config.has_password()) {
        (_, false) => String::new(),
        (Source::DjangoVariables, true) => of("DB_PASSWORD").unwrap_or_default(),
        (Source::Url, true) => format!("{url_origin} or PGPASSWORD"),
        (_, true) => of("PGPASSWORD").unwrap_or_default(),
    };
    let source = match config.source() {
        Source::Url => url_origin.clone(),
        Source::DjangoVariables => of("DB_NAME").unwrap_or_else(|| "DB_NAME".to_owned()),
        Source::LocalCluster(_) => "nothing configured: the private cluster".to_owned(),
        _ => "?".to_owned(),
    };
    let pool_origin = of("DB_MAX_CONNECTIONS")
        .unwrap_or_else(|| format!("default ({})", ledger::config::DEFAULT_MAX_CONNECTIONS));
    let pooler_origin = of("DB_TRANSACTION_POOLER").unwrap_or_else(|| "default (off)".to_owned());
    let replicas_origin = of("DATABASE_REPLICA_URLS").unwrap_or_else(|| "not set".to_owned());
    let rows: [(&str, String, String); 10] = [
        ("database url", config.url(), source),
        ("host", host, from("DB_HOST", "localhost")),
        ("port", o.get_port().to_string(), from("DB_PORT", "5432")),
        (
            "database",
            o.get_database().unwrap_or_default().to_owned(),
            from("DB_NAME", "-"),
        ),
        (
            "user",
            o.get_username().to_owned(),
            from("DB_USER", "the login name"),
        ),
        ("password", password.to_owned(), password_origin),
        (
            "sslmode",
            ssl_mode(o.get_ssl_mode()).to_owned(),
            from("DB_SSLMODE", "prefer"),
        ),
        ("pool size", config.pool_size().to_string(), pool_origin),
        (
            "transaction pooler",
            if config.uses_transaction_pooler() {
                "on (no statement cache)"
            } else {
                "off"
            }
            .to_owned(),
            pooler_origin,
        ),
        ("read replicas", replicas.to_string(), replicas_origin),
    ];
    let width = rows.iter().map(|(name, ..)| name.len()).max().unwrap_or(0);
    let value_width = rows
        .iter()
        .map(|(_, value, _)| value.len())
        .max()
        .unwrap_or(0);
    for (name, value, origin) in rows {
        writeln!(out, "{name:<width$}  {value:<value_width$}  {origin}")?;
    }
    Ok(())
}

/// libpq's name of an sslmode.
fn ssl_mode(mode: sqlx::postgres::PgSslMode) -> &'static str {
    use sqlx::postgres::PgSslMode;
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}
