-- users: the seed's `User` model (`db_table = 'users'`).
--
-- Column names and types match what Django generates for the model, so rows move between a
-- Django-made database and this one with a plain `copy`.
create table users (
    id         uuid         not null default gen_random_uuid(),
    -- Django's EmailField is varchar(254).
    email      varchar(254) not null,
    name       varchar(100) not null,
    created_at timestamptz  not null default now(),
    -- Soft delete: null while the user is live.
    deleted_at timestamptz,

    constraint users_pkey primary key (id),
    constraint users_email_key unique (email),
    -- A cheap structural check; the full syntax is validated in Rust before any insert.
    constraint users_email_format check (email ~ '^[^@[:space:]]+@[^@[:space:]]+$')
);

-- The seed's `models.Index(fields=['email'])`. The unique constraint already indexes `email`;
-- this index is kept only so the schema matches the seed's one-for-one.
create index users_email_idx on users (email);
