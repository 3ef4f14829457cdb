-- no-transaction
drop index concurrently if exists users_live_name_pattern_idx;
