-- Full-text search on articles: the seed's SearchVector('title', weight='A') +
-- SearchVector('content', weight='B'), computed once per write into a stored generated column
-- and indexed, instead of once per row per query as Django's annotate() does.
--
-- Each article names its text search configuration (how words are stemmed), english by default;
-- a search picks one and reads only the articles written in it, so the index still applies.
alter table articles add column language regconfig not null default 'english';

alter table articles add column search tsvector generated always as (
    setweight(to_tsvector(language, title), 'A') || setweight(to_tsvector(language, content), 'B')
) stored;

create index articles_search_gin_idx on articles using gin (search);
-- Listings of the newest articles (`articles::list_summaries`).
create index articles_created_at_id_idx on articles (created_at desc, id desc);
