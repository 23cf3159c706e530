-- Index shapes that no cached plan can mistake (issue 2, throughput).
--
-- PostgreSQL caches plans per connection: the foreign-key checks' always, and every prepared
-- statement's once it goes generic. Plans made on a young ledger, before any statistics exist,
-- see every index leading with ledger_id as equally good, and one chosen for its ledger_id prefix
-- alone scans the whole ledger on every use, for the rest of the connection's life. The checks on
-- postings, lots and receipts did that through entries_by_time (the writer was bimodal run to
-- run: about 2,500 or 13,000 entries/s on one machine), and the till's receipt read did it
-- through the receipts indexes. So only primary keys lead with ledger_id; every secondary index
-- leads with its selective column, as entries_by_id and entries_by_idempotency_key always have.
-- (Rebuilding postings_by_account takes a while on a large journal; it runs once.)

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

DROP INDEX postings_by_account;
CREATE INDEX postings_by_account ON postings (account_id, ledger_id, entry_seq);

DROP INDEX lots_open_by_account;
CREATE INDEX lots_open_by_account ON lots (account_id, ledger_id) WHERE remaining_minor > 0;

DROP INDEX stock_moves_by_item;
CREATE INDEX stock_moves_by_item ON stock_moves (item_id, ledger_id, at);

DROP INDEX credentials_by_number;
CREATE UNIQUE INDEX credentials_by_number ON credentials (number, ledger_id);
DROP INDEX credentials_by_resident;
CREATE UNIQUE INDEX credentials_by_resident ON credentials (resident_id, ledger_id);

DROP INDEX receipts_by_entry;
CREATE UNIQUE INDEX receipts_by_entry ON receipts (entry_id, ledger_id);
DROP INDEX receipts_by_shop;
CREATE INDEX receipts_by_shop ON receipts (shop_id, ledger_id, posted_at);
DROP INDEX receipts_by_refund_of;
CREATE UNIQUE INDEX receipts_by_refund_of ON receipts (refund_of, ledger_id) WHERE refund_of IS NOT NULL;
