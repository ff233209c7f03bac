-- Received TLS-RPT reports (RFC 8460 §4.4; see src/reports.rs). Times are integer epoch
-- seconds; a day is the epoch second of its 00:00 UTC. STRICT tables, booleans INTEGER 0/1.

-- Every input that was read (one message, POST body or file), zlib-compressed; the reports
-- taken from it point here. Pruned by retention (reports.raw_id becomes NULL).
CREATE TABLE report_raw (
    id          INTEGER NOT NULL PRIMARY KEY,
    received_at INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    compressed  BLOB    NOT NULL
) STRICT;

CREATE INDEX report_raw_received ON report_raw (received_at);

-- One row per distinct report. (org_key, id_key) is the deduplication key: the
-- organisation and report id, trimmed and with the organisation lowercased. A second copy
-- of a report hits the unique index (INSERT ... ON CONFLICT DO NOTHING) and is only counted.
CREATE TABLE reports (
    id               INTEGER NOT NULL PRIMARY KEY,
    org_key          TEXT    NOT NULL,
    id_key           TEXT    NOT NULL,
    organization     TEXT    NOT NULL,
    report_id        TEXT    NOT NULL,
    begin_at         INTEGER NOT NULL,
    end_at           INTEGER NOT NULL,
    contact          TEXT,
    policy_domains   TEXT    NOT NULL,
    channel          TEXT    NOT NULL,
    dkim             TEXT    NOT NULL,
    dkim_detail      TEXT,
    successful       INTEGER NOT NULL,
    failed           INTEGER NOT NULL,
    failed_estimated INTEGER NOT NULL CHECK (failed_estimated IN (0, 1)),
    deviations       INTEGER NOT NULL,
    raw_id           INTEGER REFERENCES report_raw (id) ON DELETE SET NULL
                             DEFERRABLE INITIALLY DEFERRED,
    received_at      INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX reports_key ON reports (org_key, id_key);
CREATE INDEX reports_received ON reports (received_at);
CREATE INDEX reports_raw ON reports (raw_id);

-- The policies of a report (RFC 8460 §4.4 "policies"), with their summary counts.
CREATE TABLE report_policies (
    report_id        INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    idx              INTEGER NOT NULL,
    policy_type      TEXT    NOT NULL,
    policy_domain    TEXT    NOT NULL,
    policy_strings   TEXT    NOT NULL,
    mx_hosts         TEXT    NOT NULL,
    successful       INTEGER NOT NULL,
    failed           INTEGER NOT NULL,
    failed_estimated INTEGER NOT NULL CHECK (failed_estimated IN (0, 1)),
    PRIMARY KEY (report_id, idx)
) STRICT;

-- Failure details (RFC 8460 §4.4 "failure-details"); pruned by retention with the raw input,
-- received_at copied from the report so that pruning needs no join.
CREATE TABLE report_failures (
    report_id              INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    policy_idx             INTEGER NOT NULL,
    idx                    INTEGER NOT NULL,
    received_at            INTEGER NOT NULL,
    result_type            TEXT    NOT NULL,
    sending_mta_ip         TEXT,
    receiving_mx_hostname  TEXT,
    receiving_mx_helo      TEXT,
    receiving_ip           TEXT,
    failed                 INTEGER NOT NULL,
    additional_information TEXT,
    failure_reason_code    TEXT,
    PRIMARY KEY (report_id, policy_idx, idx)
) STRICT;

CREATE INDEX report_failures_received ON report_failures (received_at);

-- Daily rollups, the only rows the summaries read. result_type '' is a policy's summary
-- (its successful and failed sessions, receiving_mx ''); other rows are failure details'
-- failed sessions by result type and receiving MX (host name, else IP, else '').
-- Updated in the transaction that inserts the report, and only when it was inserted.
CREATE TABLE report_rollups (
    policy_domain TEXT    NOT NULL,
    day           INTEGER NOT NULL,
    organization  TEXT    NOT NULL,
    receiving_mx  TEXT    NOT NULL,
    result_type   TEXT    NOT NULL,
    successful    INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    PRIMARY KEY (policy_domain, day, organization, receiving_mx, result_type)
) STRICT;

CREATE INDEX report_rollups_day ON report_rollups (day, policy_domain);

-- The same counts summed over every policy domain: what an install-wide summary reads, so
-- that its cost grows with days x organisations x MX hosts, not with hosted domains.
-- Updated with report_rollups, in the same transaction.
CREATE TABLE report_rollups_install (
    day           INTEGER NOT NULL,
    organization  TEXT    NOT NULL,
    receiving_mx  TEXT    NOT NULL,
    result_type   TEXT    NOT NULL,
    successful    INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    PRIMARY KEY (day, organization, receiving_mx, result_type)
) STRICT;

-- Input that could not be read or was refused (no valid DKIM signature, RFC 8460 §3), with
-- its raw bytes (zlib-compressed) and the reason. Released entries are run through intake
-- again and keep their row with released_at set. An input already waiting in the quarantine
-- (same SHA-256) is not kept twice.
CREATE TABLE report_quarantine (
    id          INTEGER NOT NULL PRIMARY KEY,
    received_at INTEGER NOT NULL,
    channel     TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    origin      TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    compressed  BLOB    NOT NULL,
    digest      TEXT    NOT NULL,
    released_at INTEGER
) STRICT;

CREATE INDEX report_quarantine_received ON report_quarantine (received_at);
CREATE UNIQUE INDEX report_quarantine_waiting ON report_quarantine (digest)
    WHERE released_at IS NULL;
