-- Reverts 0010_transactions_order.
drop index transactions_created_at_id_idx;
