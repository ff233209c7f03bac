//! What the operator decides about the delegated zone: its apex, SOA timers, name servers,
//! policy host, TTLs, default TLS-RPT address and signing key (RFC 1035 §3.3.13 SOA fields).
//!
//! Plain values, validated once by [`super::Zone::new`]; the wiring of `stsward serve` maps
//! the configuration file onto them, so this module knows nothing of files or the store.

use std::net::IpAddr;

use stsward_proto::tlsrpt::RuaUri;

use super::sign::ZoneKey;

/// The TTL of the `_mta-sts` and `_smtp._tls` TXT records unless configured otherwise: short,
/// so that a changed policy `id` reaches senders quickly (RFC 8461 §3.1: senders check the
/// TXT record to learn whether the policy changed).
pub const DEFAULT_TXT_TTL: u32 = 300;

/// The TTL of the SOA, NS, DNSKEY and address records unless configured otherwise.
pub const DEFAULT_TTL: u32 = 3600;

/// The zone delegated to stsward and everything served from it.
#[derive(Debug, Clone)]
pub struct ZoneSettings {
    /// The zone apex, e.g. `sts.provider.example` (trailing dot optional).
    pub apex: String,
    /// The SOA record's fields.
    pub soa: SoaSettings,
    /// The zone's name servers (at least one). Addresses are served as glue for those inside
    /// the zone and ignored for the others.
    pub name_servers: Vec<NameServer>,
    /// The canonical policy host name that customers point `mta-sts.<domain>` at, and its
    /// addresses. Must be inside the zone (it may be the apex itself).
    pub policy_host: NameServer,
    /// The TTL of SOA, NS, DNSKEY and address records.
    pub ttl: u32,
    /// The TTL of the `_mta-sts` and `_smtp._tls` TXT records.
    pub txt_ttl: u32,
    /// Where TLS reports go for domains without their own `rua` (RFC 8460 §3); `None`
    /// serves no `_smtp._tls` record for them.
    pub default_rua: Option<Vec<RuaUri>>,
    /// Sign answers with this key (DNSSEC, RFC 4033), or serve the zone unsigned.
    pub signing_key: Option<ZoneKey>,
}

/// The SOA fields (RFC 1035 §3.3.13). The serial given here is the first one served; every
/// change to the zone increases it by one (RFC 1982 arithmetic, wrapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoaSettings {
    /// The primary name server (`MNAME`).
    pub mname: String,
    /// The responsible mailbox, in DNS form (`hostmaster.provider.example`).
    pub rname: String,
    /// The first serial.
    pub serial: u32,
    /// Seconds between secondaries' refresh checks.
    pub refresh: u32,
    /// Seconds before a failed refresh is retried.
    pub retry: u32,
    /// Seconds after which a secondary stops answering without a refresh.
    pub expire: u32,
    /// The negative-caching TTL (RFC 2308 §4: the SOA `MINIMUM` field's meaning).
    pub minimum: u32,
}

/// A host name and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameServer {
    /// The host name (trailing dot optional).
    pub name: String,
    /// Its IPv4 and IPv6 addresses.
    pub addrs: Vec<IpAddr>,
}
