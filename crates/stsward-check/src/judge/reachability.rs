//! Is it the MX hosts, or this machine? — outbound port 25 and IPv6 from where the check runs
//!
//! Many cloud VMs and residential networks block outbound port 25, and many hosts have no
//! IPv6 route. A check run from there sees every MX connection time out and would blame each
//! MX host in turn. This judge looks at all SMTP connection attempts of one check together
//! and says once when the pattern points at the local network:
//! - every attempt timed out at TCP connect: `mx.port25.blocked`;
//! - every IPv6 attempt failed at connect (timed out or "unreachable") while an IPv4
//!   connection worked: `mx.ipv6.unreachable`.
//!
//! The per-MX findings still follow (from [`super::mx_host`]): from here the check cannot
//! tell a blocked port from hosts that really are down, so it says which is likelier.

use stsward_proto::{Code, Finding, Severity};

use crate::observe::{AddressLookup, AddressObservation, MxLookup, Observation, Probe, SmtpStep};

/// The subject of these findings: the checking machine, not a host of the domain.
const SUBJECT: &str = "this machine";

/// The findings about the local network, at most one of each code.
pub fn judge(obs: &Observation) -> Vec<Finding> {
    let MxLookup::Answer { hosts } = &obs.mx else {
        return Vec::new();
    };
    let probes: Vec<&AddressObservation> = hosts
        .iter()
        .filter_map(|h| match &h.addresses {
            AddressLookup::Answer { addresses } => Some(addresses.iter()),
            AddressLookup::Failed(_) => None,
        })
        .flatten()
        .collect();
    let mut findings = Vec::new();
    if !probes.is_empty() && probes.iter().all(|a| connect_timed_out(&a.probe)) {
        findings.push(Finding::new(
            Code::MxPort25Blocked,
            Severity::Warning,
            SUBJECT,
            format!(
                "all {} SMTP connection attempts of this check timed out at TCP connect; outbound port 25 looks blocked from this machine (common on cloud VMs), so the MX findings below may not be the hosts' fault",
                probes.len()
            ),
        ));
        return findings;
    }
    let (v6, v4): (Vec<&AddressObservation>, Vec<&AddressObservation>) =
        probes.iter().partition(|a| a.ip.is_ipv6());
    let v4_connected = v4.iter().any(|a| !failed_at_connect(&a.probe));
    if !v6.is_empty() && v4_connected && v6.iter().all(|a| ipv6_unreachable(&a.probe)) {
        findings.push(Finding::new(
            Code::MxIpv6Unreachable,
            Severity::Info,
            SUBJECT,
            format!(
                "all {} IPv6 SMTP connection attempts failed at connect while IPv4 connections worked; this machine seems to have no working IPv6 route, so the IPv6 findings below may not be the hosts' fault",
                v6.len()
            ),
        ));
    }
    findings
}

fn failed_at_connect(p: &Probe) -> bool {
    matches!(
        p,
        Probe::Failed {
            step: SmtpStep::Connect,
            ..
        }
    )
}

fn connect_timed_out(p: &Probe) -> bool {
    matches!(
        p,
        Probe::Failed {
            step: SmtpStep::Connect,
            timed_out: true,
            ..
        }
    )
}

/// A timeout, or the kernel's "network/host unreachable" (ENETUNREACH, EHOSTUNREACH), as
/// the socket error's text carries it. A refused connection is not: the route works.
fn ipv6_unreachable(p: &Probe) -> bool {
    match p {
        Probe::Failed {
            step: SmtpStep::Connect,
            timed_out,
            detail,
            ..
        } => *timed_out || detail.to_ascii_lowercase().contains("unreachable"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures;
    use std::net::IpAddr;

    fn connect_failure(timed_out: bool, detail: &str) -> Probe {
        Probe::Failed {
            step: SmtpStep::Connect,
            timed_out,
            detail: detail.to_owned(),
            banner: None,
        }
    }

    fn banner_timeout() -> Probe {
        Probe::Failed {
            step: SmtpStep::Banner,
            timed_out: true,
            detail: "no answer".to_owned(),
            banner: None,
        }
    }

    fn obs(addrs: Vec<(&str, Probe)>) -> Observation {
        let mut o = fixtures::healthy();
        let addresses = addrs
            .into_iter()
            .map(|(ip, probe)| fixtures::address(ip.parse::<IpAddr>().expect("ip"), probe))
            .collect();
        o.mx = MxLookup::Answer {
            hosts: vec![fixtures::mx("mx.example.com", 10, addresses)],
        };
        o
    }

    fn codes(o: &Observation) -> Vec<&'static str> {
        judge(o).iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn port25_blocked_and_ipv6_unreachable_table() {
        let timeout = || connect_failure(true, "no answer within 5s");
        // (addresses and what their probes saw, codes expected, why)
        type Case = (
            Vec<(&'static str, Probe)>,
            &'static [&'static str],
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                vec![("192.0.2.1", timeout()), ("2001:db8::1", timeout())],
                &["mx.port25.blocked"],
                "every connect timed out: said once, about this machine",
            ),
            (
                vec![("192.0.2.1", timeout()), ("192.0.2.2", banner_timeout())],
                &[],
                "one host accepted TCP: port 25 is open, that host is at fault",
            ),
            (
                vec![("192.0.2.1", connect_failure(false, "Connection refused"))],
                &[],
                "a refusal is an answer: the port is not blocked on the way",
            ),
            (
                vec![
                    ("192.0.2.1", banner_timeout()),
                    (
                        "2001:db8::1",
                        connect_failure(false, "Network is unreachable (os error 101)"),
                    ),
                    ("2001:db8::2", timeout()),
                ],
                &["mx.ipv6.unreachable"],
                "IPv4 connects, IPv6 has no route",
            ),
            (
                vec![
                    ("192.0.2.1", banner_timeout()),
                    ("2001:db8::1", connect_failure(false, "Connection refused")),
                ],
                &[],
                "an IPv6 refusal means the IPv6 route works",
            ),
            (
                vec![
                    ("192.0.2.1", connect_failure(false, "refused")),
                    ("2001:db8::1", timeout()),
                ],
                &[],
                "no IPv4 connection worked either: nothing to compare with",
            ),
            (vec![], &[], "no address probed: nothing to say"),
        ];
        for (addrs, want, why) in cases {
            assert_eq!(codes(&obs(addrs)), want, "{why}");
        }
    }
}
