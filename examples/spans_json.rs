//! Exports ledger's operation spans as JSON lines on stdout, one per closed span, with their
//! OpenTelemetry attributes (`db.system.name`, `db.operation.name`, `db.collection.name`,
//! `error.type`, ...): the shape a log pipeline or an OpenTelemetry collector's filelog receiver
//! takes. For OTLP, put `tracing-opentelemetry`'s layer (with an `opentelemetry-otlp`
//! exporter) where the JSON layer is: the spans and their fields are the same.
//!
//! ```sh
//! cargo run --example spans_json            # on the configured database, or the private one
//! ```

use ledger::transactions::{self, Movement};
use ledger::users::{self, NewUser, UserQuery};
use ledger::{Config, Decimal, accounts, schema};
use tracing_subscriber::fmt::format::FmtSpan;

type AnyResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> AnyResult {
    tracing_subscriber::fmt()
        .json()
        .with_span_events(FmtSpan::CLOSE)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter("ledger=info")
        .init();

    let config = Config::resolve_or_local().await?;
    config.create_database("ledger_spans_json").await?;
    let pool = config.with_database("ledger_spans_json").connect().await?;
    schema::migrate(&mut *pool.acquire().await?).await?;

    let email = format!("spans-{}@example.com", ledger::Uuid::new_v4());
    let user = users::insert(&pool, &NewUser::new(email, "Spans")).await?;
    let account = accounts::open(&pool, user.id, None).await?;
    let mut conn = pool.acquire().await?;
    let deposit = Movement::new(account.id, Decimal::new(1_000, 2));
    transactions::deposit(&mut conn, &deposit).await?;
    // A refusal: its span closes with `error.type = "InsufficientFunds"`.
    let too_much = Movement::new(account.id, Decimal::new(1_000_000, 2));
    let _ = transactions::withdraw(&mut conn, &too_much).await;
    UserQuery::new().page(&mut conn, 1).await?;
    drop(conn);
    pool.close().await;
    Ok(())
}
