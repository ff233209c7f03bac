-- Hosted MTA-STS (RFC 8461 §3.1 TXT id, §3.2 policy, §8.3 removal; see src/hosting.rs).
-- Times are integer epoch seconds. STRICT: SQLite refuses a value of the wrong type
-- instead of storing it under a loose affinity. Booleans are INTEGER 0/1.

-- Who owns domains. The default tenant is created by the first caller that needs it
-- (Store::tenant_default), so that its created_at comes from a clock, not from here.
CREATE TABLE tenants (
    id         INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;

-- One row per hosted domain. A domain name is global (DNS and HTTPS names are), so at most
-- one row per name is not 'gone', whichever the tenant; gone rows stay with their history.
CREATE TABLE hosted_domains (
    id              INTEGER NOT NULL PRIMARY KEY,
    tenant_id       INTEGER NOT NULL REFERENCES tenants (id),
    domain          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('active', 'removing', 'gone')),
    follow_mx       INTEGER NOT NULL CHECK (follow_mx IN (0, 1)),
    tlsrpt_rua      TEXT,
    remove_after    INTEGER,
    current_version INTEGER NOT NULL CHECK (current_version >= 1)
) STRICT;

CREATE UNIQUE INDEX hosted_domains_live_name ON hosted_domains (domain) WHERE state <> 'gone';
CREATE INDEX hosted_domains_tenant ON hosted_domains (tenant_id, domain);

-- Every policy a domain ever had, append-only: rows are inserted, never updated or deleted.
-- (domain_id, version) is the key two writers race on: the loser gets a unique violation.
CREATE TABLE policy_versions (
    domain_id  INTEGER NOT NULL REFERENCES hosted_domains (id),
    version    INTEGER NOT NULL CHECK (version >= 1),
    mode       TEXT    NOT NULL CHECK (mode IN ('testing', 'enforce', 'none')),
    mx         TEXT    NOT NULL,
    max_age    INTEGER NOT NULL CHECK (max_age >= 0),
    policy     TEXT    NOT NULL,
    sts_id     TEXT    NOT NULL,
    changed_by TEXT    NOT NULL,
    changed_at INTEGER NOT NULL,
    note       TEXT,
    PRIMARY KEY (domain_id, version)
) STRICT;

-- One certificate per host name (mta-sts.<domain>); the key is stored encrypted.
CREATE TABLE certificates (
    name           TEXT    NOT NULL PRIMARY KEY,
    chain_pem      TEXT,
    key_ciphertext BLOB,
    key_nonce      BLOB,
    not_before     INTEGER,
    not_after      INTEGER,
    state          TEXT    NOT NULL CHECK (state IN ('pending', 'valid', 'failed')),
    last_error     TEXT,
    updated_at     INTEGER NOT NULL
) STRICT;

CREATE INDEX certificates_not_after ON certificates (not_after);

-- One ACME account per directory; the credentials JSON is stored encrypted.
CREATE TABLE acme_accounts (
    directory_url          TEXT    NOT NULL PRIMARY KEY,
    credentials_ciphertext BLOB    NOT NULL,
    credentials_nonce      BLOB    NOT NULL,
    contact                TEXT,
    created_at             INTEGER NOT NULL
) STRICT;
