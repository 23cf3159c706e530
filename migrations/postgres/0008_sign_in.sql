-- Sign-in for the web pages (src/session.rs): users with passwords, sessions, one-time links,
-- paired till devices, clerk PINs and failed sign-in attempts.
-- (Comments: see migrations/sqlite/0008_sign_in.sql, which has the same tables.)

ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('admin', 'staff', 'shop', 'resident', 'auditor', 'cashier'));

CREATE TABLE users (
    ledger_id     TEXT    NOT NULL REFERENCES ledgers (id),
    id            UUID    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'staff', 'auditor')),
    scope         TEXT,
    name          TEXT    NOT NULL,
    token_id      UUID    NOT NULL UNIQUE REFERENCES api_tokens (id),
    password_hash TEXT,
    created_at    BIGINT  NOT NULL,
    disabled_at   BIGINT,
    PRIMARY KEY (ledger_id, id),
    UNIQUE (name, ledger_id)
);

CREATE TABLE sessions (
    session_hash    BYTEA   NOT NULL PRIMARY KEY CHECK (length(session_hash) = 32),
    id              UUID    NOT NULL UNIQUE,
    ledger_id       TEXT    NOT NULL REFERENCES ledgers (id),
    token_id        UUID    NOT NULL REFERENCES api_tokens (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('user', 'clerk', 'resident')),
    remember        BOOLEAN NOT NULL,
    device_id       UUID,
    created_at      BIGINT  NOT NULL,
    last_seen_at    BIGINT  NOT NULL,
    idle_expires_at BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX sessions_by_token ON sessions (token_id);
CREATE INDEX sessions_by_device ON sessions (device_id) WHERE device_id IS NOT NULL;

CREATE TABLE one_time_links (
    link_hash  BYTEA   NOT NULL PRIMARY KEY CHECK (length(link_hash) = 32),
    ledger_id  TEXT    NOT NULL REFERENCES ledgers (id),
    purpose    TEXT    NOT NULL CHECK (purpose IN ('set_password', 'resident_sign_in', 'pair_device')),
    subject    TEXT    NOT NULL,
    label      TEXT,
    created_by TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT
);
CREATE INDEX one_time_links_by_subject ON one_time_links (subject, purpose, ledger_id);

CREATE TABLE till_devices (
    ledger_id   TEXT    NOT NULL,
    id          UUID    NOT NULL,
    shop_id     UUID    NOT NULL,
    secret_hash BYTEA   NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    label       TEXT    NOT NULL,
    paired_by   TEXT    NOT NULL,
    paired_at   BIGINT  NOT NULL,
    unpaired_at BIGINT,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, shop_id) REFERENCES shops (ledger_id, id)
);
CREATE INDEX till_devices_by_shop ON till_devices (shop_id, ledger_id);

CREATE TABLE clerk_pins (
    ledger_id TEXT    NOT NULL,
    token_id  UUID    NOT NULL,
    pin_hash  TEXT    NOT NULL,
    set_by    TEXT    NOT NULL,
    set_at    BIGINT  NOT NULL,
    PRIMARY KEY (ledger_id, token_id),
    FOREIGN KEY (ledger_id, token_id) REFERENCES shop_staff (ledger_id, token_id)
);

CREATE TABLE sign_in_failures (
    ledger_id TEXT    NOT NULL,
    id        UUID    NOT NULL,
    scope     TEXT    NOT NULL CHECK (scope IN ('account', 'client')),
    key_hash  BYTEA   NOT NULL CHECK (length(key_hash) = 32),
    at        BIGINT  NOT NULL,
    PRIMARY KEY (ledger_id, id, scope)
);
CREATE INDEX sign_in_failures_by_key ON sign_in_failures (key_hash, at);
CREATE INDEX sign_in_failures_by_time ON sign_in_failures (at);
