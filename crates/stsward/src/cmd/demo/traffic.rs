//! The demo's senders: a month of TLS-RPT reports (RFC 8460 §4) made from what the lab's
//! deliveries gave, as several sending organisations would send them.
//!
//! Pure: no clock, no I/O, no randomness beyond a seeded hash, so that the same plan gives
//! the same reports and tests can add them up. Each report covers one UTC day of one
//! organisation's sessions to one policy domain (RFC 8460 §4.1, `date-range`), with the
//! policy the domain served that day (§4.4 `policy-string`, `mx-host`), a summary (§4.2)
//! and failure details by result type (§4.3) and receiving MX (§4.4).

use serde_json::{Value, json};

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// A sending organisation: its name in reports, the domain of its contact address and
/// report ids, the network its MTAs send (and fetch policies) from, and its share of every
/// domain's mail, in per mille.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Org {
    /// `organization-name`.
    pub name: &'static str,
    /// Its domain (`.example`, RFC 2606 §3).
    pub domain: &'static str,
    /// Its sending MTA's address (documentation ranges, RFC 5737).
    pub sending_ip: &'static str,
    /// The network its fetches are counted in.
    pub network: &'static str,
    /// Share of the sessions, per mille.
    pub share: u64,
}

/// The organisations that send the demo's reports: a few large mailbox providers and a
/// small one, as in real TLS-RPT traffic.
pub const ORGS: [Org; 4] = [
    Org {
        name: "Big Mailbox Inc.",
        domain: "bigmailbox.example",
        sending_ip: "192.0.2.25",
        network: "192.0.2.0/24",
        share: 560,
    },
    Org {
        name: "Outpost Mail Ltd.",
        domain: "outpost.example",
        sending_ip: "198.51.100.7",
        network: "198.51.100.0/24",
        share: 260,
    },
    Org {
        name: "Cloudsend GmbH",
        domain: "cloudsend.example",
        sending_ip: "203.0.113.40",
        network: "203.0.113.0/24",
        share: 140,
    },
    Org {
        name: "Smallhost Cooperative",
        domain: "smallhost.example",
        sending_ip: "192.0.2.200",
        network: "192.0.2.128/25",
        share: 40,
    },
];

/// What a delivery to one MX host gives: success, or a failure with its RFC 8460 §4.3 result
/// type and a reason code for `failure-reason-code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// TLS negotiated and the policy validated.
    Ok,
    /// Failed with this result type.
    Fails {
        /// The result type (RFC 8460 §4.3).
        result_type: String,
        /// Free text for `failure-reason-code`.
        reason: String,
    },
}

/// One MX host as senders saw it from `from_day` on (epoch days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The MX host name.
    pub host: String,
    /// Its address, for `receiving-ip`.
    pub ip: String,
    /// The first day the route carried mail.
    pub from_day: i64,
    /// What a delivery gave.
    pub delivery: Delivery,
}

/// The policy served from `from_day` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedPolicy {
    /// The first day it was served (epoch days).
    pub from_day: i64,
    /// Its text, exactly as served (RFC 8461 §3.2).
    pub text: String,
    /// Its `mx` patterns, as stored with the version.
    pub mx: Vec<String>,
}

/// One domain's mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainTraffic {
    /// The policy domain.
    pub domain: String,
    /// Sessions on an ordinary weekday, all organisations together.
    pub daily_sessions: u64,
    /// The policies over time, oldest first.
    pub policies: Vec<ServedPolicy>,
    /// The MX routes over time: on a day, the newest route whose `from_day` has come is the
    /// one senders use (a moved MX replaces the old one).
    pub routes: Vec<Route>,
}

/// A generated report and its totals.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The sending organisation.
    pub org: &'static str,
    /// The policy domain.
    pub domain: String,
    /// The day it covers (epoch days).
    pub day: i64,
    /// The report (RFC 8460 §4.4 JSON).
    pub json: Value,
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
}

/// A stable 64-bit mix of the inputs (splitmix64's finaliser), for volumes that vary from
/// day to day the same way on every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn seed(parts: &[&str], day: i64) -> u64 {
    let mut h = mix(day as u64);
    for p in parts {
        for b in p.bytes() {
            h = mix(h ^ u64::from(b));
        }
    }
    h
}

fn date(day: i64, end: bool) -> String {
    let at = day * DAY + if end { DAY - 1 } else { 0 };
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Sessions of `org` to `t` on `day`: its share of the domain's volume, lower at weekends
/// (1970-01-01 was a Thursday, so day % 7 of 2 and 3 are Saturday and Sunday), ±10 %.
pub fn sessions(t: &DomainTraffic, org: &Org, day: i64) -> u64 {
    let weekend = matches!(day.rem_euclid(7), 2 | 3);
    let base = t.daily_sessions * org.share / 1000;
    let base = if weekend { base * 6 / 10 } else { base };
    let jitter = seed(&[org.domain, &t.domain], day) % 21; // 0..=20
    (base * (90 + jitter) / 100).max(1)
}

/// A few sessions of a day that break off during the handshake for no fault of the domain
/// (a busy network): on about one day in twenty per organisation, 1 to 3 sessions.
fn transient(t: &DomainTraffic, org: &Org, day: i64) -> u64 {
    let h = seed(&[org.domain, &t.domain, "transient"], day);
    if h.is_multiple_of(20) {
        1 + (h >> 8) % 3
    } else {
        0
    }
}

fn active<T>(items: &[T], day: i64, from: impl Fn(&T) -> i64) -> Option<&T> {
    items.iter().rev().find(|i| from(i) <= day)
}

/// The report of `org` for `t` on `day`, or `None` when the domain had no policy or route
/// yet that day.
pub fn report(t: &DomainTraffic, org: &Org, day: i64) -> Option<Generated> {
    let policy = active(&t.policies, day, |p| p.from_day)?;
    let route = active(&t.routes, day, |r| r.from_day)?;
    let total = sessions(t, org, day);
    let mut details = Vec::new();
    let mut failed = 0;
    if let Delivery::Fails {
        result_type,
        reason,
    } = &route.delivery
    {
        failed += total;
        details.push(json!({
            "result-type": result_type,
            "sending-mta-ip": org.sending_ip,
            "receiving-mx-hostname": route.host,
            "receiving-ip": route.ip,
            "failed-session-count": total,
            "failure-reason-code": reason,
        }));
    } else {
        let broken = transient(t, org, day).min(total);
        if broken > 0 {
            failed += broken;
            details.push(json!({
                "result-type": "validation-failure",
                "sending-mta-ip": org.sending_ip,
                "receiving-mx-hostname": route.host,
                "receiving-ip": route.ip,
                "failed-session-count": broken,
                "failure-reason-code": "TLS handshake interrupted (connection reset)",
            }));
        }
    }
    let successful = total - failed;
    let lines: Vec<&str> = policy.text.lines().collect();
    let start = date(day, false);
    // Unique per organisation (RFC 8460 §4.4 `report-id`), as deduplication needs.
    let report_id = format!(
        "{}_{}@{}",
        start.get(..10).unwrap_or(""),
        t.domain,
        org.domain
    );
    let json = json!({
        "organization-name": org.name,
        "date-range": {
            "start-datetime": start,
            "end-datetime": date(day, true),
        },
        "contact-info": format!("tlsrpt-noreply@{}", org.domain),
        "report-id": report_id,
        "policies": [{
            "policy": {
                "policy-type": "sts",
                "policy-string": lines,
                "policy-domain": t.domain,
                "mx-host": policy.mx,
            },
            "summary": {
                "total-successful-session-count": successful,
                "total-failure-session-count": failed,
            },
            "failure-details": details,
        }],
    });
    Some(Generated {
        org: org.name,
        domain: t.domain.clone(),
        day,
        json,
        successful,
        failed,
    })
}

/// Every organisation's reports for `t`, for the days `first..=last` (epoch days).
pub fn reports(t: &DomainTraffic, first: i64, last: i64) -> Vec<Generated> {
    (first..=last)
        .flat_map(|day| ORGS.iter().filter_map(move |org| report(t, org, day)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "version: STSv1\r\nmode: testing\r\nmx: mx1.a.test\r\nmax_age: 604800\r\n";

    fn traffic(delivery: Delivery) -> DomainTraffic {
        DomainTraffic {
            domain: "a.test".into(),
            daily_sessions: 1000,
            policies: vec![ServedPolicy {
                from_day: 100,
                text: POLICY.into(),
                mx: vec!["mx1.a.test".into()],
            }],
            routes: vec![Route {
                host: "mx1.a.test".into(),
                ip: "127.1.0.2".into(),
                from_day: 100,
                delivery,
            }],
        }
    }

    #[test]
    fn rfc8460_4_reports_parse_and_state_their_totals() {
        let t = traffic(Delivery::Ok);
        let all = reports(&t, 90, 129);
        // Nothing before the policy was served: 30 days of 4 organisations.
        assert_eq!(all.len(), 30 * ORGS.len());
        for g in &all {
            let bytes = serde_json::to_vec(&g.json).expect("json");
            let parsed = stsward_proto::tlsrpt::parse_report(&bytes).expect("an RFC 8460 report");
            let p = &parsed.report.policies[0];
            assert_eq!(p.policy.policy_domain.as_deref(), Some("a.test"));
            assert_eq!(p.summary.total_successful_session_count, g.successful);
            assert_eq!(
                p.summary.failure_count(&p.failure_details).sessions,
                g.failed
            );
            assert!(g.successful + g.failed > 0);
        }
        // Ids are unique per organisation, as deduplication needs (RFC 8460 §4.4).
        let mut ids: Vec<String> = all
            .iter()
            .map(|g| format!("{}/{}", g.org, g.json["report-id"]))
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
    }

    #[test]
    fn a_failing_route_fails_every_session_with_its_result_type() {
        let t = traffic(Delivery::Fails {
            result_type: "certificate-expired".into(),
            reason: "the certificate expired".into(),
        });
        let g = report(&t, &ORGS[0], 110).expect("a report");
        assert_eq!(g.successful, 0);
        assert!(g.failed > 0);
        assert_eq!(
            g.json["policies"][0]["failure-details"][0]["result-type"],
            "certificate-expired"
        );
    }

    #[test]
    fn a_moved_route_changes_the_outcome_from_its_day() {
        let mut t = traffic(Delivery::Ok);
        t.routes.push(Route {
            host: "mx2.a.test".into(),
            ip: "127.1.0.3".into(),
            from_day: 120,
            delivery: Delivery::Fails {
                result_type: "validation-failure".into(),
                reason: "mx2.a.test matches no mx of the policy".into(),
            },
        });
        let before = report(&t, &ORGS[1], 119).expect("before");
        let after = report(&t, &ORGS[1], 120).expect("after");
        assert!(before.successful > 0);
        assert_eq!(after.successful, 0);
        assert_eq!(
            after.json["policies"][0]["failure-details"][0]["receiving-mx-hostname"],
            "mx2.a.test"
        );
    }

    #[test]
    fn volumes_follow_the_shares_and_the_week() {
        let t = traffic(Delivery::Ok);
        // Day 109 (1970-04-20) is a Monday, 108 a Sunday.
        let monday: u64 = ORGS.iter().map(|o| sessions(&t, o, 109)).sum();
        let sunday: u64 = ORGS.iter().map(|o| sessions(&t, o, 108)).sum();
        assert!((900..=1100).contains(&monday), "{monday}");
        assert!(sunday < monday, "{sunday} < {monday}");
        assert!(sessions(&t, &ORGS[0], 109) > sessions(&t, &ORGS[3], 109));
        assert_eq!(ORGS.iter().map(|o| o.share).sum::<u64>(), 1000);
        // The same inputs give the same reports.
        assert_eq!(reports(&t, 100, 110), reports(&t, 100, 110));
    }
}
