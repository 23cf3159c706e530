-- Earning: lots for expiry, limit counters, organisation, residents, earning rules, service
-- records, rosters and correction requests.

-- Points held by resident accounts, one lot per credit; remaining is derived state kept in the
-- same transaction as the postings (like balances), and recomputable from lot_moves.
CREATE TABLE lots (
    ledger_id       TEXT    NOT NULL,
    id              BIGINT NOT NULL,
    account_id      UUID    NOT NULL,
    entry_seq       BIGINT NOT NULL,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    remaining_minor BIGINT NOT NULL CHECK (remaining_minor >= 0 AND remaining_minor <= amount_minor),
    expires_on      TEXT,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, entry_seq) REFERENCES entries (ledger_id, seq)
);
CREATE INDEX lots_open_by_account ON lots (ledger_id, account_id) WHERE remaining_minor > 0;

-- Which entry took points from (amount > 0) or returned them to (amount < 0) which lot.
CREATE TABLE lot_moves (
    ledger_id    TEXT    NOT NULL,
    entry_seq    BIGINT NOT NULL,
    lot_id       BIGINT NOT NULL,
    idx          INT    NOT NULL,
    account_id   UUID    NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor <> 0),
    PRIMARY KEY (ledger_id, entry_seq, idx),
    FOREIGN KEY (ledger_id, entry_seq) REFERENCES entries (ledger_id, seq)
);
CREATE TRIGGER lot_moves_refuse_change BEFORE UPDATE OR DELETE ON lot_moves
    FOR EACH ROW EXECUTE FUNCTION aixin_refuse_journal_change();
CREATE TRIGGER lot_moves_refuse_truncate BEFORE TRUNCATE ON lot_moves
    FOR EACH STATEMENT EXECUTE FUNCTION aixin_refuse_journal_change();

-- Bounded counters (earning caps per resident per day and month).
CREATE TABLE counters (
    ledger_id   TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value_minor BIGINT NOT NULL,
    PRIMARY KEY (ledger_id, key)
);

-- The organisation is data: any depth (county → street → community → grid), each unit naming
-- its parent. Communities carry the accounts and the expiry policy of their points programme.
CREATE TABLE org_units (
    ledger_id          TEXT    NOT NULL REFERENCES ledgers (id),
    id                 TEXT    NOT NULL,
    parent_id          TEXT,
    level              TEXT    NOT NULL,
    name_zh            TEXT    NOT NULL,
    name_en            TEXT    NOT NULL,
    is_community       BOOLEAN NOT NULL,
    expiry_policy      TEXT    CHECK (expiry_policy IN ('never', 'rolling', 'end_of_next_year')),
    expiry_months      INT,
    issuance_account   UUID,
    settlement_account UUID,
    expiry_account     UUID,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, parent_id) REFERENCES org_units (ledger_id, id)
);

CREATE TABLE residents (
    ledger_id    TEXT    NOT NULL REFERENCES ledgers (id),
    id           UUID    NOT NULL,
    pseudonym    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    phone        TEXT    NOT NULL,
    community_id TEXT    NOT NULL,
    account_id   UUID    NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (ledger_id, id),
    -- Leads with pseudonym: see entries_by_id in 0001 (foreign-key checks look residents up by
    -- (ledger_id, id); an index leading with ledger_id alone could be picked for them).
    UNIQUE (pseudonym, ledger_id),
    FOREIGN KEY (ledger_id, community_id) REFERENCES org_units (ledger_id, id)
);

-- Rules are versioned and never edited: a change is a new version.
CREATE TABLE earning_rules (
    ledger_id       TEXT    NOT NULL,
    rule_id         TEXT    NOT NULL,
    version         BIGINT NOT NULL CHECK (version >= 1),
    community_id    TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    name_zh         TEXT    NOT NULL,
    name_en         TEXT    NOT NULL,
    mode            TEXT    NOT NULL CHECK (mode IN ('per_hour', 'per_activity')),
    points_minor    BIGINT NOT NULL CHECK (points_minor > 0),
    records_hours   BOOLEAN NOT NULL,
    cap_day_minor   BIGINT,
    cap_month_minor BIGINT,
    valid_from      TEXT    NOT NULL,
    valid_until     TEXT,
    created_by      TEXT    NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (ledger_id, rule_id, version),
    FOREIGN KEY (ledger_id, community_id) REFERENCES org_units (ledger_id, id)
);
CREATE TRIGGER earning_rules_refuse_change BEFORE UPDATE OR DELETE ON earning_rules
    FOR EACH ROW EXECUTE FUNCTION aixin_refuse_journal_change();

CREATE TABLE rosters (
    ledger_id    TEXT    NOT NULL,
    id           UUID    NOT NULL,
    community_id TEXT    NOT NULL,
    rule_id      TEXT    NOT NULL,
    service_date TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('submitted', 'approved')),
    submitted_by TEXT    NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (ledger_id, id)
);

-- A record of volunteer service; its state moves with the entry that credits it.
CREATE TABLE service_records (
    ledger_id     TEXT    NOT NULL,
    id            UUID    NOT NULL,
    resident_id   UUID    NOT NULL,
    rule_id       TEXT    NOT NULL,
    service_date  TEXT    NOT NULL,
    hours_minor   BIGINT NOT NULL CHECK (hours_minor > 0),
    note          TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('submitted', 'approved', 'rejected', 'reversed')),
    submitted_by  TEXT    NOT NULL,
    submitted_at  BIGINT NOT NULL,
    decided_by    TEXT,
    decided_at    BIGINT,
    reason        TEXT,
    entry_id      UUID,
    roster_id     UUID,
    roster_line   INT,
    correction_of UUID,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, resident_id) REFERENCES residents (ledger_id, id)
);
-- The same resident, activity and date cannot be credited twice by accident. A record that
-- replaces a corrected one (correction_of) is exempt: the one it replaces is being reversed.
CREATE UNIQUE INDEX service_records_once ON service_records (ledger_id, resident_id, rule_id, service_date)
    WHERE status IN ('submitted', 'approved') AND correction_of IS NULL;
-- Leads with resident_id, for the same reason as residents' unique pseudonym.
CREATE INDEX service_records_by_resident ON service_records (resident_id, ledger_id);

CREATE TABLE corrections (
    ledger_id         TEXT    NOT NULL,
    id                UUID    NOT NULL,
    record_id         UUID    NOT NULL,
    requested_by      TEXT    NOT NULL,
    reason            TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('open', 'resolved', 'declined')),
    requested_at      BIGINT NOT NULL,
    resolved_by       TEXT,
    resolved_at       BIGINT,
    resolution        TEXT,
    reversal_entry_id UUID,
    new_record_id     UUID,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, record_id) REFERENCES service_records (ledger_id, id)
);
