-- Idempotency keys, claimed before anything else. A keyed movement or batch first inserts its key
-- here; a second call with the same key blocks on the primary key until the first commits (and
-- then replays the first result) or rolls back (and then applies). The claim is made before any
-- account is locked, so a retry is never judged against balances its first attempt already moved.
-- One namespace for single movements and batches; `entry_ids` lists the movement's rows in order.
create table idempotency_keys (
    key        varchar(200) not null,
    entry_ids  uuid[]       not null,
    created_at timestamptz  not null default now(),

    constraint idempotency_keys_pkey primary key (key),
    constraint idempotency_keys_entries_present check (cardinality(entry_ids) > 0)
);

-- Keys written before this table existed.
insert into idempotency_keys (key, entry_ids, created_at)
select idempotency_key, array[id], created_at
from transactions
where idempotency_key is not null;
