-- no-transaction
-- Reverts 0017_idempotency_keys_created_at.
drop index concurrently if exists idempotency_keys_created_at_idx;
