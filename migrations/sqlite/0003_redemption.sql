-- Redemption: love shops and their partner communities, shop staff, the catalogue and its stock
-- history, residents' redemption credentials, failed-attempt counts, and receipts.

CREATE TABLE shops (
    ledger_id          TEXT    NOT NULL REFERENCES ledgers (id),
    id                 TEXT    NOT NULL,
    name_zh            TEXT    NOT NULL,
    name_en            TEXT    NOT NULL,
    -- The community the shop belongs to (its staff token scope for community staff).
    community_id       TEXT    NOT NULL,
    account_id         TEXT    NOT NULL,
    refund_window_days INTEGER NOT NULL CHECK (refund_window_days BETWEEN 0 AND 90),
    created_by         TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, account_id) REFERENCES accounts (ledger_id, id)
) STRICT;

-- The communities whose residents a shop serves.
CREATE TABLE shop_communities (
    ledger_id    TEXT NOT NULL,
    shop_id      TEXT NOT NULL,
    community_id TEXT NOT NULL,
    PRIMARY KEY (ledger_id, shop_id, community_id),
    FOREIGN KEY (ledger_id, shop_id) REFERENCES shops (ledger_id, id)
) STRICT, WITHOUT ROWID;

-- Shop staff: each holds a `shop` token scoped to the shop; the owner may refund anything.
CREATE TABLE shop_staff (
    ledger_id  TEXT    NOT NULL,
    token_id   TEXT    NOT NULL,
    shop_id    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    is_owner   INTEGER NOT NULL CHECK (is_owner IN (0, 1)),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, token_id),
    FOREIGN KEY (ledger_id, shop_id) REFERENCES shops (ledger_id, id)
) STRICT;

-- The catalogue. Items are edited in place (price, caps, active); what a resident paid is on the
-- receipt and the entry, never read back from here. Stock levels are limit counters
-- (`stock:<item>`, holding minus the units in stock) moved under the ledger lock.
CREATE TABLE items (
    ledger_id   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    shop_id     TEXT    NOT NULL,
    sku         TEXT    NOT NULL,
    name_zh     TEXT    NOT NULL,
    name_en     TEXT    NOT NULL,
    unit        TEXT    NOT NULL,
    price_minor INTEGER NOT NULL CHECK (price_minor > 0),
    track_stock INTEGER NOT NULL CHECK (track_stock IN (0, 1)),
    cap_day     INTEGER CHECK (cap_day > 0),
    cap_month   INTEGER CHECK (cap_month > 0),
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, shop_id) REFERENCES shops (ledger_id, id)
) STRICT;
CREATE UNIQUE INDEX items_by_sku ON items (ledger_id, shop_id, sku);

-- Every stock change other than a sale or a refund (those are on the receipts), with its reason.
CREATE TABLE stock_moves (
    ledger_id TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    item_id   TEXT    NOT NULL,
    delta     INTEGER NOT NULL CHECK (delta <> 0),
    reason    TEXT    NOT NULL CHECK (reason IN ('restock', 'count', 'damaged', 'returned_to_supplier')),
    note      TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    level     INTEGER NOT NULL CHECK (level >= 0),
    at        INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, item_id) REFERENCES items (ledger_id, id)
) STRICT;
CREATE INDEX stock_moves_by_item ON stock_moves (ledger_id, item_id, at);
CREATE TRIGGER stock_moves_refuse_update BEFORE UPDATE ON stock_moves
BEGIN SELECT RAISE(ABORT, 'aixin: stock moves are append-only'); END;
CREATE TRIGGER stock_moves_refuse_delete BEFORE DELETE ON stock_moves
BEGIN SELECT RAISE(ABORT, 'aixin: stock moves are append-only'); END;

-- One redemption credential per resident. The secret is not stored: it is derived from the key
-- file's master key, the credential id and the generation (bumped on re-issue).
CREATE TABLE credentials (
    ledger_id   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    resident_id TEXT    NOT NULL,
    number      INTEGER NOT NULL CHECK (number BETWEEN 1 AND 999999999),
    generation  INTEGER NOT NULL CHECK (generation >= 1),
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    last_step   INTEGER NOT NULL,
    failures    INTEGER NOT NULL CHECK (failures >= 0),
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, id)
) STRICT;
CREATE UNIQUE INDEX credentials_by_number ON credentials (ledger_id, number);
CREATE UNIQUE INDEX credentials_by_resident ON credentials (ledger_id, resident_id);

-- Failed code attempts per shop and hour.
CREATE TABLE code_failures (
    ledger_id TEXT    NOT NULL,
    shop_id   TEXT    NOT NULL,
    hour      INTEGER NOT NULL,
    failures  INTEGER NOT NULL CHECK (failures > 0),
    PRIMARY KEY (ledger_id, shop_id, hour)
) STRICT, WITHOUT ROWID;

-- Receipts, created in the transaction of their entry. Append-only like the journal.
CREATE TABLE receipts (
    ledger_id           TEXT    NOT NULL,
    id                  TEXT    NOT NULL,
    entry_seq           INTEGER NOT NULL,
    entry_id            TEXT    NOT NULL,
    kind                TEXT    NOT NULL CHECK (kind IN ('redemption', 'refund')),
    shop_id             TEXT    NOT NULL,
    shop_name           TEXT    NOT NULL,
    resident_id         TEXT    NOT NULL,
    resident_pseudonym  TEXT    NOT NULL,
    community_id        TEXT    NOT NULL,
    refund_of           TEXT,
    total_minor         INTEGER NOT NULL CHECK (total_minor > 0),
    balance_after_minor INTEGER NOT NULL,
    posted_at           INTEGER NOT NULL,
    lines               TEXT    NOT NULL,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, entry_seq) REFERENCES entries (ledger_id, seq)
) STRICT;
CREATE UNIQUE INDEX receipts_by_entry ON receipts (ledger_id, entry_id);
CREATE INDEX receipts_by_shop ON receipts (ledger_id, shop_id, posted_at);
CREATE UNIQUE INDEX receipts_by_refund_of ON receipts (ledger_id, refund_of) WHERE refund_of IS NOT NULL;
CREATE TRIGGER receipts_refuse_update BEFORE UPDATE ON receipts
BEGIN SELECT RAISE(ABORT, 'aixin: receipts are append-only'); END;
CREATE TRIGGER receipts_refuse_delete BEFORE DELETE ON receipts
BEGIN SELECT RAISE(ABORT, 'aixin: receipts are append-only'); END;
