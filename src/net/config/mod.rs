//! Where the database is: `DATABASE_URL` or the seed's `DB_*` variables.
//!
//! The seed's Django settings read `DB_NAME`, `DB_USER`, `DB_PASSWORD`, `DB_HOST` (default
//! `localhost`) and `DB_PORT` (default 5432) through `python-decouple`, which also reads `.env`.
//! [`Config::from_env`] does the same (through `dotenvy`; the environment wins over `.env`), and
//! prefers `DATABASE_URL` when both are set. With neither, [`Config::resolve`] fails with one
//! clear line: a service that lost its configuration must not run on some other database. The
//! zero-setup fallback for development, tests and the command line is a separate, explicitly
//! named constructor, `Config::resolve_or_local` (feature `local`, unix only), which starts the
//! private cluster of `ledger::local`.
//!
//! **TLS** (feature `tls`, on by default: rustls with the webpki roots): `sslmode=require`
//! encrypts; `verify-ca` also checks the server's certificate against `sslrootcert` (or the
//! webpki roots); `verify-full` also checks that it names the host. In a URL
//! (`postgres://...?sslmode=verify-full&sslrootcert=/path/ca.pem`) or through `DB_SSLMODE` and
//! `DB_SSLROOTCERT` beside the other `DB_*` variables. The default, `prefer`, tries TLS and falls
//! back to plaintext.
//!
//! The seed's production extras map as follows: `connect_timeout: 5` is the pool's acquire timeout
//! (which bounds connecting), `CONN_MAX_AGE: 60` is the pool's connection max lifetime. Those and
//! the server's `statement_timeout`, `lock_timeout` and `idle_in_transaction_session_timeout`
//! are one [`Timeouts`] value, with defaults chosen for a money service.
//!
//! The password is never formatted into a URL, `Debug` output, an error or a log line:
//! [`PgConnectOptions`] is built field by field and `Debug` shows `<redacted>`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

use crate::net::hosts::{Endpoint, Hosts, TargetSessionAttrs};

mod connect;
mod env;
#[cfg(test)]
mod tests;
mod timeouts;

pub use timeouts::Timeouts;

/// The seed's `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The seed's `CONN_MAX_AGE`.
pub const CONNECTION_MAX_LIFETIME: Duration = Duration::from_secs(60);
/// A pooled connection idle at least this long is checked before the pool hands it out; one
/// reused sooner is not (see [`Config::pool_options`]).
pub const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);
/// Pool size when `DB_MAX_CONNECTIONS` is not set.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// The database the binary uses inside the private cluster.
pub const LOCAL_DATABASE: &str = "ledger";
/// What [`Config::resolve`] says when nothing is configured.
pub const NOTHING_CONFIGURED: &str = "no database configured: set DATABASE_URL, or DB_NAME (with \
     DB_USER, DB_PASSWORD, DB_HOST, DB_PORT), in the environment or in .env";

/// Where a [`Config`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// `DATABASE_URL` (or `--database-url`).
    Url,
    /// The seed's `DB_NAME`, `DB_USER`, ... variables.
    DjangoVariables,
    /// The private cluster in this directory.
    LocalCluster(PathBuf),
}

/// How to reach the database, and how big a pool to keep.
#[derive(Clone)]
pub struct Config {
    /// For a host list, the first server's (each connection applies its own server's host and
    /// port to these).
    options: PgConnectOptions,
    /// A host list, or a session to check ([`crate::hosts`]); `None` for one plain server.
    hosts: Option<Arc<Hosts>>,
    /// Kept only to hand to child tools (`psql`) through their environment; never displayed.
    password: Option<String>,
    max_connections: u32,
    transaction_pooler: bool,
    timeouts: Timeouts,
    source: Source,
}

impl Config {
    /// This config walking `hosts` ([`crate::hosts`]): each connection tries the servers in
    /// turn and takes the first whose session is the one asked for.
    ///
    /// ```
    /// use ledger::hosts::{Endpoint, Hosts, LoadBalanceHosts, TargetSessionAttrs};
    /// let config = ledger::Config::from_url("postgres://app@db-1:5432,db-2:5432/bank")?;
    /// assert_eq!(config.hosts().map(|h| h.endpoints().len()), Some(2));
    /// // The same, built: the writer of a three-node cluster.
    /// let hosts = Hosts::new(
    ///     ["db-1", "db-2", "db-3"].map(|h| Endpoint::tcp(h, 5432)).to_vec(),
    ///     TargetSessionAttrs::ReadWrite,
    ///     LoadBalanceHosts::Disable,
    ///     ledger::config::CONNECT_TIMEOUT,
    /// )?;
    /// let writer = config.with_hosts(hosts);
    /// assert_eq!(
    ///     writer.url(),
    ///     "postgres://app@db-1:5432,db-2:5432,db-3:5432/bank?sslmode=prefer&target_session_attrs=read-write"
    /// );
    /// # Ok::<(), ledger::Error>(())
    /// ```
    pub fn with_hosts(mut self, hosts: Hosts) -> Self {
        self.options = hosts.endpoints()[0].apply_to(&self.options);
        self.hosts = Some(Arc::new(hosts));
        self
    }

    /// One config per server of the host list, each plain (no list, no session check), in the
    /// list's order; this config alone when it has no list. [`replica::Router::connect_hosts`]
    /// makes its candidate readers from them.
    ///
    /// [`replica::Router::connect_hosts`]: crate::replica::Router::connect_hosts
    pub fn each_host(&self) -> Vec<Self> {
        match &self.hosts {
            None => vec![self.clone()],
            Some(hosts) => hosts
                .endpoints()
                .iter()
                .map(|endpoint| Self {
                    options: endpoint.apply_to(&self.options),
                    hosts: None,
                    ..self.clone()
                })
                .collect(),
        }
    }

    /// The host list this config walks, if it has one ([`Config::with_hosts`]).
    pub fn hosts(&self) -> Option<&Hosts> {
        self.hosts.as_deref()
    }

    /// A config of these options; `application_name` is `ledger` unless they name one (a URL's
    /// `application_name`, or `PGAPPNAME`).
    pub(crate) fn new(options: PgConnectOptions, password: Option<String>, source: Source) -> Self {
        let options = match options.get_application_name() {
            Some(_) => options,
            None => options.application_name("ledger"),
        };
        Self {
            options,
            hosts: None,
            password,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            transaction_pooler: false,
            timeouts: Timeouts::default(),
            source,
        }
    }

    /// This config with `password` (read from `.env`'s `PGPASSWORD`).
    fn with_password(mut self, password: String) -> Self {
        self.options = self.options.password(&password);
        self.password = Some(password);
        self
    }

    /// Sets the pool's and the server's timeouts ([`Timeouts`]).
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The pool's and the server's timeouts.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Sets the pool size.
    pub fn max_connections(mut self, max_connections: u32) -> Self {
        self.max_connections = max_connections.max(1);
        self
    }

    /// The profile for a **transaction pooler** (PgBouncer with `pool_mode = transaction`):
    /// sqlx's statement cache off, so that no statement prepared on one server connection is
    /// executed on another. Also set `DB_TRANSACTION_POOLER=1` beside the other variables.
    ///
    /// It is one half of the profile; docs/replicas-and-pgbouncer.md gives the whole:
    /// - PgBouncer runs `ignore_startup_parameters = extra_float_digits`, and
    ///   `server_reset_query = DISCARD ALL` with `server_reset_query_always = 1`, so that a
    ///   server connection goes back to its pool with nothing left on it. (sqlx 0.9.0 named
    ///   every statement `sqlx_s_N` and never closed one when its cache was off, so two
    ///   clients' statements collided without the reset; sqlx 0.9.1, which ledger pins, uses the
    ///   unnamed statement then, and `tests/db/pgbouncer.rs` shows that they no longer collide);
    /// - every statement runs inside a transaction (`pool.begin()`, or a unit of work, which
    ///   begins its own: a money movement that would otherwise be one autocommitted call
    ///   begins one on a connection that caches no statement), because sqlx prepares a
    ///   statement and executes it in two exchanges,
    ///   and between them a transaction pooler hands the server connection to another client.
    ///   A statement outside a transaction fails every time with "prepared statement ... does
    ///   not exist" (it never runs on the wrong connection).
    ///
    /// Each statement is then parsed and described on every call (one more round trip than with
    /// the cache); docs/benchmarks.md measures the cost.
    pub fn transaction_pooler(mut self) -> Self {
        self.options = self.options.statement_cache_capacity(0);
        self.transaction_pooler = true;
        self
    }

    /// The pool size ([`Config::max_connections`], `DB_MAX_CONNECTIONS`).
    pub fn pool_size(&self) -> u32 {
        self.max_connections
    }

    /// Whether this is [`Config::transaction_pooler`]'s profile (no statement cache).
    pub fn uses_transaction_pooler(&self) -> bool {
        self.transaction_pooler
    }

    /// Whether a password was given (in the URL, `DB_PASSWORD` or `PGPASSWORD`); the password
    /// itself is never shown.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Where this config came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The connection options every connection of this config is opened with: the server's
    /// timeouts ([`Timeouts`]) sent as startup `options`, except through a transaction pooler.
    /// For callers who build their own pool; [`Config::connect_with`] keeps the failover
    /// follower as well.
    pub fn connect_options(&self) -> PgConnectOptions {
        if self.transaction_pooler {
            return self.options.clone();
        }
        self.options.clone().options(
            self.timeouts
                .server_settings()
                .map(|(setting, ms)| (setting, format!("{ms}ms"))),
        )
    }

    /// The same config pointed at another database of the same server.
    pub fn with_database(&self, database: &str) -> Self {
        Self {
            options: self.options.clone().database(database),
            ..self.clone()
        }
    }

    /// What this config reaches, for messages: host and port (or socket directory), database and
    /// user; never the password.
    pub fn target(&self) -> String {
        let o = &self.options;
        let place = match (&self.hosts, o.get_socket()) {
            (Some(hosts), _) => {
                let list: Vec<String> = hosts.endpoints().iter().map(ToString::to_string).collect();
                match hosts.target_session_attrs() {
                    TargetSessionAttrs::Any => list.join(","),
                    target => format!("{} ({target})", list.join(",")),
                }
            }
            (None, Some(dir)) => format!("socket {}/.s.PGSQL.{}", dir.display(), o.get_port()),
            (None, None) => format!("{}:{}", o.get_host(), o.get_port()),
        };
        format!(
            "{place}, database {}, user {}",
            o.get_database().unwrap_or(o.get_username()),
            o.get_username()
        )
    }

    /// A URL for this database, for tools such as `sqlx-cli` and `psql`, without the password
    /// (give those tools `PGPASSWORD` instead), and without sqlx's own
    /// `statement-cache-capacity` parameter, which libpq refuses ("invalid URI query
    /// parameter").
    pub fn url(&self) -> String {
        let mut url = self.options.to_url_lossy();
        // Infallible for a URL with a host; ignoring keeps this a plain accessor.
        let _ = url.set_password(None);
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(key, _)| key != "statement-cache-capacity")
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        match &self.hosts {
            Some(hosts) => hosts.url_with_list(url.as_ref(), CONNECT_TIMEOUT),
            None => url.to_string(),
        }
    }

    /// The environment under which `psql` (or any libpq tool) reaches this database:
    /// `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE` and, if there is one, `PGPASSWORD` — so that
    /// the password never appears on a command line.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let o = &self.options;
        let (host, port) = match (&self.hosts, o.get_socket()) {
            (Some(hosts), _) => {
                let endpoints = hosts.endpoints();
                let hosts: Vec<String> = endpoints.iter().map(Endpoint::host).collect();
                let ports: Vec<String> = endpoints.iter().map(|e| e.port().to_string()).collect();
                (hosts.join(","), ports.join(","))
            }
            (None, Some(dir)) => (dir.display().to_string(), o.get_port().to_string()),
            (None, None) => (o.get_host().to_owned(), o.get_port().to_string()),
        };
        let mut env = vec![
            ("PGHOST", host),
            ("PGPORT", port),
            ("PGUSER", o.get_username().to_owned()),
        ];
        if let Some(hosts) = &self.hosts {
            env.push((
                "PGTARGETSESSIONATTRS",
                hosts.target_session_attrs().to_string(),
            ));
            env.push((
                "PGCONNECT_TIMEOUT",
                hosts.connect_timeout_secs().to_string(),
            ));
        }
        if let Some(database) = o.get_database() {
            env.push(("PGDATABASE", database.to_owned()));
        }
        if let Some(password) = &self.password {
            env.push(("PGPASSWORD", password.clone()));
        }
        env
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        f.debug_struct("Config")
            .field("host", &o.get_host())
            .field("port", &o.get_port())
            .field("socket", &o.get_socket())
            .field("username", &o.get_username())
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &o.get_database())
            .field("hosts", &self.hosts)
            .field("max_connections", &self.max_connections)
            .field("timeouts", &self.timeouts)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Config {
    /// The URL without the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}
