//! Bulk writes of users: `bulk_create` through UNNEST, and a `COPY` loader.

use std::collections::HashMap;

use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use super::{NewUser, User, UserId};
use crate::Result;
use crate::tables::bulk::{self, BulkInserted, BulkOptions, OnConflict};
use crate::tables::copy::CopyText;

/// Bytes of `COPY` data sent per message.
const COPY_SEND_BYTES: usize = 1 << 20;

fn validate(users: &[NewUser]) -> Result<()> {
    bulk::validate_all(users, NewUser::validate)?;
    bulk::reject_duplicates(users, "email", |u| u.email.clone())
}

/// Creates many users, one `insert ... select ... from unnest(...)` per chunk, all or nothing.
/// With [`OnConflict::Skip`], users whose email is taken are skipped and counted.
///
/// Django: `User.objects.bulk_create([User(email='a@a.com', name='A'), ...])`
/// (and `ignore_conflicts=True`)
///
/// SQL: per chunk, `insert into users (id, email, name) select * from unnest($1::uuid[],
/// $2::text[], $3::text[]) [on conflict do nothing] returning id, created_at`: ids are generated
/// in Rust, so only what the server decides comes back, and each [`User`] is built from its
/// input and its returned `created_at`, matched by id. One transaction (a savepoint inside the
/// caller's).
///
/// ```no_run
/// # async fn load(pool: sqlx::PgPool) -> ledger::Result<()> {
/// use ledger::{bulk::BulkOptions, users::{self, NewUser}};
///
/// let batch = vec![NewUser::new("a@a.com", "A"), NewUser::new("b@b.com", "B")];
/// let mut conn = pool.acquire().await?;
/// let done = users::insert_many(&mut conn, &batch, BulkOptions::default().skip_conflicts()).await?;
/// println!("{} created, {} skipped", done.created().count(), done.skipped);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::InvalidItem`](crate::Error::InvalidItem) naming the first bad user (bad email or
/// name, or an email repeated in the batch); [`Error::UniqueViolation`](crate::Error::UniqueViolation)
/// for a taken email with [`OnConflict::Fail`]. Nothing is written on any error.
pub async fn insert_many(
    conn: &mut PgConnection,
    users: &[NewUser],
    options: BulkOptions,
) -> Result<BulkInserted<User>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.users.insert_many",
        "INSERT",
        "users",
        ledger.rows = users.len()
    );
    crate::ground::telemetry::traced(op, async move {
        validate(users)?;
        let chunk_size = options.checked_chunk_size()?;
        let ids: Vec<Uuid> = users.iter().map(|_| Uuid::new_v4()).collect();
        let mut tx = conn.begin().await?;
        // Only what the server decides comes back: the ids are made here, and the email and name
        // are stored as sent.
        let mut created = Vec::with_capacity(users.len());
        for (chunk, chunk_ids) in users.chunks(chunk_size).zip(ids.chunks(chunk_size)) {
            let emails: Vec<&str> = chunk.iter().map(|u| u.email.as_str()).collect();
            let names: Vec<&str> = chunk.iter().map(|u| u.name.as_str()).collect();
            match options.on_conflict {
                OnConflict::Fail => {
                    let rows = sqlx::query!(
                        r#"
                    insert into users (id, email, name)
                    select * from unnest($1::uuid[], $2::text[], $3::text[])
                    returning id, created_at
                    "#,
                        chunk_ids,
                        &emails as &[&str],
                        &names as &[&str]
                    )
                    .fetch_all(&mut *tx)
                    .await?;
                    created.extend(rows.into_iter().map(|r| (r.id, r.created_at)));
                }
                OnConflict::Skip => {
                    let rows = sqlx::query!(
                        r#"
                    insert into users (id, email, name)
                    select * from unnest($1::uuid[], $2::text[], $3::text[])
                    on conflict do nothing
                    returning id, created_at
                    "#,
                        chunk_ids,
                        &emails as &[&str],
                        &names as &[&str]
                    )
                    .fetch_all(&mut *tx)
                    .await?;
                    created.extend(rows.into_iter().map(|r| (r.id, r.created_at)));
                }
            }
        }
        tx.commit().await?;
        let inputs: HashMap<Uuid, &NewUser> = ids.iter().copied().zip(users).collect();
        // `returning` gives back the ids sent; one the server made up would be a decode error,
        // not a panic.
        let rows = created
            .into_iter()
            .map(|(id, created_at)| {
                let input = inputs.get(&id.as_uuid()).ok_or_else(|| {
                    sqlx::Error::Decode(
                        format!("insert returned an id it was not given: {id}").into(),
                    )
                })?;
                Ok(User {
                    id,
                    email: input.email.clone(),
                    name: input.name.clone(),
                    created_at,
                    deleted_at: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(bulk::align(&ids, rows, |u| u.id.as_uuid()))
    })
    .await
}

/// Creates many users through `COPY ... FROM STDIN`, the fastest path for the largest loads:
/// same validation and atomicity as [`insert_many`] (one `COPY` is one statement), no rows read
/// back. Returns the new ids in input order.
///
/// Django: none (`bulk_create` is the closest).
///
/// SQL: `copy users (id, email, name) from stdin` in text format, streamed in 1 MiB messages.
///
/// # Errors
/// As [`insert_many`] with [`OnConflict::Fail`]: a taken email fails the whole load.
pub async fn copy_in(conn: &mut PgConnection, users: &[NewUser]) -> Result<Vec<UserId>> {
    let op = crate::ground::telemetry::op_span!(
        "ledger.users.copy_in",
        "COPY",
        "users",
        ledger.rows = users.len()
    );
    crate::ground::telemetry::traced(op, async move {
        validate(users)?;
        let ids: Vec<UserId> = users.iter().map(|_| UserId::new()).collect();
        let mut tx = conn.begin().await?;
        // COPY has no bind parameters and no result columns: no query macro can express it.
        let mut copy = tx
            .copy_in_raw("copy users (id, email, name) from stdin")
            .await?;
        let mut data = CopyText::new();
        for (id, user) in ids.iter().zip(users) {
            data.display(id).text(&user.email).text(&user.name);
            data.end_row();
            if data.len() >= COPY_SEND_BYTES {
                copy.send(data.take()).await?;
            }
        }
        copy.send(data.take()).await?;
        copy.finish().await?;
        tx.commit().await?;
        Ok(ids)
    })
    .await
}
