-- The administrator's pages and API (src/admin.rs): the list of a ledger's API tokens, newest
-- first (GET /v1/tokens, /admin/tokens), reads this index instead of every token of every ledger.
CREATE INDEX api_tokens_by_ledger ON api_tokens (ledger_id, created_at);
