-- Fails while a row still says 'success': map those rows first.
alter table transactions drop constraint transactions_status_valid;
alter table transactions
    add constraint transactions_status_valid
    check (status in ('pending', 'completed', 'failed'));
