//! REST API bearer tokens (RFC 6750 §2.1): 32 random bytes from the system's CSPRNG, written
//! as `stw_` and 64 hex digits. The store keeps the SHA-256 digest and the first
//! [`PREFIX_CHARS`] characters, never the token: a stolen database authenticates nothing.
//!
//! A token carries 256 bits of entropy, so a plain SHA-256 digest (no salt, no slow hash) is
//! enough to make it unrecoverable, and lets a request find its token by one indexed lookup.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// What every token starts with, so that a leaked one is recognisable (e.g. by scanners).
pub const TOKEN_MARK: &str = "stw_";
/// Random bytes in a token.
const RANDOM_BYTES: usize = 32;
/// The length of a token, in characters.
pub const TOKEN_CHARS: usize = TOKEN_MARK.len() + 2 * RANDOM_BYTES;
/// Characters of a token shown to people (`stw_` and 8 hex digits).
pub const PREFIX_CHARS: usize = TOKEN_MARK.len() + 8;

/// A new token: the secret (shown once), its digest and its prefix.
pub struct NewTokenSecret {
    /// The token, for the person who asked for it; never stored.
    pub token: String,
    /// SHA-256 of the token, stored.
    pub digest: Vec<u8>,
    /// Its first [`PREFIX_CHARS`] characters, stored and shown.
    pub prefix: String,
}

impl std::fmt::Debug for NewTokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTokenSecret")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The system's random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random source failed")]
pub struct RandomError;

/// A new token from the system's CSPRNG.
pub fn generate() -> Result<NewTokenSecret, RandomError> {
    let mut bytes = [0u8; RANDOM_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    let mut token = String::with_capacity(TOKEN_CHARS);
    token.push_str(TOKEN_MARK);
    for b in bytes {
        token.push_str(&format!("{b:02x}"));
    }
    let prefix = token[..PREFIX_CHARS].to_owned();
    Ok(NewTokenSecret {
        digest: digest_of(&token),
        token,
        prefix,
    })
}

/// SHA-256 of a token, as stored.
pub fn digest_of(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// Whether `token` has the shape of a stored token (then it is worth a store lookup).
pub fn looks_like_token(token: &str) -> bool {
    token.len() == TOKEN_CHARS
        && token.starts_with(TOKEN_MARK)
        && token[TOKEN_MARK.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_shaped_and_digested() {
        let one = generate().expect("token");
        let two = generate().expect("token");
        assert_ne!(one.token, two.token);
        assert!(looks_like_token(&one.token), "{}", one.token);
        assert_eq!(one.token.len(), TOKEN_CHARS);
        assert_eq!(one.prefix.len(), PREFIX_CHARS);
        assert!(one.token.starts_with(&one.prefix));
        assert_eq!(one.digest, digest_of(&one.token));
        assert_eq!(one.digest.len(), 32);
        assert!(
            !format!("{one:?}").contains(&one.token),
            "Debug hides the token"
        );
        // SHA-256("abc"), FIPS 180-2 appendix B.1 (from memory).
        assert_eq!(
            digest_of("abc")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn shapes() {
        let good = format!("stw_{}", "0a".repeat(32));
        assert!(looks_like_token(&good));
        for (bad, why) in [
            (format!("stw_{}", "0A".repeat(32)), "upper-case hex"),
            (format!("stx_{}", "0a".repeat(32)), "another mark"),
            (format!("stw_{}", "0a".repeat(31)), "short"),
            (format!("stw_{}0", "0a".repeat(32)), "long"),
            ("configured-admin-token".to_string(), "free text"),
        ] {
            assert!(!looks_like_token(&bad), "{why}");
        }
    }
}
