-- Signed checkpoints (issue 5): the ledger's head and per-kind totals after entry `seq`, signed
-- with the key file's active key. Append-only, like the journal; at most one per entry.

CREATE TABLE checkpoints (
    ledger_id  TEXT    NOT NULL REFERENCES ledgers (id),
    seq        BIGINT  NOT NULL CHECK (seq >= 0),
    head_hash  BYTEA   NOT NULL CHECK (length(head_hash) = 32),
    -- The totals as the checkpoint line writes them (JSON array of {unit, kind, balance}).
    totals     TEXT    NOT NULL,
    key_id     TEXT    NOT NULL,
    tag        BYTEA   NOT NULL CHECK (length(tag) = 32),
    -- When it was made (not signed, not exported: exports stay byte-identical).
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (ledger_id, seq)
);

CREATE FUNCTION aixin_refuse_checkpoint_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'aixin: checkpoints are append-only';
END;
$$;
CREATE TRIGGER checkpoints_refuse_change BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION aixin_refuse_checkpoint_change();
CREATE TRIGGER checkpoints_refuse_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION aixin_refuse_checkpoint_change();

-- Finding the last entry before a time (exports by date).
CREATE INDEX entries_by_time ON entries (ledger_id, posted_at, seq);
