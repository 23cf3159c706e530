-- Finding residents for the community staff's pages and `GET /v1/residents`: by phone as its
-- digits only (what `search_residents` compares, the same expression), by community in
-- registration order (the list's page order), and the work table's counts: lots expiring in a
-- date range, records waiting for approval, open corrections. As in 0005, no secondary index
-- leads with ledger_id here (PostgreSQL's cached generic plans would take any such index for
-- the ledger prefix alone): each leads with the column it is for.
CREATE INDEX residents_by_phone_digits
    ON residents ((replace(replace(replace(phone, ' ', ''), '-', ''), '+', '')), ledger_id);
CREATE INDEX residents_by_community ON residents (community_id, ledger_id, created_at, id);
CREATE INDEX residents_by_created ON residents (created_at, id, ledger_id);
CREATE INDEX lots_open_by_expiry ON lots (expires_on, ledger_id) WHERE remaining_minor > 0;
CREATE INDEX service_records_submitted ON service_records (resident_id, ledger_id) WHERE status = 'submitted';
CREATE INDEX corrections_open ON corrections (record_id, ledger_id) WHERE status = 'open';
