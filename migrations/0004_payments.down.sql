-- Reverts 0004_payments.
drop table payments;
