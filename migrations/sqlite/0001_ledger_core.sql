-- The ledger core: ledgers, accounts, balances, the append-only journal, API tokens.
-- Every ledger table carries ledger_id: one database hosts several independent ledgers, each
-- with its own chain, sequence and lock.

CREATE TABLE ledgers (
    id             TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    created_at     INTEGER NOT NULL,
    genesis_hash   BLOB    NOT NULL CHECK (length(genesis_hash) = 32),
    -- The chain's head, moved in the same transaction as the entries it covers.
    head_seq       INTEGER NOT NULL CHECK (head_seq >= 0),
    head_hash      BLOB    NOT NULL CHECK (length(head_hash) = 32),
    head_posted_at INTEGER NOT NULL
) STRICT;

CREATE TABLE accounts (
    ledger_id    TEXT    NOT NULL REFERENCES ledgers (id),
    id           TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('resident', 'shop', 'issuance', 'settlement', 'expiry', 'adjustment')),
    owner_id     TEXT,
    community_id TEXT,
    label        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, id)
) STRICT;

-- Current balance per (account, unit), in hundredths; kept in the same transaction as postings.
CREATE TABLE balances (
    ledger_id     TEXT    NOT NULL,
    account_id    TEXT    NOT NULL,
    unit          TEXT    NOT NULL CHECK (unit IN ('points', 'hours')),
    balance_minor INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, account_id, unit),
    FOREIGN KEY (ledger_id, account_id) REFERENCES accounts (ledger_id, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE entries (
    ledger_id       TEXT    NOT NULL REFERENCES ledgers (id),
    seq             INTEGER NOT NULL CHECK (seq >= 1),
    id              TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    request_hash    BLOB    NOT NULL,
    actor           TEXT    NOT NULL,
    memo            TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    reverses        TEXT,
    posted_at       INTEGER NOT NULL,
    prev_hash       BLOB    NOT NULL,
    hash            BLOB    NOT NULL,
    PRIMARY KEY (ledger_id, seq)
) STRICT;
CREATE UNIQUE INDEX entries_by_id ON entries (ledger_id, id);
CREATE UNIQUE INDEX entries_by_idempotency_key ON entries (ledger_id, idempotency_key);
-- An entry is reversed at most once.
CREATE UNIQUE INDEX entries_by_reverses ON entries (ledger_id, reverses) WHERE reverses IS NOT NULL;

CREATE TABLE postings (
    ledger_id    TEXT    NOT NULL,
    entry_seq    INTEGER NOT NULL,
    idx          INTEGER NOT NULL CHECK (idx >= 0),
    account_id   TEXT    NOT NULL,
    unit         TEXT    NOT NULL CHECK (unit IN ('points', 'hours')),
    side         TEXT    NOT NULL CHECK (side IN ('debit', 'credit')),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    PRIMARY KEY (ledger_id, entry_seq, idx),
    FOREIGN KEY (ledger_id, entry_seq) REFERENCES entries (ledger_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX postings_by_account ON postings (ledger_id, account_id, entry_seq);

-- The journal is append-only: the database itself refuses any change or removal.
CREATE TRIGGER entries_refuse_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'aixin: entries are append-only; post a reversal instead'); END;
CREATE TRIGGER entries_refuse_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'aixin: entries are append-only; post a reversal instead'); END;
CREATE TRIGGER postings_refuse_update BEFORE UPDATE ON postings
BEGIN SELECT RAISE(ABORT, 'aixin: postings are append-only; post a reversal instead'); END;
CREATE TRIGGER postings_refuse_delete BEFORE DELETE ON postings
BEGIN SELECT RAISE(ABORT, 'aixin: postings are append-only; post a reversal instead'); END;

CREATE TABLE api_tokens (
    id          TEXT    NOT NULL PRIMARY KEY,
    ledger_id   TEXT    NOT NULL REFERENCES ledgers (id),
    token_hash  BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'staff', 'shop', 'resident', 'auditor')),
    scope       TEXT,
    label       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
) STRICT;
