//! Basic CRUD: `create`, `get`, `filter`, `first`, `update`, `save`, soft and hard delete.

use std::io::Write;

use futures::TryStreamExt;
use ledger::users::{self, NewUser};
use sqlx::PgConnection;

use super::{AnyResult, heading, step, user_table, value};

pub(super) async fn crud(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Basic CRUD")?;
    step(
        out,
        "user = User.objects.create(email='ana@example.com', name='Ana')",
        r#"users::insert(db, &NewUser::new("ana@example.com", "Ana"))"#,
    )?;
    let ana = users::insert(&mut *conn, &NewUser::new("ana@example.com", "Ana")).await?;
    user_table(out, std::slice::from_ref(&ana))?;

    step(
        out,
        "User.objects.get(id='some-uuid')",
        "users::get(db, id)",
    )?;
    user_table(out, &[users::get(&mut *conn, ana.id).await?])?;
    let missing = users::get(&mut *conn, users::UserId::new()).await;
    value(
        out,
        format!(
            "unknown id: Err({})",
            missing.err().map(|e| e.to_string()).unwrap_or_default()
        ),
    )?;

    step(
        out,
        "User.objects.filter(deleted_at__isnull=True)",
        "users::stream_active(db).try_collect()",
    )?;
    user_table(
        out,
        &users::stream_active(&mut *conn)
            .try_collect::<Vec<_>>()
            .await?,
    )?;

    step(
        out,
        "User.objects.filter(email='ana@example.com').first()",
        r#"users::find_by_email(db, "ana@example.com")"#,
    )?;
    let found = users::find_by_email(&mut *conn, "ana@example.com").await?;
    value(
        out,
        format!("Some({})", found.map(|u| u.name).unwrap_or_default()),
    )?;
    let none = users::find_by_email(&mut *conn, "nobody@example.com").await?;
    value(out, format!("nobody@example.com: {none:?}"))?;

    step(
        out,
        "User.objects.filter(id=user.id).update(name='Ana García')",
        r#"users::update_name(db, id, "Ana García")"#,
    )?;
    user_table(
        out,
        &[users::update_name(&mut *conn, ana.id, "Ana García").await?],
    )?;

    step(
        out,
        "user.name = 'Ana G.'; user.save()",
        "users::save(db, &user)",
    )?;
    let mut edited = users::get(&mut *conn, ana.id).await?;
    edited.name = "Ana G.".into();
    user_table(out, &[users::save(&mut *conn, &edited).await?])?;

    step(
        out,
        "User.objects.filter(id=user.id).update(deleted_at=timezone.now())",
        "users::soft_delete(db, id)  (idempotent; users::restore undoes it)",
    )?;
    let at = users::soft_delete(&mut *conn, ana.id).await?;
    value(out, format!("deleted_at = {}", at.format("%F %T%.3f UTC")))?;

    step(
        out,
        "User.objects.filter(id=user.id).delete()",
        "users::delete(db, id)",
    )?;
    users::delete(&mut *conn, ana.id).await?;
    value(out, "Ok(()): gone for good")?;
    let owner = users::find_by_email(&mut *conn, "bjorn@tour.example").await?;
    if let Some(owner) = owner {
        let protected = users::delete(&mut *conn, owner.id).await;
        value(
            out,
            format!(
                "a user with accounts: {} (on_delete=PROTECT)",
                protected.err().map(|e| e.to_string()).unwrap_or_default()
            ),
        )?;
    }
    Ok(())
}
