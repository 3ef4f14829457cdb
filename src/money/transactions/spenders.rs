//! The seed's raw SQL report: the users who sent the most money in a window of days, per
//! currency ([`top_spenders`]) or, as the cheat sheet writes it, with the currencies added
//! together ([`top_spenders_across_currencies`](crate::transactions::top_spenders_across_currencies)).
//! Re-exported by [`transactions`](crate::transactions).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgExecutor;

use crate::ground::ids::UserId;
use crate::tables::page;
use crate::{Error, Result};

/// A user's outgoing total over a window of days.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Spender {
    /// The user.
    pub user_id: UserId,
    /// Their name.
    pub name: String,
    /// Sum of their completed outgoing movements in the window.
    pub total_spent: Decimal,
}

/// The longest window [`top_spenders`] accepts, in days (about 2,700 years): `now() - days`
/// must stay within PostgreSQL's timestamps.
pub const MAX_DAYS: i32 = 1_000_000;

/// The users who sent the most money **in `currency`** in the last `days` days, biggest first.
///
/// Django: the seed's raw `cursor.execute("SELECT u.name, SUM(t.amount) AS total_spent FROM users
/// u JOIN transactions t ON t.from_account_id IN (SELECT id FROM accounts WHERE user_id = u.id)
/// WHERE t.created_at > NOW() - INTERVAL '30 days' ... LIMIT %s", [10])` with `AND currency =
/// %s`: the seed's report adds its users' currencies together, which
/// [`top_spenders_across_currencies`](crate::transactions::top_spenders_across_currencies) keeps.
///
/// SQL: the seed's intent with plain joins — `users join accounts join transactions on
/// from_account_id`, the accounts of `currency`, completed only, `created_at > now() -
/// make_interval(days => $1)`, `group by u.id order by total desc, u.id limit $2` — with the
/// window a parameter too.
///
/// A top-N report: `limit` is the N, and there is no next page (ask for a bigger N, up to
/// `MAX_PER_PAGE`).
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): the window read by
/// `transactions_created_at_id_idx`; accounts joined by hash (a sequential scan of `accounts`,
/// which the planner prefers to one key probe per transfer at the default `random_page_cost`) and
/// users by `users_pkey`.
///
/// # Errors
/// [`Error::InvalidInput`] for a currency that is not three uppercase letters, `days` outside
/// `1..=MAX_DAYS` or a limit outside `1..=MAX_PER_PAGE`.
pub async fn top_spenders(
    db: impl PgExecutor<'_>,
    currency: &str,
    days: i32,
    limit: i64,
) -> Result<Vec<Spender>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.top_spenders",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced(op, async move {
        crate::tables::accounts::validate_currency(currency)?;
        spenders(db, Some(currency), None, days, limit).await
    })
    .await
}

/// [`top_spenders`] as of a given time: the window is the `days` days up to and including
/// `as_of`, whatever the clock says, so a report can be re-run for a past date and gives the
/// same answer (Django's code passes `timezone.now()`; pass the time it would have had).
///
/// Django: the seed's raw query with `NOW()` replaced by a parameter
///
/// SQL: as [`top_spenders`], with `created_at > $3 - make_interval(days => $1) and created_at <=
/// $3`.
///
/// # Errors
/// As [`top_spenders`], and [`Error::InvalidInput`] for an `as_of` whose window would start
/// before the earliest time PostgreSQL holds.
pub async fn top_spenders_as_of(
    db: impl PgExecutor<'_>,
    currency: &str,
    as_of: DateTime<Utc>,
    days: i32,
    limit: i64,
) -> Result<Vec<Spender>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.transactions.top_spenders_as_of",
        "SELECT",
        "transactions"
    );
    crate::ground::telemetry::traced(op, async move {
        crate::tables::accounts::validate_currency(currency)?;
        spenders(db, Some(currency), Some(as_of), days, limit).await
    })
    .await
}

/// The spenders' report: of one currency's accounts, or (`None`) of every account.
pub(super) async fn spenders(
    db: impl PgExecutor<'_>,
    currency: Option<&str>,
    as_of: Option<DateTime<Utc>>,
    days: i32,
    limit: i64,
) -> Result<Vec<Spender>> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::invalid(
            "days",
            format!("must be between 1 and {MAX_DAYS}, not {days}"),
        ));
    }
    if let Some(as_of) = as_of
        && as_of - chrono::Duration::days(days.into()) < page::earliest_timestamp()
    {
        return Err(Error::invalid(
            "as_of",
            format!("{as_of} minus {days} days is before the earliest time PostgreSQL holds"),
        ));
    }
    let limit = page::check_limit(limit)?;
    Ok(sqlx::query_as!(
        Spender,
        r#"
        select u.id as "user_id: UserId", u.name, sum(t.amount) as "total_spent!"
        from users u
        join accounts a on a.user_id = u.id
        join transactions t on t.from_account_id = a.id
        where t.created_at > coalesce($3::timestamptz, now()) - make_interval(days => $1)
          and ($3::timestamptz is null or t.created_at <= $3)
          and t.status in ('completed', 'success')
          and ($4::text is null or a.currency = $4)
        group by u.id, u.name
        order by 3 desc, u.id
        limit $2
        "#,
        days,
        limit,
        as_of,
        currency
    )
    .fetch_all(db)
    .await?)
}
