//! RFC 8461 §4.2 / RFC 6125 §6 — judging a presented certificate chain: trust, name, validity.
//!
//! MTA-STS asks senders to validate the MX certificate as PKIX does. RFC 8461 §4.2: "The
//! certificate presented by the receiving MTA MUST not be expired and MUST chain to a root CA
//! that is trusted by the Sending MTA.  The certificate MUST have a subject alternative name
//! (SAN) \[RFC5280\] with a DNS-ID \[RFC6125\] matching the hostname, per the rules given in
//! \[RFC6125\]." Wildcards follow RFC 6125 §6.4.3 (paraphrase: `*` as the whole left-most label
//! matches exactly one label). The policy host is held to the same three facts (RFC 8461
//! §3.3: a certificate "valid for the "mta-sts" DNS-ID \[RFC6125\] ... chain to a root CA that
//! is trusted by the Sending MTA, and be non-expired").
//!
//! This is the one place where certificate expiry is decided: [`judge`] compares the
//! caller's `now` with the leaf's period once, and [`CertVerdict::validity`] carries the
//! verdict to the checker, which does not compare the dates again.
//!
//! A checker needs all three facts at once, so [`judge`] decides them *separately*:
//! - trust is time-independent: the path is built at an instant inside the leaf's own
//!   validity period, so an expired certificate from a good CA is "trusted but expired",
//!   never "untrusted";
//! - the name is checked with webpki's reference-identifier rules (RFC 6125 §6.4);
//! - validity compares `not_before`/`not_after` with the `now` the caller passes in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use thiserror::Error;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Facts read from one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject distinguished name, RFC 4514 string form.
    pub subject: String,
    /// The issuer distinguished name, RFC 4514 string form.
    pub issuer: String,
    /// Start of the validity period.
    pub not_before: SystemTime,
    /// End of the validity period.
    pub not_after: SystemTime,
    /// DNS names and IP addresses of the subjectAltName extension, as presented.
    pub subject_alt_names: Vec<String>,
}

/// A certificate that is not parseable X.509.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("certificate is not parseable X.509 DER ({detail})")]
pub struct CertParseError {
    /// What the X.509 parser said.
    pub detail: String,
}

/// Reads the facts of one DER certificate.
pub fn inspect(cert: &CertificateDer<'_>) -> Result<CertInfo, CertParseError> {
    let (_, c) = X509Certificate::from_der(cert.as_ref()).map_err(|e| CertParseError {
        detail: e.to_string(),
    })?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push((*d).to_owned()),
                GeneralName::IPAddress(ip) => {
                    if let Some(ip) = ip_from_bytes(ip) {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        not_before: system_time(c.validity().not_before.timestamp()),
        not_after: system_time(c.validity().not_after.timestamp()),
        subject_alt_names: names,
    })
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

fn system_time(ts: i64) -> SystemTime {
    if ts >= 0 {
        UNIX_EPOCH + Duration::from_secs(ts.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(ts.unsigned_abs())
    }
}

fn unix_time(t: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(t.duration_since(UNIX_EPOCH).unwrap_or_default())
}

/// The trust anchors a chain is judged against: the Mozilla set of `webpki-roots`, extra
/// roots from `--ca-file`, or both. Built once per process and shared: a clone shares the
/// one anchor list (the Mozilla set alone is some 150 anchors).
#[derive(Debug, Clone)]
pub struct Roots {
    anchors: std::sync::Arc<[TrustAnchor<'static>]>,
}

impl Roots {
    /// Builds the anchor set. An extra root that is not a parseable certificate is an error,
    /// not silently dropped.
    pub fn new(
        use_webpki_roots: bool,
        extra: &[CertificateDer<'static>],
    ) -> Result<Roots, CertParseError> {
        let mut anchors = Vec::new();
        if use_webpki_roots {
            anchors.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for der in extra {
            let anchor = webpki::anchor_from_trusted_cert(der).map_err(|e| CertParseError {
                detail: format!("{e:?}"),
            })?;
            anchors.push(anchor.to_owned());
        }
        Ok(Roots {
            anchors: anchors.into(),
        })
    }

    /// The Mozilla set of `webpki-roots` alone.
    pub fn webpki() -> Roots {
        Roots {
            anchors: webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect(),
        }
    }

    /// True when no anchor is configured: every chain is then untrusted.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// Where `now` falls relative to the leaf's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Inside the period.
    Valid {
        /// End of the period, for "expires within 14 days" warnings.
        not_after: SystemTime,
    },
    /// After `not_after` (senders report `certificate-expired`, RFC 8460 §4.3.1).
    Expired {
        /// End of the period.
        not_after: SystemTime,
        /// The instant it was judged at.
        checked_at: SystemTime,
    },
    /// Before `not_before`.
    NotYetValid {
        /// Start of the period.
        not_before: SystemTime,
        /// The instant it was judged at.
        checked_at: SystemTime,
    },
    /// The leaf could not be parsed, so it has no known period.
    Unreadable,
}

/// Why a chain does not lead to a configured trust anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UntrustedReason {
    /// The server sent no certificate.
    EmptyChain,
    /// A certificate of the chain is not parseable.
    Unparseable,
    /// The leaf is self-signed and not itself a configured anchor.
    SelfSigned,
    /// No path to a configured anchor: unknown CA or missing intermediate.
    UnknownIssuer,
    /// A signature along the path does not verify, or uses an unsupported algorithm.
    BadSignature,
    /// The leaf is not allowed for TLS server authentication (extended key usage).
    NotForServerAuth,
    /// A CA certificate was presented as the leaf.
    CaAsLeaf,
    /// An intermediate is outside its validity period whenever the leaf is inside its own.
    IntermediateValidity,
    /// Any other path-building refusal, named as webpki names it.
    Rejected {
        /// webpki's error, in its `Debug` form.
        webpki: String,
    },
}

/// The chain is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("certificate chain is not trusted: {reason:?}")]
pub struct Untrusted {
    /// Why.
    pub reason: UntrustedReason,
}

/// The three facts about a chain, each decided on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertVerdict {
    /// Does the chain lead to a configured anchor (at some instant of the leaf's period)?
    pub trusted: Result<(), Untrusted>,
    /// Does the leaf name the host (RFC 6125 §6.4)?
    pub name_ok: bool,
    /// Is `now` inside the leaf's validity period?
    pub validity: Validity,
    /// The facts of the leaf, when it parsed.
    pub leaf: Option<CertInfo>,
}

/// One refusal, for callers such as the policy fetcher that stop at the first problem.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CertProblem {
    /// The chain does not lead to a trusted root.
    #[error("certificate not trusted: {reason:?}")]
    Untrusted {
        /// Why.
        reason: UntrustedReason,
    },
    /// The certificate expired.
    #[error("certificate expired")]
    Expired {
        /// End of the validity period.
        not_after: SystemTime,
        /// The instant it was judged at.
        checked_at: SystemTime,
    },
    /// The certificate is not valid yet.
    #[error("certificate not yet valid")]
    NotYetValid {
        /// Start of the validity period.
        not_before: SystemTime,
        /// The instant it was judged at.
        checked_at: SystemTime,
    },
    /// The certificate does not name the host.
    #[error("certificate not valid for the host name; it names {presented_names:?}")]
    NameMismatch {
        /// The subjectAltName entries the certificate carries.
        presented_names: Vec<String>,
    },
}

impl CertVerdict {
    /// True when all three facts are good.
    pub fn is_ok(&self) -> bool {
        self.problem().is_none()
    }

    /// The first problem in the order trust, validity, name: when the issuer is unknown the
    /// other facts mean little, and an expired certificate is the commonest real fault.
    pub fn problem(&self) -> Option<CertProblem> {
        if let Err(u) = &self.trusted {
            return Some(CertProblem::Untrusted {
                reason: u.reason.clone(),
            });
        }
        match self.validity {
            Validity::Valid { .. } => {}
            Validity::Expired {
                not_after,
                checked_at,
            } => {
                return Some(CertProblem::Expired {
                    not_after,
                    checked_at,
                });
            }
            Validity::NotYetValid {
                not_before,
                checked_at,
            } => {
                return Some(CertProblem::NotYetValid {
                    not_before,
                    checked_at,
                });
            }
            Validity::Unreadable => {
                return Some(CertProblem::Untrusted {
                    reason: UntrustedReason::Unparseable,
                });
            }
        }
        if !self.name_ok {
            return Some(CertProblem::NameMismatch {
                presented_names: self
                    .leaf
                    .as_ref()
                    .map(|l| l.subject_alt_names.clone())
                    .unwrap_or_default(),
            });
        }
        None
    }
}

/// Judges a chain (leaf first) presented for `host` against `roots` at `now`.
pub fn judge(
    chain: &[CertificateDer<'_>],
    host: &str,
    roots: &Roots,
    now: SystemTime,
) -> CertVerdict {
    let Some(leaf_der) = chain.first() else {
        return CertVerdict {
            trusted: Err(Untrusted {
                reason: UntrustedReason::EmptyChain,
            }),
            name_ok: false,
            validity: Validity::Unreadable,
            leaf: None,
        };
    };
    let leaf = inspect(leaf_der).ok();
    let ee = webpki::EndEntityCert::try_from(leaf_der).ok();
    let (Some(info), Some(ee)) = (leaf, ee) else {
        return CertVerdict {
            trusted: Err(Untrusted {
                reason: UntrustedReason::Unparseable,
            }),
            name_ok: false,
            validity: Validity::Unreadable,
            leaf: None,
        };
    };
    let validity = if now < info.not_before {
        Validity::NotYetValid {
            not_before: info.not_before,
            checked_at: now,
        }
    } else if now > info.not_after {
        Validity::Expired {
            not_after: info.not_after,
            checked_at: now,
        }
    } else {
        Validity::Valid {
            not_after: info.not_after,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let name_ok = ServerName::try_from(host)
        .map(|name| ee.verify_is_valid_for_subject_name(&name).is_ok())
        .unwrap_or(false);
    // Build the path at `now` clamped into the leaf's period: trust must not depend on the
    // date, which `validity` reports on its own.
    let at = now.clamp(info.not_before, info.not_after.max(info.not_before));
    let intermediates = chain.get(1..).unwrap_or(&[]);
    let trusted = ee
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &roots.anchors,
            intermediates,
            unix_time(at),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
        .map_err(|e| Untrusted {
            reason: untrusted_reason(&e, leaf_der),
        });
    CertVerdict {
        trusted,
        name_ok,
        validity,
        leaf: Some(info),
    }
}

fn untrusted_reason(e: &webpki::Error, leaf: &CertificateDer<'_>) -> UntrustedReason {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer if is_self_issued(leaf) => UntrustedReason::SelfSigned,
        E::UnknownIssuer => UntrustedReason::UnknownIssuer,
        E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch => UntrustedReason::BadSignature,
        E::RequiredEkuNotFoundContext(_) => UntrustedReason::NotForServerAuth,
        E::CaUsedAsEndEntity => UntrustedReason::CaAsLeaf,
        E::CertExpired { .. } | E::CertNotValidYet { .. } => UntrustedReason::IntermediateValidity,
        E::BadDer | E::BadDerTime | E::TrailingData(_) => UntrustedReason::Unparseable,
        other => UntrustedReason::Rejected {
            webpki: format!("{other:?}"),
        },
    }
}

fn is_self_issued(cert: &CertificateDer<'_>) -> bool {
    X509Certificate::from_der(cert.as_ref())
        .map(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests;
