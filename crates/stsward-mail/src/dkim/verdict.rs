//! The outcome of checking a report e-mail's DKIM signatures against RFC 8460 §3: one
//! verdict, and when it is not a pass, one reason that names why.

use std::fmt;

/// Where the reporting domain was read. RFC 8460 §3 asks for "a valid DKIM signature by the
/// reporting domain"; the domain a report names as its sender is the `TLS-Report-Submitter`
/// field (RFC 8460 §5.3). Without one, the Subject's `Submitter:` value stands in, and
/// without that the RFC 5322 From address's domain, since that is who claims to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DomainSource {
    /// The `TLS-Report-Submitter` header field.
    SubmitterField,
    /// The Subject's `Submitter:` value (RFC 8460 §5.3 Subject form).
    Subject,
    /// The domain of the first RFC 5322 From address.
    From,
}

impl DomainSource {
    /// The name shown to people: the field it was read from.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainSource::SubmitterField => "TLS-Report-Submitter",
            DomainSource::Subject => "Subject Submitter:",
            DomainSource::From => "From",
        }
    }
}

/// The domain a report e-mail says it comes from, lowercase A-labels without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportingDomain {
    /// The domain.
    pub domain: String,
    /// Which field it was read from.
    pub source: DomainSource,
}

impl fmt::Display for ReportingDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.domain, self.source.as_str())
    }
}

/// The DKIM verdict on one report e-mail (RFC 8460 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimVerdict {
    /// A valid signature whose `d=` is the reporting domain or a parent of it (never a bare
    /// top-level domain), without `l=`.
    Pass {
        /// The signature's `d=`.
        domain: String,
        /// The signature's `s=`.
        selector: String,
    },
    /// No signature counts; the reason says why.
    Fail(DkimFailure),
}

impl DkimVerdict {
    /// Whether the message carries a signature that RFC 8460 §3 accepts.
    pub fn is_pass(&self) -> bool {
        matches!(self, DkimVerdict::Pass { .. })
    }

    /// Whether asking again later may give another answer (a key lookup that failed for a
    /// reason other than "no such record"): a live channel may ask its peer to retry.
    pub fn is_temporary(&self) -> bool {
        matches!(self, DkimVerdict::Fail(DkimFailure::KeyLookupFailed { .. }))
    }

    /// The failure, when it is one.
    pub fn failure(&self) -> Option<&DkimFailure> {
        match self {
            DkimVerdict::Pass { .. } => None,
            DkimVerdict::Fail(failure) => Some(failure),
        }
    }
}

impl fmt::Display for DkimVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DkimVerdict::Pass { domain, selector } => {
                write!(f, "pass: signed by d={domain} s={selector}")
            }
            DkimVerdict::Fail(failure) => write!(f, "fail: {failure}"),
        }
    }
}

/// Why no DKIM signature of a report e-mail counts (RFC 8460 §3).
///
/// When a message has several signatures, the reason given is that of the signature that came
/// closest: one by the reporting domain before a foreign one, and among those a temporary
/// lookup failure first (a retry may pass), then a broken signature, a missing key, and `l=`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DkimFailure {
    /// The message has no `DKIM-Signature` field.
    NoSignature,
    /// The message names no domain to compare the signer with: no `TLS-Report-Submitter`,
    /// no Subject `Submitter:`, no From address with a domain.
    NoReportingDomain,
    /// `DKIM-Signature` fields are present, but none could be read.
    Malformed {
        /// What the DKIM parser said about the first one.
        reason: String,
    },
    /// Every readable signature is by a domain that is neither the reporting domain nor a
    /// parent of it.
    ForeignDomain {
        /// The first foreign signature's `d=`.
        signer: String,
        /// The domain it should have been.
        reporting_domain: ReportingDomain,
    },
    /// The signature's `d=` is a parent of the reporting domain, but a bare top-level domain,
    /// which anyone under it could claim to share.
    TopLevelDomain {
        /// The `d=`.
        signer: String,
        /// The reporting domain.
        reporting_domain: ReportingDomain,
    },
    /// The signature by the reporting domain covers only part of the body (`l=`), which RFC
    /// 8460 §3 forbids: anything could be appended.
    BodyLengthLimit {
        /// `d=`.
        domain: String,
        /// `s=`.
        selector: String,
    },
    /// The body is not what was signed (the `bh=` body hash differs): it changed after signing.
    BodyHashMismatch {
        /// `d=`.
        domain: String,
        /// `s=`.
        selector: String,
    },
    /// The header fields and the signature do not match the published key.
    SignatureMismatch {
        /// `d=`.
        domain: String,
        /// `s=`.
        selector: String,
    },
    /// The signature cannot count for another reason (expired `x=`, a key of an unsupported
    /// type or revoked, an `i=` outside `d=` where the key forbids it).
    Invalid {
        /// `d=`.
        domain: String,
        /// `s=`.
        selector: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// No key is published at `selector._domainkey.domain` (NXDOMAIN or no TXT record): a
    /// permanent failure.
    KeyNotFound {
        /// `d=`.
        domain: String,
        /// `s=`.
        selector: String,
        /// The name looked up.
        record: String,
    },
    /// A TXT record is published there, but none is a DKIM key that can be read.
    KeyUnusable {
        /// `d=`.
        domain: String,
        /// `s=`.
        selector: String,
        /// The name looked up.
        record: String,
        /// Why the record cannot be used.
        reason: String,
    },
    /// The key lookup failed for now (timeout, SERVFAIL, network): a temporary failure.
    KeyLookupFailed {
        /// `d=`.
        domain: String,
        /// `s=`.
        selector: String,
        /// The name looked up.
        record: String,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for DkimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DkimFailure::NoSignature => f.write_str(
                "the message has no DKIM-Signature field; RFC 8460 §3 requires one by the \
                 reporting domain",
            ),
            DkimFailure::NoReportingDomain => f.write_str(
                "the message names no reporting domain to compare the signer with (no \
                 TLS-Report-Submitter field, no Subject Submitter:, no From domain)",
            ),
            DkimFailure::Malformed { reason } => {
                write!(f, "no DKIM-Signature field can be read: {reason}")
            }
            DkimFailure::ForeignDomain {
                signer,
                reporting_domain,
            } => write!(
                f,
                "signed by the foreign domain {signer}, not by the reporting domain \
                 {reporting_domain} or a parent of it"
            ),
            DkimFailure::TopLevelDomain {
                signer,
                reporting_domain,
            } => write!(
                f,
                "signed by the top-level domain {signer}, which does not count as the \
                 reporting domain {reporting_domain}"
            ),
            DkimFailure::BodyLengthLimit { domain, selector } => write!(
                f,
                "the signature d={domain} s={selector} uses l= to sign only part of the body, \
                 which RFC 8460 §3 forbids"
            ),
            DkimFailure::BodyHashMismatch { domain, selector } => write!(
                f,
                "the signature d={domain} s={selector} is invalid: the body hash does not \
                 match (the body changed after signing)"
            ),
            DkimFailure::SignatureMismatch { domain, selector } => write!(
                f,
                "the signature d={domain} s={selector} is invalid: it does not verify with \
                 the published key"
            ),
            DkimFailure::Invalid {
                domain,
                selector,
                reason,
            } => write!(
                f,
                "the signature d={domain} s={selector} is invalid: {reason}"
            ),
            DkimFailure::KeyNotFound {
                domain,
                selector,
                record,
            } => write!(
                f,
                "the key of the signature d={domain} s={selector} is not published: no TXT \
                 record at {record} (permanent)"
            ),
            DkimFailure::KeyUnusable {
                domain,
                selector,
                record,
                reason,
            } => write!(
                f,
                "the key of the signature d={domain} s={selector} at {record} cannot be \
                 used: {reason} (permanent)"
            ),
            DkimFailure::KeyLookupFailed {
                domain,
                selector,
                record,
                reason,
            } => write!(
                f,
                "the key of the signature d={domain} s={selector} could not be looked up at \
                 {record}: {reason} (temporary)"
            ),
        }
    }
}

impl DkimFailure {
    /// How close the failing signature came to counting; the highest is reported.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            DkimFailure::NoSignature | DkimFailure::NoReportingDomain => 0,
            DkimFailure::ForeignDomain { .. } => 1,
            DkimFailure::Malformed { .. } => 2,
            DkimFailure::TopLevelDomain { .. } => 3,
            DkimFailure::BodyLengthLimit { .. } => 4,
            DkimFailure::KeyNotFound { .. } | DkimFailure::KeyUnusable { .. } => 5,
            DkimFailure::Invalid { .. } => 6,
            DkimFailure::BodyHashMismatch { .. } | DkimFailure::SignatureMismatch { .. } => 7,
            DkimFailure::KeyLookupFailed { .. } => 8,
        }
    }
}
