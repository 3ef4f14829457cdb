-- The ledger in time order, for streaming and keyset chunks (`ledger::transactions::chunks`).
create index transactions_created_at_id_idx on transactions (created_at, id);
