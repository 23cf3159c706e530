-- Sign-in for the web pages (src/session.rs): users with passwords, sessions, one-time links,
-- paired till devices, clerk PINs and failed sign-in attempts. Every person signed in stands for
-- a row of api_tokens (role, scope, ledger): a user's own token (its secret random and never
-- shown), a shop clerk's staff token, a resident's identity token. A session names that token,
-- so revoking the token ends its sessions. No secret is stored: sessions, links and devices are
-- found by the SHA-256 of their random secret; passwords and PINs are Argon2id PHC strings.
-- These tables are state, not journal: they may be updated (a session touched or revoked, a link
-- used, a device unpaired) and failures are deleted once they no longer count.

-- api_tokens gains the role `cashier` (a shop clerk who may scan and nothing else). SQLite cannot
-- change a CHECK, so the table is rebuilt with its rows (no table references it yet).
CREATE TABLE api_tokens_new (
    id          TEXT    NOT NULL PRIMARY KEY,
    ledger_id   TEXT    NOT NULL REFERENCES ledgers (id),
    token_hash  BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'staff', 'shop', 'resident', 'auditor', 'cashier')),
    scope       TEXT,
    label       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
) STRICT;
INSERT INTO api_tokens_new (id, ledger_id, token_hash, role, scope, label, created_at, expires_at, revoked_at)
    SELECT id, ledger_id, token_hash, role, scope, label, created_at, expires_at, revoked_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;

-- People who sign in with a name and password: administrators, community staff, auditors.
-- The password is set through a one-time link; until then password_hash is NULL.
CREATE TABLE users (
    ledger_id     TEXT    NOT NULL REFERENCES ledgers (id),
    id            TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'staff', 'auditor')),
    scope         TEXT,
    name          TEXT    NOT NULL,
    token_id      TEXT    NOT NULL UNIQUE REFERENCES api_tokens (id),
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER,
    PRIMARY KEY (ledger_id, id),
    UNIQUE (name, ledger_id)
) STRICT;

-- A signed-in browser, by the SHA-256 of its cookie value (the value itself is never stored).
CREATE TABLE sessions (
    session_hash    BLOB    NOT NULL PRIMARY KEY CHECK (length(session_hash) = 32),
    id              TEXT    NOT NULL UNIQUE,
    ledger_id       TEXT    NOT NULL REFERENCES ledgers (id),
    token_id        TEXT    NOT NULL REFERENCES api_tokens (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('user', 'clerk', 'resident')),
    remember        INTEGER NOT NULL CHECK (remember IN (0, 1)),
    device_id       TEXT,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER
) STRICT;
CREATE INDEX sessions_by_token ON sessions (token_id);
CREATE INDEX sessions_by_device ON sessions (device_id) WHERE device_id IS NOT NULL;

-- One-time links, by the SHA-256 of their secret: setting a user's password (subject: the user
-- id), a resident's sign-in (the resident id, printed as a QR code), pairing a till device (the
-- shop id; label: the device's). Usable once, before expires_at; issuing a new one for the same
-- purpose and subject marks the unused ones used.
CREATE TABLE one_time_links (
    link_hash  BLOB    NOT NULL PRIMARY KEY CHECK (length(link_hash) = 32),
    ledger_id  TEXT    NOT NULL REFERENCES ledgers (id),
    purpose    TEXT    NOT NULL CHECK (purpose IN ('set_password', 'resident_sign_in', 'pair_device')),
    subject    TEXT    NOT NULL,
    label      TEXT,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX one_time_links_by_subject ON one_time_links (subject, purpose, ledger_id);

-- Till devices paired with a shop, by the SHA-256 of the secret kept in the device's cookie.
CREATE TABLE till_devices (
    ledger_id   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    shop_id     TEXT    NOT NULL,
    secret_hash BLOB    NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    label       TEXT    NOT NULL,
    paired_by   TEXT    NOT NULL,
    paired_at   INTEGER NOT NULL,
    unpaired_at INTEGER,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, shop_id) REFERENCES shops (ledger_id, id)
) STRICT;
CREATE INDEX till_devices_by_shop ON till_devices (shop_id, ledger_id);

-- A shop clerk's PIN for signing in at a paired till (Argon2id PHC string), per staff token.
CREATE TABLE clerk_pins (
    ledger_id TEXT    NOT NULL,
    token_id  TEXT    NOT NULL,
    pin_hash  TEXT    NOT NULL,
    set_by    TEXT    NOT NULL,
    set_at    INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, token_id),
    FOREIGN KEY (ledger_id, token_id) REFERENCES shop_staff (ledger_id, token_id)
) STRICT;

-- Sign-in attempts that count against a limit, one row per attempt and key: per account (a
-- user name, a phone number, a clerk at a shop) and per client. The key is stored as its
-- SHA-256, never as the name, phone or address. Rows older than the window are deleted.
CREATE TABLE sign_in_failures (
    ledger_id TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    scope     TEXT    NOT NULL CHECK (scope IN ('account', 'client')),
    key_hash  BLOB    NOT NULL CHECK (length(key_hash) = 32),
    at        INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, id, scope)
) STRICT;
CREATE INDEX sign_in_failures_by_key ON sign_in_failures (key_hash, at);
CREATE INDEX sign_in_failures_by_time ON sign_in_failures (at);
