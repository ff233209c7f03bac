//! Host names of hosted domains: normalising what a person typed, and the names stsward
//! answers in its delegated zone (RFC 8461 §3.1 `_mta-sts`, RFC 8460 §3 `_smtp._tls`).
//!
//! ```text
//! customer's zone                         stsward's zone (hosting.zone = Z)
//! mta-sts.<D>     CNAME policy_host.
//! _mta-sts.<D>    CNAME _mta-sts.<D>.Z.    _mta-sts.<D>.Z    TXT "v=STSv1; id=<id>"
//! _smtp._tls.<D>  CNAME _smtp._tls.<D>.Z.  _smtp._tls.<D>.Z  TXT "v=TLSRPTv1; rua=<rua>"
//! ```
//!
//! Names are lowercase A-labels without the trailing dot (RFC 8461 §3.2 asks for A-labels
//! in policies; DNS compares names case-insensitively, RFC 4343).

use std::net::IpAddr;

use stsward_proto::mta_sts::normalize_host;
use stsward_proto::mta_sts::pattern::{MAX_LABEL_OCTETS, MAX_NAME_OCTETS};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Nothing was given.
    #[error("the domain name is empty")]
    Empty,
    /// An address, not a name.
    #[error("{0:?} is an IP address, not a domain name")]
    Address(String),
    /// Not a host name (wildcard, spaces, an IDN that does not convert, …).
    #[error("{0:?} is not a valid domain name")]
    Invalid(String),
    /// Two dots in a row, or a leading dot.
    #[error("{0:?} has an empty label")]
    EmptyLabel(String),
    /// A single label: not a name under a public suffix.
    #[error("{0:?} has a single label; a hosted domain has at least two")]
    SingleLabel(String),
    /// RFC 1035 §2.3.4: 63 octets a label, 253 in text a name.
    #[error("{0:?} is longer than DNS allows (63 octets a label, 253 a name)")]
    TooLong(String),
}

/// `raw` as lowercase A-labels without the trailing dot; a trailing dot is accepted and
/// U-labels are converted (UTS #46, the IDNA code of `stsward-proto`).
pub fn domain_name(raw: &str) -> Result<String, NameError> {
    let trimmed = raw.trim();
    let shown = || trimmed.chars().take(300).collect::<String>();
    if trimmed.is_empty() || trimmed == "." {
        return Err(NameError::Empty);
    }
    let bare = trimmed.strip_suffix('.').unwrap_or(trimmed);
    let unbracketed = bare
        .strip_prefix('[')
        .and_then(|b| b.strip_suffix(']'))
        .unwrap_or(bare);
    if unbracketed.parse::<IpAddr>().is_ok() {
        return Err(NameError::Address(shown()));
    }
    if bare.starts_with('.') || bare.contains("..") {
        return Err(NameError::EmptyLabel(shown()));
    }
    let name = normalize_host(trimmed).ok_or_else(|| NameError::Invalid(shown()))?;
    if name.split('.').any(str::is_empty) {
        return Err(NameError::EmptyLabel(shown()));
    }
    if name.len() > MAX_NAME_OCTETS || name.split('.').any(|l| l.len() > MAX_LABEL_OCTETS) {
        return Err(NameError::TooLong(shown()));
    }
    if !name.contains('.') {
        return Err(NameError::SingleLabel(shown()));
    }
    Ok(name)
}

/// `mta-sts.<domain>`: the policy host (RFC 8461 §3.3).
pub fn policy_host_name(domain: &str) -> String {
    format!("mta-sts.{domain}")
}

/// `_mta-sts.<domain>`: the customer's TXT name (RFC 8461 §3.1).
pub fn sts_name(domain: &str) -> String {
    format!("_mta-sts.{domain}")
}

/// `_smtp._tls.<domain>`: the customer's TLS-RPT name (RFC 8460 §3).
pub fn tlsrpt_name(domain: &str) -> String {
    format!("_smtp._tls.{domain}")
}

/// `_mta-sts.<domain>.<zone>`: where stsward answers the `_mta-sts` TXT.
pub fn zone_sts_name(domain: &str, zone: &str) -> String {
    format!("_mta-sts.{domain}.{zone}")
}

/// `_smtp._tls.<domain>.<zone>`: where stsward answers the TLS-RPT TXT.
pub fn zone_tlsrpt_name(domain: &str, zone: &str) -> String {
    format!("_smtp._tls.{domain}.{zone}")
}

/// Whether `name` fits in DNS (RFC 1035 §2.3.4).
pub fn fits_dns(name: &str) -> bool {
    name.len() <= MAX_NAME_OCTETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_to_a_labels() {
        let good = [
            ("example.com", "example.com"),
            ("Example.COM.", "example.com"),
            ("  mail.example.org ", "mail.example.org"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ];
        for (raw, want) in good {
            assert_eq!(domain_name(raw).as_deref(), Ok(want), "{raw}");
        }
        let bad: [(&str, &str); 9] = [
            ("", "empty"),
            (".", "the root"),
            ("192.0.2.1", "an IPv4 address"),
            ("[2001:db8::1]", "an IPv6 literal"),
            ("a..example", "an empty label"),
            ("*.example.com", "a wildcard"),
            ("exa mple.com", "a space"),
            ("localhost", "a single label"),
            ("a.b", "placeholder, replaced below"),
        ];
        for (raw, why) in &bad[..8] {
            assert!(domain_name(raw).is_err(), "{why}: {raw:?}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert!(matches!(
            domain_name(&long_label),
            Err(NameError::TooLong(_)) | Err(NameError::Invalid(_))
        ));
        let long_name = format!("{}example", "abcdefghi.".repeat(25));
        assert!(domain_name(&long_name).is_err(), "254 octets");
    }

    #[test]
    fn zone_names() {
        assert_eq!(
            zone_sts_name("example.com", "sts.provider.test"),
            "_mta-sts.example.com.sts.provider.test"
        );
        assert_eq!(
            zone_tlsrpt_name("example.com", "sts.provider.test"),
            "_smtp._tls.example.com.sts.provider.test"
        );
        assert_eq!(policy_host_name("example.com"), "mta-sts.example.com");
    }
}
