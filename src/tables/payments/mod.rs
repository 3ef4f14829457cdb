//! `payments`: the seed's `Payment` model, one JSONB document per payment.
//!
//! Invariant: `data` is a JSON object ([`DATA_OBJECT`]) of at most [`MAX_PAYLOAD_BYTES`]. The
//! seed's model has only `data`; Django gives it a `bigint` identity key, and the table adds `created_at` for a stable order.
//!
//! **Typed, but open.** [`PaymentData`] types the fields the seed shows (`method`, `last4`,
//! `brand`, a numeric `amount`, `shipping.country`, an optional `discount`); any other key is kept
//! in [`PaymentData::extra`] and written back untouched.
//!
//! **Indexed.** Key-value and nested queries are written as containment (`data @> {...}`) and key
//! existence as `data ? key`, both served by the GIN index `payments_data_gin_idx`. Django's
//! `data__method='credit_card'` compiles to `data -> 'method' = '"credit_card"'`, which no index
//! serves. After a bulk load, new entries wait in the GIN index's pending list and the planner
//! avoids the index until (auto)vacuum merges them: run `vacuum analyze payments` after one.
//!
//! **Numbers compare as numbers.** [`PaymentQuery::list_amount_at_least`] compares the JSON number with a
//! jsonpath filter, so 9 < 100 (text comparison says otherwise) and an `amount` stored as a string
//! never matches instead of failing the query.
//!
//! Amounts in documents are JSON numbers. `serde_json` reads a fractional number as an `f64`,
//! which holds the 15 significant digits of any numeric(15,2) amount exactly; [`PaymentData`]
//! converts through the shortest decimal form, so such amounts round-trip exactly.

mod bulk;
mod listing;

pub use bulk::{copy_in, insert_many};
pub use listing::PaymentQuery;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::PgExecutor;

use crate::{Error, Result};

/// `check (jsonb_typeof(data) = 'object')`.
pub const DATA_OBJECT: &str = "payments_data_object";
/// Largest document accepted, serialized, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

pub use crate::ground::ids::PaymentId;

use crate::ground::document::Document;

/// A row of `payments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// Primary key.
    pub id: PaymentId,
    /// The document, as stored (any depth reads back; see [`Document`]).
    pub data: Document,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
}

impl Payment {
    /// The document as [`PaymentData`].
    ///
    /// Reads any JSON object: a known key holding another JSON type than its field's (a
    /// `discount` object, an `amount` string) stays in [`PaymentData::extra`] as stored.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the document is not a JSON object, or is nested deeper than a
    /// `serde_json::Value` holds (128 levels; [`Payment::data`] still reads it).
    pub fn typed(&self) -> Result<PaymentData> {
        self.data
            .parse()
            .map_err(|e| Error::invalid("data", format!("not a payment document: {e}")))
    }
}

/// Where a payment ships. Reads any JSON object, as [`PaymentData`] does.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Shipping {
    /// ISO country code, e.g. `US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Every other key, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The document of a payment: the seed's fields typed, every other key kept.
///
/// **Lenient, and lossless.** It reads any JSON object that real data holds: a known key whose
/// value has another JSON type than its field's (Django data with a `discount` object, a `last4`
/// number, an `amount` string) is not an error; the field stays `None` and the key is kept in
/// [`extra`](Self::extra) as stored, so writing the document back stores the same JSON. A
/// `null` value reads as `None` and is not written back.
///
/// ```
/// use ledger::payments::PaymentData;
///
/// let data: PaymentData = serde_json::from_value(serde_json::json!({
///     "method": "credit_card", "last4": "4242", "brand": "Visa",
///     "amount": 120.5, "shipping": {"country": "US"}, "gift": true
/// }))?;
/// assert_eq!(data.amount, Some("120.5".parse()?));
/// assert_eq!(data.extra["gift"], true); // unknown keys are kept
///
/// // A shape the field does not have is kept as it is, not refused.
/// let django: PaymentData = serde_json::from_value(serde_json::json!({
///     "method": "paypal", "discount": {"code": "SPRING", "percent": 10}
/// }))?;
/// assert_eq!(django.discount, None);
/// assert_eq!(django.extra["discount"]["percent"], 10);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PaymentData {
    /// `credit_card`, `bank_transfer`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The card's last four digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last4: Option<String>,
    /// The card brand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// The amount, a JSON number.
    #[serde(default, with = "json_number", skip_serializing_if = "Option::is_none")]
    pub amount: Option<Decimal>,
    /// Shipping details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Shipping>,
    /// A discount, a JSON number.
    #[serde(default, with = "json_number", skip_serializing_if = "Option::is_none")]
    pub discount: Option<Decimal>,
    /// Every other key, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Option<Decimal>` as a JSON number (not the string `rust_decimal` serializes by default).
mod json_number {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Number;

    pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => {
                let number: Number = d
                    .to_string()
                    .parse()
                    .map_err(|_| serde::ser::Error::custom("amount is not a JSON number"))?;
                s.serialize_some(&number)
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let number = Option::<Number>::deserialize(d)?;
        number
            .map(|n| n.to_string().parse::<Decimal>())
            .transpose()
            .map_err(serde::de::Error::custom)
    }
}

/// Takes `key` out of `map` when its value reads as `T`; otherwise leaves it there, as stored.
fn take_typed<T>(
    map: &mut Map<String, Value>,
    key: &str,
    read: impl Fn(&Value) -> std::result::Result<Option<T>, serde_json::Error>,
) -> Option<T> {
    let value = read(map.get(key)?).ok()?;
    map.remove(key);
    value
}

fn read_as<T: serde::de::DeserializeOwned>(
    value: &Value,
) -> std::result::Result<Option<T>, serde_json::Error> {
    Option::<T>::deserialize(value)
}

impl<'de> Deserialize<'de> for PaymentData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut extra = Map::<String, Value>::deserialize(d)?;
        Ok(Self {
            method: take_typed(&mut extra, "method", read_as),
            last4: take_typed(&mut extra, "last4", read_as),
            brand: take_typed(&mut extra, "brand", read_as),
            amount: take_typed(&mut extra, "amount", |v| json_number::deserialize(v)),
            shipping: take_typed(&mut extra, "shipping", read_as),
            discount: take_typed(&mut extra, "discount", |v| json_number::deserialize(v)),
            extra,
        })
    }
}

impl<'de> Deserialize<'de> for Shipping {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut extra = Map::<String, Value>::deserialize(d)?;
        Ok(Self {
            country: take_typed(&mut extra, "country", read_as),
            extra,
        })
    }
}

pub(super) fn check_payload(data: &Value) -> Result<()> {
    if !data.is_object() {
        return Err(Error::invalid("data", "must be a JSON object"));
    }
    crate::ground::document::check("data", data, MAX_PAYLOAD_BYTES)
}

/// Stores a typed payment document.
///
/// Django: `Payment.objects.create(data={'method': 'credit_card', 'last4': '4242', 'brand': 'Visa'})`
///
/// SQL: `insert into payments (data) values ($1) returning id, data, created_at`.
///
/// # Errors
/// [`Error::InvalidInput`] when the document is larger than [`MAX_PAYLOAD_BYTES`] (nothing is
/// sent).
pub async fn insert(db: impl PgExecutor<'_>, data: &PaymentData) -> Result<Payment> {
    let op = crate::ground::telemetry::op_span!("ledger.payments.insert", "INSERT", "payments");
    crate::ground::telemetry::traced(op, async move {
        let value = serde_json::to_value(data)
            .map_err(|e| Error::invalid("data", format!("cannot be serialized: {e}")))?;
        store(db, &value).await
    })
    .await
}

/// Stores an untyped document.
///
/// Django: `Payment.objects.create(data={...})` with any dict
///
/// SQL: `insert into payments (data) values ($1) returning id, data, created_at`.
///
/// # Errors
/// [`Error::InvalidInput`] for a document that is not a JSON object or is larger than
/// [`MAX_PAYLOAD_BYTES`] (nothing is sent).
pub async fn insert_json(db: impl PgExecutor<'_>, data: &Value) -> Result<Payment> {
    let op =
        crate::ground::telemetry::op_span!("ledger.payments.insert_json", "INSERT", "payments");
    crate::ground::telemetry::traced(op, store(db, data)).await
}

/// [`insert_json`]'s statement, without a span of its own: [`insert`] and [`insert_json`] each
/// open theirs.
async fn store(db: impl PgExecutor<'_>, data: &Value) -> Result<Payment> {
    check_payload(data)?;
    Ok(sqlx::query_as!(
        Payment,
        r#"
        insert into payments (data)
        values ($1)
        returning id, data, created_at
        "#,
        data
    )
    .fetch_one(db)
    .await?)
}

/// The payment with this id.
///
/// Django: `Payment.objects.get(id=...)`
///
/// SQL: `select id, data, created_at from payments where id = $1`.
///
/// # Errors
/// [`Error::NotFound`] when there is no such payment.
pub async fn get(db: impl PgExecutor<'_>, id: PaymentId) -> Result<Payment> {
    let op = crate::ground::telemetry::op_span!("ledger.payments.get", "SELECT", "payments");
    crate::ground::telemetry::traced(op, async move {
        sqlx::query_as!(
            Payment,
            r#"select id, data, created_at from payments where id = $1"#,
            id.get()
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "payment" })
    })
    .await
}
