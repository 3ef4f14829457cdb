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

mod forward;
mod keyset;

pub use forward::DEFAULT_PER_PAGE;
pub(crate) use forward::forward_query;
pub use keyset::{Cursor, CursorKey, Direction, KeysetPage};
pub(crate) use keyset::{check_date, earliest_timestamp, keyset_page, resume_after};

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
}
