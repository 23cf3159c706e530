-- The ledger core: ledgers, accounts, balances, the append-only journal, API tokens.
-- Every ledger table carries ledger_id: one database hosts several independent ledgers, each
-- with its own chain, sequence and lock (the ledgers row, locked FOR UPDATE by each batch).

CREATE TABLE ledgers (
    id             TEXT   NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    created_at     BIGINT NOT NULL,
    genesis_hash   BYTEA  NOT NULL CHECK (length(genesis_hash) = 32),
    head_seq       BIGINT NOT NULL CHECK (head_seq >= 0),
    head_hash      BYTEA  NOT NULL CHECK (length(head_hash) = 32),
    head_posted_at BIGINT NOT NULL
-- Every batch updates its ledger's row (the head) and every entry's foreign-key check reads
-- it. A low fill factor makes PostgreSQL prune the row's dead versions early, so those checks
-- do not walk a long chain of them.
) WITH (fillfactor = 10);

CREATE TABLE accounts (
    ledger_id    TEXT   NOT NULL REFERENCES ledgers (id),
    id           UUID   NOT NULL,
    kind         TEXT   NOT NULL CHECK (kind IN ('resident', 'shop', 'issuance', 'settlement', 'expiry', 'adjustment')),
    owner_id     TEXT,
    community_id TEXT,
    label        TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (ledger_id, id)
);

CREATE TABLE balances (
    ledger_id     TEXT   NOT NULL,
    account_id    UUID   NOT NULL,
    unit          TEXT   NOT NULL CHECK (unit IN ('points', 'hours')),
    balance_minor BIGINT NOT NULL,
    PRIMARY KEY (ledger_id, account_id, unit),
    FOREIGN KEY (ledger_id, account_id) REFERENCES accounts (ledger_id, id)
);

CREATE TABLE entries (
    ledger_id       TEXT   NOT NULL REFERENCES ledgers (id),
    seq             BIGINT NOT NULL CHECK (seq >= 1),
    id              UUID   NOT NULL,
    kind            TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    request_hash    BYTEA  NOT NULL,
    actor           TEXT   NOT NULL,
    memo            TEXT   NOT NULL,
    metadata        TEXT   NOT NULL,
    reverses        UUID,
    posted_at       BIGINT NOT NULL,
    prev_hash       BYTEA  NOT NULL,
    hash            BYTEA  NOT NULL,
    PRIMARY KEY (ledger_id, seq)
);
-- The secondary unique indexes lead with their own column, not ledger_id: the foreign-key
-- checks of postings, lots and lot moves look entries up by (ledger_id, seq) through a cached
-- generic plan, and an index leading with ledger_id alone could be picked for it on a fresh
-- table, turning each check into a scan of the whole ledger.
CREATE UNIQUE INDEX entries_by_id ON entries (id, ledger_id);
CREATE UNIQUE INDEX entries_by_idempotency_key ON entries (idempotency_key, ledger_id);
-- An entry is reversed at most once.
CREATE UNIQUE INDEX entries_by_reverses ON entries (reverses, ledger_id) WHERE reverses IS NOT NULL;

CREATE TABLE postings (
    ledger_id    TEXT   NOT NULL,
    entry_seq    BIGINT NOT NULL,
    idx          INT    NOT NULL CHECK (idx >= 0),
    account_id   UUID   NOT NULL,
    unit         TEXT   NOT NULL CHECK (unit IN ('points', 'hours')),
    side         TEXT   NOT NULL CHECK (side IN ('debit', 'credit')),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    PRIMARY KEY (ledger_id, entry_seq, idx),
    FOREIGN KEY (ledger_id, entry_seq) REFERENCES entries (ledger_id, seq)
);
CREATE INDEX postings_by_account ON postings (ledger_id, account_id, entry_seq);

-- The journal is append-only: the database itself refuses any change or removal.
CREATE FUNCTION aixin_refuse_journal_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'aixin: % on % refused: the journal is append-only; post a reversal instead',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER entries_refuse_change BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION aixin_refuse_journal_change();
CREATE TRIGGER entries_refuse_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION aixin_refuse_journal_change();
CREATE TRIGGER postings_refuse_change BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION aixin_refuse_journal_change();
CREATE TRIGGER postings_refuse_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION aixin_refuse_journal_change();

CREATE TABLE api_tokens (
    id          UUID   NOT NULL PRIMARY KEY,
    ledger_id   TEXT   NOT NULL REFERENCES ledgers (id),
    token_hash  BYTEA  NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    role        TEXT   NOT NULL CHECK (role IN ('admin', 'staff', 'shop', 'resident', 'auditor')),
    scope       TEXT,
    label       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
