//! Performance tips: `values`, `values_list`, `exists`, bulk `update`, `defer`, `count`,
//! `bulk_create` and `iterator(chunk_size=...)`.

use std::io::Write;

use futures::TryStreamExt;
use ledger::accounts;
use ledger::bulk::BulkOptions;
use ledger::users::{self, NewUser};
use sqlx::PgConnection;

use crate::table::{Table, short};

use super::{AnyResult, heading, step, value};

pub(super) async fn performance(conn: &mut PgConnection, out: &mut impl Write) -> AnyResult {
    heading(out, "Performance Tips")?;
    step(
        out,
        "User.objects.values('id', 'email')",
        "users::stream_id_email(db, ledger::users::Visibility::Live)",
    )?;
    let mut t = Table::new(&["id", "email"]);
    let mut rows = users::stream_id_email(&mut *conn, ledger::users::Visibility::Live);
    while let Some(p) = rows.try_next().await? {
        t.row(vec![short(p.id), p.email]);
    }
    drop(rows);
    t.print(out)?;
    step(
        out,
        "User.objects.values_list('id', flat=True)",
        "users::stream_ids(db, ledger::users::Visibility::Live)",
    )?;
    let ids: Vec<String> = users::stream_ids(&mut *conn, ledger::users::Visibility::Live)
        .map_ok(short)
        .try_collect()
        .await?;
    value(out, format!("[{}]", ids.join(", ")))?;
    step(
        out,
        "User.objects.filter(email='x@x.com').exists()",
        r#"users::exists_with_email(db, "x@x.com")"#,
    )?;
    value(out, users::exists_with_email(&mut *conn, "x@x.com").await?)?;
    step(
        out,
        "User.objects.filter(status='trial').update(status='expired')",
        "accounts::expire_trials(db)  (on accounts)",
    )?;
    value(
        out,
        format!(
            "{} rows updated",
            accounts::expire_trials(&mut *conn).await?
        ),
    )?;
    step(
        out,
        "User.objects.defer('large_text_field', 'avatar_data')",
        "articles::ArticleQuery::new().limit(10).list_summaries(db)  (User has no heavy fields; articles.content is one)",
    )?;
    value(
        out,
        format!(
            "{} article summaries",
            ledger::articles::ArticleQuery::new()
                .limit(10)
                .list_summaries(&mut *conn)
                .await?
                .len()
        ),
    )?;
    step(
        out,
        "User.objects.filter(active=True).count()",
        "users::count_active(db)",
    )?;
    value(out, users::count_active(&mut *conn).await?)?;
    step(
        out,
        "User.objects.bulk_create([User(email='user1@example.com', name='User 1'), ...])",
        "users::insert_many(&mut conn, &[NewUser::new(..), ..], BulkOptions::default())  (one insert ... from unnest)",
    )?;
    let batch: Vec<NewUser> = (1..=3)
        .map(|i| NewUser::new(format!("user{i}@tour.example"), format!("User {i}")))
        .collect();
    let created = users::insert_many(&mut *conn, &batch, BulkOptions::default()).await?;
    value(
        out,
        format!(
            "{} users created in one statement",
            created.rows.iter().flatten().count()
        ),
    )?;
    step(
        out,
        "for user in User.objects.filter(active=True).iterator(chunk_size=1000)",
        "UserQuery::new().per_page(1000).keyset(db, cursor) until next is None  (keyset chunks; transactions::stream_all streams rows)",
    )?;
    let (mut seen, mut chunks, mut cursor) = (0, 0, None);
    loop {
        let chunk = ledger::users::UserQuery::new()
            .per_page(1_000)
            .keyset(&mut *conn, cursor.as_ref())
            .await?;
        seen += chunk.items.len();
        chunks += 1;
        match chunk.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    value(out, format!("{seen} live users in {chunks} chunk(s)"))?;
    Ok(())
}
