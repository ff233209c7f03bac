//! RFC 1035 §3.3 / RFC 4035 §4.3 — what a lookup returns: the answer, its CNAME chain and
//! DNSSEC status, or the error that stopped it.

use std::time::Duration;

use hickory_proto::dnssec::Proof;
use hickory_resolver::net::NetError as HNetError;
use thiserror::Error;

/// The DNSSEC status of an answer, in the four states of RFC 4035 §4.3. The status of a
/// chain is the weakest of its links.
///
/// A [`Lookup`] never carries `Bogus`: signed data that fails validation is a lookup error
/// ([`DnsError::DnssecBogus`]), as RFC 7672 §2.1.1 asks (""bogus" or "indeterminate" replies
/// are equated in this memo with lookup failure"). `Indeterminate` is reported when validation
/// is switched off, and when it is on but the resolver passes no DNSSEC records at all, so
/// that no chain can be built from the trust anchor: that is a property of the resolver, not
/// of the domain (the module docs of [`super`] say how the two are told apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DnssecStatus {
    /// Validation failed: signatures do not verify or expected records are missing.
    Bogus,
    /// Validation was not possible (the resolver supplies no DNSSEC records) or not done.
    Indeterminate,
    /// Provably unsigned.
    Insecure,
    /// Validated from a trust anchor.
    Secure,
}

impl DnssecStatus {
    pub(super) fn from_proof(p: Proof) -> DnssecStatus {
        match p {
            Proof::Secure => DnssecStatus::Secure,
            Proof::Insecure => DnssecStatus::Insecure,
            Proof::Bogus => DnssecStatus::Bogus,
            Proof::Indeterminate => DnssecStatus::Indeterminate,
        }
    }
}

/// What the server said about the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    /// Records of the asked type (never empty).
    Records(Vec<T>),
    /// The (final) name does not exist.
    NxDomain,
    /// The name exists but has no record of the asked type.
    NoData,
}

/// One lookup's outcome with its provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<T> {
    /// The name that was asked, without the trailing dot.
    pub name: String,
    /// The CNAME targets followed, in order; empty when the name had no CNAME.
    pub cname_chain: Vec<String>,
    /// The answer at the end of the chain.
    pub answer: Answer<T>,
    /// DNSSEC status of every record used, the weakest winning.
    pub dnssec: DnssecStatus,
}

impl<T> Lookup<T> {
    /// The records, or an empty slice for NXDOMAIN and NODATA.
    pub fn records(&self) -> &[T] {
        match &self.answer {
            Answer::Records(r) => r,
            Answer::NxDomain | Answer::NoData => &[],
        }
    }
}

/// One TXT record: its character-strings concatenated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txt {
    /// The concatenated octets.
    pub data: Vec<u8>,
    /// How many character-strings the record had.
    pub strings: usize,
}

impl Txt {
    /// The text, when it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }
}

/// One MX record (RFC 5321 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mx {
    /// Lower is preferred.
    pub preference: u16,
    /// The exchange host name, without the trailing dot (`""` for the RFC 7505 null MX `.`).
    pub exchange: String,
}

/// A lookup that produced no answer.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The name is not a valid domain name.
    #[error("{name:?} is not a valid domain name")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// The server answered SERVFAIL (with a validating upstream, often a DNSSEC failure).
    #[error("SERVFAIL for {name}")]
    ServFail {
        /// The name queried.
        name: String,
    },
    /// The server refused the query.
    #[error("REFUSED for {name}")]
    Refused {
        /// The name queried.
        name: String,
    },
    /// Another error RCODE.
    #[error("RCODE {code} for {name}")]
    Rcode {
        /// The name queried.
        name: String,
        /// The response code.
        code: u16,
    },
    /// RFC 4035 §4.3 "bogus": the resolver passes DNSSEC records, the name is under a trust
    /// anchor, and the answer (or the proof that there is none) fails validation: expired or
    /// missing signatures, a key that does not chain to the anchor.
    #[error("the answer for {name} fails DNSSEC validation (bogus)")]
    DnssecBogus {
        /// The name queried (the end of the CNAME chain followed so far).
        name: String,
    },
    /// No answer in time.
    #[error("no answer for {name} within {after:?}")]
    Timeout {
        /// The name queried.
        name: String,
        /// The time allowed.
        after: Duration,
    },
    /// A CNAME points back into its own chain.
    #[error("CNAME loop: {}", chain.join(" -> "))]
    CnameLoop {
        /// The names, from the queried name to the repeated one.
        chain: Vec<String>,
    },
    /// More than [`MAX_CNAME_CHAIN`](super::MAX_CNAME_CHAIN) CNAMEs.
    #[error("CNAME chain longer than {limit}: {}", chain.join(" -> "))]
    CnameChainTooLong {
        /// The names followed.
        chain: Vec<String>,
        /// The limit.
        limit: usize,
    },
    /// No usable answer for another reason (network, malformed message).
    #[error("DNS transport failure for {name}: {source}")]
    Transport {
        /// The name queried.
        name: String,
        /// hickory's error.
        source: HNetError,
    },
}
