-- Alerts (issue 9; see src/alerts.rs): what is wrong with a hosted domain now, who has been
-- told, and the scheduled re-checks and evaluations that find it. Tenant-scoped through
-- the hosted domain; times are integer epoch seconds.

-- One row per time a cause was open: (domain, rule, cause_key) is open at most once, by the
-- unique index below (not by a read before the write). Resolving sets resolved_at, which
-- takes the row out of the index, so the cause may open a new row when it comes back.
CREATE TABLE alerts (
    id          INTEGER NOT NULL PRIMARY KEY,
    domain_id   INTEGER NOT NULL REFERENCES hosted_domains (id),
    rule        TEXT    NOT NULL,
    cause_key   TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    opened_at   INTEGER NOT NULL,
    resolved_at INTEGER CHECK (resolved_at IS NULL OR resolved_at >= opened_at)
) STRICT;

CREATE UNIQUE INDEX alerts_open ON alerts (domain_id, rule, cause_key) WHERE resolved_at IS NULL;
CREATE INDEX alerts_domain ON alerts (domain_id, id);

-- One row per (alert, destination, event): the send of an alert's opening or resolution to
-- one destination. A replica sends it only after moving it from pending to sending in one
-- guarded UPDATE; next_at is then the end of its claim (and, while pending, the retry time).
CREATE TABLE alert_deliveries (
    id          INTEGER NOT NULL PRIMARY KEY,
    alert_id    INTEGER NOT NULL REFERENCES alerts (id),
    destination TEXT    NOT NULL,
    event       TEXT    NOT NULL CHECK (event IN ('opened', 'resolved')),
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_at     INTEGER NOT NULL,
    claimed_by  TEXT,
    sent_at     INTEGER,
    last_error  TEXT,
    UNIQUE (alert_id, destination, event)
) STRICT;

CREATE INDEX alert_deliveries_due ON alert_deliveries (state, next_at);

-- Sends per destination in the current window (the rate limit), counted by the claim itself.
CREATE TABLE alert_send_windows (
    destination  TEXT    NOT NULL PRIMARY KEY,
    window_start INTEGER NOT NULL,
    sent         INTEGER NOT NULL CHECK (sent >= 0)
) STRICT;

-- The scheduled full checks and alert evaluations of each domain. due_at is the lease of a
-- round, claimed like domain_checks.due_at (0005): one replica per domain per round.
CREATE TABLE alert_rounds (
    domain_id  INTEGER NOT NULL REFERENCES hosted_domains (id),
    kind       TEXT    NOT NULL CHECK (kind IN ('check', 'evaluate')),
    due_at     INTEGER NOT NULL,
    claimed_by TEXT,
    PRIMARY KEY (domain_id, kind)
) STRICT;

CREATE INDEX alert_rounds_due ON alert_rounds (kind, due_at);
