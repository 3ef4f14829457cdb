//! Filtering: exact and case-insensitive look-ups, dates, ranges, `__in`, `exclude`, `Q` objects
//! and filters chosen at run time.

use std::io::Write;

use chrono::Utc;
use futures::TryStreamExt;
use ledger::accounts::{self, AccountFilter};
use ledger::users::{self, UserFilter};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::{AnyResult, account_table, heading, step, user_table, value};

pub(super) async fn filtering(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Filtering")?;
    // Each name filter reads one page (`limit`, default and most 1,000; `after` for the next).
    for (django, ledger, criteria) in [
        (
            "User.objects.filter(name='Ana García')",
            r#"users::filter(db, &UserFilter { name: Some("Ana García"), .. })"#,
            UserFilter {
                name: Some("Ana García".into()),
                ..UserFilter::default()
            },
        ),
        (
            "User.objects.filter(name__icontains='GARCÍA')",
            r#"users::filter(db, &UserFilter { name_contains: Some("GARCÍA"), .. })"#,
            UserFilter {
                name_contains: Some("GARCÍA".into()),
                ..UserFilter::default()
            },
        ),
        (
            "User.objects.filter(name__icontains='%')",
            r#"users::filter(db, &UserFilter { name_contains: Some("%"), .. })  (wildcards match themselves)"#,
            UserFilter {
                name_contains: Some("%".into()),
                ..UserFilter::default()
            },
        ),
        (
            "User.objects.filter(name__startswith='An')",
            r#"users::filter(db, &UserFilter { name_starts_with: Some("An"), .. })"#,
            UserFilter {
                name_starts_with: Some("An".into()),
                ..UserFilter::default()
            },
        ),
    ] {
        step(out, django, ledger)?;
        user_table(out, &users::filter(&mut *conn, &criteria).await?)?;
    }
    step(
        out,
        "User.objects.filter(created_at__date=today)",
        r#"users::filter(db, &UserFilter { created_on: Some(today), time_zone: Some("UTC"), .. })  (a half-open range in an explicit zone)"#,
    )?;
    let today = Utc::now().date_naive();
    let created_today = UserFilter {
        created_on: Some(today),
        time_zone: Some("UTC".into()),
        ..UserFilter::default()
    };
    value(
        out,
        format!(
            "{} users created today (UTC)",
            users::filter(&mut *conn, &created_today).await?.len()
        ),
    )?;
    step(
        out,
        "User.objects.exclude(deleted_at__isnull=False)",
        "users::stream_active(db)  (counted as it streams)",
    )?;
    let live = users::stream_active(&mut *conn)
        .try_fold(0, |n, _| async move { Ok(n + 1) })
        .await?;
    value(out, format!("{live} live users"))?;

    writeln!(
        out,
        "\n  (balance and status are Account fields: the seed's User has neither)"
    )?;
    step(
        out,
        "User.objects.filter(balance__gte=100)",
        "accounts::stream_balance_at_least(db, Decimal::from(100))",
    )?;
    account_table(
        out,
        &accounts::stream_balance_at_least(&mut *conn, Decimal::from(100))
            .try_collect::<Vec<_>>()
            .await?,
    )?;
    step(
        out,
        "User.objects.filter(balance__range=(100, 500))",
        "accounts::stream_balance_between(db, 100, 500)",
    )?;
    account_table(
        out,
        &accounts::stream_balance_between(&mut *conn, Decimal::from(100), Decimal::from(500))
            .try_collect::<Vec<_>>()
            .await?,
    )?;
    step(
        out,
        "User.objects.filter(status__in=['active','vip'])",
        r#"accounts::stream_status_in(db, &["active", "vip"])"#,
    )?;
    account_table(
        out,
        &accounts::stream_status_in(&mut *conn, &["active", "vip"])
            .try_collect::<Vec<_>>()
            .await?,
    )?;
    step(
        out,
        "User.objects.filter(balance__gte=100, status='active')",
        r#"accounts::stream_balance_at_least_and_status(db, 100, "active")"#,
    )?;
    account_table(
        out,
        &accounts::stream_balance_at_least_and_status(&mut *conn, Decimal::from(100), "active")
            .try_collect::<Vec<_>>()
            .await?,
    )?;
    step(
        out,
        "User.objects.filter(Q(balance__gte=100) | Q(status='vip'))",
        r#"accounts::stream_balance_at_least_or_status(db, 100, "vip")"#,
    )?;
    account_table(
        out,
        &accounts::stream_balance_at_least_or_status(&mut *conn, Decimal::from(100), "vip")
            .try_collect::<Vec<_>>()
            .await?,
    )?;
    step(
        out,
        "User.objects.filter(~Q(status='banned'))",
        r#"accounts::stream_status_not(db, "banned")"#,
    )?;
    account_table(
        out,
        &accounts::stream_status_not(&mut *conn, "banned")
            .try_collect::<Vec<_>>()
            .await?,
    )?;
    step(
        out,
        "Account.objects.filter(**criteria)  (criteria chosen at run time)",
        "accounts::filter(db, &AccountFilter { min_balance, status_not, .. })",
    )?;
    let criteria = AccountFilter {
        min_balance: Some(Decimal::from(50)),
        status_not: Some("banned".into()),
        currency: Some("USD".into()),
        ..Default::default()
    };
    account_table(out, &accounts::filter(&mut *conn, &criteria).await?)?;
    let by_name = UserFilter {
        name_contains: Some("ö".into()),
        created_on: Some(today),
        ..Default::default()
    };
    step(
        out,
        "User.objects.filter(name__icontains='ö', created_at__date=today)",
        "users::filter(db, &UserFilter { .. })",
    )?;
    user_table(out, &users::filter(&mut *conn, &by_name).await?)?;
    Ok(())
}
