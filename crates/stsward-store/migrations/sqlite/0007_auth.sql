-- Users, API tokens and login throttling (issue 9; see src/auth.rs). Times are integer epoch
-- seconds. Tenants exist since 0002 (unique name); providers create more of them.

-- People who log in. tenant_id NULL: an install admin, who acts for every tenant. Names are
-- unique across the install (a login form has no tenant field). Only an argon2id PHC string
-- is stored, never a password.
CREATE TABLE users (
    id            INTEGER NOT NULL PRIMARY KEY,
    tenant_id     INTEGER REFERENCES tenants (id),
    name          TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    created_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    CHECK (tenant_id IS NOT NULL OR role = 'admin')
) STRICT;

CREATE INDEX users_tenant ON users (tenant_id, name);

-- REST API bearer tokens (RFC 6750). Only the SHA-256 digest of a token is stored; the
-- prefix (its first characters) lets a person tell tokens apart.
CREATE TABLE api_tokens (
    id           INTEGER NOT NULL PRIMARY KEY,
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    name         TEXT    NOT NULL,
    digest       BLOB    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id, id);

-- Failed logins counted per (scope, key) in short buckets, so that every replica on one
-- database sees the same counts: scope 'user' keys a user name, 'ip' a source address.
CREATE TABLE login_failures (
    scope    TEXT    NOT NULL CHECK (scope IN ('user', 'ip')),
    key      TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,
    failures INTEGER NOT NULL CHECK (failures >= 1),
    PRIMARY KEY (scope, key, bucket)
) STRICT;

CREATE INDEX login_failures_bucket ON login_failures (bucket);
