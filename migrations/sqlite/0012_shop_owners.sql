-- Shop owners' pages (src/redeem/owner.rs): a member of shop staff can be removed (the row stays,
-- with when; their token is revoked, their sessions end and their till PIN is deleted in the same
-- transaction), and a shop's owner can be a user who signs in with a name and password on any
-- computer (role `shop`, scoped to the shop).
ALTER TABLE shop_staff ADD COLUMN removed_at INTEGER;

-- users gains the role `shop`. SQLite cannot change a CHECK, so the table is rebuilt with its
-- rows (no table references it).
CREATE TABLE users_new (
    ledger_id     TEXT    NOT NULL REFERENCES ledgers (id),
    id            TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'staff', 'auditor', 'shop')),
    scope         TEXT,
    name          TEXT    NOT NULL,
    token_id      TEXT    NOT NULL UNIQUE REFERENCES api_tokens (id),
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER,
    PRIMARY KEY (ledger_id, id),
    UNIQUE (name, ledger_id)
) STRICT;
INSERT INTO users_new (ledger_id, id, role, scope, name, token_id, password_hash, created_at, disabled_at)
    SELECT ledger_id, id, role, scope, name, token_id, password_hash, created_at, disabled_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
