-- Failed presentations of a credential at shops that do not serve its resident's community,
-- counted apart from `failures` (those at shops that do): they never lock the credential, and
-- past their own bound only those shops are refused (ledger-specs/redemption-code.md §4).
-- Reset, with `failures`, when the credential is re-issued.
ALTER TABLE credentials ADD COLUMN foreign_failures INTEGER NOT NULL DEFAULT 0
    CHECK (foreign_failures >= 0);
