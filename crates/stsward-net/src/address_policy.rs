//! Which addresses a tenant-requested check may connect to: a pure function over one
//! [`IpAddr`] and the operator's allowed ranges, against server-side request forgery
//! (issue 9). A check that a tenant starts over the UI or the API connects wherever the
//! domain's DNS points; by default it must never reach loopback, private, link-local,
//! shared, multicast or other non-global addresses of the install's own network.
//!
//! ```text
//! check(addr, allow) -> Verdict
//!   addr in an allowed range (or, for ::ffff:a.b.c.d and ::a.b.c.d, a.b.c.d is)  Allowed
//!   a globally reachable exception inside a special range (192.0.0.9, 2001:3::/32, …) Allowed
//!   ::ffff:0:0/96 mapped, ::/96 compatible, 64:ff9b::/96 NAT64, 2002::/16 6to4,
//!   2001::/32 Teredo: the IPv4 address inside is judged; refused means refused
//!   a special-purpose range that is not globally reachable                      Refused
//!   IPv6 outside 2000::/3 (global unicast)                                      Refused
//!   anything else                                                               Allowed
//! ```
//!
//! The ranges are those of IANA's "IPv4 Special-Purpose Address Registry" and "IPv6
//! Special-Purpose Address Registry" (RFC 6890 defines them) whose "Globally Reachable" is
//! not "True", plus multicast (RFC 5771, RFC 4291 §2.7) and IPv6 site-local (RFC 3879).
//! No file in this repository holds those registries: the table below is written from
//! memory of them (as of 2024/2025), each row naming the RFC that assigned the range.
//!
//! The function makes no connection and no DNS query. The caller applies it to every
//! address after every CNAME, and again to the address a connection is made to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address range in CIDR notation (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1` for a /32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR range did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// The part before `/` is not an IP address.
    #[error("{0:?} is not an IP address")]
    Address(String),
    /// The prefix length is not a number within the family's bits.
    #[error("prefix length {0:?} is not a number from 0 to {1}")]
    Prefix(String, u8),
    /// Bits are set after the prefix (`10.0.0.1/8`): probably a typo.
    #[error("{0} has bits set after its prefix length; the network is {1}")]
    HostBits(String, String),
}

impl Cidr {
    /// The range of `network`/`prefix`; `None` when the prefix is longer than the family's
    /// bits or bits are set after it.
    pub fn new(network: IpAddr, prefix: u8) -> Option<Cidr> {
        let cidr = Cidr { network, prefix };
        (prefix <= bits(network) && cidr.masked(network) == network).then_some(cidr)
    }

    /// The first address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `addr` is in this range (an address of the other family never is).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                self.masked(addr) == self.network
            }
            _ => false,
        }
    }

    fn masked(&self, addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.prefix))),
        }
    }
}

fn bits(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::Address(addr.chars().take(64).collect()))?;
        let max = bits(network);
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max && !p.starts_with('+'))
                .ok_or_else(|| CidrError::Prefix(p.chars().take(8).collect(), max))?,
        };
        let cidr = Cidr { network, prefix };
        let masked = cidr.masked(network);
        if masked != network {
            return Err(CidrError::HostBits(
                s.to_owned(),
                format!("{masked}/{prefix}"),
            ));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A special-purpose range that a check does not connect to by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Special {
    /// 0.0.0.0/32, ::/128 (RFC 1122 §3.2.1.3, RFC 4291 §2.5.2).
    Unspecified,
    /// 0.0.0.0/8 "this network" (RFC 791, RFC 1122 §3.2.1.3).
    ThisNetwork,
    /// 127.0.0.0/8, ::1/128 (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3).
    Loopback,
    /// 10/8, 172.16/12, 192.168/16 (RFC 1918).
    Private,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// 169.254.0.0/16 (RFC 3927), fe80::/10 (RFC 4291 §2.5.6).
    LinkLocal,
    /// 192.0.0.0/24 (RFC 6890), 2001::/23 (RFC 2928), apart from their global exceptions.
    ProtocolAssignments,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24 (RFC 5737), 2001:db8::/32 (RFC 3849),
    /// 3fff::/20 (RFC 9637).
    Documentation,
    /// 198.18.0.0/15 (RFC 2544), 2001:2::/48 (RFC 5180).
    Benchmarking,
    /// 224.0.0.0/4 (RFC 5771), ff00::/8 (RFC 4291 §2.7).
    Multicast,
    /// 255.255.255.255/32, limited broadcast (RFC 919, RFC 8190).
    Broadcast,
    /// 240.0.0.0/4, reserved for future use (RFC 1112 §4).
    Reserved,
    /// 192.88.99.0/24, the deprecated 6to4 relay anycast (RFC 7526).
    Deprecated6to4Relay,
    /// fc00::/7 unique local (RFC 4193).
    UniqueLocal,
    /// fec0::/10, deprecated site-local (RFC 3879).
    SiteLocal,
    /// 100::/64 discard-only (RFC 6666).
    DiscardOnly,
    /// 64:ff9b:1::/48, local-use IPv4/IPv6 translation (RFC 8215).
    LocalTranslation,
    /// 2001:10::/28 ORCHID (RFC 4843, deprecated) and 2001:20::/28 ORCHIDv2 (RFC 7343):
    /// identifiers, not locators.
    Orchid,
    /// ::/96 IPv4-compatible IPv6, deprecated (RFC 4291 §2.5.5.1).
    Ipv4Compatible,
    /// IPv6 outside 2000::/3, the only range IANA allocates global unicast from (RFC 4291
    /// §2.4, IANA IPv6 address space).
    NotGlobalUnicast,
}

impl Special {
    /// A stable, machine-readable name.
    pub fn code(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::ThisNetwork => "this-network",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedAddressSpace => "shared-address-space",
            Self::LinkLocal => "link-local",
            Self::ProtocolAssignments => "protocol-assignments",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Reserved => "reserved",
            Self::Deprecated6to4Relay => "deprecated-6to4-relay",
            Self::UniqueLocal => "unique-local",
            Self::SiteLocal => "site-local",
            Self::DiscardOnly => "discard-only",
            Self::LocalTranslation => "local-translation",
            Self::Orchid => "orchid",
            Self::Ipv4Compatible => "ipv4-compatible",
            Self::NotGlobalUnicast => "not-global-unicast",
        }
    }

    /// What the range is, for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unspecified => "the unspecified address",
            Self::ThisNetwork => "a \"this network\" address (0.0.0.0/8)",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address (RFC 1918)",
            Self::SharedAddressSpace => "a shared (carrier-grade NAT) address (100.64.0.0/10)",
            Self::LinkLocal => "a link-local address",
            Self::ProtocolAssignments => "an IETF protocol assignment, not globally reachable",
            Self::Documentation => "a documentation address",
            Self::Benchmarking => "a benchmarking address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the limited broadcast address",
            Self::Reserved => "a reserved address (240.0.0.0/4)",
            Self::Deprecated6to4Relay => "the deprecated 6to4 relay anycast (192.88.99.0/24)",
            Self::UniqueLocal => "a unique local address (fc00::/7)",
            Self::SiteLocal => "a deprecated site-local address (fec0::/10)",
            Self::DiscardOnly => "a discard-only address (100::/64)",
            Self::LocalTranslation => "a local-use translation address (64:ff9b:1::/48)",
            Self::Orchid => "an ORCHID identifier, not a locator",
            Self::Ipv4Compatible => "a deprecated IPv4-compatible IPv6 address (::/96)",
            Self::NotGlobalUnicast => "outside IPv6 global unicast (2000::/3)",
        }
    }
}

/// How an IPv6 address carries an IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Embedding {
    /// ::ffff:a.b.c.d (RFC 4291 §2.5.5.2): a socket connects to a.b.c.d itself.
    Ipv4Mapped,
    /// ::a.b.c.d (RFC 4291 §2.5.5.1, deprecated).
    Ipv4Compatible,
    /// 64:ff9b::a.b.c.d, the NAT64 well-known prefix (RFC 6052 §2.1).
    Nat64,
    /// 2002:AABB:CCDD::/48 (RFC 3056 §2).
    SixToFour,
    /// 2001:0::/32 with the server's address in bits 32–63 and the client's, inverted, in
    /// bits 96–127 (RFC 4380 §4).
    Teredo,
}

impl Embedding {
    /// A stable, machine-readable name.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ipv4Mapped => "ipv4-mapped",
            Self::Ipv4Compatible => "ipv4-compatible",
            Self::Nat64 => "nat64",
            Self::SixToFour => "6to4",
            Self::Teredo => "teredo",
        }
    }
}

/// Why an address is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Refusal {
    /// The range it is in (for an embedding, the range of the IPv4 address inside).
    pub range: Special,
    /// The IPv4 address an IPv6 address carries, and how, when that is what was refused.
    pub via: Option<(Embedding, Ipv4Addr)>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.via {
            None => f.write_str(self.range.describe()),
            Some((form, v4)) => write!(
                f,
                "carries {v4} ({} form), {}",
                form.code(),
                self.range.describe()
            ),
        }
    }
}

/// The answer for one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// A globally reachable address: connect.
    Allowed,
    /// Special, but inside a range the operator allowed: connect.
    AllowedByConfig(Cidr),
    /// Never connect; the check reports a finding instead.
    Refused(Refusal),
}

impl Verdict {
    /// Whether a connection may be made.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Verdict::Refused(_))
    }
}

/// One row of a range table: network, prefix length, range.
type Row4 = (u32, u8, Special);
type Row6 = (u128, u8, Special);

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

const fn v6(s: [u16; 8]) -> u128 {
    ((s[0] as u128) << 112)
        | ((s[1] as u128) << 96)
        | ((s[2] as u128) << 80)
        | ((s[3] as u128) << 64)
        | ((s[4] as u128) << 48)
        | ((s[5] as u128) << 32)
        | ((s[6] as u128) << 16)
        | (s[7] as u128)
}

/// Globally reachable exceptions inside refused IPv4 ranges (IANA registry, "Globally
/// Reachable: True"): PCP anycast (RFC 7723) and TURN anycast (RFC 8155).
const GLOBAL4: &[(u32, u8)] = &[(v4(192, 0, 0, 9), 32), (v4(192, 0, 0, 10), 32)];

/// IPv4 ranges refused, most specific first.
const SPECIAL4: &[Row4] = &[
    (v4(0, 0, 0, 0), 32, Special::Unspecified),
    (v4(0, 0, 0, 0), 8, Special::ThisNetwork),
    (v4(10, 0, 0, 0), 8, Special::Private),
    (v4(100, 64, 0, 0), 10, Special::SharedAddressSpace),
    (v4(127, 0, 0, 0), 8, Special::Loopback),
    (v4(169, 254, 0, 0), 16, Special::LinkLocal),
    (v4(172, 16, 0, 0), 12, Special::Private),
    (v4(192, 0, 0, 0), 24, Special::ProtocolAssignments),
    (v4(192, 0, 2, 0), 24, Special::Documentation),
    (v4(192, 88, 99, 0), 24, Special::Deprecated6to4Relay),
    (v4(192, 168, 0, 0), 16, Special::Private),
    (v4(198, 18, 0, 0), 15, Special::Benchmarking),
    (v4(198, 51, 100, 0), 24, Special::Documentation),
    (v4(203, 0, 113, 0), 24, Special::Documentation),
    (v4(224, 0, 0, 0), 4, Special::Multicast),
    (v4(255, 255, 255, 255), 32, Special::Broadcast),
    (v4(240, 0, 0, 0), 4, Special::Reserved),
];

/// Globally reachable exceptions inside 2001::/23 (IANA registry): PCP anycast (RFC 7723),
/// TURN anycast (RFC 8155), AMT (RFC 7450), AS112-v6 (RFC 7535).
const GLOBAL6: &[(u128, u8)] = &[
    (v6([0x2001, 1, 0, 0, 0, 0, 0, 1]), 128),
    (v6([0x2001, 1, 0, 0, 0, 0, 0, 2]), 128),
    (v6([0x2001, 3, 0, 0, 0, 0, 0, 0]), 32),
    (v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0]), 48),
];

/// IPv6 ranges refused, most specific first (the embedding prefixes are handled before).
const SPECIAL6: &[Row6] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0]), 128, Special::Unspecified),
    (v6([0, 0, 0, 0, 0, 0, 0, 1]), 128, Special::Loopback),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]),
        48,
        Special::LocalTranslation,
    ),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64, Special::DiscardOnly),
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0]), 48, Special::Benchmarking),
    (v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0]), 28, Special::Orchid),
    (v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0]), 28, Special::Orchid),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0]),
        23,
        Special::ProtocolAssignments,
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]),
        32,
        Special::Documentation,
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]),
        20,
        Special::Documentation,
    ),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7, Special::UniqueLocal),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10, Special::LinkLocal),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0]), 10, Special::SiteLocal),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), 8, Special::Multicast),
];

fn in4(addr: u32, net: u32, prefix: u8) -> bool {
    addr & mask32(prefix) == net
}

fn in6(addr: u128, net: u128, prefix: u8) -> bool {
    addr & mask128(prefix) == net
}

/// Judges `addr`: may a tenant-requested check connect to it, given the operator's
/// `allow`ed ranges? See the module docs for the order of the rules.
pub fn check(addr: IpAddr, allow: &[Cidr]) -> Verdict {
    if let Some(range) = allow.iter().find(|c| c.contains(addr)) {
        return Verdict::AllowedByConfig(*range);
    }
    match addr {
        IpAddr::V4(a) => match special4(a) {
            Some(range) => Verdict::Refused(Refusal { range, via: None }),
            None => Verdict::Allowed,
        },
        IpAddr::V6(a) => check6(a, allow),
    }
}

/// The refused range of an IPv4 address, if any.
fn special4(addr: Ipv4Addr) -> Option<Special> {
    let a = u32::from(addr);
    if GLOBAL4.iter().any(|&(net, p)| in4(a, net, p)) {
        return None;
    }
    SPECIAL4
        .iter()
        .find(|&&(net, p, _)| in4(a, net, p))
        .map(|&(_, _, s)| s)
}

fn check6(addr: Ipv6Addr, allow: &[Cidr]) -> Verdict {
    let a = u128::from(addr);
    let refused = |range, via| Verdict::Refused(Refusal { range, via });
    let low32 = |x: u128| Ipv4Addr::from((x & 0xffff_ffff) as u32);
    // The forms whose socket reaches the IPv4 address itself: the operator's IPv4 ranges
    // apply to them as to the plain address.
    let direct = [
        (v6([0, 0, 0, 0, 0, 0xffff, 0, 0]), Embedding::Ipv4Mapped),
        (0u128, Embedding::Ipv4Compatible),
    ];
    for (net, form) in direct {
        if in6(a, net, 96) && !(form == Embedding::Ipv4Compatible && a <= 1) {
            let v4 = low32(a);
            if let Some(range) = allow.iter().find(|c| c.contains(IpAddr::V4(v4))) {
                return Verdict::AllowedByConfig(*range);
            }
            return match (special4(v4), form) {
                (Some(range), _) => refused(range, Some((form, v4))),
                (None, Embedding::Ipv4Compatible) => refused(Special::Ipv4Compatible, None),
                (None, _) => Verdict::Allowed,
            };
        }
    }
    // The forms that reach a translator or relay, which forwards to the IPv4 address inside.
    let mut carried: Vec<(Embedding, Ipv4Addr)> = Vec::with_capacity(2);
    if in6(a, v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96) {
        carried.push((Embedding::Nat64, low32(a)));
    } else if in6(a, v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16) {
        carried.push((Embedding::SixToFour, Ipv4Addr::from((a >> 80) as u32)));
    } else if in6(a, v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 32) {
        carried.push((Embedding::Teredo, Ipv4Addr::from((a >> 64) as u32)));
        carried.push((Embedding::Teredo, Ipv4Addr::from(!(a as u32))));
    }
    for (form, v4) in &carried {
        if let Some(range) = special4(*v4) {
            return refused(range, Some((*form, *v4)));
        }
    }
    if !carried.is_empty() {
        return Verdict::Allowed;
    }
    if GLOBAL6.iter().any(|&(net, p)| in6(a, net, p)) {
        return Verdict::Allowed;
    }
    if let Some(&(_, _, range)) = SPECIAL6.iter().find(|&&(net, p, _)| in6(a, net, p)) {
        return refused(range, None);
    }
    if !in6(a, v6([0x2000, 0, 0, 0, 0, 0, 0, 0]), 3) {
        return refused(Special::NotGlobalUnicast, None);
    }
    Verdict::Allowed
}

#[cfg(test)]
mod tests;
