//! Opening pools and connections from a [`Config`], with the pool's checks and the connect
//! spans.

use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};

use crate::net::hosts::TargetSessionAttrs;
use crate::{Result, sqlstate};

use super::{CHECK_IDLE_AFTER, Config};

/// The span of opening a pool or a connection, as [`Config::connect_op`] completes it (a span's
/// name is a literal at its call site).
macro_rules! connect_span {
    ($name:literal, $config:expr) => {
        $config.connect_op(
            $name,
            tracing::info_span!(
                $name,
                otel.name = "connect",
                otel.kind = "client",
                db.system.name = "postgresql",
                db.namespace = $config.options.get_database().unwrap_or_default(),
                server.address = tracing::field::Empty,
                server.port = tracing::field::Empty,
                error.type = tracing::field::Empty,
            ),
        )
    };
}

impl Config {
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
                let base = self.connect_options();
                options.after_connect(move |conn, _| {
                    let (hosts, base) = (Arc::clone(&hosts), base.clone());
                    Box::pin(async move {
                        crate::net::hosts::take_the_right_server(conn, &hosts, &base).await
                    })
                })
            }
            _ => options,
        }
    }

    fn base_pool_options(&self) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.timeouts.acquire)
            .idle_timeout(self.timeouts.idle)
            .max_lifetime(self.timeouts.max_lifetime)
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
                    let clean = crate::net::session::probe(conn).await?;
                    if !clean {
                        tracing::warn!(
                            "a connection came back inside a transaction nobody holds; closed"
                        );
                    }
                    Ok(clean)
                })
            })
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
    /// [`Error::Database`](crate::Error::Database) when the server cannot be reached within the
    /// acquire timeout ([`Timeouts::acquire`](super::Timeouts::acquire));
    /// [`Error::Transient`](crate::Error::Transient) when no server of a list answers, or none has the session asked for
    /// ([`Transient::NoMatchingServer`](crate::Transient::NoMatchingServer)).
    pub async fn connect(&self) -> Result<PgPool> {
        self.connect_with(self.pool_options()).await
    }

    /// [`Config::connect`] with pool options of the caller's, made from
    /// [`Config::pool_options`] (`config.pool_options().max_connections(50)`): the same checks,
    /// and with a host list the same failover follower.
    ///
    /// ```no_run
    /// # async fn run() -> ledger::Result<()> {
    /// let config = ledger::Config::resolve()?;
    /// let pool = config
    ///     .connect_with(config.pool_options().min_connections(2))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Config::connect`].
    pub async fn connect_with(&self, pool_options: PgPoolOptions) -> Result<PgPool> {
        let op = connect_span!("ledger.Config.connect", self);
        crate::ground::telemetry::traced(op, self.connect_pool(pool_options)).await
    }

    /// The span of opening a pool or a connection: OpenTelemetry's connection attributes
    /// (`db.namespace`, `server.address`, `server.port`: of the server that answered, for a
    /// host list), never the user or the password.
    fn connect_op(&self, name: &'static str, span: tracing::Span) -> crate::ground::telemetry::Op {
        if self.hosts.is_none() {
            record_server(&span, &self.options);
        }
        crate::ground::telemetry::Op {
            span,
            name,
            operation: "connect",
            collection: "",
        }
    }

    async fn connect_pool(&self, pool_options: PgPoolOptions) -> Result<PgPool> {
        tracing::debug!(config = ?self, "connecting");
        let options = self.connect_options();
        let Some(hosts) = &self.hosts else {
            return Ok(pool_options.connect_with(options).await?);
        };
        // The walk finds the server; the pool then opens its connections there, each checked by
        // `pool_options`' `after_connect`, and the walk's connection watches the server for the
        // follower.
        let (watch, index) = hosts.connect(&options).await?;
        let server = hosts.endpoints()[index].apply_to(&options);
        record_server(&tracing::Span::current(), &server);
        let pool = pool_options.connect_lazy_with(server);
        drop(pool.acquire().await?);
        if hosts.endpoints().len() > 1 {
            tokio::spawn(crate::net::hosts::follow(
                pool.clone(),
                Arc::clone(hosts),
                options,
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
    /// [`Error::Database`](crate::Error::Database) when the server refuses.
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

    /// Opens one connection (no pool), within the acquire timeout ([`Timeouts::acquire`](super::Timeouts::acquire)).
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) when the server cannot be reached.
    pub async fn connect_one(&self) -> Result<PgConnection> {
        let op = connect_span!("ledger.Config.connect_one", self);
        crate::ground::telemetry::traced(op, async {
            let options = self.connect_options();
            if let Some(hosts) = &self.hosts {
                let (conn, index) = hosts.connect(&options).await?;
                let server = hosts.endpoints()[index].apply_to(&options);
                record_server(&tracing::Span::current(), &server);
                return Ok(conn);
            }
            let connect = PgConnection::connect_with(&options);
            match tokio::time::timeout(self.timeouts.acquire, connect).await {
                Ok(conn) => Ok(conn?),
                Err(_) => Err(sqlx::Error::PoolTimedOut.into()),
            }
        })
        .await
    }
}

/// Records the server a connection goes to: its host (or unix socket directory) and port.
pub(super) fn record_server(span: &tracing::Span, options: &PgConnectOptions) {
    match options.get_socket() {
        Some(socket) => span.record("server.address", socket.display().to_string()),
        None => span.record("server.address", options.get_host()),
    };
    span.record("server.port", options.get_port());
}

/// Double-quotes an SQL identifier.
pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
