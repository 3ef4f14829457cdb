//! Walking a host list for the right server, and keeping a pool pointed at it.

use std::fmt;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::{Endpoint, Hosts, Session, TargetSessionAttrs};
use crate::{Error, Result, Transient};

impl Hosts {
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

/// A connection the pool has just opened, checked against `target_session_attrs`: one that
/// reached the wrong kind of server (the old primary, back as a standby after a failover) is
/// replaced, in place, by the first right one a walk of the list finds.
pub(crate) async fn take_the_right_server(
    conn: &mut PgConnection,
    hosts: &Hosts,
    base: &PgConnectOptions,
) -> std::result::Result<(), sqlx::Error> {
    let session = Session::of(conn).await.map_err(into_sqlx)?;
    if hosts.target_session_attrs().takes(session) {
        return Ok(());
    }
    let (right, index) = hosts.connect(base).await.map_err(into_sqlx)?;
    tracing::info!(
        server = %hosts.endpoints()[index],
        "a new connection reached a server of the wrong kind; took the walk's instead"
    );
    let wrong = std::mem::replace(conn, right);
    let _ = wrong.close().await;
    Ok(())
}

/// Back to sqlx's error type, for the pool's callbacks.
fn into_sqlx(err: Error) -> sqlx::Error {
    match err {
        Error::Transient { source, .. } | Error::Database(source) | Error::Tls(source) => source,
        other => sqlx::Error::AnyDriverError(Box::new(other)),
    }
}
