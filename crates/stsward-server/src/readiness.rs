//! Readiness for `enforce` (issue 9): an explainable verdict on whether a hosted domain in
//! `testing` can move to `enforce` without losing mail.
//!
//! RFC 8461 §5: in `enforce`, "Sending MTAs MUST NOT deliver the message to hosts that fail
//! MX matching or certificate validation or that do not support STARTTLS"; in `testing`
//! they "send a report indicating policy application failures (as long as TLSRPT is also
//! implemented by the recipient domain)". So the verdict asks whether the reports (RFC 8460
//! §4) have been coming in long enough, from enough senders, and say that the failures
//! `enforce` would turn into lost mail are gone, and whether the last check saw every MX
//! covered, with a valid certificate, and a TLS-RPT record (RFC 8460 §3) in place.
//!
//! ```text
//! criterion               passes when                                   ([readiness])
//! days-in-testing         mode testing for >= min_days_testing days     (enforce: passes)
//! sending-organizations   >= min_organizations reported in window_days
//! success-rate            successful / all sessions >= min_success_rate over success_days
//! blocking-failures       no sts-*, certificate-*, starttls-not-supported in failure_days
//! mx-coverage             last check: every MX covered, STARTTLS, valid certificate
//! policy-fetches          senders fetched the policy in fetch_days
//! tlsrpt-record           last check: a valid v=TLSRPTv1 record
//! ```
//!
//! [`judge`] is a pure function of the [`Evidence`]; `readiness::gather` reads the evidence
//! from the store. Each criterion carries its evidence in words and, when it fails, the next
//! thing to do; the verdict's `next_step` is the first failing criterion's.

pub mod gather;

use serde::{Deserialize, Serialize};
use stsward_proto::tlsrpt::ResultType;
use stsward_store::{FetchTotals, ReportSummary};

use crate::config::ReadinessSection;
use crate::domains::format_time;

const DAY: i64 = 86_400;

/// Organisations named in the evidence of `sending-organizations`, at most.
const NAMED_ORGANIZATIONS: usize = 5;

/// What the verdict is made from.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The policy domain.
    pub domain: String,
    /// When the verdict is made, epoch seconds.
    pub now: i64,
    /// The current policy's mode (`testing`, `enforce`, `none`).
    pub mode: String,
    /// Since when the policy has had that mode without a break, epoch seconds.
    pub mode_since: i64,
    /// Reports over `window_days`.
    pub window: ReportSummary,
    /// Reports over `success_days`.
    pub success: ReportSummary,
    /// Reports over `failure_days`.
    pub failures: ReportSummary,
    /// The newest stored check run, if any.
    pub last_check: Option<LastCheck>,
    /// Policy fetches over `fetch_days`.
    pub fetches: FetchTotals,
}

/// The newest check run, as far as readiness reads it.
#[derive(Clone, Debug, Default)]
pub struct LastCheck {
    /// When it finished, epoch seconds.
    pub finished_at: i64,
    /// Its verdict (`ok` … `error`, or `not-run`).
    pub verdict: String,
    /// Its findings (`spec/findings.md`).
    pub findings: Vec<CheckFinding>,
}

/// One finding of a stored check run: the fields of `spec/findings.md` readiness uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct CheckFinding {
    /// The stable code.
    pub code: String,
    /// `ok`, `info`, `warning` or `error`.
    pub severity: String,
    /// What it is about.
    #[serde(default)]
    pub subject: String,
    /// What was seen.
    #[serde(default)]
    pub message: String,
    /// What to do.
    #[serde(default)]
    pub remedy: String,
}

/// The overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// In `testing`, and every criterion passes: switching to `enforce` is safe.
    Ready,
    /// At least one criterion fails.
    NotReady,
    /// Already in `enforce`; the criteria still tell whether that is healthy.
    Enforcing,
}

/// One criterion's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Criterion {
    /// Stable code (see the table above).
    pub code: &'static str,
    /// What it asks, in words.
    pub title: &'static str,
    /// Whether it holds.
    pub passed: bool,
    /// What was seen, with the numbers.
    pub evidence: String,
    /// What to do next, when it does not hold.
    pub next_step: Option<String>,
}

/// The verdict with its criteria.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// The policy domain.
    pub domain: String,
    /// The current mode.
    pub mode: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The first failing criterion's next step.
    pub next_step: Option<String>,
    /// Every criterion, in the order of the table above.
    pub criteria: Vec<Criterion>,
    /// When it was made, epoch seconds.
    pub evaluated_at: i64,
}

/// Judges `evidence` by the criteria of `settings`.
pub fn judge(evidence: &Evidence, settings: &ReadinessSection) -> Readiness {
    let criteria = vec![
        days_in_testing(evidence, settings),
        sending_organizations(evidence, settings),
        success_rate(evidence, settings),
        blocking_failures(evidence, settings),
        mx_coverage(evidence),
        policy_fetches(evidence, settings),
        tlsrpt_record(evidence),
    ];
    let next_step = criteria
        .iter()
        .find(|c| !c.passed)
        .and_then(|c| c.next_step.clone());
    let verdict = if evidence.mode == "enforce" {
        Verdict::Enforcing
    } else if criteria.iter().all(|c| c.passed) {
        Verdict::Ready
    } else {
        Verdict::NotReady
    };
    Readiness {
        domain: evidence.domain.clone(),
        mode: evidence.mode.clone(),
        verdict,
        next_step,
        criteria,
        evaluated_at: evidence.now,
    }
}

fn pass(code: &'static str, title: &'static str, evidence: String) -> Criterion {
    Criterion {
        code,
        title,
        passed: true,
        evidence,
        next_step: None,
    }
}

fn fail(code: &'static str, title: &'static str, evidence: String, next: String) -> Criterion {
    Criterion {
        code,
        title,
        passed: false,
        evidence,
        next_step: Some(next),
    }
}

fn day_of(at: i64) -> String {
    format_time(at).chars().take(10).collect()
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn days_in_testing(e: &Evidence, s: &ReadinessSection) -> Criterion {
    const CODE: &str = "days-in-testing";
    const TITLE: &str = "The policy has been in testing long enough";
    let since = day_of(e.mode_since);
    match e.mode.as_str() {
        "enforce" => pass(CODE, TITLE, format!("in enforce since {since}")),
        "testing" => {
            let days = (e.now.saturating_sub(e.mode_since) / DAY).max(0);
            let need = i64::from(s.min_days_testing);
            let evidence = format!(
                "in testing since {since}: {} (at least {need} needed)",
                plural(days.unsigned_abs(), "day", "days")
            );
            if days >= need {
                pass(CODE, TITLE, evidence)
            } else {
                let until = e.mode_since.saturating_add(need.saturating_mul(DAY));
                fail(
                    CODE,
                    TITLE,
                    evidence,
                    format!(
                        "keep the policy in testing until {} while reports come in",
                        day_of(until)
                    ),
                )
            }
        }
        other => fail(
            CODE,
            TITLE,
            format!("the policy's mode is {other}: senders apply no policy (RFC 8461 §5)"),
            "switch the mode to testing and let reports come in".to_owned(),
        ),
    }
}

fn sending_organizations(e: &Evidence, s: &ReadinessSection) -> Criterion {
    const CODE: &str = "sending-organizations";
    const TITLE: &str = "Enough senders have reported";
    let mut orgs: Vec<(&str, u64)> = e
        .window
        .by_organization
        .iter()
        .map(|o| {
            (
                o.organization.as_str(),
                o.successful.saturating_add(o.failed),
            )
        })
        .filter(|(_, sessions)| *sessions > 0)
        .collect();
    orgs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let count = orgs.len() as u64;
    let need = u64::from(s.min_organizations);
    let mut evidence = format!(
        "reports from {} in the last {} days (at least {need} needed)",
        plural(count, "sending organisation", "sending organisations"),
        s.window_days
    );
    if !orgs.is_empty() {
        let names: Vec<&str> = orgs
            .iter()
            .take(NAMED_ORGANIZATIONS)
            .map(|(n, _)| *n)
            .collect();
        evidence.push_str(": ");
        evidence.push_str(&names.join(", "));
        if orgs.len() > NAMED_ORGANIZATIONS {
            evidence.push_str(&format!(" and {} more", orgs.len() - NAMED_ORGANIZATIONS));
        }
    }
    if count >= need {
        pass(CODE, TITLE, evidence)
    } else if count == 0 {
        fail(
            CODE,
            TITLE,
            evidence,
            "no reports arrived: make sure the TLS-RPT record's rua reaches this server, \
             then wait for senders' daily reports"
                .to_owned(),
        )
    } else {
        fail(
            CODE,
            TITLE,
            evidence,
            "wait for reports from more senders: one sender's view may miss failures others see"
                .to_owned(),
        )
    }
}

/// `successful / all >= min` without floating point: all counts fit in u128 products.
fn rate_at_least(successful: u64, all: u64, min: crate::config::Percent) -> bool {
    u128::from(successful) * 10_000 >= u128::from(all) * u128::from(min.hundredths())
}

fn success_rate(e: &Evidence, s: &ReadinessSection) -> Criterion {
    const CODE: &str = "success-rate";
    const TITLE: &str = "Sessions succeed often enough";
    let summary = &e.success;
    let all = summary.successful.saturating_add(summary.failed);
    if all == 0 {
        return fail(
            CODE,
            TITLE,
            format!("no sessions reported in the last {} days", s.success_days),
            "wait for reports: the rate can only be measured on reported sessions".to_owned(),
        );
    }
    let rate = summary.successful as f64 * 100.0 / all as f64;
    let evidence = format!(
        "{rate:.2}% of {} succeeded in the last {} days ({} failed; at least {} needed)",
        plural(all, "session", "sessions"),
        s.success_days,
        summary.failed,
        s.min_success_rate
    );
    if rate_at_least(summary.successful, all, s.min_success_rate) {
        return pass(CODE, TITLE, evidence);
    }
    let next = match summary.by_result_type.first() {
        Some(top) => format!(
            "fix the most frequent failure, {} ({} sessions): {}",
            top.result_type,
            top.failed,
            remedy_of(&top.result_type)
        ),
        None => "find out why sessions fail: the reports give no result type".to_owned(),
    };
    fail(CODE, TITLE, evidence, next)
}

/// Failures that `enforce` turns into undelivered mail (RFC 8461 §5, issue 9's list).
pub fn is_blocking(result_type: &str) -> bool {
    result_type.starts_with("sts-")
        || result_type.starts_with("certificate-")
        || result_type == "starttls-not-supported"
}

fn remedy_of(result_type: &str) -> String {
    match result_type.parse::<ResultType>() {
        Ok(t) => t.remedy().to_owned(),
        Err(_) => "see the failure details of the reports".to_owned(),
    }
}

fn blocking_failures(e: &Evidence, s: &ReadinessSection) -> Criterion {
    const CODE: &str = "blocking-failures";
    const TITLE: &str = "No failures that enforce would turn into lost mail";
    let blocking: Vec<_> = e
        .failures
        .by_result_type
        .iter()
        .filter(|t| t.failed > 0 && is_blocking(&t.result_type))
        .collect();
    let Some(first) = blocking.first() else {
        return pass(
            CODE,
            TITLE,
            format!(
                "no sts-*, certificate-* or starttls-not-supported failures in the last {} days",
                s.failure_days
            ),
        );
    };
    let listed: Vec<String> = blocking
        .iter()
        .map(|t| {
            format!(
                "{} ({})",
                t.result_type,
                plural(t.failed, "session", "sessions")
            )
        })
        .collect();
    fail(
        CODE,
        TITLE,
        format!("in the last {} days: {}", s.failure_days, listed.join(", ")),
        format!(
            "fix {}: {}",
            first.result_type,
            remedy_of(&first.result_type)
        ),
    )
}

/// Findings that mean an MX would refuse or fail mail in `enforce`, or that its
/// certificate could not be confirmed.
const MX_BLOCKING: &[&str] = &[
    "sts.mx.uncovered",
    "sts.mx.lookup",
    "mx.address",
    "mx.unreachable",
    "mx.port25.blocked",
    "mx.starttls.missing",
    "mx.tls.handshake",
    "mx.cert.expired",
    "mx.cert.name",
    "mx.cert.untrusted",
    "net.address.refused",
];

fn last_check_missing(code: &'static str, title: &'static str) -> Criterion {
    fail(
        code,
        title,
        "no check has run yet".to_owned(),
        "run a check of the domain".to_owned(),
    )
}

fn not_run(code: &'static str, title: &'static str, check: &LastCheck) -> Option<Criterion> {
    (check.verdict == "not-run").then(|| {
        fail(
            code,
            title,
            format!(
                "the last check, at {}, could not run",
                format_time(check.finished_at)
            ),
            "run the check again".to_owned(),
        )
    })
}

fn finding_step(f: &CheckFinding) -> String {
    if f.remedy.is_empty() {
        format!("{}: {}", f.subject, f.message)
    } else {
        format!("{}: {}", f.subject, f.remedy)
    }
}

fn mx_coverage(e: &Evidence) -> Criterion {
    const CODE: &str = "mx-coverage";
    const TITLE: &str = "Every MX is covered by the policy and has a valid certificate";
    let Some(check) = &e.last_check else {
        return last_check_missing(CODE, TITLE);
    };
    if let Some(c) = not_run(CODE, TITLE, check) {
        return c;
    }
    let at = format_time(check.finished_at);
    let problems: Vec<&CheckFinding> = check
        .findings
        .iter()
        .filter(|f| MX_BLOCKING.contains(&f.code.as_str()))
        .collect();
    if let Some(first) = problems.first() {
        let listed: Vec<String> = problems
            .iter()
            .map(|f| format!("{} ({})", f.code, f.subject))
            .collect();
        return fail(
            CODE,
            TITLE,
            format!("at the check of {at}: {}", listed.join(", ")),
            finding_step(first),
        );
    }
    let covered = check.findings.iter().any(|f| f.code == "sts.mx.covered");
    let mut valid: Vec<&str> = check
        .findings
        .iter()
        .filter(|f| f.code == "mx.cert.ok")
        .map(|f| f.subject.as_str())
        .collect();
    valid.sort_unstable();
    valid.dedup();
    if !covered || valid.is_empty() {
        return fail(
            CODE,
            TITLE,
            format!(
                "the check of {at} confirmed {} and {}",
                if covered {
                    "MX coverage"
                } else {
                    "no MX coverage"
                },
                plural(
                    valid.len() as u64,
                    "valid certificate",
                    "valid certificates"
                )
            ),
            "run the check again and look at its sts.mx.* and mx.* findings".to_owned(),
        );
    }
    pass(
        CODE,
        TITLE,
        format!(
            "at the check of {at}: every MX covered; valid certificates on {}",
            valid.join(", ")
        ),
    )
}

fn policy_fetches(e: &Evidence, s: &ReadinessSection) -> Criterion {
    const CODE: &str = "policy-fetches";
    const TITLE: &str = "Senders fetch the policy";
    let f = &e.fetches;
    let fetches = f.fetches.max(0).unsigned_abs();
    let networks = f.networks.max(0).unsigned_abs();
    let evidence = format!(
        "{} from {} in the last {} days",
        plural(fetches, "fetch", "fetches"),
        plural(networks, "network", "networks"),
        s.fetch_days
    );
    if fetches > 0 {
        pass(CODE, TITLE, evidence)
    } else {
        fail(
            CODE,
            TITLE,
            evidence,
            "make sure the _mta-sts TXT record and the policy host's records are published \
             (see the domain's records), then wait for senders to fetch the policy"
                .to_owned(),
        )
    }
}

fn tlsrpt_record(e: &Evidence) -> Criterion {
    const CODE: &str = "tlsrpt-record";
    const TITLE: &str = "A TLS-RPT record is in place";
    let Some(check) = &e.last_check else {
        return last_check_missing(CODE, TITLE);
    };
    if let Some(c) = not_run(CODE, TITLE, check) {
        return c;
    }
    let at = format_time(check.finished_at);
    let problem = check.findings.iter().find(|f| {
        f.code.starts_with("tlsrpt.") && matches!(f.severity.as_str(), "warning" | "error")
    });
    if let Some(f) = problem {
        return fail(
            CODE,
            TITLE,
            format!("at the check of {at}: {} ({})", f.code, f.message),
            finding_step(f),
        );
    }
    match check.findings.iter().find(|f| f.code == "tlsrpt.txt.ok") {
        Some(f) => pass(
            CODE,
            TITLE,
            format!("at the check of {at}: {} is valid", f.subject),
        ),
        None => fail(
            CODE,
            TITLE,
            format!("the check of {at} did not confirm a TLS-RPT record"),
            "publish the _smtp._tls TXT record the domain's records list".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests;
