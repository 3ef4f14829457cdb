//! Several servers behind one configuration, read as libpq reads them.
//!
//! Django reaches a primary that may move by handing libpq a list
//! (`'HOST': 'h1,h2,h3'`, `OPTIONS: {'target_session_attrs': 'read-write'}`); sqlx takes one
//! host. [`Config`](crate::Config) accepts libpq's forms and walks the list itself:
//!
//! - a URL with several hosts, each with its own port or none (5432):
//!   `postgres://u@h1:5432,h2:5433,[::1]:5434/db?target_session_attrs=read-write`;
//! - the seed's variables with lists: `DB_HOST=h1,h2,h3` and `DB_PORT=5432,5433,5434` (one port
//!   for every host, or one per host), with `DB_TARGET_SESSION_ATTRS` and
//!   `DB_LOAD_BALANCE_HOSTS`;
//! - `target_session_attrs` = `any` (the default), `read-write`, `read-only`, `primary`,
//!   `standby` or `prefer-standby`, with libpq's meaning ([`TargetSessionAttrs`]);
//! - `load_balance_hosts` = `disable` (the default: the hosts in their order) or `random`
//!   (libpq 16's: a shuffled order for each walk);
//! - `connect_timeout` (seconds, libpq's), which bounds each host, not the whole walk.
//!
//! Each new connection tries the hosts in order: it connects (within the per-host timeout), asks
//! the server `select pg_is_in_recovery(), current_setting('transaction_read_only')` (one round
//! trip, only when `target_session_attrs` is not `any`), and moves on to the next host when the
//! session is not the one asked for. `prefer-standby` walks twice, as libpq does: standbys first,
//! then any server.
//!
//! **Where ledger differs from libpq**, on purpose (each is a test against `psql`): the whole
//! list is checked before any server is tried, and a bad entry is one [`Error::Config`] that
//! names its position:
//! - an empty entry (`h1,,h3`, or a trailing comma): libpq reads it as its default unix socket,
//!   which is rarely the server a list of hosts meant;
//! - a port that is not a number: libpq says so only when its walk reaches that host, after
//!   trying the ones before it;
//! - a port out of range (`99999`): libpq counts that host as failed and tries the next, so a
//!   typo quietly takes one server out of the list;
//! - `load_balance_hosts` is libpq 16's; a psql 15 refuses the parameter, ledger reads it.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::{Error, Result, Transient};

/// The port of a host given without one.
pub const DEFAULT_PORT: u16 = 5432;

/// One server of a host list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// A host name or IP address, and a TCP port.
    Tcp {
        /// The name or address (an IPv6 address without its brackets).
        host: String,
        /// The port.
        port: u16,
    },
    /// A unix socket: the directory that holds `.s.PGSQL.<port>`.
    Socket {
        /// The socket's directory.
        dir: PathBuf,
        /// The port in the socket's name.
        port: u16,
    },
}

impl Endpoint {
    /// A host name or address and its port.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Endpoint::Tcp {
            host: host.into(),
            port,
        }
    }

    /// A unix socket's directory and port.
    pub fn socket(dir: impl Into<PathBuf>, port: u16) -> Self {
        Endpoint::Socket {
            dir: dir.into(),
            port,
        }
    }

    /// `host` is a directory (it starts with `/`) or a name or address.
    pub(crate) fn new(host: &str, port: u16) -> Self {
        if host.starts_with('/') {
            Endpoint::Socket {
                dir: PathBuf::from(host),
                port,
            }
        } else {
            Endpoint::Tcp {
                host: host.to_owned(),
                port,
            }
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            Endpoint::Tcp { port, .. } | Endpoint::Socket { port, .. } => *port,
        }
    }

    /// The host as libpq's `host` takes it: a name, an address, or a socket directory.
    pub fn host(&self) -> String {
        match self {
            Endpoint::Tcp { host, .. } => host.clone(),
            Endpoint::Socket { dir, .. } => dir.display().to_string(),
        }
    }

    /// `base` pointed at this server.
    pub fn apply_to(&self, base: &PgConnectOptions) -> PgConnectOptions {
        match self {
            Endpoint::Tcp { host, port } => base.clone().host(host).port(*port),
            Endpoint::Socket { dir, port } => base.clone().socket(dir).port(*port),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Socket { dir, port } => write!(f, "socket {}/.s.PGSQL.{port}", dir.display()),
        }
    }
}

/// Which session a connection must have, libpq's `target_session_attrs`.
///
/// | value | a server is taken when | where a Django team sets it |
/// | :--- | :--- | :--- |
/// | `any` | it answers | the default |
/// | `read-write` | `transaction_read_only` is `off` | `OPTIONS: {'target_session_attrs': 'read-write'}`: the writer |
/// | `read-only` | `transaction_read_only` is `on` | |
/// | `primary` | it is not in recovery (`pg_is_in_recovery()`) | |
/// | `standby` | it is in recovery | a reporting replica |
/// | `prefer-standby` | it is in recovery; if no server is, any that answers | |
///
/// `read-write` and `primary` differ only for a primary whose `default_transaction_read_only`
/// is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TargetSessionAttrs {
    /// Any server that answers.
    #[default]
    Any,
    /// A session that may write.
    ReadWrite,
    /// A session that may not write.
    ReadOnly,
    /// A server not in recovery.
    Primary,
    /// A server in recovery.
    Standby,
    /// A server in recovery, else any.
    PreferStandby,
}

impl TargetSessionAttrs {
    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        }
    }

    /// Whether `session` is taken on the given pass of the walk (`prefer-standby` makes a second
    /// pass that takes any server).
    fn accepts(self, session: Session, second_pass: bool) -> bool {
        match self {
            TargetSessionAttrs::Any => true,
            TargetSessionAttrs::ReadWrite => !session.read_only,
            TargetSessionAttrs::ReadOnly => session.read_only,
            TargetSessionAttrs::Primary => !session.in_recovery,
            TargetSessionAttrs::Standby => session.in_recovery,
            TargetSessionAttrs::PreferStandby => second_pass || session.in_recovery,
        }
    }

    /// Whether a connection with this session is kept as it is; otherwise a walk of the list
    /// decides (for `prefer-standby`, a primary is kept only when no standby answers).
    pub fn takes(self, session: Session) -> bool {
        self.accepts(session, false)
    }

    /// Whether a session must be asked what it is before it is taken.
    pub(crate) fn needs_check(self) -> bool {
        self != TargetSessionAttrs::Any
    }
}

impl FromStr for TargetSessionAttrs {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        Ok(match value {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            "primary" => TargetSessionAttrs::Primary,
            "standby" => TargetSessionAttrs::Standby,
            "prefer-standby" => TargetSessionAttrs::PreferStandby,
            other => {
                return Err(Error::Config(format!(
                    "invalid target_session_attrs value: {other:?} (any, read-write, read-only, \
                     primary, standby or prefer-standby)"
                )));
            }
        })
    }
}

impl fmt::Display for TargetSessionAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The order a walk tries the hosts in, libpq 16's `load_balance_hosts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LoadBalanceHosts {
    /// In the order given.
    #[default]
    Disable,
    /// In a random order, drawn again for each walk.
    Random,
}

impl FromStr for LoadBalanceHosts {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        match value {
            "disable" => Ok(LoadBalanceHosts::Disable),
            "random" => Ok(LoadBalanceHosts::Random),
            other => Err(Error::Config(format!(
                "invalid load_balance_hosts value: {other:?} (disable or random)"
            ))),
        }
    }
}

/// What a server says of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// `pg_is_in_recovery()`: a standby (or a server still replaying its log).
    pub in_recovery: bool,
    /// `transaction_read_only`: writes would fail with SQLSTATE 25006.
    pub read_only: bool,
}

impl Session {
    /// Asks the server (one round trip).
    ///
    /// # Errors
    /// [`Error::Transient`] when the connection fails.
    pub async fn of(conn: &mut PgConnection) -> Result<Self> {
        let row = sqlx::query!(
            r#"select pg_is_in_recovery() as "in_recovery!",
                      current_setting('transaction_read_only') = 'on' as "read_only!""#
        )
        .fetch_one(conn)
        .await?;
        Ok(Session {
            in_recovery: row.in_recovery,
            read_only: row.read_only,
        })
    }

    fn describe(self) -> &'static str {
        match (self.in_recovery, self.read_only) {
            (true, _) => "a standby",
            (false, true) => "a primary whose sessions are read-only",
            (false, false) => "a primary",
        }
    }
}

/// A list of servers, the session wanted, and the order to try them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    endpoints: Vec<Endpoint>,
    target: TargetSessionAttrs,
    load_balance: LoadBalanceHosts,
    connect_timeout: Duration,
}

/// A URL split into its host list and a one-host URL sqlx can parse for everything else.
pub(crate) struct SplitUrl {
    /// The URL with only the first host, and without the parameters that [`Hosts`] reads.
    pub(crate) first: String,
    pub(crate) hosts: Hosts,
}

impl Hosts {
    /// A list of hosts, each tried within `connect_timeout`.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty list.
    pub fn new(
        endpoints: Vec<Endpoint>,
        target: TargetSessionAttrs,
        load_balance: LoadBalanceHosts,
        connect_timeout: Duration,
    ) -> Result<Self> {
        if endpoints.is_empty() {
            return Err(Error::Config("the host list is empty".to_owned()));
        }
        Ok(Self {
            endpoints,
            target,
            load_balance,
            connect_timeout,
        })
    }

    /// The same list asking for another session: for example the writer's list
    /// (`read-write`) read as candidate replicas.
    pub fn with_target_session_attrs(mut self, target: TargetSessionAttrs) -> Self {
        self.target = target;
        self
    }

    /// The servers, in the order given.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The session a connection must have.
    pub fn target_session_attrs(&self) -> TargetSessionAttrs {
        self.target
    }

    /// The order of a walk.
    pub fn load_balance_hosts(&self) -> LoadBalanceHosts {
        self.load_balance
    }

    /// The time each host gets to answer.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// libpq's `connect_timeout`: whole seconds, 0 for none.
    pub(crate) fn connect_timeout_secs(&self) -> u64 {
        if self.connect_timeout == Duration::MAX {
            0
        } else {
            self.connect_timeout.as_secs()
        }
    }

    /// The seed's variables: `DB_HOST` a comma-separated list (a path is a socket directory),
    /// `DB_PORT` one port for all or one per host.
    pub(crate) fn from_variables(hosts: &str, ports: Option<&str>) -> Result<Vec<Endpoint>> {
        let names: Vec<&str> = hosts.split(',').collect();
        let ports: Vec<&str> = ports.map_or_else(Vec::new, |p| p.split(',').collect());
        if ports.len() > 1 && ports.len() != names.len() {
            return Err(Error::Config(format!(
                "DB_PORT: could not match {} port numbers to {} hosts",
                ports.len(),
                names.len()
            )));
        }
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let name = name.trim();
                if name.is_empty() {
                    return Err(empty_host("DB_HOST", i, names.len()));
                }
                let port = match ports.get(if ports.len() == 1 { 0 } else { i }) {
                    Some(port) => parse_port("DB_PORT", port.trim(), i, ports.len())?,
                    None => DEFAULT_PORT,
                };
                Ok(Endpoint::new(name, port))
            })
            .collect()
    }

    /// Splits `postgres://user:pw@h1:p1,h2:p2/db?...`. Returns `None` for a URL that names one
    /// host and none of `target_session_attrs`, `load_balance_hosts` and `connect_timeout`,
    /// which sqlx reads as it is.
    pub(crate) fn split_url(url: &str, default_timeout: Duration) -> Result<Option<SplitUrl>> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(None);
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (userinfo, hostlist) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        let (path, query) = match tail.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (tail, None),
        };
        let mut target = TargetSessionAttrs::Any;
        let mut load_balance = LoadBalanceHosts::Disable;
        let mut connect_timeout = default_timeout;
        let mut kept = Vec::new();
        let mut ours = false;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value).decode_utf8_lossy();
            match key {
                "target_session_attrs" => target = value.parse()?,
                "load_balance_hosts" => load_balance = value.parse()?,
                "connect_timeout" => connect_timeout = parse_timeout(&value)?,
                _ => {
                    kept.push(pair);
                    continue;
                }
            }
            ours = true;
        }
        let entries = split_hosts(hostlist);
        if entries.len() == 1 && !ours {
            return Ok(None);
        }
        let endpoints = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| parse_entry(entry, i, entries.len()))
            .collect::<Result<Vec<_>>>()?;
        let first = format!(
            "{scheme}://{userinfo}{}{path}{}{}",
            entries[0],
            if kept.is_empty() { "" } else { "?" },
            kept.join("&")
        );
        Ok(Some(SplitUrl {
            first,
            hosts: Hosts::new(endpoints, target, load_balance, connect_timeout)?,
        }))
    }

    /// The order of one walk: as given, or shuffled (`random`).
    fn order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.endpoints.len()).collect();
        if self.load_balance == LoadBalanceHosts::Random {
            // Fisher-Yates with the standard library's per-process random keys: no generator
            // crate for one shuffle per connection.
            let state = RandomState::new();
            for i in (1..order.len()).rev() {
                let j = (state.hash_one(i) % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
        }
        order
    }

    /// Walks the list, as libpq does, and returns the first connection whose session is the one
    /// asked for, with the index of its server.
    ///
    /// # Errors
    /// [`Error::Transient`]: [`Transient::ConnectionLost`] when no server answered,
    /// [`Transient::NoMatchingServer`] when some answered but none had the session asked for
    /// (during a failover, before a standby is promoted). Its source names every server tried
    /// and what it said.
    pub(crate) async fn connect(&self, base: &PgConnectOptions) -> Result<(PgConnection, usize)> {
        let order = self.order();
        let passes: &[bool] = if self.target == TargetSessionAttrs::PreferStandby {
            &[false, true]
        } else {
            &[false]
        };
        let mut tried = Vec::new();
        let mut answered = false;
        for &second_pass in passes {
            for &i in &order {
                let endpoint = &self.endpoints[i];
                let options = endpoint.apply_to(base);
                let mut conn = match tokio::time::timeout(
                    self.connect_timeout,
                    PgConnection::connect_with(&options),
                )
                .await
                {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(err)) => {
                        let why = err.to_string();
                        let err = Error::from(err);
                        // libpq too stops at a server that answered and refused (a password, a
                        // missing database): every server of the list would say the same.
                        if !err.is_transient() {
                            return Err(err);
                        }
                        tried.push((endpoint.clone(), why));
                        continue;
                    }
                    Err(_) => {
                        tried.push((endpoint.clone(), "timed out".to_owned()));
                        continue;
                    }
                };
                if !self.target.needs_check() {
                    return Ok((conn, i));
                }
                let session = match Session::of(&mut conn).await {
                    Ok(session) => session,
                    Err(err) => {
                        let why = std::error::Error::source(&err)
                            .map_or_else(|| err.to_string(), ToString::to_string);
                        tried.push((endpoint.clone(), why));
                        continue;
                    }
                };
                answered = true;
                if self.target.accepts(session, second_pass) {
                    return Ok((conn, i));
                }
                tried.push((endpoint.clone(), session.describe().to_owned()));
                // Closing politely is one more round trip on a server we are leaving anyway.
                let _ = conn.close().await;
            }
        }
        let exhausted = Exhausted {
            target: self.target,
            tried,
        };
        let (kind, source) = if answered {
            (
                Transient::NoMatchingServer,
                sqlx::Error::AnyDriverError(Box::new(exhausted)),
            )
        } else {
            (
                Transient::ConnectionLost,
                sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    exhausted,
                )),
            )
        };
        Err(Error::Transient { kind, source })
    }
}

/// How often a multi-host pool's follower asks its server whether it is still the one asked for.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// Keeps `pool` pointed at the right server of `hosts`, until the pool is closed.
///
/// It holds `watch`, one connection of its own to the server the pool dials, and asks it
/// [`Session::of`] every [`FOLLOW_EVERY`] (one simple query: no lock, no snapshot held between
/// asks). When the server is gone (killed, restarted, demoted) or no longer has the session asked
/// for, it walks the list, again every [`FOLLOW_EVERY`] until some server has it (a standby
/// being promoted), and points the pool's new connections there
/// ([`PgPool::set_connect_options`](sqlx::Pool::set_connect_options)). A caller waiting for a
/// connection meanwhile is served from the new server as soon as it is found, within the pool's
/// acquire timeout; connections already open to the old server fail on their next statement
/// with a [`Transient`] error and are not pooled again.
pub(crate) async fn follow(
    pool: sqlx::PgPool,
    hosts: std::sync::Arc<Hosts>,
    base: PgConnectOptions,
    mut watch: PgConnection,
    mut current: usize,
) {
    let closed = pool.close_event();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            () = &mut closed => break,
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        let still = matches!(
            Session::of(&mut watch).await,
            Ok(session) if hosts.target.takes(session)
        );
        if still {
            continue;
        }
        tracing::warn!(server = %hosts.endpoints[current], "the pool's server is gone or changed; walking the host list");
        let found = loop {
            match hosts.connect(&base).await {
                Ok(found) => break found,
                Err(err) => {
                    tracing::debug!(error = %err, "no server has the session yet");
                    tokio::select! {
                        () = &mut closed => return,
                        () = tokio::time::sleep(FOLLOW_EVERY) => {}
                    }
                }
            }
        };
        (watch, current) = found;
        pool.set_connect_options(hosts.endpoints[current].apply_to(&base));
        tracing::warn!(server = %hosts.endpoints[current], "the pool now opens its connections here");
    }
    let _ = watch.close().await;
}

/// Every server a walk tried, and why it was not taken.
#[derive(Debug)]
pub struct Exhausted {
    target: TargetSessionAttrs,
    tried: Vec<(Endpoint, String)>,
}

impl Exhausted {
    /// The walk's record in `err`, if `err` ended a walk of a host list.
    pub fn of(err: &Error) -> Option<&Exhausted> {
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            if let Some(exhausted) = cause.downcast_ref::<Exhausted>() {
                return Some(exhausted);
            }
            let inner = cause
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref);
            if let Some(exhausted) = inner.and_then(|e| e.downcast_ref::<Exhausted>()) {
                return Some(exhausted);
            }
            source = cause.source();
        }
        None
    }

    /// Every server tried, in the order tried (one that a second pass tried again appears twice),
    /// with what it said.
    pub fn attempts(&self) -> impl Iterator<Item = (&Endpoint, &str)> {
        self.tried
            .iter()
            .map(|(endpoint, why)| (endpoint, why.as_str()))
    }
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} server(s) tried for a {} session: ",
            self.tried.len(),
            self.target
        )?;
        for (n, (endpoint, why)) in self.tried.iter().enumerate() {
            let sep = if n == 0 { "" } else { "; " };
            write!(f, "{sep}{endpoint}: {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Exhausted {}

/// The entries of a URL's host list: `h1:5432`, `[::1]:5433`, `h3`. A comma inside brackets
/// does not split.
fn split_hosts(hostlist: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let (mut start, mut depth) = (0, 0);
    for (i, ch) in hostlist.char_indices() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                entries.push(&hostlist[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(&hostlist[start..]);
    entries
}

/// One entry of a URL's host list.
fn parse_entry(entry: &str, i: usize, of: usize) -> Result<Endpoint> {
    let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err(Error::Config(format!(
                "DATABASE_URL: host {} of {of} opens '[' without closing it",
                i + 1
            )));
        };
        (host, after.strip_prefix(':'))
    } else {
        match entry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (entry, None),
        }
    };
    let host = percent_decode_str(host).decode_utf8_lossy();
    if host.is_empty() {
        return Err(empty_host("DATABASE_URL", i, of));
    }
    let port = match port {
        Some(port) => parse_port("DATABASE_URL", port, i, of)?,
        None => DEFAULT_PORT,
    };
    Ok(Endpoint::new(&host, port))
}

fn parse_port(what: &str, port: &str, i: usize, of: usize) -> Result<u16> {
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(Error::Config(format!(
            "{what}: port {} of {of} is not a port number (1 to 65535)",
            i + 1
        ))),
    }
}

fn parse_timeout(value: &str) -> Result<Duration> {
    match value.trim().parse::<u64>() {
        // libpq: zero (or a negative number) waits forever; anything under 2 s is 2 s.
        Ok(0) => Ok(Duration::MAX),
        Ok(seconds) => Ok(Duration::from_secs(seconds.max(2))),
        Err(_) => Err(Error::Config(format!(
            "invalid integer value {value:?} for connection option \"connect_timeout\""
        ))),
    }
}

fn empty_host(what: &str, i: usize, of: usize) -> Error {
    Error::Config(format!(
        "{what}: host {} of {of} is empty (libpq would read it as its default unix socket; name \
         the server)",
        i + 1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn split(url: &str) -> Hosts {
        Hosts::split_url(url, T).unwrap().unwrap().hosts
    }

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn a_one_host_url_without_our_parameters_is_left_to_sqlx() {
        assert!(
            Hosts::split_url("postgres://u:p@h:5433/db?sslmode=require", T)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn each_host_has_its_own_port_or_the_default() {
        let hosts = split("postgres://u:p%40ss@h1:5433,h2,[::1]:7000/db?sslmode=disable");
        assert_eq!(
            hosts.endpoints(),
            [tcp("h1", 5433), tcp("h2", 5432), tcp("::1", 7000)]
        );
        assert_eq!(hosts.endpoints()[2].to_string(), "[::1]:7000");
        assert_eq!(hosts.target_session_attrs(), TargetSessionAttrs::Any);
    }

    #[test]
    fn the_first_url_keeps_everything_but_the_other_hosts_and_our_parameters() {
        let split = Hosts::split_url(
            "postgresql://u:p@h1:1,h2:2/db?sslmode=disable&target_session_attrs=read-write&connect_timeout=3&application_name=x",
            T,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            split.first,
            "postgresql://u:p@h1:1/db?sslmode=disable&application_name=x"
        );
        assert_eq!(
            split.hosts.target_session_attrs(),
            TargetSessionAttrs::ReadWrite
        );
        assert_eq!(split.hosts.connect_timeout(), Duration::from_secs(3));
    }

    #[test]
    fn a_single_host_with_a_session_to_check_is_not_plain() {
        let hosts = split("postgres://u@h/db?target_session_attrs=standby");
        assert_eq!(hosts.endpoints(), [tcp("h", 5432)]);
        assert!(hosts.target_session_attrs().needs_check());
    }

    #[test]
    fn a_percent_encoded_path_is_a_socket_directory() {
        let hosts = split("postgres://u@%2Ftmp%2Fpg:5444,h2/db");
        assert_eq!(
            hosts.endpoints()[0],
            Endpoint::Socket {
                dir: PathBuf::from("/tmp/pg"),
                port: 5444
            }
        );
    }

    #[test]
    fn malformed_lists_are_config_errors_that_name_the_position() {
        let cases = [
            ("postgres://u@h1,,h3/db", "host 2 of 3 is empty"),
            ("postgres://u@h1,/db", "host 2 of 2 is empty"),
            (
                "postgres://u@h1:x,h2/db",
                "port 1 of 2 is not a port number",
            ),
            (
                "postgres://u@h1,h2:99999/db",
                "port 2 of 2 is not a port number",
            ),
            ("postgres://u@h1,[::1/db", "host 2 of 2 opens '['"),
            (
                "postgres://u@h1,h2/db?target_session_attrs=writer",
                "invalid target_session_attrs value: \"writer\"",
            ),
            (
                "postgres://u@h1,h2/db?load_balance_hosts=roundrobin",
                "invalid load_balance_hosts value",
            ),
            (
                "postgres://u@h1,h2/db?connect_timeout=soon",
                "invalid integer value \"soon\"",
            ),
        ];
        for (url, expected) in cases {
            match Hosts::split_url(url, T) {
                Err(Error::Config(message)) => {
                    assert!(message.contains(expected), "{url}: {message}")
                }
                Err(other) => panic!("{url}: {other:?}"),
                Ok(_) => panic!("{url}: accepted"),
            }
        }
    }

    #[test]
    fn the_seeds_variables_take_one_port_for_all_or_one_each() {
        assert_eq!(
            Hosts::from_variables("h1,h2", Some("6000")).unwrap(),
            [tcp("h1", 6000), tcp("h2", 6000)]
        );
        assert_eq!(
            Hosts::from_variables("h1, h2,/run/pg", Some("1,2,3")).unwrap()[2],
            Endpoint::Socket {
                dir: PathBuf::from("/run/pg"),
                port: 3
            }
        );
        assert_eq!(
            Hosts::from_variables("h1,h2", None).unwrap(),
            [tcp("h1", 5432), tcp("h2", 5432)]
        );
        let cases = [
            (
                "h1,h2",
                Some("1,2,3"),
                "could not match 3 port numbers to 2 hosts",
            ),
            ("h1,,h3", None, "DB_HOST: host 2 of 3 is empty"),
            (
                "h1,h2",
                Some("1,x"),
                "DB_PORT: port 2 of 2 is not a port number",
            ),
        ];
        for (hosts, ports, expected) in cases {
            let err = Hosts::from_variables(hosts, ports).unwrap_err();
            assert!(err.to_string().contains(expected), "{hosts}: {err}");
        }
    }

    #[test]
    fn prefer_standby_takes_a_primary_only_on_its_second_pass() {
        let primary = Session {
            in_recovery: false,
            read_only: false,
        };
        let standby = Session {
            in_recovery: true,
            read_only: true,
        };
        let wants = TargetSessionAttrs::PreferStandby;
        assert!(!wants.accepts(primary, false) && wants.accepts(primary, true));
        assert!(wants.accepts(standby, false));
        assert!(TargetSessionAttrs::ReadWrite.accepts(primary, false));
        assert!(!TargetSessionAttrs::ReadWrite.accepts(standby, false));
        assert!(TargetSessionAttrs::Standby.accepts(standby, false));
        let read_only_primary = Session {
            in_recovery: false,
            read_only: true,
        };
        assert!(TargetSessionAttrs::Primary.accepts(read_only_primary, false));
        assert!(!TargetSessionAttrs::ReadWrite.accepts(read_only_primary, false));
    }

    #[test]
    fn random_order_is_a_permutation_that_varies() {
        let hosts = Hosts::new(
            (1..=5).map(|p| tcp("h", p)).collect(),
            TargetSessionAttrs::Any,
            LoadBalanceHosts::Random,
            T,
        )
        .unwrap();
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut order = hosts.order();
            firsts.insert(order[0]);
            order.sort_unstable();
            assert_eq!(order, [0, 1, 2, 3, 4]);
        }
        assert!(
            firsts.len() > 1,
            "200 shuffles all began with the same host"
        );
    }
}
