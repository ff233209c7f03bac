//! RFC 8461 §3.2 and §4.1 — MX patterns and MX host matching
//!
//! ```text
//! sts-policy-mx-value = ["*."] Domain          ; RFC 8461 §3.2, Domain from RFC 5321 §4.1.2
//! ```
//!
//! A pattern is a host name, or `*.` followed by a domain. The wildcard stands for exactly one
//! whole label. RFC 8461 §4.1: "the mx pattern "*.example.com" matches "mail.example.com" but
//! not "example.com" or "foo.bar.example.com"."
//!
//! Internationalised names must be written as A-labels. RFC 8461 §3.2: "In the case of
//! Internationalized Domain Names \[RFC5891\], the "mx" value MUST specify the Punycode-encoded
//! A-label \[RFC3492\] to match against, and not the Unicode-encoded U-label." A pattern written
//! in U-labels is refused ([`MxPatternReason::ULabel`], which carries the A-label form for the
//! remedy): senders compare the MX name from DNS, which is always A-labels, with the pattern
//! as written, so such a pattern never matches. MX *host* names given to
//! [`MxPattern::matches`] and [`normalize_host`] are still converted, since they come from
//! DNS or from a person, not from the policy.
//!
//! Names compare case-insensitively (RFC 4343) and a trailing root dot on either side is ignored:
//! DNS answers carry it, policy files usually do not.
//!
//! Underscores are accepted in labels although RFC 5321's `Domain` has none: real MX targets
//! such as `_dc-mx.<hash>.example.shop` exist, senders compare the MX name literally, and so a
//! pattern naming such a host does match it. Refusing it would report a working policy as broken.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::error::{Error, MxPatternReason};

/// RFC 1035 §2.3.4: a label is at most 63 octets.
pub const MAX_LABEL_OCTETS: usize = 63;
/// RFC 1035 §2.3.4: a name is at most 255 octets on the wire, 253 in text without the root dot.
pub const MAX_NAME_OCTETS: usize = 253;

/// One `mx` pattern of a policy (RFC 8461 §3.2, matched per §4.1).
///
/// The domain is stored as lowercase A-labels without a trailing dot; [`fmt::Display`] writes
/// `*.` before it for a wildcard.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MxPattern {
    wildcard: bool,
    domain: String,
}

impl MxPattern {
    /// Whether the pattern begins with `*.` (RFC 8461 §4.1).
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The domain after any `*.`: lowercase A-labels, no trailing dot (RFC 8461 §3.2).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether the MX host name `mx_host` matches this pattern (RFC 8461 §4.1).
    ///
    /// Case-insensitive, tolerant of a trailing dot, IDN-aware; a host that is not a valid
    /// name never matches.
    pub fn matches(&self, mx_host: &str) -> bool {
        let Some(host) = normalize_host(mx_host) else {
            return false;
        };
        if !self.wildcard {
            return host == self.domain;
        }
        match host.split_once('.') {
            Some((first, rest)) => !first.is_empty() && rest == self.domain,
            None => false,
        }
    }
}

/// Normalises an MX host name for comparison (RFC 8461 §4.1): lowercase A-labels, no trailing
/// dot. `None` when it is not a host name (empty, an address, an unconvertible IDN).
pub fn normalize_host(mx_host: &str) -> Option<String> {
    let name = mx_host.strip_suffix('.').unwrap_or(mx_host);
    if name.is_empty() || name.contains('*') {
        return None;
    }
    to_a_labels(name).ok()
}

impl FromStr for MxPattern {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| Error::MxPattern {
            pattern: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(fail(MxPatternReason::Empty));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(fail(MxPatternReason::Whitespace));
        }
        if s == "." {
            return Err(fail(MxPatternReason::Root));
        }
        if is_ip_literal(s) {
            return Err(fail(MxPatternReason::IpLiteral));
        }
        if let Some((_, port)) = s.rsplit_once(':')
            && !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(fail(MxPatternReason::Port(port.to_owned())));
        }
        let name = s.strip_suffix('.').unwrap_or(s);
        let (wildcard, rest) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None if name == "*" => return Err(fail(MxPatternReason::BareWildcard)),
            None => (false, name),
        };
        if wildcard && rest.is_empty() {
            return Err(fail(MxPatternReason::BareWildcard));
        }
        if rest.contains('*') {
            return Err(fail(MxPatternReason::MisplacedWildcard));
        }
        let domain = to_a_labels(rest).map_err(fail)?;
        if !rest.is_ascii() {
            let a_labels = if wildcard {
                format!("*.{domain}")
            } else {
                domain
            };
            // Suggest the A-label form only when it is a pattern itself: UTS #46 maps
            // zero-width and full-width characters away, so "\u{200b}192.0.2.1" is an IP
            // address in disguise, not a host written in U-labels.
            if let Err(Error::MxPattern { reason, .. }) = a_labels.parse::<MxPattern>() {
                return Err(fail(reason));
            }
            return Err(fail(MxPatternReason::ULabel { a_labels }));
        }
        Ok(MxPattern { wildcard, domain })
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.domain)
    }
}

fn is_ip_literal(s: &str) -> bool {
    // RFC 5321 §4.1.3 address literals: `[192.0.2.1]`, `[IPv6:2001:db8::1]`, and the
    // bracketed form people write by analogy with URLs, `[2001:db8::1]`.
    let inner = match s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        Some(inner) => inner.strip_prefix("IPv6:").unwrap_or(inner),
        None => s,
    };
    inner.parse::<Ipv4Addr>().is_ok() || inner.parse::<Ipv6Addr>().is_ok()
}

/// Converts `name` (no wildcard, no trailing dot) to lowercase A-labels and checks each label.
fn to_a_labels(name: &str) -> Result<String, MxPatternReason> {
    if name.is_empty() {
        return Err(MxPatternReason::Empty);
    }
    // Check the raw labels first so that the reason names what the author wrote, not what
    // UTS #46 mapping turned it into.
    for label in name.split('.') {
        if label.is_empty() {
            return Err(MxPatternReason::EmptyLabel);
        }
        if let Some(c) = label
            .chars()
            .find(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(MxPatternReason::InvalidCharacter(c));
        }
    }
    let ascii = if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii_cow(name.as_bytes(), idna::AsciiDenyList::EMPTY)
            .map_err(|_| MxPatternReason::Idna)?
            .into_owned()
    };
    if ascii.len() > MAX_NAME_OCTETS {
        return Err(MxPatternReason::NameTooLong(ascii.len()));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(MxPatternReason::EmptyLabel);
        }
        if label.len() > MAX_LABEL_OCTETS {
            return Err(MxPatternReason::LabelTooLong(label.to_owned()));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(MxPatternReason::InvalidCharacter(c));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(MxPatternReason::HyphenAtLabelEdge(label.to_owned()));
        }
        if label
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
        {
            // An A-label must decode; UTS #46 checks that when it sees one.
            idna::domain_to_ascii_cow(label.as_bytes(), idna::AsciiDenyList::EMPTY)
                .map_err(|_| MxPatternReason::Idna)?;
        }
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> MxPattern {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn rfc8461_3_2_example_policy_patterns_parse() {
        // The mx lines of the example policy in RFC 8461 §3.2.
        for (text, wildcard, domain) in [
            ("mail.example.com", false, "mail.example.com"),
            ("*.example.net", true, "example.net"),
            ("backupmx.example.com", false, "backupmx.example.com"),
        ] {
            let pat = p(text);
            assert_eq!(pat.is_wildcard(), wildcard, "{text}");
            assert_eq!(pat.domain(), domain, "{text}");
            assert_eq!(pat.to_string(), text);
        }
    }

    #[test]
    fn rfc8461_4_1_wildcard_matches_exactly_one_label() {
        // (pattern, host, matches, reason when it does not)
        let table: &[(&str, &str, bool, &str)] = &[
            ("*.example.com", "mx1.example.com", true, ""),
            ("*.example.com", "mail.example.com", true, ""),
            ("*.example.com", "MX1.Example.COM", true, ""),
            ("*.example.com", "mx1.example.com.", true, ""),
            ("*.example.com.", "mx1.example.com", true, ""),
            (
                "*.example.com",
                "example.com",
                false,
                "the wildcard needs a label",
            ),
            ("*.example.com", "a.b.example.com", false, "only one label"),
            (
                "*.example.com",
                "foo.bar.example.com",
                false,
                "only one label",
            ),
            (
                "*.example.com",
                ".example.com",
                false,
                "empty leftmost label",
            ),
            ("*.example.com", "mx1.example.org", false, "other domain"),
            (
                "*.example.com",
                "mx1example.com",
                false,
                "no label boundary",
            ),
            ("mail.example.com", "mail.example.com", true, ""),
            ("mail.example.com", "MAIL.EXAMPLE.COM.", true, ""),
            ("MAIL.EXAMPLE.COM", "mail.example.com", true, ""),
            (
                "mail.example.com",
                "mx.mail.example.com",
                false,
                "not a wildcard",
            ),
            ("mail.example.com", "example.com", false, "different name"),
            ("mail.example.com", "", false, "empty host"),
            (
                "mail.example.com",
                "*.example.com",
                false,
                "hosts have no wildcard",
            ),
            ("*.mx.microsoft", "a-b.mx.microsoft", true, ""),
            (
                "_dc-mx.7448e41c9abd.sincerek3dprints.shop",
                "_dc-mx.7448e41c9abd.sincerek3dprints.shop.",
                true,
                "",
            ),
            (
                "329706630.pamx1.hotmail.com",
                "329706630.pamx1.hotmail.com",
                true,
                "",
            ),
        ];
        for (pattern, host, want, why) in table {
            assert_eq!(
                p(pattern).matches(host),
                *want,
                "{pattern} vs {host}: {why}"
            );
        }
    }

    #[test]
    fn rfc8461_3_2_idn_patterns_compare_as_a_labels() {
        let pat = p("*.xn--bcher-kva.example");
        assert_eq!(pat.domain(), "xn--bcher-kva.example");
        assert_eq!(pat.to_string(), "*.xn--bcher-kva.example");
        assert!(pat.matches("mx.xn--bcher-kva.example"));
        // Host names are normalised, whichever form they come in.
        assert!(pat.matches("mx.bücher.example"));
        assert!(pat.matches("MX.BÜCHER.EXAMPLE."));
        assert!(!pat.matches("xn--bcher-kva.example"));
        let alabel = p("mx.XN--BCHER-KVA.example");
        assert!(alabel.matches("mx.bücher.example"));
    }

    /// RFC 8461 §3.2: "In the case of Internationalized Domain Names [RFC5891], the "mx" value
    /// MUST specify the Punycode-encoded A-label [RFC3492] to match against, and not the
    /// Unicode-encoded U-label."
    #[test]
    fn rfc8461_3_2_u_label_patterns_are_refused_with_the_a_label_form() {
        // (pattern, the A-label form the error suggests)
        let table: &[(&str, &str)] = &[
            ("*.bücher.example", "*.xn--bcher-kva.example"),
            ("mx.bücher.example", "mx.xn--bcher-kva.example"),
            ("MX.BÜCHER.example.", "mx.xn--bcher-kva.example"),
            ("почта.пример.рф", "xn--80a1acny.xn--e1afmkfd.xn--p1ai"),
        ];
        for (text, a_labels) in table {
            match text.parse::<MxPattern>() {
                Err(Error::MxPattern {
                    reason: MxPatternReason::ULabel { a_labels: got },
                    ..
                }) => {
                    assert_eq!(&got, a_labels, "{text:?}");
                    assert!(p(&got).matches(&got.replace("*.", "mx.")), "{got}");
                }
                other => panic!("{text:?} must be refused as U-labels, got {other:?}"),
            }
        }
    }

    #[test]
    fn rfc8461_3_2_bad_patterns_are_refused_with_a_reason() {
        use MxPatternReason as R;
        // (pattern, reason)
        let table: &[(&str, MxPatternReason)] = &[
            ("", R::Empty),
            (".", R::Root),
            ("*", R::BareWildcard),
            ("*.", R::BareWildcard),
            ("192.0.2.1", R::IpLiteral),
            ("[2001:db8::1]", R::IpLiteral),
            ("2001:db8::1", R::IpLiteral),
            ("[192.0.2.1]", R::IpLiteral),
            ("mx.example.com:25", R::Port("25".into())),
            ("mx.*.example.com", R::MisplacedWildcard),
            ("alt*.google.com", R::MisplacedWildcard),
            ("*mx.example.com", R::MisplacedWildcard),
            ("**.example.com", R::MisplacedWildcard),
            ("*.*.example.com", R::MisplacedWildcard),
            ("mx.example.com*", R::MisplacedWildcard),
            ("mx .example.com", R::Whitespace),
            (" mx.example.com", R::Whitespace),
            ("mx.example.com\t", R::Whitespace),
            ("mx1.your_domain.tld      # 2. Add", R::Whitespace),
            ("[mx]", R::InvalidCharacter('[')),
            ("mx..example.com", R::EmptyLabel),
            (".example.com", R::EmptyLabel),
            ("mx.example.com..", R::EmptyLabel),
            ("-mx.example.com", R::HyphenAtLabelEdge("-mx".into())),
            ("mx-.example.com", R::HyphenAtLabelEdge("mx-".into())),
            ("mx@example.com", R::InvalidCharacter('@')),
            ("mx.example.com/", R::InvalidCharacter('/')),
            ("xn--zz.example", R::Idna),
            // fuzz/regressions/policy_parse/display-reparse-fails-with-ip-literal-mx-…: the
            // U-labels map to an IP address, so that is the reason, not "write it as A-labels".
            ("\u{200b}192.0.2.1\u{200b}", R::IpLiteral),
            ("\u{ff11}\u{ff19}\u{ff12}.0.2.1", R::IpLiteral),
        ];
        for (text, reason) in table {
            match text.parse::<MxPattern>() {
                Err(Error::MxPattern { pattern, reason: r }) => {
                    assert_eq!(&r, reason, "{text:?}");
                    assert_eq!(pattern, *text);
                }
                other => panic!("{text:?} should fail with {reason:?}, got {other:?}"),
            }
        }
        let long = "a".repeat(64);
        assert!(matches!(
            format!("{long}.example").parse::<MxPattern>(),
            Err(Error::MxPattern {
                reason: R::LabelTooLong(_),
                ..
            })
        ));
        let huge = vec!["abcdefghi"; 30].join(".");
        assert!(matches!(
            huge.parse::<MxPattern>(),
            Err(Error::MxPattern {
                reason: R::NameTooLong(299),
                ..
            })
        ));
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        for (text, canonical) in [
            ("MX.Example.COM.", "mx.example.com"),
            ("*.EXAMPLE.net", "*.example.net"),
            ("localhost", "localhost"),
        ] {
            let pat = p(text);
            assert_eq!(pat.to_string(), canonical);
            assert_eq!(pat.to_string().parse::<MxPattern>(), Ok(pat));
        }
    }

    #[test]
    fn normalize_host_refuses_non_names() {
        assert_eq!(
            normalize_host("MX.Example.com."),
            Some("mx.example.com".into())
        );
        assert_eq!(normalize_host(""), None);
        assert_eq!(normalize_host("."), None);
        assert_eq!(normalize_host("a..b"), None);
    }
}
