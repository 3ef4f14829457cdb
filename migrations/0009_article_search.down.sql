-- Reverts 0009_article_search.
drop index articles_created_at_id_idx;
drop index articles_search_gin_idx;
alter table articles drop column search;
alter table articles drop column language;
