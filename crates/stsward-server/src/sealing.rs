//! Secrets at rest: certificate private keys and ACME account credentials are stored sealed
//! with AES-256-GCM under the key in `keys.secret_file`, so that a copy of the database (a
//! backup, a replica's disk) does not give away the keys of the policy hosts (RFC 8461 §3.3:
//! the policy host's certificate is what senders trust).
//!
//! ```text
//! secret file   64 hexadecimal digits (32 bytes), e.g. from `openssl rand -hex 32`
//! sealed        ciphertext || 16-byte tag, with a random 12-byte nonce stored beside it
//! associated    the row's name (host name, directory URL): a sealed value moved to
//!   data        another row does not open
//! ```

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use stsward_store::Sealed;

/// Key length in bytes.
pub const KEY_LEN: usize = 32;

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The secret file does not hold 64 hexadecimal digits.
    #[error("the secret key must be {} hexadecimal digits (32 bytes, e.g. from `openssl rand -hex 32`), found {found} characters", KEY_LEN * 2)]
    BadKey {
        /// How many characters were found (after trimming).
        found: usize,
    },
    /// The system's random source failed.
    #[error("no random nonce could be drawn")]
    Random,
    /// The value could not be sealed (larger than AES-GCM allows).
    #[error("the value could not be sealed")]
    Seal,
    /// The value was sealed under another key, for another row, or was altered.
    #[error("the sealed {what} does not open with this key (another key, another row, or altered)")]
    Open {
        /// What was being opened.
        what: &'static str,
    },
}

/// The key, ready to seal and open. Never printed.
pub struct SealingKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(…)")
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl SealingKey {
    /// The key from the secret file's text: 64 hexadecimal digits, surrounding whitespace
    /// ignored.
    pub fn from_hex(text: &str) -> Result<SealingKey, SealError> {
        let digits = text.trim().as_bytes();
        let bad = SealError::BadKey {
            found: digits.len(),
        };
        if digits.len() != KEY_LEN * 2 {
            return Err(bad);
        }
        let mut bytes = [0u8; KEY_LEN];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
                return Err(bad);
            };
            bytes[i] = hi << 4 | lo;
        }
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| bad)?;
        Ok(SealingKey {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Seals `plaintext` for the row named `name`.
    pub fn seal(&self, plaintext: &[u8], name: &str) -> Result<Sealed, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SealError::Seal)?;
        Ok(Sealed {
            ciphertext: in_out,
            nonce: nonce.to_vec(),
        })
    }

    /// Opens what [`SealingKey::seal`] sealed for the row named `name`; `what` names the
    /// value in the error.
    pub fn open(
        &self,
        sealed: &Sealed,
        name: &str,
        what: &'static str,
    ) -> Result<Vec<u8>, SealError> {
        let fail = SealError::Open { what };
        let nonce: [u8; NONCE_LEN] = sealed
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| fail.clone())?;
        let mut in_out = sealed.ciphertext.clone();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| fail)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_row() {
        let key = SealingKey::from_hex(&format!("  {KEY}\n")).expect("key");
        let secret = b"-----BEGIN PRIVATE KEY-----\nMIG...\n";
        let sealed = key.seal(secret, "mta-sts.example.com").expect("seal");
        assert_ne!(
            sealed.ciphertext.as_slice(),
            secret.as_slice(),
            "not stored in the clear"
        );
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert_eq!(
            key.open(&sealed, "mta-sts.example.com", "key")
                .expect("open"),
            secret
        );
        // Two seals of the same value differ (fresh nonce).
        let again = key.seal(secret, "mta-sts.example.com").expect("seal");
        assert_ne!(again, sealed);
        // Another row, another key, or one flipped bit: refused.
        assert!(key.open(&sealed, "mta-sts.example.org", "key").is_err());
        let other = SealingKey::from_hex(&KEY.replace("00", "ff")).expect("other key");
        assert!(other.open(&sealed, "mta-sts.example.com", "key").is_err());
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert!(key.open(&altered, "mta-sts.example.com", "key").is_err());
        let mut short_nonce = sealed;
        short_nonce.nonce.pop();
        assert!(
            key.open(&short_nonce, "mta-sts.example.com", "key")
                .is_err()
        );
    }

    #[test]
    fn bad_key_files_are_refused() {
        let bad = [
            ("", "empty"),
            (&KEY[..62], "31 bytes"),
            (
                "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                "not hex",
            ),
            (
                "é00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
                "not ASCII",
            ),
        ];
        for (text, why) in bad {
            assert!(
                matches!(SealingKey::from_hex(text), Err(SealError::BadKey { .. })),
                "{why}"
            );
        }
    }
}
