-- The idempotency key of the request that issued (or last re-issued) a credential: the same
-- key again answers the credential as it is, instead of re-issuing it (which would give a new
-- PIN and kill the printed card).
ALTER TABLE credentials ADD COLUMN issue_key TEXT;
