//! A service built on `ledger` alone (and `tokio`): every type it names comes from `ledger`.
//! Exits 1 with one line on stderr when no database is configured.

use std::process::ExitCode;

use ledger::articles::{Language, SearchQuery};
use ledger::payments::PaymentQuery;
use ledger::transactions::{self, EntryQuery, Movement, Transfer};
use ledger::users::{self, NewUser, UserOrder, UserQuery};
use ledger::{Config, Decimal, Error, TryStreamExt, Uuid, accounts, json, schema};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ledger::Result<()> {
    let pool = Config::resolve()?.connect().await?;
    // CI migrates first, as a release step would (`sqlx migrate run`, into `_ledger_migrations`).
    schema::check(&mut *pool.acquire().await?).await?;

    let run = Uuid::new_v4().simple().to_string();
    let ana = NewUser::new(format!("ana-{run}@example.com"), "Ana García");
    let bob = NewUser::new(format!("bob-{run}@example.com"), "Bob");
    let ana = users::insert(&pool, &ana).await?;
    let bob = users::insert(&pool, &bob).await?;
    let from = accounts::open(&pool, ana.id, Some("USD")).await?;
    let to = accounts::open(&pool, bob.id, Some("USD")).await?;

    let mut conn = pool.acquire().await?;
    transactions::deposit(&mut conn, &Movement::new(from.id, Decimal::new(10_000, 2))).await?;
    let pay = Transfer::new(from.id, to.id, Decimal::new(2_500, 2))
        .metadata(json!({ "invoice": run }))
        .idempotency_key(format!("invoice-{run}"));
    let first = transactions::transfer(&mut conn, &pay).await?;
    let again = transactions::transfer(&mut conn, &pay).await?;
    assert_eq!(first.id, again.id, "the key replays the first transfer");

    // The listings of 0.1.0: query values carry the page size, the order and where to resume.
    let page = UserQuery::new()
        .order(UserOrder::NewestFirst)
        .per_page(20)
        .page(&mut conn, 1)
        .await?;
    assert!(!page.items.is_empty());
    let entries = EntryQuery::new().limit(10);
    let history = entries.list_for_account(&pool, from.id).await?;
    assert_eq!(history.len(), 2, "the deposit and the transfer");
    let invoiced = entries
        .list_metadata_containing(&pool, &json!({ "invoice": run }))
        .await?;
    assert_eq!(invoiced.len(), 1);
    let cards = PaymentQuery::new().limit(10).list_by_method(&pool, "credit_card").await?;
    let titles = SearchQuery::new()
        .language(Language::English)
        .limit(10)
        .search_titles(&pool, "database")
        .await?;
    let _ = (cards, titles);
    let mut streamed = 0;
    let mut entries = transactions::stream_all(&pool);
    while entries.try_next().await?.is_some() {
        streamed += 1;
    }
    assert!(streamed >= 2);

    let overdraft = Movement::new(to.id, Decimal::new(1_000_000, 2));
    match transactions::withdraw(&mut conn, &overdraft).await {
        Err(Error::InsufficientFunds { balance, .. }) => {
            assert_eq!(balance, Decimal::new(2_500, 2));
        }
        other => panic!("expected InsufficientFunds, got {other:?}"),
    }
    println!("consumer: ok ({streamed} entries streamed)");
    Ok(())
}
