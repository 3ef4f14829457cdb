//! Ordering, limiting and pagination: `order_by`, slices, `Paginator` and keyset pages.

use std::io::Write;

use ledger::users::{UserOrder, UserQuery};
use sqlx::PgConnection;

use super::{AnyResult, heading, step, user_table, value};

pub(super) async fn ordering(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Ordering, Limiting, Pagination")?;
    step(
        out,
        "User.objects.order_by('name')[:10]",
        "UserQuery::new().order(UserOrder::NameAsc).slice(db, 0..10)",
    )?;
    user_table(
        out,
        &UserQuery::new()
            .order(UserOrder::NameAsc)
            .slice(&mut *conn, 0..10)
            .await?,
    )?;
    step(
        out,
        "User.objects.order_by('-created_at')[2:5]",
        "UserQuery::new().slice(db, 2..5)  (newest first, the default)",
    )?;
    user_table(out, &UserQuery::new().slice(&mut *conn, 2..5).await?)?;
    step(
        out,
        "Paginator(User.objects.filter(deleted_at__isnull=True), 3).get_page('2')",
        r#"UserQuery::new().order(UserOrder::NameAsc).per_page(3).get_page(&mut conn, "2")"#,
    )?;
    let page = UserQuery::new()
        .order(UserOrder::NameAsc)
        .per_page(3)
        .get_page(&mut *conn, "2")
        .await?;
    value(
        out,
        format!(
            "page {} of {} ({} users): has_previous={}, has_next={}",
            page.spec.number(),
            page.spec.paginator().num_pages(),
            page.spec.paginator().count(),
            page.spec.has_previous(),
            page.spec.has_next()
        ),
    )?;
    user_table(out, &page.items)?;
    let clamped = UserQuery::new()
        .order(UserOrder::NameAsc)
        .per_page(3)
        .get_page(&mut *conn, "not-a-number")
        .await?;
    value(
        out,
        format!("get_page('not-a-number') -> page {}", clamped.spec.number()),
    )?;
    let strict = UserQuery::new()
        .order(UserOrder::NameAsc)
        .per_page(3)
        .page(&mut *conn, 99)
        .await;
    value(
        out,
        format!(
            "page(99) -> Err({})",
            strict.err().map(|e| e.to_string()).unwrap_or_default()
        ),
    )?;
    step(
        out,
        "(keyset pagination: no OFFSET)",
        "UserQuery::new().per_page(3).keyset(db, cursor)",
    )?;
    let first = UserQuery::new()
        .per_page(3)
        .keyset(&mut *conn, None)
        .await?;
    let token = first.next.map(|c| c.encode()).unwrap_or_default();
    value(
        out,
        format!(
            "first page: {} users, next cursor token {token}",
            first.items.len()
        ),
    )?;
    Ok(())
}
