//! The socketmap key → the destination and its RFC 8461 Policy Domain (pure).
//!
//! Postfix looks `smtp_tls_policy_maps` up by next-hop destination
//! (`../shared/reference/postfix-tls-policy.txt`, TLS_README "TLS policy table"):
//!
//! ```text
//! "The TLS policy table is indexed by the full next-hop destination, which is either the
//! recipient domain, or the verbatim next-hop specified in the transport table,
//! $local_transport, $virtual_transport, $relay_transport or $default_transport. This
//! includes any enclosing square brackets and any non-default destination server port
//! suffix."
//! ```
//!
//! | key                  | destination                         | Policy Domain  |
//! |----------------------|-------------------------------------|----------------|
//! | `example.com`        | MX lookup, port 25                  | `example.com`  |
//! | `example.com.`       | same (a trailing dot is accepted)   | `example.com`  |
//! | `Bücher.example`     | same, in A-labels                   | `xn--bcher-kva.example` |
//! | `example.com:587`    | MX lookup, port 587                 | `example.com`  |
//! | `[relay.example]`    | no MX lookup: that host, port 25    | `relay.example` |
//! | `[relay.example]:587`| no MX lookup: that host, port 587   | `relay.example` |
//! | `[192.0.2.1]`        | an address literal                  | none: NOTFOUND |
//!
//! `[host]` is an explicit next hop: a smart host. RFC 8461 §3.4: "When sending mail via a
//! "smart host" -- an administratively configured intermediate SMTP relay, which is different
//! from the message recipient's server as determined from DNS -- compliant senders MUST treat
//! the smart host domain as the Policy Domain for the purposes of policy discovery and
//! application." So the host inside the brackets is the Policy Domain, and the host itself is
//! the one "MX" its policy's `mx` patterns must cover. Address literals have no Policy Domain
//! (§3.4: "This specification does not provide a means of associating policies with email
//! addresses that employ Address Literals").
//!
//! Postfix also looks up `.example.com` when `mail.example.com` was not found (TLS_README:
//! "the parent domain starting with a leading "." is matched recursively"). That key is a
//! [`KeyRejection::ParentDomain`]: RFC 8461 §3.4, "compliant senders MUST NOT attempt to
//! fetch a policy from the parent zone".
//!
//! Anything else (an LMTP socket path, a key with spaces, a label of 64 octets) is a
//! [`KeyRejection`]. The daemon answers NOTFOUND for it, never PERM: MTA-STS has nothing to
//! say about a destination that is not a domain, and a PERM would make Postfix defer mail
//! that other tables may still route ("client TLS configuration problem" in
//! `smtp_tls_policy.c`; Postfix source, not in shared/reference, not checked here). The
//! rejection is logged.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use stsward_proto::mta_sts::normalize_host;
use thiserror::Error;

/// RFC 7672 §2.2.3: "For SMTP, the destination TCP port is typically 25".
pub const SMTP_PORT: u16 = 25;

/// A domain name is at most 253 octets in text (RFC 1035 §2.3.4; not in shared/reference,
/// not checked here); this cap is well above any next-hop key, and a longer key is junk.
const MAX_KEY_OCTETS: usize = 1024;

/// A next-hop destination that MTA-STS applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The Policy Domain (RFC 8461 §3.4): lowercase A-labels, no trailing dot.
    pub domain: String,
    /// `[host]`: an explicit next hop, not subject to MX lookup.
    pub explicit: bool,
    /// The SMTP port (25 unless the key names another).
    pub port: u16,
}

impl Destination {
    /// A plain recipient domain on port 25.
    pub fn domain(domain: impl Into<String>) -> Destination {
        Destination {
            domain: domain.into(),
            explicit: false,
            port: SMTP_PORT,
        }
    }

    /// The canonical key this destination is cached under (the key's form, normalised).
    pub fn cache_key(&self) -> String {
        match (self.explicit, self.port) {
            (false, SMTP_PORT) => self.domain.clone(),
            (false, p) => format!("{}:{p}", self.domain),
            (true, SMTP_PORT) => format!("[{}]", self.domain),
            (true, p) => format!("[{}]:{p}", self.domain),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cache_key())
    }
}

/// Why a key names no MTA-STS destination. The daemon answers NOTFOUND (module docs).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyRejection {
    /// The key is empty.
    #[error("empty key")]
    Empty,
    /// The key is longer than any next hop can be.
    #[error("key longer than {MAX_KEY_OCTETS} octets")]
    TooLong,
    /// An address literal: RFC 8461 §3.4 gives it no Policy Domain.
    #[error("address literal {0}: MTA-STS has no policy for address literals (RFC 8461 §3.4)")]
    AddressLiteral(String),
    /// The port suffix is not a number from 1 to 65535.
    #[error("bad port {0:?}")]
    BadPort(String),
    /// `[` without `]`, or text after `]` other than `:port`.
    #[error("unbalanced brackets")]
    Brackets,
    /// A key with a leading dot: Postfix's recursive parent-domain lookup (`.example.com`
    /// after `mail.example.com` was not found). RFC 8461 §3.4: "compliant senders MUST NOT
    /// attempt to fetch a policy from the parent zone".
    #[error("parent-domain lookup {0}: MTA-STS policies are never inherited (RFC 8461 §3.4)")]
    ParentDomain(String),
    /// Not a domain name (or an IDN that does not convert to A-labels).
    #[error("not a domain name")]
    NotADomain,
}

/// The Policy Domain of a cache key ([`Destination::cache_key`]'s forms: `domain`,
/// `domain:port`, `[domain]`, `[domain]:port`), without parsing it again.
pub fn domain_of_key(key: &str) -> &str {
    match key.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(d, _)| d),
        None => key.split_once(':').map_or(key, |(d, _)| d),
    }
}

/// Normalises a socketmap key into a [`Destination`] (see the module docs for the forms).
pub fn normalize_key(key: &str) -> Result<Destination, KeyRejection> {
    let key = key.trim();
    if key.is_empty() {
        return Err(KeyRejection::Empty);
    }
    if key.len() > MAX_KEY_OCTETS {
        return Err(KeyRejection::TooLong);
    }
    if key.starts_with('.') {
        return Err(KeyRejection::ParentDomain(key.to_owned()));
    }
    let (host, explicit, port) = if let Some(rest) = key.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or(KeyRejection::Brackets)?;
        let port = match after {
            "" => SMTP_PORT,
            _ => match after.strip_prefix(':') {
                Some(p) => parse_port(p)?,
                None => return Err(KeyRejection::Brackets),
            },
        };
        if is_address(inside) {
            return Err(KeyRejection::AddressLiteral(inside.to_owned()));
        }
        (inside, true, port)
    } else {
        if key.contains(['[', ']']) {
            return Err(KeyRejection::Brackets);
        }
        if is_address(key) {
            return Err(KeyRejection::AddressLiteral(key.to_owned()));
        }
        match key.rsplit_once(':') {
            Some((host, p)) => (host, false, parse_port(p)?),
            None => (key, false, SMTP_PORT),
        }
    };
    if host.is_empty()
        || is_address(host)
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/@:;,\"\\".contains(c))
    {
        return Err(if is_address(host) {
            KeyRejection::AddressLiteral(host.to_owned())
        } else {
            KeyRejection::NotADomain
        });
    }
    let domain = normalize_host(host).ok_or(KeyRejection::NotADomain)?;
    // A name of one label ("localhost") has no `mta-sts.` policy host worth asking for, but
    // it is still a name; a name that UTS #46 maps to an address is not.
    if domain.parse::<IpAddr>().is_ok() {
        return Err(KeyRejection::AddressLiteral(domain));
    }
    Ok(Destination {
        domain,
        explicit,
        port,
    })
}

fn parse_port(p: &str) -> Result<u16, KeyRejection> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(KeyRejection::BadPort(p.to_owned())),
    }
}

/// Address literals (RFC 5321 §4.1.3; not in shared/reference, not checked here) as Postfix
/// writes them: `192.0.2.1`, `ipv6:2001:db8::1`, `2001:db8::1`.
fn is_address(s: &str) -> bool {
    let inner = s
        .strip_prefix("ipv6:")
        .or_else(|| s.strip_prefix("IPv6:"))
        .unwrap_or(s);
    inner.parse::<IpAddr>().is_ok() || inner.parse::<Ipv6Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(domain: &str, explicit: bool, port: u16) -> Destination {
        Destination {
            domain: domain.to_owned(),
            explicit,
            port,
        }
    }

    #[test]
    fn postfix_tls_policy_table_key_forms() {
        // (key, expected, why)
        let good = [
            (
                "example.com",
                dest("example.com", false, 25),
                "a recipient domain",
            ),
            (
                "Example.COM",
                dest("example.com", false, 25),
                "names are case-insensitive",
            ),
            (
                "example.com.",
                dest("example.com", false, 25),
                "a trailing dot is accepted",
            ),
            (
                " example.com ",
                dest("example.com", false, 25),
                "surrounding space",
            ),
            (
                "example.com:587",
                dest("example.com", false, 587),
                "domain:port keeps the MX lookup",
            ),
            (
                "[relay.example]",
                dest("relay.example", true, 25),
                "RFC 8461 §3.4 smart host",
            ),
            (
                "[Relay.Example.]:2525",
                dest("relay.example", true, 2525),
                "[host]:port",
            ),
            (
                "bücher.example",
                dest("xn--bcher-kva.example", false, 25),
                "IDN to A-labels",
            ),
            (
                "XN--BCHER-KVA.example",
                dest("xn--bcher-kva.example", false, 25),
                "A-labels lowercased",
            ),
            (
                "[bücher.example]:25",
                dest("xn--bcher-kva.example", true, 25),
                "IDN smart host",
            ),
        ];
        for (key, want, why) in good {
            assert_eq!(normalize_key(key), Ok(want), "{why}: {key:?}");
        }
    }

    #[test]
    fn rfc8461_3_4_address_literals_and_junk_are_rejected() {
        let bad = [
            ("", KeyRejection::Empty, "empty"),
            (
                "[192.0.2.1]",
                KeyRejection::AddressLiteral("192.0.2.1".into()),
                "IPv4 literal",
            ),
            (
                "[ipv6:2001:db8::1]:25",
                KeyRejection::AddressLiteral("ipv6:2001:db8::1".into()),
                "IPv6 literal",
            ),
            (
                "192.0.2.1",
                KeyRejection::AddressLiteral("192.0.2.1".into()),
                "bare address",
            ),
            (
                "2001:db8::1",
                KeyRejection::AddressLiteral("2001:db8::1".into()),
                "bare IPv6",
            ),
            ("example.com:0", KeyRejection::BadPort("0".into()), "port 0"),
            (
                "example.com:smtp",
                KeyRejection::BadPort("smtp".into()),
                "service name",
            ),
            (
                "example.com:99999",
                KeyRejection::BadPort("99999".into()),
                "port out of range",
            ),
            (
                "[relay.example",
                KeyRejection::Brackets,
                "no closing bracket",
            ),
            (
                "[relay.example]x",
                KeyRejection::Brackets,
                "junk after bracket",
            ),
            ("relay]", KeyRejection::Brackets, "stray bracket"),
            (
                "/var/run/lmtp",
                KeyRejection::NotADomain,
                "an LMTP socket path",
            ),
            (
                "user@example.com",
                KeyRejection::NotADomain,
                "an address, not a domain",
            ),
            ("a b.example", KeyRejection::NotADomain, "space inside"),
            (
                "*.example.com",
                KeyRejection::NotADomain,
                "a pattern, not a name",
            ),
            ("[]", KeyRejection::NotADomain, "empty brackets"),
            (
                ".example.com",
                KeyRejection::ParentDomain(".example.com".into()),
                "RFC 8461 §3.4: Postfix's parent-domain lookup never fetches the parent's policy",
            ),
        ];
        for (key, want, why) in bad {
            assert_eq!(normalize_key(key), Err(want), "{why}: {key:?}");
        }
        let long = "a".repeat(2000);
        assert_eq!(normalize_key(&long), Err(KeyRejection::TooLong));
        let label = format!("{}.example", "a".repeat(64));
        assert_eq!(
            normalize_key(&label),
            Err(KeyRejection::NotADomain),
            "64-octet label"
        );
    }

    proptest::proptest! {
        /// No key makes the normaliser panic, and every accepted key's canonical form
        /// normalises to itself.
        #[test]
        fn any_key_is_accepted_stably_or_rejected(key in "\\PC{0,80}|\\[?[a-zA-Z0-9.:\\-]{0,40}\\]?(:[0-9]{0,6})?") {
            if let Ok(d) = normalize_key(&key) {
                proptest::prop_assert_eq!(normalize_key(&d.cache_key()), Ok(d));
            }
        }
    }

    #[test]
    fn cache_key_round_trips_the_key_form() {
        for key in [
            "example.com",
            "example.com:587",
            "[relay.example]",
            "[relay.example]:2525",
        ] {
            let d = normalize_key(key).expect("valid");
            assert_eq!(d.cache_key(), key);
            assert_eq!(domain_of_key(key), d.domain);
            assert_eq!(normalize_key(&d.cache_key()), Ok(d));
        }
    }
}
