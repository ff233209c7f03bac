//! The lab's certificate authority (RFC 5280 certificates; RFC 6125 §6.4 name checks)
//!
//! One trusted root signs the lab hosts' certificates; its PEM file is what a checker gets as
//! `--ca-file`. A second root, never written to that file, signs the "untrusted" variants.
//! Validity periods are computed from a `now` passed in, so "expired" and "expiring in N
//! days" hold for whatever clock the caller uses.
//!
//! ```text
//! variant      subjectAltName      issuer            validity
//! good         the host names      lab root          now-1d .. now+90d
//! expired      the host names      lab root          now-60d .. now-1d
//! expiring N   the host names      lab root          now-1d .. now+N days
//! wrong-name   wrong-name.invalid  lab root          now-1d .. now+90d
//! self-signed  the host names      itself            now-1d .. now+90d
//! untrusted    the host names      second root       now-1d .. now+90d
//! escape-name  ESCAPE_NAME         lab root          now-1d .. now+90d   (subject CN too)
//! ```

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// The name a `wrong-name` certificate is issued for: `.invalid` can never be a lab host
/// (RFC 2606 §2).
pub const WRONG_NAME: &str = "wrong-name.invalid";

/// The only name of an `escape-name` certificate (SAN and subject CN): terminal escape
/// sequences (erase screen, red, set the window title ended by BEL, DEL) that a checker must
/// escape before printing. IA5String allows every ASCII byte, so the certificate is well
/// formed; `.invalid` keeps it from ever matching a lab host (RFC 2606 §2).
pub const ESCAPE_NAME: &str = "\x1b[2J\x1b[31mevil\x1b]0;pwned\x07\x7f.invalid";

/// The file name of the trusted root inside the lab directory.
pub const CA_FILE_NAME: &str = "ca.pem";

/// How long the ordinary leaf certificates live.
const LEAF_LIFETIME: Duration = Duration::days(90);
/// How far before `now` certificates start, so that small clock skews do not matter.
const BACKDATE: Duration = Duration::days(1);
/// How long ago an expired certificate began.
const EXPIRED_BEGAN: Duration = Duration::days(60);
/// How long the roots live.
const ROOT_LIFETIME: Duration = Duration::days(3650);

/// A CA operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// rcgen refused to make a key or certificate.
    #[error("making {what}: {source}")]
    Rcgen {
        /// What was being made.
        what: String,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
    /// The CA file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate that rcgen made does not parse back.
    #[error("parsing the certificate for {name}: {reason}")]
    Parse {
        /// The first name on the certificate.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// Which kind of certificate to issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CertVariant {
    /// Trusted, valid, for the names asked.
    Good,
    /// Validity ended a day ago.
    Expired,
    /// Validity ends in this many days.
    Expiring {
        /// Days left.
        days: u32,
    },
    /// Valid, trusted, but for [`WRONG_NAME`].
    WrongName,
    /// Signed by its own key.
    SelfSigned,
    /// Signed by a root that is not in the CA file.
    Untrusted,
    /// Valid, trusted, but its only name is [`ESCAPE_NAME`].
    EscapeName,
}

/// A certificate chain and its private key, ready for a TLS server.
#[derive(Debug)]
pub struct IssuedCert {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    not_after: OffsetDateTime,
}

impl IssuedCert {
    /// The leaf certificate.
    pub fn leaf(&self) -> Option<&CertificateDer<'static>> {
        self.chain.first()
    }

    /// The private key of the leaf.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// The private key of the leaf as PKCS#8 DER bytes (for OpenSSL).
    pub fn private_key_pkcs8(&self) -> &[u8] {
        self.key.secret_pkcs8_der()
    }

    /// The chain as PEM `CERTIFICATE` blocks, leaf first (a server's certificate file).
    pub fn chain_pem(&self) -> String {
        self.chain
            .iter()
            .map(|c| pem_block("CERTIFICATE", c.as_ref()))
            .collect()
    }

    /// The private key as a PEM `PRIVATE KEY` block (PKCS #8, RFC 5958).
    pub fn key_pem(&self) -> String {
        pem_block("PRIVATE KEY", self.key.secret_pkcs8_der())
    }

    /// When the leaf expires.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// SHA-256 of the leaf's SubjectPublicKeyInfo: the data of a `3 1 1` TLSA record
    /// (RFC 7672 §3.1.1).
    pub fn spki_sha256(&self) -> Result<[u8; 32], CaError> {
        let leaf = self.leaf().ok_or_else(|| CaError::Parse {
            name: String::new(),
            reason: "empty chain".into(),
        })?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| CaError::Parse {
                name: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Sha256::digest(cert.tbs_certificate.subject_pki.raw).into())
    }
}

struct Root {
    cert: Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl Root {
    fn new(common_name: &str, now: OffsetDateTime) -> Result<Self, CaError> {
        let key = KeyPair::generate().map_err(|source| CaError::Rcgen {
            what: format!("the key of {common_name}"),
            source,
        })?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + ROOT_LIFETIME;
        let cert = params.self_signed(&key).map_err(|source| CaError::Rcgen {
            what: format!("the certificate of {common_name}"),
            source,
        })?;
        Ok(Root {
            cert,
            issuer: Issuer::new(params, key),
        })
    }
}

/// One PEM block (RFC 7468 §2): base64 in lines of 64 characters.
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The lab CA: a trusted root and an untrusted one.
pub struct LabCa {
    trusted: Root,
    untrusted: Root,
    now: OffsetDateTime,
}

impl std::fmt::Debug for LabCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabCa").field("now", &self.now).finish()
    }
}

impl LabCa {
    /// Makes fresh roots, valid around `now`.
    pub fn new(now: OffsetDateTime) -> Result<Self, CaError> {
        Ok(LabCa {
            trusted: Root::new("stsward lab root CA", now)?,
            untrusted: Root::new("stsward lab UNTRUSTED root CA", now)?,
            now,
        })
    }

    /// The trusted root, PEM: the content of the `--ca-file`.
    pub fn ca_pem(&self) -> String {
        self.trusted.cert.pem()
    }

    /// The trusted root, DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        self.trusted.cert.der()
    }

    /// Writes the trusted root to `dir/ca.pem` and returns the path.
    pub fn write_ca_file(&self, dir: &Path) -> Result<PathBuf, CaError> {
        let path = dir.join(CA_FILE_NAME);
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, self.ca_pem()))
            .map_err(|source| CaError::Write {
                path: path.clone(),
                source,
            })?;
        Ok(path)
    }

    /// Issues a certificate of `variant` for `names` (one leaf, every name a SAN).
    pub fn issue(&self, names: &[String], variant: CertVariant) -> Result<IssuedCert, CaError> {
        let first = names.first().cloned().unwrap_or_default();
        let sans = match variant {
            CertVariant::WrongName => vec![WRONG_NAME.to_owned()],
            CertVariant::EscapeName => vec![ESCAPE_NAME.to_owned()],
            _ => names.to_vec(),
        };
        let rcgen_err = |source| CaError::Rcgen {
            what: format!("the certificate for {first}"),
            source,
        };
        let key = KeyPair::generate().map_err(rcgen_err)?;
        let mut params = CertificateParams::new(sans.clone()).map_err(rcgen_err)?;
        params.distinguished_name =
            distinguished_name(sans.first().map_or("lab host", String::as_str));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let (not_before, not_after) = match variant {
            CertVariant::Expired => (self.now - EXPIRED_BEGAN, self.now - BACKDATE),
            CertVariant::Expiring { days } => (
                self.now - BACKDATE,
                self.now + Duration::days(i64::from(days)),
            ),
            _ => (self.now - BACKDATE, self.now + LEAF_LIFETIME),
        };
        params.not_before = not_before;
        params.not_after = not_after;
        let (leaf, extra) = match variant {
            CertVariant::SelfSigned => (params.self_signed(&key).map_err(rcgen_err)?, None),
            CertVariant::Untrusted => (
                params
                    .signed_by(&key, &self.untrusted.issuer)
                    .map_err(rcgen_err)?,
                // Sending the untrusted root makes it "unknown CA", not "incomplete chain".
                Some(self.untrusted.cert.der().clone()),
            ),
            _ => (
                params
                    .signed_by(&key, &self.trusted.issuer)
                    .map_err(rcgen_err)?,
                None,
            ),
        };
        let mut chain = vec![leaf.der().clone()];
        chain.extend(extra);
        Ok(IssuedCert {
            chain,
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            not_after,
        })
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "stsward lab");
    dn
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap()
    }

    fn parse(cert: &IssuedCert) -> (String, Vec<String>, i64, i64) {
        let (_, x) = parse_x509_certificate(cert.leaf().unwrap().as_ref()).unwrap();
        let sans = x
            .subject_alternative_name()
            .unwrap()
            .map(|ext| {
                ext.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DNSName(d) => Some((*d).to_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        (
            x.issuer().to_string(),
            sans,
            x.validity().not_before.timestamp(),
            x.validity().not_after.timestamp(),
        )
    }

    #[test]
    fn pem_output_reads_back_as_the_same_chain_and_key() {
        use rustls_pki_types::pem::PemObject;
        let ca = LabCa::new(now()).unwrap();
        let cert = ca
            .issue(&["mta-sts.a.test".to_owned()], CertVariant::Good)
            .unwrap();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert.chain_pem().as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(chain, cert.chain);
        let key = PrivatePkcs8KeyDer::from_pem_slice(cert.key_pem().as_bytes()).unwrap();
        assert_eq!(key.secret_pkcs8_der(), cert.private_key_pkcs8());
        assert!(cert.chain_pem().lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn variants_differ_in_exactly_the_intended_way() {
        let ca = LabCa::new(now()).unwrap();
        let names = vec!["mx.a.test".to_owned(), "mx.b.test".to_owned()];
        let t = now().unix_timestamp();
        let day = 86_400;

        let good = parse(&ca.issue(&names, CertVariant::Good).unwrap());
        assert!(good.0.contains("stsward lab root CA"));
        assert_eq!(good.1, names);
        assert!(good.2 < t && good.3 > t + 80 * day);

        let expired = parse(&ca.issue(&names, CertVariant::Expired).unwrap());
        assert!(expired.3 < t, "expired: not_after is in the past");

        let expiring = parse(&ca.issue(&names, CertVariant::Expiring { days: 5 }).unwrap());
        assert_eq!(expiring.3, t + 5 * day);

        let wrong = parse(&ca.issue(&names, CertVariant::WrongName).unwrap());
        assert_eq!(wrong.1, vec![WRONG_NAME.to_owned()]);

        let selfsigned = parse(&ca.issue(&names, CertVariant::SelfSigned).unwrap());
        assert!(selfsigned.0.contains("mx.a.test"));

        let untrusted_cert = ca.issue(&names, CertVariant::Untrusted).unwrap();
        assert_eq!(untrusted_cert.chain.len(), 2);
        assert!(parse(&untrusted_cert).0.contains("UNTRUSTED"));
    }

    #[test]
    fn regression_issue_6_escape_name_is_the_only_name_and_carries_escapes() {
        let ca = LabCa::new(now()).unwrap();
        let names = vec!["mx.a.test".to_owned()];
        let cert = ca.issue(&names, CertVariant::EscapeName).unwrap();
        let (_, x) = parse_x509_certificate(cert.leaf().unwrap().as_ref()).unwrap();
        let (issuer, sans, ..) = parse(&cert);
        assert!(issuer.contains("stsward lab root CA"), "trusted: {issuer}");
        assert_eq!(sans, vec![ESCAPE_NAME.to_owned()]);
        assert!(ESCAPE_NAME.contains('\x1b') && ESCAPE_NAME.contains('\x07'));
        let cn: Vec<&str> = x
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .collect();
        assert_eq!(cn, vec![ESCAPE_NAME]);
    }

    #[test]
    fn ca_file_holds_only_the_trusted_root() {
        let ca = LabCa::new(now()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = ca.write_ca_file(dir.path()).unwrap();
        let pem = std::fs::read_to_string(path).unwrap();
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 1);
        assert_eq!(pem, ca.ca_pem());
    }

    #[test]
    fn rfc7672_3_1_1_spki_digest_is_stable_per_key() {
        let ca = LabCa::new(now()).unwrap();
        let cert = ca
            .issue(&["mx.a.test".to_owned()], CertVariant::Good)
            .unwrap();
        assert_eq!(cert.spki_sha256().unwrap(), cert.spki_sha256().unwrap());
        let other = ca
            .issue(&["mx.a.test".to_owned()], CertVariant::Good)
            .unwrap();
        assert_ne!(cert.spki_sha256().unwrap(), other.spki_sha256().unwrap());
    }
}
