-- The resolver's MTA-STS policy cache (RFC 8461 §5.1; see src/resolver_policy.rs).
-- Times are integer epoch seconds (BIGINT), as in the SQLite schema.
CREATE TABLE resolver_policy (
    -- COLLATE "C": byte order, as SQLite's BINARY, so that both backends list domains alike.
    domain         TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    sts_id         TEXT   NOT NULL,
    policy         TEXT   NOT NULL,
    fetched_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    txt_checked_at BIGINT NOT NULL
);

-- Purging and loading select by expiry.
CREATE INDEX resolver_policy_expires_at ON resolver_policy (expires_at);
