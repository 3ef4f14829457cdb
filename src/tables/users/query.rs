//! [`UserQuery`]: which users a page shows, in what order, how many at a time, as one value
//! with defaults, so that a knob added later breaks no caller. Re-exported by [`users`](super).

use std::ops::Range;

use sqlx::{PgConnection, PgExecutor};

use super::listing::{count, keyset, list_ordered, slice};
use super::paginate::{Counting, UserPaginator};
use super::prefetch::{UserWithAccounts, with_accounts};
use super::{User, UserOrder, Visibility};
use crate::tables::page::{Cursor, KeysetPage, Page, Paginator};
use crate::{Error, Result};

/// Rows per page when a [`UserQuery`] is not told otherwise: the one default page size of every
/// query value (the cheat sheet's `Paginator(..., 20)`).
pub use crate::tables::page::DEFAULT_PER_PAGE;

/// How users are paged: which ones ([`Visibility`]), in what order ([`UserOrder`]), how many per
/// page. Build it from [`UserQuery::new`] (live users, newest first, [`DEFAULT_PER_PAGE`]) and
/// the setters; then read a numbered page ([`page`](Self::page), [`get_page`](Self::get_page)),
/// a slice ([`slice`](Self::slice)), a keyset page ([`keyset`](Self::keyset)) or make a
/// [`UserPaginator`] ([`paginator`](Self::paginator)).
///
/// `#[non_exhaustive]`: a setting added later has a default, so code written today keeps
/// compiling. Values are checked when a page is read (a `per_page` outside
/// `1..=MAX_PER_PAGE` is [`Error::InvalidInput`], and nothing is sent).
///
/// ```no_run
/// # async fn demo(mut conn: ledger::PgConnection) -> ledger::Result<()> {
/// use ledger::users::{UserOrder, UserQuery, Visibility};
///
/// // Django: Paginator(User.objects.filter(deleted_at__isnull=True).order_by('name'), 20).page(1)
/// let names = UserQuery::new().order(UserOrder::NameAsc);
/// let first = names.page(&mut conn, 1).await?;
///
/// // Every user, soft-deleted ones too, 50 at a time, newest first.
/// let all = UserQuery::new().visibility(Visibility::All).per_page(50);
/// let latest = all.get_page(&mut conn, "1").await?;
/// # let _ = (first, latest);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserQuery {
    /// Live users only (the default) or all.
    pub visibility: Visibility,
    /// The order. The default is [`UserOrder::NewestFirst`], the one order every kind of page
    /// reads (keyset pages read no other).
    pub order: UserOrder,
    /// Rows per page (a keyset page's size, a numbered page's `per_page`).
    pub per_page: i64,
}

impl Default for UserQuery {
    fn default() -> Self {
        Self::new()
    }
}

impl UserQuery {
    /// Live users, newest first, [`DEFAULT_PER_PAGE`] per page.
    pub const fn new() -> Self {
        Self {
            visibility: Visibility::Live,
            order: UserOrder::NewestFirst,
            per_page: DEFAULT_PER_PAGE,
        }
    }

    /// Which users: live ones, or all.
    #[must_use]
    pub const fn visibility(mut self, visibility: Visibility) -> Self {
        self.visibility = visibility;
        self
    }

    /// The order.
    #[must_use]
    pub const fn order(mut self, order: UserOrder) -> Self {
        self.order = order;
        self
    }

    /// Rows per page, `1..=MAX_PER_PAGE` (checked when a page is read).
    #[must_use]
    pub const fn per_page(mut self, per_page: i64) -> Self {
        self.per_page = per_page;
        self
    }

    /// Page `number`, strictly (Django's `paginator.page(n)`): counts the users, then reads the
    /// page.
    ///
    /// Django: `Paginator(User.objects.filter(deleted_at__isnull=True), 20).page(n)`
    ///
    /// SQL: `select count(*) from users where deleted_at is null`, then the ordered slice
    /// (`order by ... limit $1 offset $2`; plans as [`slice`](Self::slice)). Two statements:
    /// pass a connection (or `&mut *tx` for one snapshot).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a page below 1 or past the last page, or a bad `per_page`.
    pub async fn page(self, conn: &mut PgConnection, number: i64) -> Result<Page<User>> {
        let op =
            crate::ground::telemetry::op_span!("ledger.users.UserQuery.page", "SELECT", "users");
        crate::ground::telemetry::traced(op, async move {
            let paginator =
                Paginator::new(count(&mut *conn, self.visibility).await?, self.per_page)?;
            let spec = paginator.page(number)?;
            let items = list_ordered(
                conn,
                self.visibility,
                self.order,
                spec.limit(),
                spec.offset(),
            )
            .await?;
            Ok(Page { items, spec })
        })
        .await
    }

    /// A page read leniently, as Django's `get_page` does: `input` is user input (not a number
    /// → 1, out of range → the last page). Counts the users, then reads the page.
    ///
    /// Django:
    /// `paginator = Paginator(User.objects.filter(deleted_at__isnull=True), 20)`;
    /// `page = paginator.get_page(request.GET.get('page', 1))`
    ///
    /// SQL: as [`page`](Self::page).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a `per_page` outside `1..=MAX_PER_PAGE`.
    pub async fn get_page(self, conn: &mut PgConnection, input: &str) -> Result<Page<User>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.users.UserQuery.get_page",
            "SELECT",
            "users"
        );
        crate::ground::telemetry::traced(op, async move {
            let paginator =
                Paginator::new(count(&mut *conn, self.visibility).await?, self.per_page)?;
            let spec = paginator.get_page(input);
            let items = list_ordered(
                conn,
                self.visibility,
                self.order,
                spec.limit(),
                spec.offset(),
            )
            .await?;
            Ok(Page { items, spec })
        })
        .await
    }

    /// A slice of the users in this order: `0..10` is `[:10]`, `20..30` is `[20:30]`
    /// (`per_page` does not apply).
    ///
    /// Django: `User.objects.order_by('name')[20:30]`,
    /// `User.objects.order_by('-created_at')[:10]`, `User.objects.order_by('created_at')[:10]`
    ///
    /// SQL: `order by name, id`, `order by created_at desc, id desc` or `order by created_at,
    /// id`, then `limit $1 offset $2`.
    ///
    /// Plan (100,000 rows, checked by `tests/db/plans.rs`): newest and oldest first:
    /// `users_live_created_at_id_idx` (oldest first reads it backwards), no sort; `OFFSET` still
    /// walks past every skipped row.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a negative start, an end before the start, or a slice longer
    /// than [`MAX_PER_PAGE`](crate::page::MAX_PER_PAGE).
    pub async fn slice(self, db: impl PgExecutor<'_>, range: Range<i64>) -> Result<Vec<User>> {
        let op =
            crate::ground::telemetry::op_span!("ledger.users.UserQuery.slice", "SELECT", "users");
        crate::ground::telemetry::traced(op, async move {
            slice(db, self.visibility, self.order, range).await
        })
        .await
    }

    /// A keyset page of `per_page` users, newest first: the first page when `cursor` is `None`,
    /// else the page after (or before) the cursor. Costs the same at any depth (index
    /// `users_live_created_at_id_idx`); rows inserted between fetches never repeat or shift a
    /// page.
    ///
    /// Django: no equivalent in the seed (its `Paginator` uses `OFFSET`).
    ///
    /// SQL: `where deleted_at is null and (created_at, id) < ($1, $2) order by created_at desc,
    /// id desc limit n + 1` (the extra row says whether another page exists); `>` and ascending
    /// order, reversed, for the previous page.
    ///
    /// ```no_run
    /// # async fn walk(pool: sqlx::PgPool) -> ledger::Result<()> {
    /// use ledger::{page::Cursor, users::UserQuery};
    ///
    /// let users = UserQuery::new();
    /// let first = users.keyset(&pool, None).await?;
    /// if let Some(next) = first.next {
    ///     let token = next.encode(); // hand it to the client ...
    ///     let cursor = Cursor::decode(&token)?; // ... and read it back, checked
    ///     let second = users.keyset(&pool, Some(&cursor)).await?;
    /// #   let _ = second;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Plan (100,000 rows, checked by `tests/db/plans.rs`): `users_live_created_at_id_idx` in
    /// either direction; no sort, the same cost on every page.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an order other than [`UserOrder::NewestFirst`], a `per_page`
    /// outside `1..=MAX_PER_PAGE`, or a cursor whose time is before PostgreSQL's earliest
    /// (nothing is sent).
    pub async fn keyset(
        self,
        db: impl PgExecutor<'_>,
        cursor: Option<&Cursor>,
    ) -> Result<KeysetPage<User>> {
        let op =
            crate::ground::telemetry::op_span!("ledger.users.UserQuery.keyset", "SELECT", "users");
        crate::ground::telemetry::traced(op, async move {
            if self.order != UserOrder::NewestFirst {
                return Err(Error::invalid(
                    "order",
                    "keyset pages of users read newest first only (UserOrder::NewestFirst)",
                ));
            }
            keyset(db, self.visibility, cursor, self.per_page).await
        })
        .await
    }

    /// One keyset page of users with their accounts: Django's `prefetch_related('accounts')`
    /// over a page, in two queries whatever the table's size, so memory holds one page.
    ///
    /// Django: `User.objects.filter(deleted_at__isnull=True).order_by('-created_at')
    /// .prefetch_related('accounts')[:20]`
    ///
    /// SQL: as [`UserQuery::keyset`], then `select ... from accounts where user_id = any($1)
    /// order by currency, id` with the page's ids; the rows are grouped in Rust. Two statements
    /// on one connection: `&mut *tx` for one snapshot.
    ///
    /// # Errors
    /// As [`UserQuery::keyset`].
    pub async fn keyset_with_accounts(
        self,
        conn: &mut PgConnection,
        cursor: Option<&Cursor>,
    ) -> Result<KeysetPage<UserWithAccounts>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.users.UserQuery.keyset_with_accounts",
            "SELECT",
            "users"
        );
        crate::ground::telemetry::traced(op, async move {
            if self.order != UserOrder::NewestFirst {
                return Err(Error::invalid(
                    "order",
                    "keyset pages of users read newest first only (UserOrder::NewestFirst)",
                ));
            }
            let page = keyset(&mut *conn, self.visibility, cursor, self.per_page).await?;
            Ok(KeysetPage {
                items: with_accounts(conn, page.items).await?,
                next: page.next,
                previous: page.previous,
            })
        })
        .await
    }

    /// A [`UserPaginator`]: counts the users once (see [`Counting`]) and serves every page
    /// from that count.
    ///
    /// Django: `paginator = Paginator(User.objects.filter(deleted_at__isnull=True), 20)`
    ///
    /// SQL: `select count(*) from users where deleted_at is null` for [`Counting::Exact`];
    /// `select reltuples * null_frac from pg_class left join pg_stats ...` for
    /// [`Counting::Estimated`], which counts exactly instead when `users` has never been
    /// analyzed.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a `per_page` outside `1..=MAX_PER_PAGE`.
    pub async fn paginator(
        self,
        conn: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
        counting: Counting,
    ) -> Result<UserPaginator> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.users.UserQuery.paginator",
            "SELECT",
            "users"
        );
        crate::ground::telemetry::traced(op, async move {
            UserPaginator::counted(conn, self.visibility, self.order, self.per_page, counting).await
        })
        .await
    }
}
