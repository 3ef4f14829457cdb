-- Indexes for the listings of live users, so that keyset pages cost the same at any depth and
-- ordered pages need no sort. Partial: soft-deleted users are never listed.
create index users_live_created_at_id_idx on users (created_at desc, id desc) where deleted_at is null;
create index users_live_name_id_idx on users (name, id) where deleted_at is null;

-- Account filters on balance (`balance__gte`, `balance__range`, ranking by balance).
create index accounts_balance_idx on accounts (balance);
