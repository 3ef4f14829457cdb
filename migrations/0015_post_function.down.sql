drop function ledger_post(uuid, uuid, uuid, numeric, varchar, varchar, jsonb, varchar, numeric);
