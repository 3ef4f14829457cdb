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

mod parse;
mod walk;

pub use walk::{Exhausted, FOLLOW_EVERY};

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::PgConnectOptions;

use crate::{Error, Result};
pub(crate) use walk::{follow, take_the_right_server};

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
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.to_owned(),
            port,
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
