//! `numeric` as PostgreSQL sends it, with its scale: a zero balance reads as `0.00`, not `0`.
//!
//! sqlx decodes a `numeric` zero as `Decimal::ZERO` (scale 0) whatever the column's scale, while
//! every other value keeps it (`1.50` stays `1.50`). The query macros decode every `numeric`
//! through [`Numeric`] (`sqlx.toml`'s type override), which restores the scale PostgreSQL sent,
//! and hand the caller a plain [`Decimal`]: money read from a `numeric(15,2)` column always has two
//! decimal places, in structs, `Display`, the tour and dumps.

use rust_decimal::Decimal;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueFormat, PgValueRef, Postgres};
use sqlx::{Decode, Type};

/// A `numeric` read with the scale PostgreSQL sent; converts into [`Decimal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numeric(pub Decimal);

impl From<Numeric> for Decimal {
    fn from(value: Numeric) -> Self {
        value.0
    }
}

impl Type<Postgres> for Numeric {
    fn type_info() -> PgTypeInfo {
        <Decimal as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Decimal as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for Numeric {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        // The binary header: digit count, weight, sign, display scale (four big-endian 16-bit
        // fields). Text values ("0.00") already carry their scale.
        let scale = match value.format() {
            PgValueFormat::Binary => value
                .as_bytes()?
                .get(6..8)
                .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]]))),
            PgValueFormat::Text => None,
        };
        let mut decimal = <Decimal as Decode<Postgres>>::decode(value)?;
        if let Some(scale) = scale
            && decimal.is_zero()
            && decimal.scale() < scale
        {
            decimal.rescale(scale);
        }
        Ok(Self(decimal))
    }
}
