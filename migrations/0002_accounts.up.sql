-- accounts: the seed's `Account` model.
create table accounts (
    id       uuid          not null default gen_random_uuid(),
    -- Django's on_delete=PROTECT: a user who still owns accounts cannot be deleted.
    user_id  uuid          not null,
    -- Money is numeric(15,2): never a float.
    balance  numeric(15,2) not null default 0,
    currency varchar(3)    not null default 'USD',
    status   varchar(20)   not null default 'active',

    constraint accounts_pkey primary key (id),
    constraint accounts_user_id_fkey foreign key (user_id) references users (id) on delete restrict,
    -- The seed's CheckConstraint(balance__gte=0).
    constraint balance_non_negative check (balance >= 0),
    -- ISO 4217 style: three uppercase ASCII letters.
    constraint accounts_currency_format check (currency ~ '^[A-Z]{3}$')
);

-- Django indexes every foreign key; so do we (prefetching a user's accounts reads it).
create index accounts_user_id_idx on accounts (user_id);
