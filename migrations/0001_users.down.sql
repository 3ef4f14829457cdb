-- Reverts 0001_users.
drop table users;
