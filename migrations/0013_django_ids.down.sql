-- Back to uuid ids: a row that had one before gets it again, any other a new one.
alter table payments drop constraint payments_pkey;
alter table payments alter column id drop identity;
alter table payments rename column id to serial;
alter table payments add column id uuid;
update payments
set id = coalesce(
    (select uuid from ledger_uuid_ids where table_name = 'payments' and ledger_uuid_ids.id = serial),
    gen_random_uuid());
alter table payments drop column serial;
alter table payments alter column id set not null;
alter table payments alter column id set default gen_random_uuid();
alter table payments add constraint payments_pkey primary key (id);

alter table articles drop constraint articles_pkey;
alter table articles alter column id drop identity;
alter table articles rename column id to serial;
alter table articles add column id uuid;
update articles
set id = coalesce(
    (select uuid from ledger_uuid_ids where table_name = 'articles' and ledger_uuid_ids.id = serial),
    gen_random_uuid());
alter table articles drop column serial;
alter table articles alter column id set not null;
alter table articles alter column id set default gen_random_uuid();
alter table articles add constraint articles_pkey primary key (id);
create index articles_created_at_id_idx on articles (created_at desc, id desc);

drop table ledger_uuid_ids;
