-- Reverts 0003_transactions.
drop table transactions;
