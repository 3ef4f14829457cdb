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
//! (which bounds connecting), `CONN_MAX_AGE: 60` is the pool's connection max lifetime.
//!
//! The password is never formatted into a URL, `Debug` output, an error or a log line:
//! [`PgConnectOptions`] is built field by field and `Debug` shows `<redacted>`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};

use crate::hosts::{Endpoint, Hosts, LoadBalanceHosts, TargetSessionAttrs};
use crate::{Error, Result, sqlstate};

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
    source: Source,
}

impl Config {
    /// Reads `.env` (never overriding the environment), then [`Config::from_lookup`] on the
    /// process environment. `Ok(None)` means nothing is configured.
    ///
    /// # Errors
    /// [`Error::Config`] when a variable is set but unusable (a malformed URL, a port that is not
    /// a number).
    pub fn from_env() -> Result<Option<Self>> {
        load_dotenv()?;
        Self::from_lookup(env_lookup)
    }

    /// Builds a config from variables found by `lookup`: `DATABASE_URL` first, else `DB_NAME`
    /// with the other `DB_*` variables. `DB_MAX_CONNECTIONS` sets the pool size either way.
    ///
    /// ```
    /// let vars = [("DB_NAME", "mydb"), ("DB_USER", "postgres"), ("DB_PASSWORD", "s3cret")];
    /// let lookup = |key: &str| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string());
    /// let config = ledger::Config::from_lookup(lookup)?
    ///     .ok_or_else(|| ledger::Error::Config("nothing configured".into()))?;
    /// assert!(config.url().starts_with("postgres://postgres@localhost:5432/mydb?"));
    /// assert!(!format!("{config:?}").contains("s3cret"));
    /// # Ok::<(), ledger::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when a variable is set but unusable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let config = if let Some(url) = lookup("DATABASE_URL") {
            Self::from_named_url(&url, "DATABASE_URL")?
        } else if let Some(name) = lookup("DB_NAME") {
            Self::from_django_variables(&name, &lookup)?
        } else {
            return Ok(None);
        };
        let config = match lookup("DB_MAX_CONNECTIONS") {
            Some(size) => config.max_connections(parse_pool_size(&size)?),
            None => config,
        };
        let config = if pooler_flag(&lookup)? {
            config.transaction_pooler()
        } else {
            config
        };
        Ok(Some(config))
    }

    /// [`Config::from_env`] with `url` in place of `DATABASE_URL` (a command line's
    /// `--database-url`): every other setting (`DB_MAX_CONNECTIONS`, `DB_TRANSACTION_POOLER`)
    /// still comes from the environment or `.env`, exactly as it would beside `DATABASE_URL`.
    /// An empty `url` counts as unset.
    ///
    /// # Errors
    /// As [`Config::from_env`]; a malformed `url`'s message names `DATABASE_URL`.
    pub fn from_env_with_url(url: &str) -> Result<Option<Self>> {
        load_dotenv()?;
        Self::from_lookup(|key| {
            if key == "DATABASE_URL" {
                Some(url.to_owned()).filter(|url| !url.is_empty())
            } else {
                env_lookup(key)
            }
        })
    }

    /// The read replicas' configs, from `DATABASE_REPLICA_URLS` in the environment or `.env`:
    /// URLs separated by commas, each with the writer's `DB_MAX_CONNECTIONS` pool size and
    /// `DB_TRANSACTION_POOLER` profile. Empty
    /// when it is not set. See [`crate::replica::Router`].
    ///
    /// # Errors
    /// [`Error::Config`] when `.env` is malformed or an entry is not a PostgreSQL URL (the message
    /// gives the entry's position, never the URL).
    pub fn replicas_from_env() -> Result<Vec<Self>> {
        load_dotenv()?;
        Self::replicas_from_lookup(env_lookup)
    }

    /// [`Config::replicas_from_env`] with the variables found by `lookup`.
    ///
    /// ```
    /// let urls = "postgres://app@replica-1/bank, postgres://app@replica-2/bank";
    /// let replicas = ledger::Config::replicas_from_lookup(|key| {
    ///     (key == "DATABASE_REPLICA_URLS").then(|| urls.to_owned())
    /// })?;
    /// assert_eq!(replicas.len(), 2);
    /// assert!(replicas[1].target().starts_with("replica-2:5432"));
    /// # Ok::<(), ledger::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Config::replicas_from_env`].
    pub fn replicas_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<Self>> {
        let Some(urls) = lookup("DATABASE_REPLICA_URLS") else {
            return Ok(Vec::new());
        };
        let size = lookup("DB_MAX_CONNECTIONS")
            .map(|size| parse_pool_size(&size))
            .transpose()?;
        let pooler = pooler_flag(&lookup)?;
        split_urls(&urls)
            .into_iter()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .enumerate()
            .map(|(i, url)| {
                let name = format!("DATABASE_REPLICA_URLS (entry {})", i + 1);
                let config = Self::from_named_url(url, &name)?;
                let config = match size {
                    Some(size) => config.max_connections(size),
                    None => config,
                };
                Ok(if pooler {
                    config.transaction_pooler()
                } else {
                    config
                })
            })
            .collect()
    }

    /// A config for one URL (`postgres://user:password@host:port/database?...`).
    ///
    /// ```
    /// let err = ledger::Config::from_url("mysql://app@db/bank").unwrap_err();
    /// assert!(err.to_string().starts_with("configuration: database URL: not a PostgreSQL URL"));
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when the URL cannot be parsed; the message begins "database URL: "
    /// (the variable's name instead, when [`Config::from_env`] read it) and never repeats the
    /// URL.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_named_url(url, "database URL")
    }

    /// [`Config::from_url`], whose errors begin with `name`: where the URL came from.
    fn from_named_url(url: &str, name: &str) -> Result<Self> {
        Self::parse_url(url).map_err(|e| match e {
            Error::Config(message) => match message.strip_prefix("DATABASE_URL") {
                Some(rest) => Error::Config(format!("{name}{rest}")),
                None => Error::Config(message),
            },
            other => other,
        })
    }

    /// Parses a URL; errors begin "DATABASE_URL", which [`Config::from_named_url`] renames.
    fn parse_url(url: &str) -> Result<Self> {
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("postgres" | "postgresql")) {
            let scheme = scheme.map_or_else(|| "none".to_owned(), |s| format!("{s}://"));
            return Err(Error::Config(format!(
                "DATABASE_URL: not a PostgreSQL URL (scheme {scheme}); expected \
                 postgres://user@host:port/database"
            )));
        }
        // A host list is split off first: sqlx's parser takes one host.
        let split = Hosts::split_url(url, CONNECT_TIMEOUT)?;
        let one_host = split.as_ref().map_or(url, |split| split.first.as_str());
        let options = PgConnectOptions::from_str(one_host)
            .map_err(|e| Error::Config(format!("DATABASE_URL: {}", describe_parse_error(&e))))?;
        // The parser takes the password from the URL or PGPASSWORD; ~/.pgpass is read at connect.
        let password = url_password(url).or_else(|| std::env::var("PGPASSWORD").ok());
        let config = Self::new(options, password, Source::Url);
        Ok(match split {
            Some(split) => config.with_hosts(split.hosts),
            None => config,
        })
    }

    fn from_django_variables(name: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<Self> {
        let host = lookup("DB_HOST").unwrap_or_else(|| "localhost".to_owned());
        let port = lookup("DB_PORT");
        let target = lookup("DB_TARGET_SESSION_ATTRS")
            .map(|value| value.parse::<TargetSessionAttrs>())
            .transpose()
            .map_err(|e| prefixed("DB_TARGET_SESSION_ATTRS", e))?;
        let load_balance = lookup("DB_LOAD_BALANCE_HOSTS")
            .map(|value| value.parse::<LoadBalanceHosts>())
            .transpose()
            .map_err(|e| prefixed("DB_LOAD_BALANCE_HOSTS", e))?;
        let list = host.contains(',') || port.as_deref().is_some_and(|p| p.contains(','));
        let hosts = if list || target.is_some() || load_balance.is_some() {
            let endpoints = Hosts::from_variables(&host, port.as_deref())?;
            Some(Hosts::new(
                endpoints,
                target.unwrap_or_default(),
                load_balance.unwrap_or_default(),
                CONNECT_TIMEOUT,
            )?)
        } else {
            None
        };
        let mut options = PgConnectOptions::new_without_pgpass().database(name);
        options = match &hosts {
            Some(hosts) => hosts.endpoints()[0].apply_to(&options),
            None => {
                let port = match port {
                    Some(port) => port.parse::<u16>().map_err(|_| {
                        Error::Config(format!("DB_PORT is not a port number: {port:?}"))
                    })?,
                    None => 5432,
                };
                // Like libpq, a host that is a path names the directory of a unix socket.
                Endpoint::new(&host, port).apply_to(&options)
            }
        };
        if let Some(user) = lookup("DB_USER") {
            options = options.username(&user);
        }
        let password = lookup("DB_PASSWORD");
        if let Some(password) = &password {
            options = options.password(password);
        }
        if let Some(mode) = lookup("DB_SSLMODE") {
            let mode = mode
                .parse()
                .map_err(|_| Error::Config(format!("DB_SSLMODE is not an sslmode: {mode:?}")))?;
            options = options.ssl_mode(mode);
        }
        if let Some(root_cert) = lookup("DB_SSLROOTCERT") {
            options = options.ssl_root_cert(root_cert);
        }
        let config = Self::new(options, password, Source::DjangoVariables);
        Ok(match hosts {
            Some(hosts) => config.with_hosts(hosts),
            None => config,
        })
    }

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

    /// [`Config::from_env`], or [`Error::Config`] when nothing is configured: what a service calls
    /// at start.
    ///
    /// ```no_run
    /// # async fn start() -> ledger::Result<()> {
    /// // Fails at start, in one line, when the deployment forgot DATABASE_URL:
    /// // "configuration: no database configured: set DATABASE_URL, or DB_NAME (...)".
    /// let pool = ledger::Config::resolve()?.connect().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable configuration, or when there is none
    /// ([`NOTHING_CONFIGURED`]).
    pub fn resolve() -> Result<Self> {
        Self::from_env()?.ok_or_else(|| Error::Config(NOTHING_CONFIGURED.to_owned()))
    }

    pub(crate) fn new(options: PgConnectOptions, password: Option<String>, source: Source) -> Self {
        Self {
            options: options.application_name("ledger"),
            hosts: None,
            password,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            transaction_pooler: false,
            source,
        }
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

    /// The connection options, for callers who build their own pool.
    pub fn connect_options(&self) -> &PgConnectOptions {
        &self.options
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

    /// Pool options with the seed's timeouts and this config's size. A pooled connection is
    /// checked (one empty round trip) before it is handed out only when it has been idle for
    /// [`CHECK_IDLE_AFTER`] or longer.
    ///
    /// sqlx's default checks every connection on every acquire. A service under load takes a
    /// connection back within milliseconds of returning it, so that check is one more round trip
    /// per call that almost never finds anything. `cargo bench --bench wire` measured 2,000
    /// transfers from 4 clients through the pool against the same on held connections: 1.07–1.08×
    /// with sqlx's check, 1.00–1.02× with this one, on the private cluster. On a server with
    /// `fsync = on`, where each commit waits for a flush, both cost 1.13–1.23× and the
    /// difference was within the machine's noise (see docs/benchmarks.md). A connection
    /// that sat idle through a server restart or a failover is still checked, and replaced.
    /// What is given up: a backend that dies less than [`CHECK_IDLE_AFTER`] after its connection
    /// went back to the pool is found by the caller's first statement, as a
    /// [`Transient::ConnectionLost`](crate::Transient::ConnectionLost) error, exactly as if it had
    /// died during the call. For sqlx's behaviour, set `.test_before_acquire(true)` on these
    /// options.
    ///
    /// Every connection going back to the pool is asked whether its session is outside any
    /// transaction ([`session::is_outside_transaction`](crate::session::is_outside_transaction),
    /// one simple query): one left inside a transaction that no caller holds (a future dropped
    /// at the wrong moment, a `begin` sent as plain SQL) is closed, never handed to the next
    /// caller. The check runs in the task that returns the connection, after the caller has
    /// moved on; sqlx then pings it once more. Its cost is in docs/benchmarks.md.
    pub fn pool_options(&self) -> PgPoolOptions {
        let options = self.base_pool_options();
        match &self.hosts {
            Some(hosts) if hosts.target_session_attrs() != TargetSessionAttrs::Any => {
                let hosts = Arc::clone(hosts);
                let base = self.options.clone();
                options.after_connect(move |conn, _| {
                    let (hosts, base) = (Arc::clone(&hosts), base.clone());
                    Box::pin(async move {
                        crate::hosts::take_the_right_server(conn, &hosts, &base).await
                    })
                })
            }
            _ => options,
        }
    }

    fn base_pool_options(&self) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(CONNECT_TIMEOUT)
            .max_lifetime(CONNECTION_MAX_LIFETIME)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= CHECK_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_release(|conn, _| {
                Box::pin(async move {
                    let clean = crate::session::probe(conn).await?;
                    if !clean {
                        tracing::warn!(
                            "a connection came back inside a transaction nobody holds; closed"
                        );
                    }
                    Ok(clean)
                })
            })
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

    /// Opens a pool and checks that the server answers.
    ///
    /// With a host list ([`crate::hosts`]) the pool **follows the primary**: the list is walked
    /// for the first server with the session asked for; every connection the pool opens later is
    /// checked (`target_session_attrs` other than `any`: one round trip per new connection, none
    /// per acquire) and replaced by a walk's when it reached the wrong kind of server; and a
    /// follower task (one connection of its own, one simple query every
    /// [`FOLLOW_EVERY`](crate::hosts::FOLLOW_EVERY)) re-points the pool when its server dies or
    /// changes, for as long as the pool is open. Close the pool (`pool.close().await`) to end the
    /// follower: it holds a handle to the pool, so dropping every other handle does not.
    ///
    /// ```no_run
    /// # async fn run() -> ledger::Result<()> {
    /// // Django's `'HOST': 'db-1,db-2,db-3'` with `'target_session_attrs': 'read-write'`:
    /// let config = ledger::Config::from_url(
    ///     "postgres://app@db-1,db-2,db-3/bank?target_session_attrs=read-write",
    /// )?;
    /// let pool = config.connect().await?;
    /// // ... after a failover, calls fail with `Error::Transient` at most, and the next
    /// // connection is opened on the new primary.
    /// pool.close().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Database`] when the server cannot be reached within [`CONNECT_TIMEOUT`];
    /// [`Error::Transient`] when no server of a list answers, or none has the session asked for
    /// ([`Transient::NoMatchingServer`](crate::Transient::NoMatchingServer)).
    pub async fn connect(&self) -> Result<PgPool> {
        let op = self.connect_op("ledger.Config.connect");
        crate::telemetry::traced(op, self.connect_pool()).await
    }

    /// The span of opening a pool or a connection: OpenTelemetry's connection attributes
    /// (`db.namespace`, `server.address`, `server.port`: of the server that answered, for a
    /// host list), never the user or the password.
    fn connect_op(&self, name: &'static str) -> crate::telemetry::Op {
        let span = match name {
            "ledger.Config.connect_one" => tracing::info_span!(
                "ledger.Config.connect_one",
                otel.name = "connect",
                otel.kind = "client",
                db.system.name = "postgresql",
                db.namespace = self.options.get_database().unwrap_or_default(),
                server.address = tracing::field::Empty,
                server.port = tracing::field::Empty,
                error.type = tracing::field::Empty,
            ),
            _ => tracing::info_span!(
                "ledger.Config.connect",
                otel.name = "connect",
                otel.kind = "client",
                db.system.name = "postgresql",
                db.namespace = self.options.get_database().unwrap_or_default(),
                server.address = tracing::field::Empty,
                server.port = tracing::field::Empty,
                error.type = tracing::field::Empty,
            ),
        };
        if self.hosts.is_none() {
            record_server(&span, &self.options);
        }
        crate::telemetry::Op {
            span,
            name,
            operation: "connect",
            collection: "",
        }
    }

    async fn connect_pool(&self) -> Result<PgPool> {
        tracing::debug!(config = ?self, "connecting");
        let Some(hosts) = &self.hosts else {
            return Ok(self
                .pool_options()
                .connect_with(self.options.clone())
                .await?);
        };
        // The walk finds the server; the pool then opens its connections there, each checked by
        // `pool_options`' `after_connect`, and the walk's connection watches the server for the
        // follower.
        let (watch, index) = hosts.connect(&self.options).await?;
        let server = hosts.endpoints()[index].apply_to(&self.options);
        record_server(&tracing::Span::current(), &server);
        let pool = self.pool_options().connect_lazy_with(server);
        drop(pool.acquire().await?);
        if hosts.endpoints().len() > 1 {
            tokio::spawn(crate::hosts::follow(
                pool.clone(),
                Arc::clone(hosts),
                self.options.clone(),
                watch,
                index,
            ));
        } else {
            let _ = watch.close().await;
        }
        Ok(pool)
    }

    /// Creates `database` on this config's server unless it exists; racing creators are fine.
    /// Connects to the server's `postgres` database to do it, so the role needs `CREATEDB`.
    ///
    /// # Errors
    /// [`Error::Database`] when the server refuses.
    pub async fn create_database(&self, database: &str) -> Result<()> {
        let mut conn = self.with_database("postgres").connect_one().await?;
        let exists = sqlx::query_scalar!(
            r#"select exists (select 1 from pg_database where datname = $1) as "exists!""#,
            database
        )
        .fetch_one(&mut conn)
        .await?;
        if exists {
            return Ok(());
        }
        let ddl = format!("create database {}", quote_ident(database));
        // DDL takes no bind parameters and names an identifier: no query macro can express it.
        match sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(&mut conn)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.as_database_error().and_then(|d| d.code());
                match code.as_deref() {
                    // Another process created it between our check and our create.
                    Some(sqlstate::DUPLICATE_DATABASE | sqlstate::UNIQUE_VIOLATION) => Ok(()),
                    _ => Err(e.into()),
                }
            }
        }
    }

    /// Opens one connection (no pool), within [`CONNECT_TIMEOUT`].
    ///
    /// # Errors
    /// [`Error::Database`] when the server cannot be reached.
    pub async fn connect_one(&self) -> Result<PgConnection> {
        let op = self.connect_op("ledger.Config.connect_one");
        crate::telemetry::traced(op, async {
            if let Some(hosts) = &self.hosts {
                let (conn, index) = hosts.connect(&self.options).await?;
                let server = hosts.endpoints()[index].apply_to(&self.options);
                record_server(&tracing::Span::current(), &server);
                return Ok(conn);
            }
            let connect = PgConnection::connect_with(&self.options);
            match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                Ok(conn) => Ok(conn?),
                Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
            }
        })
        .await
    }
}

/// Records the server a connection goes to: its host (or unix socket directory) and port.
fn record_server(span: &tracing::Span, options: &PgConnectOptions) {
    match options.get_socket() {
        Some(socket) => span.record("server.address", socket.display().to_string()),
        None => span.record("server.address", options.get_host()),
    };
    span.record("server.port", options.get_port());
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

/// A comma-separated list of URLs, where a URL's own host list has commas too: a comma inside a
/// URL's authority (between `://` and the first `/`, `?` or `#`) does not split, unless another
/// URL (`scheme://`) follows it.
fn split_urls(urls: &str) -> Vec<&str> {
    let is_url = |text: &str| {
        text.trim_start()
            .split_once("://")
            .is_some_and(|(scheme, _)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            })
    };
    let mut out = Vec::new();
    // Where the current URL's authority begins (just past its `://`), while inside it.
    let (mut start, mut authority) = (0, None::<usize>);
    for (at, ch) in urls.char_indices() {
        match ch {
            ':' if urls[at..].starts_with("://") => authority = Some(at + 3),
            '/' | '?' | '#' if authority.is_some_and(|from| at >= from) => authority = None,
            ',' if authority.is_none() || is_url(&urls[at + 1..]) => {
                out.push(&urls[start..at]);
                (start, authority) = (at + 1, None);
            }
            _ => {}
        }
    }
    out.push(&urls[start..]);
    out
}

/// A configuration error's message after the variable it came from.
fn prefixed(variable: &str, err: Error) -> Error {
    match err {
        Error::Config(message) => Error::Config(format!("{variable}: {message}")),
        other => other,
    }
}

/// Reads `.env` into the environment (never overriding it). A missing `.env` is normal; a
/// malformed one is the user's to see.
fn load_dotenv() -> Result<()> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(e) => Err(Error::Config(format!(".env: {e}"))),
    }
}

/// A process environment variable, an empty one counting as unset.
fn env_lookup(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// `DB_TRANSACTION_POOLER`: `1`/`true` or `0`/`false` (unset is off).
fn pooler_flag(lookup: &impl Fn(&str) -> Option<String>) -> Result<bool> {
    match lookup("DB_TRANSACTION_POOLER").as_deref() {
        None | Some("0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => Err(Error::Config(format!(
            "DB_TRANSACTION_POOLER must be 1 or 0, not {other:?}"
        ))),
    }
}

/// Double-quotes an SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn parse_pool_size(size: &str) -> Result<u32> {
    match size.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::Config(format!(
            "DB_MAX_CONNECTIONS must be a positive number, not {size:?}"
        ))),
    }
}

/// The password of the URL's `user:password@` part, percent-decoded.
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(
        percent_encoding::percent_decode_str(password)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// sqlx's URL errors come from the `url` crate, which never echoes its input; say so explicitly
/// rather than rely on it for anything else.
fn describe_parse_error(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Configuration(source) => source.to_string(),
        _ => "not a valid postgres URL".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn a_url_of_another_database_is_refused_by_its_scheme() {
        for (url, scheme) in [
            ("mysql://root@localhost/db", "mysql://"),
            ("localhost:5432/db", "none"),
        ] {
            let err = Config::from_url(url).unwrap_err().to_string();
            assert!(err.contains("not a PostgreSQL URL"), "{err}");
            assert!(err.contains(scheme), "{err}");
        }
        assert!(Config::from_url("postgresql://app@db.example/prod").is_ok());
    }

    #[test]
    fn the_url_is_one_libpq_reads_without_password_or_sqlx_parameters() {
        let config = Config::from_url("postgres://app:s3cret@db1:5433/bank?sslmode=require")
            .unwrap()
            .transaction_pooler();
        assert_eq!(config.url(), "postgres://app@db1:5433/bank?sslmode=require");
    }

    #[test]
    fn the_target_names_host_port_database_and_user_but_no_password() {
        let config = Config::from_url("postgres://app:s3cret@db.example:6543/prod").unwrap();
        let target = config.target();
        assert_eq!(target, "db.example:6543, database prod, user app");
        assert!(!target.contains("s3cret"));
    }

    #[test]
    fn replica_urls_are_split_sized_and_a_bad_entry_is_named_by_position_not_by_its_text() {
        assert!(
            Config::replicas_from_lookup(lookup(&[]))
                .unwrap()
                .is_empty()
        );
        let vars = [
            (
                "DATABASE_REPLICA_URLS",
                " postgres://a@r1/db ,, postgres://a@r2:6000/db,",
            ),
            ("DB_MAX_CONNECTIONS", "3"),
        ];
        let replicas = Config::replicas_from_lookup(lookup(&vars)).unwrap();
        let targets: Vec<_> = replicas.iter().map(Config::target).collect();
        assert_eq!(
            targets,
            [
                "r1:5432, database db, user a",
                "r2:6000, database db, user a"
            ]
        );
        assert!(replicas.iter().all(|r| r.max_connections == 3));

        let vars = [(
            "DATABASE_REPLICA_URLS",
            "postgres://a@r1/db,mysql://a:s3cret@r2/db",
        )];
        let err = Config::replicas_from_lookup(lookup(&vars))
            .unwrap_err()
            .to_string();
        assert!(err.contains("DATABASE_REPLICA_URLS (entry 2)"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn nothing_configured_is_none() {
        assert!(Config::from_lookup(lookup(&[])).unwrap().is_none());
    }

    #[test]
    fn database_url_wins_over_django_variables() {
        let vars = [
            ("DATABASE_URL", "postgres://app@db.example:6543/prod"),
            ("DB_NAME", "other"),
        ];
        let config = Config::from_lookup(lookup(&vars)).unwrap().unwrap();
        assert_eq!(config.source(), &Source::Url);
        assert_eq!(config.connect_options().get_database(), Some("prod"));
        assert_eq!(config.connect_options().get_port(), 6543);
    }

    #[test]
    fn django_variables_default_host_and_port() {
        let vars = [("DB_NAME", "mydb"), ("DB_USER", "postgres")];
        let config = Config::from_lookup(lookup(&vars)).unwrap().unwrap();
        let o = config.connect_options();
        assert_eq!(config.source(), &Source::DjangoVariables);
        assert_eq!(
            (
                o.get_host(),
                o.get_port(),
                o.get_username(),
                o.get_database()
            ),
            ("localhost", 5432, "postgres", Some("mydb"))
        );
    }

    #[test]
    fn django_host_path_is_a_unix_socket() {
        let vars = [("DB_NAME", "mydb"), ("DB_HOST", "/var/run/postgresql")];
        let config = Config::from_lookup(lookup(&vars)).unwrap().unwrap();
        assert_eq!(
            config.connect_options().get_socket(),
            Some(&PathBuf::from("/var/run/postgresql"))
        );
    }

    #[test]
    fn bad_port_and_pool_size_are_config_errors() {
        let bad_port = [("DB_NAME", "mydb"), ("DB_PORT", "fifty")];
        assert!(matches!(
            Config::from_lookup(lookup(&bad_port)),
            Err(Error::Config(msg)) if msg.contains("DB_PORT")
        ));
        let bad_size = [("DB_NAME", "mydb"), ("DB_MAX_CONNECTIONS", "0")];
        assert!(matches!(
            Config::from_lookup(lookup(&bad_size)),
            Err(Error::Config(msg)) if msg.contains("DB_MAX_CONNECTIONS")
        ));
    }

    #[test]
    fn password_never_appears_in_debug_display_or_url() {
        let from_url = Config::from_url("postgres://ana:hunter2-secret@db:5432/mydb").unwrap();
        let vars = [("DB_NAME", "mydb"), ("DB_PASSWORD", "hunter2-secret")];
        let from_vars = Config::from_lookup(lookup(&vars)).unwrap().unwrap();
        for config in [from_url, from_vars] {
            let shown = [
                format!("{config:?}"),
                format!("{config:#?}"),
                config.to_string(),
                config.url(),
            ];
            for text in shown {
                assert!(!text.contains("hunter2"), "password leaked: {text}");
            }
            assert!(format!("{config:?}").contains("<redacted>"));
        }
    }

    #[test]
    fn password_never_appears_in_url_errors() {
        for url in [
            "postgres://ana:hunter2-secret@db:notaport/mydb",
            "postgres://ana:hunter2-secret@[::1/mydb",
            "not a url hunter2-secret",
        ] {
            let err = Config::from_url(url).unwrap_err();
            let mut text = format!("{err} {err:?}");
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                text.push_str(&s.to_string());
                source = s.source();
            }
            assert!(matches!(err, Error::Config(_)), "{err:?}");
            assert!(!text.contains("hunter2"), "password leaked: {text}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("ledger"), "\"ledger\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn url_password_reads_only_the_authority_and_decodes_it() {
        assert_eq!(
            url_password("postgres://a:b%40c@h/db").as_deref(),
            Some("b@c")
        );
        assert_eq!(url_password("postgres://a@h/db"), None);
        assert_eq!(url_password("postgres://h/db?x=a:b@c"), None);
    }

    #[test]
    fn libpq_env_carries_the_password_for_child_tools_only() {
        let config = Config::from_url("postgres://ana:s3cret@db.example:6543/app").unwrap();
        let env = config.libpq_env();
        assert!(env.contains(&("PGHOST", "db.example".to_owned())));
        assert!(env.contains(&("PGPORT", "6543".to_owned())));
        assert!(env.contains(&("PGDATABASE", "app".to_owned())));
        assert!(env.contains(&("PGPASSWORD", "s3cret".to_owned())));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn a_host_list_reads_back_as_the_url_and_environment_libpq_takes() {
        let config = Config::from_url(
            "postgres://app:s3cret@db-1:5433,db-2,[::1]:7000/bank?sslmode=disable&target_session_attrs=read-write&connect_timeout=3",
        )
        .unwrap();
        let hosts = config.hosts().unwrap();
        assert_eq!(hosts.endpoints().len(), 3);
        assert_eq!(config.connect_options().get_host(), "db-1");
        assert_eq!(config.connect_options().get_port(), 5433);
        let url = config.url();
        assert!(
            url.starts_with("postgres://app@db-1:5433,db-2:5432,[::1]:7000/bank?"),
            "{url}"
        );
        assert!(url.contains("sslmode=disable"), "{url}");
        assert!(url.contains("target_session_attrs=read-write"), "{url}");
        assert!(url.contains("connect_timeout=3"), "{url}");
        assert!(!url.contains("s3cret") && !format!("{config:?}").contains("s3cret"));
        assert_eq!(
            config.target(),
            "db-1:5433,db-2:5432,[::1]:7000 (read-write), database bank, user app"
        );
        let env = config.libpq_env();
        let get = |key: &str| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        assert_eq!(get("PGHOST"), Some("db-1,db-2,::1"));
        assert_eq!(get("PGPORT"), Some("5433,5432,7000"));
        assert_eq!(get("PGTARGETSESSIONATTRS"), Some("read-write"));
        assert_eq!(get("PGCONNECT_TIMEOUT"), Some("3"));
        // The URL reads back to the same list.
        let again = Config::from_url(&url).unwrap();
        assert_eq!(again.hosts(), config.hosts());
    }

    #[test]
    fn the_seeds_variables_take_host_lists_and_the_session_attributes() {
        let config = Config::from_lookup(lookup(&[
            ("DB_NAME", "bank"),
            ("DB_HOST", "db-1,db-2"),
            ("DB_PORT", "6432"),
            ("DB_TARGET_SESSION_ATTRS", "primary"),
            ("DB_LOAD_BALANCE_HOSTS", "random"),
        ]))
        .unwrap()
        .unwrap();
        let hosts = config.hosts().unwrap();
        assert_eq!(
            hosts.endpoints(),
            [Endpoint::tcp("db-1", 6432), Endpoint::tcp("db-2", 6432)]
        );
        assert_eq!(hosts.target_session_attrs(), TargetSessionAttrs::Primary);
        assert_eq!(hosts.load_balance_hosts(), LoadBalanceHosts::Random);
        let err = Config::from_lookup(lookup(&[
            ("DB_NAME", "bank"),
            ("DB_HOST", "db-1,db-2"),
            ("DB_TARGET_SESSION_ATTRS", "writer"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration: DB_TARGET_SESSION_ATTRS: invalid target_session_attrs value: \"writer\" \
             (any, read-write, read-only, primary, standby or prefer-standby)"
        );
        // One host, nothing to check: no list.
        let plain = Config::from_lookup(lookup(&[("DB_NAME", "bank"), ("DB_HOST", "db-1")]))
            .unwrap()
            .unwrap();
        assert!(plain.hosts().is_none());
    }

    #[test]
    fn replica_urls_split_between_urls_never_inside_a_host_list() {
        assert_eq!(
            split_urls("postgres://a@h1,h2/db, postgresql://b@h3/db,postgres://c@h4:1,h5:2/db"),
            [
                "postgres://a@h1,h2/db",
                " postgresql://b@h3/db",
                "postgres://c@h4:1,h5:2/db"
            ]
        );
    }

    #[test]
    fn a_url_without_a_host_is_refused_with_or_without_a_list() {
        for url in [
            "postgres://app@/bank?target_session_attrs=read-write",
            "postgres://app@:6543/bank?target_session_attrs=read-write",
        ] {
            let err = Config::from_url(url).unwrap_err().to_string();
            assert!(err.contains("host 1 of 1 is empty"), "{url}: {err}");
        }
    }

    #[test]
    fn each_host_is_a_plain_config_of_one_server() {
        let config =
            Config::from_url("postgres://app@db-1:1,db-2:2/bank?target_session_attrs=primary")
                .unwrap()
                .max_connections(7);
        let each = config.each_host();
        let targets: Vec<String> = each.iter().map(Config::target).collect();
        assert_eq!(
            targets,
            [
                "db-1:1, database bank, user app",
                "db-2:2, database bank, user app"
            ]
        );
        assert!(
            each.iter()
                .all(|c| c.hosts().is_none() && c.pool_size() == 7)
        );
    }
}
