//! Every operation opens one span with OpenTelemetry's database attributes (`ledger::telemetry`):
//! captured here by a `tracing` layer, per module, with the failures' `error.type`, the
//! movements' `ledger.idempotency.replayed` and `ledger.retries`, and no parameter's value in
//! any field. A static check then holds every public operation of the table and money modules
//! to the same: its body opens a span.

use crate::support::{self, Captured};
use futures::TryStreamExt;
use ledger::transactions::{self, Movement, Poster, PosterOptions, Transfer};
use ledger::users::{self, NewUser, UserQuery};
use ledger::{Config, Error, accounts, articles, payments};
use sqlx::PgPool;

/// The spans this test's thread opens (`support::SpanCapture`, on the binary's one global
/// subscriber).
struct Spans(support::SpanCapture);

impl Spans {
    fn start() -> Self {
        Self(support::SpanCapture::start())
    }

    fn all(&self) -> Vec<Captured> {
        self.0.all()
    }

    /// The spans named `name`, in the order they opened.
    fn named(&self, name: &str) -> Vec<Captured> {
        self.all().into_iter().filter(|s| s.name == name).collect()
    }

    /// The one span named `name`; panics unless there is exactly one.
    fn one(&self, name: &str) -> Captured {
        let found = self.named(name);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found.into_iter().next().unwrap()
    }
}

trait Check {
    fn field(&self, name: &str) -> Option<&str>;
    fn assert_db(&self, operation: &str, collection: &str);
    fn assert_ok(&self);
}

impl Check for Captured {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// OpenTelemetry's database attributes, as `ledger::telemetry` documents them.
    fn assert_db(&self, operation: &str, collection: &str) {
        assert_eq!(self.field("db.system.name"), Some("postgresql"), "{self:?}");
        assert_eq!(self.field("db.operation.name"), Some(operation), "{self:?}");
        assert_eq!(
            self.field("db.collection.name"),
            Some(collection),
            "{self:?}"
        );
        let otel_name = format!("{operation} {collection}");
        assert_eq!(
            self.field("otel.name"),
            Some(otel_name.as_str()),
            "{self:?}"
        );
        assert_eq!(self.field("otel.kind"), Some("client"), "{self:?}");
    }

    fn assert_ok(&self) {
        assert_eq!(self.field("error.type"), None, "{self:?}");
    }
}

const SECRET_EMAIL: &str = "telemetry-secret@example.com";
const SECRET_NAME: &str = "Telemetry Secret Name";

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn every_module_s_operations_open_one_span_with_the_database_attributes(pool: PgPool) {
    let spans = Spans::start();

    // users
    let ana = users::insert(&pool, &NewUser::new(SECRET_EMAIL, SECRET_NAME))
        .await
        .unwrap();
    users::get(&pool, ana.id).await.unwrap();
    let again = users::insert(&pool, &NewUser::new(SECRET_EMAIL, "Other")).await;
    assert!(
        matches!(again, Err(Error::UniqueViolation { .. })),
        "{again:?}"
    );
    let mut conn = pool.acquire().await.unwrap();
    UserQuery::new().page(&mut conn, 1).await.unwrap();
    drop(conn);
    let inserts = spans.named("ledger.users.insert");
    assert_eq!(inserts.len(), 2);
    inserts[0].assert_db("INSERT", "users");
    inserts[0].assert_ok();
    assert_eq!(
        inserts[1].field("error.type"),
        Some("23505"),
        "the SQLSTATE"
    );
    spans.one("ledger.users.get").assert_db("SELECT", "users");
    spans
        .one("ledger.users.UserQuery.page")
        .assert_db("SELECT", "users");

    // accounts, with a refusal before the server: the error's kind, no SQLSTATE.
    let account = accounts::open(&pool, ana.id, None).await.unwrap();
    let refused = accounts::set_status(&pool, account.id, "").await;
    assert!(matches!(refused, Err(Error::InvalidInput { .. })));
    spans
        .one("ledger.accounts.open")
        .assert_db("INSERT", "accounts");
    let set = spans.one("ledger.accounts.set_status");
    set.assert_db("UPDATE", "accounts");
    assert_eq!(set.field("error.type"), Some("InvalidInput"));

    // payments and articles
    let card = serde_json::json!({"method": "card", "card": {"brand": "visa"}, "amount": 10});
    payments::insert_json(&pool, &card).await.unwrap();
    payments::PaymentQuery::new()
        .limit(5)
        .list_by_method(&pool, "card")
        .await
        .unwrap();
    spans
        .one("ledger.payments.insert_json")
        .assert_db("INSERT", "payments");
    spans
        .one("ledger.payments.list_by_method")
        .assert_db("SELECT", "payments");
    assert!(
        spans.named("ledger.payments.list_containing").is_empty(),
        "list_by_method opens one span, not one inside another"
    );
    articles::insert(&pool, &articles::NewArticle::new("Postgres", "Full text"))
        .await
        .unwrap();
    articles::SearchQuery::new()
        .language(articles::Language::English)
        .limit(5)
        .search(&pool, "postgres", 0.0)
        .await
        .unwrap();
    spans
        .one("ledger.articles.insert")
        .assert_db("INSERT", "articles");
    spans
        .one("ledger.articles.search")
        .assert_db("SELECT", "articles");

    // transactions: a keyed deposit and its replay, a refused withdrawal, a transfer, reports.
    let mut conn = pool.acquire().await.unwrap();
    let keyed = Movement::new(account.id, support::dec("50.00")).idempotency_key("tele-1");
    transactions::deposit(&mut conn, &keyed).await.unwrap();
    transactions::deposit(&mut conn, &keyed).await.unwrap();
    let deposits = spans.named("ledger.transactions.deposit");
    assert_eq!(deposits.len(), 2);
    deposits[0].assert_db("deposit", "transactions");
    assert_eq!(
        deposits[0].field("ledger.idempotency.replayed"),
        Some("false")
    );
    assert_eq!(
        deposits[1].field("ledger.idempotency.replayed"),
        Some("true")
    );
    assert_eq!(deposits[0].field("ledger.retries"), Some("0"));
    let too_much = Movement::new(account.id, support::dec("1000.00"));
    let refused = transactions::withdraw(&mut conn, &too_much).await;
    assert!(matches!(refused, Err(Error::InsufficientFunds { .. })));
    assert_eq!(
        spans
            .one("ledger.transactions.withdraw")
            .field("error.type"),
        Some("InsufficientFunds")
    );
    let other = accounts::open(&pool, ana.id, None).await.unwrap();
    let transfer = Transfer::new(account.id, other.id, support::dec("5.00"));
    transactions::transfer(&mut conn, &transfer).await.unwrap();
    spans
        .one("ledger.transactions.transfer")
        .assert_db("transfer", "transactions");
    transactions::stats(&pool).await.unwrap();
    spans
        .one("ledger.transactions.stats")
        .assert_db("SELECT", "transactions");
    drop(conn);

    // streams: the span covers the whole read, and closes with the stream.
    let read: Vec<_> = transactions::stream_all(&pool).try_collect().await.unwrap();
    assert_eq!(read.len(), 2);
    spans
        .one("ledger.transactions.stream_all")
        .assert_db("SELECT", "transactions");
    let copied: Vec<_> = transactions::copy_all_pooled(&pool)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(copied.len(), 2);
    spans
        .one("ledger.transactions.copy_all_pooled")
        .assert_db("COPY", "transactions");

    // The poster: one span per movement, and one per shared flush with its size.
    let poster = Poster::new(pool.clone(), PosterOptions::default());
    poster
        .deposit(Movement::new(other.id, support::dec("1.00")))
        .await
        .unwrap();
    poster.close().await;
    spans
        .one("ledger.transactions.Poster.deposit")
        .assert_db("deposit", "transactions");
    let flush = spans.one("ledger.transactions.Poster.flush");
    flush.assert_db("post_batch", "transactions");
    assert_eq!(flush.field("ledger.rows"), Some("1"));
    // The flush runs on the poster's task, so it is no caller's child: it follows from the
    // spans of the calls it posts.
    assert_eq!(flush.follows, ["ledger.transactions.Poster.deposit"]);

    // Connecting: OpenTelemetry's connection attributes, never the user or the password.
    let config = Config::from_url(&support::url_of(&pool)).unwrap();
    let connected = config.connect().await.unwrap();
    connected.close().await;
    let connect = spans.one("ledger.Config.connect");
    assert_eq!(connect.field("db.system.name"), Some("postgresql"));
    let options = config.connect_options();
    let namespace = options.get_database().unwrap();
    assert_eq!(connect.field("db.namespace"), Some(namespace));
    assert!(connect.field("server.address").is_some(), "{connect:?}");
    assert_eq!(
        connect.field("server.port"),
        Some(config.connect_options().get_port().to_string().as_str())
    );

    // No span holds a parameter's value: not the email, the name, the key or an amount.
    for span in spans.all() {
        for (field, value) in &span.fields {
            for secret in [SECRET_EMAIL, SECRET_NAME, "tele-1", "50.00", "1000.00"] {
                assert!(
                    !value.contains(secret),
                    "{}: {field} = {value} holds a parameter",
                    span.name
                );
            }
            assert!(
                !field.contains("user") && !field.contains("password"),
                "{}: {field}",
                span.name
            );
        }
    }
}

/// A deadlock retried inside a unit of work is counted on its span: a transaction holds the
/// transfer's second account, the transfer locks its first and waits for the second, then the
/// transaction asks for the first. PostgreSQL's detector (in the transfer's backend, which waited
/// longest) aborts the transfer's statement; the unit retries once the transaction has ended.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_unit_of_work_retried_after_a_deadlock_counts_its_retry(pool: PgPool) {
    let spans = Spans::start();
    deadlocked_transfer(&pool).await.unwrap();
    let span = spans.one("ledger.transactions.transfer");
    span.assert_ok();
    assert_eq!(span.field("ledger.retries"), Some("1"), "{span:?}");
}

/// A transfer that meets a deadlock once (see above) and succeeds on its retry.
pub(crate) async fn deadlocked_transfer(
    pool: &PgPool,
) -> ledger::Result<transactions::LedgerEntry> {
    let owner = support::user(pool, "retry@example.com", "R").await;
    let x = support::account_with(pool, owner.id, support::dec("10.00"), "active").await;
    let y = support::account_with(pool, owner.id, support::dec("10.00"), "active").await;
    let (first, second) = if x.id < y.id {
        (x.id, y.id)
    } else {
        (y.id, x.id)
    };
    let mut holder = pool.begin().await.unwrap();
    sqlx::query!(
        "select id from accounts where id = $1 for update",
        second.as_uuid()
    )
    .fetch_one(&mut *holder)
    .await
    .unwrap();
    let mover = pool.clone();
    let transfer = tokio::spawn(async move {
        let mut conn = mover.acquire().await.unwrap();
        let transfer = Transfer::new(first, second, support::dec("1.00"));
        transactions::transfer(&mut conn, &transfer).await
    });
    // The transfer holds `first` and waits for `second`.
    loop {
        let waiting = sqlx::query_scalar!(
            r#"select count(*) as "n!" from pg_stat_activity
               where wait_event_type = 'Lock' and datname = current_database()"#
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Now the cycle: this waits until the detector aborts the transfer's statement.
    sqlx::query!(
        "select id from accounts where id = $1 for update",
        first.as_uuid()
    )
    .fetch_one(&mut *holder)
    .await
    .unwrap();
    holder.commit().await.unwrap();
    transfer.await.unwrap()
}

/// Every public `async fn` of the table and money layers (every file under `src/tables/` and
/// `src/money/`, so that a file added later is checked too) opens its operation's span; the
/// deprecated bridges (`deprecated.rs`) call the operation that does.
#[test]
fn every_public_operation_of_the_tables_and_money_opens_a_span() {
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "deprecated.rs")
            {
                out.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root.join("tables"), &mut files);
    sources(&root.join("money"), &mut files);
    files.sort();
    assert!(files.len() > 30, "{files:?}");
    let mut checked = 0;
    let mut missing = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let file = path.strip_prefix(&root).unwrap().display();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("pub async fn ") {
            let after = &rest[at + "pub async fn ".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // The body's first lines: the signature, then `let span = ...op_span!`.
            let head: String = after.chars().take(600).collect();
            let body_start = head.find(") -> ").map(|i| &head[i..]).unwrap_or(&head);
            let opens = body_start.contains("op_span!(");
            // `Poster::close` returns nothing to record: it waits for the flusher, whose
            // flushes have spans of their own.
            if !opens && name != "close" {
                missing.push(format!("{file}: {name}"));
            }
            checked += 1;
            rest = after;
        }
    }
    assert!(checked > 80, "found only {checked} operations");
    assert!(
        missing.is_empty(),
        "operations without a span: {missing:#?}"
    );
}
