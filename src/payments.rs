//! `payments`: the seed's `Payment` model, a JSONB document per payment.
//!
//! Invariant: `data` is a JSON object ([`DATA_OBJECT`]). The seed's model has only `data`; the
//! table adds a uuid key and `created_at` for a stable order.

use chrono::{DateTime, Utc};

use crate::ids::id_type;

/// `check (jsonb_typeof(data) = 'object')`.
pub const DATA_OBJECT: &str = "payments_data_object";

id_type! {
    /// The id of a [`Payment`].
    PaymentId
}

/// A row of `payments`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Payment {
    /// Primary key.
    pub id: PaymentId,
    /// The document.
    pub data: serde_json::Value,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
}
