-- The scheduler of `stsward serve` (see src/scheduler.rs): per-domain rounds (MX follow,
-- RFC 8461 §3.2 mx lines; own _mta-sts TXT watch, §3.1 id) and policy fetch counts
-- (§3.3 fetches). Times are epoch seconds (BIGINT); days are days since 1970-01-01 UTC.

-- One row per domain the scheduler looks at. due_at is the lease of a round: a replica
-- claims the row by moving due_at forward in one guarded UPDATE, so each domain is checked
-- by one replica per round. own_sts_txt is the owner's setting "I keep my own _mta-sts TXT".
CREATE TABLE domain_checks (
    domain_id         BIGINT  NOT NULL PRIMARY KEY REFERENCES hosted_domains (id),
    own_sts_txt       BOOLEAN NOT NULL DEFAULT FALSE,
    due_at            BIGINT  NOT NULL,
    claimed_by        TEXT,
    mx_checked_at     BIGINT,
    mx_outcome        TEXT,
    mx_detail         TEXT,
    mx_warning        TEXT,
    mx_warning_at     BIGINT,
    txt_checked_at    BIGINT,
    txt_outcome       TEXT,
    txt_detail        TEXT,
    txt_flagged_since BIGINT
);

CREATE INDEX domain_checks_due ON domain_checks (due_at);

-- Policy fetches per domain, UTC day and fetching network, added to by every replica's
-- periodic flush (fetches = fetches + n: additive, whichever replica writes first).
CREATE TABLE policy_fetches (
    domain_id BIGINT NOT NULL REFERENCES hosted_domains (id),
    day       BIGINT NOT NULL,
    network   TEXT   COLLATE "C" NOT NULL,
    fetches   BIGINT NOT NULL CHECK (fetches >= 0),
    PRIMARY KEY (domain_id, day, network)
);

CREATE INDEX policy_fetches_day ON policy_fetches (day);
