-- Check runs that tenants start over the API (issue 9; see src/checks.rs). Tenant-scoped
-- through the hosted domain; times are integer epoch seconds. Only the last N runs of each
-- domain are kept (the caller passes N).
CREATE TABLE check_runs (
    id          INTEGER NOT NULL PRIMARY KEY,
    domain_id   INTEGER NOT NULL REFERENCES hosted_domains (id),
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL CHECK (finished_at >= started_at),
    verdict     TEXT    NOT NULL CHECK (verdict IN ('ok', 'info', 'warning', 'error', 'not-run')),
    findings    TEXT    NOT NULL
) STRICT;

CREATE INDEX check_runs_domain ON check_runs (domain_id, id);
