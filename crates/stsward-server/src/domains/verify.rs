//! `stsward domain verify`: are the records a customer should publish (see [`super::records`])
//! in place in the DNS? RFC 8461 §8.2 delegation: the `_mta-sts` record "via CNAME" to the
//! provider's, and the `mta-sts` host "to an IP address or CNAME specified by the provider";
//! RFC 8461 §3.1 for a customer's own TXT (its `id` must be the served policy's); RFC 8460 §3
//! for `_smtp._tls`.
//!
//! Each record is judged from what a resolver returns, looked up with `stsward-net` (so
//! `--resolver` points it at any server): the first CNAME hop decides when there is one, since
//! that is the record the customer publishes; otherwise the records at the name. The judging
//! ([`judge_policy_host`], [`judge_sts`], [`judge_tlsrpt`]) is pure and tested on its own.

use std::net::IpAddr;

use stsward_net::dns::{Dns, Lookup, Txt};
use stsward_proto::mta_sts::StsRecord;
use stsward_proto::tlsrpt::TlsRptRecord;

use super::records::Records;

/// How one record stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum RecordState {
    /// Published as recommended, or in an accepted alternative form.
    InPlace {
        /// How (e.g. "CNAME to …", "A/AAAA of this service").
        how: String,
    },
    /// Nothing published at the name.
    Missing,
    /// Something else is published.
    Wrong {
        /// What the DNS answered.
        found: String,
    },
    /// The lookup failed; nothing can be said.
    Unknown {
        /// Why.
        why: String,
    },
}

impl RecordState {
    /// Whether the record is in place.
    pub fn is_in_place(&self) -> bool {
        matches!(self, RecordState::InPlace { .. })
    }
}

/// One record's verdict, with the exact fix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordCheck {
    /// The owner name (trailing dot).
    pub name: String,
    /// What it should be, as a zone-file line (the recommended form).
    pub expected: String,
    /// How it stands.
    #[serde(flatten)]
    pub state: RecordState,
}

/// What `domain verify` reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// The domain (A-labels).
    pub domain: String,
    /// `mta-sts.<D>`, `_mta-sts.<D>`, and `_smtp._tls.<D>` when a rua is configured.
    pub records: Vec<RecordCheck>,
}

impl Verification {
    /// Whether every record is in place.
    pub fn all_in_place(&self) -> bool {
        self.records.iter().all(|r| r.state.is_in_place())
    }
}

/// Case-insensitive DNS name equality, trailing dots ignored.
fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// The verdict when the name is a CNAME (its first hop is what the customer published):
/// in place when it points at `expected`, wrong otherwise; `None` without a CNAME.
fn by_cname(chain: &[String], expected: &str) -> Option<RecordState> {
    let first = chain.first()?;
    Some(if same_name(first, expected) {
        RecordState::InPlace {
            how: format!("CNAME to {}", expected.trim_end_matches('.')),
        }
    } else {
        RecordState::Wrong {
            found: format!("CNAME to {first}"),
        }
    })
}

/// The `mta-sts.<D>` host: a CNAME to `policy_host`, or addresses that are all this
/// service's.
pub fn judge_policy_host(
    lookup: &Lookup<IpAddr>,
    policy_host: &str,
    service_addrs: &[IpAddr],
) -> RecordState {
    if let Some(state) = by_cname(&lookup.cname_chain, policy_host) {
        return state;
    }
    let addrs = lookup.records();
    if addrs.is_empty() {
        return RecordState::Missing;
    }
    if addrs.iter().all(|a| service_addrs.contains(a)) {
        return RecordState::InPlace {
            how: "A/AAAA of this service".into(),
        };
    }
    let shown: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
    RecordState::Wrong {
        found: format!("addresses {}", shown.join(", ")),
    }
}

/// The `_mta-sts.<D>` record: a CNAME to `zone_name`, or the customer's own TXT whose `id` is
/// `current_id` (RFC 8461 §3.1: records not beginning with `v=STSv1;` are discarded).
pub fn judge_sts(lookup: &Lookup<Txt>, zone_name: &str, current_id: &str) -> RecordState {
    if let Some(state) = by_cname(&lookup.cname_chain, zone_name) {
        return state;
    }
    let texts: Vec<String> = lookup
        .records()
        .iter()
        .map(|t| String::from_utf8_lossy(&t.data).into_owned())
        .filter(|t| t.starts_with("v=STSv1"))
        .collect();
    let Some(text) = texts.first() else {
        return RecordState::Missing;
    };
    if texts.len() > 1 {
        return RecordState::Wrong {
            found: format!(
                "{} v=STSv1 records (RFC 8461 §3.1: senders treat that as no record)",
                texts.len()
            ),
        };
    }
    match text.parse::<StsRecord>() {
        Ok(r) if r.id.to_string() == current_id => RecordState::InPlace {
            how: "the domain's own TXT with the current id (it must be changed by hand at every policy change; a CNAME follows by itself)".into(),
        },
        Ok(r) => RecordState::Wrong {
            found: format!(
                "id={} while the served policy's id is {current_id}: senders will not fetch the current policy",
                r.id
            ),
        },
        Err(e) => RecordState::Wrong {
            found: format!("{text:?}: {e}"),
        },
    }
}

/// The `_smtp._tls.<D>` record: a CNAME to `zone_name`, or the customer's own TLSRPT TXT
/// naming `rua` among its destinations.
pub fn judge_tlsrpt(lookup: &Lookup<Txt>, zone_name: &str, rua: &str) -> RecordState {
    if let Some(state) = by_cname(&lookup.cname_chain, zone_name) {
        return state;
    }
    let texts: Vec<String> = lookup
        .records()
        .iter()
        .map(|t| String::from_utf8_lossy(&t.data).into_owned())
        .filter(|t| t.starts_with("v=TLSRPTv1"))
        .collect();
    let Some(text) = texts.first() else {
        return RecordState::Missing;
    };
    match text.parse::<TlsRptRecord>() {
        Ok(r) if r.rua.iter().any(|u| u.to_string() == rua) => RecordState::InPlace {
            how: "the domain's own TXT, naming this service's rua".into(),
        },
        Ok(_) => RecordState::Wrong {
            found: format!("{text:?}: reports do not come to {rua}"),
        },
        Err(e) => RecordState::Wrong {
            found: format!("{text:?}: {e}"),
        },
    }
}

/// Looks up and judges every record of `records` (the domain's current ones).
pub async fn verify(
    dns: &Dns,
    records: &Records,
    current_id: &str,
    rua: Option<&str>,
    service_addrs: &[IpAddr],
) -> Verification {
    let unknown = |e: &dyn std::fmt::Display| RecordState::Unknown { why: e.to_string() };
    let host = &records.policy_host;
    let host_state = match dns.addrs(host.name.trim_end_matches('.')).await {
        Ok(l) => judge_policy_host(&l, &host.value, service_addrs),
        Err(e) => unknown(&e),
    };
    let sts = &records.sts;
    let sts_state = match dns.txt(sts.name.trim_end_matches('.')).await {
        Ok(l) => judge_sts(&l, &sts.value, current_id),
        Err(e) => unknown(&e),
    };
    let mut checks = vec![
        RecordCheck {
            name: host.name.clone(),
            expected: host.zone_line(),
            state: host_state,
        },
        RecordCheck {
            name: sts.name.clone(),
            expected: sts.zone_line(),
            state: sts_state,
        },
    ];
    if let (Some(t), Some(rua)) = (&records.tlsrpt, rua) {
        let state = match dns.txt(t.name.trim_end_matches('.')).await {
            Ok(l) => judge_tlsrpt(&l, &t.value, rua),
            Err(e) => unknown(&e),
        };
        checks.push(RecordCheck {
            name: t.name.clone(),
            expected: t.zone_line(),
            state,
        });
    }
    Verification {
        domain: records.domain.clone(),
        records: checks,
    }
}

#[cfg(test)]
mod tests {
    use stsward_net::dns::{Answer, DnssecStatus};

    use super::*;

    fn lookup<T>(chain: &[&str], answer: Answer<T>) -> Lookup<T> {
        Lookup {
            name: "x".into(),
            cname_chain: chain.iter().map(|s| s.to_string()).collect(),
            answer,
            dnssec: DnssecStatus::Insecure,
        }
    }

    fn txt(s: &str) -> Txt {
        Txt {
            data: s.as_bytes().to_vec(),
            strings: 1,
        }
    }

    const ADDR: &str = "192.0.2.7";

    #[test]
    fn rfc8461_8_2_policy_host_by_cname_or_by_our_addresses() {
        let ours: Vec<IpAddr> = vec![ADDR.parse().expect("ip")];
        let cname = lookup(&["Policy.Sts.Example"], Answer::NxDomain);
        assert!(judge_policy_host(&cname, "policy.sts.example.", &ours).is_in_place());
        let elsewhere = lookup(
            &["web.example"],
            Answer::Records(vec![ADDR.parse().expect("ip")]),
        );
        assert_eq!(
            judge_policy_host(&elsewhere, "policy.sts.example.", &ours),
            RecordState::Wrong {
                found: "CNAME to web.example".into()
            }
        );
        let a = lookup(&[], Answer::Records(vec![ADDR.parse().expect("ip")]));
        assert!(judge_policy_host(&a, "policy.sts.example.", &ours).is_in_place());
        let mixed = lookup(
            &[],
            Answer::Records(vec![
                ADDR.parse().expect("ip"),
                "198.51.100.1".parse().expect("ip"),
            ]),
        );
        assert!(matches!(
            judge_policy_host(&mixed, "policy.sts.example.", &ours),
            RecordState::Wrong { found } if found.contains("198.51.100.1")
        ));
        let none = lookup::<IpAddr>(&[], Answer::NxDomain);
        assert_eq!(
            judge_policy_host(&none, "policy.sts.example.", &ours),
            RecordState::Missing
        );
    }

    #[test]
    fn rfc8461_3_1_own_txt_must_carry_the_served_id() {
        let zone = "_mta-sts.user.example.sts.example.";
        let cname = lookup::<Txt>(&["_mta-sts.user.example.sts.example"], Answer::NxDomain);
        assert!(judge_sts(&cname, zone, "abc1").is_in_place());
        let current = lookup(&[], Answer::Records(vec![txt("v=STSv1; id=abc1;")]));
        assert!(judge_sts(&current, zone, "abc1").is_in_place());
        let stale = lookup(&[], Answer::Records(vec![txt("v=STSv1; id=old9;")]));
        assert!(matches!(
            judge_sts(&stale, zone, "abc1"),
            RecordState::Wrong { found } if found.contains("id=old9") && found.contains("abc1")
        ));
        let two = lookup(
            &[],
            Answer::Records(vec![txt("v=STSv1; id=abc1;"), txt("v=STSv1; id=abc2;")]),
        );
        assert!(matches!(
            judge_sts(&two, zone, "abc1"),
            RecordState::Wrong { .. }
        ));
        let other = lookup(
            &[],
            Answer::Records(vec![txt("google-site-verification=x")]),
        );
        assert_eq!(judge_sts(&other, zone, "abc1"), RecordState::Missing);
    }

    #[test]
    fn rfc8460_3_own_tlsrpt_must_name_our_rua() {
        let zone = "_smtp._tls.user.example.sts.example.";
        let rua = "mailto:tlsrpt@sts.example";
        let own = lookup(
            &[],
            Answer::Records(vec![txt(
                "v=TLSRPTv1; rua=mailto:a@b.example,mailto:tlsrpt@sts.example",
            )]),
        );
        assert!(judge_tlsrpt(&own, zone, rua).is_in_place());
        let other = lookup(
            &[],
            Answer::Records(vec![txt("v=TLSRPTv1; rua=mailto:a@b.example")]),
        );
        assert!(matches!(
            judge_tlsrpt(&other, zone, rua),
            RecordState::Wrong { .. }
        ));
        let missing = lookup::<Txt>(&[], Answer::NoData);
        assert_eq!(judge_tlsrpt(&missing, zone, rua), RecordState::Missing);
    }
}
