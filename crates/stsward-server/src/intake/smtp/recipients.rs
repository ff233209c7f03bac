//! Which `RCPT TO` addresses the listener accepts: the report addresses that `rua=mailto:`
//! URIs (RFC 8460 §3) point at, one by one or a whole domain at a time.
//!
//! ```text
//! report_addresses = ["tlsrpt@reports.example"]  # exactly this mailbox
//! report_domains   = ["tlsrpt.example"]          # any mailbox at exactly this domain
//! ```
//!
//! Matching ignores ASCII case in both parts. RFC 5321 §2.4 (not in the reference set;
//! paraphrase) lets a server treat local parts case-sensitively, but senders copy the
//! address from a DNS record by hand often enough that a case slip should not lose a report.
//! A domain entry does not cover its subdomains.

use std::collections::HashSet;

use crate::domains::names::domain_name;

/// The accepted recipients, normalised (lowercase, domains as A-labels without the final dot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportRecipients {
    addresses: HashSet<String>,
    domains: HashSet<String>,
}

/// A configured recipient that is not a usable address or domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?}: {reason}")]
pub struct RecipientError {
    /// The value as configured.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ReportRecipients {
    /// Checks and normalises `addresses` (`local@domain`) and `domains`.
    pub fn new(addresses: &[String], domains: &[String]) -> Result<Self, RecipientError> {
        let err = |value: &str, reason: String| RecipientError {
            value: value.to_owned(),
            reason,
        };
        let mut out = ReportRecipients::default();
        for a in addresses {
            let (local, domain) = a
                .rsplit_once('@')
                .ok_or_else(|| err(a, "is not local@domain".into()))?;
            if local.is_empty() || local.len() > 64 {
                return Err(err(a, "the local part must be 1 to 64 octets".into()));
            }
            if local
                .bytes()
                .any(|b| !b.is_ascii_graphic() || b == b'<' || b == b'>')
            {
                return Err(err(a, "the local part must be printable ASCII".into()));
            }
            let domain = domain_name(domain).map_err(|e| err(a, e.to_string()))?;
            out.addresses
                .insert(format!("{}@{domain}", local.to_ascii_lowercase()));
        }
        for d in domains {
            out.domains
                .insert(domain_name(d).map_err(|e| err(d, e.to_string()))?);
        }
        Ok(out)
    }

    /// Whether nothing is accepted (the listener then has no reason to run).
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.domains.is_empty()
    }

    /// Whether `address` (a `RCPT TO` path without the angle brackets) is a report address.
    pub fn accepts(&self, address: &str) -> bool {
        let Some((local, domain)) = address.rsplit_once('@') else {
            return false;
        };
        if local.is_empty() {
            return false;
        }
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if self.domains.contains(&domain) {
            return true;
        }
        self.addresses
            .contains(&format!("{}@{domain}", local.to_ascii_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipients() -> ReportRecipients {
        ReportRecipients::new(
            &["TLSRPT@Reports.Example".into()],
            &["tlsrpt.example.".into()],
        )
        .expect("valid")
    }

    #[test]
    fn report_addresses_and_domains_are_accepted() {
        let r = recipients();
        // (address, accepted, why)
        let cases = [
            ("tlsrpt@reports.example", true, "the configured address"),
            ("TlsRpt@REPORTS.example", true, "case is ignored"),
            ("tlsrpt@reports.example.", true, "a final dot is ignored"),
            ("anyone@tlsrpt.example", true, "a whole domain"),
            (
                "other@reports.example",
                false,
                "another mailbox at the address's domain",
            ),
            (
                "x@sub.tlsrpt.example",
                false,
                "a subdomain is not the domain",
            ),
            ("tlsrpt.example", false, "no local part"),
            ("@tlsrpt.example", false, "an empty local part"),
            ("", false, "the null path"),
        ];
        for (address, accepted, why) in cases {
            assert_eq!(r.accepts(address), accepted, "{address}: {why}");
        }
    }

    #[test]
    fn bad_configuration_is_refused() {
        // (addresses, domains, why)
        let bad: [(&[&str], &[&str], &str); 4] = [
            (&["no-at-sign"], &[], "no @"),
            (&["@example.net"], &[], "empty local part"),
            (&["a b@example.net"], &[], "space in the local part"),
            (&[], &["exa mple.net"], "not a domain"),
        ];
        for (addresses, domains, why) in bad {
            let a: Vec<String> = addresses.iter().map(|s| s.to_string()).collect();
            let d: Vec<String> = domains.iter().map(|s| s.to_string()).collect();
            assert!(ReportRecipients::new(&a, &d).is_err(), "{why}");
        }
        assert!(ReportRecipients::default().is_empty());
        assert!(!recipients().is_empty());
    }
}
