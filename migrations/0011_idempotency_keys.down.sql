-- Reverts 0011_idempotency_keys (single movements keep their keys in transactions).
drop table idempotency_keys;
