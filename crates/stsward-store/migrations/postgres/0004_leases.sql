-- Replicas on one database (see src/leases.rs). Times are epoch seconds (BIGINT).

-- Who may do a piece of install-wide work (e.g. order the certificate of one host name) until
-- when. A row whose expires_at has passed is free; the holder deletes it when done.
CREATE TABLE leases (
    name       TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Replicas reload the certificates changed since they last looked.
CREATE INDEX certificates_updated_at ON certificates (updated_at, name);
