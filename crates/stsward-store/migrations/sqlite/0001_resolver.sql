-- The resolver's MTA-STS policy cache (RFC 8461 §5.1; see src/resolver_policy.rs).
-- Times are integer epoch seconds. STRICT: SQLite refuses a value of the wrong type
-- instead of storing it under a loose affinity.
CREATE TABLE resolver_policy (
    domain         TEXT    NOT NULL PRIMARY KEY,
    sts_id         TEXT    NOT NULL,
    policy         TEXT    NOT NULL,
    fetched_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    txt_checked_at INTEGER NOT NULL
) STRICT;

-- Purging and loading select by expiry.
CREATE INDEX resolver_policy_expires_at ON resolver_policy (expires_at);
