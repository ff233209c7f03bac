//! Observation → findings (`spec/findings.md`), one file per area
//!
//! | area | file | RFC |
//! |---|---|---|
//! | `_mta-sts` TXT | [`sts_txt`] | RFC 8461 §3.1 |
//! | policy fetch and content | [`policy`] | RFC 8461 §3.2, §3.3 |
//! | policy versus MX | [`mx_coverage`] | RFC 8461 §4.1 |
//! | this machine's port 25 and IPv6 | [`reachability`] | RFC 5321 §5.1 |
//! | each MX host | [`mx_host`] | RFC 8461 §4.2, RFC 3207 |
//! | DANE | [`dane`] | RFC 7672 |
//! | `_smtp._tls` TXT | [`tlsrpt`] | RFC 8460 §3 |
//!
//! Every judge is a pure function of the observation and `now`; nothing here reads the
//! clock or the network. Passing checks are findings too (severity `ok`), so that a person
//! sees what was verified.

pub mod dane;
pub mod mx_coverage;
pub mod mx_host;
pub mod policy;
pub mod reachability;
pub mod sts_txt;
pub mod tlsrpt;

use stsward_proto::Finding;
use time::{Duration, OffsetDateTime};

use crate::observe::{MxLookup, Observation};

/// `spec/findings.md`: a certificate that expires within 14 days is a warning
/// (`sts.policy.cert-expiring`, `mx.cert.expiring`).
pub const EXPIRY_WARNING: Duration = Duration::days(14);

pub use policy::PolicyMode;

/// The judge's result for a whole domain.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// Every finding, in the order the areas are listed above.
    pub findings: Vec<Finding>,
    /// The mode of the fetched policy, when there was one.
    pub policy_mode: Option<PolicyMode>,
}

/// Judges a whole domain.
pub fn judge(obs: &Observation, now: OffsetDateTime) -> Judgement {
    let mut findings = Vec::new();
    let mut policy_mode = None;

    let policy_host_exists = policy::host_exists(&obs.policy);
    let txt = sts_txt::judge(&obs.domain, &obs.sts_txt, policy_host_exists);
    findings.extend(txt.findings);

    // A domain with neither a `v=STSv1` record nor a policy host does not use MTA-STS:
    // `sts.txt.missing` (info) says so, and a list of policy errors would only be noise.
    let deployed = txt.deployed || policy_host_exists;
    if deployed {
        let judged = policy::judge(&obs.policy, now);
        findings.extend(judged.findings);
        if let Some(policy) = judged.policy {
            policy_mode = Some(PolicyMode::from(policy.mode()));
            findings.extend(mx_coverage::judge(&obs.domain, &policy, &obs.mx));
        }
    }

    match &obs.mx {
        MxLookup::Answer { hosts } => {
            // Said once, before the per-host findings it puts in context.
            findings.extend(reachability::judge(obs));
            for host in hosts {
                findings.extend(mx_host::judge(host, now));
            }
            for host in hosts {
                findings.extend(dane::judge(host));
            }
        }
        MxLookup::Failed(_) => {
            // Reported once by the coverage judge when a policy was judged; report it here
            // otherwise, since the MX lookup failing matters with or without MTA-STS.
            if policy_mode.is_none() {
                findings.extend(mx_coverage::lookup_failure(&obs.domain, &obs.mx));
            }
        }
    }
    findings.extend(dane::resolver(obs));

    findings.extend(tlsrpt::judge(&obs.domain, &obs.tlsrpt_txt));
    Judgement {
        findings,
        policy_mode,
    }
}

/// Whole days from `now` until `t` (negative when `t` has passed), for messages.
pub(crate) fn days_until(t: OffsetDateTime, now: OffsetDateTime) -> i64 {
    (t - now).whole_days()
}

/// A date as `YYYY-MM-DD`, the precision a person needs in a message.
pub(crate) fn date(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// "in 3 days" / "3 days ago" / "today".
pub(crate) fn relative_days(t: OffsetDateTime, now: OffsetDateTime) -> String {
    match days_until(t, now) {
        0 => "today".to_owned(),
        1 => "in 1 day".to_owned(),
        -1 => "1 day ago".to_owned(),
        d if d > 0 => format!("in {d} days"),
        d => format!("{} days ago", -d),
    }
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests;
