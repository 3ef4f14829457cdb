//! Pagination: Django's `Paginator` (count + `LIMIT`/`OFFSET`) and keyset cursors.
//!
//! [`Paginator`] reproduces `django.core.paginator.Paginator` with `allow_empty_first_page=True`:
//! an empty list still has one (empty) page; [`Paginator::page`] is strict and refuses numbers
//! outside `1..=num_pages`; [`Paginator::get_page`] never fails: input that is not a number gives
//! page 1, and a number below 1 or past the end gives the last page, exactly as Django does.
//!
//! `OFFSET` makes the server walk past every skipped row, so deep pages get slower. A
//! [`Cursor`] instead remembers the last row's sort key and asks for the rows after it, which an
//! index answers at the same cost at any depth; rows inserted between two fetches neither repeat
//! nor shift a page. A cursor is an opaque token: [`Cursor::decode`] refuses a corrupt or forged
//! one with [`Error::InvalidInput`], never a panic or a database error.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Error, Result};

/// Page size the paginators accept at most.
pub const MAX_PER_PAGE: i64 = 1000;

/// Django's `Paginator` over `count` rows.
///
/// ```
/// use ledger::page::Paginator;
///
/// let paginator = Paginator::new(45, 20)?;
/// assert_eq!(paginator.num_pages(), 3);
/// let page = paginator.get_page("3");
/// assert_eq!((page.offset(), page.limit(), page.len()), (40, 20, 5));
/// assert!(page.has_previous() && !page.has_next());
/// assert_eq!(paginator.get_page("abc").number(), 1);
/// assert_eq!(paginator.get_page("99").number(), 3);
/// assert!(paginator.page(4).is_err());
/// # Ok::<(), ledger::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paginator {
    count: i64,
    per_page: i64,
}

impl Paginator {
    /// A paginator over `count` rows, `per_page` at a time.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `per_page` is not in `1..=MAX_PER_PAGE` or `count` is negative.
    pub fn new(count: i64, per_page: i64) -> Result<Self> {
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(Error::invalid(
                "per_page",
                format!("must be between 1 and {MAX_PER_PAGE}, not {per_page}"),
            ));
        }
        if count < 0 {
            return Err(Error::invalid("count", "must not be negative"));
        }
        Ok(Self { count, per_page })
    }

    /// How many rows in all.
    pub fn count(&self) -> i64 {
        self.count
    }

    /// Rows per page.
    pub fn per_page(&self) -> i64 {
        self.per_page
    }

    /// Number of pages; 1 for an empty list.
    pub fn num_pages(&self) -> i64 {
        // Written so that no count up to i64::MAX overflows.
        let full = self.count / self.per_page;
        (full + i64::from(self.count % self.per_page != 0)).max(1)
    }

    /// Page `number` (1-based), strictly.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a number below 1 ("less than 1") or past the last page ("contains
    /// no results"), Django's `EmptyPage`.
    pub fn page(&self, number: i64) -> Result<PageSpec> {
        if number < 1 {
            return Err(Error::invalid("page", format!("{number} is less than 1")));
        }
        if number > self.num_pages() {
            return Err(Error::invalid(
                "page",
                format!(
                    "{number} contains no results (last page is {})",
                    self.num_pages()
                ),
            ));
        }
        Ok(PageSpec {
            number,
            paginator: *self,
        })
    }

    /// Page from user input, leniently, as Django's `get_page`: not a number → page 1; below 1 or
    /// past the end → the last page, numbers beyond `i64` included (`"99999999999999999999"`, which
    /// Python's `int` reads). A number is what `int()` reads in ASCII: white space around, an
    /// optional sign, digits with single underscores between them (`"1_000"`). Unlike Python,
    /// digits of other scripts (`"٣"`) are not numbers here, so they give page 1.
    pub fn get_page(&self, input: &str) -> PageSpec {
        let number = match parse_page_number(input) {
            Some(PageNumber::Fits(n)) if (1..=self.num_pages()).contains(&n) => n,
            // Below 1, past the end, or beyond i64 either way: Django's `EmptyPage`.
            Some(_) => self.num_pages(),
            // Django's `PageNotAnInteger`.
            None => 1,
        };
        PageSpec {
            number,
            paginator: *self,
        }
    }
}

/// A page number as Python's `int()` reads it.
enum PageNumber {
    Fits(i64),
    OutOfRange,
}

/// Reads `input` as Python's `int(input)` does for ASCII: surrounding white space, an optional
/// sign, and digits with single underscores between them. A valid number too large for `i64`
/// is [`PageNumber::OutOfRange`] (Python's `int` has no limit, so Django sees a page past the
/// end); anything else is `None`.
fn parse_page_number(input: &str) -> Option<PageNumber> {
    let text = input.trim();
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return None;
    }
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    Some(match plain.parse::<i64>() {
        Ok(n) => PageNumber::Fits(n),
        Err(_) => PageNumber::OutOfRange,
    })
}

/// One page of a [`Paginator`]: where it starts and what surrounds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSpec {
    number: i64,
    paginator: Paginator,
}

impl PageSpec {
    /// The page number, 1-based.
    pub fn number(&self) -> i64 {
        self.number
    }

    /// The paginator this page belongs to.
    pub fn paginator(&self) -> &Paginator {
        &self.paginator
    }

    /// `OFFSET` for this page.
    pub fn offset(&self) -> i64 {
        (self.number - 1) * self.paginator.per_page
    }

    /// `LIMIT` for this page.
    pub fn limit(&self) -> i64 {
        self.paginator.per_page
    }

    /// Rows on this page, by the paginator's count.
    pub fn len(&self) -> i64 {
        (self.paginator.count - self.offset()).clamp(0, self.limit())
    }

    /// Whether this page is empty (only the one page of an empty list is).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a later page exists.
    pub fn has_next(&self) -> bool {
        self.number < self.paginator.num_pages()
    }

    /// Whether an earlier page exists.
    pub fn has_previous(&self) -> bool {
        self.number > 1
    }

    /// The next page's number, if any.
    pub fn next_page_number(&self) -> Option<i64> {
        self.has_next().then_some(self.number + 1)
    }

    /// The previous page's number, if any.
    pub fn previous_page_number(&self) -> Option<i64> {
        self.has_previous().then_some(self.number - 1)
    }

    /// 1-based index of the first row on the page (0 for an empty list), as Django's.
    pub fn start_index(&self) -> i64 {
        if self.paginator.count == 0 {
            0
        } else {
            self.offset() + 1
        }
    }

    /// 1-based index of the last row on the page, as Django's.
    pub fn end_index(&self) -> i64 {
        self.offset() + self.len()
    }
}

/// A fetched page: its rows and its place among the pages.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Which page this is.
    pub spec: PageSpec,
}

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
    /// forward-only listings (`transactions::list_for_account`, `payments::list_containing`, ...)
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

/// Checks a keyset page size.
pub(crate) fn check_limit(limit: i64) -> Result<i64> {
    if (1..=MAX_PER_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_PER_PAGE}, not {limit}"),
        ))
    }
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
    fn empty_list_has_one_empty_page() {
        let p = Paginator::new(0, 20).unwrap();
        assert_eq!(p.num_pages(), 1);
        let page = p.page(1).unwrap();
        assert!(page.is_empty());
        assert!(!page.has_next() && !page.has_previous());
        assert_eq!((page.start_index(), page.end_index()), (0, 0));
        assert_eq!(p.get_page("7").number(), 1);
    }

    #[test]
    fn strict_page_refuses_out_of_range_numbers() {
        let p = Paginator::new(41, 20).unwrap();
        assert_eq!(p.num_pages(), 3);
        for n in [0, -1, 4, i64::MAX] {
            assert!(
                matches!(p.page(n), Err(Error::InvalidInput { field: "page", .. })),
                "{n}"
            );
        }
        let last = p.page(3).unwrap();
        assert_eq!(
            (
                last.offset(),
                last.len(),
                last.start_index(),
                last.end_index()
            ),
            (40, 1, 41, 41)
        );
        assert_eq!(last.previous_page_number(), Some(2));
        assert_eq!(last.next_page_number(), None);
    }

    #[test]
    fn get_page_clamps_like_django() {
        let p = Paginator::new(100, 10).unwrap();
        assert_eq!(p.get_page("").number(), 1);
        assert_eq!(p.get_page("two").number(), 1);
        assert_eq!(p.get_page("1.5").number(), 1);
        assert_eq!(p.get_page(" 4 ").number(), 4);
        assert_eq!(p.get_page("11").number(), 10);
        assert_eq!(p.get_page("0").number(), 10);
        assert_eq!(p.get_page("-3").number(), 10);
        // Python's int() reads these, so Django treats them as numbers past the end.
        assert_eq!(p.get_page("99999999999999999999").number(), 10);
        assert_eq!(p.get_page("-99999999999999999999").number(), 10);
        assert_eq!(p.get_page("1_0").number(), 10);
        assert_eq!(p.get_page("+3").number(), 3);
        assert_eq!(p.get_page("1__0").number(), 1);
        assert_eq!(p.get_page("_1").number(), 1);
        assert_eq!(p.get_page("+").number(), 1);
        // Python reads it as 3; this crate documents that it does not.
        assert_eq!(p.get_page("٣").number(), 1);
    }

    #[test]
    fn page_arithmetic_does_not_overflow() {
        let p = Paginator::new(i64::MAX, 1000).unwrap();
        assert_eq!(p.num_pages(), i64::MAX / 1000 + 1);
        let last = p.get_page("99999999999999999999");
        assert_eq!(last.number(), p.num_pages());
        assert_eq!(last.end_index(), i64::MAX);
        assert_eq!(last.len(), i64::MAX % 1000);
        assert_eq!(Paginator::new(i64::MAX, 1).unwrap().num_pages(), i64::MAX);
        assert_eq!(Paginator::new(0, 7).unwrap().num_pages(), 1);
    }

    #[test]
    fn bad_page_sizes_are_refused() {
        for size in [0, -5, MAX_PER_PAGE + 1] {
            assert!(matches!(
                Paginator::new(10, size),
                Err(Error::InvalidInput {
                    field: "per_page",
                    ..
                })
            ));
        }
        assert!(Paginator::new(-1, 10).is_err());
        assert!(check_limit(0).is_err() && check_limit(MAX_PER_PAGE).is_ok());
    }

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
