//! The positional listings of the previous release, kept for one release as deprecated bridges
//! to [`UserQuery`], which they call. Re-exported by [`users`](super); removed in the next
//! release.

use std::ops::Range;

use sqlx::{PgConnection, PgExecutor};

use super::paginate::{Counting, UserPaginator};
use super::{User, UserOrder, UserQuery, Visibility};
use crate::Result;
use crate::page::{Cursor, KeysetPage, Page};

/// A page of users, read leniently (Django's `get_page`).
///
/// Django: `Paginator(User.objects.filter(deleted_at__isnull=True), 20).get_page(page)`
///
/// SQL: see [`UserQuery::get_page`].
///
/// # Errors
/// As [`UserQuery::get_page`].
#[deprecated(
    since = "0.2.0",
    note = "use `UserQuery::new().visibility(v).order(o).per_page(n).get_page(conn, page)`"
)]
pub async fn get_page(
    conn: &mut PgConnection,
    visibility: Visibility,
    order: UserOrder,
    per_page: i64,
    page: &str,
) -> Result<Page<User>> {
    query(visibility, order, per_page)
        .get_page(conn, page)
        .await
}

/// Page `number` of users, strictly (Django's `paginator.page(n)`).
///
/// Django: `Paginator(User.objects.filter(deleted_at__isnull=True), 20).page(n)`
///
/// SQL: see [`UserQuery::page`].
///
/// # Errors
/// As [`UserQuery::page`].
#[deprecated(
    since = "0.2.0",
    note = "use `UserQuery::new().visibility(v).order(o).per_page(n).page(conn, number)`"
)]
pub async fn page(
    conn: &mut PgConnection,
    visibility: Visibility,
    order: UserOrder,
    per_page: i64,
    number: i64,
) -> Result<Page<User>> {
    query(visibility, order, per_page).page(conn, number).await
}

/// A slice of the users in `order`.
///
/// Django: `User.objects.order_by('name')[20:30]`
///
/// SQL: see [`UserQuery::slice`].
///
/// # Errors
/// As [`UserQuery::slice`].
#[deprecated(
    since = "0.2.0",
    note = "use `UserQuery::new().visibility(v).order(o).slice(db, range)`"
)]
pub async fn list_slice(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    order: UserOrder,
    range: Range<i64>,
) -> Result<Vec<User>> {
    UserQuery::new()
        .visibility(visibility)
        .order(order)
        .slice(db, range)
        .await
}

/// A keyset page of users, newest first.
///
/// Django: no equivalent in the seed.
///
/// SQL: see [`UserQuery::keyset`].
///
/// # Errors
/// As [`UserQuery::keyset`].
#[deprecated(
    since = "0.2.0",
    note = "use `UserQuery::new().visibility(v).per_page(limit).keyset(db, cursor)`"
)]
pub async fn list_keyset(
    db: impl PgExecutor<'_>,
    visibility: Visibility,
    cursor: Option<&Cursor>,
    limit: i64,
) -> Result<KeysetPage<User>> {
    UserQuery::new()
        .visibility(visibility)
        .per_page(limit)
        .keyset(db, cursor)
        .await
}

impl UserPaginator {
    /// Counts the users once and keeps the count.
    ///
    /// Django: `paginator = Paginator(User.objects.filter(deleted_at__isnull=True), 20)`
    ///
    /// SQL: see [`UserQuery::paginator`].
    ///
    /// # Errors
    /// As [`UserQuery::paginator`].
    #[deprecated(
        since = "0.2.0",
        note = "use `UserQuery::new().visibility(v).order(o).per_page(n).paginator(conn, counting)`"
    )]
    pub async fn new(
        conn: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
        visibility: Visibility,
        order: UserOrder,
        per_page: i64,
        counting: Counting,
    ) -> Result<Self> {
        query(visibility, order, per_page)
            .paginator(conn, counting)
            .await
    }
}

fn query(visibility: Visibility, order: UserOrder, per_page: i64) -> UserQuery {
    UserQuery::new()
        .visibility(visibility)
        .order(order)
        .per_page(per_page)
}
