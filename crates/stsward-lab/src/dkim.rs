//! DKIM keys for the lab's test senders (RFC 8460 §3: report e-mails must carry a DKIM
//! signature by the reporting domain)
//!
//! A [`DkimSender`] is a reporting domain with a key pair made for this run: Ed25519
//! (`k=ed25519`, RFC 8463) or RSA 2048 (`k=rsa`). It gives the TXT record to publish in a lab
//! zone, in the form of the RFC 8460 §3 sample, and signs messages with mail-auth's signer:
//!
//! ```text
//! <selector>._domainkey.<domain>  TXT  "v=DKIM1; k=ed25519; s=tlsrpt; p=<public key, base64>"
//! ```
//!
//! Keys are generated with rcgen (aws-lc-rs), already the lab's certificate machinery.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, DkimSigner};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::dns::LabRecord;

/// The header fields signed by default: the usual ones and the two RFC 8460 §5.3 fields,
/// which RFC 8460 §5.3 says "SHOULD be included in the DKIM \[RFC6376\] signature".
pub const SIGNED_FIELDS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "TLS-Report-Domain",
    "TLS-Report-Submitter",
];

/// The kind of key a test sender signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimKeyKind {
    /// Ed25519 (RFC 8463), `a=ed25519-sha256`.
    Ed25519,
    /// RSA with a 2048-bit modulus, `a=rsa-sha256`.
    Rsa2048,
}

/// A DKIM key could not be made or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DkimLabError {
    /// Key generation failed.
    #[error("generating a DKIM {kind:?} key for {domain}: {reason}")]
    Generate {
        /// The kind of key.
        kind: DkimKeyKind,
        /// The sender's domain.
        domain: String,
        /// What the crypto library said.
        reason: String,
    },
    /// Signing failed (for example a message without any of the fields to sign).
    #[error("DKIM-signing a message as d={domain} s={selector}: {reason}")]
    Sign {
        /// `d=`.
        domain: String,
        /// `s=`.
        selector: String,
        /// What mail-auth said.
        reason: String,
    },
}

/// How to sign, beyond the sender's key: the defaults make a signature RFC 8460 §3 accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// Add `l=` (the body length), which RFC 8460 §3 forbids: for tests of its refusal.
    pub body_length: bool,
    /// The header fields to sign (those present are signed).
    pub fields: Vec<String>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            body_length: false,
            fields: SIGNED_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
        }
    }
}

/// A test sender: a domain, a selector and a key pair generated for this run.
pub struct DkimSender {
    domain: String,
    selector: String,
    kind: DkimKeyKind,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

impl std::fmt::Debug for DkimSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSender")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl DkimSender {
    /// A sender signing as `d=domain`, `s=selector`, with a fresh key of `kind`.
    pub fn generate(domain: &str, selector: &str, kind: DkimKeyKind) -> Result<Self, DkimLabError> {
        let error = |reason: String| DkimLabError::Generate {
            kind,
            domain: domain.to_owned(),
            reason,
        };
        let algorithm = match kind {
            DkimKeyKind::Ed25519 => &rcgen::PKCS_ED25519,
            DkimKeyKind::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
        };
        let pair = rcgen::KeyPair::generate_for(algorithm).map_err(|e| error(e.to_string()))?;
        let pkcs8 = pair.serialize_der();
        // The public key as DKIM's p= wants it: the raw 32 octets for Ed25519 (RFC 8463),
        // the RSAPublicKey DER for RSA.
        let public = match kind {
            DkimKeyKind::Ed25519 => Ed25519Key::from_pkcs8_der(&pkcs8)
                .map_err(|e| error(e.to_string()))?
                .public_key(),
            DkimKeyKind::Rsa2048 => rsa_key(&pkcs8).map_err(error)?.public_key(),
        };
        Ok(DkimSender {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            selector: selector.to_owned(),
            kind,
            pkcs8,
            public,
        })
    }

    /// The signing domain, `d=`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The selector, `s=`.
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The kind of key.
    pub fn kind(&self) -> DkimKeyKind {
        self.kind
    }

    /// Where the key is published: `selector._domainkey.domain`.
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The key record's text, with the `s=tlsrpt` service type RFC 8460 §3 recommends.
    pub fn record_text(&self) -> String {
        let k = match self.kind {
            DkimKeyKind::Ed25519 => "ed25519",
            DkimKeyKind::Rsa2048 => "rsa",
        };
        format!(
            "v=DKIM1; k={k}; s=tlsrpt; p={}",
            BASE64.encode(&self.public)
        )
    }

    /// The key record for a lab zone (long RSA keys are split into 255-octet strings).
    pub fn txt_record(&self) -> LabRecord {
        LabRecord::Txt {
            name: self.record_name(),
            text: self.record_text(),
        }
    }

    /// `message` with a `DKIM-Signature` field by this sender put in front, signed with the
    /// default [`SignOptions`] (relaxed/relaxed canonicalisation, no `l=`).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, DkimLabError> {
        self.sign_with(message, &SignOptions::default())
    }

    /// [`sign`](Self::sign) with chosen options.
    pub fn sign_with(
        &self,
        message: &[u8],
        options: &SignOptions,
    ) -> Result<Vec<u8>, DkimLabError> {
        let error = |reason: String| DkimLabError::Sign {
            domain: self.domain.clone(),
            selector: self.selector.clone(),
            reason,
        };
        let header = match self.kind {
            DkimKeyKind::Ed25519 => {
                let key =
                    Ed25519Key::from_pkcs8_der(&self.pkcs8).map_err(|e| error(e.to_string()))?;
                self.signature_field(key, message, options)
            }
            DkimKeyKind::Rsa2048 => {
                let key = rsa_key(&self.pkcs8).map_err(&error)?;
                self.signature_field(key, message, options)
            }
        }
        .map_err(error)?;
        let mut signed = header.into_bytes();
        signed.extend_from_slice(message);
        Ok(signed)
    }

    fn signature_field<K: SigningKey>(
        &self,
        key: K,
        message: &[u8],
        options: &SignOptions,
    ) -> Result<String, String> {
        DkimSigner::from_key(key)
            .domain(self.domain.clone())
            .selector(self.selector.clone())
            .headers(options.fields.iter().cloned())
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed)
            .body_length(options.body_length)
            .sign(message)
            .map(|signature| signature.to_header())
            .map_err(|e| e.to_string())
    }
}

fn rsa_key(pkcs8: &[u8]) -> Result<RsaKey<Sha256>, String> {
    RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8460_3_key_record_has_the_sample_form() {
        for kind in [DkimKeyKind::Ed25519, DkimKeyKind::Rsa2048] {
            let sender = DkimSender::generate("Sender.Test.", "lab", kind).unwrap();
            assert_eq!(sender.record_name(), "lab._domainkey.sender.test");
            let text = sender.record_text();
            let p = text
                .strip_prefix("v=DKIM1; k=")
                .and_then(|rest| rest.split_once("; s=tlsrpt; p="))
                .map(|(_, p)| p)
                .unwrap_or_else(|| panic!("{kind:?}: {text}"));
            let public = BASE64.decode(p).unwrap();
            match kind {
                DkimKeyKind::Ed25519 => assert_eq!(public.len(), 32, "raw Ed25519 key"),
                // RSAPublicKey DER: a SEQUENCE holding a 2048-bit modulus.
                DkimKeyKind::Rsa2048 => assert!(public[0] == 0x30 && public.len() > 256),
            }
        }
    }

    #[test]
    fn signing_prepends_one_dkim_signature_field() {
        let sender = DkimSender::generate("sender.test", "lab", DkimKeyKind::Ed25519).unwrap();
        let message = b"From: r@sender.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let signed = sender.sign(message).unwrap();
        let text = String::from_utf8(signed).unwrap();
        assert!(text.starts_with("DKIM-Signature: "), "{text}");
        assert!(text.ends_with("\r\n\r\nbody\r\n"));
        assert!(
            text.contains("d=sender.test") && text.contains("s=lab"),
            "{text}"
        );
        assert!(!text.contains("l="), "{text}");
        let limited = sender
            .sign_with(
                message,
                &SignOptions {
                    body_length: true,
                    ..SignOptions::default()
                },
            )
            .unwrap();
        assert!(String::from_utf8(limited).unwrap().contains("l=6"));
    }
}
