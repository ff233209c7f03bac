//! RFC 7672 §2.2 / §3.1 / RFC 6698 §2.1 — what a TLSA lookup asks of a sender, and matching
//! TLSA records against a presented chain.
//!
//! ```text
//! TLSA RDATA = Certificate Usage (1 octet) | Selector (1) | Matching Type (1) | data
//! usage:    0 PKIX-TA  1 PKIX-EE  2 DANE-TA  3 DANE-EE      (RFC 6698 §2.1.1, RFC 7218)
//! selector: 0 Cert (full DER)  1 SPKI (SubjectPublicKeyInfo DER)     (RFC 6698 §2.1.2)
//! matching: 0 Full (exact)  1 SHA2-256  2 SHA2-512                    (RFC 6698 §2.1.3)
//! ```
//!
//! SMTP rules (RFC 7672):
//! - §3.1.1 DANE-EE(3) matches the leaf only; names and validity dates are not checked.
//! - §3.1.2 DANE-TA(2) matches any certificate of the chain, which must then lead from that
//!   trust anchor to the leaf. This module checks the link cryptographically (each issuer
//!   signs the next) at one instant at which every certificate of the path is inside its
//!   validity period, so that a path that could never be valid is refused while expiry stays
//!   the business of the caller's certificate judging. The name check of §3.2.2 is the
//!   caller's business too (`cert::judge` gives `name_ok`).
//! - §3.1.3 PKIX-TA(0) and PKIX-EE(1): "SMTP client treatment of TLSA RRs with certificate
//!   usages PKIX-TA(0) or PKIX-EE(1) is undefined.  As with any other unsupported certificate
//!   usage, SMTP clients MAY treat such records as "unusable"." This module does, as it does
//!   unknown usages, selectors and matching types.
//! - §2.2 then sorts the outcome of the TLSA lookup into four actions ([`requirement`]). An
//!   all-unusable RRset does not switch DANE off: "A "secure" non-empty TLSA RRset where all
//!   the records are unusable:  Any connection to the MTA MUST be made via TLS, but
//!   authentication is not required."
//!
//! ```text
//! TLSA lookup (RFC 7672 §2.2)                       sender must
//! secure, at least one usable record                use TLS, authenticated by the records
//! secure, non-empty, every record unusable          use TLS, not authenticated
//! insecure, or secure denial of existence           pre-DANE opportunistic TLS
//! any lookup error (incl. bogus, indeterminate)     skip the host: next MX or delay
//! ```
//!
//! This module is pure: no I/O, no clock.

use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256, Sha512};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::dns::{DnsError, DnssecStatus, Lookup};

/// The certificate usage field (RFC 6698 §2.1.1, names from RFC 7218 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsaUsage {
    /// 0: CA constraint, with PKIX validation.
    PkixTa,
    /// 1: service certificate constraint, with PKIX validation.
    PkixEe,
    /// 2: trust anchor assertion.
    DaneTa,
    /// 3: domain-issued certificate.
    DaneEe,
    /// Any other value, kept as sent.
    Unassigned(u8),
}

impl From<u8> for TlsaUsage {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::PkixTa,
            1 => Self::PkixEe,
            2 => Self::DaneTa,
            3 => Self::DaneEe,
            other => Self::Unassigned(other),
        }
    }
}

impl From<TlsaUsage> for u8 {
    fn from(v: TlsaUsage) -> Self {
        match v {
            TlsaUsage::PkixTa => 0,
            TlsaUsage::PkixEe => 1,
            TlsaUsage::DaneTa => 2,
            TlsaUsage::DaneEe => 3,
            TlsaUsage::Unassigned(other) => other,
        }
    }
}

/// The selector field (RFC 6698 §2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsaSelector {
    /// 0: the full certificate.
    Cert,
    /// 1: the DER SubjectPublicKeyInfo.
    Spki,
    /// Any other value, kept as sent.
    Unassigned(u8),
}

impl From<u8> for TlsaSelector {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::Cert,
            1 => Self::Spki,
            other => Self::Unassigned(other),
        }
    }
}

impl From<TlsaSelector> for u8 {
    fn from(v: TlsaSelector) -> Self {
        match v {
            TlsaSelector::Cert => 0,
            TlsaSelector::Spki => 1,
            TlsaSelector::Unassigned(other) => other,
        }
    }
}

/// The matching type field (RFC 6698 §2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsaMatching {
    /// 0: exact match on the selected content.
    Full,
    /// 1: SHA-256 of the selected content.
    Sha256,
    /// 2: SHA-512 of the selected content.
    Sha512,
    /// Any other value, kept as sent.
    Unassigned(u8),
}

impl From<u8> for TlsaMatching {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::Full,
            1 => Self::Sha256,
            2 => Self::Sha512,
            other => Self::Unassigned(other),
        }
    }
}

impl From<TlsaMatching> for u8 {
    fn from(v: TlsaMatching) -> Self {
        match v {
            TlsaMatching::Full => 0,
            TlsaMatching::Sha256 => 1,
            TlsaMatching::Sha512 => 2,
            TlsaMatching::Unassigned(other) => other,
        }
    }
}

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tlsa {
    /// Certificate usage.
    pub usage: TlsaUsage,
    /// Selector.
    pub selector: TlsaSelector,
    /// Matching type.
    pub matching: TlsaMatching,
    /// Certificate association data.
    pub data: Vec<u8>,
}

/// Why a TLSA record cannot be used for SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Usage 0 or 1: RFC 7672 §3.1.3 leaves their treatment undefined and lets SMTP clients
    /// treat them as unusable, which this implementation does.
    PkixUsage(TlsaUsage),
    /// A usage this implementation does not know.
    UnknownUsage(u8),
    /// A selector this implementation does not know.
    UnknownSelector(u8),
    /// A matching type this implementation does not know.
    UnknownMatching(u8),
    /// Matching type SHA-256 or SHA-512 with data of the wrong length, which can never match.
    DigestLength {
        /// The length of the data in the record.
        found: usize,
        /// The length the matching type implies.
        expected: usize,
    },
}

/// What became of one TLSA record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The record matched the certificate at `depth` (0 = leaf).
    Matched {
        /// Position in the presented chain.
        depth: usize,
    },
    /// The record matched a certificate of the chain at `depth` as DANE-TA, but the chain does
    /// not lead from it to the leaf.
    BrokenChain {
        /// Position in the presented chain of the matched trust anchor.
        depth: usize,
    },
    /// The record is usable but matched nothing.
    NoMatch,
    /// The record cannot be used for SMTP.
    Unusable(Unusable),
}

/// The overall result (RFC 7672 §2.2 and §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaneVerdict {
    /// At least one usable record matched: the server is authenticated.
    Matched,
    /// Usable records exist but none matched: RFC 7672 §3.2 "Messages MUST NOT be delivered
    /// via the SMTP server if authentication fails" (senders report `tlsa-invalid`).
    NoMatch,
    /// Every record is unusable. DANE still applies when the RRset is secure: TLS is
    /// required, authentication is not (RFC 7672 §2.2, see [`requirement`]).
    NoUsableRecords,
    /// The server presented no certificate.
    EmptyChain,
}

/// The verdict and one outcome per record, in the order of the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaneOutcome {
    /// The overall verdict.
    pub verdict: DaneVerdict,
    /// One entry per input record.
    pub records: Vec<RecordOutcome>,
}

/// What a sender must do with one MX host after its TLSA lookup (RFC 7672 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsaRequirement {
    /// "A "secure" TLSA RRset with at least one usable record": TLS, authenticated with the
    /// records; failing that, the next MX or delayed delivery.
    AuthenticatedTls,
    /// "A "secure" non-empty TLSA RRset where all the records are unusable": TLS is still
    /// required, "but authentication is not required".
    EncryptedTls,
    /// "An "insecure" TLSA RRset or DNSSEC-authenticated denial of existence of the TLSA
    /// records": pre-DANE opportunistic TLS; DANE does not apply.
    Opportunistic,
    /// "Any lookup error": "Lookup errors, including "bogus" and "indeterminate" as
    /// explained in Section 2.1.1, MUST result in falling back to the next SMTP server or
    /// delayed delivery."
    LookupFailed,
}

/// The RFC 7672 §2.2 action for the outcome of a TLSA lookup.
///
/// An indeterminate answer counts as a failure here, as RFC 7672 §2.1.1 demands of a sender
/// ("this MUST be treated by the SMTP client as though a "bogus" or error result had been
/// returned"); a checker that only lacks a validating resolver says so separately.
pub fn requirement(lookup: Result<&Lookup<Tlsa>, &DnsError>) -> TlsaRequirement {
    let Ok(lookup) = lookup else {
        return TlsaRequirement::LookupFailed;
    };
    match lookup.dnssec {
        DnssecStatus::Bogus | DnssecStatus::Indeterminate => TlsaRequirement::LookupFailed,
        DnssecStatus::Insecure => TlsaRequirement::Opportunistic,
        DnssecStatus::Secure => {
            let records = lookup.records();
            if records.is_empty() {
                TlsaRequirement::Opportunistic
            } else if records.iter().any(|r| usability(r).is_ok()) {
                TlsaRequirement::AuthenticatedTls
            } else {
                TlsaRequirement::EncryptedTls
            }
        }
    }
}

/// Whether SMTP senders can use this record: RFC 7672 §2.2 takes "usable" "in the sense of
/// Section 4.1 of \[RFC6698\]", and for SMTP that leaves usages 2 and 3 (§3.1.3 lets clients
/// treat 0 and 1 as unusable), a known selector and matching type, and a digest of the
/// right length.
pub fn is_usable(record: &Tlsa) -> bool {
    usability(record).is_ok()
}

/// Matches TLSA records against the chain a server presented (leaf first).
pub fn match_tlsa(records: &[Tlsa], chain: &[CertificateDer<'_>]) -> DaneOutcome {
    let outcomes: Vec<RecordOutcome> = records
        .iter()
        .map(|r| match usability(r) {
            Err(why) => RecordOutcome::Unusable(why),
            Ok(()) => match_one(r, chain),
        })
        .collect();
    let usable = outcomes
        .iter()
        .any(|o| !matches!(o, RecordOutcome::Unusable(_)));
    let verdict = if chain.is_empty() {
        DaneVerdict::EmptyChain
    } else if outcomes
        .iter()
        .any(|o| matches!(o, RecordOutcome::Matched { .. }))
    {
        DaneVerdict::Matched
    } else if usable {
        DaneVerdict::NoMatch
    } else {
        DaneVerdict::NoUsableRecords
    };
    DaneOutcome {
        verdict,
        records: outcomes,
    }
}

fn usability(r: &Tlsa) -> Result<(), Unusable> {
    match r.usage {
        TlsaUsage::DaneTa | TlsaUsage::DaneEe => {}
        TlsaUsage::PkixTa | TlsaUsage::PkixEe => return Err(Unusable::PkixUsage(r.usage)),
        TlsaUsage::Unassigned(v) => return Err(Unusable::UnknownUsage(v)),
    }
    if let TlsaSelector::Unassigned(v) = r.selector {
        return Err(Unusable::UnknownSelector(v));
    }
    let expected = match r.matching {
        TlsaMatching::Full => None,
        TlsaMatching::Sha256 => Some(32),
        TlsaMatching::Sha512 => Some(64),
        TlsaMatching::Unassigned(v) => return Err(Unusable::UnknownMatching(v)),
    };
    match expected {
        Some(expected) if r.data.len() != expected => Err(Unusable::DigestLength {
            found: r.data.len(),
            expected,
        }),
        _ => Ok(()),
    }
}

fn match_one(r: &Tlsa, chain: &[CertificateDer<'_>]) -> RecordOutcome {
    let candidates: &[CertificateDer<'_>] = match r.usage {
        TlsaUsage::DaneEe => chain.get(..1).unwrap_or(&[]),
        _ => chain,
    };
    for (depth, cert) in candidates.iter().enumerate() {
        if !matches_cert(r, cert) {
            continue;
        }
        if r.usage == TlsaUsage::DaneTa && !chain_leads_to_leaf(chain, depth) {
            return RecordOutcome::BrokenChain { depth };
        }
        return RecordOutcome::Matched { depth };
    }
    RecordOutcome::NoMatch
}

fn matches_cert(r: &Tlsa, cert: &CertificateDer<'_>) -> bool {
    let selected: &[u8] = match r.selector {
        TlsaSelector::Cert => cert.as_ref(),
        TlsaSelector::Spki => match X509Certificate::from_der(cert.as_ref()) {
            Ok((_, parsed)) => {
                return digest_matches(r, parsed.public_key().raw);
            }
            Err(_) => return false,
        },
        TlsaSelector::Unassigned(_) => return false,
    };
    digest_matches(r, selected)
}

fn digest_matches(r: &Tlsa, selected: &[u8]) -> bool {
    match r.matching {
        TlsaMatching::Full => selected == r.data.as_slice(),
        TlsaMatching::Sha256 => Sha256::digest(selected).as_slice() == r.data.as_slice(),
        TlsaMatching::Sha512 => Sha512::digest(selected).as_slice() == r.data.as_slice(),
        TlsaMatching::Unassigned(_) => false,
    }
}

/// RFC 7672 §3.1.2: the trust anchor at `depth` must lead to the leaf through the presented
/// intermediates. A leaf that is itself the matched anchor needs no path: the handshake
/// already proved possession of its key.
fn chain_leads_to_leaf(chain: &[CertificateDer<'_>], depth: usize) -> bool {
    if depth == 0 {
        return true;
    }
    let (Some(leaf), Some(ta), Some(intermediates)) =
        (chain.first(), chain.get(depth), chain.get(1..depth))
    else {
        return false;
    };
    let Some(at) = common_valid_instant(chain.get(..=depth).unwrap_or(&[])) else {
        return false;
    };
    let Ok(anchor) = webpki::anchor_from_trusted_cert(ta) else {
        return false;
    };
    let Ok(ee) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        intermediates,
        at,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .is_ok()
}

/// The latest `not_before` of the path, if it is not after the earliest `not_after`: an
/// instant at which every certificate of the path is valid, so that the path check does not
/// depend on today's date.
fn common_valid_instant(path: &[CertificateDer<'_>]) -> Option<UnixTime> {
    let mut latest_start = i64::MIN;
    let mut earliest_end = i64::MAX;
    for cert in path {
        let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
        latest_start = latest_start.max(parsed.validity().not_before.timestamp());
        earliest_end = earliest_end.min(parsed.validity().not_after.timestamp());
    }
    if latest_start > earliest_end {
        return None;
    }
    let secs = u64::try_from(latest_start).ok()?;
    Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        secs,
    )))
}

#[cfg(test)]
mod tests;
