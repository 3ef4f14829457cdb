//! `ledger::users`: CRUD, soft delete, filters, ordering, pagination, projections.

use futures::TryStreamExt;
use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use ledger::page::{Cursor, Direction};
use ledger::users::{self, Counting, NewUser, UserFilter, UserId, UserOrder, UserQuery};
use ledger::{Error, accounts};
use sqlx::PgPool;

use crate::support::{StatementCounter, Table, count, set_created_at, user, users_a_minute_apart};

fn names(users: &[users::User]) -> Vec<&str> {
    users.iter().map(|u| u.name.as_str()).collect()
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn insert_then_get_and_find_by_email(pool: PgPool) {
    let ana = users::insert(&pool, &NewUser::new("ana@example.com", "Ana"))
        .await
        .unwrap();
    assert_eq!(
        (ana.email.as_str(), ana.name.as_str()),
        ("ana@example.com", "Ana")
    );
    assert_eq!(ana.deleted_at, None);

    assert_eq!(users::get(&pool, ana.id).await.unwrap(), ana);
    assert_eq!(
        users::find_by_email(&pool, "ana@example.com")
            .await
            .unwrap(),
        Some(ana)
    );
    assert_eq!(
        users::find_by_email(&pool, "nobody@example.com")
            .await
            .unwrap(),
        None
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn get_of_an_unknown_id_is_not_found(pool: PgPool) {
    let err = users::get(&pool, UserId::new()).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { what: "user" }), "{err:?}");
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn insert_rejects_bad_input_and_writes_nothing(pool: PgPool) {
    let long_name = "x".repeat(101);
    let cases = [
        ("", "Ana", "email"),
        ("not-an-email", "Ana", "email"),
        ("ana@example", "Ana", "email"),
        ("ana@example.com", "", "name"),
        ("ana@example.com", "   ", "name"),
        ("ana@example.com", long_name.as_str(), "name"),
    ];
    for (email, name, field) in cases {
        let err = users::insert(&pool, &NewUser::new(email, name))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { field: f, .. } if f == field),
            "{email:?} {name:?}: {err:?}"
        );
    }
    assert_eq!(count(&pool, Table::Users).await, 0);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn duplicate_email_names_the_constraint_and_writes_nothing(pool: PgPool) {
    user(&pool, "ana@example.com", "Ana").await;
    let err = users::insert(&pool, &NewUser::new("ana@example.com", "Other Ana"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UniqueViolation { .. }), "{err:?}");
    assert_eq!(err.constraint(), Some(users::EMAIL_UNIQUE));
    assert_eq!(count(&pool, Table::Users).await, 1);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn update_name_renames_and_refuses_bad_names_or_ids(pool: PgPool) {
    let ana = user(&pool, "ana@example.com", "Ana").await;
    let renamed = users::update_name(&pool, ana.id, "Ana García")
        .await
        .unwrap();
    assert_eq!(renamed.name, "Ana García");
    assert_eq!(renamed.created_at, ana.created_at);

    let too_long = "y".repeat(101);
    let err = users::update_name(&pool, ana.id, &too_long)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { field: "name", .. }));
    let err = users::update_name(&pool, UserId::new(), "Bob")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
    assert_eq!(users::get(&pool, ana.id).await.unwrap().name, "Ana García");
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn save_writes_the_whole_row_and_a_taken_email_changes_nothing(pool: PgPool) {
    let mut ana = user(&pool, "ana@example.com", "Ana").await;
    user(&pool, "bob@example.com", "Bob").await;

    ana.name = "Ana García".into();
    ana.email = "ana.garcia@example.com".into();
    let saved = users::save(&pool, &ana).await.unwrap();
    assert_eq!(saved, ana);

    let mut clash = saved.clone();
    clash.email = "bob@example.com".into();
    clash.name = "Changed".into();
    let err = users::save(&pool, &clash).await.unwrap_err();
    assert_eq!(err.constraint(), Some(users::EMAIL_UNIQUE));
    assert_eq!(users::get(&pool, ana.id).await.unwrap(), saved);

    let mut bad = saved.clone();
    bad.email = "broken".into();
    assert!(matches!(
        users::save(&pool, &bad).await,
        Err(Error::InvalidInput { field: "email", .. })
    ));
    let mut ghost = saved.clone();
    ghost.id = UserId::new();
    assert!(matches!(
        users::save(&pool, &ghost).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(users::get(&pool, ana.id).await.unwrap(), saved);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn hard_delete_is_protected_while_the_user_owns_accounts(pool: PgPool) {
    let ana = user(&pool, "ana@example.com", "Ana").await;
    let bob = user(&pool, "bob@example.com", "Bob").await;
    accounts::open(&pool, ana.id, None).await.unwrap();

    accounts::open(&pool, ana.id, None).await.unwrap();
    // Django's ProtectedError: refused before anything fails, so the transaction goes on.
    let mut tx = pool.begin().await.unwrap();
    let err = users::delete(&mut *tx, ana.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protected {
                what: "user",
                referenced_by: "accounts",
                count: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(users::get(&mut *tx, ana.id).await.unwrap().id, ana.id);
    users::update_name(&mut *tx, ana.id, "Ana, still here")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        users::get(&pool, ana.id).await.unwrap().name,
        "Ana, still here"
    );

    users::delete(&pool, bob.id).await.unwrap();
    assert!(matches!(
        users::get(&pool, bob.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        users::delete(&pool, bob.id).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(count(&pool, Table::Users).await, 1);
}

/// The one case the protected delete cannot see coming: an account opened by a transaction that
/// commits while the delete waits on the user's row. The foreign key catches it; the user stays.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn an_account_opened_during_the_delete_is_still_protected(pool: PgPool) {
    let ana = user(&pool, "ana@example.com", "Ana").await;
    let mut opening = pool.begin().await.unwrap();
    accounts::open(&mut *opening, ana.id, None).await.unwrap();
    let deleting = {
        let pool = pool.clone();
        tokio::spawn(async move { users::delete(&pool, ana.id).await })
    };
    crate::idempotency::wait_until_blocked(&pool, "with gone as").await;
    opening.commit().await.unwrap();
    let err = deleting.await.unwrap().unwrap_err();
    assert_eq!(err.constraint(), Some(accounts::USER_FKEY), "{err:?}");
    assert!(users::get(&pool, ana.id).await.is_ok());
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn soft_delete_is_idempotent_hides_the_user_and_restore_undoes_it(pool: PgPool) {
    let ana = user(&pool, "ana@example.com", "Ana").await;
    let bob = user(&pool, "bob@example.com", "Bob").await;

    let first = users::soft_delete(&pool, ana.id).await.unwrap();
    let second = users::soft_delete(&pool, ana.id).await.unwrap();
    assert_eq!(
        first, second,
        "a second soft delete keeps the first timestamp"
    );
    assert_eq!(
        users::get(&pool, ana.id).await.unwrap().deleted_at,
        Some(first)
    );

    let live = users::stream_active(&pool)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(live.iter().map(|u| u.id).collect::<Vec<_>>(), [bob.id]);
    assert_eq!(users::count_active(&pool).await.unwrap(), 1);
    assert!(
        users::exists_with_email(&pool, "ana@example.com")
            .await
            .unwrap()
    );

    users::restore(&pool, ana.id).await.unwrap();
    assert_eq!(users::count_active(&pool).await.unwrap(), 2);
    assert!(matches!(
        users::soft_delete(&pool, UserId::new()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        users::restore(&pool, UserId::new()).await,
        Err(Error::NotFound { .. })
    ));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
#[allow(deprecated)] // the Vec form, tested until it is removed
async fn name_filters_treat_wildcards_literally_and_fold_case_beyond_ascii(pool: PgPool) {
    for (i, name) in [
        "Ana García",
        "ana",
        "100% Real",
        "1000 Real",
        "a_b",
        "axb",
        r"back\slash",
        "Anabel",
    ]
    .iter()
    .enumerate()
    {
        user(&pool, &format!("u{i}@example.com"), name).await;
    }

    assert_eq!(
        names(
            &users::list_by_name(&pool, ledger::users::Visibility::Live, "ana")
                .await
                .unwrap()
        ),
        ["ana"]
    );
    assert_eq!(
        names(
            &users::list_name_contains(&pool, ledger::users::Visibility::Live, "%")
                .await
                .unwrap()
        ),
        ["100% Real"]
    );
    assert_eq!(
        names(
            &users::list_name_contains(&pool, ledger::users::Visibility::Live, "_")
                .await
                .unwrap()
        ),
        ["a_b"]
    );
    assert_eq!(
        names(
            &users::list_name_contains(&pool, ledger::users::Visibility::Live, "\\")
                .await
                .unwrap()
        ),
        [r"back\slash"]
    );
    assert_eq!(
        names(
            &users::list_name_contains(&pool, ledger::users::Visibility::Live, "GARCÍA")
                .await
                .unwrap()
        ),
        ["Ana García"]
    );
    // (Sorted here: how "ana" and "Ana" order is the database collation's business.)
    let found = users::list_name_contains(&pool, ledger::users::Visibility::Live, "ANA")
        .await
        .unwrap();
    let mut found = names(&found);
    found.sort_unstable();
    assert_eq!(found, ["Ana García", "Anabel", "ana"]);
    // startswith is case-sensitive, as Django's is.
    assert_eq!(
        names(
            &users::list_name_starts_with(&pool, ledger::users::Visibility::Live, "An")
                .await
                .unwrap()
        ),
        ["Ana García", "Anabel"]
    );
    assert_eq!(
        names(
            &users::list_name_starts_with(&pool, ledger::users::Visibility::Live, "100%")
                .await
                .unwrap()
        ),
        ["100% Real"]
    );
    assert!(
        users::list_name_starts_with(&pool, ledger::users::Visibility::Live, "_")
            .await
            .unwrap()
            .is_empty()
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
#[allow(deprecated)] // the Vec form, tested until it is removed
async fn created_on_a_date_respects_the_time_zone_boundary(pool: PgPool) {
    let late = user(&pool, "late@example.com", "Late").await;
    let early = user(&pool, "early@example.com", "Early").await;
    // 04:30 UTC on 1 March is 23:30 on 28 February in Bogotá (UTC-5).
    set_created_at(&pool, late.id, "2026-03-01T04:30:00Z".parse().unwrap()).await;
    set_created_at(&pool, early.id, "2026-03-01T05:00:00Z".parse().unwrap()).await;
    let march_1 = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let feb_28 = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();

    let on = |date, tz: &'static str| {
        let pool = pool.clone();
        async move {
            names(
                &users::list_created_on(&pool, ledger::users::Visibility::Live, date, tz)
                    .await
                    .unwrap(),
            )
            .join(",")
        }
    };
    assert_eq!(on(march_1, "UTC").await, "Late,Early");
    assert_eq!(on(march_1, "America/Bogota").await, "Early");
    assert_eq!(on(feb_28, "America/Bogota").await, "Late");
    assert_eq!(on(feb_28, "UTC").await, "");

    let err = users::list_created_on(
        &pool,
        ledger::users::Visibility::Live,
        march_1,
        "Mars/Olympus",
    )
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
async fn combined_filter_applies_only_the_criteria_given(pool: PgPool) {
    let ana = user(&pool, "ana@example.com", "Ana García").await;
    let anabel = user(&pool, "anabel@example.com", "Anabel").await;
    user(&pool, "bob@example.com", "Bob").await;
    set_created_at(&pool, anabel.id, "2026-03-01T12:00:00Z".parse().unwrap()).await;
    users::soft_delete(&pool, ana.id).await.unwrap();

    let all = users::filter(&pool, &UserFilter::default()).await.unwrap();
    assert_eq!(names(&all), ["Anabel", "Bob"]);

    let with_deleted = UserFilter {
        name_contains: Some("ana".into()),
        include_deleted: true,
        ..Default::default()
    };
    assert_eq!(
        names(&users::filter(&pool, &with_deleted).await.unwrap()),
        ["Ana García", "Anabel"]
    );

    let and = UserFilter {
        name_starts_with: Some("Ana".into()),
        created_on: NaiveDate::from_ymd_opt(2026, 3, 1),
        time_zone: Some("Europe/Madrid".into()),
        include_deleted: true,
        ..Default::default()
    };
    assert_eq!(
        names(&users::filter(&pool, &and).await.unwrap()),
        ["Anabel"]
    );

    let exact = UserFilter {
        name: Some("Bob".into()),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(names(&users::filter(&pool, &exact).await.unwrap()), ["Bob"]);

    let bad_limit = UserFilter {
        limit: Some(0),
        ..Default::default()
    };
    assert!(matches!(
        users::filter(&pool, &bad_limit).await,
        Err(Error::InvalidInput { field: "limit", .. })
    ));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn orderings_break_ties_by_id(pool: PgPool) {
    let same_time: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut twins = Vec::new();
    for i in 0..4 {
        let u = user(&pool, &format!("twin{i}@example.com"), "Twin").await;
        set_created_at(&pool, u.id, same_time).await;
        twins.push(u.id);
    }
    twins.sort();

    let by_name = UserQuery::new()
        .order(UserOrder::NameAsc)
        .slice(&pool, 0..10)
        .await
        .unwrap();
    assert_eq!(by_name.iter().map(|u| u.id).collect::<Vec<_>>(), twins);
    let newest = UserQuery::new()
        .order(UserOrder::NewestFirst)
        .slice(&pool, 0..10)
        .await
        .unwrap();
    let mut reversed = twins.clone();
    reversed.reverse();
    assert_eq!(newest.iter().map(|u| u.id).collect::<Vec<_>>(), reversed);
    // Oldest first: the same tie-breaker, ascending.
    let oldest = UserQuery::new()
        .order(UserOrder::OldestFirst)
        .slice(&pool, 0..10)
        .await
        .unwrap();
    assert_eq!(oldest.iter().map(|u| u.id).collect::<Vec<_>>(), twins);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn slices_are_limit_and_offset(pool: PgPool) {
    let all = users_a_minute_apart(&pool, 35).await;

    let first_ten = UserQuery::new()
        .order(UserOrder::NewestFirst)
        .slice(&pool, 0..10)
        .await
        .unwrap();
    assert_eq!(first_ten.first().map(|u| u.id), all.last().map(|u| u.id));
    assert_eq!(first_ten.len(), 10);
    let oldest = UserQuery::new()
        .order(UserOrder::OldestFirst)
        .slice(&pool, 30..40)
        .await
        .unwrap();
    assert_eq!(names(&oldest), names(&all[30..35]));

    let twenty_to_thirty = UserQuery::new()
        .order(UserOrder::NameAsc)
        .slice(&pool, 20..30)
        .await
        .unwrap();
    assert_eq!(names(&twenty_to_thirty), names(&all[20..30]));

    #[allow(clippy::reversed_empty_ranges)] // the reversed range is the bad input under test
    for bad in [-1..5, 5..4] {
        assert!(matches!(
            UserQuery::new()
                .order(UserOrder::NameAsc)
                .slice(&pool, bad)
                .await,
            Err(Error::InvalidInput { field: "range", .. })
        ));
    }
    assert!(
        UserQuery::new()
            .order(UserOrder::NameAsc)
            .slice(&pool, 3..3)
            .await
            .unwrap()
            .is_empty()
    );
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn paginator_follows_django_at_the_edges(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    // An empty list is one empty page.
    let empty = UserQuery::new()
        .order(UserOrder::NameAsc)
        .per_page(10)
        .get_page(&mut conn, "1")
        .await
        .unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(empty.spec.paginator().num_pages(), 1);

    let all = users_a_minute_apart(&pool, 25).await;
    let page = |input: &'static str| {
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await.unwrap();
            UserQuery::new()
                .order(UserOrder::NameAsc)
                .per_page(10)
                .get_page(&mut conn, input)
                .await
                .unwrap()
        }
    };
    let third = page("3").await;
    assert_eq!(names(&third.items), names(&all[20..25]));
    assert!(third.spec.has_previous() && !third.spec.has_next());
    assert_eq!((third.spec.start_index(), third.spec.end_index()), (21, 25));
    assert_eq!(page("abc").await.spec.number(), 1);
    assert_eq!(page("99").await.spec.number(), 3);
    assert_eq!(page("-1").await.spec.number(), 3);

    let strict = UserQuery::new()
        .order(UserOrder::NameAsc)
        .per_page(10)
        .page(&mut conn, 2)
        .await
        .unwrap();
    assert_eq!(names(&strict.items), names(&all[10..20]));
    for bad in [0, -1, 4] {
        assert!(matches!(
            UserQuery::new()
                .order(UserOrder::NameAsc)
                .per_page(10)
                .page(&mut conn, bad)
                .await,
            Err(Error::InvalidInput { field: "page", .. })
        ));
    }
    assert!(matches!(
        UserQuery::new()
            .order(UserOrder::NameAsc)
            .per_page(0)
            .page(&mut conn, 1)
            .await,
        Err(Error::InvalidInput {
            field: "per_page",
            ..
        })
    ));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn keyset_pages_walk_forward_and_back_without_gaps(pool: PgPool) {
    let mut all = users_a_minute_apart(&pool, 25).await;
    all.reverse(); // newest first, the keyset order

    let first = UserQuery::new()
        .per_page(10)
        .keyset(&pool, None)
        .await
        .unwrap();
    assert_eq!(names(&first.items), names(&all[0..10]));
    assert_eq!(first.previous, None);
    let second = UserQuery::new()
        .per_page(10)
        .keyset(&pool, first.next.as_ref())
        .await
        .unwrap();
    assert_eq!(names(&second.items), names(&all[10..20]));
    let third = UserQuery::new()
        .per_page(10)
        .keyset(&pool, second.next.as_ref())
        .await
        .unwrap();
    assert_eq!(names(&third.items), names(&all[20..25]));
    assert_eq!(third.next, None);

    // Back from the third page is the second, then the first (which has no previous).
    let back = UserQuery::new()
        .per_page(10)
        .keyset(&pool, third.previous.as_ref())
        .await
        .unwrap();
    assert_eq!(back.items, second.items);
    let back = UserQuery::new()
        .per_page(10)
        .keyset(&pool, back.previous.as_ref())
        .await
        .unwrap();
    assert_eq!(back.items, first.items);
    assert_eq!(back.previous, None);
    assert_eq!(back.next.map(|c| c.direction), Some(Direction::Next));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn keyset_pages_stay_correct_while_rows_are_inserted(pool: PgPool) {
    let original = users_a_minute_apart(&pool, 30).await;
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut round = 0;
    loop {
        let page = UserQuery::new()
            .per_page(7)
            .keyset(&pool, cursor.as_ref())
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|u| u.id));
        // Newer users arrive between fetches (they sort before the first page).
        user(&pool, &format!("new{round}@example.com"), "Newcomer").await;
        round += 1;
        // The cursor travels as a token, as it would to a client and back.
        match page.next {
            Some(next) => cursor = Some(Cursor::decode(&next.encode()).unwrap()),
            None => break,
        }
    }
    let expected: Vec<UserId> = original.iter().rev().map(|u| u.id).collect();
    assert_eq!(
        seen, expected,
        "every original row once, in order, none of the newcomers"
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 30);
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn keyset_refuses_bad_limits_and_corrupt_tokens(pool: PgPool) {
    for limit in [0, -1, 1001] {
        assert!(matches!(
            UserQuery::new().per_page(limit).keyset(&pool, None).await,
            Err(Error::InvalidInput { field: "limit", .. })
        ));
    }
    assert!(matches!(
        Cursor::<uuid::Uuid>::decode("' or 1=1 --"),
        Err(Error::InvalidInput {
            field: "cursor",
            ..
        })
    ));
}

#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn projections_exists_and_count_read_only_what_they_need(pool: PgPool) {
    let ana = user(&pool, "ana@example.com", "Ana").await;
    let bob = user(&pool, "bob@example.com", "Bob").await;
    set_created_at(&pool, ana.id, "2026-01-01T00:00:00Z".parse().unwrap()).await;
    let gone = user(&pool, "gone@example.com", "Gone").await;
    users::soft_delete(&pool, gone.id).await.unwrap();

    let pairs = users::stream_id_email(&pool, ledger::users::Visibility::Live)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(
        pairs
            .iter()
            .map(|p| (p.id, p.email.as_str()))
            .collect::<Vec<_>>(),
        [(ana.id, "ana@example.com"), (bob.id, "bob@example.com")]
    );
    assert_eq!(
        users::stream_ids(&pool, ledger::users::Visibility::Live)
            .try_collect::<Vec<_>>()
            .await
            .unwrap(),
        [ana.id, bob.id]
    );
    assert!(
        users::exists_with_email(&pool, "bob@example.com")
            .await
            .unwrap()
    );
    assert!(!users::exists_with_email(&pool, "x@x.com").await.unwrap());
    assert_eq!(users::count_active(&pool).await.unwrap(), 2);
}

/// A `UserPaginator` counts when it is made and never again; its estimated count is the
/// planner's, falls back to an exact count on a table never analyzed, and leaves soft-deleted
/// users out.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_paginator_counts_once_exactly_or_by_estimate(pool: PgPool) {
    let all = users_a_minute_apart(&pool, 25).await;
    users::soft_delete(&pool, all[0].id).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();

    let counter = StatementCounter::start();
    let pages = UserQuery::new()
        .order(UserOrder::NameAsc)
        .per_page(10)
        .paginator(&mut *conn, Counting::Exact)
        .await
        .unwrap();
    assert_eq!(counter.count(), 1, "one count");
    let mut seen = Vec::new();
    for input in ["1", "2", "3", "99"] {
        seen.push(pages.get_page(&mut *conn, input).await.unwrap());
    }
    let strict = pages.page(&mut *conn, 2).await.unwrap();
    assert_eq!(counter.count(), 1 + 5, "one statement per page, no count");
    drop(counter);
    assert_eq!(pages.paginator().count(), 24);
    assert_eq!(names(&seen[0].items), names(&all[1..11]));
    assert_eq!(names(&seen[2].items), names(&all[21..25]));
    assert_eq!(seen[3].spec.number(), 3);
    assert_eq!(names(&strict.items), names(&seen[1].items));
    assert!(matches!(
        pages.page(&mut *conn, 4).await,
        Err(Error::InvalidInput { field: "page", .. })
    ));

    // Never analyzed: no estimate, so the estimated paginator counts exactly.
    assert_eq!(
        users::count_active_estimate(&mut *conn).await.unwrap(),
        None
    );
    let estimated = UserQuery::new()
        .order(UserOrder::NameAsc)
        .per_page(10)
        .paginator(&mut *conn, Counting::Estimated)
        .await
        .unwrap();
    assert_eq!(estimated.paginator().count(), 24);
    // Analyzed: the estimate (of a table this small, analyze reads every row).
    sqlx::query!("analyze users")
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        users::count_active_estimate(&mut *conn).await.unwrap(),
        Some(24)
    );
    assert!(matches!(
        UserQuery::new()
            .order(UserOrder::NameAsc)
            .per_page(0)
            .paginator(&mut *conn, Counting::Estimated)
            .await,
        Err(Error::InvalidInput {
            field: "per_page",
            ..
        })
    ));
}

/// Every listing shows live users by default and every user, soft-deleted ones too, with
/// `Visibility::All`, as Django's `User.objects` does.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
#[allow(deprecated)] // the Vec form, tested until it is removed
async fn every_listing_shows_soft_deleted_users_when_asked_for_all(pool: PgPool) {
    use users::Visibility::{All, Live};
    let live = user(&pool, "ana.live@example.com", "Ana").await;
    let gone = user(&pool, "ana.gone@example.com", "Ana").await;
    for u in [&live, &gone] {
        let account = accounts::open(&pool, u.id, None).await.unwrap();
        sqlx::query!(
            "update accounts set balance = 5000 where id = $1",
            account.id.as_uuid()
        )
        .execute(&pool)
        .await
        .unwrap();
    }
    users::soft_delete(&pool, gone.id).await.unwrap();
    let mut both = vec![live.id, gone.id];
    both.sort();
    let ids = |users: Vec<users::User>| {
        let mut ids: Vec<UserId> = users.into_iter().map(|u| u.id).collect();
        ids.sort();
        ids
    };
    let today = chrono::Utc::now().date_naive();
    let mut conn = pool.acquire().await.unwrap();
    for (visibility, want) in [(Live, vec![live.id]), (All, both.clone())] {
        let seen = [
            ids(users::list_by_name(&pool, visibility, "Ana").await.unwrap()),
            ids(users::list_name_contains(&pool, visibility, "NA")
                .await
                .unwrap()),
            ids(users::list_name_starts_with(&pool, visibility, "An")
                .await
                .unwrap()),
            ids(users::list_created_on(&pool, visibility, today, "UTC")
                .await
                .unwrap()),
            ids(UserQuery::new()
                .visibility(visibility)
                .order(UserOrder::OldestFirst)
                .slice(&pool, 0..10)
                .await
                .unwrap()),
            ids(UserQuery::new()
                .visibility(visibility)
                .order(UserOrder::NameAsc)
                .per_page(10)
                .get_page(&mut conn, "1")
                .await
                .unwrap()
                .items),
            ids(UserQuery::new()
                .visibility(visibility)
                .order(UserOrder::NewestFirst)
                .per_page(10)
                .page(&mut conn, 1)
                .await
                .unwrap()
                .items),
            ids(UserQuery::new()
                .visibility(visibility)
                .per_page(10)
                .keyset(&pool, None)
                .await
                .unwrap()
                .items),
            ids(
                users::list_with_balance_over(&pool, visibility, 1000.into())
                    .await
                    .unwrap(),
            ),
            ids(UserQuery::new()
                .visibility(visibility)
                .per_page(10)
                .keyset_with_accounts(&mut conn, None)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|u| u.user)
                .collect()),
        ];
        for (i, got) in seen.iter().enumerate() {
            assert_eq!(got, &want, "listing {i} with {visibility:?}");
        }
        let mut listed = users::stream_ids(&pool, visibility)
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
        listed.sort();
        assert_eq!(listed, want);
        let mut emails: Vec<UserId> = users::stream_id_email(&pool, visibility)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        emails.sort();
        assert_eq!(emails, want);
        assert_eq!(
            users::count(&pool, visibility).await.unwrap(),
            want.len() as i64
        );
        let pages = UserQuery::new()
            .visibility(visibility)
            .order(UserOrder::NameAsc)
            .per_page(1)
            .paginator(&pool, Counting::Exact)
            .await
            .unwrap();
        assert_eq!(pages.paginator().count(), want.len() as i64);
        assert_eq!(
            ids(pages.page(&pool, want.len() as i64).await.unwrap().items).len(),
            1
        );
    }
    // The estimate counts every row, or the live share, once statistics exist.
    sqlx::query!("analyze users").execute(&pool).await.unwrap();
    for (visibility, want) in [(Live, 1), (All, 2)] {
        let pages = UserQuery::new()
            .visibility(visibility)
            .order(UserOrder::NameAsc)
            .per_page(1)
            .paginator(&pool, Counting::Estimated)
            .await
            .unwrap();
        assert_eq!(pages.paginator().count(), want, "{visibility:?}");
    }
}

/// Keyset pages read newest first only: another order is refused, not silently ignored.
#[sqlx::test(migrator = "ledger::MIGRATOR")]
async fn a_keyset_page_in_another_order_is_refused(pool: PgPool) {
    users_a_minute_apart(&pool, 3).await;
    for order in [UserOrder::NameAsc, UserOrder::OldestFirst] {
        let refused = UserQuery::new().order(order).keyset(&pool, None).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput { field: "order", .. })),
            "{order:?}: {refused:?}"
        );
    }
    let default = UserQuery::default();
    assert_eq!(default, UserQuery::new());
    assert_eq!(default.order, UserOrder::NewestFirst);
    assert_eq!(default.per_page, users::DEFAULT_PER_PAGE);
    assert_eq!(default.keyset(&pool, None).await.unwrap().items.len(), 3);
}
