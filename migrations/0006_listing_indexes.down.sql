-- Reverts 0006_listing_indexes.
drop index accounts_balance_idx;
drop index users_live_name_id_idx;
drop index users_live_created_at_id_idx;
