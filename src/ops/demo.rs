//! Deterministic demo data (`ledger seed`), written through the bulk paths.
//!
//! The same `users` count and `seed` give the same names, emails, account layout, amounts,
//! metadata, timestamps, payments and articles (only the generated UUIDs differ). Every money
//! movement goes through [`transactions::post_batch`], so every rule of the ledger holds and
//! [`transactions::reconcile`] finds nothing. Everything is written in one transaction: all or
//! nothing.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use crate::money::transactions::{self, BatchItem, Movement, Transfer};
use crate::tables::accounts::{self, AccountId, NewAccount};
use crate::tables::articles::{self, NewArticle};
use crate::tables::bulk::BulkOptions;
use crate::tables::users::{self, NewUser};
use crate::{Error, Result, tables::payments};

/// Rows written per bulk call (and per progress report).
const STEP: usize = 10_000;
/// How far back the demo history reaches.
const HISTORY_DAYS: i64 = 180;

const FIRST: [&str; 16] = [
    "Ana", "Björn", "Chloé", "Dmitri", "Eun-ji", "Fátima", "Gonzalo", "Hana", "Ingrid", "José",
    "Kenji", "Léa", "Mikołaj", "Nuño", "Øyvind", "Zoë",
];
const LAST: [&str; 16] = [
    "García",
    "Ångström",
    "Dubois",
    "Иванов",
    "김",
    "Núñez",
    "Müller",
    "山田",
    "Ó Briain",
    "Łukasiewicz",
    "Ferreira",
    "Nakamura",
    "Søndergaard",
    "Çelik",
    "Kowalska",
    "Haddad",
];
const COUNTRIES: [&str; 5] = ["US", "ES", "FR", "DE", "JP"];
const BRANDS: [&str; 3] = ["Visa", "Mastercard", "Amex"];
const CHANNELS: [&str; 4] = ["web", "ios", "android", "branch"];
const ARTICLES: [(&str, &str); 8] = [
    (
        "Postgres performance tuning",
        "Most slow queries are missing an index. Read the plan with EXPLAIN ANALYZE, index the columns you filter and join on, and let autovacuum keep the statistics fresh.",
    ),
    (
        "Why money is never a float",
        "Binary floating point cannot represent one cent exactly. Store amounts as numeric with a fixed scale and do arithmetic in a decimal type.",
    ),
    (
        "Deadlocks and lock ordering",
        "Two transactions that lock the same rows in opposite orders can wait on each other forever. Lock rows in one global order, such as ascending id, and the cycle cannot form.",
    ),
    (
        "Keyset pagination",
        "OFFSET makes the database walk past every skipped row. Remember the last key you showed and ask for the rows after it: the index answers at the same cost on any page.",
    ),
    (
        "JSONB and GIN indexes",
        "Containment queries on jsonb documents are served by a GIN index. Key lookups written as containment use it; text extraction with the arrow operator does not.",
    ),
    (
        "Full-text search in the database",
        "A stored tsvector column with a GIN index makes weighted search fast. Titles weigh more than bodies, and websearch syntax accepts whatever users type.",
    ),
    (
        "Idempotent payments",
        "Networks retry. An idempotency key lets a client repeat a payment request safely: the second request returns the first result instead of moving money twice.",
    ),
    (
        "Bulk loading with COPY",
        "Row by row inserts pay a round trip and a commit each. UNNEST arrays or COPY send thousands of rows at once and load orders of magnitude faster.",
    ),
];

/// What [`seed`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeedReport {
    /// Users created.
    pub users: u64,
    /// Accounts opened.
    pub accounts: u64,
    /// Ledger entries posted.
    pub entries: u64,
    /// Payments stored.
    pub payments: u64,
    /// Articles written.
    pub articles: u64,
}

/// SplitMix64: a tiny, well-known deterministic generator; demo data needs no more.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An amount in cents between `lo` and `hi` (inclusive), as a Decimal.
    fn cents(&mut self, lo: i64, hi: i64) -> Decimal {
        Decimal::new(lo + self.below((hi - lo + 1) as u64) as i64, 2)
    }
}

/// Writes demo data for `users` users: each with 1 to 3 accounts, a deposit per account,
/// transfers, withdrawals and their metadata spread over the last six months, one payment per
/// ten users, and a handful of articles. Calls `progress(stage, done, total)` as it goes.
///
/// SQL: the bulk paths — `users::copy_in`, `accounts::open_many`, `transactions::post_batch`,
/// `payments::copy_in`, `articles::insert_many` — plus one `update ... from unnest(...)` per
/// chunk of users that spreads their `created_at` over the history, all in one transaction.
///
/// # Errors
/// [`Error::InvalidInput`] for zero users; [`Error::UniqueViolation`] when demo data of the same
/// seed is already there. Nothing is written on any error.
#[tracing::instrument(name = "ledger.demo.seed", skip(conn, progress))]
pub async fn seed(
    conn: &mut PgConnection,
    users: u64,
    seed: u64,
    progress: &mut (dyn FnMut(&str, u64, u64) + Send),
) -> Result<SeedReport> {
    if users == 0 {
        return Err(Error::invalid("users", "must be at least 1"));
    }
    let mut rng = Rng(seed);
    let start = Utc::now() - Duration::days(HISTORY_DAYS);
    let span = Duration::days(HISTORY_DAYS).num_seconds();
    let at = |i: u64, n: u64| start + Duration::seconds(span * i as i64 / n.max(1) as i64);
    let mut tx = conn.begin().await?;
    let mut report = SeedReport::default();

    // Users, oldest first.
    let people: Vec<NewUser> = (0..users)
        .map(|i| {
            let first = FIRST[rng.below(16) as usize];
            let last = LAST[rng.below(16) as usize];
            NewUser::new(
                format!("user{i:07}.s{seed}@demo.example"),
                format!("{first} {last}"),
            )
        })
        .collect();
    let mut user_ids = Vec::with_capacity(people.len());
    for chunk in people.chunks(STEP) {
        user_ids.extend(users::copy_in(&mut tx, chunk).await?);
        progress("users", user_ids.len() as u64, users);
    }
    let times: Vec<DateTime<Utc>> = (0..users).map(|i| at(i, users)).collect();
    let raw: Vec<Uuid> = user_ids.iter().map(|id| id.as_uuid()).collect();
    set_user_times(&mut tx, &raw, &times).await?;
    report.users = users;

    // Accounts: 1 to 3 per user, one in five in EUR.
    let wanted: Vec<NewAccount> = user_ids
        .iter()
        .flat_map(|user| {
            let n = 1 + rng.below(3);
            (0..n)
                .map(|_| NewAccount {
                    user_id: *user,
                    currency: Some(if rng.below(5) == 0 { "EUR" } else { "USD" }.to_owned()),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut opened: Vec<(AccountId, bool)> = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(STEP) {
        let done =
            accounts::open_many(&mut tx, chunk, BulkOptions::default().chunk_size(STEP)).await?;
        opened.extend(done.created().map(|a| (a.id, a.currency == "EUR")));
        progress("accounts", opened.len() as u64, wanted.len() as u64);
    }
    report.accounts = opened.len() as u64;

    // Movements: a deposit per account, then transfers between accounts of one currency and
    // withdrawals, generated against running balances so that none is refused.
    let mut balance: Vec<Decimal> = vec![Decimal::ZERO; opened.len()];
    let mut items: Vec<BatchItem> = Vec::new();
    let meta = |rng: &mut Rng, seq: usize| json!({"channel": CHANNELS[rng.below(4) as usize], "seq": seq, "demo_seed": seed});
    for (i, (account, _)) in opened.iter().enumerate() {
        let amount = rng.cents(1_000, 500_000);
        balance[i] += amount;
        let metadata = meta(&mut rng, items.len());
        items.push(BatchItem::Deposit(
            Movement::new(*account, amount).metadata(metadata),
        ));
    }
    let by_currency: [Vec<usize>; 2] = [
        (0..opened.len()).filter(|i| !opened[*i].1).collect(),
        (0..opened.len()).filter(|i| opened[*i].1).collect(),
    ];
    for _ in 0..users {
        let pool = &by_currency[usize::from(rng.below(5) == 0)];
        if pool.len() < 2 {
            continue;
        }
        let from = pool[rng.below(pool.len() as u64) as usize];
        let to = pool[rng.below(pool.len() as u64) as usize];
        let amount = rng.cents(100, 20_000);
        if from != to && balance[from] >= amount {
            balance[from] -= amount;
            balance[to] += amount;
            let metadata = meta(&mut rng, items.len());
            let request = Transfer::new(opened[from].0, opened[to].0, amount).metadata(metadata);
            items.push(BatchItem::Transfer(request));
        }
        if rng.below(2) == 0 {
            let who = rng.below(opened.len() as u64) as usize;
            let amount = rng.cents(100, 10_000);
            if balance[who] >= amount {
                balance[who] -= amount;
                let metadata = meta(&mut rng, items.len());
                items.push(BatchItem::Withdrawal(
                    Movement::new(opened[who].0, amount).metadata(metadata),
                ));
            }
        }
    }
    let total = items.len() as u64;
    let times: Vec<DateTime<Utc>> = (0..total).map(|i| at(i, total)).collect();
    let mut posted = 0u64;
    for (chunk, chunk_times) in items.chunks(25 * STEP).zip(times.chunks(25 * STEP)) {
        posted += transactions::post_batch_at(&mut tx, chunk, Some(chunk_times), None)
            .await?
            .len() as u64;
        progress("transactions", posted, total);
    }
    report.entries = total;

    // Payments: nested documents, every tenth user.
    let documents: Vec<serde_json::Value> = (0..users.div_ceil(10))
        .map(|i| {
            let card = rng.below(3) != 0;
            let country = COUNTRIES[rng.below(5) as usize];
            let express = rng.below(2) == 0;
            let mut doc = json!({
                "method": if card { "credit_card" } else { "bank_transfer" },
                "amount": number(rng.cents(100, 200_000)),
                "shipping": {"country": country, "express": express},
                "demo_seed": seed,
                "n": i,
            });
            if card {
                doc["brand"] = json!(BRANDS[rng.below(3) as usize]);
                doc["last4"] = json!(format!("{:04}", rng.below(10_000)));
            }
            if rng.below(4) == 0 {
                doc["discount"] = number(rng.cents(100, 2_000));
            }
            doc
        })
        .collect();
    for chunk in documents.chunks(STEP) {
        report.payments += payments::copy_in(&mut tx, chunk).await?.len() as u64;
        progress("payments", report.payments, documents.len() as u64);
    }

    let pieces: Vec<NewArticle> = ARTICLES
        .iter()
        .map(|(title, body)| NewArticle::new(format!("{title} (seed {seed})"), *body))
        .collect();
    report.articles = articles::insert_many(&mut tx, &pieces, BulkOptions::default())
        .await?
        .created()
        .count() as u64;
    progress("articles", report.articles, report.articles);

    tx.commit().await?;
    Ok(report)
}

/// A decimal as a JSON number (`json!` would write `rust_decimal`'s string form).
fn number(amount: Decimal) -> serde_json::Value {
    amount
        .to_string()
        .parse::<serde_json::Number>()
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

async fn set_user_times(
    conn: &mut PgConnection,
    ids: &[Uuid],
    times: &[DateTime<Utc>],
) -> Result<()> {
    for (ids, times) in ids.chunks(STEP).zip(times.chunks(STEP)) {
        sqlx::query!(
            r#"
            update users as u set created_at = v.at
            from unnest($1::uuid[], $2::timestamptz[]) as v(id, at)
            where u.id = v.id
            "#,
            ids,
            times
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
