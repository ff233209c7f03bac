//! RFC 8737 §3 — the TLS-ALPN-01 challenge certificate.
//!
//! Paraphrasing RFC 8737 §3 (the RFC text is not in this repository's reference folder): the
//! server answers a TLS handshake that offers the ALPN protocol `acme-tls/1` with a
//! self-signed certificate whose only subjectAltName is the dNSName being validated and
//! which carries the critical `acmeIdentifier` extension (OID 1.3.6.1.5.5.7.1.31), an
//! OCTET STRING holding the SHA-256 digest of the key authorization.
//!
//! ```text
//! Extension ::= { id-pe-acmeIdentifier, critical TRUE,
//!                 OCTET STRING (SIZE (32)) -- SHA-256(keyAuthorization) }
//! ```

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// RFC 8737 §3: the ALPN protocol a validation handshake offers (the policy host's constant).
pub use crate::host::ACME_TLS_ALPN;

/// RFC 8737 §3: the digest in the extension is SHA-256, 32 octets.
const DIGEST_LEN: usize = 32;

/// The self-signed challenge certificate for `name`, with `digest` (SHA-256 of the key
/// authorization) in the acmeIdentifier extension, and its ECDSA P-256 key, ready for a
/// rustls SNI resolver.
pub fn challenge_certificate(name: &str, digest: &[u8]) -> Result<CertifiedKey, String> {
    if digest.len() != DIGEST_LEN {
        return Err(format!(
            "key authorization digest is {} octets, RFC 8737 §3 wants SHA-256 ({DIGEST_LEN})",
            digest.len()
        ));
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("challenge key: {e}"))?;
    let mut params = CertificateParams::new(vec![name.to_owned()])
        .map_err(|e| format!("challenge certificate for {name}: {e}"))?;
    params.distinguished_name = DistinguishedName::new();
    params
        .custom_extensions
        .push(CustomExtension::new_acme_identifier(digest));
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("challenge certificate for {name}: {e}"))?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: its key check parses the certificate with webpki, which
    // refuses the critical acmeIdentifier extension it does not know.
    let signing_key = rustls::crypto::aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| format!("challenge key for {name}: {e}"))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

    /// RFC 8737 §3: id-pe-acmeIdentifier.
    const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

    #[test]
    fn rfc8737_3_certificate_has_the_name_and_a_critical_acme_identifier() {
        let digest = [7u8; 32];
        let key = challenge_certificate("mta-sts.example.test", &digest).expect("made");
        assert_eq!(key.cert.len(), 1, "one self-signed certificate");
        let (_, cert) = X509Certificate::from_der(&key.cert[0]).expect("parses");
        let mut names = Vec::new();
        let mut acme = None;
        for ext in cert.extensions() {
            if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
                for n in &san.general_names {
                    if let GeneralName::DNSName(d) = n {
                        names.push(d.to_string());
                    }
                }
            }
            if ext.oid.to_id_string() == ACME_IDENTIFIER_OID {
                acme = Some((ext.critical, ext.value.to_vec()));
            }
        }
        assert_eq!(names, ["mta-sts.example.test"]);
        let (critical, value) = acme.expect("acmeIdentifier present");
        assert!(critical, "RFC 8737 §3: the extension is critical");
        // DER OCTET STRING: tag 0x04, length 32, the digest.
        let mut expected = vec![0x04, 32];
        expected.extend_from_slice(&digest);
        assert_eq!(value, expected);
    }

    #[test]
    fn a_digest_that_is_not_sha256_is_refused_not_a_panic() {
        let err = challenge_certificate("mta-sts.example.test", &[1, 2, 3]).unwrap_err();
        assert!(err.contains("3 octets"), "{err}");
    }
}
