-- Index shapes that no cached plan can mistake (issue 2, throughput).
--
-- PostgreSQL caches the plan of every foreign-key check per connection, planned when the writer
-- first inserts a row: on a young ledger, before any statistics exist. A second index leading
-- with ledger_id on a referenced table then ties with the primary key, and a check planned on it
-- scans every entry of the ledger for each posting, lot and receipt it inserts — for the rest of
-- the connection's life. That made the writer bimodal run to run (about 2,500 or 13,000 entries/s
-- on the same machine). Secondary indexes of referenced tables therefore lead with a selective
-- column, as entries_by_id and entries_by_idempotency_key already do.

-- Finding the last entry before a time (exports by date): times never decrease along a ledger's
-- chain, so the query reads the latest time before the bound, then that time's highest seq.
DROP INDEX entries_by_time;
CREATE INDEX entries_by_time ON entries (posted_at, ledger_id);

-- Referenced by corrections (ledger_id, record_id).
DROP INDEX service_records_once;
CREATE UNIQUE INDEX service_records_once ON service_records (resident_id, rule_id, service_date, ledger_id)
    WHERE status IN ('submitted', 'approved') AND correction_of IS NULL;

-- Referenced by stock_moves (ledger_id, item_id).
DROP INDEX items_by_sku;
CREATE UNIQUE INDEX items_by_sku ON items (shop_id, sku, ledger_id);

-- The lots an entry created, read when that entry is reversed (a refund, a correction): without
-- this index the lookup scanned every lot of the ledger.
CREATE INDEX lots_by_entry ON lots (entry_seq, ledger_id);
