//! What the network said about one domain — plain data, judged later
//!
//! The checker works in two steps: gather (DNS, the RFC 8461 §3.3 policy fetch, the RFC 3207
//! STARTTLS probe of every MX address, RFC 7672 TLSA lookups) fills an [`Observation`]; the
//! judge turns it into findings. Keeping the observation as plain, serialisable data lets the
//! judge be tested without sockets and lets `--json` print exactly what was seen.
//!
//! ```text
//! observation = domain
//!               sts-txt     ; TXT at _mta-sts.<domain>      (RFC 8461 §3.1)
//!               policy      ; GET https://mta-sts.<domain>/.well-known/mta-sts.txt (§3.3)
//!               mx          ; MX RRset, then per host: addresses, TLSA, per address: probe
//!               tlsrpt-txt  ; TXT at _smtp._tls.<domain>   (RFC 8460 §3)
//! ```
//!
//! The model mirrors what a network layer can observe, not how it observes it: nothing here
//! names a `stsward-net` type, so the judge stays independent of the transport code.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Everything observed about one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The domain checked, lowercase, without a trailing dot.
    pub domain: String,
    /// The TXT lookup at `_mta-sts.<domain>`.
    pub sts_txt: TxtObservation,
    /// The policy fetch from `mta-sts.<domain>`.
    pub policy: PolicyObservation,
    /// The MX lookup and everything learned about each MX host.
    pub mx: MxLookup,
    /// The TXT lookup at `_smtp._tls.<domain>`.
    pub tlsrpt_txt: TxtObservation,
    /// The resolver the lookups went to, and whether it let DNSSEC be validated.
    #[serde(default)]
    pub resolver: ResolverObservation,
}

/// The resolver of a check (`--resolver`, or the system's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolverObservation {
    /// `ADDR:PORT`, or `system`.
    pub server: String,
    /// Whether DNSSEC could be validated through it.
    pub dnssec: DnssecValidation,
}

/// Whether the answers of a check could be DNSSEC-validated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnssecValidation {
    /// Validation ran: every answer is secure or insecure, or a bogus lookup error.
    #[default]
    Validated,
    /// Validation is on, but the resolver passes no DNSSEC records (no signed DNSKEY for the
    /// trust anchor, the DO bit ignored): answers are "indeterminate" (RFC 4035 §4.3), which
    /// says nothing about the domain.
    NoDnssecRecords,
    /// Validation is switched off.
    Off,
}

/// DNSSEC status of an answer, as a validating resolver reports it (RFC 4035 §4.3). A bogus
/// answer is recorded as a failed lookup ([`LookupErrorKind::Bogus`]), as RFC 7672 §2.1.1
/// equates "bogus" with lookup failure; `Bogus` here is kept for observations from elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnssecStatus {
    /// The answer validated up to a trust anchor.
    Secure,
    /// The answer is provably unsigned.
    Insecure,
    /// Validation failed.
    Bogus,
    /// The resolver could not tell: validation is off, or the resolver passes no DNSSEC
    /// records ([`DnssecValidation`] says which).
    Indeterminate,
}

/// Why a DNS lookup produced no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LookupErrorKind {
    /// The server answered SERVFAIL (often a DNSSEC failure upstream).
    ServFail,
    /// No answer in time.
    Timeout,
    /// A CNAME chain that loops.
    CnameLoop,
    /// A CNAME chain longer than the resolver follows.
    CnameTooLong,
    /// The answer failed DNSSEC validation.
    Bogus,
    /// The server refused the query.
    Refused,
    /// The resolver itself could not be used (no socket, nothing listening).
    Resolver,
    /// Anything else the resolver reported.
    Other,
}

/// A DNS lookup that failed, with the resolver's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupError {
    /// The class of failure.
    pub kind: LookupErrorKind,
    /// The resolver's description.
    pub detail: String,
}

/// The answer to a TXT query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxtObservation {
    /// The name queried, e.g. `_mta-sts.example.com`.
    pub name: String,
    /// The answer.
    #[serde(flatten)]
    pub lookup: TxtLookup,
}

/// The outcome of a TXT query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum TxtLookup {
    /// An answer (possibly empty: NXDOMAIN and NODATA both give no records).
    Answer {
        /// Each TXT record with its character-strings concatenated.
        records: Vec<String>,
        /// CNAMEs followed to reach the records, in order (empty when none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cname_chain: Vec<String>,
        /// DNSSEC status of the answer.
        dnssec: DnssecStatus,
    },
    /// No usable answer.
    Failed(LookupError),
}

/// The policy fetch of RFC 8461 §3.3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyObservation {
    /// The policy host, `mta-sts.<domain>`.
    pub host: String,
    /// The URL fetched.
    pub url: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: PolicyFetch,
}

/// The outcome of a policy fetch: the body, or the reason a sender would refuse it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum PolicyFetch {
    /// A 200 answer with `text/plain`, within the size limit.
    Fetched {
        /// The `Content-Type` header as sent.
        content_type: String,
        /// The body, as received.
        #[serde(with = "body_text")]
        body: Vec<u8>,
        /// When the policy host's certificate expires.
        #[serde(with = "rfc3339::option", default)]
        cert_not_after: Option<OffsetDateTime>,
    },
    /// `mta-sts.<domain>` has no A or AAAA record.
    NoAddress {
        /// Why, if the lookup failed rather than answered empty.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<LookupError>,
    },
    /// No TCP or TLS connection to port 443.
    Unreachable {
        /// The connection error.
        detail: String,
    },
    /// The address filter of a tenant's check refused every address of the policy host:
    /// no connection was made.
    Refused {
        /// The refusal: the address, its range, the CNAME chain.
        detail: String,
    },
    /// The certificate fails WebPKI validation for the policy host.
    Webpki {
        /// Which part of validation failed.
        problem: CertProblem,
        /// The verifier's description.
        detail: String,
    },
    /// A 3xx answer: RFC 8461 §3.3 forbids following it.
    Redirect {
        /// The status code.
        status: u16,
        /// The `Location` header, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
    /// Any other non-200 answer.
    Status {
        /// The status code.
        status: u16,
    },
    /// A media type other than `text/plain`.
    ContentType {
        /// The `Content-Type` header, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
    },
    /// A body larger than the limit.
    TooLarge {
        /// The limit applied, in bytes.
        limit: u64,
    },
    /// No complete answer in time.
    Timeout {
        /// The timeout applied, in milliseconds.
        after_ms: u64,
    },
}

/// Why a certificate fails WebPKI validation for a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertProblem {
    /// Outside its validity period (leaf or a chain certificate).
    Expired,
    /// Not yet valid.
    NotYetValid,
    /// Not valid for the name.
    Name,
    /// Self-signed, unknown issuer, incomplete chain, or otherwise untrusted.
    Untrusted,
}

/// The MX lookup for the domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum MxLookup {
    /// An answer (possibly empty).
    Answer {
        /// Each MX host, in preference order.
        hosts: Vec<MxHostObservation>,
    },
    /// No usable answer.
    Failed(LookupError),
}

/// One MX host and what was learned about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxHostObservation {
    /// The host name, lowercase, without a trailing dot; empty for a null MX (RFC 7505).
    pub host: String,
    /// The MX preference.
    pub preference: u16,
    /// The address lookup and per-address probes.
    pub addresses: AddressLookup,
    /// The TLSA lookup at `_25._tcp.<host>` (RFC 7672 §2.2).
    pub tlsa: TlsaObservation,
}

/// The A/AAAA lookup of an MX host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum AddressLookup {
    /// The addresses found (possibly none), each probed.
    Answer {
        /// One entry per address.
        addresses: Vec<AddressObservation>,
    },
    /// No usable answer.
    Failed(LookupError),
}

/// One address of an MX host and its STARTTLS probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressObservation {
    /// The address.
    pub ip: IpAddr,
    /// What the probe saw.
    pub probe: Probe,
    /// The DANE match of the presented chain against the usable TLSA records; `None` when
    /// there was nothing to match (no usable records, or no certificate seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dane: Option<DaneMatch>,
}

/// A step of the SMTP conversation before TLS (RFC 5321 §4.1, RFC 3207 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpStep {
    /// The TCP connection.
    Connect,
    /// The 220 greeting.
    Banner,
    /// The EHLO command.
    Ehlo,
    /// The STARTTLS command.
    Starttls,
    /// The TLS handshake.
    Handshake,
}

/// The STARTTLS probe of one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Probe {
    /// The conversation stopped before TLS could be judged: connection refused, a step
    /// timed out, or the server answered with an error.
    Failed {
        /// The step that failed.
        step: SmtpStep,
        /// Whether it failed by timing out.
        timed_out: bool,
        /// What happened, e.g. the server's reply.
        detail: String,
        /// The greeting, if one was received.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        banner: Option<String>,
    },
    /// The address filter of a tenant's check refused the address: no connection was made.
    Refused {
        /// The refusal: the address, its range, the CNAME chain.
        detail: String,
    },
    /// EHLO succeeded and did not offer STARTTLS.
    NoStarttls {
        /// The 220 greeting.
        banner: String,
        /// The EHLO keywords offered.
        ehlo_keywords: Vec<String>,
    },
    /// STARTTLS was offered and a TLS handshake attempted.
    Tls {
        /// The 220 greeting.
        banner: String,
        /// The EHLO keywords offered.
        ehlo_keywords: Vec<String>,
        /// What the TLS layer saw (boxed: it dwarfs the other outcomes).
        tls: Box<TlsObservation>,
    },
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TlsVersion {
    /// SSL 3.0.
    #[serde(rename = "SSLv3")]
    Ssl3,
    /// TLS 1.0.
    #[serde(rename = "TLSv1.0")]
    Tls10,
    /// TLS 1.1.
    #[serde(rename = "TLSv1.1")]
    Tls11,
    /// TLS 1.2.
    #[serde(rename = "TLSv1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "TLSv1.3")]
    Tls13,
    /// Any other wire value, kept as sent.
    #[serde(untagged)]
    Other(u16),
}

impl TlsVersion {
    /// Whether this version is deprecated (RFC 8996: TLS 1.0 and 1.1, and anything older).
    /// An unknown wire value is not known to be deprecated.
    pub fn is_deprecated(self) -> bool {
        matches!(
            self,
            TlsVersion::Ssl3 | TlsVersion::Tls10 | TlsVersion::Tls11
        )
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsVersion::Ssl3 => f.write_str("SSLv3"),
            TlsVersion::Tls10 => f.write_str("TLSv1.0"),
            TlsVersion::Tls11 => f.write_str("TLSv1.1"),
            TlsVersion::Tls12 => f.write_str("TLSv1.2"),
            TlsVersion::Tls13 => f.write_str("TLSv1.3"),
            TlsVersion::Other(v) => write!(f, "0x{v:04x}"),
        }
    }
}

/// What the TLS layer saw after STARTTLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsObservation {
    /// The handshake with a modern client (TLS 1.2 and 1.3 offered).
    pub handshake: Handshake,
    /// Deprecated versions (TLS 1.0/1.1) the server also accepted, when probed for them.
    /// `None` when the legacy probe was not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_accepted: Option<Vec<TlsVersion>>,
}

/// The outcome of the TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Handshake {
    /// The handshake completed. Certificate checks are recorded separately, so that an
    /// expired certificate is reported as such and not as a missing STARTTLS.
    Established {
        /// The negotiated version.
        version: TlsVersion,
        /// The negotiated cipher suite.
        cipher: String,
        /// Facts about the presented leaf certificate and its chain; `None` when the server
        /// presented no certificate or the leaf does not parse.
        certificate: Option<CertFacts>,
    },
    /// The handshake failed.
    Failed {
        /// The TLS layer's description (an alert, a protocol error).
        detail: String,
        /// Whether it failed by timing out.
        timed_out: bool,
    },
}

/// Facts about a presented certificate chain, each judged separately (RFC 8461 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFacts {
    /// The leaf's subject, as text.
    pub subject: String,
    /// The leaf's issuer, as text.
    pub issuer: String,
    /// DNS names in the leaf's subjectAltName.
    pub dns_names: Vec<String>,
    /// Start of the leaf's validity period.
    #[serde(with = "rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of the leaf's validity period.
    #[serde(with = "rfc3339")]
    pub not_after: OffsetDateTime,
    /// Where the check's `now` falls in the leaf's validity period, as `stsward-net`
    /// decided it (`cert::Validity`). The judge takes this verdict and does not compare the
    /// dates again; it uses them only for messages and the "expires soon" warning.
    pub validity: CertValidity,
    /// Whether the chain leads to a trusted root, judged without regard to time or name.
    pub trust: Trust,
    /// Whether the leaf is valid for the MX host name (RFC 6125 rules, one wildcard label).
    pub name_matches: bool,
    /// Number of certificates presented.
    pub chain_len: usize,
}

/// Where the check's `now` falls in the leaf's validity period (RFC 8461 §4.2: "The
/// certificate presented by the receiving MTA MUST not be expired").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertValidity {
    /// Inside the period.
    Valid,
    /// After `not_after`.
    Expired,
    /// Before `not_before`.
    NotYetValid,
}

/// Whether a chain leads to a trusted root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "trust", rename_all = "kebab-case")]
pub enum Trust {
    /// The chain leads to a trusted root.
    Trusted,
    /// It does not.
    Untrusted {
        /// Why.
        reason: UntrustedReason,
        /// The verifier's description.
        detail: String,
    },
}

/// Why a chain is not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UntrustedReason {
    /// The leaf signs itself.
    SelfSigned,
    /// The issuer is not a known CA (or an intermediate is missing).
    UnknownIssuer,
    /// A certificate in the chain (not the leaf) is outside its validity period.
    ChainExpired,
    /// Anything else (bad signature, unsupported algorithm, revoked).
    Other,
}

/// A TLSA record (RFC 6698 §2.1), with its association data in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsaRecord {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// Selector: 0 full certificate, 1 SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching_type: u8,
    /// The association data, lowercase hex.
    pub data: String,
}

impl TlsaRecord {
    /// Whether SMTP senders can use this record. RFC 7672 §3.1.3 leaves PKIX-TA (0) and
    /// PKIX-EE (1) undefined for SMTP: "SMTP clients MAY treat such records as "unusable"",
    /// and stsward does. Unknown parameters, and a digest of the wrong length for its
    /// matching type, are unusable too (the same rule as `stsward_net::dane::is_usable`).
    pub fn is_usable_for_smtp(&self) -> bool {
        let digest_ok = match self.matching_type {
            0 => true,
            1 => self.data.len() == 2 * 32,
            2 => self.data.len() == 2 * 64,
            _ => false,
        };
        matches!(self.usage, 2 | 3) && self.selector <= 1 && digest_ok
    }
}

impl std::fmt::Display for TlsaRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = self.data.get(..16).unwrap_or(&self.data);
        let ellipsis = if short.len() < self.data.len() {
            "…"
        } else {
            ""
        };
        write!(
            f,
            "{} {} {} {short}{ellipsis}",
            self.usage, self.selector, self.matching_type
        )
    }
}

/// The TLSA lookup of an MX host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsaObservation {
    /// The name queried, `_25._tcp.<host>`.
    pub name: String,
    /// DNSSEC status of the host's address records, when they were found. RFC 7672 §2.2.2:
    /// only a "secure" address answer makes senders look for TLSA records at all, so it
    /// decides how much a failed TLSA lookup matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_dnssec: Option<DnssecStatus>,
    /// The answer.
    #[serde(flatten)]
    pub lookup: TlsaLookup,
}

/// The outcome of a TLSA query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum TlsaLookup {
    /// An answer (possibly empty).
    Answer {
        /// The records.
        records: Vec<TlsaRecord>,
        /// DNSSEC status of the answer.
        dnssec: DnssecStatus,
    },
    /// No usable answer.
    Failed(LookupError),
    /// Not looked up (e.g. a null MX).
    NotChecked,
}

/// The DANE match of one address's presented chain (RFC 7672 §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaneMatch {
    /// The usable record that matched, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<TlsaRecord>,
}

/// Serialises policy bytes as text (lossy for invalid UTF-8, which the linter reports on
/// its own), because a person reading `--json` wants to see the policy, not a byte array.
mod body_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(body))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

/// Times as RFC 3339 text in JSON, the form people and `jq` read without conversion.
pub(crate) mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let text = t.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            let text: Option<String> = Option::deserialize(d)?;
            text.map(|t| OffsetDateTime::parse(&t, &Rfc3339).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}
