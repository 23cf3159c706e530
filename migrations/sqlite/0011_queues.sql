-- Staff's work lists (issue 13): service records, corrections and rosters by state, oldest
-- first, read a page at a time from where the last page ended.
CREATE INDEX service_records_by_state ON service_records (ledger_id, status, submitted_at, id);
CREATE INDEX corrections_by_state ON corrections (ledger_id, status, requested_at, id);
CREATE INDEX rosters_by_state ON rosters (ledger_id, status, created_at, id);
