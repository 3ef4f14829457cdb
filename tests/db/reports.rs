//! `ledger::transactions` reads: aggregates, joins, prefetching, windows, raw SQL, reconciliation.

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use ledger::transactions::{self, EntryId, Movement, Transfer};
use ledger::users;
use ledger::{Error, accounts};
use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::money::funded;
use crate::support::{StatementCounter, dec, user};

async fn set_entry_time(pool: &PgPool, id: EntryId, at: &str) {
    let at: DateTime<Utc> = at.parse().unwrap();
    sqlx::query!(
        "update transactions set created_at = $2 where id = $1",
        id.as_uuid(),
        at
    )
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn aggregates_of_an_empty_ledger_are_zero_not_null(pool: PgPool) {
    // Per currency: no currency at all.
    assert!(
        transactions::total_completed(&pool)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(transactions::stats(&pool).await.unwrap().is_empty());
    // Django's figures: zero, not NULL.
    let total = transactions::total_completed_across_currencies(&pool)
        .await
        .unwrap();
    assert_eq!((total, total.scale()), (Decimal::ZERO, 2));
    let stats = transactions::stats_across_currencies(&pool).await.unwrap();
    assert_eq!(
        stats,
        transactions::Stats {
            total: Decimal::ZERO,
            count: 0,
            average: None,
            maximum: None,
            minimum: None
        }
    );
    assert!(
        transactions::monthly_revenue(&pool, "UTC")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        transactions::monthly_totals_across_currencies(&pool, "UTC")
            .await
            .unwrap()
            .is_empty()
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn aggregates_sum_count_average_max_and_min_in_one_query(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100").await; // deposit 100
    let b = funded(&pool, "b@example.com", "USD", "0.01").await; // deposit 0.01
    let mut conn = pool.acquire().await.unwrap();
    transactions::transfer(&mut conn, &Transfer::new(a.id, b.id, dec("33.33")))
        .await
        .unwrap();

    assert_eq!(
        transactions::total_completed(&pool).await.unwrap(),
        [transactions::CurrencyTotal {
            currency: "USD".into(),
            total: dec("133.34"),
            count: 3
        }]
    );
    let counter = StatementCounter::start();
    let per_currency = transactions::stats(&pool).await.unwrap();
    assert_eq!(counter.count(), 1);
    assert_eq!(
        per_currency,
        [transactions::CurrencyStats {
            currency: "USD".into(),
            total: dec("133.34"),
            count: 3,
            average: dec("44.45"),
            maximum: dec("100"),
            minimum: dec("0.01"),
        }]
    );
    let stats = transactions::stats_across_currencies(&pool).await.unwrap();
    assert_eq!(
        (
            stats.total,
            stats.count,
            stats.average,
            stats.maximum,
            stats.minimum
        ),
        (
            dec("133.34"),
            3,
            Some(dec("44.45")),
            Some(dec("100")),
            Some(dec("0.01"))
        )
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn monthly_revenue_groups_by_month_in_the_given_time_zone(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "0").await;
    let mut conn = pool.acquire().await.unwrap();
    let mut made = Vec::new();
    for amount in ["10", "20", "30"] {
        let movement = Movement::new(a.id, dec(amount));
        made.push(transactions::deposit(&mut conn, &movement).await.unwrap());
    }
    // 1 February 03:00 UTC is still 31 January in Bogotá.
    let [jan, boundary, mar] = <[_; 3]>::try_from(made).unwrap();
    set_entry_time(&pool, jan.id, "2026-01-15T12:00:00Z").await;
    set_entry_time(&pool, boundary.id, "2026-02-01T03:00:00Z").await;
    set_entry_time(&pool, mar.id, "2026-03-10T12:00:00Z").await;

    let month = |m| NaiveDate::from_ymd_opt(2026, m, 1).unwrap();
    let utc = transactions::monthly_revenue(&pool, "UTC").await.unwrap();
    let utc: Vec<_> = utc.iter().map(|r| (r.month, r.revenue, r.count)).collect();
    assert_eq!(
        utc,
        [
            (month(1), dec("10"), 1),
            (month(2), dec("20"), 1),
            (month(3), dec("30"), 1)
        ]
    );

    let bogota = transactions::monthly_revenue(&pool, "America/Bogota")
        .await
        .unwrap();
    let bogota: Vec<_> = bogota
        .iter()
        .map(|r| (r.month, r.revenue, r.count))
        .collect();
    // February has no movement there, and empty months do not appear.
    assert_eq!(bogota, [(month(1), dec("30"), 2), (month(3), dec("30"), 1)]);

    let err = transactions::monthly_revenue(&pool, "Not/AZone")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "time_zone",
                ..
            }
        ),
        "{err:?}"
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn select_related_keeps_deposits_and_withdrawals_with_their_missing_side(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "50").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let mut conn = pool.acquire().await.unwrap();
    let tr = transactions::transfer(&mut conn, &Transfer::new(a.id, b.id, dec("20")))
        .await
        .unwrap();
    let wd = transactions::withdraw(&mut conn, &Movement::new(b.id, dec("5")))
        .await
        .unwrap();

    let counter = StatementCounter::start();
    let rows = transactions::EntryQuery::new()
        .limit(10)
        .list_with_accounts(&pool)
        .await
        .unwrap();
    assert_eq!(counter.count(), 1, "one query, joins included");
    assert_eq!(rows.len(), 3);
    let find = |id| rows.iter().find(|r| r.entry.id == id).unwrap();

    let deposit = rows.iter().find(|r| r.entry.kind == "deposit").unwrap();
    assert_eq!(deposit.from_account, None);
    assert_eq!(deposit.to_account.as_ref().map(|x| x.id), Some(a.id));
    let withdrawal = find(wd.id);
    assert_eq!(
        withdrawal.from_account.as_ref().map(|x| (x.id, x.balance)),
        Some((b.id, dec("15")))
    );
    assert_eq!(withdrawal.to_account, None);
    let transfer = find(tr.id);
    assert_eq!(transfer.from_account.as_ref().map(|x| x.id), Some(a.id));
    assert_eq!(transfer.to_account.as_ref().map(|x| x.id), Some(b.id));
}

/// The whole-table prefetch, deprecated in 0.1.0 (it reads every user into memory), still
/// answers as it did until it goes.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
#[allow(deprecated)]
async fn prefetch_uses_two_queries_however_many_users(pool: PgPool) {
    let mut counts = Vec::new();
    for n in [1usize, 5, 40] {
        while users::count_active(&pool).await.unwrap() < n as i64 {
            let i = users::count_active(&pool).await.unwrap();
            let u = user(&pool, &format!("p{i}@example.com"), "P").await;
            accounts::open(&pool, u.id, Some("USD")).await.unwrap();
            accounts::open(&pool, u.id, Some("EUR")).await.unwrap();
        }
        let mut conn = pool.acquire().await.unwrap();
        let counter = StatementCounter::start();
        let listed = users::list_with_accounts(&mut conn, ledger::users::Visibility::Live)
            .await
            .unwrap();
        counts.push(counter.count());
        assert_eq!(listed.len(), n);
        assert!(listed.iter().all(|u| u.accounts.len() == 2 && u.accounts.iter().all(|a| a.user_id == u.user.id)));
    }
    assert_eq!(counts, [2, 2, 2]);

    // A user without accounts is listed with none.
    user(&pool, "lonely@example.com", "Lonely").await;
    let mut conn = pool.acquire().await.unwrap();
    let listed = users::list_with_accounts(&mut conn, ledger::users::Visibility::Live)
        .await
        .unwrap();
    assert_eq!(listed.last().map(|u| u.accounts.len()), Some(0));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn running_totals_are_per_user_and_deterministic_on_tied_times(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100").await;
    let b = funded(&pool, "b@example.com", "USD", "100").await;
    let mut conn = pool.acquire().await.unwrap();
    let mut out = Vec::new();
    for amount in ["1", "2", "3"] {
        out.push(
            transactions::transfer(&mut conn, &Transfer::new(a.id, b.id, dec(amount)))
                .await
                .unwrap(),
        );
    }
    let b_out = transactions::withdraw(&mut conn, &Movement::new(b.id, dec("7")))
        .await
        .unwrap();
    // All of a's outgoing movements at the same instant: the id breaks the tie.
    for e in &out {
        set_entry_time(&pool, e.id, "2026-05-01T00:00:00Z").await;
    }

    let totals = transactions::stream_running_totals(&pool)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let mut a_rows: Vec<_> = totals.iter().filter(|r| r.user_id == a.user_id).collect();
    assert_eq!(a_rows.len(), 3);
    a_rows.sort_by_key(|r| r.id);
    let by_id: Vec<Decimal> = a_rows.iter().map(|r| r.amount).collect();
    let mut running = Decimal::ZERO;
    for (row, amount) in a_rows.iter().zip(&by_id) {
        running += amount;
        assert_eq!(
            row.running_total, running,
            "each tied row gets its own total"
        );
    }
    let b_rows: Vec<_> = totals.iter().filter(|r| r.user_id == b.user_id).collect();
    assert_eq!(b_rows.len(), 1);
    assert_eq!(
        (b_rows[0].id, b_rows[0].running_total),
        (b_out.id, dec("7"))
    );
    assert_eq!(
        transactions::stream_running_totals(&pool)
            .try_collect::<Vec<_>>()
            .await
            .unwrap(),
        totals
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn rank_by_balance_shares_ranks_on_ties(pool: PgPool) {
    for (email, amount) in [
        ("a@example.com", "300"),
        ("b@example.com", "200"),
        ("c@example.com", "200"),
        ("d@example.com", "5"),
    ] {
        funded(&pool, email, "USD", amount).await;
    }
    let ranks = accounts::stream_rank_by_balance(&pool)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let got: Vec<(Decimal, i64)> = ranks.iter().map(|r| (r.balance, r.rank)).collect();
    assert_eq!(
        got,
        [
            (dec("300"), 1),
            (dec("200"), 2),
            (dec("200"), 2),
            (dec("5"), 4)
        ]
    );
    assert!(ranks.iter().all(|r| r.user_name == "Owner"));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn top_spenders_sums_outgoing_money_in_the_window(pool: PgPool) {
    let big = funded(&pool, "big@example.com", "USD", "1000").await;
    let small = funded(&pool, "small@example.com", "USD", "1000").await;
    let sink = funded(&pool, "sink@example.com", "USD", "0").await;
    users::update_name(&pool, big.user_id, "Big").await.unwrap();
    users::update_name(&pool, small.user_id, "Small")
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    transactions::transfer(&mut conn, &Transfer::new(big.id, sink.id, dec("300")))
        .await
        .unwrap();
    transactions::withdraw(&mut conn, &Movement::new(big.id, dec("200")))
        .await
        .unwrap();
    transactions::transfer(&mut conn, &Transfer::new(small.id, sink.id, dec("100")))
        .await
        .unwrap();
    let old = transactions::withdraw(&mut conn, &Movement::new(small.id, dec("900")))
        .await
        .unwrap();
    set_entry_time(&pool, old.id, "2020-01-01T00:00:00Z").await;

    let top = transactions::top_spenders(&pool, "USD", 30, 10)
        .await
        .unwrap();
    let got: Vec<(&str, Decimal)> = top
        .iter()
        .map(|s| (s.name.as_str(), s.total_spent))
        .collect();
    assert_eq!(got, [("Big", dec("500")), ("Small", dec("100"))]);
    assert_eq!(
        transactions::top_spenders(&pool, "USD", 30, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let all_time = transactions::top_spenders(&pool, "USD", 100_000, 10)
        .await
        .unwrap();
    assert_eq!(all_time[0].name, "Small");
    assert!(matches!(
        transactions::top_spenders(&pool, "USD", 0, 10).await,
        Err(Error::InvalidInput { .. })
    ));

    // As of a past date the window is the days up to then: only the old withdrawal counts, and
    // nothing after `as_of` does.
    let as_of: DateTime<Utc> = "2020-01-15T00:00:00Z".parse().unwrap();
    let then = transactions::top_spenders_as_of(&pool, "USD", as_of, 30, 10)
        .await
        .unwrap();
    let got: Vec<(&str, Decimal)> = then
        .iter()
        .map(|s| (s.name.as_str(), s.total_spent))
        .collect();
    assert_eq!(got, [("Small", dec("900"))]);
    let before: DateTime<Utc> = "2019-12-31T23:59:59Z".parse().unwrap();
    assert!(
        transactions::top_spenders_as_of(&pool, "USD", before, 30, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let ancient: DateTime<Utc> = "-4713-12-01T00:00:00Z".parse().unwrap();
    assert!(matches!(
        transactions::top_spenders_as_of(&pool, "USD", ancient, 1_000, 10).await,
        Err(Error::InvalidInput { field: "as_of", .. })
    ));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn raw_users_with_balance_over_maps_rows_to_users(pool: PgPool) {
    let rich = funded(&pool, "rich@example.com", "USD", "1000.01").await;
    funded(&pool, "poor@example.com", "USD", "1000").await;
    let gone = funded(&pool, "gone@example.com", "USD", "5000").await;
    users::soft_delete(&pool, gone.user_id).await.unwrap();

    let found = users::list_with_balance_over(&pool, ledger::users::Visibility::Live, dec("1000"))
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|u| u.id).collect::<Vec<_>>(),
        [rich.user_id]
    );
    assert_eq!(found[0].email, "rich@example.com");
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn reconcile_reports_each_account_whose_balance_disagrees(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100").await;
    let b = funded(&pool, "b@example.com", "USD", "0").await;
    let mut conn = pool.acquire().await.unwrap();
    transactions::transfer(&mut conn, &Transfer::new(a.id, b.id, dec("40")))
        .await
        .unwrap();
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());

    // Someone edits a balance behind the ledger's back.
    sqlx::query!(
        "update accounts set balance = balance + 1 where id = $1",
        b.id.as_uuid()
    )
    .execute(&pool)
    .await
    .unwrap();
    let off = transactions::reconcile(&pool).await.unwrap();
    assert_eq!(off.len(), 1);
    assert_eq!(
        (off[0].account_id, off[0].balance, off[0].expected),
        (b.id, dec("41"), dec("40"))
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn djangos_success_counts_as_applied_and_each_spelling_has_its_exact_total(pool: PgPool) {
    let a = funded(&pool, "a@example.com", "USD", "100").await; // 'completed', by this crate
    // Django's code wrote a 'success' deposit and moved the balance itself.
    sqlx::query!(
        r#"
        insert into transactions (to_account_id, amount, type, status)
        values ($1, 25.50, 'deposit', 'success'), ($1, 7, 'deposit', 'pending')
        "#,
        a.id.as_uuid()
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query!(
        "update accounts set balance = balance + 25.50 where id = $1",
        a.id.as_uuid()
    )
    .execute(&pool)
    .await
    .unwrap();

    assert_eq!(
        transactions::total_completed_across_currencies(&pool)
            .await
            .unwrap(),
        dec("125.50")
    );
    let exact = |status: &'static str| {
        let pool = pool.clone();
        async move {
            transactions::total_with_status_across_currencies(&pool, &status.into())
                .await
                .unwrap()
        }
    };
    assert_eq!(exact("success").await, dec("25.50"));
    assert_eq!(exact("completed").await, dec("100"));
    assert_eq!(exact("pending").await, dec("7"));
    let none = exact("failed").await;
    assert_eq!((none, none.scale()), (Decimal::ZERO, 2));
    // The books balance: 'success' is applied, 'pending' is not.
    assert!(transactions::reconcile(&pool).await.unwrap().is_empty());
}

/// Two currencies and every status: each sum is per currency and counts applied movements
/// (`completed`, Django's `success`) only; Django's figures, under their explicit names, add
/// everything, as the cheat sheet's lines do.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn money_sums_never_add_currencies_and_count_applied_movements_only(pool: PgPool) {
    let usd_a = funded(&pool, "ua@example.com", "USD", "100").await;
    let usd_b = funded(&pool, "ub@example.com", "USD", "0").await;
    let eur = funded(&pool, "e@example.com", "EUR", "70").await;
    users::update_name(&pool, usd_a.user_id, "Ana")
        .await
        .unwrap();
    users::update_name(&pool, eur.user_id, "Eva").await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    transactions::transfer(&mut conn, &Transfer::new(usd_a.id, usd_b.id, dec("30")))
        .await
        .unwrap();
    transactions::withdraw(&mut conn, &Movement::new(eur.id, dec("20")))
        .await
        .unwrap();
    // Rows a Django app wrote: a `success` in EUR, a pending and a failed one in each currency.
    sqlx::query!(
        r#"
        insert into transactions (to_account_id, from_account_id, amount, type, status)
        values ($1, null, 5, 'deposit', 'success'),
               ($1, null, 1000, 'deposit', 'pending'),
               (null, $2, 2000, 'withdrawal', 'failed'),
               ($2, null, 4000, 'deposit', 'pending')
        "#,
        eur.id.as_uuid(),
        usd_a.id.as_uuid()
    )
    .execute(&pool)
    .await
    .unwrap();

    let totals = transactions::total_completed(&pool).await.unwrap();
    let got: Vec<(&str, Decimal, i64)> = totals
        .iter()
        .map(|t| (t.currency.as_str(), t.total, t.count))
        .collect();
    // EUR: deposit 70, withdrawal 20, Django's success 5; USD: deposit 100, transfer 30.
    assert_eq!(got, [("EUR", dec("95"), 3), ("USD", dec("130"), 2)]);
    let stats = transactions::stats(&pool).await.unwrap();
    let got: Vec<(&str, Decimal, Decimal, Decimal)> = stats
        .iter()
        .map(|s| (s.currency.as_str(), s.total, s.maximum, s.minimum))
        .collect();
    assert_eq!(
        got,
        [
            ("EUR", dec("95"), dec("70"), dec("5")),
            ("USD", dec("130"), dec("100"), dec("30"))
        ]
    );
    let months = transactions::monthly_revenue(&pool, "UTC").await.unwrap();
    let got: Vec<(&str, Decimal, i64)> = months
        .iter()
        .map(|m| (m.currency.as_str(), m.revenue, m.count))
        .collect();
    assert_eq!(got, [("EUR", dec("95"), 3), ("USD", dec("130"), 2)]);

    // Top spenders of one currency rank that currency's outgoing money only.
    let usd = transactions::top_spenders(&pool, "USD", 30, 10)
        .await
        .unwrap();
    let got: Vec<(&str, Decimal)> = usd
        .iter()
        .map(|s| (s.name.as_str(), s.total_spent))
        .collect();
    assert_eq!(got, [("Ana", dec("30"))]);
    let eur_top = transactions::top_spenders(&pool, "EUR", 30, 10)
        .await
        .unwrap();
    let got: Vec<(&str, Decimal)> = eur_top
        .iter()
        .map(|s| (s.name.as_str(), s.total_spent))
        .collect();
    assert_eq!(got, [("Eva", dec("20"))]);
    assert!(matches!(
        transactions::top_spenders(&pool, "usd", 30, 10).await,
        Err(Error::InvalidInput {
            field: "currency",
            ..
        })
    ));

    // Ranks and running totals are per currency too.
    let ranks = accounts::stream_rank_by_balance(&pool)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let got: Vec<(&str, Decimal, i64)> = ranks
        .iter()
        .map(|r| (r.currency.as_str(), r.balance, r.rank))
        .collect();
    assert_eq!(
        got,
        [
            ("EUR", dec("50"), 1),
            ("USD", dec("70"), 1),
            ("USD", dec("30"), 2)
        ]
    );
    let running = transactions::stream_running_totals(&pool)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert!(
        running
            .iter()
            .all(|r| r.currency == "USD" || r.currency == "EUR")
    );
    let ana: Vec<_> = running
        .iter()
        .filter(|r| r.user_id == usd_a.user_id)
        .collect();
    assert_eq!(ana.len(), 1, "the failed withdrawal is not outgoing money");
    let eva = running.iter().find(|r| r.user_id == eur.user_id).unwrap();
    assert_eq!(
        (eva.currency.as_str(), eva.running_total),
        ("EUR", dec("20"))
    );

    // Django's figures add every currency (and, where the sheet does, every status).
    assert_eq!(
        transactions::total_completed_across_currencies(&pool)
            .await
            .unwrap(),
        dec("225")
    );
    let django = transactions::stats_across_currencies(&pool).await.unwrap();
    assert_eq!((django.total, django.count), (dec("7225"), 8));
    let django_months = transactions::monthly_totals_across_currencies(&pool, "UTC")
        .await
        .unwrap();
    assert_eq!(django_months.len(), 1);
    assert_eq!(
        (django_months[0].total, django_months[0].count),
        (dec("7225"), 8)
    );
    let mixed = transactions::top_spenders_across_currencies(&pool, 30, 10)
        .await
        .unwrap();
    assert_eq!(mixed.len(), 2);
}

/// The prefetch a page at a time: each page of 7 users is two queries (the page, then its users'
/// accounts), the pages cover every live user once, newest first, each with exactly their own
/// accounts (none for a user without), and a user deleted between pages is not shown.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn prefetch_by_page_reads_two_queries_a_page_and_every_user_once(pool: PgPool) {
    let mut made = Vec::new();
    for i in 0..40 {
        let u = user(&pool, &format!("pp{i}@example.com"), "P").await;
        if i % 5 != 0 {
            accounts::open(&pool, u.id, Some("USD")).await.unwrap();
            accounts::open(&pool, u.id, Some("EUR")).await.unwrap();
        }
        made.push(u.id);
    }
    let mut conn = pool.acquire().await.unwrap();
    let query = users::UserQuery::new().per_page(7);
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let counter = StatementCounter::start();
        let page = query
            .keyset_with_accounts(&mut conn, cursor.as_ref())
            .await
            .unwrap();
        assert_eq!(counter.count(), 2, "page {pages}");
        assert!(page.items.len() <= 7);
        for u in &page.items {
            let owned = if made.iter().position(|id| *id == u.user.id).unwrap() % 5 == 0 {
                0
            } else {
                2
            };
            assert_eq!(u.accounts.len(), owned, "{:?}", u.user.email);
            assert!(u.accounts.iter().all(|a| a.user_id == u.user.id));
            seen.push(u.user.id);
        }
        pages += 1;
        if pages == 1 {
            // Deleted after the first page was read: a later page does not show it.
            users::soft_delete(&pool, made[0]).await.unwrap();
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 6);
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "every user once");
    assert_eq!(
        seen.len(),
        39,
        "the user deleted between pages is not shown"
    );
    assert!(matches!(
        users::UserQuery::new()
            .order(users::UserOrder::NameAsc)
            .keyset_with_accounts(&mut conn, None)
            .await,
        Err(Error::InvalidInput { field: "order", .. })
    ));
}
