-- Dashboard sessions (issue 9; see src/web_sessions.rs). Times are integer epoch seconds.
-- Only the SHA-256 digest of a session id is stored: a copy of the database holds no
-- cookie that logs anyone in. Each session has its own CSRF token, an absolute expiry and
-- the time it was last used (the idle timeout is the server's setting). Every replica on
-- one database sees the same sessions. A user's sessions go with the user.
CREATE TABLE web_sessions (
    digest       BLOB    NOT NULL PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) STRICT;

CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
