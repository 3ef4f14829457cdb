-- Idempotent money movements: a caller may attach a key to a deposit, withdrawal or transfer;
-- repeating the call with the same key returns the first movement instead of moving money again.
-- Unique, so two racing calls with one key cannot both write (nulls never collide).
alter table transactions add column idempotency_key varchar(200);
alter table transactions
    add constraint transactions_idempotency_key_key unique (idempotency_key);
