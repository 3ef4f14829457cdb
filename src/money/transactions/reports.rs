//! Reads of the ledger's entries: one entry, and through [`EntryQuery`] an account's history,
//! `select_related` joins and the JSONB filters (the aggregates are in `aggregates`).
//! Re-exported by [`transactions`](super).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgExecutor;

use super::{EntryId, LedgerEntry};
use crate::ground::document::Document;
use crate::ground::ids::UserId;
use crate::ground::numeric::Numeric;
use crate::tables::accounts::{Account, AccountId};
use crate::tables::page::{self, Cursor, forward_query};
use crate::{Error, Result};

/// The entry with this id.
///
/// Django: `Transaction.objects.get(id=...)`
///
/// SQL: `select ... from transactions where id = $1`.
///
/// Plan (100,000 rows, checked by `tests/db/plans.rs`): an index scan of `transactions_pkey`.
///
/// # Errors
/// [`Error::NotFound`] when there is no such entry.
pub async fn get(db: impl PgExecutor<'_>, id: EntryId) -> Result<LedgerEntry> {
    let op =
        crate::ground::telemetry::op_span!("ledger.transactions.get", "SELECT", "transactions");
    crate::ground::telemetry::traced(op, async move {
        query_entries!(
            select r#"
        from transactions
        where id = $1
        "#,
            id.as_uuid()
        )
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound {
            what: "transaction",
        })
    })
    .await
}

/// An entry with both its accounts, read in one query.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryWithAccounts {
    /// The entry.
    pub entry: LedgerEntry,
    /// The debited account; `None` for a deposit.
    pub from_account: Option<Account>,
    /// The credited account; `None` for a withdrawal.
    pub to_account: Option<Account>,
}

struct JoinedRow {
    id: EntryId,
    from_account_id: Option<AccountId>,
    to_account_id: Option<AccountId>,
    amount: Decimal,
    kind: String,
    status: String,
    metadata: Document,
    created_at: DateTime<Utc>,
    idempotency_key: Option<String>,
    from_user_id: Option<UserId>,
    from_balance: Option<Numeric>,
    from_currency: Option<String>,
    from_status: Option<String>,
    to_user_id: Option<UserId>,
    to_balance: Option<Numeric>,
    to_currency: Option<String>,
    to_status: Option<String>,
}

fn joined_account(
    id: Option<AccountId>,
    user_id: Option<UserId>,
    balance: Option<Decimal>,
    currency: Option<String>,
    status: Option<String>,
) -> Option<Account> {
    Some(Account {
        id: id?,
        user_id: user_id?,
        balance: balance?,
        currency: currency?,
        status: status?.into(),
    })
}

forward_query! {
    /// How ledger entries are listed: from where ([`after`](Self::after), a [`Cursor`] on
    /// `(created_at, id)`) and how many ([`limit`](Self::limit)). Build it from
    /// [`EntryQuery::new`] (from the start, [`DEFAULT_PER_PAGE`](crate::page::DEFAULT_PER_PAGE)
    /// rows) and the setters, then read a listing with one of its methods.
    ///
    /// `#[non_exhaustive]`: a setting added later has a default, so code written today keeps
    /// compiling.
    ///
    /// ```no_run
    /// # async fn demo(pool: ledger::PgPool, account: ledger::accounts::AccountId) -> ledger::Result<()> {
    /// use ledger::page::Cursor;
    /// use ledger::transactions::EntryQuery;
    ///
    /// // Django: an account's history, 100 entries at a time, oldest first, to the end.
    /// let mut history = EntryQuery::new().limit(100);
    /// loop {
    ///     let entries = history.list_for_account(&pool, account).await?;
    ///     let Some(last) = entries.last() else { break };
    ///     history = history.after(Cursor::after(last.created_at, last.id.as_uuid()));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub struct EntryQuery {
        after: Cursor, "Where the listing resumes: the previous page's last row (`None`, the default: from the start).";
    }
}

impl EntryQuery {
    /// An account's movements in and out, newest first.
    ///
    /// Django: `Transaction.objects.filter(Q(from_account=acc) | Q(to_account=acc)).order_by('-created_at')[:limit]`
    ///
    /// SQL: two index range scans (`(from_account_id, created_at)` and `(to_account_id,
    /// created_at)`) combined with `union all`, `order by created_at desc, id desc limit $2`; with
    /// `after`, only the rows past it: `(created_at, id) < ($3, $4)`.
    ///
    /// Read to the end by passing [`EntryQuery::after`] the last row of each page.
    ///
    /// Plan (100,000 rows, checked by `tests/db/plans.rs`):
    /// `transactions_from_account_id_created_at_idx` and `transactions_to_account_id_created_at_idx`,
    /// then a sort of that account's entries.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a limit outside `1..=MAX_PER_PAGE`, or a `Previous` cursor.
    pub async fn list_for_account(
        &self,
        db: impl PgExecutor<'_>,
        account: AccountId,
    ) -> Result<Vec<LedgerEntry>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.transactions.list_for_account",
            "SELECT",
            "transactions"
        );
        crate::ground::telemetry::traced(op, async move {
            let limit = page::check_limit(self.limit)?;
            let (after_at, after_id) = page::resume_after(self.after.as_ref())?;
            Ok(sqlx::query_as!(
                LedgerEntry,
                r#"
            select id as "id!: EntryId",
                   from_account_id as "from_account_id: AccountId",
                   to_account_id as "to_account_id: AccountId",
                   amount as "amount!", type as "kind!", status as "status!",
                   metadata as "metadata!: Document", created_at as "created_at!", idempotency_key
            from (
                select * from transactions where from_account_id = $1
                union all
                select * from transactions where to_account_id = $1
            ) as history
            where (created_at, id) < (coalesce($3::timestamptz, 'infinity'),
                                      coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
            order by created_at desc, id desc
            limit $2
            "#,
                account.as_uuid(),
                limit,
                after_at,
                after_id
            )
            .fetch_all(db)
            .await?)
        })
        .await
    }

    /// The newest entries with their `from` and `to` accounts: one query, no N+1.
    ///
    /// Django: `Transaction.objects.select_related('from_account', 'to_account')`
    ///
    /// SQL: `transactions left join accounts f ... left join accounts t ... order by created_at desc,
    /// id desc limit $1`. Left joins: a deposit has no `from` account and a withdrawal no `to`, and
    /// an inner join would drop them. With `after`, only the rows past it (index
    /// `transactions_created_at_id_idx`).
    ///
    /// Read to the end by passing [`EntryQuery::after`] the last row of each page.
    ///
    /// Plan (100,000 rows, checked by `tests/db/plans.rs`): `transactions_created_at_id_idx` backwards
    /// and `accounts_pkey` for each side; no sort.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a limit outside `1..=MAX_PER_PAGE`, or a `Previous` cursor.
    pub async fn list_with_accounts(
        &self,
        db: impl PgExecutor<'_>,
    ) -> Result<Vec<EntryWithAccounts>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.transactions.list_with_accounts",
            "SELECT",
            "transactions"
        );
        crate::ground::telemetry::traced(op, async move {
            let limit = page::check_limit(self.limit)?;
            let (after_at, after_id) = page::resume_after(self.after.as_ref())?;
            let rows = sqlx::query_as!(
                JoinedRow,
                r#"
            select t.id,
                   t.from_account_id,
                   t.to_account_id,
                   t.amount, t.type as kind, t.status, t.metadata, t.created_at, t.idempotency_key,
                   f.user_id as "from_user_id?: UserId", f.balance as "from_balance?",
                   f.currency as "from_currency?", f.status as "from_status?",
                   a.user_id as "to_user_id?: UserId", a.balance as "to_balance?",
                   a.currency as "to_currency?", a.status as "to_status?"
            from transactions t
            left join accounts f on f.id = t.from_account_id
            left join accounts a on a.id = t.to_account_id
            where (t.created_at, t.id) < (coalesce($2::timestamptz, 'infinity'),
                                          coalesce($3::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
            order by t.created_at desc, t.id desc
            limit $1
            "#,
                limit,
                after_at,
                after_id
            )
            .fetch_all(db)
            .await?;
            Ok(rows
                .into_iter()
                .map(|r| EntryWithAccounts {
                    from_account: joined_account(
                        r.from_account_id,
                        r.from_user_id,
                        r.from_balance.map(Decimal::from),
                        r.from_currency,
                        r.from_status,
                    ),
                    to_account: joined_account(
                        r.to_account_id,
                        r.to_user_id,
                        r.to_balance.map(Decimal::from),
                        r.to_currency,
                        r.to_status,
                    ),
                    entry: LedgerEntry {
                        id: r.id,
                        from_account_id: r.from_account_id,
                        to_account_id: r.to_account_id,
                        amount: r.amount,
                        kind: r.kind.into(),
                        status: r.status.into(),
                        metadata: r.metadata,
                        created_at: r.created_at,
                        idempotency_key: r.idempotency_key,
                    },
                })
                .collect())
        })
        .await
    }

    /// Entries whose metadata contains `fragment` (every key and value of it, at any depth), newest
    /// first: the seed's JSONB key-value and nested queries, on `transactions.metadata`.
    ///
    /// Django: `Transaction.objects.filter(metadata__channel='web')`,
    /// `Transaction.objects.filter(metadata__device__os='ios')`
    ///
    /// SQL: `where metadata @> $1 order by created_at desc, id desc limit $2` (GIN index
    /// `transactions_metadata_gin_idx`).
    ///
    /// Read to the end by passing [`EntryQuery::after`] the last row of each page.
    ///
    /// Plan (100,000 rows, checked by `tests/db/plans.rs`): `transactions_metadata_gin_idx`, or, as
    /// PostgreSQL keeps no statistics for `@>` and assumes 0.1 % of rows match, a walk of
    /// `transactions_created_at_id_idx` that checks each entry until the page is full (which reads far
    /// more rows when matches are rarer than that).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a fragment that is not a JSON object or that no metadata could
    /// hold (see [`crate::document::check`]), a bad limit, or a `Previous` cursor.
    pub async fn list_metadata_containing(
        &self,
        db: impl PgExecutor<'_>,
        fragment: &serde_json::Value,
    ) -> Result<Vec<LedgerEntry>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.transactions.list_metadata_containing",
            "SELECT",
            "transactions"
        );
        crate::ground::telemetry::traced(op, async move {
            if !fragment.is_object() {
                return Err(Error::invalid("metadata", "must be a JSON object"));
            }
            crate::ground::document::check("metadata", fragment, super::MAX_METADATA_BYTES)?;
            let limit = page::check_limit(self.limit)?;
            let (after_at, after_id) = page::resume_after(self.after.as_ref())?;
            Ok(query_entries!(
                select r#"
            from transactions
            where metadata @> $1
              and (created_at, id) < (coalesce($3::timestamptz, 'infinity'),
                                      coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
            order by created_at desc, id desc
            limit $2
            "#,
                fragment,
                limit,
                after_at,
                after_id
            )
            .fetch_all(db)
            .await?)
        })
        .await
    }

    /// Entries whose metadata has this top-level key, newest first.
    ///
    /// Django: `Transaction.objects.filter(metadata__has_key='refund_of')`
    ///
    /// SQL: `where metadata ? $1 order by created_at desc, id desc limit $2` (GIN index).
    ///
    /// Read to the end by passing [`EntryQuery::after`] the last row of each page.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit or a `Previous` cursor.
    pub async fn list_with_metadata_key(
        &self,
        db: impl PgExecutor<'_>,
        key: &str,
    ) -> Result<Vec<LedgerEntry>> {
        let op = crate::ground::telemetry::op_span!(
            "ledger.transactions.list_with_metadata_key",
            "SELECT",
            "transactions"
        );
        crate::ground::telemetry::traced(op, async move {
            Error::check_text("key", key)?;
            let limit = page::check_limit(self.limit)?;
            let (after_at, after_id) = page::resume_after(self.after.as_ref())?;
            Ok(query_entries!(
                select r#"
            from transactions
            where metadata ? $1
              and (created_at, id) < (coalesce($3::timestamptz, 'infinity'),
                                      coalesce($4::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
            order by created_at desc, id desc
            limit $2
            "#,
                key,
                limit,
                after_at,
                after_id
            )
            .fetch_all(db)
            .await?)
        })
        .await
    }
}
