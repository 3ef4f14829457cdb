-- transactions: the seed's `Transaction` model, the ledger of money movements.
create table transactions (
    id              uuid          not null default gen_random_uuid(),
    from_account_id uuid,
    to_account_id   uuid,
    amount          numeric(15,2) not null,
    type            varchar(20)   not null,
    status          varchar(20)   not null default 'pending',
    metadata        jsonb         not null default '{}'::jsonb,
    created_at      timestamptz   not null default now(),

    constraint transactions_pkey primary key (id),
    constraint transactions_from_account_id_fkey
        foreign key (from_account_id) references accounts (id) on delete restrict,
    constraint transactions_to_account_id_fkey
        foreign key (to_account_id) references accounts (id) on delete restrict,
    -- The seed's CheckConstraint(amount__gt=0).
    constraint positive_amount check (amount > 0),
    -- The seed's `TYPES` choices, which Django checks only in forms.
    constraint transactions_type_valid check (type in ('transfer', 'deposit', 'withdrawal')),
    -- The seed writes 'pending' (the default) and 'completed'. Its aggregate example filters on
    -- 'success', a status its own code never writes: here a successful movement is 'completed'.
    constraint transactions_status_valid check (status in ('pending', 'completed', 'failed')),
    -- Which side each type needs: a deposit only credits, a withdrawal only debits, a transfer
    -- moves between two different accounts.
    constraint transactions_accounts_match_type check (
        case type
            when 'transfer' then from_account_id is not null
                and to_account_id is not null
                and from_account_id <> to_account_id
            when 'deposit' then from_account_id is null and to_account_id is not null
            when 'withdrawal' then from_account_id is not null and to_account_id is null
            -- An unknown type is transactions_type_valid's to report.
            else true
        end
    ),
    -- Metadata is a JSON object, as Django's `default=dict` implies.
    constraint transactions_metadata_object check (jsonb_typeof(metadata) = 'object')
);

-- The seed's two composite indexes: an account's history, newest or oldest first.
create index transactions_from_account_id_created_at_idx on transactions (from_account_id, created_at);
create index transactions_to_account_id_created_at_idx on transactions (to_account_id, created_at);
