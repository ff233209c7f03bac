//! The lab scenario: a TOML description of `.test` domains and the faults each one shows
//!
//! The scenario is parsed once (serde, `deny_unknown_fields`) and validated into the plain
//! structs below; the rest of the lab only ever sees validated values. The records it makes
//! up ("good" TXT records, generated policies) follow RFC 8461 §3.1 (`_mta-sts` TXT),
//! RFC 8461 §3.2 (policy file) and RFC 8460 §3 (`_smtp._tls` TXT).
//!
//! ```text
//! [lab]                       ; optional
//! address_pool = 4            ; good hosts share this many addresses (bulk scenarios)
//! dns = "plain"               ; a DNS server without DNSSEC support (default "dnssec")
//!
//! [[domain]]
//! name = "perfect.test"
//! mx = [{ host = "mx.perfect.test", preference = 10 }]
//! sts_txt = "good"            ; or a list of raw TXT strings; omitted = no record
//! tlsrpt_txt = "good"         ; or a list of raw TXT strings; omitted = no record
//! dnssec = false            ; true, "bogus" (signed, but the trust anchor is wrong), or
//!                           ; "expired" (signed, anchor right, signatures expired)
//! policy = { behaviour = "good", mode = "enforce" }   ; omitted = no policy host
//! cname = [{ name = "_mta-sts.perfect.test", target = "_mta-sts.other.test" }]
//! delegation = [{ zone = "sub.perfect.test", ns = "ns1.sub.perfect.test", glue = ["127.1.0.53"] }]
//!                           ; NS records handing a zone below the domain to another server
//!                           ; (RFC 1034 §4.2.1), with the name server's glue addresses
//! address = [{ name = "mta-sts.perfect.test", addrs = ["127.0.0.2"] }]
//!                           ; A records for names of the zone that point outside the lab
//!                           ; (a `stsward serve` hosting the domain's policy, say)
//!
//! [[mx_host]]                 ; MX hosts not declared here are "good"
//! name = "mx.perfect.test"
//! behaviour = "good"
//! tlsa = "auto"               ; or "auto-pkix-ee", "wrong", or ["3 1 1 <hex>", ...]
//! ```

use std::collections::{BTreeMap, BTreeSet};

mod parse;
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Every lab name lives under this top-level domain (RFC 2606 §2 reserves it for testing).
pub const LAB_TLD: &str = "test";

/// RFC 1035 §2.3.4: a label is at most 63 octets.
pub(crate) const MAX_LABEL_LEN: usize = 63;
/// RFC 1035 §2.3.4: a name is at most 255 octets on the wire, 253 in presentation form.
pub(crate) const MAX_NAME_LEN: usize = 253;

/// How long a `slow` policy host waits before answering unless the scenario says otherwise:
/// longer than the one-minute fetch timeout that RFC 8461 §3.3 suggests, plus margin.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(70);

/// How long a `delayed-banner` MX host waits before its banner unless the scenario says
/// otherwise.
pub const DEFAULT_BANNER_DELAY: Duration = Duration::from_secs(1);

/// How many days a `cert-expiring` certificate has left unless the scenario says otherwise:
/// inside the 14-day warning window of `spec/findings.md`.
pub const DEFAULT_EXPIRING_DAYS: u32 = 5;

/// The `max_age` of generated policies: one week (RFC 8461 §3.2 suggests weeks or more).
const GENERATED_MAX_AGE: u32 = 604_800;

/// A scenario that failed to load, naming the field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The TOML did not parse or did not match the schema (the message names the key).
    #[error("scenario TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// A domain or host name is not usable.
    #[error("{field}: {name:?} is not a usable lab name: {reason}")]
    BadName {
        /// Where the name was given, e.g. `domain[2].mx[0].host`.
        field: String,
        /// The name as written.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The same domain is declared twice.
    #[error("{field}: domain {name:?} is declared twice")]
    DuplicateDomain {
        /// Where the second declaration is.
        field: String,
        /// The repeated name.
        name: String,
    },
    /// The same MX host is declared twice.
    #[error("{field}: MX host {name:?} is declared twice")]
    DuplicateHost {
        /// Where the second declaration is.
        field: String,
        /// The repeated name.
        name: String,
    },
    /// A keyword field holds a word that is not one of the keywords.
    #[error("{field}: {value:?} is not one of {expected}")]
    BadKeyword {
        /// The field.
        field: String,
        /// What was written.
        value: String,
        /// The accepted words.
        expected: &'static str,
    },
    /// A TLSA record given as text does not parse.
    #[error("{field}: TLSA {value:?}: {reason}")]
    BadTlsa {
        /// The field.
        field: String,
        /// What was written.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A CNAME would share its owner name with other data (RFC 1034 §3.6.2).
    #[error("{field}: {name:?} has a CNAME and other records")]
    CnameConflict {
        /// The field.
        field: String,
        /// The owner name.
        name: String,
    },
    /// A field value is out of its range.
    #[error("{field}: {reason}")]
    OutOfRange {
        /// The field.
        field: String,
        /// What the range is.
        reason: &'static str,
    },
}

// ---------------------------------------------------------------------------------------------
// Validated model
// ---------------------------------------------------------------------------------------------

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scenario {
    /// The domains, in file order.
    pub domains: Vec<Domain>,
    /// Every MX host that any domain's MX records name, by lowercase name.
    pub mx_hosts: BTreeMap<String, MxHost>,
    /// When set, the good hosts (MX and policy) share this many addresses, so that thousands
    /// of domains need only a few sockets. Hosts with a fault always get their own address.
    pub address_pool: Option<usize>,
    /// `[lab] dns = "plain"`: the DNS server has no DNSSEC support at all (every zone
    /// unsigned, the DO bit ignored, no trust anchors), like a plain forwarder.
    pub plain_dns: bool,
}

/// One lab domain and the DNS zone named after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Lowercase, no trailing dot, ends in `.test`.
    pub name: String,
    /// The MX records, in file order.
    pub mx: Vec<MxRecord>,
    /// The TXT strings at `_mta-sts.<name>`, one record each.
    pub sts_txt: Vec<String>,
    /// The TXT strings at `_smtp._tls.<name>`, one record each.
    pub tlsrpt_txt: Vec<String>,
    /// CNAME records at names of this zone.
    pub cnames: Vec<Cname>,
    /// Zones below this one that are delegated to other name servers.
    pub delegations: Vec<Delegation>,
    /// A records for names of this zone served by something outside the lab.
    pub addresses: Vec<AddressRecord>,
    /// The policy host `mta-sts.<name>`, if any.
    pub policy: Option<PolicyHost>,
    /// Whether and how the zone is DNSSEC-signed.
    pub dnssec: Dnssec,
}

/// DNSSEC for one zone (RFC 4035 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dnssec {
    /// Unsigned.
    #[default]
    Off,
    /// Signed; the trust-anchor file holds the zone's key.
    Signed,
    /// Signed, but the trust-anchor file holds a different key, so validation fails.
    Bogus,
    /// Signed with the key in the trust-anchor file, but every signature expired before the
    /// lab's "now": validation fails ("bogus", RFC 4035 §4.3).
    Expired,
}

impl Domain {
    /// `mta-sts.<domain>`: the name the policy host must answer to (RFC 8461 §3.3).
    pub fn policy_host_name(&self) -> String {
        format!("mta-sts.{}", self.name)
    }
}

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    /// The exchange host (lowercase, no trailing dot).
    pub host: String,
    /// The preference.
    pub preference: u16,
}

/// One CNAME record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cname {
    /// Owner name.
    pub name: String,
    /// Canonical name.
    pub target: String,
}

/// A records for one name, pointing outside the lab (RFC 1035 §3.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRecord {
    /// Owner name, inside the domain.
    pub name: String,
    /// Its IPv4 addresses.
    pub addrs: Vec<std::net::Ipv4Addr>,
}

/// A zone cut (RFC 1034 §4.2.1): `zone` is served by `ns`, whose address is the glue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The delegated zone, below the domain.
    pub zone: String,
    /// The name server's name.
    pub ns: String,
    /// The name server's addresses, published as A records in this zone (glue).
    pub glue: Vec<std::net::Ipv4Addr>,
}

/// The policy host of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyHost {
    /// What the host does.
    pub behaviour: PolicyBehaviour,
    /// The policy body served at `/.well-known/mta-sts.txt` (bytes, exactly as served).
    pub text: String,
}

/// How a policy host misbehaves (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyBehaviour {
    /// 200, `text/plain`, the policy.
    Good,
    /// 301 to another path of the same host, which serves the policy.
    Redirect,
    /// 404.
    NotFound,
    /// 500.
    ServerError,
    /// 200 with `text/html`.
    WrongContentType,
    /// 200 with a body larger than 64 KiB.
    Oversize,
    /// Answers only after `delay`.
    Slow {
        /// How long the host waits before sending the headers.
        delay: Duration,
    },
    /// A certificate whose validity has ended.
    CertExpired,
    /// A certificate that ends within a few days.
    CertExpiring {
        /// Days left.
        days: u32,
    },
    /// A certificate for another name.
    CertWrongName,
    /// A self-signed certificate.
    CertSelfSigned,
    /// A certificate from a CA that is not in the lab's CA file.
    CertUntrusted,
    /// `mta-sts.<domain>` has no address record.
    NoAddress,
    /// An address is published, nothing listens there.
    Unreachable,
}

impl PolicyBehaviour {
    /// Whether the host runs a server with the lab's ordinary good certificate.
    pub fn is_good(self) -> bool {
        matches!(self, PolicyBehaviour::Good)
    }
}

/// One MX host and its behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    /// Lowercase, no trailing dot.
    pub name: String,
    /// What the SMTP server at this host does.
    pub behaviour: MxBehaviour,
    /// The TLSA records at `_25._tcp.<name>`.
    pub tlsa: TlsaSpec,
}

/// How an MX host misbehaves (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MxBehaviour {
    /// STARTTLS with TLS 1.2+ and a trusted certificate for the name.
    Good,
    /// EHLO does not offer STARTTLS.
    NoStarttls,
    /// Expired certificate.
    CertExpired,
    /// Certificate expiring within `days`.
    CertExpiring {
        /// Days left.
        days: u32,
    },
    /// Certificate for another name.
    CertWrongName,
    /// Self-signed certificate.
    CertSelfSigned,
    /// Certificate chaining to a CA that is not in the lab's CA file.
    CertUntrusted,
    /// Only TLS 1.0 (OpenSSL at `@SECLEVEL=0`).
    Tls10Only,
    /// TLS 1.0 as well as TLS 1.2 and 1.3.
    TlsLegacyToo,
    /// STARTTLS accepted, then garbage instead of a TLS handshake.
    HandshakeFail,
    /// An address is published, nothing listens there.
    Unreachable,
    /// The host has no address record.
    NoAddress,
    /// A host that stops answering at one step of the conversation (issue 6: a check must
    /// return within its budget whatever a host does).
    Stall(crate::smtp::Stall),
    /// The greeting is a 554 refusal whose text holds terminal escape sequences.
    EscapeGreeting,
    /// A trusted certificate whose only name holds terminal escape sequences.
    CertEscapeName,
    /// A good host that waits `delay` before its banner: an injected latency, so that tests
    /// can tell concurrent probes from sequential ones by the total time.
    DelayedBanner {
        /// How long the host waits after accepting a connection.
        delay: Duration,
    },
}

impl MxBehaviour {
    /// Whether the host runs a server with the lab's ordinary good certificate.
    pub fn is_good(self) -> bool {
        matches!(self, MxBehaviour::Good)
    }
}

/// Which TLSA records to publish for an MX host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsaSpec {
    /// No TLSA record.
    #[default]
    None,
    /// `3 1 1` of the leaf certificate the host really presents.
    Auto,
    /// `1 1 1` (PKIX-EE) of the leaf certificate the host really presents: matches, but with
    /// a usage RFC 7672 §3.1.3 advises against for SMTP.
    AutoPkixEe,
    /// `3 1 1` of a key the host does not have.
    Wrong,
    /// These records exactly.
    Explicit(Vec<TlsaRecord>),
}

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsaRecord {
    /// Certificate usage.
    pub usage: u8,
    /// Selector.
    pub selector: u8,
    /// Matching type.
    pub matching: u8,
    /// Certificate association data.
    pub data: Vec<u8>,
}

impl FromStr for TlsaRecord {
    type Err = &'static str;

    /// Parses the presentation form `usage selector matching hexdata`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split_whitespace();
        let mut number = |what: &'static str| -> Result<u8, &'static str> {
            parts.next().ok_or(what)?.parse::<u8>().map_err(|_| what)
        };
        let usage = number("usage is not a number 0-255")?;
        let selector = number("selector is not a number 0-255")?;
        let matching = number("matching type is not a number 0-255")?;
        let hex: String = parts.collect();
        if hex.is_empty() {
            return Err("association data missing");
        }
        let data = decode_hex(&hex).ok_or("association data is not hexadecimal")?;
        Ok(TlsaRecord {
            usage,
            selector,
            matching,
            data,
        })
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

/// Lowercase hexadecimal of `bytes`.
pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The generated policy for `mx_hosts` in `mode` (RFC 8461 §3.2), CRLF line endings.
pub fn generated_policy(mode: &str, mx_hosts: &[String]) -> String {
    let mut text = format!("version: STSv1\r\nmode: {mode}\r\n");
    let mut seen = BTreeSet::new();
    for host in mx_hosts {
        if seen.insert(host.as_str()) {
            text.push_str("mx: ");
            text.push_str(host);
            text.push_str("\r\n");
        }
    }
    let _ = write!(text, "max_age: {GENERATED_MAX_AGE}\r\n");
    text
}

/// A policy id (RFC 8461 §3.1: 1–32 alphanumerics) derived from the policy text, so that it
/// changes whenever the policy does.
pub fn generated_policy_id(policy_text: &str) -> String {
    let digest = Sha256::digest(policy_text.as_bytes());
    encode_hex(digest.get(..8).unwrap_or_default())
}

/// The generated `_mta-sts` record for a policy text (RFC 8461 §3.1).
pub fn generated_sts_txt(policy_text: &str) -> String {
    format!("v=STSv1; id={}", generated_policy_id(policy_text))
}

/// The generated `_smtp._tls` record for a domain (RFC 8460 §3).
pub fn generated_tlsrpt_txt(domain: &str) -> String {
    format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}")
}

/// Whether `name` is `zone` or lies below it.
pub(crate) fn in_zone(name: &str, zone: &str) -> bool {
    name == zone
        || name
            .strip_suffix(zone)
            .is_some_and(|prefix| prefix.ends_with('.'))
}
