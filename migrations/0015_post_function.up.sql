-- ledger_post: one money movement (deposit, withdrawal or transfer) in one call, so that a
-- movement without an idempotency key is one round trip: `select ... from ledger_post(...)`,
-- committed by the server as the statement ends. `transactions::deposit`, `withdraw` and
-- `transfer` call it; the Rust side validates the request first and turns a refusal into its
-- typed error from the rows this returns.
--
-- The function is volatile, so in read committed each statement in it takes a fresh snapshot.
-- Once the lock is held, the check reads the newest version of each locked row, and the writes
-- find those same versions; no write has to re-check its condition against an older snapshot.
-- A single statement (the lock in one CTE, the writes in others) was tried first: under
-- concurrent transfers a write re-checked its condition against the statement's older view and
-- a debit went below zero.
create function ledger_post(
    p_entry uuid,
    p_from uuid,
    p_to uuid,
    p_amount numeric,
    p_type varchar,
    p_status varchar,
    p_metadata jsonb,
    p_key varchar,
    p_credit_limit numeric
) returns table (
    account_id uuid,
    account_balance numeric,
    account_currency varchar,
    account_status varchar,
    entry_created_at timestamptz,
    entry_metadata jsonb
)
language plpgsql
volatile
as $$
declare
    v_passed boolean;
    v_created_at timestamptz;
    v_metadata jsonb;
begin
    -- 1. Both accounts in one statement, in ascending id order: concurrent movements queue on
    --    the lock instead of deadlocking.
    perform 1 from accounts a where a.id in (p_from, p_to) order by a.id for update;

    -- 2. The Rust side's `check`, condition for condition, on the rows as they are now. Only
    --    whether every check passes matters here; on a refusal the caller says which failed.
    select count(*) = num_nonnulls(p_from, p_to)
           and coalesce(bool_and(a.status = 'active'), false)
           and count(distinct a.currency) = 1
           and coalesce(bool_and(a.id is distinct from p_to
                                 or a.balance + p_amount < p_credit_limit), false)
           and coalesce(bool_and(a.id is distinct from p_from or a.balance >= p_amount), false)
      into v_passed
      from accounts a
     where a.id in (p_from, p_to);

    -- 3. Both balances and the entry, or nothing.
    if v_passed then
        update accounts a set balance = a.balance - p_amount where a.id = p_from;
        update accounts a set balance = a.balance + p_amount where a.id = p_to;
        insert into transactions as t
            (id, from_account_id, to_account_id, amount, type, status, metadata,
             idempotency_key)
        values (p_entry, p_from, p_to, p_amount, p_type, p_status, p_metadata, p_key)
        returning t.created_at, t.metadata into v_created_at, v_metadata;
    end if;

    -- 4. The locked accounts (as checked, when nothing was written) and the entry's
    --    created_at and metadata (NULL when nothing was written).
    return query
        select a.id, a.balance, a.currency, a.status, v_created_at, v_metadata
          from accounts a
         where a.id in (p_from, p_to)
         order by a.id;
end
$$;
