-- Reverts 0007_idempotency.
alter table transactions drop column idempotency_key;
