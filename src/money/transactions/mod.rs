//! `transactions`: the seed's `Transaction` model, one row per money movement.
//!
//! The row type is [`LedgerEntry`] (a `Transaction` would collide with `sqlx::Transaction`).
//!
//! Invariants: the amount is positive ([`POSITIVE_AMOUNT`]); the type is `transfer`, `deposit` or
//! `withdrawal` ([`TYPE_VALID`]) and fixes which accounts are set ([`ACCOUNTS_MATCH_TYPE`]: a
//! deposit has only `to`, a withdrawal only `from`, a transfer two different accounts); the status
//! is `pending`, `completed`, `failed` or `success` ([`STATUS_VALID`]); metadata is a JSON
//! object ([`METADATA_OBJECT`]).
//!
//! The seed's aggregate filters `status='success'`, a status its own transfer never writes (it
//! writes `'completed'`). This crate writes `completed`; a database Django filled holds `success`
//! as well, and both mean the movement was applied ([`APPLIED`]): every report and
//! [`reconcile`] counts both, and [`total_with_status_across_currencies`] answers Django's exact
//! question, `filter(status='success')`, on whichever spelling is asked for. The database refuses any other
//! status.
//!
//! **One posting engine under every writer.** What a caller asks for ([`Movement`],
//! [`Transfer`], [`BatchItem`], the amount rule) is `requests`; the row a request writes and its
//! checks that need no database, `posting`; the accounts locked in id order, each posting judged
//! against the balances the earlier ones left and the net change written once, `book`; the
//! idempotency protocol (one key, or many in one statement), `idempotency`; the `insert`s and
//! the `ledger_post` call, `writes`. The writers are thin callers of them: single movements
//! ([`deposit`], [`withdraw`], [`transfer`]) in `movements`, batches ([`post_batch`],
//! [`post_batch_with_key`]) in `batch`, many tasks' movements in shared commits ([`Poster`]) in
//! `poster`; reads (aggregates, joins, window functions, the seed's raw
//! SQL, [`reconcile`]) in `reports`. All are re-exported here.
//!
//! **Retrying after a failure.** With an idempotency key, repeating the same call after any
//! failure is always safe and returns the one result: the key is claimed before any account is
//! locked, a repeat waits for a first attempt still in flight, and a used key replays the first
//! result (or is [`Error::IdempotencyConflict`](crate::Error::IdempotencyConflict) for another
//! movement). Without a key, a call that failed with
//! [`Error::outcome_unknown`](crate::Error::outcome_unknown) may have been applied, and repeating
//! it may apply it twice. Keys live in `idempotency_keys` (one namespace for movements and
//! batches, [`IDEMPOTENCY_KEYS_PKEY`]); single movements also keep theirs in the row.

/// `sqlx::query_as!(transactions::LedgerEntry, ...)` with the one list of the ledger entry columns: `select r#"from ..."#`
/// puts `select <columns>` before the rest of the query, `returning r#"insert ..."#` appends
/// `returning <columns>` to it. Still one checked query macro (sqlx joins literals with `+`).
macro_rules! query_entries {
    (select $rest:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::money::transactions::LedgerEntry,
            "select id, from_account_id, to_account_id, amount, type as kind, status, metadata, created_at, idempotency_key " + $rest
            $(, $arg)*
        )
    };
    (returning $head:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::money::transactions::LedgerEntry,
            $head + " returning id, from_account_id, to_account_id, amount, type as kind, status, metadata, created_at, idempotency_key"
            $(, $arg)*
        )
    };
}
pub(crate) use query_entries;

mod across_currencies;
mod aggregates;
mod batch;
mod book;
mod copy_out;
mod idempotency;
mod movements;
mod poster;
mod posting;
mod reports;
mod requests;
mod retention;
pub(crate) mod retry;
mod spenders;
mod stream;
mod writes;

pub use across_currencies::*;
#[allow(deprecated)]
pub use aggregates::*;
pub use batch::*;
pub use copy_out::{COPY_PAGES, copy_all, copy_all_pooled};
pub use idempotency::{IdempotencyKey, MAX_IDEMPOTENCY_KEY_LEN};
pub use movements::{deposit, transfer, withdraw};
pub use poster::{Poster, PosterOptions};
pub use reports::*;
pub use requests::{BatchItem, Movement, Transfer, validate_amount};
pub use retention::{
    DEFAULT_KEY_RETENTION, MIN_KEY_RETENTION, PRUNE_BATCH, prune_idempotency_keys,
};
pub use retry::MAX_ATTEMPTS;
pub use spenders::{MAX_DAYS, Spender, top_spenders, top_spenders_as_of};
pub use stream::*;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::tables::accounts::AccountId;

/// Largest metadata document accepted on a movement or batch item, serialized, in bytes (see
/// [`crate::document`] for the nesting limit).
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// The seed's `CheckConstraint(check=Q(amount__gt=0), name='positive_amount')`.
pub const POSITIVE_AMOUNT: &str = "positive_amount";
/// `check (type in ('transfer', 'deposit', 'withdrawal'))`.
pub const TYPE_VALID: &str = "transactions_type_valid";
/// `check (status in ('pending', 'completed', 'failed', 'success'))`.
pub const STATUS_VALID: &str = "transactions_status_valid";
/// Which of `from_account_id` / `to_account_id` each type needs.
pub const ACCOUNTS_MATCH_TYPE: &str = "transactions_accounts_match_type";
/// `check (jsonb_typeof(metadata) = 'object')`.
pub const METADATA_OBJECT: &str = "transactions_metadata_object";
/// `foreign key (from_account_id) references accounts (id) on delete restrict`.
pub const FROM_ACCOUNT_FKEY: &str = "transactions_from_account_id_fkey";
/// `foreign key (to_account_id) references accounts (id) on delete restrict`.
pub const TO_ACCOUNT_FKEY: &str = "transactions_to_account_id_fkey";
/// `unique (idempotency_key)`.
pub const IDEMPOTENCY_KEY_UNIQUE: &str = "transactions_idempotency_key_key";
/// `idempotency_keys`: `primary key (key)`, claimed by every keyed movement and batch.
pub const IDEMPOTENCY_KEYS_PKEY: &str = "idempotency_keys_pkey";
/// `idempotency_keys`: `check (cardinality(entry_ids) > 0)`: a used key names its rows.
pub const IDEMPOTENCY_KEYS_ENTRIES_PRESENT: &str = "idempotency_keys_entries_present";

/// `type` of a transfer between two accounts.
pub const TRANSFER: &str = "transfer";
/// `type` of money coming in.
pub const DEPOSIT: &str = "deposit";
/// `type` of money going out.
pub const WITHDRAWAL: &str = "withdrawal";
/// `status` of a movement that happened, as this crate writes it (the seed's transfer writes it).
pub const COMPLETED: &str = "completed";
/// The statuses of a movement that happened: this crate's `completed`, and `success`, which the
/// seed's aggregate asks for and Django data holds. Reports count both.
pub const APPLIED: [&str; 2] = ["completed", "success"];

use crate::ground::document::Document;
pub use crate::ground::ids::EntryId;
pub use crate::ground::kinds::{EntryKind, EntryStatus};

/// A row of `transactions`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LedgerEntry {
    /// Primary key.
    pub id: EntryId,
    /// The debited account (withdrawals and transfers).
    pub from_account_id: Option<AccountId>,
    /// The credited account (deposits and transfers).
    pub to_account_id: Option<AccountId>,
    /// numeric(15,2), positive.
    pub amount: Decimal,
    /// `transfer`, `deposit` or `withdrawal` (another client's name reads as `Other`).
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// `pending`, `completed` or `failed` (another client's name reads as `Other`).
    pub status: EntryStatus,
    /// Caller metadata, a JSON object, as stored (any depth reads back; see [`Document`]).
    pub metadata: Document,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
    /// The caller's idempotency key, if one was given.
    pub idempotency_key: Option<String>,
}

/// Reads a row whose columns are the crate's entry column list, in its order (`id,
/// from_account_id, to_account_id, amount, type as kind, status, metadata, created_at,
/// idempotency_key`): what the streams' `fetch` returns, the one query that is not a macro. By
/// position, as the macros decode, each value's type checked against its column's.
impl sqlx::FromRow<'_, sqlx::postgres::PgRow> for LedgerEntry {
    fn from_row(row: &sqlx::postgres::PgRow) -> sqlx::Result<Self> {
        use sqlx::Row;
        Ok(Self {
            id: row.try_get(0)?,
            from_account_id: row.try_get(1)?,
            to_account_id: row.try_get(2)?,
            amount: row.try_get(3)?,
            kind: row.try_get(4)?,
            status: row.try_get(5)?,
            metadata: row.try_get(6)?,
            created_at: row.try_get(7)?,
            idempotency_key: row.try_get(8)?,
        })
    }
}
