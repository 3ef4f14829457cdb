//! The account listings that grow with the table, as streams: the balance and status filters and
//! the ranking by balance. Each reads through a server-side cursor a chunk at a time
//! ([`crate::cursor`]), so memory holds one chunk whatever the table's size, and dropping a
//! stream early costs at most the rest of one chunk. Re-exported by [`accounts`](super).
//!
//! For a page at a time instead (a screen, an API response), [`filter`](super::filter) takes a
//! limit and resumes after an id ([`AccountFilter`](super::AccountFilter)).
//!
//! Every stream here, like those of `transactions`, opens a transaction of its own (a savepoint
//! inside a caller's), declares its cursor, fetches [`FIRST_FETCH_ROWS`](crate::cursor::FIRST_FETCH_ROWS)
//! and then [`FETCH_ROWS`](crate::cursor::FETCH_ROWS) rows per round trip, and rolls back at the
//! end: the rows are the snapshot of one `select`. It holds its connection (and, for a pool,
//! takes one) until it ends or is dropped. Input is checked before anything is sent: a bad
//! value is the stream's one item, an [`Error::InvalidInput`].

use futures::{Stream, StreamExt, future, stream};
use rust_decimal::Decimal;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Acquire, Postgres};

use super::{Account, BalanceRank};
use crate::ground::cursor::Cursor;
use crate::ground::telemetry::{self, Op, op_span};
use crate::{Error, Result};

/// The stream of a cursor's accounts, or of the one error that refused its input.
fn accounts<'a, A>(
    db: A,
    op: Op,
    checked: Result<()>,
    declare: Query<'static, Postgres, PgArguments>,
    fetch: [&'static str; 2],
) -> impl Stream<Item = Result<Account>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let rows = match checked {
        Ok(()) => crate::ground::cursor::stream(db, Cursor { declare, fetch }).left_stream(),
        Err(error) => stream::once(future::ready(Err(error))).right_stream(),
    };
    telemetry::traced_stream(op, rows)
}

fn check_statuses(statuses: &[&str]) -> Result<()> {
    statuses
        .iter()
        .try_for_each(|status| Error::check_text("status", status))
}

/// Accounts holding at least `min`, richest first, as a stream.
///
/// Django: `Account.objects.filter(balance__gte=100).iterator(chunk_size=1000)` (the seed
/// writes it on `User`, which has no balance)
///
/// SQL: `declare ledger_accounts_at_least no scroll cursor for select id, user_id, balance,
/// currency, status from accounts where balance >= $1 order by balance desc, id`, then the
/// fetches (module docs).
///
/// # Errors
/// Items are [`Error::Database`] (or a transient error) from the server; after one, the
/// stream ends.
pub fn stream_balance_at_least<'a, A>(
    db: A,
    min: Decimal,
) -> impl Stream<Item = Result<Account>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_accounts_at_least no scroll cursor for
        select id, user_id, balance, currency, status
        from accounts
        where balance >= $1
        order by balance desc, id
        "#,
        min
    );
    let fetch = [
        "fetch 1000 from ledger_accounts_at_least",
        "fetch 5000 from ledger_accounts_at_least",
    ];
    let op = op_span!(
        "ledger.accounts.stream_balance_at_least",
        "SELECT",
        "accounts"
    );
    accounts(db, op, Ok(()), declare, fetch)
}

/// Accounts whose balance lies between `lo` and `hi`, both included, poorest first, as a stream.
///
/// Django: `Account.objects.filter(balance__range=(100, 500)).iterator(chunk_size=1000)`
///
/// SQL: `declare ledger_accounts_between no scroll cursor for select ... where balance between
/// $1 and $2 order by balance, id`, then the fetches (module docs).
///
/// # Errors
/// The one item is [`Error::InvalidInput`] when `lo > hi` (nothing is sent); otherwise as
/// [`stream_balance_at_least`].
pub fn stream_balance_between<'a, A>(
    db: A,
    lo: Decimal,
    hi: Decimal,
) -> impl Stream<Item = Result<Account>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_accounts_between no scroll cursor for
        select id, user_id, balance, currency, status
        from accounts
        where balance between $1 and $2
        order by balance, id
        "#,
        lo,
        hi
    );
    let fetch = [
        "fetch 1000 from ledger_accounts_between",
        "fetch 5000 from ledger_accounts_between",
    ];
    let op = op_span!(
        "ledger.accounts.stream_balance_between",
        "SELECT",
        "accounts"
    );
    accounts(db, op, super::filters::check_range(lo, hi), declare, fetch)
}

/// Accounts whose status is one of `statuses`, in id order, as a stream.
///
/// Django: `Account.objects.filter(status__in=['active', 'vip']).iterator(chunk_size=1000)`
///
/// SQL: `declare ledger_accounts_status_in no scroll cursor for select ... where status =
/// any($1) order by id`, then the fetches (module docs).
///
/// # Errors
/// The one item is [`Error::InvalidInput`] for a status holding U+0000 (nothing is sent);
/// otherwise as [`stream_balance_at_least`].
pub fn stream_status_in<'a, A>(
    db: A,
    statuses: &[&str],
) -> impl Stream<Item = Result<Account>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_accounts_status_in no scroll cursor for
        select id, user_id, balance, currency, status
        from accounts
        where status = any($1)
        order by id
        "#,
        statuses as &[&str]
    );
    let fetch = [
        "fetch 1000 from ledger_accounts_status_in",
        "fetch 5000 from ledger_accounts_status_in",
    ];
    let op = op_span!("ledger.accounts.stream_status_in", "SELECT", "accounts");
    accounts(db, op, check_statuses(statuses), declare, fetch)
}

/// Accounts holding at least `min` *and* in `status`, richest first, as a stream.
///
/// Django: `Account.objects.filter(balance__gte=100, status='active').iterator(chunk_size=1000)`
///
/// SQL: `declare ledger_accounts_at_least_and no scroll cursor for select ... where balance >=
/// $1 and status = $2 order by balance desc, id`, then the fetches (module docs).
///
/// # Errors
/// As [`stream_status_in`].
pub fn stream_balance_at_least_and_status<'a, A>(
    db: A,
    min: Decimal,
    status: &str,
) -> impl Stream<Item = Result<Account>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_accounts_at_least_and no scroll cursor for
        select id, user_id, balance, currency, status
        from accounts
        where balance >= $1 and status = $2
        order by balance desc, id
        "#,
        min,
        status
    );
    let fetch = [
        "fetch 1000 from ledger_accounts_at_least_and",
        "fetch 5000 from ledger_accounts_at_least_and",
    ];
    let op = op_span!(
        "ledger.accounts.stream_balance_at_least_and_status",
        "SELECT",
        "accounts"
    );
    accounts(db, op, check_statuses(&[status]), declare, fetch)
}

/// Accounts holding at least `min` *or* in `status`, richest first, as a stream.
///
/// Django: `Account.objects.filter(Q(balance__gte=100) | Q(status='vip')).iterator(chunk_size=1000)`
///
/// SQL: `declare ledger_accounts_at_least_or no scroll cursor for select ... where balance >=
/// $1 or status = $2 order by balance desc, id`, then the fetches (module docs).
///
/// # Errors
/// As [`stream_status_in`].
pub fn stream_balance_at_least_or_status<'a, A>(
    db: A,
    min: Decimal,
    status: &str,
) -> impl Stream<Item = Result<Account>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_accounts_at_least_or no scroll cursor for
        select id, user_id, balance, currency, status
        from accounts
        where balance >= $1 or status = $2
        order by balance desc, id
        "#,
        min,
        status
    );
    let fetch = [
        "fetch 1000 from ledger_accounts_at_least_or",
        "fetch 5000 from ledger_accounts_at_least_or",
    ];
    let op = op_span!(
        "ledger.accounts.stream_balance_at_least_or_status",
        "SELECT",
        "accounts"
    );
    accounts(db, op, check_statuses(&[status]), declare, fetch)
}

/// Accounts *not* in `status`, in id order, as a stream.
///
/// Django: `Account.objects.exclude(status='banned').iterator(chunk_size=1000)`
///
/// SQL: `declare ledger_accounts_status_not no scroll cursor for select ... where status <> $1
/// order by id`, then the fetches (module docs).
///
/// # Errors
/// As [`stream_status_in`].
pub fn stream_status_not<'a, A>(
    db: A,
    status: &str,
) -> impl Stream<Item = Result<Account>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_accounts_status_not no scroll cursor for
        select id, user_id, balance, currency, status
        from accounts
        where status <> $1
        order by id
        "#,
        status
    );
    let fetch = [
        "fetch 1000 from ledger_accounts_status_not",
        "fetch 5000 from ledger_accounts_status_not",
    ];
    let op = op_span!("ledger.accounts.stream_status_not", "SELECT", "accounts");
    accounts(db, op, check_statuses(&[status]), declare, fetch)
}

/// Every account ranked by balance among the accounts of its currency, richest first, with its
/// owner's name, as a stream: currencies in order, then rank (see
/// [`rank_by_balance`](super::rank_by_balance) for why the window is partitioned by currency).
///
/// Django: `Account.objects.annotate(rank=Window(expression=Rank(), partition_by=F('currency'),
/// order_by=F('balance').desc())).values('user__name', 'balance', 'rank').iterator(chunk_size=1000)`
///
/// SQL: `declare ledger_accounts_ranked no scroll cursor for select ..., rank() over (partition
/// by a.currency order by a.balance desc) from accounts a join users u on u.id = a.user_id
/// order by a.currency, 5, a.id`, then the fetches (module docs). The server sorts the whole
/// table for the window, as for one `select`; the client holds one chunk.
///
/// # Errors
/// As [`stream_balance_at_least`].
pub fn stream_rank_by_balance<'a, A>(
    db: A,
) -> impl Stream<Item = Result<BalanceRank>> + Send + Unpin + 'a
where
    A: Acquire<'a, Database = Postgres> + Send + 'a,
{
    let declare = sqlx::query!(
        r#"
        declare ledger_accounts_ranked no scroll cursor for
        select a.id as account_id,
               a.currency,
               u.name as user_name,
               a.balance,
               rank() over (partition by a.currency order by a.balance desc) as rank
        from accounts a
        join users u on u.id = a.user_id
        order by a.currency, 5, a.id
        "#
    );
    let cursor = Cursor {
        declare,
        fetch: [
            "fetch 1000 from ledger_accounts_ranked",
            "fetch 5000 from ledger_accounts_ranked",
        ],
    };
    let op = op_span!(
        "ledger.accounts.stream_rank_by_balance",
        "SELECT",
        "accounts"
    );
    telemetry::traced_stream(op, crate::ground::cursor::stream(db, cursor))
}
