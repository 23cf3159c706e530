-- The administrator's pages and API (src/admin.rs): the list of a ledger's API tokens, newest
-- first (GET /v1/tokens, /admin/tokens), walks this index backwards instead of sorting every
-- token. It leads with the time, not ledger_id: on PostgreSQL only primary keys lead with
-- ledger_id (see migration 0005 and tests/store.rs).
CREATE INDEX api_tokens_by_time ON api_tokens (created_at, ledger_id);
