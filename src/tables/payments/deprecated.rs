//! The positional listings of the previous release (`list_by_method(db, method, after, limit)`),
//! kept for one release as deprecated bridges to [`PaymentQuery`], which they call. Re-exported
//! by [`payments`](super); removed in the next release.

use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgExecutor;

use super::{Payment, PaymentQuery};
use crate::Result;
use crate::page::Cursor;

/// Payments whose document contains `fragment` (every key and value of it, at any depth):
/// the building block of the key-value and nested queries below.
///
/// Django: `Payment.objects.filter(data__contains={'shipping': {'country': 'US'}})`
///
/// SQL: see [`PaymentQuery::list_containing`].
///
/// # Errors
/// As [`PaymentQuery::list_containing`].
#[deprecated(
    since = "0.2.0",
    note = "use `PaymentQuery::new().after(after.copied()).limit(limit).list_containing(db, fragment)`"
)]
pub async fn list_containing(
    db: impl PgExecutor<'_>,
    fragment: &Value,
    after: Option<&Cursor<i64>>,
    limit: i64,
) -> Result<Vec<Payment>> {
    PaymentQuery::new()
        .after(after.copied())
        .limit(limit)
        .list_containing(db, fragment)
        .await
}

/// Payments made with this method.
///
/// Django: `Payment.objects.filter(data__method='credit_card')`
///
/// SQL: see [`PaymentQuery::list_by_method`].
///
/// # Errors
/// As [`PaymentQuery::list_by_method`].
#[deprecated(
    since = "0.2.0",
    note = "use `PaymentQuery::new().after(after.copied()).limit(limit).list_by_method(db, method)`"
)]
pub async fn list_by_method(
    db: impl PgExecutor<'_>,
    method: &str,
    after: Option<&Cursor<i64>>,
    limit: i64,
) -> Result<Vec<Payment>> {
    PaymentQuery::new()
        .after(after.copied())
        .limit(limit)
        .list_by_method(db, method)
        .await
}

/// Payments with this card brand.
///
/// Django: `Payment.objects.filter(data__brand='Visa')`
///
/// SQL: see [`PaymentQuery::list_by_brand`].
///
/// # Errors
/// As [`PaymentQuery::list_by_brand`].
#[deprecated(
    since = "0.2.0",
    note = "use `PaymentQuery::new().after(after.copied()).limit(limit).list_by_brand(db, brand)`"
)]
pub async fn list_by_brand(
    db: impl PgExecutor<'_>,
    brand: &str,
    after: Option<&Cursor<i64>>,
    limit: i64,
) -> Result<Vec<Payment>> {
    PaymentQuery::new()
        .after(after.copied())
        .limit(limit)
        .list_by_brand(db, brand)
        .await
}

/// Payments shipping to this country (a nested key).
///
/// Django: `Payment.objects.filter(data__shipping__country='US')`
///
/// SQL: see [`PaymentQuery::list_by_shipping_country`].
///
/// # Errors
/// As [`PaymentQuery::list_by_shipping_country`].
#[deprecated(
    since = "0.2.0",
    note = "use `PaymentQuery::new().after(after.copied()).limit(limit).list_by_shipping_country(db, country)`"
)]
pub async fn list_by_shipping_country(
    db: impl PgExecutor<'_>,
    country: &str,
    after: Option<&Cursor<i64>>,
    limit: i64,
) -> Result<Vec<Payment>> {
    PaymentQuery::new()
        .after(after.copied())
        .limit(limit)
        .list_by_shipping_country(db, country)
        .await
}

/// Payments whose document has this top-level key.
///
/// Django: `Payment.objects.filter(data__has_key='discount')`
///
/// SQL: see [`PaymentQuery::list_with_key`].
///
/// # Errors
/// As [`PaymentQuery::list_with_key`].
#[deprecated(
    since = "0.2.0",
    note = "use `PaymentQuery::new().after(after.copied()).limit(limit).list_with_key(db, key)`"
)]
pub async fn list_with_key(
    db: impl PgExecutor<'_>,
    key: &str,
    after: Option<&Cursor<i64>>,
    limit: i64,
) -> Result<Vec<Payment>> {
    PaymentQuery::new()
        .after(after.copied())
        .limit(limit)
        .list_with_key(db, key)
        .await
}

/// Payments whose `amount` is a JSON number of at least `min`.
///
/// Django: `Payment.objects.filter(data__amount__gte=100)`
///
/// SQL: see [`PaymentQuery::list_amount_at_least`].
///
/// # Errors
/// As [`PaymentQuery::list_amount_at_least`].
#[deprecated(
    since = "0.2.0",
    note = "use `PaymentQuery::new().after(after.copied()).limit(limit).list_amount_at_least(db, min)`"
)]
pub async fn list_amount_at_least(
    db: impl PgExecutor<'_>,
    min: Decimal,
    after: Option<&Cursor<i64>>,
    limit: i64,
) -> Result<Vec<Payment>> {
    PaymentQuery::new()
        .after(after.copied())
        .limit(limit)
        .list_amount_at_least(db, min)
        .await
}
