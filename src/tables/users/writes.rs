//! Writing users: insert, rename, save, and hard and soft delete (with restore). Re-exported by
//! [`users`](super).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use super::{NewUser, User, UserId, validate_email, validate_name};
use crate::{Error, Result};

/// Creates a user.
///
/// Django: `User.objects.create(email='ana@example.com', name='Ana')`
///
/// SQL: one `insert into users ... returning` the whole row.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad email or name (nothing is sent);
/// [`Error::UniqueViolation`] with [`EMAIL_UNIQUE`](super::EMAIL_UNIQUE) when the email is taken.
pub async fn insert(db: impl PgExecutor<'_>, user: &NewUser) -> Result<User> {
    let op = crate::ground::telemetry::op_span!("ledger.users.insert", "INSERT", "users");
    crate::ground::telemetry::traced(op, async move {
        user.validate()?;
        Ok(query_users!(
            returning r#"
        insert into users (email, name)
        values ($1, $2)
        "#,
            user.email,
            user.name
        )
        .fetch_one(db)
        .await?)
    })
    .await
}

/// Renames a user and returns the updated row.
///
/// Django: `User.objects.filter(id=user.id).update(name='Ana García')`
///
/// SQL: one `update users set name = $2 where id = $1 returning` the row.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad name (nothing is sent); [`Error::NotFound`] for an unknown id.
pub async fn update_name(db: impl PgExecutor<'_>, id: UserId, name: &str) -> Result<User> {
    let op = crate::ground::telemetry::op_span!("ledger.users.update_name", "UPDATE", "users");
    crate::ground::telemetry::traced(op, async move {
        validate_name(name)?;
        query_users!(
            returning r#"
        update users
        set name = $2
        where id = $1
        "#,
            id.as_uuid(),
            name
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "user" })
    })
    .await
}

/// Writes every editable column of `user` (email, name, deleted_at) and returns the stored row.
/// `created_at` is Django's `auto_now_add`: never written after creation.
///
/// Django: `user.name = 'Ana García'; user.save()`
///
/// SQL: one `update users set email = $2, name = $3, deleted_at = $4 where id = $1 returning`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad email or name; [`Error::NotFound`] for an unknown id;
/// [`Error::UniqueViolation`] with [`EMAIL_UNIQUE`](super::EMAIL_UNIQUE) when the new email is taken.
pub async fn save(db: impl PgExecutor<'_>, user: &User) -> Result<User> {
    let op = crate::ground::telemetry::op_span!("ledger.users.save", "UPDATE", "users");
    crate::ground::telemetry::traced(op, async move {
        validate_email(&user.email)?;
        validate_name(&user.name)?;
        query_users!(
            returning r#"
        update users
        set email = $2, name = $3, deleted_at = $4
        where id = $1
        "#,
            user.id.as_uuid(),
            user.email,
            user.name,
            user.deleted_at
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "user" })
    })
    .await
}

/// Deletes a user for good, unless accounts still refer to them.
///
/// Django: `User.objects.filter(id=user.id).delete()`, which raises `ProtectedError` for a user
/// with accounts (`on_delete=PROTECT`) before sending any SQL.
///
/// SQL: one statement that deletes only when no account refers to the user and says why not
/// otherwise: `with gone as (delete from users where id = $1 and not exists (select from
/// accounts where user_id = $1) returning id) select exists (select from users where id = $1),
/// (select count(*) from accounts where user_id = $1), (select count(*) from gone)`. No statement
/// fails, so a protected delete leaves the caller's transaction usable, as Django's does.
///
/// An account opened for the user by another transaction that commits while this statement runs
/// is still caught, by `accounts_user_id_fkey` (`on delete restrict`): that one case comes back
/// as [`Error::ForeignKeyViolation`], and the transaction is aborted.
///
/// # Errors
/// [`Error::NotFound`] for an unknown id; [`Error::Protected`] when the user owns accounts
/// (nothing deleted).
pub async fn delete(db: impl PgExecutor<'_>, id: UserId) -> Result<()> {
    let op = crate::ground::telemetry::op_span!("ledger.users.delete", "DELETE", "users");
    crate::ground::telemetry::traced(op, async move {
        let outcome = sqlx::query!(
            r#"
        with gone as (
            delete from users
            where id = $1 and not exists (select from accounts where user_id = $1)
            returning id
        )
        select exists (select from users where id = $1) as "found!",
               (select count(*) from accounts where user_id = $1) as "accounts!",
               (select count(*) from gone) as "deleted!"
        "#,
            id.as_uuid()
        )
        .fetch_one(db)
        .await?;
        match outcome {
            o if o.deleted > 0 => Ok(()),
            o if !o.found => Err(Error::NotFound { what: "user" }),
            o => Err(Error::Protected {
                what: "user",
                referenced_by: "accounts",
                count: o.accounts,
            }),
        }
    })
    .await
}

/// Soft-deletes a user and returns when it happened. Idempotent: a second call keeps the first
/// timestamp.
///
/// Django: `User.objects.filter(id=user.id).update(deleted_at=timezone.now())`
///
/// SQL: `update users set deleted_at = coalesce(deleted_at, now()) where id = $1 returning
/// deleted_at`.
///
/// # Errors
/// [`Error::NotFound`] for an unknown id.
pub async fn soft_delete(db: impl PgExecutor<'_>, id: UserId) -> Result<DateTime<Utc>> {
    let op = crate::ground::telemetry::op_span!("ledger.users.soft_delete", "UPDATE", "users");
    crate::ground::telemetry::traced(op, async move {
        sqlx::query_scalar!(
            r#"
        update users
        set deleted_at = coalesce(deleted_at, now())
        where id = $1
        returning deleted_at as "deleted_at!"
        "#,
            id.as_uuid()
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound { what: "user" })
    })
    .await
}

/// Undoes a soft delete (a no-op for a live user).
///
/// Django: `User.objects.filter(id=user.id).update(deleted_at=None)`
///
/// SQL: `update users set deleted_at = null where id = $1`.
///
/// # Errors
/// [`Error::NotFound`] for an unknown id.
pub async fn restore(db: impl PgExecutor<'_>, id: UserId) -> Result<()> {
    let op = crate::ground::telemetry::op_span!("ledger.users.restore", "UPDATE", "users");
    crate::ground::telemetry::traced(op, async move {
        let done = sqlx::query!(
            "update users set deleted_at = null where id = $1",
            id.as_uuid()
        )
        .execute(db)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound { what: "user" });
        }
        Ok(())
    })
    .await
}
