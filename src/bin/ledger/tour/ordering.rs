//! Ordering, limiting and pagination: `order_by`, slices, `Paginator` and keyset pages.

use std::io::Write;

use ledger::users::{self, UserOrder};
use sqlx::PgConnection;

use super::{AnyResult, heading, step, user_table, value};

pub(super) async fn ordering(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Ordering, Limiting, Pagination")?;
    step(
        out,
        "User.objects.order_by('name')[:10]",
        "users::list_slice(db, ledger::users::Visibility::Live, UserOrder::NameAsc, 0..10)",
    )?;
    user_table(
        out,
        &users::list_slice(
            &mut *conn,
            ledger::users::Visibility::Live,
            UserOrder::NameAsc,
            0..10,
        )
        .await?,
    )?;
    step(
        out,
        "User.objects.order_by('-created_at')[2:5]",
        "users::list_slice(db, ledger::users::Visibility::Live, UserOrder::NewestFirst, 2..5)",
    )?;
    user_table(
        out,
        &users::list_slice(
            &mut *conn,
            ledger::users::Visibility::Live,
            UserOrder::NewestFirst,
            2..5,
        )
        .await?,
    )?;
    step(
        out,
        "Paginator(User.objects.filter(deleted_at__isnull=True), 3).get_page('2')",
        r#"users::get_page(&mut conn, ledger::users::Visibility::Live, UserOrder::NameAsc, 3, "2")"#,
    )?;
    let page = users::get_page(
        &mut *conn,
        ledger::users::Visibility::Live,
        UserOrder::NameAsc,
        3,
        "2",
    )
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
    let clamped = users::get_page(
        &mut *conn,
        ledger::users::Visibility::Live,
        UserOrder::NameAsc,
        3,
        "not-a-number",
    )
    .await?;
    value(
        out,
        format!("get_page('not-a-number') -> page {}", clamped.spec.number()),
    )?;
    let strict = users::page(
        &mut *conn,
        ledger::users::Visibility::Live,
        UserOrder::NameAsc,
        3,
        99,
    )
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
        "users::list_keyset(db, ledger::users::Visibility::Live, cursor, 3)",
    )?;
    let first = users::list_keyset(&mut *conn, ledger::users::Visibility::Live, None, 3).await?;
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
