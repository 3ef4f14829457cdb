-- GIN indexes on the JSONB documents. The default jsonb_ops class serves containment (`@>`),
-- which every key-value and nested-path query of `ledger::payments` uses, and key existence
-- (`?`, Django's `has_key`).
create index payments_data_gin_idx on payments using gin (data);
create index transactions_metadata_gin_idx on transactions using gin (metadata);
