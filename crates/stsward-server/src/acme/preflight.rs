//! The pre-flight check before an order: does `mta-sts.<domain>` (RFC 8461 §3.3, the policy
//! host) resolve to this service?
//!
//! A CA validates HTTP-01 and TLS-ALPN-01 by connecting to the addresses the name resolves to
//! (RFC 8555 §8.3, RFC 8737 §3). When the customer has not yet published the CNAME (or A/AAAA
//! records) that points the name here, the validation is bound to fail and counts against
//! the CA's failed-validation rate limit. So the name is resolved first, through the same DNS
//! client as everything else (`--resolver` points it at a lab), and the order is refused with
//! the reason unless:
//!
//! ```text
//! the CNAME chain passes through the configured canonical name      -> passed
//! or every address at the end of the chain is one of ours (and >= 1) -> passed
//! otherwise (NXDOMAIN, NODATA, a foreign address, a lookup error)    -> refused, saying what
//!                                                                       the name resolves to
//! ```
//!
//! "Every address" rather than "some address": a CA may pick any of them, and a name that
//! also points elsewhere fails validation some of the time.

use std::fmt;
use std::net::IpAddr;

use stsward_net::dns::{Answer, Dns, DnsError, Lookup};
use thiserror::Error;

/// How this service is reached: what a customer's `mta-sts.` name must point at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceTarget {
    /// The public addresses of the policy host (IPv4 and IPv6).
    pub addresses: Vec<IpAddr>,
    /// The canonical name customers CNAME to (e.g. `mta-sts.stsward.example`), if any.
    pub canonical_name: Option<String>,
}

/// A name that passed the pre-flight check; only [`check`] and [`judge`] make one, so an
/// order cannot be placed for a name that was not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedName {
    name: String,
    cname_chain: Vec<String>,
    addresses: Vec<IpAddr>,
}

impl CheckedName {
    /// The name the certificate is for (`mta-sts.<domain>`), lower case, no trailing dot.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CNAME targets followed.
    pub fn cname_chain(&self) -> &[String] {
        &self.cname_chain
    }

    /// The addresses the name resolved to.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }
}

/// What `mta-sts.<domain>` resolves to, for a refusal message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The CNAME targets followed.
    pub cname_chain: Vec<String>,
    /// The outcome at the end of the chain.
    pub outcome: ResolvedTo,
}

/// The end of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedTo {
    /// These addresses.
    Addresses(Vec<IpAddr>),
    /// The name does not exist.
    NxDomain,
    /// The name exists but has no A or AAAA record.
    NoData,
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for target in &self.cname_chain {
            write!(f, "CNAME {target} -> ")?;
        }
        match &self.outcome {
            ResolvedTo::Addresses(a) => {
                let list: Vec<String> = a.iter().map(ToString::to_string).collect();
                f.write_str(&list.join(", "))
            }
            ResolvedTo::NxDomain => f.write_str("NXDOMAIN (no such name)"),
            ResolvedTo::NoData => f.write_str("no A or AAAA record"),
        }
    }
}

/// Why an order was not placed.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum PreflightError {
    /// The name resolves, but not (only) to this service.
    #[error(
        "{name} resolves to {resolved}, not to this service ({expected}); publish the records \
         `stsward domain records` prints before a certificate is ordered"
    )]
    Elsewhere {
        /// The name checked.
        name: String,
        /// What it resolves to.
        resolved: Resolution,
        /// What it should resolve to.
        expected: String,
    },
    /// The lookup itself failed (timeout, SERVFAIL, ...).
    #[error("{name}: cannot tell where it points, so no certificate is ordered: {source}")]
    Lookup {
        /// The name checked.
        name: String,
        /// The DNS error.
        #[source]
        source: Box<DnsError>,
    },
    /// The domain is not a usable name.
    #[error("{domain:?} is not a domain name a certificate can be ordered for")]
    BadDomain {
        /// The domain given.
        domain: String,
    },
    /// Nothing is configured for the name to point at.
    #[error("no service address or canonical name is configured, so no name can point here")]
    NoTarget,
}

/// `mta-sts.<domain>`, lower case, without a trailing dot.
pub fn policy_host_name(domain: &str) -> Result<String, PreflightError> {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let valid = !d.is_empty()
        && d.len() <= 253 - "mta-sts.".len()
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !valid {
        return Err(PreflightError::BadDomain {
            domain: domain.to_owned(),
        });
    }
    Ok(format!("mta-sts.{d}"))
}

/// Resolves `mta-sts.<domain>` and [`judge`]s the answer.
pub async fn check(
    dns: &Dns,
    domain: &str,
    target: &ServiceTarget,
) -> Result<CheckedName, PreflightError> {
    let name = policy_host_name(domain)?;
    if target.addresses.is_empty() && target.canonical_name.is_none() {
        return Err(PreflightError::NoTarget);
    }
    let lookup = dns
        .addrs(&name)
        .await
        .map_err(|source| PreflightError::Lookup {
            name: name.clone(),
            source: Box::new(source),
        })?;
    judge(&name, &lookup, target)
}

/// The decision of [`check`], on an answer already in hand.
pub fn judge(
    name: &str,
    lookup: &Lookup<IpAddr>,
    target: &ServiceTarget,
) -> Result<CheckedName, PreflightError> {
    if target.addresses.is_empty() && target.canonical_name.is_none() {
        return Err(PreflightError::NoTarget);
    }
    let canonical = target
        .canonical_name
        .as_deref()
        .map(|c| c.trim_end_matches('.').to_ascii_lowercase());
    let via_canonical = canonical.as_deref().is_some_and(|c| {
        lookup
            .cname_chain
            .iter()
            .any(|hop| hop.trim_end_matches('.').eq_ignore_ascii_case(c))
    });
    let addresses = lookup.records().to_vec();
    let all_ours = !addresses.is_empty() && addresses.iter().all(|a| target.addresses.contains(a));
    if via_canonical || all_ours {
        return Ok(CheckedName {
            name: name.to_owned(),
            cname_chain: lookup.cname_chain.clone(),
            addresses,
        });
    }
    let outcome = match &lookup.answer {
        Answer::Records(r) => ResolvedTo::Addresses(r.clone()),
        Answer::NxDomain => ResolvedTo::NxDomain,
        Answer::NoData => ResolvedTo::NoData,
    };
    let mut expected = Vec::new();
    if let Some(c) = &canonical {
        expected.push(format!("CNAME {c}"));
    }
    if !target.addresses.is_empty() {
        let list: Vec<String> = target.addresses.iter().map(ToString::to_string).collect();
        expected.push(list.join(", "));
    }
    Err(PreflightError::Elsewhere {
        name: name.to_owned(),
        resolved: Resolution {
            cname_chain: lookup.cname_chain.clone(),
            outcome,
        },
        expected: expected.join(" or "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stsward_net::dns::DnssecStatus;

    fn lookup(chain: &[&str], answer: Answer<IpAddr>) -> Lookup<IpAddr> {
        Lookup {
            name: "mta-sts.example.com".to_owned(),
            cname_chain: chain.iter().map(|s| (*s).to_owned()).collect(),
            answer,
            dnssec: DnssecStatus::Insecure,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn judge_table() {
        let target = ServiceTarget {
            addresses: vec![ip("192.0.2.10"), ip("2001:db8::10")],
            canonical_name: Some("policy.stsward.example.".to_owned()),
        };
        let good: &[(&[&str], Answer<IpAddr>, &str)] = &[
            (&[], Answer::Records(vec![ip("192.0.2.10")]), "our A record"),
            (
                &[],
                Answer::Records(vec![ip("192.0.2.10"), ip("2001:db8::10")]),
                "our A and AAAA",
            ),
            (
                &["policy.stsward.example"],
                Answer::Records(vec![ip("198.51.100.1")]),
                "CNAME to the canonical name wins whatever it resolves to",
            ),
            (
                &["POLICY.stsward.example."],
                Answer::Records(vec![ip("192.0.2.10")]),
                "canonical name compared case-insensitively, trailing dot ignored",
            ),
            (
                &["other.example.net", "policy.stsward.example"],
                Answer::NoData,
                "canonical name deeper in the chain",
            ),
        ];
        for (chain, answer, why) in good {
            let got = judge(
                "mta-sts.example.com",
                &lookup(chain, answer.clone()),
                &target,
            );
            assert!(got.is_ok(), "{why}: {got:?}");
        }
        let bad: &[(&[&str], Answer<IpAddr>, &str, &str)] = &[
            (
                &[],
                Answer::Records(vec![ip("198.51.100.1")]),
                "198.51.100.1",
                "a foreign address",
            ),
            (
                &[],
                Answer::Records(vec![ip("192.0.2.10"), ip("198.51.100.1")]),
                "192.0.2.10, 198.51.100.1",
                "one of two addresses is foreign: a CA may pick it",
            ),
            (&[], Answer::NxDomain, "NXDOMAIN", "no record published yet"),
            (
                &[],
                Answer::NoData,
                "no A or AAAA",
                "name without addresses",
            ),
            (
                &["old-host.example.net"],
                Answer::Records(vec![ip("203.0.113.7")]),
                "CNAME old-host.example.net -> 203.0.113.7",
                "a CNAME to another provider",
            ),
        ];
        for (chain, answer, shown, why) in bad {
            let err = judge(
                "mta-sts.example.com",
                &lookup(chain, answer.clone()),
                &target,
            )
            .expect_err(why);
            let text = err.to_string();
            assert!(matches!(err, PreflightError::Elsewhere { .. }), "{why}");
            assert!(text.contains(shown), "{why}: {text}");
            assert!(
                text.contains("CNAME policy.stsward.example or 192.0.2.10, 2001:db8::10"),
                "{why}: says what is expected: {text}"
            );
        }
    }

    #[test]
    fn nothing_configured_refuses() {
        let l = lookup(&[], Answer::Records(vec![ip("192.0.2.10")]));
        assert!(matches!(
            judge("mta-sts.example.com", &l, &ServiceTarget::default()),
            Err(PreflightError::NoTarget)
        ));
    }

    #[test]
    fn policy_host_names() {
        assert_eq!(
            policy_host_name("Example.COM.").ok().as_deref(),
            Some("mta-sts.example.com")
        );
        for bad in [
            "",
            ".",
            "a..b",
            "-a.com",
            "a_b.com",
            "ex ample.com",
            "é.com",
        ] {
            assert!(policy_host_name(bad).is_err(), "{bad:?}");
        }
    }
}
