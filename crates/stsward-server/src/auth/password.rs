//! Passwords: argon2id (RFC 9106) with a random 16-byte salt, stored as a PHC string
//! (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), so the parameters travel with each hash and can
//! be raised later without breaking old ones.
//!
//! The parameters are the argon2 crate's defaults (m = 19 MiB, t = 2, p = 1), the minimum
//! OWASP's password storage guidance lists for argon2id (from memory, not from a file here).
//! Verification is the crate's, which compares the derived hash in constant time.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// The fewest characters a new password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted, in bytes: hashing cost grows with it.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Salt length, in bytes (RFC 9106 §3.1 recommends 16).
const SALT_BYTES: usize = 16;

/// Why a password was not hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_CHARS`].
    #[error("password is shorter than {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Longer than [`MAX_PASSWORD_BYTES`].
    #[error("password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// The system's random source failed.
    #[error("the system random source failed")]
    Random,
    /// The hasher refused (it names the reason).
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Checks a new password's length (characters and bytes).
pub fn check_new(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// The argon2id PHC string of a new `password` (checked by [`check_new`] first).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check_new(password)?;
    hash_unchecked(password)
}

fn hash_unchecked(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_BYTES];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `stored`. A stored string that does not parse,
/// or a password over [`MAX_PASSWORD_BYTES`], never matches.
pub fn verify(stored: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        // Spend the time anyway, so that length does not tell a known user apart.
        let _ = verify_phc(dummy_hash(), "");
        return false;
    }
    verify_phc(stored, password)
}

fn verify_phc(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification against a hash with the current parameters, for a
/// login whose user does not exist: an unknown name and a wrong password take as long.
pub fn verify_nobody(password: &str) {
    let _ = verify(dummy_hash(), password);
}

/// A hash of a random password, made once per process with the current parameters.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 24];
        // Should the random source fail, a fixed password still costs the same to verify.
        let _ = SystemRandom::new().fill(&mut secret);
        let password: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        hash_unchecked(&password).unwrap_or_else(|_| {
            // Parameters the crate accepts cannot fail to hash; keep the login path total.
            String::from(
                "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_salted_and_verifies_only_its_password() {
        let one = hash("correct horse battery").expect("hash");
        let two = hash("correct horse battery").expect("hash");
        assert!(one.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{one}");
        assert_ne!(one, two, "a fresh salt each time");
        assert!(verify(&one, "correct horse battery"));
        assert!(verify(&two, "correct horse battery"));
        assert!(!verify(&one, "correct horse batterY"));
        assert!(!verify(&one, ""));
        assert!(!verify("not a phc string", "correct horse battery"));
        assert!(!verify(&one, &"x".repeat(MAX_PASSWORD_BYTES + 1)));
    }

    #[test]
    fn new_passwords_are_bounded() {
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
        assert_eq!(
            hash(&"é".repeat(11)),
            Err(PasswordError::TooShort),
            "11 characters"
        );
        assert!(hash(&"é".repeat(12)).is_ok(), "12 characters, 24 bytes");
        assert_eq!(
            hash(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordError::TooLong)
        );
    }

    #[test]
    fn the_dummy_hash_has_the_current_parameters() {
        assert!(dummy_hash().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(PasswordHash::new(dummy_hash()).is_ok());
    }
}
