//! ACME challenge answers the listeners give while an order is pending: HTTP-01 (RFC 8555
//! §8.3) and TLS-ALPN-01 (RFC 8737 §3).
//!
//! ```text
//! HTTP-01      GET http://<name>/.well-known/acme-challenge/<token>  →  <key authorization>
//! TLS-ALPN-01  ClientHello with SNI <name> and ALPN "acme-tls/1"    →  the challenge certificate
//! ```
//!
//! The ACME module registers an answer before it tells the CA to validate and removes it
//! afterwards. Both tables are bounded ([`MAX_HTTP01_CHALLENGES`],
//! [`MAX_TLS_ALPN01_CHALLENGES`]): a registration past the bound is refused, so a stuck order
//! queue cannot grow memory without end.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use rustls::sign::CertifiedKey;

use super::name::{self, NameError};

/// The ALPN protocol ID of TLS-ALPN-01 validation (RFC 8737 §3).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// At most this many HTTP-01 answers at once (a CA validates one order at a time per name;
/// far more than the CA's rate limits let one account have pending).
pub const MAX_HTTP01_CHALLENGES: usize = 10_000;
/// At most this many TLS-ALPN-01 certificates at once.
pub const MAX_TLS_ALPN01_CHALLENGES: usize = 10_000;

/// Tokens carry at least 128 bits of entropy, base64url encoded (RFC 8555 §8.3, paraphrased):
/// 22 characters or more; no CA sends one anywhere near this long.
const MAX_TOKEN_LEN: usize = 256;
/// A key authorization is `token "." base64url(JWK thumbprint)` (RFC 8555 §8.1, paraphrased).
const MAX_KEY_AUTHORIZATION_LEN: usize = 512;

/// Why a challenge answer was refused. Nothing changes when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The token is empty, too long, or not base64url (RFC 8555 §8.3).
    #[error("HTTP-01 token {token:?}: {reason}")]
    BadToken {
        /// The token as given.
        token: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The key authorization is too long or holds characters outside `token.thumbprint`.
    #[error("HTTP-01 key authorization for token {token:?}: {reason}")]
    BadKeyAuthorization {
        /// The token it answers.
        token: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The TLS-ALPN-01 name is not a host name.
    #[error("TLS-ALPN-01 name: {0}")]
    Name(#[from] NameError),
    /// The table is full.
    #[error("too many pending {kind} challenges (limit {limit})")]
    Full {
        /// `HTTP-01` or `TLS-ALPN-01`.
        kind: &'static str,
        /// The bound.
        limit: usize,
    },
}

#[derive(Debug, Default)]
struct Tables {
    http01: HashMap<Box<str>, Bytes>,
    tls_alpn01: HashMap<Box<str>, Arc<CertifiedKey>>,
}

/// The pending ACME challenge answers; cheap to clone (one shared table).
#[derive(Debug, Clone, Default)]
pub struct Challenges {
    tables: Arc<RwLock<Tables>>,
}

impl Challenges {
    /// No pending challenges.
    pub fn new() -> Challenges {
        Challenges::default()
    }

    /// Answers `GET /.well-known/acme-challenge/<token>` with `key_authorization` (RFC 8555
    /// §8.3) on the HTTP listeners, for any `Host`.
    pub fn set_http01(&self, token: &str, key_authorization: &str) -> Result<(), ChallengeError> {
        check_token(token)?;
        let bad = |reason| ChallengeError::BadKeyAuthorization {
            token: token.to_owned(),
            reason,
        };
        if key_authorization.len() > MAX_KEY_AUTHORIZATION_LEN {
            return Err(bad("longer than 512 octets"));
        }
        if !key_authorization
            .strip_prefix(token)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|thumbprint| !thumbprint.is_empty() && is_base64url(thumbprint))
        {
            return Err(bad("not \"<token>.<base64url thumbprint>\""));
        }
        let mut tables = self.write();
        if tables.http01.len() >= MAX_HTTP01_CHALLENGES && !tables.http01.contains_key(token) {
            return Err(ChallengeError::Full {
                kind: "HTTP-01",
                limit: MAX_HTTP01_CHALLENGES,
            });
        }
        tables.http01.insert(
            token.into(),
            Bytes::copy_from_slice(key_authorization.as_bytes()),
        );
        Ok(())
    }

    /// Stops answering `token`. Returns whether it was registered.
    pub fn remove_http01(&self, token: &str) -> bool {
        self.write().http01.remove(token).is_some()
    }

    /// Presents `cert` to a client that asks for `name` (SNI) and offers only the ALPN protocol
    /// `acme-tls/1` (RFC 8737 §3). The caller builds the certificate with the
    /// `acmeIdentifier` extension; it is not inspected here. Build the key with
    /// `CertifiedKey::new`: `CertifiedKey::from_der` checks the key against the certificate
    /// through webpki, which refuses the critical acmeIdentifier extension.
    pub fn set_tls_alpn01(&self, name: &str, cert: CertifiedKey) -> Result<(), ChallengeError> {
        let name = name::normalize(name)?;
        let mut tables = self.write();
        if tables.tls_alpn01.len() >= MAX_TLS_ALPN01_CHALLENGES
            && !tables.tls_alpn01.contains_key(name.as_str())
        {
            return Err(ChallengeError::Full {
                kind: "TLS-ALPN-01",
                limit: MAX_TLS_ALPN01_CHALLENGES,
            });
        }
        tables
            .tls_alpn01
            .insert(name.into_boxed_str(), Arc::new(cert));
        Ok(())
    }

    /// Stops presenting a challenge certificate for `name`. Returns whether one was registered.
    pub fn remove_tls_alpn01(&self, name: &str) -> bool {
        match name::normalize(name) {
            Ok(name) => self.write().tls_alpn01.remove(name.as_str()).is_some(),
            Err(_) => false,
        }
    }

    /// The key authorization for `token`.
    pub(crate) fn http01(&self, token: &str) -> Option<Bytes> {
        self.read().http01.get(token).cloned()
    }

    /// The challenge certificate for a normalized `name`.
    pub(crate) fn tls_alpn01(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        self.read().tls_alpn01.get(name).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        // Every write is one insert or remove: a poisoned lock holds consistent tables.
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn check_token(token: &str) -> Result<(), ChallengeError> {
    let bad = |reason| ChallengeError::BadToken {
        token: token.to_owned(),
        reason,
    };
    if token.is_empty() {
        return Err(bad("empty"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(bad("longer than 256 characters"));
    }
    if !is_base64url(token) {
        return Err(bad(
            "only base64url characters (A-Z a-z 0-9 - _) are allowed",
        ));
    }
    Ok(())
}

/// The RFC 4648 §5 alphabet without padding, as RFC 8555 §8.3 asks of tokens (paraphrased).
pub(crate) fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8555_8_3_http01_registration_table() {
        let c = Challenges::new();
        let token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
        let good_ka = format!("{token}.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ");
        c.set_http01(token, &good_ka).unwrap();
        assert_eq!(c.http01(token).as_deref(), Some(good_ka.as_bytes()));

        let bad_tokens = [
            ("", "empty"),
            ("a/b", "slash would escape the path"),
            ("..", "dots are not base64url"),
            ("abc=", "padding"),
            ("a b", "space"),
        ];
        for (t, why) in bad_tokens {
            assert!(
                matches!(
                    c.set_http01(t, &format!("{t}.x")),
                    Err(ChallengeError::BadToken { .. })
                ),
                "{why}: {t:?}"
            );
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(c.set_http01(&long, &format!("{long}.x")).is_err());

        let bad_kas = [
            ("othertoken.abc", "another token"),
            ("", "empty"),
            ("tok.", "empty thumbprint"),
            ("tok", "no thumbprint"),
        ];
        for (ka, why) in bad_kas {
            assert!(
                matches!(
                    c.set_http01("tok", ka),
                    Err(ChallengeError::BadKeyAuthorization { .. })
                ),
                "{why}: {ka:?}"
            );
        }
        assert!(
            c.set_http01("tok", "tok.a\r\nb").is_err(),
            "CRLF in the answer"
        );
        assert!(c.remove_http01(token));
        assert!(!c.remove_http01(token));
        assert_eq!(c.http01(token), None);
    }

    #[test]
    fn http01_table_is_bounded() {
        let c = Challenges::new();
        for i in 0..MAX_HTTP01_CHALLENGES {
            let t = format!("t{i}");
            c.set_http01(&t, &format!("{t}.k")).unwrap();
        }
        assert_eq!(
            c.set_http01("one-more", "one-more.k"),
            Err(ChallengeError::Full {
                kind: "HTTP-01",
                limit: MAX_HTTP01_CHALLENGES
            })
        );
        // Replacing a registered token is not growth.
        c.set_http01("t0", "t0.other").unwrap();
        assert!(c.remove_http01("t1"));
        c.set_http01("one-more", "one-more.k").unwrap();
    }
}
