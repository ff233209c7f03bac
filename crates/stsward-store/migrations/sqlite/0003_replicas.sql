-- Change propagation between the store and the serving replicas (see src/replicas.rs).

-- One row per change to what is served, appended by the triggers below in the writer's own
-- transaction: a new policy version, or a domain's state, rua or current version moving.
-- The serving roles poll `seq > cursor`, so noticing changes costs O(changes), not O(domains).
CREATE TABLE hosting_changes (
    seq     INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    domain  TEXT    NOT NULL,
    version INTEGER NOT NULL
) STRICT;

CREATE TRIGGER hosting_changes_on_version AFTER INSERT ON policy_versions
BEGIN
    INSERT INTO hosting_changes (domain, version)
        SELECT domain, NEW.version FROM hosted_domains WHERE id = NEW.domain_id;
END;

CREATE TRIGGER hosting_changes_on_domain
AFTER UPDATE OF state, tlsrpt_rua, current_version, remove_after ON hosted_domains
BEGIN
    INSERT INTO hosting_changes (domain, version) VALUES (NEW.domain, NEW.current_version);
END;

-- The serving processes: each heartbeats the change position it serves (every change up to
-- applied_seq is in its policy host's memory). last_seen_ms is epoch milliseconds.
CREATE TABLE replicas (
    replica_id   TEXT    NOT NULL PRIMARY KEY,
    applied_seq  INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
) STRICT;
