-- Django's data says 'success' where this crate says 'completed' (the seed's own aggregate
-- filters on it). Both mean applied: the rule widens to hold it, so that a database Django filled
-- is adopted with every status as stored, and `filter(status='success')` keeps its exact answer.
--
-- The new check is added `not valid` and then validated, so that the scan holds no lock that
-- blocks writers.
alter table transactions drop constraint transactions_status_valid;
alter table transactions
    add constraint transactions_status_valid
    check (status in ('pending', 'completed', 'failed', 'success')) not valid;
alter table transactions validate constraint transactions_status_valid;
