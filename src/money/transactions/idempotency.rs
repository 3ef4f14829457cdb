//! Idempotency keys: claimed before anything else, replayed on repeat.
//!
//! A keyed unit of work (a movement or a batch) inserts its key into `idempotency_keys` as its
//! first statement, with the ids of the rows it is about to write. PostgreSQL makes a second
//! insert of the same key wait until the first transaction ends:
//!
//! - the first **commits**: the second claim finds the key taken, and the call replays the first
//!   result from the rows the key names (or reports [`Error::IdempotencyConflict`] when they are
//!   another movement), without locking an account or looking at a balance;
//! - the first **rolls back**: the second claim succeeds and the call applies as if it were first.
//!
//! Because the claim precedes every account lock, a retry is never judged against the balance its
//! own first attempt already moved.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{EntryId, LedgerEntry};
use crate::{Error, Result};

/// Longest idempotency key (varchar(200)).
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

/// A row of `idempotency_keys`: a used key and the rows it names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdempotencyKey {
    /// The key, 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] characters.
    pub key: String,
    /// The `transactions` rows the key's call wrote, in order (one for a movement).
    pub entry_ids: Vec<EntryId>,
    /// When the key was claimed.
    pub created_at: DateTime<Utc>,
}

/// Checks a key: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] characters, no NUL (which PostgreSQL's text
/// cannot hold).
pub(super) fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(Error::invalid(
            "idempotency_key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
        ));
    }
    if key.contains('\0') {
        return Err(Error::invalid(
            "idempotency_key",
            "must not contain NUL (U+0000)",
        ));
    }
    Ok(())
}

/// Claims `key` for the rows `entry_ids` inside the caller's transaction; waits while another open
/// transaction holds the same key. `false` when the key was already used by a committed unit.
///
/// SQL: `insert into idempotency_keys ... on conflict (key) do nothing returning true`.
pub(super) async fn claim(conn: &mut PgConnection, key: &str, entry_ids: &[Uuid]) -> Result<bool> {
    let claimed = sqlx::query_scalar!(
        r#"
        insert into idempotency_keys (key, entry_ids)
        values ($1, $2)
        on conflict (key) do nothing
        returning true as "claimed!"
        "#,
        key,
        entry_ids
    )
    .fetch_optional(conn)
    .await?;
    Ok(claimed.is_some())
}

/// The rows a used key names, in the order they were posted.
///
/// SQL: `idempotency_keys` joined to `transactions` through `unnest(entry_ids) with ordinality`.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): `idempotency_keys_pkey`, then
/// `transactions_pkey` per entry.
pub(super) async fn replay(conn: &mut PgConnection, key: &str) -> Result<Vec<LedgerEntry>> {
    Ok(sqlx::query_as!(
        LedgerEntry,
        r#"
        select t.id as "id!: EntryId",
               t.from_account_id,
               t.to_account_id,
               t.amount as "amount!", t.type as "kind!", t.status as "status!",
               t.metadata as "metadata!", t.created_at as "created_at!", t.idempotency_key
        from idempotency_keys k
        cross join lateral unnest(k.entry_ids) with ordinality as e(id, position)
        join transactions t on t.id = e.id
        where k.key = $1
        order by e.position
        "#,
        key
    )
    .fetch_all(conn)
    .await?)
}

/// The error for a key that names other rows than the ones asked for.
pub(super) fn conflict(key: &str) -> Error {
    Error::IdempotencyConflict {
        key: key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_two_hundred_characters_without_nul() {
        for good in ["k", "order-42", &"é".repeat(200)] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in ["", &"k".repeat(201), "a\0b"] {
            assert!(
                matches!(
                    validate_key(bad),
                    Err(Error::InvalidInput {
                        field: "idempotency_key",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }
}
