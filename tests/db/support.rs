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
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            // Only this binary's tests install a global subscriber; if one exists, counting
            // would be wrong, so fail loudly.
            tracing::subscriber::set_global_default(CountingSubscriber)
                .expect("no other global tracing subscriber in the test binary");
        });
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

struct CountingSubscriber;

impl tracing::Subscriber for CountingSubscriber {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "sqlx::query" {
            COUNTING.with(|c| {
                if let Some(n) = c.get() {
                    c.set(Some(n + 1));
                }
            });
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
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
