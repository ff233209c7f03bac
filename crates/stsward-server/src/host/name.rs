//! Host names as the policy host compares them: lowercase A-labels without a trailing dot.
//!
//! RFC 8461 §3.2: "The Policy Host DNS name is constructed by prepending "mta-sts" to the
//! Policy Domain." Names arrive from three places (the caller's domain list, the TLS SNI and
//! the HTTP `Host` header) and must compare equal whatever their case and whether they end
//! in a dot, so all three go through [`normalize`].
//!
//! ```text
//! name   = label *("." label) ["."]     ; at most 253 octets without the dot
//! label  = 1*63(ALPHA / DIGIT / "-")    ; not starting or ending with "-" (RFC 1035 §2.3.1)
//! ```
//!
//! Internationalised names must already be A-labels (`xn--…`); U-labels are refused here,
//! since converting them is the domain service's job.

use std::net::IpAddr;

/// The label prepended to the policy domain (RFC 8461 §3.2).
pub(crate) const POLICY_LABEL: &str = "mta-sts.";

/// RFC 1035 §2.3.4: at most 255 octets on the wire, 253 in text without the final dot.
const MAX_NAME_LEN: usize = 253;
/// RFC 1035 §2.3.4: labels are 63 octets or less.
const MAX_LABEL_LEN: usize = 63;

/// A name that is not a host name the policy host can serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty (or only a dot).
    #[error("empty host name")]
    Empty,
    /// Longer than 253 octets.
    #[error("host name {name:?} is longer than {MAX_NAME_LEN} octets")]
    TooLong {
        /// The name as given.
        name: String,
    },
    /// A label is empty, too long, or holds a character outside letters, digits and `-`.
    #[error("host name {name:?}: bad label {label:?} ({reason})")]
    BadLabel {
        /// The name as given.
        name: String,
        /// The offending label.
        label: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The host is not `mta-sts.<domain>`.
    #[error("{name:?} is not a policy host (it must be \"mta-sts.<domain>\")")]
    NotPolicyHost {
        /// The name as given.
        name: String,
    },
}

/// Lowercases `name`, drops one trailing dot and checks the LDH rules.
pub(crate) fn normalize(name: &str) -> Result<String, NameError> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    if trimmed.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            name: name.to_owned(),
        });
    }
    for label in trimmed.split('.') {
        let bad = |reason| NameError::BadLabel {
            name: name.to_owned(),
            label: label.to_owned(),
            reason,
        };
        if label.is_empty() {
            return Err(bad("empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(bad("longer than 63 octets"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad("only letters, digits and '-' are allowed (A-labels)"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("starts or ends with '-'"));
        }
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// The policy host of a normalized domain.
pub(crate) fn policy_host(domain: &str) -> String {
    format!("{POLICY_LABEL}{domain}")
}

/// Checks that `host` is `mta-sts.<domain>` and returns it normalized.
pub(crate) fn normalize_policy_host(host: &str) -> Result<String, NameError> {
    let host = normalize(host)?;
    match host.strip_prefix(POLICY_LABEL) {
        Some(rest) if !rest.is_empty() => Ok(host),
        _ => Err(NameError::NotPolicyHost { name: host }),
    }
}

/// The host name of an HTTP authority (`Host` header or absolute-form target): the port is
/// dropped, and IP literals (`192.0.2.1`, `[2001:db8::1]`) and malformed names give `None`.
pub(crate) fn authority_host(authority: &str) -> Option<String> {
    if authority.starts_with('[') {
        return None; // an IPv6 literal (RFC 3986 §3.2.2)
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return None,
        None => authority,
    };
    let bare = host.strip_suffix('.').unwrap_or(host);
    if bare.parse::<IpAddr>().is_ok() {
        return None;
    }
    normalize(host).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let good = [
            ("Example.COM", "example.com"),
            ("example.com.", "example.com"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("a-b.c1", "a-b.c1"),
        ];
        for (input, want) in good {
            assert_eq!(normalize(input).as_deref(), Ok(want), "{input:?}");
        }
        let long_label = format!("{}.test", "a".repeat(64));
        let long_name = format!("{}test", "abcdefghi.".repeat(26));
        let bad = [
            ("", "empty"),
            (".", "only the root dot"),
            ("a..b", "empty label"),
            ("example.com..", "two trailing dots"),
            ("-a.test", "leading hyphen"),
            ("a-.test", "trailing hyphen"),
            ("a_b.test", "underscore is not LDH"),
            ("bücher.example", "a U-label"),
            ("a b.test", "space"),
            ("a/b.test", "slash"),
            (long_label.as_str(), "a 64-octet label"),
            (long_name.as_str(), "longer than 253 octets"),
        ];
        for (input, why) in bad {
            assert!(normalize(input).is_err(), "{why}: {input:?}");
        }
    }

    #[test]
    fn rfc8461_3_2_policy_host_is_mta_sts_prefixed() {
        assert_eq!(policy_host("example.com"), "mta-sts.example.com");
        assert_eq!(
            normalize_policy_host("MTA-STS.Example.com.").as_deref(),
            Ok("mta-sts.example.com")
        );
        assert!(matches!(
            normalize_policy_host("www.example.com"),
            Err(NameError::NotPolicyHost { .. })
        ));
        assert!(matches!(
            normalize_policy_host("mta-sts"),
            Err(NameError::NotPolicyHost { .. })
        ));
    }

    #[test]
    fn authority_host_table() {
        let good = [
            ("mta-sts.example.com", "mta-sts.example.com"),
            ("MTA-STS.Example.COM.", "mta-sts.example.com"),
            ("mta-sts.example.com:443", "mta-sts.example.com"),
            ("mta-sts.example.com.:8443", "mta-sts.example.com"),
        ];
        for (input, want) in good {
            assert_eq!(authority_host(input).as_deref(), Some(want), "{input:?}");
        }
        let bad = [
            ("192.0.2.1", "bare IPv4"),
            ("192.0.2.1:443", "IPv4 with port"),
            ("[2001:db8::1]", "IPv6 literal"),
            ("[2001:db8::1]:443", "IPv6 literal with port"),
            ("2001:db8::1", "unbracketed IPv6"),
            ("mta-sts.example.com:https", "non-numeric port"),
            ("", "empty"),
            ("mta-sts.example.com/x", "a path in the authority"),
        ];
        for (input, why) in bad {
            assert_eq!(authority_host(input), None, "{why}: {input:?}");
        }
    }
}
