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

use std::collections::{HashMap, HashSet};

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

/// What claiming one unit's key found.
pub(super) enum Claim {
    /// The key is this unit's now: go on, and its claim commits or rolls back with the unit.
    Fresh,
    /// A committed unit used the key: the answer to give, its entries when `same` accepted them,
    /// else [`Error::IdempotencyConflict`]. Nothing else is to be done in the transaction.
    Replayed(Result<Vec<LedgerEntry>>),
}

/// The protocol of one keyed unit (a movement, a batch), its first statement: claims `key` for
/// the rows `entry_ids` (waiting while a transaction in flight holds it) and, when a committed
/// unit used it, reads that unit's entries and asks `same` whether they are this unit's. Records
/// `ledger.idempotency.replayed` on the operation's span, and counts a replay.
///
/// SQL: [`claim`], then for a used key [`replay`].
pub(super) async fn claim_one(
    conn: &mut PgConnection,
    key: &str,
    entry_ids: &[Uuid],
    same: impl FnOnce(&[LedgerEntry]) -> bool,
) -> Result<Claim> {
    let claimed = claim(&mut *conn, key, entry_ids).await?;
    // On the operation's span (`crate::telemetry`).
    tracing::Span::current().record("ledger.idempotency.replayed", !claimed);
    if claimed {
        return Ok(Claim::Fresh);
    }
    crate::ground::telemetry::metered::replay("transactions");
    let first = replay(conn, key).await?;
    Ok(Claim::Replayed(if same(&first) {
        Ok(first)
    } else {
        Err(conflict(key))
    }))
}

/// The answer to one movement whose key a committed unit used: that unit's one entry when `same`
/// accepts it, else [`Error::IdempotencyConflict`].
pub(super) fn replayed_one(
    key: &str,
    first: &[LedgerEntry],
    same: impl FnOnce(&LedgerEntry) -> bool,
) -> Result<LedgerEntry> {
    match first {
        [entry] if same(entry) => Ok(entry.clone()),
        _ => Err(conflict(key)),
    }
}

/// How long a flush waits for a key that another transaction holds before it leaves that key's
/// movement to a call of its own (see [`claim_many`]).
pub(super) const HELD_KEY_WAIT: &str = "20ms";

/// The claims of many keys at once (the poster's flush), each key with the id its first
/// accepted movement will have.
pub(super) struct Claims<'k> {
    /// The keys, in the order they were claimed (sorted, so that two flushes never wait on each
    /// other in a cycle).
    pub(super) keys: Vec<&'k str>,
    /// Each key's id.
    pub(super) ids: HashMap<&'k str, Uuid>,
    /// The keys this flush holds now.
    pub(super) fresh: HashSet<&'k str>,
    /// The keys a committed unit used, with that unit's entries (for a key whose claim was
    /// pruned but whose entry still carries it, that entry).
    pub(super) used: HashMap<&'k str, Vec<LedgerEntry>>,
    /// The keys another transaction still held after [`HELD_KEY_WAIT`]: their movements are
    /// not this flush's to judge.
    pub(super) held: HashSet<&'k str>,
}

/// The protocol of many keyed movements in one transaction: claims every key in one statement,
/// in key order; a key a committed unit used is answered from that unit's entries; a key claimed
/// anew whose entry still carries it (its claim was pruned past its lifetime,
/// `prune_idempotency_keys`) is answered from that entry, as a single movement is: the claim
/// says so in the same statement, so the common flush pays nothing for it.
///
/// **A key held by a transaction in flight** would make the claim wait for that transaction, and
/// every movement of the flush with it. The claim waits at most [`HELD_KEY_WAIT`] (`lock_timeout`
/// for this statement alone); past it the statement fails with
/// [`Transient::LockTimeout`](crate::Transient::LockTimeout), which leaves the transaction
/// unusable: the caller rolls it back, begins another and calls [`claim_each`], which finds the
/// held keys one by one.
///
/// SQL: `select current_setting('lock_timeout'), set_config('lock_timeout', '20ms', true)`;
/// `with claimed as (insert into idempotency_keys ... select ... from unnest($1::text[],
/// $2::uuid[]) with ordinality ... on conflict (key) do nothing returning key) select key,
/// exists (select 1 from transactions where idempotency_key = key) from claimed`; the timeout
/// set back; then [`replay`] per used key, [`find_by_key`] per pruned one.
pub(super) async fn claim_many<'k>(
    conn: &mut PgConnection,
    keys: impl IntoIterator<Item = &'k str>,
) -> Result<Claims<'k>> {
    let mut claims = Claims::of(keys);
    if claims.keys.is_empty() {
        return Ok(claims);
    }
    let previous = wait_for_keys(&mut *conn, HELD_KEY_WAIT).await?;
    let keys = claims.keys.clone();
    let kept = claim_keys(&mut *conn, &mut claims, &keys).await?;
    wait_for_keys(&mut *conn, &previous).await?;
    claims.answer_used(conn, kept).await?;
    Ok(claims)
}

/// [`claim_many`] key by key, each in a savepoint, after it found a key held: a key still held
/// after [`HELD_KEY_WAIT`] rolls its savepoint back and is [`Claims::held`]; the others are
/// claimed as [`claim_many`] claims them. Three statements a key: only a flush that met a held
/// key pays them.
pub(super) async fn claim_each<'k>(
    conn: &mut PgConnection,
    keys: impl IntoIterator<Item = &'k str>,
) -> Result<Claims<'k>> {
    let mut claims = Claims::of(keys);
    if claims.keys.is_empty() {
        return Ok(claims);
    }
    let previous = wait_for_keys(&mut *conn, HELD_KEY_WAIT).await?;
    let mut kept = Vec::new();
    for key in claims.keys.clone() {
        let mut savepoint = sqlx::Acquire::begin(&mut *conn).await?;
        match claim_keys(&mut savepoint, &mut claims, &[key]).await {
            Ok(found) => {
                savepoint.commit().await?;
                kept.extend(found);
            }
            Err(Error::Transient {
                kind: crate::Transient::LockTimeout,
                ..
            }) => {
                savepoint.rollback().await?;
                claims.held.insert(key);
            }
            Err(err) => return Err(err),
        }
    }
    wait_for_keys(&mut *conn, &previous).await?;
    claims.answer_used(conn, kept).await?;
    Ok(claims)
}

impl<'k> Claims<'k> {
    fn of(keys: impl IntoIterator<Item = &'k str>) -> Self {
        let mut ids: HashMap<&str, Uuid> = HashMap::new();
        for key in keys {
            ids.entry(key).or_insert_with(Uuid::new_v4);
        }
        let mut keys: Vec<&str> = ids.keys().copied().collect();
        keys.sort_unstable();
        Self {
            keys,
            ids,
            fresh: HashSet::new(),
            used: HashMap::new(),
            held: HashSet::new(),
        }
    }

    /// Reads the entries of every key a committed unit used, and of the `kept` ones (claimed
    /// anew, their entry still carrying them).
    async fn answer_used(&mut self, conn: &mut PgConnection, kept: Vec<&'k str>) -> Result<()> {
        for key in self.keys.clone() {
            if !self.fresh.contains(key) && !self.held.contains(key) {
                self.used.insert(key, replay(&mut *conn, key).await?);
            }
        }
        for key in kept {
            let entry = find_by_key(&mut *conn, key).await?;
            self.used.insert(key, entry.into_iter().collect());
        }
        Ok(())
    }
}

/// Sets `lock_timeout` for the rest of the transaction and returns what it was (a target list
/// is evaluated in order: the current value is read before it is set).
///
/// SQL: `select current_setting('lock_timeout'), set_config('lock_timeout', $1, true)`.
async fn wait_for_keys(conn: &mut PgConnection, wait: &str) -> Result<String> {
    let row = sqlx::query!(
        r#"
        select current_setting('lock_timeout') as "previous!",
               set_config('lock_timeout', $1, true) as "now!"
        "#,
        wait
    )
    .fetch_one(conn)
    .await?;
    Ok(row.previous)
}

/// Claims `keys` (a sorted slice of the claims' keys) in one statement; marks the claimed ones
/// fresh, and returns those whose entry still carries them.
async fn claim_keys<'k>(
    conn: &mut PgConnection,
    claims: &mut Claims<'k>,
    keys: &[&'k str],
) -> Result<Vec<&'k str>> {
    let entry_ids: Vec<Uuid> = keys.iter().map(|k| claims.ids[k]).collect();
    let rows = sqlx::query!(
        r#"
        with claimed as (
            insert into idempotency_keys (key, entry_ids)
            select k, array[e]
            from unnest($1::text[], $2::uuid[]) with ordinality as c(k, e, n)
            order by n
            on conflict (key) do nothing
            returning key
        )
        select c.key as "key!",
               exists (select 1 from transactions t where t.idempotency_key = c.key)
                   as "kept!"
        from claimed c
        "#,
        keys as &[&str],
        &entry_ids
    )
    .fetch_all(conn)
    .await?;
    let mut kept = Vec::new();
    for row in rows {
        let Some(key) = keys.iter().copied().find(|k| *k == row.key) else {
            continue;
        };
        claims.fresh.insert(key);
        if row.kept {
            kept.push(key);
        }
    }
    Ok(kept)
}

/// Gives back the claims of `keys`, which nothing in this transaction applied.
///
/// SQL: `delete from idempotency_keys where key = any($1)`.
pub(super) async fn give_back(conn: &mut PgConnection, keys: &[&str]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "delete from idempotency_keys where key = any($1)",
        keys as &[&str]
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The entry that carries `key` in its own row (a single movement's, or a movement another
/// client wrote without claiming the key).
///
/// SQL: `select ... from transactions where idempotency_key = $1` (its unique index).
pub(super) async fn find_by_key(conn: &mut PgConnection, key: &str) -> Result<Option<LedgerEntry>> {
    Ok(query_entries!(
        select r#"
        from transactions
        where idempotency_key = $1
        "#,
        key
    )
    .fetch_optional(conn)
    .await?)
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
