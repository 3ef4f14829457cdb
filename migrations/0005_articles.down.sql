-- Reverts 0005_articles.
drop table articles;
