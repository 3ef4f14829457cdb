-- payments: the seed's `Payment` model, a JSONB document per payment.
--
-- The seed gives it only `data`; it gets a uuid key like every other table here, and a
-- `created_at` so listings have a stable order.
create table payments (
    id         uuid        not null default gen_random_uuid(),
    data       jsonb       not null default '{}'::jsonb,
    created_at timestamptz not null default now(),

    constraint payments_pkey primary key (id),
    -- Django's `default=dict`: the document is a JSON object, never an array or a scalar.
    constraint payments_data_object check (jsonb_typeof(data) = 'object')
);
