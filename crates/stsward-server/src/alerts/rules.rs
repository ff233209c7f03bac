//! The alert rules: each a pure function from one domain's stored evidence to the causes that
//! are open now, each cause with a key that stays the same while the cause lasts. No I/O and
//! no clock: `now` is part of the evidence ([`super::evidence`] gathers it).
//!
//! ```text
//! rule              open while                                              key
//! new-failure-type  a result type (RFC 8460 §4.3) reported today or          the type
//!                   yesterday that no report named in the 30 days before
//! success-rate      sessions (§4.2) of the last success_days < threshold    ""
//! cert-expiring     policy host certificate valid < 14 days (store), or     policy:<host>
//!                   the last check's mx.cert.expiring / mx.cert.expired     mx:<host>
//! mx-drift          the last check's sts.mx.uncovered, or the scheduler's    uncovered:<host>
//!                   MX follow outcome no_mx / failed                         follow:<outcome>
//! txt-stale         the owner's own _mta-sts TXT id is not the served one    ""
//!                   (RFC 8461 §3.1; the scheduler's txt_flagged_since)
//! verdict-worse     the last check's verdict is worse than the verdict of     <verdict>
//!                   the run before the current streak of equal verdicts
//! renewal-failed    the policy host certificate's last renewal failed        <host>
//! reports-stopped   no sessions in the last 3 UTC days, some in the 30 before ""
//! ```

use std::collections::BTreeSet;

use stsward_store::{CertState, OpenCause};

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Issue 9: "a certificate expiring within 14 days" (also `mx.cert.expiring`,
/// `spec/findings.md`).
pub const EXPIRY_DAYS: i64 = 14;
/// Issue 9: a failure type is new when not "seen in the previous 30 days".
pub const NEW_TYPE_LOOKBACK_DAYS: i64 = 30;
/// Issue 9: "reports stopping: none in 3 days for a domain that had them".
pub const QUIET_DAYS: i64 = 3;

/// Every rule, by its stored name.
pub const RULES: &[&str] = &[
    NEW_FAILURE_TYPE,
    SUCCESS_RATE,
    CERT_EXPIRING,
    MX_DRIFT,
    TXT_STALE,
    VERDICT_WORSE,
    RENEWAL_FAILED,
    REPORTS_STOPPED,
];

/// A failure type new in the reports.
pub const NEW_FAILURE_TYPE: &str = "new-failure-type";
/// The success rate below the threshold.
pub const SUCCESS_RATE: &str = "success-rate";
/// A certificate expiring within 14 days.
pub const CERT_EXPIRING: &str = "cert-expiring";
/// The MX records drifting away from the policy.
pub const MX_DRIFT: &str = "mx-drift";
/// A customer-kept TXT id out of step with the served policy.
pub const TXT_STALE: &str = "txt-stale";
/// A check verdict worse than the run before.
pub const VERDICT_WORSE: &str = "verdict-worse";
/// A failed certificate renewal.
pub const RENEWAL_FAILED: &str = "renewal-failed";
/// Reports stopping.
pub const REPORTS_STOPPED: &str = "reports-stopped";

/// The policy host's certificate, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertEvidence {
    /// Its host name (`mta-sts.<domain>`).
    pub name: String,
    /// Its state.
    pub state: CertState,
    /// Validity end, epoch seconds, once obtained.
    pub not_after: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// One finding of a stored check run (`spec/findings.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingEvidence {
    /// Its code, e.g. `mx.cert.expiring`.
    pub code: String,
    /// What it is about (an MX host, a domain).
    pub subject: String,
    /// What was seen.
    pub message: String,
}

/// One stored check run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEvidence {
    /// `ok`, `info`, `warning`, `error` or `not-run`.
    pub verdict: String,
    /// Its findings.
    pub findings: Vec<FindingEvidence>,
}

/// Sessions on one UTC day (its 00:00, epoch seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayEvidence {
    /// The day's start.
    pub day: i64,
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
}

/// Everything the rules look at for one domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Epoch seconds.
    pub now: i64,
    /// Sessions per day over at least the last 33 days, any order.
    pub days: Vec<DayEvidence>,
    /// Result types of failures reported on today and yesterday.
    pub recent_types: BTreeSet<String>,
    /// Result types of failures reported on the 30 days before those.
    pub earlier_types: BTreeSet<String>,
    /// The policy host's certificate, if one is stored.
    pub policy_cert: Option<CertEvidence>,
    /// Check runs, newest first.
    pub runs: Vec<RunEvidence>,
    /// The scheduler's last MX follow outcome, with its detail.
    pub mx_outcome: Option<(String, String)>,
    /// Since when the owner's TXT has not carried the served id.
    pub txt_flagged_since: Option<i64>,
}

/// The thresholds of `[alerts]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Hundredths of a percent.
    pub min_success_rate: u32,
    /// Days, today included.
    pub success_days: u32,
    /// Sessions needed before the rate is judged.
    pub min_sessions: u64,
}

fn cause(rule: &str, key: impl Into<String>, summary: String) -> OpenCause {
    OpenCause {
        rule: rule.to_owned(),
        key: key.into(),
        summary,
    }
}

/// The start of `now`'s UTC day.
pub fn day_start(now: i64) -> i64 {
    now - now.rem_euclid(DAY)
}

/// All rules; the causes open now.
pub fn evaluate(e: &Evidence, t: &Thresholds) -> Vec<OpenCause> {
    let mut open = Vec::new();
    open.extend(new_failure_type(e));
    open.extend(success_rate(e, t));
    open.extend(cert_expiring(e));
    open.extend(mx_drift(e));
    open.extend(txt_stale(e));
    open.extend(verdict_worse(e));
    open.extend(renewal_failed(e));
    open.extend(reports_stopped(e));
    open
}

/// A result type reported today or yesterday, and not in the 30 days before.
pub fn new_failure_type(e: &Evidence) -> Vec<OpenCause> {
    e.recent_types
        .difference(&e.earlier_types)
        .map(|t| {
            cause(
                NEW_FAILURE_TYPE,
                t.as_str(),
                format!(
                    "senders report a new failure type: {t} (not seen in the \
                     {NEW_TYPE_LOOKBACK_DAYS} days before)"
                ),
            )
        })
        .collect()
}

/// The session success rate of the last `success_days` days under the threshold, once
/// enough sessions are reported to judge.
pub fn success_rate(e: &Evidence, t: &Thresholds) -> Vec<OpenCause> {
    let since = day_start(e.now) - DAY * (i64::from(t.success_days.max(1)) - 1);
    let (ok, failed) = e
        .days
        .iter()
        .filter(|d| d.day >= since)
        .fold((0u64, 0u64), |(o, f), d| {
            (o.saturating_add(d.successful), f.saturating_add(d.failed))
        });
    let total = ok.saturating_add(failed);
    if total == 0 || total < t.min_sessions {
        return Vec::new();
    }
    // In hundredths of a percent, rounded down: 9,949.9 is under 9,950.
    let rate = u128::from(ok) * 10_000 / u128::from(total);
    if rate >= u128::from(t.min_success_rate) {
        return Vec::new();
    }
    vec![cause(
        SUCCESS_RATE,
        "",
        format!(
            "{failed} of {total} TLS sessions failed in the last {} day(s): a success rate of \
             {}.{:02}%, under the {}.{:02}% threshold",
            t.success_days,
            rate / 100,
            rate % 100,
            t.min_success_rate / 100,
            t.min_success_rate % 100
        ),
    )]
}

fn last_run(e: &Evidence) -> Option<&RunEvidence> {
    e.runs.iter().find(|r| r.verdict != "not-run")
}

/// The policy host's certificate valid for less than 14 more days, or the last check's
/// MX certificate findings.
pub fn cert_expiring(e: &Evidence) -> Vec<OpenCause> {
    let mut open = Vec::new();
    if let Some(c) = &e.policy_cert
        && let Some(not_after) = c.not_after
        && c.state != CertState::Pending
        && not_after - e.now < EXPIRY_DAYS * DAY
    {
        let left = (not_after - e.now).div_euclid(DAY);
        let when = if not_after <= e.now {
            "has expired".to_owned()
        } else {
            format!("expires in {left} day(s)")
        };
        open.push(cause(
            CERT_EXPIRING,
            format!("policy:{}", c.name),
            format!("the certificate of policy host {} {when}", c.name),
        ));
    }
    if let Some(run) = last_run(e) {
        let hosts = run
            .findings
            .iter()
            .filter(|f| f.code == "mx.cert.expiring" || f.code == "mx.cert.expired");
        for f in hosts {
            open.push(cause(
                CERT_EXPIRING,
                format!("mx:{}", f.subject),
                format!("MX {}: {}", f.subject, f.message),
            ));
        }
    }
    dedup(open)
}

/// MX hosts the policy does not cover at the last check, or an MX follow that could not
/// follow.
pub fn mx_drift(e: &Evidence) -> Vec<OpenCause> {
    let mut open = Vec::new();
    if let Some(run) = last_run(e) {
        for f in run.findings.iter().filter(|f| f.code == "sts.mx.uncovered") {
            open.push(cause(
                MX_DRIFT,
                format!("uncovered:{}", f.subject),
                format!(
                    "MX {} is not covered by the policy: {}",
                    f.subject, f.message
                ),
            ));
        }
    }
    if let Some((outcome, detail)) = &e.mx_outcome
        && matches!(outcome.as_str(), "no_mx" | "failed")
    {
        open.push(cause(
            MX_DRIFT,
            format!("follow:{outcome}"),
            format!("the policy's mx lines could not follow the MX records: {detail}"),
        ));
    }
    dedup(open)
}

/// The owner's own `_mta-sts` TXT does not carry the served policy's id.
pub fn txt_stale(e: &Evidence) -> Vec<OpenCause> {
    e.txt_flagged_since
        .map(|since| {
            let days = (e.now - since).max(0).div_euclid(DAY);
            vec![cause(
                TXT_STALE,
                "",
                format!(
                    "the _mta-sts TXT record kept by the domain's owner does not carry the id of \
                     the served policy (for {days} day(s)): senders will not fetch the new \
                     policy (RFC 8461 §3.1)"
                ),
            )]
        })
        .unwrap_or_default()
}

fn rank(verdict: &str) -> Option<u8> {
    match verdict {
        "ok" => Some(0),
        "info" => Some(1),
        "warning" => Some(2),
        "error" => Some(3),
        _ => None,
    }
}

/// The last verdict worse than the one before the current streak of equal verdicts (runs
/// that could not run are skipped): open from the run that got worse until one gets better.
pub fn verdict_worse(e: &Evidence) -> Vec<OpenCause> {
    let mut ranked = e
        .runs
        .iter()
        .filter_map(|r| rank(&r.verdict).map(|n| (n, r.verdict.as_str())));
    let Some((last, verdict)) = ranked.next() else {
        return Vec::new();
    };
    match ranked.find(|(n, _)| *n != last) {
        Some((before, was)) if before < last => vec![cause(
            VERDICT_WORSE,
            verdict,
            format!("the check's verdict got worse: {was} before, {verdict} now"),
        )],
        _ => Vec::new(),
    }
}

/// The last renewal of the policy host's certificate failed.
pub fn renewal_failed(e: &Evidence) -> Vec<OpenCause> {
    match &e.policy_cert {
        Some(c) if c.state == CertState::Failed => vec![cause(
            RENEWAL_FAILED,
            c.name.as_str(),
            format!(
                "the certificate of policy host {} could not be renewed: {}",
                c.name,
                c.last_error.as_deref().unwrap_or("no reason recorded")
            ),
        )],
        _ => Vec::new(),
    }
}

/// No sessions reported on the last 3 UTC days (today included) for a domain with some in
/// the 30 days before.
pub fn reports_stopped(e: &Evidence) -> Vec<OpenCause> {
    let quiet_from = day_start(e.now) - DAY * (QUIET_DAYS - 1);
    let had_from = quiet_from - DAY * NEW_TYPE_LOOKBACK_DAYS;
    let any = |d: &&DayEvidence| d.successful + d.failed > 0;
    let recent = e
        .days
        .iter()
        .filter(|d| d.day >= quiet_from)
        .any(|d| any(&d));
    let before = e
        .days
        .iter()
        .filter(|d| d.day >= had_from && d.day < quiet_from)
        .any(|d| any(&d));
    if recent || !before {
        return Vec::new();
    }
    vec![cause(
        REPORTS_STOPPED,
        "",
        format!(
            "no TLS-RPT reports for {QUIET_DAYS} days, after reports in the \
             {NEW_TYPE_LOOKBACK_DAYS} days before: check the _smtp._tls record and the intake"
        ),
    )]
}

/// Keeps the first cause of each key.
fn dedup(causes: Vec<OpenCause>) -> Vec<OpenCause> {
    let mut seen = BTreeSet::new();
    causes
        .into_iter()
        .filter(|c| seen.insert(c.key.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_760_000_000 + 12 * 3600 - 1_760_000_000 % DAY;
    const T: Thresholds = Thresholds {
        min_success_rate: 9_500,
        success_days: 2,
        min_sessions: 20,
    };

    fn keys(causes: &[OpenCause]) -> Vec<String> {
        causes.iter().map(|c| c.key.clone()).collect()
    }

    fn day(ago: i64, successful: u64, failed: u64) -> DayEvidence {
        DayEvidence {
            day: day_start(NOW) - ago * DAY,
            successful,
            failed,
        }
    }

    fn run(verdict: &str, findings: &[(&str, &str)]) -> RunEvidence {
        RunEvidence {
            verdict: verdict.into(),
            findings: findings
                .iter()
                .map(|(code, subject)| FindingEvidence {
                    code: (*code).into(),
                    subject: (*subject).into(),
                    message: "seen".into(),
                })
                .collect(),
        }
    }

    fn ev() -> Evidence {
        Evidence {
            now: NOW,
            ..Evidence::default()
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn new_failure_types_are_those_not_seen_in_the_30_days_before() {
        // (recent, earlier, open keys)
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (&[], &[], &[]),
            (&["certificate-expired"], &[], &["certificate-expired"]),
            // Seen before: not new.
            (&["certificate-expired"], &["certificate-expired"], &[]),
            (
                &["certificate-expired", "sts-policy-fetch-error"],
                &["certificate-expired"],
                &["sts-policy-fetch-error"],
            ),
            // Only earlier: nothing new today.
            (&[], &["starttls-not-supported"], &[]),
        ];
        for (recent, earlier, want) in cases {
            let e = Evidence {
                recent_types: set(recent),
                earlier_types: set(earlier),
                ..ev()
            };
            assert_eq!(
                keys(&new_failure_type(&e)),
                set(want).into_iter().collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn the_success_rate_opens_under_the_threshold_with_enough_sessions() {
        // (days, open)
        let cases: &[(&[DayEvidence], bool)] = &[
            (&[], false),
            (&[day(0, 90, 10)], true),
            (&[day(0, 95, 5)], false),
            // 94.99 % is under 95 %.
            (&[day(0, 9_499, 501)], true),
            // Too few sessions to judge.
            (&[day(0, 5, 5)], false),
            // Yesterday counts (success_days = 2), the day before does not.
            (&[day(1, 50, 50)], true),
            (&[day(2, 50, 50), day(0, 100, 0)], false),
        ];
        for (days, open) in cases {
            let e = Evidence {
                days: days.to_vec(),
                ..ev()
            };
            assert_eq!(!success_rate(&e, &T).is_empty(), *open, "{days:?}");
        }
    }

    fn cert(state: CertState, not_after: Option<i64>) -> Option<CertEvidence> {
        Some(CertEvidence {
            name: "mta-sts.example.com".into(),
            state,
            not_after,
            last_error: Some("order failed: rateLimited".into()),
        })
    }

    #[test]
    fn certificates_expiring_within_14_days() {
        let cases: &[(Option<CertEvidence>, Vec<RunEvidence>, &[&str])] = &[
            (None, vec![], &[]),
            (cert(CertState::Valid, Some(NOW + 30 * DAY)), vec![], &[]),
            (
                cert(CertState::Valid, Some(NOW + 13 * DAY)),
                vec![],
                &["policy:mta-sts.example.com"],
            ),
            // Expired counts too.
            (
                cert(CertState::Failed, Some(NOW - DAY)),
                vec![],
                &["policy:mta-sts.example.com"],
            ),
            // Pending: no certificate yet, nothing expires.
            (cert(CertState::Pending, Some(NOW + DAY)), vec![], &[]),
            (
                None,
                vec![run(
                    "warning",
                    &[
                        ("mx.cert.expiring", "mx1.example.com"),
                        ("mx.cert.expired", "mx2.example.com"),
                    ],
                )],
                &["mx:mx1.example.com", "mx:mx2.example.com"],
            ),
            // Only the last run that ran counts.
            (
                None,
                vec![
                    run("not-run", &[]),
                    run("ok", &[]),
                    run("warning", &[("mx.cert.expiring", "old")]),
                ],
                &[],
            ),
        ];
        for (policy_cert, runs, want) in cases {
            let e = Evidence {
                policy_cert: policy_cert.clone(),
                runs: runs.clone(),
                ..ev()
            };
            assert_eq!(keys(&cert_expiring(&e)), *want, "{policy_cert:?} {runs:?}");
        }
    }

    #[test]
    fn mx_drift_from_the_check_or_the_scheduler() {
        let follow = |o: &str| Some((o.to_owned(), "detail".to_owned()));
        type Case<'a> = (Vec<RunEvidence>, Option<(String, String)>, &'a [&'a str]);
        let cases: &[Case] = &[
            (vec![run("ok", &[])], follow("in_step"), &[]),
            (
                vec![run("error", &[("sts.mx.uncovered", "mx3.example.com")])],
                None,
                &["uncovered:mx3.example.com"],
            ),
            (vec![], follow("no_mx"), &["follow:no_mx"]),
            (vec![], follow("failed"), &["follow:failed"]),
            // A lookup that failed says nothing about drift.
            (vec![], follow("dns_failed"), &[]),
            // A stale pattern is a warning of its own, not drift.
            (
                vec![run("warning", &[("sts.mx.stale", "old.example.com")])],
                None,
                &[],
            ),
        ];
        for (runs, mx_outcome, want) in cases {
            let e = Evidence {
                runs: runs.clone(),
                mx_outcome: mx_outcome.clone(),
                ..ev()
            };
            assert_eq!(keys(&mx_drift(&e)), *want);
        }
    }

    #[test]
    fn a_stale_txt_id_is_open_while_flagged() {
        assert!(txt_stale(&ev()).is_empty());
        let e = Evidence {
            txt_flagged_since: Some(NOW - 2 * DAY),
            ..ev()
        };
        let open = txt_stale(&e);
        assert_eq!(keys(&open), [""]);
        assert!(open[0].summary.contains("2 day(s)"), "{}", open[0].summary);
    }

    #[test]
    fn a_verdict_worse_than_before_the_streak() {
        // Newest first; (verdicts, open key)
        let cases: &[(&[&str], Option<&str>)] = &[
            (&[], None),
            (&["error"], None),
            (&["ok", "ok"], None),
            (&["error", "ok"], Some("error")),
            // Still worse than before the streak: stays open.
            (&["error", "error", "warning"], Some("error")),
            // Better than the run before: resolved.
            (&["warning", "error", "ok"], None),
            // A run that could not run is neither better nor worse.
            (&["warning", "not-run", "ok"], Some("warning")),
            (&["not-run", "ok"], None),
        ];
        for (verdicts, want) in cases {
            let e = Evidence {
                runs: verdicts.iter().map(|v| run(v, &[])).collect(),
                ..ev()
            };
            let got = verdict_worse(&e);
            assert_eq!(got.first().map(|c| c.key.as_str()), *want, "{verdicts:?}");
        }
    }

    #[test]
    fn a_failed_renewal_is_open_until_the_certificate_is_valid() {
        let cases = [
            (None, false),
            (cert(CertState::Valid, Some(NOW + 60 * DAY)), false),
            (cert(CertState::Pending, None), false),
            (cert(CertState::Failed, Some(NOW + 20 * DAY)), true),
        ];
        for (policy_cert, open) in cases {
            let e = Evidence {
                policy_cert: policy_cert.clone(),
                ..ev()
            };
            let got = renewal_failed(&e);
            assert_eq!(!got.is_empty(), open, "{policy_cert:?}");
            if open {
                assert!(got[0].summary.contains("rateLimited"), "the error is told");
            }
        }
    }

    #[test]
    fn reports_stopping_after_three_quiet_days() {
        let cases: &[(&[DayEvidence], bool)] = &[
            // Never had reports: nothing stopped.
            (&[], false),
            (&[day(3, 10, 0)], true),
            (&[day(3, 10, 0), day(2, 1, 0)], false),
            (&[day(5, 0, 4)], true),
            // The last report more than 30 days before the quiet days: long gone, not news.
            (&[day(40, 10, 0)], false),
            (&[day(0, 10, 0)], false),
        ];
        for (days, open) in cases {
            let e = Evidence {
                days: days.to_vec(),
                ..ev()
            };
            assert_eq!(!reports_stopped(&e).is_empty(), *open, "{days:?}");
        }
    }

    #[test]
    fn every_rule_is_named_once_and_evaluate_runs_them_all() {
        let names: BTreeSet<&str> = RULES.iter().copied().collect();
        assert_eq!(names.len(), RULES.len());
        let e = Evidence {
            txt_flagged_since: Some(NOW),
            policy_cert: cert(CertState::Failed, Some(NOW + DAY)),
            ..ev()
        };
        let rules: BTreeSet<String> = evaluate(&e, &T).into_iter().map(|c| c.rule).collect();
        assert_eq!(
            rules,
            set(&[TXT_STALE, RENEWAL_FAILED, CERT_EXPIRING]),
            "each rule's causes come out of evaluate"
        );
    }
}
