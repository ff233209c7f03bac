//! RFC 8461 §4.1 — the policy's `mx` patterns versus the domain's MX records
//!
//! ```text
//! RFC 8461 §4.1: A receiving candidate MX host is valid according to an applied MTA-
//! STS Policy if the MX record name matches one or more of the "mx"
//! fields in the applied policy.
//!
//! RFC 8461 §5: "enforce": In this mode, Sending MTAs MUST NOT deliver the
//! message to hosts that fail MX matching or certificate validation
//! or that do not support STARTTLS.
//! ```
//!
//! Severity of an uncovered MX host follows the mode, because the harm does:
//!
//! | mode | `sts.mx.uncovered` | why |
//! |---|---|---|
//! | `enforce` | error | senders refuse to deliver to that host today |
//! | `testing` | warning | mail flows and failures are only reported, but switching to `enforce` would break delivery to that host: it "works today and will break" |
//! | `none` | info | the policy is withdrawn; nothing is enforced |
//!
//! A pattern that matches no MX host (`sts.mx.stale`) is a warning: harmless today, but it
//! is usually a host that was retired and a sign the policy is not maintained.

use stsward_proto::mta_sts::{Mode, MxPattern, Policy};
use stsward_proto::{Code, Finding, Severity};

use super::sts_txt::kind_words;
use crate::observe::MxLookup;

/// Judges coverage of the MX hosts by the policy's patterns.
pub fn judge(domain: &str, policy: &Policy, mx: &MxLookup) -> Vec<Finding> {
    let hosts = match mx {
        MxLookup::Failed(_) => return lookup_failure(domain, mx),
        MxLookup::Answer { hosts } => hosts,
    };
    let mut findings = Vec::new();

    if hosts.is_empty() {
        findings.push(Finding::new(
            Code::StsMxNone,
            Severity::Warning,
            domain,
            format!("{domain} has no MX records; senders fall back to {domain} itself"),
        ));
        return findings;
    }
    // RFC 7505: a single MX of "." declares that the domain accepts no mail at all.
    if hosts.iter().all(|h| h.host.is_empty()) {
        findings.push(Finding::new(
            Code::StsMxNone,
            Severity::Warning,
            domain,
            format!("{domain} publishes a null MX (RFC 7505): it accepts no mail, so an MTA-STS policy protects nothing"),
        ));
        return findings;
    }

    let uncovered_severity = match policy.mode() {
        Mode::Enforce => Severity::Error,
        Mode::Testing => Severity::Warning,
        Mode::None => Severity::Info,
    };
    let named: Vec<&str> = hosts
        .iter()
        .map(|h| h.host.as_str())
        .filter(|h| !h.is_empty())
        .collect();

    let mut uncovered = 0;
    for host in &named {
        if !policy.matches_mx(host) {
            uncovered += 1;
            let consequence = match policy.mode() {
                Mode::Enforce => "senders refuse to deliver to it",
                Mode::Testing => "senders report failures for it, and enforce would refuse it",
                Mode::None => "this only matters if the policy is re-enabled",
            };
            findings.push(Finding::new(
                Code::StsMxUncovered,
                uncovered_severity,
                *host,
                format!(
                    "MX host {host} matches no mx pattern of the policy ({}); in mode {} {consequence}",
                    pattern_list(policy.mx()),
                    policy.mode().as_str()
                ),
            ));
        }
    }
    if uncovered == 0 {
        findings.push(Finding::new(
            Code::StsMxCovered,
            Severity::Ok,
            domain,
            format!(
                "every MX host ({}) matches a pattern ({})",
                named.join(", "),
                pattern_list(policy.mx())
            ),
        ));
    }

    // With the policy withdrawn a stale pattern does nothing at all.
    let stale_severity = match policy.mode() {
        Mode::None => Severity::Info,
        Mode::Enforce | Mode::Testing => Severity::Warning,
    };
    for pattern in policy.mx() {
        if !named.iter().any(|h| pattern.matches(h)) {
            findings.push(Finding::new(
                Code::StsMxStale,
                stale_severity,
                format!("mx: {pattern}"),
                format!(
                    "the policy pattern {pattern} matches none of the MX hosts ({})",
                    named.join(", ")
                ),
            ));
        }
    }
    findings
}

/// The finding for a failed MX lookup (empty when the lookup did not fail).
pub fn lookup_failure(domain: &str, mx: &MxLookup) -> Vec<Finding> {
    match mx {
        MxLookup::Failed(err) => vec![Finding::new(
            Code::StsMxLookup,
            Severity::Error,
            domain,
            format!(
                "MX lookup for {domain} failed ({}): {}",
                kind_words(err),
                err.detail
            ),
        )],
        MxLookup::Answer { .. } => Vec::new(),
    }
}

fn pattern_list(patterns: &[MxPattern]) -> String {
    if patterns.is_empty() {
        "no patterns".to_owned()
    } else {
        patterns
            .iter()
            .map(MxPattern::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
