-- Redemption: love shops and their partner communities, shop staff, the catalogue and its stock
-- history, residents' redemption credentials, failed-attempt counts, and receipts.
-- (Column comments: see migrations/sqlite/0003_redemption.sql, which has the same tables.)

CREATE TABLE shops (
    ledger_id          TEXT    NOT NULL REFERENCES ledgers (id),
    id                 UUID    NOT NULL,
    name_zh            TEXT    NOT NULL,
    name_en            TEXT    NOT NULL,
    community_id       TEXT    NOT NULL,
    account_id         UUID    NOT NULL,
    refund_window_days INT     NOT NULL CHECK (refund_window_days BETWEEN 0 AND 90),
    created_by         TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, account_id) REFERENCES accounts (ledger_id, id)
);

CREATE TABLE shop_communities (
    ledger_id    TEXT NOT NULL,
    shop_id      UUID NOT NULL,
    community_id TEXT NOT NULL,
    PRIMARY KEY (ledger_id, shop_id, community_id),
    FOREIGN KEY (ledger_id, shop_id) REFERENCES shops (ledger_id, id)
);

CREATE TABLE shop_staff (
    ledger_id  TEXT    NOT NULL,
    token_id   UUID    NOT NULL,
    shop_id    UUID    NOT NULL,
    name       TEXT    NOT NULL,
    is_owner   BOOLEAN NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (ledger_id, token_id),
    FOREIGN KEY (ledger_id, shop_id) REFERENCES shops (ledger_id, id)
);

CREATE TABLE items (
    ledger_id   TEXT    NOT NULL,
    id          UUID    NOT NULL,
    shop_id     UUID    NOT NULL,
    sku         TEXT    NOT NULL,
    name_zh     TEXT    NOT NULL,
    name_en     TEXT    NOT NULL,
    unit        TEXT    NOT NULL,
    price_minor BIGINT  NOT NULL CHECK (price_minor > 0),
    track_stock BOOLEAN NOT NULL,
    cap_day     BIGINT  CHECK (cap_day > 0),
    cap_month   BIGINT  CHECK (cap_month > 0),
    active      BOOLEAN NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, shop_id) REFERENCES shops (ledger_id, id)
);
CREATE UNIQUE INDEX items_by_sku ON items (ledger_id, shop_id, sku);

CREATE TABLE stock_moves (
    ledger_id TEXT    NOT NULL,
    id        UUID    NOT NULL,
    item_id   UUID    NOT NULL,
    delta     BIGINT  NOT NULL CHECK (delta <> 0),
    reason    TEXT    NOT NULL CHECK (reason IN ('restock', 'count', 'damaged', 'returned_to_supplier')),
    note      TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    level     BIGINT  NOT NULL CHECK (level >= 0),
    at        BIGINT  NOT NULL,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, item_id) REFERENCES items (ledger_id, id)
);
CREATE INDEX stock_moves_by_item ON stock_moves (ledger_id, item_id, at);
CREATE TRIGGER stock_moves_refuse_change BEFORE UPDATE OR DELETE ON stock_moves
    FOR EACH ROW EXECUTE FUNCTION aixin_refuse_journal_change();
CREATE TRIGGER stock_moves_refuse_truncate BEFORE TRUNCATE ON stock_moves
    FOR EACH STATEMENT EXECUTE FUNCTION aixin_refuse_journal_change();

CREATE TABLE credentials (
    ledger_id   TEXT    NOT NULL,
    id          UUID    NOT NULL,
    resident_id UUID    NOT NULL,
    number      BIGINT  NOT NULL CHECK (number BETWEEN 1 AND 999999999),
    generation  BIGINT  NOT NULL CHECK (generation >= 1),
    active      BOOLEAN NOT NULL,
    last_step   BIGINT  NOT NULL,
    failures    BIGINT  NOT NULL CHECK (failures >= 0),
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (ledger_id, id)
);
CREATE UNIQUE INDEX credentials_by_number ON credentials (ledger_id, number);
CREATE UNIQUE INDEX credentials_by_resident ON credentials (ledger_id, resident_id);

CREATE TABLE code_failures (
    ledger_id TEXT   NOT NULL,
    shop_id   UUID   NOT NULL,
    hour      BIGINT NOT NULL,
    failures  BIGINT NOT NULL CHECK (failures > 0),
    PRIMARY KEY (ledger_id, shop_id, hour)
);

CREATE TABLE receipts (
    ledger_id           TEXT    NOT NULL,
    id                  UUID    NOT NULL,
    entry_seq           BIGINT  NOT NULL,
    entry_id            UUID    NOT NULL,
    kind                TEXT    NOT NULL CHECK (kind IN ('redemption', 'refund')),
    shop_id             UUID    NOT NULL,
    shop_name           TEXT    NOT NULL,
    resident_id         UUID    NOT NULL,
    resident_pseudonym  TEXT    NOT NULL,
    community_id        TEXT    NOT NULL,
    refund_of           UUID,
    total_minor         BIGINT  NOT NULL CHECK (total_minor > 0),
    balance_after_minor BIGINT  NOT NULL,
    posted_at           BIGINT  NOT NULL,
    lines               TEXT    NOT NULL,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, entry_seq) REFERENCES entries (ledger_id, seq)
);
CREATE UNIQUE INDEX receipts_by_entry ON receipts (ledger_id, entry_id);
CREATE INDEX receipts_by_shop ON receipts (ledger_id, shop_id, posted_at);
CREATE UNIQUE INDEX receipts_by_refund_of ON receipts (ledger_id, refund_of) WHERE refund_of IS NOT NULL;
CREATE TRIGGER receipts_refuse_change BEFORE UPDATE OR DELETE ON receipts
    FOR EACH ROW EXECUTE FUNCTION aixin_refuse_journal_change();
CREATE TRIGGER receipts_refuse_truncate BEFORE TRUNCATE ON receipts
    FOR EACH STATEMENT EXECUTE FUNCTION aixin_refuse_journal_change();
