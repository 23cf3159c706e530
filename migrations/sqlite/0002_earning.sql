-- Earning: lots for expiry, limit counters, organisation, residents, earning rules, service
-- records, rosters and correction requests.

-- Points held by resident accounts, one lot per credit; remaining is derived state kept in the
-- same transaction as the postings (like balances), and recomputable from lot_moves.
CREATE TABLE lots (
    ledger_id       TEXT    NOT NULL,
    id              INTEGER NOT NULL,
    account_id      TEXT    NOT NULL,
    entry_seq       INTEGER NOT NULL,
    amount_minor    INTEGER NOT NULL CHECK (amount_minor > 0),
    remaining_minor INTEGER NOT NULL CHECK (remaining_minor >= 0 AND remaining_minor <= amount_minor),
    expires_on      TEXT,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, entry_seq) REFERENCES entries (ledger_id, seq)
) STRICT;
CREATE INDEX lots_open_by_account ON lots (ledger_id, account_id) WHERE remaining_minor > 0;

-- Which entry took points from (amount > 0) or returned them to (amount < 0) which lot.
CREATE TABLE lot_moves (
    ledger_id    TEXT    NOT NULL,
    entry_seq    INTEGER NOT NULL,
    lot_id       INTEGER NOT NULL,
    idx          INTEGER NOT NULL,
    account_id   TEXT    NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor <> 0),
    PRIMARY KEY (ledger_id, entry_seq, idx),
    FOREIGN KEY (ledger_id, entry_seq) REFERENCES entries (ledger_id, seq)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER lot_moves_refuse_update BEFORE UPDATE ON lot_moves
BEGIN SELECT RAISE(ABORT, 'aixin: lot moves are append-only'); END;
CREATE TRIGGER lot_moves_refuse_delete BEFORE DELETE ON lot_moves
BEGIN SELECT RAISE(ABORT, 'aixin: lot moves are append-only'); END;

-- Bounded counters (earning caps per resident per day and month).
CREATE TABLE counters (
    ledger_id   TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value_minor INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, key)
) STRICT, WITHOUT ROWID;

-- The organisation is data: any depth (county → street → community → grid), each unit naming
-- its parent. Communities carry the accounts and the expiry policy of their points programme.
CREATE TABLE org_units (
    ledger_id          TEXT    NOT NULL REFERENCES ledgers (id),
    id                 TEXT    NOT NULL,
    parent_id          TEXT,
    level              TEXT    NOT NULL,
    name_zh            TEXT    NOT NULL,
    name_en            TEXT    NOT NULL,
    is_community       INTEGER NOT NULL CHECK (is_community IN (0, 1)),
    expiry_policy      TEXT    CHECK (expiry_policy IN ('never', 'rolling', 'end_of_next_year')),
    expiry_months      INTEGER,
    issuance_account   TEXT,
    settlement_account TEXT,
    expiry_account     TEXT,
    created_at         INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, parent_id) REFERENCES org_units (ledger_id, id)
) STRICT;

CREATE TABLE residents (
    ledger_id    TEXT    NOT NULL REFERENCES ledgers (id),
    id           TEXT    NOT NULL,
    pseudonym    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    phone        TEXT    NOT NULL,
    community_id TEXT    NOT NULL,
    account_id   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, id),
    UNIQUE (ledger_id, pseudonym),
    FOREIGN KEY (ledger_id, community_id) REFERENCES org_units (ledger_id, id)
) STRICT;

-- Rules are versioned and never edited: a change is a new version.
CREATE TABLE earning_rules (
    ledger_id       TEXT    NOT NULL,
    rule_id         TEXT    NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 1),
    community_id    TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    name_zh         TEXT    NOT NULL,
    name_en         TEXT    NOT NULL,
    mode            TEXT    NOT NULL CHECK (mode IN ('per_hour', 'per_activity')),
    points_minor    INTEGER NOT NULL CHECK (points_minor > 0),
    records_hours   INTEGER NOT NULL CHECK (records_hours IN (0, 1)),
    cap_day_minor   INTEGER,
    cap_month_minor INTEGER,
    valid_from      TEXT    NOT NULL,
    valid_until     TEXT,
    created_by      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, rule_id, version),
    FOREIGN KEY (ledger_id, community_id) REFERENCES org_units (ledger_id, id)
) STRICT;
CREATE TRIGGER earning_rules_refuse_update BEFORE UPDATE ON earning_rules
BEGIN SELECT RAISE(ABORT, 'aixin: rule versions are never edited; add a new version'); END;
CREATE TRIGGER earning_rules_refuse_delete BEFORE DELETE ON earning_rules
BEGIN SELECT RAISE(ABORT, 'aixin: rule versions are never edited; add a new version'); END;

CREATE TABLE rosters (
    ledger_id    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    community_id TEXT    NOT NULL,
    rule_id      TEXT    NOT NULL,
    service_date TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('submitted', 'approved')),
    submitted_by TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (ledger_id, id)
) STRICT;

-- A record of volunteer service; its state moves with the entry that credits it.
CREATE TABLE service_records (
    ledger_id     TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    resident_id   TEXT    NOT NULL,
    rule_id       TEXT    NOT NULL,
    service_date  TEXT    NOT NULL,
    hours_minor   INTEGER NOT NULL CHECK (hours_minor > 0),
    note          TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('submitted', 'approved', 'rejected', 'reversed')),
    submitted_by  TEXT    NOT NULL,
    submitted_at  INTEGER NOT NULL,
    decided_by    TEXT,
    decided_at    INTEGER,
    reason        TEXT,
    entry_id      TEXT,
    roster_id     TEXT,
    roster_line   INTEGER,
    correction_of TEXT,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, resident_id) REFERENCES residents (ledger_id, id)
) STRICT;
-- The same resident, activity and date cannot be credited twice by accident. A record that
-- replaces a corrected one (correction_of) is exempt: the one it replaces is being reversed.
CREATE UNIQUE INDEX service_records_once ON service_records (ledger_id, resident_id, rule_id, service_date)
    WHERE status IN ('submitted', 'approved') AND correction_of IS NULL;
CREATE INDEX service_records_by_resident ON service_records (ledger_id, resident_id);

CREATE TABLE corrections (
    ledger_id         TEXT    NOT NULL,
    id                TEXT    NOT NULL,
    record_id         TEXT    NOT NULL,
    requested_by      TEXT    NOT NULL,
    reason            TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('open', 'resolved', 'declined')),
    requested_at      INTEGER NOT NULL,
    resolved_by       TEXT,
    resolved_at       INTEGER,
    resolution        TEXT,
    reversal_entry_id TEXT,
    new_record_id     TEXT,
    PRIMARY KEY (ledger_id, id),
    FOREIGN KEY (ledger_id, record_id) REFERENCES service_records (ledger_id, id)
) STRICT;
