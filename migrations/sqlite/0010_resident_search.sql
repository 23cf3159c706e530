-- Finding residents for the community staff's pages and `GET /v1/residents`: by phone as its
-- digits only (what `search_residents` compares, the same expression), by community in
-- registration order (the list's page order), and the work table's counts: lots expiring in a
-- date range, records waiting for approval, open corrections.
CREATE INDEX residents_by_phone_digits
    ON residents (ledger_id, (replace(replace(replace(phone, ' ', ''), '-', ''), '+', '')));
CREATE INDEX residents_by_community ON residents (ledger_id, community_id, created_at, id);
CREATE INDEX residents_by_created ON residents (ledger_id, created_at, id);
CREATE INDEX lots_open_by_expiry ON lots (ledger_id, expires_on) WHERE remaining_minor > 0;
CREATE INDEX service_records_submitted ON service_records (ledger_id, resident_id) WHERE status = 'submitted';
CREATE INDEX corrections_open ON corrections (ledger_id, record_id) WHERE status = 'open';
