-- Reverts 0008_jsonb_indexes.
drop index transactions_metadata_gin_idx;
drop index payments_data_gin_idx;
