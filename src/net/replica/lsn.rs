//! [`Lsn`]: a position in the writer's write-ahead log.

use std::fmt;
use std::str::FromStr;

use sqlx::PgExecutor;

use crate::{Error, Result};

/// A position in the writer's write-ahead log (PostgreSQL's `pg_lsn`), as a byte offset.
///
/// Displayed and parsed as PostgreSQL writes it, `16/B374D848`.
///
/// ```
/// use ledger::replica::Lsn;
/// let lsn: Lsn = "16/B374D848".parse()?;
/// assert_eq!(lsn.to_string(), "16/B374D848");
/// assert!(lsn > "16/B374D847".parse()?);
/// # Ok::<(), ledger::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(u64);

impl Lsn {
    /// The byte offset.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The writer's WAL position flushed so far: every transaction that committed before this
    /// call (with `synchronous_commit` on, PostgreSQL's default) lies at or before it.
    ///
    /// SQL: `select pg_current_wal_flush_lsn() - '0/0'`. Fails on a standby (SQLSTATE 55000).
    ///
    /// # Errors
    /// [`Error::Database`] when the query fails.
    pub async fn current(executor: impl PgExecutor<'_>) -> Result<Self> {
        let offset = sqlx::query_scalar!(
            r#"select (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint as "offset!""#
        )
        .fetch_one(executor)
        .await?;
        Ok(Self::from_offset(offset))
    }

    pub(super) fn from_offset(offset: i64) -> Self {
        // pg_lsn is unsigned 64-bit; a bigint holds every position a server reaches in practice
        // (8 EiB of WAL). A negative offset cannot come from the queries above.
        Self(u64::try_from(offset).unwrap_or(0))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = || {
            Error::invalid(
                "lsn",
                format!("not a WAL position (like 16/B374D848): {text:?}"),
            )
        };
        let (high, low) = text.split_once('/').ok_or_else(invalid)?;
        let half = |part: &str| {
            (!part.is_empty() && part.len() <= 8 && part.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u32::from_str_radix(part, 16).ok())
                .flatten()
                .ok_or_else(invalid)
        };
        Ok(Self(u64::from(half(high)?) << 32 | u64::from(half(low)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text_round_trips_and_orders_as_postgresql_does() {
        for text in ["0/0", "0/1", "16/B374D848", "FFFFFFFF/FFFFFFFF"] {
            assert_eq!(text.parse::<Lsn>().unwrap().to_string(), text);
        }
        let lsn = |t: &str| t.parse::<Lsn>().unwrap();
        assert!(lsn("1/0") > lsn("0/FFFFFFFF"));
        assert_eq!(lsn("1/0").as_u64(), 1 << 32);
    }

    #[test]
    fn malformed_lsn_text_is_invalid_input() {
        for text in [
            "",
            "/",
            "0/",
            "/0",
            "16B374D848",
            "1/2/3",
            "G/0",
            "100000000/0",
            "-1/0",
            "+1/0",
        ] {
            assert!(
                matches!(
                    text.parse::<Lsn>(),
                    Err(Error::InvalidInput { field: "lsn", .. })
                ),
                "{text:?}"
            );
        }
    }
}
