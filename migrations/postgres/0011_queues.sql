-- Staff's work lists (issue 13): service records, corrections and rosters by state, oldest
-- first, read a page at a time from where the last page ended. Like 0005, the secondary
-- indexes lead with their selective columns, not ledger_id.
CREATE INDEX service_records_by_state ON service_records (status, submitted_at, id, ledger_id);
CREATE INDEX corrections_by_state ON corrections (status, requested_at, id, ledger_id);
CREATE INDEX rosters_by_state ON rosters (status, created_at, id, ledger_id);
