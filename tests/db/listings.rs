//! Every listing with a limit can be read to the end: each page resumes after the last row of the
//! one before, and the pages together are exactly the whole listing, in order, with rows that
//! share a `created_at` (one statement's rows do) split across pages.

use ledger::accounts::{self, AccountFilter};
use ledger::articles::{self, Language, NewArticle};
use ledger::bulk::BulkOptions;
use ledger::page::{Cursor, Direction};
use ledger::payments;
use ledger::transactions::{self, BatchItem, Movement, Transfer};
use ledger::users::{self, NameKey, UserFilter};
use ledger::{Error, json};
use sqlx::PgPool;

use crate::money::funded;
use crate::support::dec;

/// Reads `$list` (an expression of `after: Option<_>` and a limit) two rows at a time, resuming
/// from `$key` of each page's last row, and asserts that the pages make up what one call with a
/// big limit returns. Evaluates to the number of rows.
macro_rules! walk {
    (|$after:ident, $limit:ident| $list:expr, $key:expr) => {{
        let whole = {
            let $after: Option<&_> = None;
            let $limit = 100;
            $list.await.unwrap()
        };
        let mut pages = Vec::new();
        let mut next = None;
        loop {
            let page = {
                let $after = next.as_ref();
                let $limit = 2;
                $list.await.unwrap()
            };
            let Some(last) = page.last() else { break };
            next = Some($key(last));
            pages.extend(page);
            // A listing that ignored its cursor would repeat its first page for ever.
            assert!(
                pages.len() <= whole.len(),
                "{}: pages overlap",
                stringify!($list)
            );
        }
        assert_eq!(pages, whole, "{}", stringify!($list));
        whole.len()
    }};
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn every_listing_with_a_limit_reads_to_the_end_in_pages(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let mut conn = pool.acquire().await.unwrap();
    let tagged = |m: Movement| m.metadata(json!({ "source": "walk" }));
    // One batch: five rows with one created_at, ordered by id alone.
    transactions::post_batch(
        &mut conn,
        &[
            BatchItem::Withdrawal(tagged(Movement::new(a.id, dec("1")))),
            BatchItem::Transfer(
                Transfer::new(a.id, b.id, dec("2")).metadata(json!({"source": "walk"})),
            ),
            BatchItem::Deposit(tagged(Movement::new(a.id, dec("3")))),
            BatchItem::Transfer(
                Transfer::new(b.id, a.id, dec("1")).metadata(json!({"source": "walk"})),
            ),
            BatchItem::Deposit(tagged(Movement::new(b.id, dec("4")))),
        ],
    )
    .await
    .unwrap();
    let entry_key = |e: &transactions::LedgerEntry| Cursor::after(e.created_at, e.id.as_uuid());

    assert_eq!(
        walk!(
            |after, limit| transactions::EntryQuery::new()
                .after(after.copied())
                .limit(limit)
                .list_for_account(&pool, a.id),
            entry_key
        ),
        5
    );
    assert_eq!(
        walk!(
            |after, limit| transactions::EntryQuery::new()
                .after(after.copied())
                .limit(limit)
                .list_with_accounts(&pool),
            |r: &transactions::EntryWithAccounts| Cursor::after(
                r.entry.created_at,
                r.entry.id.as_uuid()
            )
        ),
        6
    );
    let walk_tag = json!({ "source": "walk" });
    assert_eq!(
        walk!(
            |after, limit| transactions::EntryQuery::new()
                .after(after.copied())
                .limit(limit)
                .list_metadata_containing(&pool, &walk_tag),
            entry_key
        ),
        5
    );
    assert_eq!(
        walk!(
            |after, limit| transactions::EntryQuery::new()
                .after(after.copied())
                .limit(limit)
                .list_with_metadata_key(&pool, "source"),
            entry_key
        ),
        5
    );

    let documents: Vec<_> = (0..5)
        .map(|i| {
            json!({
                "method": "card", "brand": "Visa", "amount": 150 + i,
                "shipping": { "country": "US" }, "discount": { "code": i }
            })
        })
        .collect();
    payments::insert_many(&mut conn, &documents, BulkOptions::default())
        .await
        .unwrap();
    let payment_key = |p: &payments::Payment| Cursor::after(p.created_at, p.id.get());
    let card = json!({ "method": "card" });
    for count in [
        walk!(
            |after, limit| payments::PaymentQuery::new()
                .after(after.copied())
                .limit(limit)
                .list_containing(&pool, &card),
            payment_key
        ),
        walk!(
            |after, limit| payments::PaymentQuery::new()
                .after(after.copied())
                .limit(limit)
                .list_by_method(&pool, "card"),
            payment_key
        ),
        walk!(
            |after, limit| payments::PaymentQuery::new()
                .after(after.copied())
                .limit(limit)
                .list_by_brand(&pool, "Visa"),
            payment_key
        ),
        walk!(
            |after, limit| payments::PaymentQuery::new()
                .after(after.copied())
                .limit(limit)
                .list_by_shipping_country(&pool, "US"),
            payment_key
        ),
        walk!(
            |after, limit| payments::PaymentQuery::new()
                .after(after.copied())
                .limit(limit)
                .list_with_key(&pool, "discount"),
            payment_key
        ),
        walk!(
            |after, limit| payments::PaymentQuery::new()
                .after(after.copied())
                .limit(limit)
                .list_amount_at_least(&pool, dec("100")),
            payment_key
        ),
    ] {
        assert_eq!(count, 5);
    }

    let drafts: Vec<_> = (0..5)
        .map(|i| NewArticle::new(format!("Database notes {i}"), "database ".repeat(i + 1)))
        .collect();
    articles::insert_many(&mut conn, &drafts, BulkOptions::default())
        .await
        .unwrap();
    assert_eq!(
        walk!(
            |after, limit| articles::ArticleQuery::new()
                .after(after.copied())
                .limit(limit)
                .list_summaries(&pool),
            |s: &articles::ArticleSummary| Cursor::after(s.created_at, s.id.get())
        ),
        5
    );
    assert_eq!(
        walk!(
            |after, limit| articles::SearchQuery::new()
                .language(Language::English)
                .after(after.copied())
                .limit(limit)
                .search_titles(&pool, "database"),
            |s: &articles::ArticleSummary| s.id
        ),
        5
    );
    assert_eq!(
        walk!(
            |after, limit| articles::SearchQuery::new()
                .language(Language::English)
                .after(after.copied())
                .limit(limit)
                .search(&pool, "database", 0.0),
            |h: &articles::SearchHit| h.id
        ),
        5
    );

    for i in 0..3 {
        let owner = crate::support::user(&pool, &format!("same{i}@example.com"), "Same").await;
        accounts::open(&pool, owner.id, Some("EUR")).await.unwrap();
    }
    assert_eq!(
        walk!(
            |after, limit| async {
                let filter = AccountFilter {
                    limit: Some(limit),
                    after: after.copied(),
                    ..AccountFilter::default()
                };
                accounts::filter(&pool, &filter).await
            },
            |account: &accounts::Account| account.id
        ),
        5
    );
    assert_eq!(
        walk!(
            |after, limit| async {
                let filter = UserFilter {
                    limit: Some(limit),
                    after: after.cloned(),
                    ..UserFilter::default()
                };
                users::filter(&pool, &filter).await
            },
            |user: &users::User| NameKey::of(user)
        ),
        5
    );

    // A cursor that reads backwards is refused by the forward-only listings.
    let backwards = Cursor {
        direction: Direction::Previous,
        ..Cursor::after(chrono::Utc::now(), a.id.as_uuid())
    };
    let err = transactions::EntryQuery::new()
        .after(backwards)
        .limit(10)
        .list_for_account(&pool, a.id)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "cursor",
                ..
            }
        ),
        "{err:?}"
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn the_row_after_the_first_thousand_is_read_with_a_cursor(pool: PgPool) {
    let documents: Vec<_> = (0..1_005).map(|i| json!({ "discount": i })).collect();
    let mut conn = pool.acquire().await.unwrap();
    payments::insert_many(&mut conn, &documents, BulkOptions::default())
        .await
        .unwrap();

    let first = payments::PaymentQuery::new()
        .limit(1_000)
        .list_with_key(&pool, "discount")
        .await
        .unwrap();
    assert_eq!(first.len(), 1_000);
    let last = first.last().unwrap();
    let after = Cursor::after(last.created_at, last.id.get());
    let rest = payments::PaymentQuery::new()
        .after(after)
        .limit(1_000)
        .list_with_key(&pool, "discount")
        .await
        .unwrap();
    assert_eq!(rest.len(), 5);
    let mut ids: Vec<_> = first.iter().chain(&rest).map(|p| p.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1_005, "every row once");
}
