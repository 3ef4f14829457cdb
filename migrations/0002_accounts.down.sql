-- Reverts 0002_accounts.
drop table accounts;
