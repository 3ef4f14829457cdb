//! Filtering: exact and case-insensitive look-ups, dates, ranges, `__in`, `exclude`, `Q` objects
//! and filters chosen at run time.

use std::io::Write;

use chrono::Utc;
use ledger::accounts::{self, AccountFilter};
use ledger::users::{self, UserFilter};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use super::{AnyResult, account_table, heading, step, user_table, value};

pub(super) async fn filtering(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Filtering")?;
    step(
        out,
        "User.objects.filter(name='Ana García')",
        r#"users::list_by_name(db, ledger::users::Visibility::Live, "Ana García")"#,
    )?;
    user_table(
        out,
        &users::list_by_name(&mut *conn, ledger::users::Visibility::Live, "Ana García").await?,
    )?;
    step(
        out,
        "User.objects.filter(name__icontains='GARCÍA')",
        r#"users::list_name_contains(db, ledger::users::Visibility::Live, "GARCÍA")"#,
    )?;
    user_table(
        out,
        &users::list_name_contains(&mut *conn, ledger::users::Visibility::Live, "GARCÍA").await?,
    )?;
    step(
        out,
        "User.objects.filter(name__icontains='%')",
        r#"users::list_name_contains(db, ledger::users::Visibility::Live, "%")  (wildcards match themselves)"#,
    )?;
    user_table(
        out,
        &users::list_name_contains(&mut *conn, ledger::users::Visibility::Live, "%").await?,
    )?;
    step(
        out,
        "User.objects.filter(name__startswith='An')",
        r#"users::list_name_starts_with(db, ledger::users::Visibility::Live, "An")"#,
    )?;
    user_table(
        out,
        &users::list_name_starts_with(&mut *conn, ledger::users::Visibility::Live, "An").await?,
    )?;
    step(
        out,
        "User.objects.filter(created_at__date=today)",
        r#"users::list_created_on(db, ledger::users::Visibility::Live, today, "UTC")  (a half-open range in an explicit zone)"#,
    )?;
    let today = Utc::now().date_naive();
    value(
        out,
        format!(
            "{} users created today (UTC)",
            users::list_created_on(&mut *conn, ledger::users::Visibility::Live, today, "UTC")
                .await?
                .len()
        ),
    )?;
    step(
        out,
        "User.objects.exclude(deleted_at__isnull=False)",
        "users::list_active(db)",
    )?;
    value(
        out,
        format!("{} live users", users::list_active(&mut *conn).await?.len()),
    )?;

    writeln!(
        out,
        "\n  (balance and status are Account fields: the seed's User has neither)"
    )?;
    step(
        out,
        "User.objects.filter(balance__gte=100)",
        "accounts::list_balance_at_least(db, Decimal::from(100))",
    )?;
    account_table(
        out,
        &accounts::list_balance_at_least(&mut *conn, Decimal::from(100)).await?,
    )?;
    step(
        out,
        "User.objects.filter(balance__range=(100, 500))",
        "accounts::list_balance_between(db, 100, 500)",
    )?;
    account_table(
        out,
        &accounts::list_balance_between(&mut *conn, Decimal::from(100), Decimal::from(500)).await?,
    )?;
    step(
        out,
        "User.objects.filter(status__in=['active','vip'])",
        r#"accounts::list_status_in(db, &["active", "vip"])"#,
    )?;
    account_table(
        out,
        &accounts::list_status_in(&mut *conn, &["active", "vip"]).await?,
    )?;
    step(
        out,
        "User.objects.filter(balance__gte=100, status='active')",
        r#"accounts::list_balance_at_least_and_status(db, 100, "active")"#,
    )?;
    account_table(
        out,
        &accounts::list_balance_at_least_and_status(&mut *conn, Decimal::from(100), "active")
            .await?,
    )?;
    step(
        out,
        "User.objects.filter(Q(balance__gte=100) | Q(status='vip'))",
        r#"accounts::list_balance_at_least_or_status(db, 100, "vip")"#,
    )?;
    account_table(
        out,
        &accounts::list_balance_at_least_or_status(&mut *conn, Decimal::from(100), "vip").await?,
    )?;
    step(
        out,
        "User.objects.filter(~Q(status='banned'))",
        r#"accounts::list_status_not(db, "banned")"#,
    )?;
    account_table(out, &accounts::list_status_not(&mut *conn, "banned").await?)?;
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
