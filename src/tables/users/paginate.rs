//! Django's `Paginator` over users that counts once, exactly or by the planner's estimate:
//! [`UserPaginator`] (made by [`UserQuery::paginator`](super::UserQuery::paginator)). Re-exported
//! by [`users`](super).

use sqlx::PgExecutor;

use super::listing::{count, list_ordered};
use super::{User, UserOrder, Visibility};
use crate::Result;
use crate::tables::page::{Page, Paginator};

/// How a [`UserPaginator`] knows how many live users there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// `count(*)`, once, when the paginator is made: exact, and as costly as reading every live
    /// user's index entry.
    Exact,
    /// The planner's statistics: the table's row estimate times the share of live rows
    /// (`pg_class.reltuples` × `pg_stats.null_frac` of `deleted_at`), as fresh as the last
    /// `analyze` (autovacuum keeps it within about 10 %). Constant cost at any size; the last
    /// page may hold fewer or more rows than `per_page` says, or be empty.
    Estimated,
}

/// Django's `Paginator` object over live users: it counts **once**, when it is made (Django
/// caches `paginator.count` the same way), and every page it serves reuses that count. Keep it
/// for as long as the listing may be stale by the rows written meanwhile: a request, or a few
/// seconds of one screen. [`UserQuery::get_page`](super::UserQuery::get_page) and
/// [`UserQuery::page`](super::UserQuery::page) count on every call instead.
///
/// Django:
/// `paginator = Paginator(User.objects.filter(deleted_at__isnull=True), 20)`; then
/// `paginator.get_page(n)` for each page.
///
/// ```no_run
/// # async fn demo(pool: ledger::PgPool) -> ledger::Result<()> {
/// use ledger::users::{Counting, UserQuery};
///
/// let pages = UserQuery::new().per_page(20).paginator(&pool, Counting::Exact).await?;
/// let first = pages.get_page(&pool, "1").await?;   // no count: the paginator has it
/// let last = pages.get_page(&pool, "99").await?;   // past the end: the last page
/// println!("{} users, {} pages", pages.paginator().count(), pages.paginator().num_pages());
/// # let _ = (first, last);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct UserPaginator {
    paginator: Paginator,
    visibility: Visibility,
    order: UserOrder,
    counting: Counting,
}

impl UserPaginator {
    /// See [`UserQuery::paginator`](super::UserQuery::paginator).
    pub(super) async fn counted(
        conn: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
        visibility: Visibility,
        order: UserOrder,
        per_page: i64,
        counting: Counting,
    ) -> Result<Self> {
        // Checked before any statement runs.
        Paginator::new(0, per_page)?;
        let mut conn = conn.acquire().await?;
        let count = match counting {
            Counting::Exact => count(&mut *conn, visibility).await?,
            Counting::Estimated => match estimate(&mut *conn, visibility).await? {
                Some(estimate) => estimate,
                None => count(&mut *conn, visibility).await?,
            },
        };
        Ok(Self {
            paginator: Paginator::new(count, per_page)?,
            visibility,
            order,
            counting,
        })
    }

    /// The count and page arithmetic.
    pub fn paginator(&self) -> &Paginator {
        &self.paginator
    }

    /// How the count was made.
    pub fn counting(&self) -> Counting {
        self.counting
    }

    /// A page read leniently, as Django's `get_page`: not a number → 1, past the end → the last
    /// page.
    ///
    /// SQL: the ordered slice only (`limit`/`offset`).
    ///
    /// # Errors
    /// [`Error::Database`](crate::Error::Database) only.
    pub async fn get_page(&self, db: impl PgExecutor<'_>, page: &str) -> Result<Page<User>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.users.UserPaginator.get_page",
            "SELECT",
            "users"
        );
        crate::ground::telemetry::traced(op, async move {
            let spec = self.paginator.get_page(page);
            let items =
                list_ordered(db, self.visibility, self.order, spec.limit(), spec.offset()).await?;
            Ok(Page { items, spec })
        })
        .await
    }

    /// Page `number`, strictly, as Django's `paginator.page(n)`.
    ///
    /// SQL: the ordered slice only.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for a page below 1 or past the last page.
    pub async fn page(&self, db: impl PgExecutor<'_>, number: i64) -> Result<Page<User>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.users.UserPaginator.page",
            "SELECT",
            "users"
        );
        crate::ground::telemetry::traced(op, async move {
            let spec = self.paginator.page(number)?;
            let items =
                list_ordered(db, self.visibility, self.order, spec.limit(), spec.offset()).await?;
            Ok(Page { items, spec })
        })
        .await
    }
}

/// The planner's estimate of how many users are live, or `None` when `users` has never been
/// analyzed (PostgreSQL then reports `reltuples = -1`).
///
/// SQL: `pg_class.reltuples` of `users` times `pg_stats.null_frac` of `users.deleted_at` (1 when
/// there are no column statistics yet).
///
/// # Errors
/// [`Error::Database`](crate::Error::Database) only.
pub async fn count_active_estimate(db: impl PgExecutor<'_>) -> Result<Option<i64>> {
    let op =
        crate::ground::telemetry::op_span!("ledger.users.count_active_estimate", "SELECT", "users");
    crate::ground::telemetry::traced(op, async move { estimate(db, Visibility::Live).await }).await
}

/// The planner's estimate of how many users a listing of this visibility shows: every row
/// (`reltuples`), or the live share of them.
async fn estimate(db: impl PgExecutor<'_>, visibility: Visibility) -> Result<Option<i64>> {
    let estimate = sqlx::query_scalar!(
        r#"
        select case when c.reltuples < 0 then null
                    when $1::bool then round(c.reltuples)::bigint
                    else round(c.reltuples * coalesce(s.null_frac, 1))::bigint
               end as "estimate"
        from pg_class c
        left join pg_stats s
               on s.schemaname = current_schema()
              and s.tablename = 'users'
              and s.attname = 'deleted_at'
        where c.oid = to_regclass('users')
        "#,
        visibility.shows_deleted()
    )
    .fetch_optional(db)
    .await?;
    Ok(estimate.flatten())
}
