-- The lots an entry created, read when that entry is reversed (a refund, a correction): without
-- this index the lookup scanned every lot of the ledger. (PostgreSQL's 0005 also reshapes three
-- indexes for its plan cache; SQLite plans every statement with the index matching the most
-- equality terms, so its indexes stay as they are.)
CREATE INDEX lots_by_entry ON lots (ledger_id, entry_seq);
