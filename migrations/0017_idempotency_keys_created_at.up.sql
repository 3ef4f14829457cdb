-- no-transaction
-- Keys have a lifetime (`transactions::prune_idempotency_keys`, `ledger prune-keys`): the prune
-- reads the oldest keys first, in small batches, and this index keeps each batch a range read
-- instead of a scan of every key ever claimed.
--
-- Built concurrently, outside a transaction, so that a live `idempotency_keys` keeps taking
-- claims; `if not exists` lets a run interrupted after the build finish.
create index concurrently if not exists idempotency_keys_created_at_idx
    on idempotency_keys (created_at);
