//! Reading a [`Config`]: the environment (`DATABASE_URL`, the seed's `DB_*` variables, `.env`),
//! a URL, the replicas' list.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::net::hosts::{Endpoint, Hosts, LoadBalanceHosts, TargetSessionAttrs};
use crate::{Error, Result};

use super::{CONNECT_TIMEOUT, Config, NOTHING_CONFIGURED, Source};

impl Config {
    /// [`Config::from_lookup`] on the process environment, then `.env` (the environment wins).
    /// `Ok(None)` means nothing is configured.
    ///
    /// `.env` is read, never loaded: the process environment is the same afterwards (a library
    /// must not call `std::env::set_var` inside its caller's threads).
    ///
    /// # Errors
    /// [`Error::Config`] when a variable is set but unusable (a malformed URL, a port that is not
    /// a number), or `.env` is malformed.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_env_at(std::env::current_dir().ok().as_deref())
    }

    /// [`Config::from_env`] with the `.env` of `dir` (or its nearest parent that has one).
    pub(super) fn from_env_at(dir: Option<&Path>) -> Result<Option<Self>> {
        let dotenv = read_dotenv(dir)?;
        Self::from_lookup(|key| env_lookup(key, &dotenv))
    }

    /// Builds a config from variables found by `lookup`: `DATABASE_URL` first, else `DB_NAME`
    /// with the other `DB_*` variables. Either way `DB_MAX_CONNECTIONS` sets the pool size,
    /// `DB_TRANSACTION_POOLER` the pooler profile, and the timeouts ([`Timeouts`](super::Timeouts))
    /// come from `DB_ACQUIRE_TIMEOUT`, `DB_IDLE_TIMEOUT`, `DB_MAX_LIFETIME`,
    /// `DB_STATEMENT_TIMEOUT`, `DB_LOCK_TIMEOUT` and `DB_IDLE_IN_TRANSACTION_SESSION_TIMEOUT`
    /// (`500ms`, `5s`, `2min`; `0` for none), over the URL's `options=-c lock_timeout=5s`, over
    /// the defaults. A URL's `application_name` is kept (otherwise it is `ledger`).
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
        let mut timeouts = config.timeouts();
        for (variable, _, _) in super::timeouts::FIELDS {
            if let Some(value) = lookup(variable) {
                timeouts.set(variable, &value)?;
            }
        }
        // A password in `.env`'s PGPASSWORD (sqlx reads only the process environment's).
        let config = match lookup("PGPASSWORD") {
            Some(password) if !config.has_password() => config.with_password(password),
            _ => config,
        };
        Ok(Some(config.with_timeouts(timeouts)))
    }

    /// [`Config::from_env`] with `url` in place of `DATABASE_URL` (a command line's
    /// `--database-url`): every other setting (`DB_MAX_CONNECTIONS`, `DB_TRANSACTION_POOLER`)
    /// still comes from the environment or `.env`, exactly as it would beside `DATABASE_URL`.
    /// An empty `url` counts as unset.
    ///
    /// # Errors
    /// As [`Config::from_env`]; a malformed `url`'s message names `DATABASE_URL`.
    pub fn from_env_with_url(url: &str) -> Result<Option<Self>> {
        let dotenv = read_dotenv(std::env::current_dir().ok().as_deref())?;
        Self::from_lookup(|key| {
            if key == "DATABASE_URL" {
                Some(url.to_owned()).filter(|url| !url.is_empty())
            } else {
                env_lookup(key, &dotenv)
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
        let dotenv = read_dotenv(std::env::current_dir().ok().as_deref())?;
        Self::replicas_from_lookup(|key| env_lookup(key, &dotenv))
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
        // The server's timeouts the URL sets in `options` are the config's, so that the
        // defaults sent after them never override them.
        let mut timeouts = super::Timeouts::default();
        for (name, value) in super::timeouts::options_settings(options.get_options().unwrap_or(""))
        {
            if super::timeouts::FIELDS
                .iter()
                .any(|(_, setting, _)| *setting == Some(name.as_str()))
            {
                timeouts
                    .set(&name, &value)
                    .map_err(|e| prefixed("DATABASE_URL options", e))?;
            }
        }
        let config = Self::new(options, password, Source::Url).with_timeouts(timeouts);
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
}

/// A comma-separated list of URLs, where a URL's own host list has commas too: a comma inside a
/// URL's authority (between `://` and the first `/`, `?` or `#`) does not split, unless another
/// URL (`scheme://`) follows it.
pub(super) fn split_urls(urls: &str) -> Vec<&str> {
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
pub(super) fn prefixed(variable: &str, err: Error) -> Error {
    match err {
        Error::Config(message) => Error::Config(format!("{variable}: {message}")),
        other => other,
    }
}

/// The variables of the `.env` in `dir` or its nearest parent that has one (as `dotenvy` finds
/// it), read without touching the process environment. A missing `.env` is normal; a malformed
/// one is the user's to see.
pub(super) fn read_dotenv(dir: Option<&Path>) -> Result<BTreeMap<String, String>> {
    let Some(path) = dir.and_then(|dir| {
        dir.ancestors()
            .map(|d| d.join(".env"))
            .find(|path| path.is_file())
    }) else {
        return Ok(BTreeMap::new());
    };
    let vars = dotenvy::from_path_iter(&path).map_err(|e| Error::Config(format!(".env: {e}")))?;
    vars.map(|var| var.map_err(|e| Error::Config(format!(".env: {e}"))))
        .collect()
}

/// A variable of the process environment, else of `.env`; an empty one counts as unset.
pub(super) fn env_lookup(key: &str, dotenv: &BTreeMap<String, String>) -> Option<String> {
    std::env::var(key)
        .ok()
        .or_else(|| dotenv.get(key).cloned())
        .filter(|v| !v.is_empty())
}

/// `DB_TRANSACTION_POOLER`: `1`/`true` or `0`/`false` (unset is off).
pub(super) fn pooler_flag(lookup: &impl Fn(&str) -> Option<String>) -> Result<bool> {
    match lookup("DB_TRANSACTION_POOLER").as_deref() {
        None | Some("0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => Err(Error::Config(format!(
            "DB_TRANSACTION_POOLER must be 1 or 0, not {other:?}"
        ))),
    }
}

pub(super) fn parse_pool_size(size: &str) -> Result<u32> {
    match size.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::Config(format!(
            "DB_MAX_CONNECTIONS must be a positive number, not {size:?}"
        ))),
    }
}

/// The password of the URL's `user:password@` part, percent-decoded.
pub(super) fn url_password(url: &str) -> Option<String> {
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
pub(super) fn describe_parse_error(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Configuration(source) => source.to_string(),
        _ => "not a valid postgres URL".to_owned(),
    }
}
