//! Names in the delegated zone: settings and hosted domains checked as host names, and the
//! keys of the zone's maps (a name relative to the apex, `""` for the apex itself).
//!
//! Hosted domains are restricted to letters, digits and hyphens (RFC 1123 §2.1 host names,
//! as A-labels), so that no domain can collide with the underscore labels of RFC 8461 §3.1
//! (`_mta-sts`) and RFC 8460 §3 (`_smtp._tls`) below which it is served.

use std::collections::HashMap;

use hickory_proto::rr::Name;
use stsward_proto::mta_sts::normalize_host;

use super::DnsError;
use super::settings::NameServer;

/// `value` as an absolute, lowercase DNS name, or an error naming `field`.
pub(crate) fn fqdn(field: &'static str, value: &str) -> Result<Name, DnsError> {
    let trimmed = value.strip_suffix('.').unwrap_or(value);
    Name::from_ascii(format!("{trimmed}."))
        .map(|name| name.to_lowercase())
        .map_err(|source| DnsError::Name {
            field,
            value: value.to_owned(),
            source,
        })
}

/// An SOA timer (RFC 1035 §3.3.13) as hickory keeps it, an `i32`.
pub(crate) fn timer(field: &'static str, value: u32) -> Result<i32, DnsError> {
    i32::try_from(value).map_err(|_| DnsError::Setting {
        field,
        value: value.to_string(),
        reason: "more than 2147483647 seconds",
    })
}

/// A hosted domain as its map key: lowercase A-labels, no trailing dot, letters, digits and
/// hyphens only (so that it can never collide with the `_mta-sts` / `_smtp._tls` labels).
pub(crate) fn domain_key(domain: &str) -> Result<String, DnsError> {
    let invalid = |reason| DnsError::Domain {
        domain: domain.to_owned(),
        reason,
    };
    let key = normalize_host(domain).ok_or(invalid("not a domain name"))?;
    let ldh = key.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !ldh {
        return Err(invalid(
            "labels must be 1-63 letters, digits or hyphens (RFC 1123 §2.1)",
        ));
    }
    Ok(key)
}

/// The policy host as an absolute name; `apex_text` only for the error.
pub(crate) fn policy_host_name(host: &NameServer, apex_text: &str) -> Result<Name, DnsError> {
    let name = fqdn("policy_host.name", &host.name)?;
    if host.addrs.is_empty() {
        return Err(DnsError::Setting {
            field: "policy_host.addrs",
            value: format!("{} in {apex_text}", host.name),
            reason: "the policy host needs at least one address",
        });
    }
    Ok(name)
}

/// `name` relative to the apex (`""` for the apex itself), or `None` outside the zone.
pub(crate) fn relative_to(apex_text: &str, name: &Name) -> Option<String> {
    let text = name.to_string();
    if text == apex_text {
        return Some(String::new());
    }
    text.strip_suffix(apex_text)
        .and_then(|rest| rest.strip_suffix('.'))
        .map(str::to_owned)
}

/// Every proper ancestor of a relative name down to the apex (`""`), nearest first.
pub(crate) fn ancestors(relative: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = relative;
    while let Some((_, parent)) = rest.split_once('.') {
        out.push(parent.to_owned());
        rest = parent;
    }
    if !relative.is_empty() {
        out.push(String::new());
    }
    out
}

/// The empty non-terminals that hosting `domain` creates: `_tls.<D>` (with a TLS-RPT
/// record), `<D>` and each of its parents.
pub(crate) fn domain_ents(domain: &str, tlsrpt: bool) -> Vec<String> {
    let mut out = Vec::new();
    if tlsrpt {
        out.push(format!("_tls.{domain}"));
    }
    out.push(domain.to_owned());
    out.extend(
        ancestors(domain)
            .into_iter()
            .filter(|name| !name.is_empty()),
    );
    out
}

pub(crate) fn release_ents(ents: &mut HashMap<String, u32>, domain: &str, tlsrpt: bool) {
    for name in domain_ents(domain, tlsrpt) {
        if let Some(count) = ents.get_mut(&name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                ents.remove(&name);
            }
        }
    }
}
