//! `ledger::accounts`: opening, reading, the seed's balance and status filters, status updates.

use futures::TryStreamExt;
use ledger::Error;
use ledger::accounts::{self, AccountFilter, AccountId};
use ledger::users::{self, UserId};
use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::support::{Table, account_with, count, dec, ids, user};

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn open_defaults_to_an_empty_active_usd_account(pool: PgPool) {
    let ana = user(&pool, "ana@example.com", "Ana").await;
    let usd = accounts::open(&pool, ana.id, None).await.unwrap();
    assert_eq!(
        (
            usd.user_id,
            usd.balance,
            usd.currency.as_str(),
            usd.status.as_str()
        ),
        (ana.id, Decimal::ZERO, "USD", "active")
    );
    let eur = accounts::open(&pool, ana.id, Some("EUR")).await.unwrap();
    assert_eq!(accounts::get(&pool, eur.id).await.unwrap(), eur);

    let mine = accounts::list_for_user(&pool, ana.id).await.unwrap();
    assert_eq!(mine, [eur, usd]);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn open_refuses_bad_currencies_and_unknown_or_deleted_owners(pool: PgPool) {
    let ana = user(&pool, "ana@example.com", "Ana").await;
    for currency in ["usd", "EURO", "", "U$D"] {
        let err = accounts::open(&pool, ana.id, Some(currency))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    field: "currency",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    let err = accounts::open(&pool, UserId::new(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "user" }), "{err:?}");

    users::soft_delete(&pool, ana.id).await.unwrap();
    let err = accounts::open(&pool, ana.id, None).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "user" }), "{err:?}");
    assert_eq!(count(&pool, Table::Accounts).await, 0);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn get_of_an_unknown_account_is_not_found(pool: PgPool) {
    let err = accounts::get(&pool, AccountId::new()).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "account" }));
}

/// Five accounts: 50 active, 100 active, 250 vip, 500 banned, 501 trial.
async fn five_accounts(pool: &PgPool) -> Vec<AccountId> {
    let owner = user(pool, "owner@example.com", "Owner").await;
    let mut out = Vec::new();
    for (balance, status) in [
        ("50", "active"),
        ("100", "active"),
        ("250", "vip"),
        ("500", "banned"),
        ("501", "trial"),
    ] {
        out.push(account_with(pool, owner.id, dec(balance), status).await.id);
    }
    out
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn balance_filters_include_their_bounds(pool: PgPool) {
    let a = five_accounts(&pool).await;

    let rich = accounts::stream_balance_at_least(&pool, dec("100"))
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(ids(&rich, |x| x.id), [a[4], a[3], a[2], a[1]]);

    let between = accounts::stream_balance_between(&pool, dec("100"), dec("500"))
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(ids(&between, |x| x.id), [a[1], a[2], a[3]]);
    let point = accounts::stream_balance_between(&pool, dec("250.00"), dec("250"))
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(ids(&point, |x| x.id), [a[2]]);

    let err = accounts::stream_balance_between(&pool, dec("500"), dec("100"))
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn status_filters_in_and_or_not(pool: PgPool) {
    let a = five_accounts(&pool).await;
    let sorted = |mut v: Vec<AccountId>| {
        v.sort();
        v
    };

    let in_list = accounts::stream_status_in(&pool, &["active", "vip"])
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(ids(&in_list, |x| x.id), sorted(vec![a[0], a[1], a[2]]));
    assert!(
        accounts::stream_status_in(&pool, &[])
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );

    let and = accounts::stream_balance_at_least_and_status(&pool, dec("100"), "active")
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(ids(&and, |x| x.id), [a[1]]);

    let or = accounts::stream_balance_at_least_or_status(&pool, dec("300"), "vip")
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(ids(&or, |x| x.id), [a[4], a[3], a[2]]);

    let not = accounts::stream_status_not(&pool, "banned")
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(ids(&not, |x| x.id), sorted(vec![a[0], a[1], a[2], a[4]]));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn combined_filter_ands_the_criteria_given(pool: PgPool) {
    let a = five_accounts(&pool).await;
    let all = accounts::filter(&pool, &AccountFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 5);

    let f = AccountFilter {
        min_balance: Some(dec("60")),
        max_balance: Some(dec("500")),
        status_not: Some("banned".into()),
        ..Default::default()
    };
    let mut expected = vec![a[1], a[2]];
    expected.sort();
    assert_eq!(
        ids(&accounts::filter(&pool, &f).await.unwrap(), |x| x.id),
        expected
    );

    let f = AccountFilter {
        status_in: Some(vec!["trial".into(), "vip".into()]),
        currency: Some("USD".into()),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(accounts::filter(&pool, &f).await.unwrap().len(), 1);

    let nobody = AccountFilter {
        user_id: Some(UserId::new()),
        ..Default::default()
    };
    assert!(accounts::filter(&pool, &nobody).await.unwrap().is_empty());

    let inverted = AccountFilter {
        min_balance: Some(dec("2")),
        max_balance: Some(dec("1")),
        ..Default::default()
    };
    assert!(matches!(
        accounts::filter(&pool, &inverted).await,
        Err(Error::InvalidInput { .. })
    ));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn set_status_updates_one_row_and_refuses_bad_input(pool: PgPool) {
    let a = five_accounts(&pool).await;
    let frozen = accounts::set_status(&pool, a[0], "frozen").await.unwrap();
    assert_eq!(frozen.status, "frozen");

    let too_long = "s".repeat(21);
    for bad in ["", " active", too_long.as_str()] {
        let err = accounts::set_status(&pool, a[1], bad).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidInput {
                    field: "status",
                    ..
                }
            ),
            "{bad:?}"
        );
    }
    assert_eq!(accounts::get(&pool, a[1]).await.unwrap().status, "active");
    let err = accounts::set_status(&pool, AccountId::new(), "vip")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "account" }));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn bulk_update_expires_every_trial_and_reports_the_count(pool: PgPool) {
    let owner = user(&pool, "owner@example.com", "Owner").await;
    for status in ["trial", "trial", "trial", "active"] {
        account_with(&pool, owner.id, Decimal::ZERO, status).await;
    }
    assert_eq!(accounts::expire_trials(&pool).await.unwrap(), 3);
    assert_eq!(accounts::expire_trials(&pool).await.unwrap(), 0);
    assert_eq!(
        accounts::stream_status_in(&pool, &["expired"])
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(matches!(
        accounts::update_status_where(&pool, "active", "").await,
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(
        accounts::stream_status_in(&pool, &["active"])
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        1
    );
}
