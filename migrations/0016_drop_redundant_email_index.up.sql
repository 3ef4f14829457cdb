-- no-transaction
-- The seed's `Meta.indexes = [models.Index(fields=['email'])]` beside `unique=True` builds a
-- second b-tree on `users.email`; the unique constraint's index (`users_email_key`) already
-- serves every lookup by email. Measured on this crate's `users` (README, "Benchmarks"): the
-- extra index made each insert 1.17x as costly and served no query. Dropped concurrently, so
-- that a live `users` table keeps taking writes.
--
-- A database adopted from Django keeps Django's own copy (`users_email_<hash>_idx`): Django
-- drops it when the Index leaves the model's Meta (`ledger adopt` says so).
drop index concurrently if exists users_email_idx;
