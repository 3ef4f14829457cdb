//! Keyset positions: [`Cursor`] (a row's `(created_at, id)` and a direction, as an opaque token),
//! the pages they read ([`KeysetPage`]) and the checks every keyset listing shares. Re-exported
//! by [`page`](super).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Error, Result};

/// Which way a keyset page reads from its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The rows after the cursor, in the listing's order.
    Next,
    /// The rows before the cursor, in the listing's order.
    Previous,
}

/// The tie-breaking id of a keyset: a UUID (users, accounts, ledger entries) or a `bigint`
/// identity (payments and articles, as Django makes them).
///
/// Implemented for [`Uuid`] and `i64` only.
pub trait CursorKey: Copy + Eq + std::fmt::Debug + sealed::Sealed {
    /// The token's version byte: a token made for one key type never reads as the other.
    #[doc(hidden)]
    const VERSION: u8;
    /// The key's width in the token.
    #[doc(hidden)]
    const LEN: usize;
    /// Appends the key's bytes.
    #[doc(hidden)]
    fn put(&self, out: &mut Vec<u8>);
    /// Reads the key back from exactly `LEN` bytes.
    #[doc(hidden)]
    fn take(bytes: &[u8]) -> Option<Self>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for uuid::Uuid {}
    impl Sealed for i64 {}
}

impl CursorKey for Uuid {
    const VERSION: u8 = 1;
    const LEN: usize = 16;

    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }

    fn take(bytes: &[u8]) -> Option<Self> {
        Uuid::from_slice(bytes).ok()
    }
}

impl CursorKey for i64 {
    const VERSION: u8 = 2;
    const LEN: usize = 8;

    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }

    fn take(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(i64::from_be_bytes)
    }
}

/// A keyset position: the sort key `(created_at, id)` of a row, and which way to read from it.
///
/// `K` is the table's id type: [`Uuid`] for users, accounts and ledger entries, `i64` for
/// payments and articles. Encoded as an opaque token (version, direction, microseconds, id, in
/// hex): 52 characters with a UUID, 36 with an `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor<K: CursorKey = Uuid> {
    /// Which way to read.
    pub direction: Direction,
    /// The boundary row's `created_at`.
    pub created_at: DateTime<Utc>,
    /// The boundary row's id (the tie-breaker).
    pub id: K,
}

impl<K: CursorKey> Cursor<K> {
    /// The position after the row with this sort key, in the listing's order: how the
    /// forward-only listings (`transactions::EntryQuery::list_for_account`, `payments::PaymentQuery::list_containing`, ...)
    /// are read to the end. Pass the last row's `created_at` and id.
    pub fn after(created_at: DateTime<Utc>, id: impl Into<K>) -> Self {
        Self {
            direction: Direction::Next,
            created_at,
            id: id.into(),
        }
    }

    /// The token's length in bytes, before hex.
    const BYTES: usize = 1 + 1 + 8 + K::LEN;

    /// The opaque token.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(Self::BYTES);
        bytes.push(K::VERSION);
        bytes.push(match self.direction {
            Direction::Next => b'n',
            Direction::Previous => b'p',
        });
        bytes.extend_from_slice(&self.created_at.timestamp_micros().to_be_bytes());
        self.id.put(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a token made by [`Cursor::encode`] for the same id type: only its canonical form
    /// (lowercase hex, as `encode` writes it), so that one position has one token and
    /// `decode(t)?.encode() == t`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for anything else: wrong length, not lowercase hex, unknown
    /// version or direction, a time outside what PostgreSQL's `timestamptz` holds.
    pub fn decode(token: &str) -> Result<Self> {
        let corrupt = || Error::invalid("cursor", "not a cursor this crate issued");
        // `from_str_radix` alone would also take upper case and a '+' sign.
        let canonical = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if token.len() != Self::BYTES * 2 || !token.bytes().all(canonical) {
            return Err(corrupt());
        }
        let bytes = (0..Self::BYTES)
            .map(|i| u8::from_str_radix(&token[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| corrupt())?;
        if bytes[0] != K::VERSION {
            return Err(corrupt());
        }
        let direction = match bytes[1] {
            b'n' => Direction::Next,
            b'p' => Direction::Previous,
            _ => return Err(corrupt()),
        };
        let micros = i64::from_be_bytes(bytes[2..10].try_into().map_err(|_| corrupt())?);
        let created_at = DateTime::from_timestamp_micros(micros).ok_or_else(corrupt)?;
        let id = K::take(&bytes[10..]).ok_or_else(corrupt)?;
        let cursor = Self {
            direction,
            created_at,
            id,
        };
        cursor.check_time()?;
        Ok(cursor)
    }

    /// Refuses a time PostgreSQL's `timestamptz` cannot hold (before 4714-11-24 BC; every
    /// `DateTime<Utc>` is before its end, 294276 AD), so that no such cursor reaches the server.
    /// Every listing that takes a cursor checks it, whether decoded or built by hand.
    pub(crate) fn check_time(&self) -> Result<()> {
        if self.created_at < earliest_timestamp() {
            return Err(Error::invalid(
                "cursor",
                format!(
                    "{} is before the earliest time PostgreSQL holds (4714-11-24 BC)",
                    self.created_at
                ),
            ));
        }
        Ok(())
    }
}

/// A keyset page: its rows, and cursors to its neighbours when they exist.
#[derive(Debug, Clone, PartialEq)]
pub struct KeysetPage<T> {
    /// The rows, in the listing's order.
    pub items: Vec<T>,
    /// The cursor of the page after this one, if there are more rows.
    pub next: Option<Cursor>,
    /// The cursor of the page before this one, if there are earlier rows.
    pub previous: Option<Cursor>,
}

/// The sort key a forward-only listing resumes after, as two nullable parameters (both `None` for
/// the first page).
///
/// # Errors
/// [`Error::InvalidInput`] for a [`Direction::Previous`] cursor: these listings read forward only.
pub(crate) fn resume_after<K: CursorKey>(
    after: Option<&Cursor<K>>,
) -> Result<(Option<DateTime<Utc>>, Option<K>)> {
    let Some(c) = after else {
        return Ok((None, None));
    };
    c.check_time()?;
    if c.direction != Direction::Next {
        return Err(Error::invalid(
            "cursor",
            "this listing reads forward only: pass Cursor::after(last row)",
        ));
    }
    Ok((Some(c.created_at), Some(c.id)))
}

/// The earliest instant a `timestamptz` holds: 4714-11-24 00:00 UTC BC (the latest, 294276 AD,
/// is beyond any `DateTime<Utc>`).
pub(crate) fn earliest_timestamp() -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(-4713, 11, 24)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        .and_utc()
}

/// Checks a calendar date a query turns into `timestamptz` bounds: from year -4712 (4713 BC) on,
/// so that the bounds stay within PostgreSQL's range in any time zone.
pub(crate) fn check_date(field: &'static str, date: chrono::NaiveDate) -> Result<()> {
    use chrono::Datelike;
    if date.year() < -4712 {
        return Err(Error::invalid(
            field,
            format!("{date} is before 4713 BC, the earliest date PostgreSQL's times hold"),
        ));
    }
    Ok(())
}

/// Builds a [`KeysetPage`] from rows fetched with one extra row of look-ahead.
///
/// `rows` holds up to `limit + 1` rows read in the direction of `cursor` (reversed order for
/// [`Direction::Previous`]); `key` gives a row's `(created_at, id)`.
pub(crate) fn keyset_page<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor: Option<&Cursor>,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> KeysetPage<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let backwards = cursor.is_some_and(|c| c.direction == Direction::Previous);
    if backwards {
        rows.reverse();
    }
    // Reading forwards, a cursor means rows before exist; reading backwards, it means rows after.
    let (has_next, has_previous) = match cursor {
        None => (more, false),
        Some(_) if backwards => (true, more),
        Some(_) => (more, true),
    };
    let at = |row: Option<&T>, direction| {
        row.map(|row| {
            let (created_at, id) = key(row);
            Cursor {
                direction,
                created_at,
                id,
            }
        })
    };
    KeysetPage {
        next: if has_next {
            at(rows.last(), Direction::Next)
        } else {
            None
        },
        previous: if has_previous {
            at(rows.first(), Direction::Previous)
        } else {
            None
        },
        items: rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let cursor = Cursor {
            direction: Direction::Previous,
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        let token = cursor.encode();
        assert_eq!(token.len(), 52);
        assert_eq!(Cursor::decode(&token).unwrap(), cursor);

        let serial = Cursor::<i64>::after(cursor.created_at, -7);
        let token = serial.encode();
        assert_eq!(token.len(), 36);
        assert_eq!(Cursor::decode(&token).unwrap(), serial);
    }

    #[test]
    fn a_token_for_one_id_type_never_reads_as_the_other() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let uuid = Cursor::<Uuid>::after(at, Uuid::new_v4()).encode();
        let serial = Cursor::<i64>::after(at, 42).encode();
        assert!(Cursor::<i64>::decode(&uuid).is_err());
        assert!(Cursor::<Uuid>::decode(&serial).is_err());
        // Same length, other version byte.
        let forged = format!("01{}", &serial[2..]);
        assert!(Cursor::<i64>::decode(&forged).is_err());
    }

    #[test]
    fn a_position_has_one_token() {
        for micros in [i64::MIN / 4, -1, 0, 1, 1_765_000_000_000_000] {
            let Some(created_at) = DateTime::from_timestamp_micros(micros) else {
                continue;
            };
            if created_at < earliest_timestamp() {
                continue;
            }
            for direction in [Direction::Next, Direction::Previous] {
                let cursor = Cursor {
                    direction,
                    created_at,
                    id: Uuid::new_v4(),
                };
                let token = cursor.encode();
                assert_eq!(Cursor::<Uuid>::decode(&token).unwrap().encode(), token);
            }
        }
        let earliest = Cursor::<Uuid>::after(earliest_timestamp(), Uuid::nil());
        assert_eq!(Cursor::decode(&earliest.encode()).unwrap(), earliest);
    }

    #[test]
    fn corrupt_or_forged_cursors_are_typed_errors() {
        let good = Cursor {
            direction: Direction::Next,
            created_at: Utc::now(),
            id: Uuid::new_v4(),
        }
        .encode();
        let mut bad = vec![
            String::new(),
            "zz".repeat(26),
            good[..50].to_owned(),
            format!("{good}00"),
            format!("02{}", &good[2..]),               // unknown version
            format!("{}78{}", &good[..2], &good[4..]), // unknown direction
            format!("{}{}{}", &good[..4], "7fffffffffffffff", &good[20..]), // time out of range
            "é".repeat(26),
        ];
        bad.push(good.replace(|c: char| c.is_ascii_digit(), "g"));
        // Not the canonical form: upper case, and a '+' that `from_str_radix` takes as a sign.
        let upper = good.to_ascii_uppercase();
        assert_ne!(upper, good, "the token has a hex letter to raise");
        bad.push(upper);
        bad.push(format!("{}+{}", &good[..10], &good[11..]));
        // A time chrono holds but PostgreSQL does not: one microsecond before 4714-11-24 BC.
        let early = earliest_timestamp() - chrono::Duration::microseconds(1);
        bad.push(
            Cursor {
                direction: Direction::Next,
                created_at: early,
                id: Uuid::new_v4(),
            }
            .encode(),
        );
        for token in bad {
            assert!(
                matches!(
                    Cursor::<Uuid>::decode(&token),
                    Err(Error::InvalidInput {
                        field: "cursor",
                        ..
                    })
                ),
                "{token:?}"
            );
        }
    }
}
