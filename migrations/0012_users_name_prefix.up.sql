-- no-transaction
-- `name__startswith` (`users::list_name_starts_with`, `UserFilter::name_starts_with`): `like
-- 'An%'` can use a b-tree only through a pattern operator class unless the database's collation
-- is "C" (Django adds the same `varchar_pattern_ops` index for indexed CharFields). Without it,
-- a prefix search reads every user (a sequential scan, checked by tests/db/plans.rs).
--
-- Built concurrently, outside a transaction, so that a live `users` table keeps taking writes;
-- `if not exists` lets a run interrupted after the build finish.
create index concurrently if not exists users_live_name_pattern_idx
    on users (name varchar_pattern_ops) where deleted_at is null;
