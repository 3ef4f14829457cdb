//! Arrangement helpers shared by the test modules.

use chrono::{DateTime, Utc};
use ledger::accounts::{self, Account, AccountId};
use ledger::users::{self, NewUser, User, UserId};
use rust_decimal::Decimal;
use sqlx::PgPool;

pub async fn user(pool: &PgPool, email: &str, name: &str) -> User {
    users::insert(pool, &NewUser::new(email, name))
        .await
        .unwrap()
}

/// Users `u00@example.com`, `u01@...`, with `created_at` one minute apart, oldest first.
pub async fn users_a_minute_apart(pool: &PgPool, n: usize) -> Vec<User> {
    let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let u = user(
            pool,
            &format!("u{i:02}@example.com"),
            &format!("User {i:02}"),
        )
        .await;
        let at = start + chrono::Duration::minutes(i as i64);
        set_created_at(pool, u.id, at).await;
        out.push(users::get(pool, u.id).await.unwrap());
    }
    out
}

pub async fn set_created_at(pool: &PgPool, id: UserId, at: DateTime<Utc>) {
    sqlx::query!(
        "update users set created_at = $2 where id = $1",
        id.as_uuid(),
        at
    )
    .execute(pool)
    .await
    .unwrap();
}

/// An account with this balance, written directly (money normally moves only through
/// `transactions`).
pub async fn account_with(pool: &PgPool, owner: UserId, balance: Decimal, status: &str) -> Account {
    let account = accounts::open(pool, owner, None).await.unwrap();
    sqlx::query!(
        "update accounts set balance = $2, status = $3 where id = $1",
        account.id.as_uuid(),
        balance,
        status
    )
    .execute(pool)
    .await
    .unwrap();
    accounts::get(pool, account.id).await.unwrap()
}

pub async fn count(pool: &PgPool, table: Table) -> i64 {
    match table {
        Table::Users => sqlx::query_scalar!(r#"select count(*) as "n!" from users"#)
            .fetch_one(pool)
            .await
            .unwrap(),
        Table::Accounts => sqlx::query_scalar!(r#"select count(*) as "n!" from accounts"#)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Table {
    Users,
    Accounts,
}

pub fn ids<T>(rows: &[T], id: impl Fn(&T) -> AccountId) -> Vec<AccountId> {
    rows.iter().map(id).collect()
}

pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Counts the statements sqlx sends from this thread while the guard lives (sqlx logs each one
/// as a `tracing` event with target `sqlx::query`; `#[sqlx::test]` runs on one thread).
///
/// One global subscriber, installed once, counts into a thread-local counter. (A per-thread
/// `set_default` subscriber flaked: tracing's global max level is recomputed as threads add and
/// drop their own subscribers, and sqlx skips its log event while that level reads `OFF`.)
pub struct StatementCounter {
    _not_send: std::marker::PhantomData<*const ()>,
}

thread_local! {
    static COUNTING: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

impl StatementCounter {
    pub fn start() -> Self {
        install_global_subscriber();
        COUNTING.with(|c| c.set(Some(0)));
        Self {
            _not_send: std::marker::PhantomData,
        }
    }

    pub fn count(&self) -> usize {
        COUNTING.with(|c| c.get().unwrap_or(0))
    }
}

impl Drop for StatementCounter {
    fn drop(&mut self) {
        COUNTING.with(|c| c.set(None));
    }
}

/// The test binary's one global subscriber: a registry (it tracks the current span, which the
/// crate records `ledger.retries` and `ledger.idempotency.replayed` on) with the statement
/// counter and the span capture as layers, each keyed by a thread-local, so that a test sees only
/// what its own thread did. One global subscriber rather than a `set_default` per test: with
/// per-thread subscribers, tracing's cached callsite interest and global max level depend on
/// what other threads installed when a callsite was first hit, and spans went missing.
fn install_global_subscriber() {
    use tracing_subscriber::layer::SubscriberExt;
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(CountingLayer)
            .with(CaptureLayer);
        // Only this binary's tests install a global subscriber; if one exists, counting and
        // capturing would be wrong, so fail loudly.
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global tracing subscriber in the test binary");
    });
}

struct CountingLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountingLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        // The pool's release check (`ledger::session`) is not one of the statements counted.
        struct ReleaseCheck(bool);
        impl tracing::field::Visit for ReleaseCheck {
            fn record_debug(&mut self, _: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0 |= format!("{value:?}")
                    .contains("transaction_timestamp() = statement_timestamp()");
            }
        }
        let mut check = ReleaseCheck(false);
        event.record(&mut check);
        if !check.0 {
            COUNTING.with(|c| {
                if let Some(n) = c.get() {
                    c.set(Some(n + 1));
                }
            });
        }
    }
}

/// One span as the capture saw it: its name and every field recorded on it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub name: &'static str,
    pub fields: std::collections::BTreeMap<String, String>,
    /// The names of the spans this one follows from (`Span::follows_from`).
    pub follows: Vec<&'static str>,
}

type Captures = std::sync::Arc<std::sync::Mutex<Vec<Captured>>>;

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Captures>> = const { std::cell::RefCell::new(None) };
}

/// Captures the spans this thread opens while the guard lives (tests/db/telemetry.rs).
pub struct SpanCapture {
    spans: Captures,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl SpanCapture {
    pub fn start() -> Self {
        install_global_subscriber();
        let spans = Captures::default();
        CAPTURE.with(|c| *c.borrow_mut() = Some(spans.clone()));
        Self {
            spans,
            _not_send: std::marker::PhantomData,
        }
    }

    /// Every span captured so far, in the order they opened.
    pub fn all(&self) -> Vec<Captured> {
        self.spans.lock().unwrap().clone()
    }
}

impl Drop for SpanCapture {
    fn drop(&mut self) {
        CAPTURE.with(|c| *c.borrow_mut() = None);
    }
}

struct CaptureFields<'a>(&'a mut std::collections::BTreeMap<String, String>);

impl tracing::field::Visit for CaptureFields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Where a captured span's entry is (kept in the span's extensions), and in which capture.
struct CapturedAt(Captures, usize);

struct CaptureLayer;

impl<S> tracing_subscriber::Layer<S> for CaptureLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(spans) = CAPTURE.with(|c| c.borrow().clone()) else {
            return;
        };
        let mut fields = std::collections::BTreeMap::new();
        attrs.record(&mut CaptureFields(&mut fields));
        let index = {
            let mut all = spans.lock().unwrap();
            all.push(Captured {
                name: attrs.metadata().name(),
                fields,
                follows: Vec::new(),
            });
            all.len() - 1
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(CapturedAt(spans, index));
        }
    }

    fn on_follows_from(
        &self,
        id: &tracing::span::Id,
        follows: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let (Some(span), Some(cause)) = (ctx.span(id), ctx.span(follows)) else {
            return;
        };
        let extensions = span.extensions();
        if let Some(CapturedAt(spans, index)) = extensions.get::<CapturedAt>() {
            spans.lock().unwrap()[*index]
                .follows
                .push(cause.metadata().name());
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let extensions = span.extensions();
        if let Some(CapturedAt(spans, index)) = extensions.get::<CapturedAt>() {
            values.record(&mut CaptureFields(
                &mut spans.lock().unwrap()[*index].fields,
            ));
        }
    }
}

/// The SQL of every query the crate and its tests send, whitespace collapsed, from the committed
/// `.sqlx/`.
pub fn offline_queries() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/.sqlx");
    std::fs::read_dir(dir)
        .expect(".sqlx/")
        .map(|entry| {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let data: serde_json::Value = serde_json::from_str(&text).unwrap();
            collapse(data["query"].as_str().unwrap())
        })
        .collect()
}

/// `sql` with every run of white space made one space.
pub fn collapse(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs blocking work (starting a server) off the async test's thread.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// The harness's `DATABASE_URL` pointed at this test's own database: the same string with the
/// path replaced, so any password in it (or PGPASSWORD in the environment) still applies.
/// A pool of ledger's own configuration (its release check included) with one connection to the
/// test's database: a connection a dropped call left unusable would show on the next call.
pub async fn one_connection(pool: &PgPool) -> PgPool {
    ledger::Config::from_url(&url_of(pool))
        .unwrap()
        .max_connections(1)
        .connect()
        .await
        .unwrap()
}

/// Whether every one of ledger's migrations is applied to the connection's database.
pub async fn all_applied(conn: &mut sqlx::PgConnection) -> bool {
    let status = ledger::schema::status(conn).await.unwrap();
    !status.is_empty() && status.iter().all(|m| m.applied)
}

pub fn url_of(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("set by the test harness");
    let options = pool.connect_options();
    let database = options.get_database().expect("a test database");
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{database}{query}")
}

/// A proxy between a client and the test's server, on a TCP port of its own. It counts the
/// client's writes (each is one exchange: sqlx buffers a request's messages and flushes them
/// once, then waits for the reply) and holds each chunk of the server's replies for `delay`, so
/// that every read a client makes waits (a slowed server, for the cancel tests).
pub struct Proxy {
    /// Options reaching the test's database through the proxy.
    pub options: sqlx::postgres::PgConnectOptions,
    /// How many writes the clients made.
    pub writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    password: Option<String>,
}

impl Proxy {
    pub async fn start(pool: &PgPool, delay: std::time::Duration) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

        let server = pool.connect_options();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let writes = std::sync::Arc::new(AtomicUsize::new(0));
        let (socket, host, server_port) = (
            server
                .get_socket()
                .map(|dir| dir.join(format!(".s.PGSQL.{}", server.get_port()))),
            server.get_host().to_owned(),
            server.get_port(),
        );
        let counted = writes.clone();
        let task = tokio::spawn(async move {
            loop {
                let (client, _) = listener.accept().await.unwrap();
                let (socket, host, counted) = (socket.clone(), host.clone(), counted.clone());
                tokio::spawn(async move {
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write): (
                        Box<dyn AsyncRead + Unpin + Send>,
                        Box<dyn AsyncWrite + Unpin + Send>,
                    ) = match socket {
                        Some(path) => {
                            let (r, w) = tokio::net::UnixStream::connect(path)
                                .await
                                .unwrap()
                                .into_split();
                            (Box::new(r), Box::new(w))
                        }
                        None => {
                            let (r, w) =
                                tokio::net::TcpStream::connect((host.as_str(), server_port))
                                    .await
                                    .unwrap()
                                    .into_split();
                            (Box::new(r), Box::new(w))
                        }
                    };
                    let upstream = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                            counted.fetch_add(1, Ordering::SeqCst);
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let downstream = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::select! {
                        _ = upstream => {},
                        _ = downstream => {},
                    }
                });
            }
        });
        let password = ledger::Config::from_url(&url_of(pool))
            .unwrap()
            .libpq_env()
            .into_iter()
            .find_map(|(name, value)| (name == "PGPASSWORD").then_some(value));
        let mut options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
            .host("127.0.0.1")
            .port(port)
            .username(server.get_username())
            .database(server.get_database().unwrap());
        if let Some(password) = &password {
            options = options.password(password);
        }
        Self {
            options,
            writes,
            task,
            password,
        }
    }

    /// A URL through the proxy, for `ledger::Config::from_url`.
    pub fn url(&self) -> String {
        let password = self.password.as_deref();
        let o = &self.options;
        let password = password.map_or(String::new(), |p| {
            let encoded =
                percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC);
            format!(":{encoded}")
        });
        format!(
            "postgres://{}{password}@127.0.0.1:{}/{}",
            o.get_username(),
            o.get_port(),
            o.get_database().unwrap()
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Stops a test's own cluster, and removes its directory, however the test ends.
pub struct StopCluster(pub std::path::PathBuf);

impl Drop for StopCluster {
    fn drop(&mut self) {
        let _ = ledger::local::Cluster::stop(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Terminates the backends of this database that wait on `wait` (a `wait_event_type`, such as
/// `Lock`, or a `wait_event`, such as `SyncRep`), polling until there is one.
pub async fn terminate_when_waiting_on(pool: &PgPool, wait: &str) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let killed = sqlx::query_scalar!(
            r#"
            select pg_terminate_backend(pid) as "killed!" from pg_stat_activity
            where datname = current_database() and $1 in (wait_event_type, wait_event)
              and pid <> pg_backend_pid()
            "#,
            wait
        )
        .fetch_all(pool)
        .await
        .unwrap();
        if killed.iter().any(|k| *k) {
            return;
        }
    }
}

/// A TCP port for a server a test starts, on which nothing listens now, below the kernel's
/// ephemeral range (`net.ipv4.ip_local_port_range`, 32768–60999 by default). A port from
/// `bind("127.0.0.1:0")` is in that range, so between the check and the server's own bind the
/// kernel may give it to any client connection as its local port: a Patroni node's PostgreSQL
/// then failed with "could not bind IPv4 address: Address already in use". Ports are handed out
/// once per test binary, from a start that differs between processes.
pub fn server_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let (low, high) = (10_000, ephemeral_low.max(10_001));
    let start = std::process::id() * 97;
    for _ in 0..(high - low) {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(low + (start + offset) % (high - low)).unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port between {low} and {high}");
}
