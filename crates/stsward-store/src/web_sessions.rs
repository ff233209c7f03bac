//! Dashboard sessions (issue 9): one row per logged-in browser, shared by every replica on
//! one database.
//!
//! ```text
//! web_sessions  digest (SHA-256 of the session id), user_id, csrf_token, created_at,
//!               expires_at, last_seen_at
//! ```
//!
//! The store never sees a session id: it keeps the digest the caller (`stsward-server`'s
//! `web::sessions`) computed, so a copy of the database logs nobody in. The policy (how long
//! a session lives, how long it may sit idle) is the caller's: the store keeps the times and
//! a lookup returns them with the session's user.

use crate::auth::{User, UserRow, user_from};
use crate::error::{Field, Operation, StoreError};
use crate::hosting::bounded;
use crate::store::{Store, with_pool};

/// The length of a session id's digest (SHA-256), in bytes.
pub const SESSION_DIGEST_BYTES: usize = 32;
/// Longest CSRF token the store accepts, in bytes.
pub const MAX_CSRF_BYTES: usize = 128;

/// A session to store: the digest of its id, never the id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWebSession {
    /// SHA-256 of the session id ([`SESSION_DIGEST_BYTES`] long).
    pub digest: Vec<u8>,
    /// Whose session.
    pub user: crate::UserId,
    /// The token every form of this session carries.
    pub csrf_token: String,
    /// When, epoch seconds.
    pub created_at: i64,
    /// When it ends however busy it is, epoch seconds.
    pub expires_at: i64,
}

/// A stored session, with its user as the user is now (disabled or not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSession {
    /// The user.
    pub user: User,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// When it was created, epoch seconds.
    pub created_at: i64,
    /// When it ends, epoch seconds.
    pub expires_at: i64,
    /// When it was last used, epoch seconds (to within the touch interval).
    pub last_seen_at: i64,
}

fn check_digest(digest: &[u8]) -> Result<(), StoreError> {
    if digest.len() == SESSION_DIGEST_BYTES {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            field: Field::SessionDigest,
            reason: "a session digest is 32 bytes (SHA-256)",
        })
    }
}

type SessionRow = (
    i64,
    Option<i64>,
    String,
    String,
    String,
    i64,
    bool,
    String,
    i64,
    i64,
    i64,
);

impl Store {
    /// Stores a new session.
    pub async fn web_session_create(&self, session: &NewWebSession) -> Result<(), StoreError> {
        check_digest(&session.digest)?;
        bounded(Field::CsrfToken, &session.csrf_token, MAX_CSRF_BYTES)?;
        const SQL: &str = "INSERT INTO web_sessions \
             (digest, user_id, csrf_token, created_at, expires_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $4)";
        self.run(Operation::WebSessionCreate, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(&session.digest)
                    .bind(session.user.0)
                    .bind(&session.csrf_token)
                    .bind(session.created_at)
                    .bind(session.expires_at)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })
        })
        .await?;
        Ok(())
    }

    /// The session whose id has the SHA-256 digest `digest`, with its user, expired or not
    /// (the caller decides). Install-wide because this is how a request finds its user.
    pub async fn web_session_lookup(
        &self,
        digest: &[u8],
    ) -> Result<Option<WebSession>, StoreError> {
        check_digest(digest)?;
        const SQL: &str = "SELECT u.id, u.tenant_id, u.name, u.password_hash, u.role, \
             u.created_at, u.disabled, s.csrf_token, s.created_at, s.expires_at, s.last_seen_at \
             FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = $1";
        let row = self
            .run(Operation::WebSessionLookup, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, SessionRow>(SQL).bind(digest).fetch_optional(pool).await
                })
            })
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (id, tenant, name, hash, role, user_created, disabled, csrf, created, expires, seen) =
            row;
        let user_row: UserRow = (id, tenant, name, hash, role, user_created, disabled);
        Ok(Some(WebSession {
            user: user_from(user_row)?,
            csrf_token: csrf,
            created_at: created,
            expires_at: expires,
            last_seen_at: seen,
        }))
    }

    /// Sets the session's `last_seen_at` to `now` unless it was set less than
    /// `min_interval` seconds before; whether a row was written.
    pub async fn web_session_touch(
        &self,
        digest: &[u8],
        now: i64,
        min_interval: i64,
    ) -> Result<bool, StoreError> {
        check_digest(digest)?;
        const SQL: &str = "UPDATE web_sessions SET last_seen_at = $2 \
             WHERE digest = $1 AND last_seen_at <= $3";
        let done = self
            .run(Operation::WebSessionTouch, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL)
                        .bind(digest)
                        .bind(now)
                        .bind(now.saturating_sub(min_interval))
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
            })
            .await?;
        Ok(done > 0)
    }

    /// Deletes the session (a logout); whether there was one.
    pub async fn web_session_delete(&self, digest: &[u8]) -> Result<bool, StoreError> {
        check_digest(digest)?;
        const SQL: &str = "DELETE FROM web_sessions WHERE digest = $1";
        let done = self
            .run(Operation::WebSessionDelete, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL).bind(digest).execute(pool).await.map(|r| r.rows_affected())
                })
            })
            .await?;
        Ok(done > 0)
    }

    /// Deletes the sessions that expired at or before `now`, and those last used at or
    /// before `idle_before`; how many went.
    pub async fn web_session_prune(&self, now: i64, idle_before: i64) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2";
        let done = self
            .run(Operation::WebSessionPrune, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL)
                        .bind(now)
                        .bind(idle_before)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
            })
            .await?;
        Ok(done)
    }
}
