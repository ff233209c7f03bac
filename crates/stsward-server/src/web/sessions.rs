//! Dashboard sessions: a random id in a cookie, its SHA-256 digest in the store (so a copy of
//! the database logs nobody in), an absolute expiry and an idle timeout, and a CSRF token per
//! session.
//!
//! The cookie (RFC 6265 §4.1) is `HttpOnly` and `SameSite=Strict`, with `Path=/`; with
//! `secure_cookies` it is also `Secure` and named with the `__Host-` prefix, which browsers
//! accept only from a secure origin, with `Path=/` and without `Domain`, so a sibling host
//! cannot set or shadow it.
//!
//! Nothing here reads the clock: times are arguments.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use http::HeaderMap;
use http::header;
use stsward_store::{NewWebSession, Store, StoreError, User};

/// Random bytes in a session id and in a CSRF token.
const RANDOM_BYTES: usize = 32;
/// A session's `last_seen_at` is written at most once per this many seconds, so that a
/// busy page does not write on every request; the idle timeout is this much coarse.
pub const TOUCH_INTERVAL: i64 = 60;
/// The cookie's name with `Secure`.
pub const SECURE_COOKIE: &str = "__Host-stsward_session";
/// The cookie's name without `Secure` (loopback labs only).
pub const PLAIN_COOKIE: &str = "stsward_session";

/// How long sessions live, and how the cookie is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSettings {
    /// `Secure` and the `__Host-` prefix.
    pub secure_cookies: bool,
    /// Seconds from login to the end, however busy.
    pub lifetime: i64,
    /// Seconds a session may sit unused.
    pub idle: i64,
}

impl SessionSettings {
    /// The cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            SECURE_COOKIE
        } else {
            PLAIN_COOKIE
        }
    }

    fn attributes(&self) -> &'static str {
        if self.secure_cookies {
            "Path=/; HttpOnly; SameSite=Strict; Secure"
        } else {
            "Path=/; HttpOnly; SameSite=Strict"
        }
    }

    /// The `Set-Cookie` value for a new session id.
    pub fn set_cookie(&self, id: &str) -> String {
        format!(
            "{}={id}; Max-Age={}; {}",
            self.cookie_name(),
            self.lifetime,
            self.attributes()
        )
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub fn clear_cookie(&self) -> String {
        format!("{}=; Max-Age=0; {}", self.cookie_name(), self.attributes())
    }
}

/// Why a session could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The system's random source failed.
    #[error("the system random source failed")]
    Random,
    /// The store failed.
    #[error("the store failed while reading or writing a session")]
    Store(#[from] StoreError),
}

/// A live session: its user, its CSRF token and the digest that names it in the store.
#[derive(Clone, Debug)]
pub struct Session {
    /// Whose.
    pub user: User,
    /// The token its forms carry.
    pub csrf_token: String,
    /// SHA-256 of its id.
    pub digest: Vec<u8>,
}

/// A new random value as 64 hex digits.
pub fn random_hex() -> Result<String, SessionError> {
    let mut bytes = [0u8; RANDOM_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SessionError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The stored digest of a session id.
pub fn digest_of(id: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, id.as_bytes())
        .as_ref()
        .to_vec()
}

/// Starts a session for `user` at `now`; the id (for the cookie) and the session.
pub async fn start(
    store: &Store,
    settings: &SessionSettings,
    user: User,
    now: i64,
) -> Result<(String, Session), SessionError> {
    let id = random_hex()?;
    let csrf_token = random_hex()?;
    let digest = digest_of(&id);
    store
        .web_session_create(&NewWebSession {
            digest: digest.clone(),
            user: user.id,
            csrf_token: csrf_token.clone(),
            created_at: now,
            expires_at: now.saturating_add(settings.lifetime),
        })
        .await?;
    // Sessions that ended are dropped at each login, so the table holds about the live ones.
    store
        .web_session_prune(now, now.saturating_sub(settings.idle))
        .await?;
    Ok((
        id,
        Session {
            user,
            csrf_token,
            digest,
        },
    ))
}

/// The session id the request's cookies carry, if any (the first cookie of that name).
pub fn cookie_id<'a>(headers: &'a HeaderMap, settings: &SessionSettings) -> Option<&'a str> {
    let name = settings.cookie_name();
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| v.len() == 2 * RANDOM_BYTES && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The live session of the request's cookie at `now`: `None` without a cookie, for an
/// unknown id, past its expiry, idle too long, or when its user is disabled. An ended
/// session is deleted.
pub async fn current(
    store: &Store,
    settings: &SessionSettings,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<Session>, SessionError> {
    let Some(id) = cookie_id(headers, settings) else {
        return Ok(None);
    };
    let digest = digest_of(id);
    let Some(stored) = store.web_session_lookup(&digest).await? else {
        return Ok(None);
    };
    let ended = now >= stored.expires_at
        || now.saturating_sub(stored.last_seen_at) >= settings.idle
        || stored.user.disabled;
    if ended {
        store.web_session_delete(&digest).await?;
        return Ok(None);
    }
    store
        .web_session_touch(&digest, now, TOUCH_INTERVAL)
        .await?;
    Ok(Some(Session {
        user: stored.user,
        csrf_token: stored.csrf_token,
        digest,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn settings(secure: bool) -> SessionSettings {
        SessionSettings {
            secure_cookies: secure,
            lifetime: 3600,
            idle: 600,
        }
    }

    #[test]
    fn cookies_are_http_only_strict_and_host_prefixed_when_secure() {
        let set = settings(true).set_cookie("ab");
        assert!(set.starts_with("__Host-stsward_session=ab;"), "{set}");
        for attr in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=3600",
        ] {
            assert!(set.contains(attr), "{attr} missing from {set}");
        }
        assert!(!set.contains("Domain"), "__Host- forbids Domain: {set}");
        let plain = settings(false).set_cookie("ab");
        assert!(plain.starts_with("stsward_session=ab;"), "{plain}");
        assert!(!plain.contains("Secure"), "{plain}");
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(settings(true).clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn the_cookie_id_is_found_and_malformed_ids_are_ignored() {
        let id = "a".repeat(64);
        let s = settings(true);
        let mut h = HeaderMap::new();
        let cookie = format!("other=1; __Host-stsward_session={id}; x=y");
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&cookie).expect("ascii"),
        );
        assert_eq!(cookie_id(&h, &s), Some(id.as_str()));
        assert_eq!(cookie_id(&h, &settings(false)), None, "another name");
        for bad in [
            "__Host-stsward_session=short",
            "__Host-stsward_session=",
            "nothing",
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, HeaderValue::from_static(bad));
            assert_eq!(cookie_id(&h, &s), None, "{bad}");
        }
        let not_hex = format!("__Host-stsward_session={}", "z".repeat(64));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&not_hex).expect("ascii"),
        );
        assert_eq!(cookie_id(&h, &s), None, "not hex");
    }

    #[test]
    fn ids_are_random_and_stored_as_digests() {
        let a = random_hex().expect("random");
        let b = random_hex().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let d = digest_of(&a);
        assert_eq!(d.len(), 32);
        assert!(
            !d.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .contains(&a)
        );
    }
}
