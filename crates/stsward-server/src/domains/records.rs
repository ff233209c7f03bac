//! The records a customer publishes for a hosted domain, and the ones stsward answers in its
//! delegated zone (RFC 8461 §3.1 TXT, §3.3 policy host, §8.2 delegation; RFC 8460 §3 TXT).
//!
//! ```text
//! mta-sts.<D>.      CNAME  <policy_host>.            or A/AAAA <policy_host_addrs>
//! _mta-sts.<D>.     CNAME  _mta-sts.<D>.<zone>.      or TXT "v=STSv1; id=<current id>;"
//! _smtp._tls.<D>.   CNAME  _smtp._tls.<D>.<zone>.    (when a rua is configured)
//! ```
//!
//! RFC 8461 §8.2: "the Policy Domain must point the "_mta-sts" record, via CNAME, to the
//! "_mta-sts" record maintained by the provider" and "point the "well-known" policy location
//! to the provider ... either by setting the "mta-sts" record to an IP address or CNAME".
//! The literal TXT is for customers who keep their own `_mta-sts` record: it must then be
//! changed by hand at every policy change, which the CNAME makes unnecessary.

use stsward_proto::mta_sts::{PolicyId, StsRecord};
use stsward_store::{HostedDomain, PolicyVersion};

use super::DomainError;
use super::names;
use crate::config::HostingSection;

/// One resource record, in zone-file terms.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DnsRecord {
    /// The owner name, fully qualified (trailing dot).
    pub name: String,
    /// `CNAME`, `TXT`, `A` or `AAAA`.
    #[serde(rename = "type")]
    pub rtype: &'static str,
    /// The data: a name with its trailing dot, an address, or the TXT text (unquoted).
    pub value: String,
}

impl DnsRecord {
    /// The record as one zone-file line (TXT quoted).
    pub fn zone_line(&self) -> String {
        let value = if self.rtype == "TXT" {
            format!(
                "\"{}\"",
                self.value.replace('\\', "\\\\").replace('"', "\\\"")
            )
        } else {
            self.value.clone()
        };
        format!("{} IN {} {}", self.name, self.rtype, value)
    }
}

/// What `domain records` prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Records {
    /// The domain.
    pub domain: String,
    /// `mta-sts.<D>` CNAME to the policy host (recommended).
    pub policy_host: DnsRecord,
    /// Instead: A/AAAA records with this service's addresses (empty when none configured).
    pub policy_host_addrs: Vec<DnsRecord>,
    /// `_mta-sts.<D>` CNAME into the delegated zone (recommended: the id follows by itself).
    pub sts: DnsRecord,
    /// Instead: the literal TXT with the current id (to be updated at every change).
    pub sts_txt: DnsRecord,
    /// `_smtp._tls.<D>` CNAME into the delegated zone; `None` when no rua is configured.
    pub tlsrpt: Option<DnsRecord>,
    /// What stsward answers in its zone for this domain.
    pub served: Vec<DnsRecord>,
}

fn fqdn(name: &str) -> String {
    format!("{name}.")
}

/// The records of `domain` at its `current` version.
pub fn build(
    hosting: &HostingSection,
    domain: &HostedDomain,
    current: &PolicyVersion,
) -> Result<Records, DomainError> {
    let zone = hosting.zone.as_deref().ok_or(DomainError::NotConfigured {
        key: "hosting.zone",
        why: "the _mta-sts and _smtp._tls records point into the zone delegated to stsward",
    })?;
    let policy_host = hosting
        .policy_host
        .as_deref()
        .ok_or(DomainError::NotConfigured {
            key: "hosting.policy_host",
            why: "customers' mta-sts hosts CNAME to it",
        })?;
    let d = domain.domain.as_str();
    let zone_sts = names::zone_sts_name(d, zone);
    let zone_tlsrpt = names::zone_tlsrpt_name(d, zone);
    if !names::fits_dns(&zone_tlsrpt) {
        return Err(DomainError::Invalid {
            field: "domain",
            reason: format!(
                "{zone_tlsrpt} is longer than DNS allows (253); the domain is too long for \
                 the zone {zone}"
            ),
        });
    }
    let id: PolicyId = current.sts_id.parse().map_err(|e| DomainError::Invalid {
        field: "id",
        reason: format!("the stored id of version {}: {e}", current.version),
    })?;
    let txt = StsRecord::new(id).to_string();
    let rua = domain
        .tlsrpt_rua
        .clone()
        .or_else(|| hosting.tlsrpt_rua.clone());
    let mut served = vec![DnsRecord {
        name: fqdn(&zone_sts),
        rtype: "TXT",
        value: txt.clone(),
    }];
    let tlsrpt = rua.map(|rua| {
        served.push(DnsRecord {
            name: fqdn(&zone_tlsrpt),
            rtype: "TXT",
            value: format!("v=TLSRPTv1; rua={rua}"),
        });
        DnsRecord {
            name: fqdn(&names::tlsrpt_name(d)),
            rtype: "CNAME",
            value: fqdn(&zone_tlsrpt),
        }
    });
    let host = fqdn(&names::policy_host_name(d));
    Ok(Records {
        domain: d.to_owned(),
        policy_host: DnsRecord {
            name: host.clone(),
            rtype: "CNAME",
            value: fqdn(policy_host),
        },
        policy_host_addrs: hosting
            .policy_host_addrs
            .iter()
            .map(|a| DnsRecord {
                name: host.clone(),
                rtype: if a.is_ipv4() { "A" } else { "AAAA" },
                value: a.to_string(),
            })
            .collect(),
        sts: DnsRecord {
            name: fqdn(&names::sts_name(d)),
            rtype: "CNAME",
            value: fqdn(&zone_sts),
        },
        sts_txt: DnsRecord {
            name: fqdn(&names::sts_name(d)),
            rtype: "TXT",
            value: txt,
        },
        tlsrpt,
        served,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stsward_store::{DomainState, TenantId};

    fn hosted(rua: Option<&str>) -> HostedDomain {
        HostedDomain {
            id: 1,
            tenant: TenantId(1),
            domain: "example.com".into(),
            created_at: 0,
            state: DomainState::Active,
            follow_mx: false,
            tlsrpt_rua: rua.map(str::to_owned),
            remove_after: None,
            current_version: 3,
        }
    }

    fn version() -> PolicyVersion {
        PolicyVersion {
            version: 3,
            mode: "testing".into(),
            mx: vec!["mx.example.com".into()],
            max_age: 86400,
            policy: String::new(),
            sts_id: "0tkq8zk3".into(),
            changed_by: "t".into(),
            changed_at: 0,
            note: None,
        }
    }

    fn hosting() -> HostingSection {
        HostingSection {
            zone: Some("sts.provider.test".into()),
            policy_host: Some("mta-sts.provider.test".into()),
            policy_host_addrs: vec![
                "192.0.2.10".parse().expect("v4"),
                "2001:db8::10".parse().expect("v6"),
            ],
            tlsrpt_rua: Some("mailto:tlsrpt@provider.test".into()),
            ..HostingSection::default()
        }
    }

    #[test]
    fn rfc8461_8_2_delegation_records() {
        let r = build(&hosting(), &hosted(None), &version()).expect("records");
        let lines: Vec<String> = [&r.policy_host, &r.sts, r.tlsrpt.as_ref().expect("rua")]
            .iter()
            .map(|rec| rec.zone_line())
            .collect();
        assert_eq!(
            lines,
            [
                "mta-sts.example.com. IN CNAME mta-sts.provider.test.",
                "_mta-sts.example.com. IN CNAME _mta-sts.example.com.sts.provider.test.",
                "_smtp._tls.example.com. IN CNAME _smtp._tls.example.com.sts.provider.test.",
            ]
        );
        assert_eq!(
            r.sts_txt.zone_line(),
            "_mta-sts.example.com. IN TXT \"v=STSv1; id=0tkq8zk3;\""
        );
        let addrs: Vec<String> = r
            .policy_host_addrs
            .iter()
            .map(DnsRecord::zone_line)
            .collect();
        assert_eq!(
            addrs,
            [
                "mta-sts.example.com. IN A 192.0.2.10",
                "mta-sts.example.com. IN AAAA 2001:db8::10"
            ]
        );
        let served: Vec<String> = r.served.iter().map(DnsRecord::zone_line).collect();
        assert_eq!(
            served,
            [
                "_mta-sts.example.com.sts.provider.test. IN TXT \"v=STSv1; id=0tkq8zk3;\"",
                "_smtp._tls.example.com.sts.provider.test. IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@provider.test\"",
            ]
        );
    }

    #[test]
    fn a_domain_rua_overrides_and_no_rua_means_no_tlsrpt_record() {
        let r = build(&hosting(), &hosted(Some("https://r.test/x")), &version()).expect("r");
        assert!(r.served[1].value.ends_with("rua=https://r.test/x"));
        let mut none = hosting();
        none.tlsrpt_rua = None;
        let r = build(&none, &hosted(None), &version()).expect("r");
        assert!(r.tlsrpt.is_none());
        assert_eq!(r.served.len(), 1);
    }

    #[test]
    fn missing_hosting_names_are_named() {
        let mut h = hosting();
        h.zone = None;
        let err = build(&h, &hosted(None), &version())
            .expect_err("no zone")
            .to_string();
        assert!(err.contains("hosting.zone"), "{err}");
        let mut h = hosting();
        h.policy_host = None;
        let err = build(&h, &hosted(None), &version())
            .expect_err("no host")
            .to_string();
        assert!(err.contains("hosting.policy_host"), "{err}");
    }
}
