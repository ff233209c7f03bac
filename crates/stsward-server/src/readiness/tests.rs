//! The verdict as a pure function: each criterion passes and fails on its own evidence, and
//! the verdict's next step is the first failing criterion's.

use stsward_store::reports::{DaySessions, OrganizationSessions, TypeFailures};
use stsward_store::{FetchTotals, ReportSummary};

use super::*;
use crate::config::{Percent, ReadinessSection};

const DAY: i64 = 86_400;
const NOW: i64 = 1_900_000_000;

fn finding(code: &str, severity: &str, subject: &str) -> CheckFinding {
    CheckFinding {
        code: code.into(),
        severity: severity.into(),
        subject: subject.into(),
        message: format!("{code} seen"),
        remedy: format!("fix {code}"),
    }
}

fn summary(orgs: &[(&str, u64, u64)], types: &[(&str, u64)]) -> ReportSummary {
    let successful = orgs.iter().map(|o| o.1).sum();
    let failed = orgs.iter().map(|o| o.2).sum();
    ReportSummary {
        successful,
        failed,
        by_result_type: types
            .iter()
            .map(|(t, n)| TypeFailures {
                result_type: (*t).into(),
                failed: *n,
                meaning: String::new(),
            })
            .collect(),
        by_organization: orgs
            .iter()
            .map(|(o, s, f)| OrganizationSessions {
                organization: (*o).into(),
                successful: *s,
                failed: *f,
            })
            .collect(),
        by_receiving_mx: Vec::new(),
        days: vec![DaySessions {
            day: NOW / DAY * DAY,
            successful,
            failed,
        }],
    }
}

/// Evidence on which every criterion passes.
fn ready() -> Evidence {
    let reports = summary(&[("google.com", 5000, 2), ("microsoft.com", 3000, 0)], &[]);
    Evidence {
        domain: "example.com".into(),
        now: NOW,
        mode: "testing".into(),
        mode_since: NOW - 40 * DAY,
        window: reports.clone(),
        success: reports.clone(),
        failures: reports,
        last_check: Some(LastCheck {
            finished_at: NOW - 3600,
            verdict: "warning".into(),
            findings: vec![
                finding("sts.mx.covered", "ok", "example.com"),
                finding("mx.cert.ok", "ok", "mx1.example.com"),
                finding("mx.cert.ok", "ok", "mx2.example.com"),
                finding("tlsrpt.txt.ok", "ok", "_smtp._tls.example.com"),
                finding("sts.policy.mode-testing", "warning", "example.com"),
            ],
        }),
        fetches: FetchTotals {
            since_day: NOW / DAY - 6,
            fetches: 120,
            networks: 9,
            by_day: vec![(NOW / DAY, 120)],
        },
    }
}

fn criterion<'a>(r: &'a Readiness, code: &str) -> &'a Criterion {
    r.criteria
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("no criterion {code} in {r:?}"))
}

fn only_failure(e: &Evidence, code: &str) -> Readiness {
    let r = judge(e, &ReadinessSection::default());
    let failed: Vec<&str> = r
        .criteria
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.code)
        .collect();
    assert_eq!(failed, vec![code], "{r:#?}");
    assert_eq!(r.verdict, Verdict::NotReady);
    assert_eq!(r.next_step, criterion(&r, code).next_step, "{r:#?}");
    r
}

#[test]
fn every_criterion_passes_on_good_evidence() {
    let r = judge(&ready(), &ReadinessSection::default());
    assert_eq!(r.verdict, Verdict::Ready, "{r:#?}");
    assert_eq!(r.criteria.len(), 7);
    assert!(r.next_step.is_none());
    assert!(r.criteria.iter().all(|c| c.next_step.is_none()));
    let orgs = criterion(&r, "sending-organizations");
    assert!(
        orgs.evidence.contains("2 sending organisations")
            && orgs.evidence.contains("google.com, microsoft.com"),
        "{orgs:?}"
    );
    let mx = criterion(&r, "mx-coverage");
    assert!(
        mx.evidence
            .contains("valid certificates on mx1.example.com, mx2.example.com"),
        "{mx:?}"
    );
}

#[test]
fn days_in_testing_counts_from_the_mode_change() {
    let mut e = ready();
    e.mode_since = NOW - 29 * DAY - 1;
    let r = only_failure(&e, "days-in-testing");
    let c = criterion(&r, "days-in-testing");
    assert!(c.evidence.contains("29 days (at least 30 needed)"), "{c:?}");
    // Thirty days after the change: 2030-03-… is the day printed.
    let until = super::day_of(e.mode_since + 30 * DAY);
    assert!(
        c.next_step.as_deref().is_some_and(|s| s.contains(&until)),
        "{c:?}"
    );
    e.mode_since = NOW - 30 * DAY;
    assert_eq!(
        judge(&e, &ReadinessSection::default()).verdict,
        Verdict::Ready
    );
    // The threshold is configurable.
    e.mode_since = NOW - 3 * DAY;
    let settings = ReadinessSection {
        min_days_testing: 3,
        ..ReadinessSection::default()
    };
    assert_eq!(judge(&e, &settings).verdict, Verdict::Ready);
}

#[test]
fn mode_none_is_not_ready_and_enforce_is_enforcing() {
    let mut e = ready();
    e.mode = "none".into();
    let r = only_failure(&e, "days-in-testing");
    assert!(
        r.next_step
            .as_deref()
            .is_some_and(|s| s.contains("switch the mode to testing"))
    );
    e.mode = "enforce".into();
    e.mode_since = NOW - DAY;
    let r = judge(&e, &ReadinessSection::default());
    assert_eq!(r.verdict, Verdict::Enforcing);
    assert!(r.criteria.iter().all(|c| c.passed), "{r:#?}");
    // In enforce, failing criteria still show (the verdict stays Enforcing).
    e.failures = summary(&[("google.com", 10, 5)], &[("certificate-expired", 5)]);
    let r = judge(&e, &ReadinessSection::default());
    assert_eq!(r.verdict, Verdict::Enforcing);
    assert!(!criterion(&r, "blocking-failures").passed);
}

#[test]
fn one_sending_organisation_is_not_enough_and_none_says_where_reports_go() {
    let mut e = ready();
    e.window = summary(&[("google.com", 5000, 0), ("idle.example", 0, 0)], &[]);
    let r = only_failure(&e, "sending-organizations");
    let c = criterion(&r, "sending-organizations");
    assert!(
        c.evidence
            .starts_with("reports from 1 sending organisation "),
        "{c:?}"
    );
    e.window = ReportSummary::default();
    let r = judge(&e, &ReadinessSection::default());
    let c = criterion(&r, "sending-organizations");
    assert!(!c.passed);
    assert!(
        c.next_step.as_deref().is_some_and(|s| s.contains("rua")),
        "{c:?}"
    );
}

#[test]
fn success_rate_is_compared_exactly_at_the_threshold() {
    let mut e = ready();
    // 995 of 1000 is exactly 99.5 %: passes.
    e.success = summary(&[("a.example", 995, 5)], &[("validation-failure", 5)]);
    assert!(criterion(&judge(&e, &ReadinessSection::default()), "success-rate").passed);
    // 994 of 1000 fails, and the next step names the most frequent failure type.
    e.success = summary(&[("a.example", 994, 6)], &[("validation-failure", 6)]);
    let r = only_failure(&e, "success-rate");
    let c = criterion(&r, "success-rate");
    assert!(c.evidence.starts_with("99.40% of 1000 sessions"), "{c:?}");
    assert!(
        c.next_step
            .as_deref()
            .is_some_and(|s| s.contains("validation-failure (6 sessions)")),
        "{c:?}"
    );
    let settings = ReadinessSection {
        min_success_rate: Percent::from_hundredths(9900),
        ..ReadinessSection::default()
    };
    assert_eq!(judge(&e, &settings).verdict, Verdict::Ready);
    // No sessions: nothing to measure.
    e.success = ReportSummary::default();
    assert!(!criterion(&judge(&e, &ReadinessSection::default()), "success-rate").passed);
}

#[test]
fn blocking_failures_are_sts_certificate_and_starttls_only() {
    for t in [
        "sts-policy-fetch-error",
        "sts-webpki-invalid",
        "certificate-host-mismatch",
        "certificate-expired",
        "starttls-not-supported",
    ] {
        assert!(is_blocking(t), "{t}");
    }
    for t in [
        "validation-failure",
        "dane-required",
        "tlsa-invalid",
        "x-other",
    ] {
        assert!(!is_blocking(t), "{t}");
    }
    let mut e = ready();
    e.failures = summary(
        &[("google.com", 5000, 3)],
        &[("validation-failure", 1), ("certificate-not-trusted", 2)],
    );
    let r = only_failure(&e, "blocking-failures");
    let c = criterion(&r, "blocking-failures");
    assert!(
        c.evidence.contains("certificate-not-trusted (2 sessions)")
            && !c.evidence.contains("validation-failure"),
        "{c:?}"
    );
    let remedy = "certificate-not-trusted"
        .parse::<ResultType>()
        .map(|t| t.remedy().to_owned())
        .unwrap_or_default();
    assert!(!remedy.is_empty());
    assert!(
        c.next_step.as_deref().is_some_and(|s| s.contains(&remedy)),
        "{c:?}"
    );
}

#[test]
fn mx_coverage_needs_a_check_that_confirmed_every_mx() {
    let mut e = ready();
    let check = e.last_check.clone().unwrap_or_default();
    let mut bad = check.clone();
    bad.findings
        .push(finding("sts.mx.uncovered", "warning", "mx3.example.com"));
    e.last_check = Some(bad);
    let r = only_failure(&e, "mx-coverage");
    let c = criterion(&r, "mx-coverage");
    assert!(
        c.evidence.contains("sts.mx.uncovered (mx3.example.com)"),
        "{c:?}"
    );
    assert_eq!(
        c.next_step.as_deref(),
        Some("mx3.example.com: fix sts.mx.uncovered")
    );

    let mut expired = check.clone();
    expired.findings.retain(|f| f.subject != "mx2.example.com");
    expired
        .findings
        .push(finding("mx.cert.expired", "error", "mx2.example.com"));
    e.last_check = Some(expired);
    only_failure(&e, "mx-coverage");

    let mut unconfirmed = check.clone();
    unconfirmed.findings.retain(|f| f.code != "mx.cert.ok");
    e.last_check = Some(unconfirmed);
    only_failure(&e, "mx-coverage");

    // A check that could not run confirms nothing, and no check at all asks for one.
    let mut not_run = check;
    not_run.verdict = "not-run".into();
    not_run.findings.clear();
    e.last_check = Some(not_run);
    let r = judge(&e, &ReadinessSection::default());
    assert!(!criterion(&r, "mx-coverage").passed && !criterion(&r, "tlsrpt-record").passed);
    e.last_check = None;
    let r = judge(&e, &ReadinessSection::default());
    let c = criterion(&r, "mx-coverage");
    assert_eq!(c.next_step.as_deref(), Some("run a check of the domain"));
}

#[test]
fn policy_fetches_and_the_tlsrpt_record() {
    let mut e = ready();
    e.fetches = FetchTotals::default();
    let r = only_failure(&e, "policy-fetches");
    assert!(
        criterion(&r, "policy-fetches")
            .evidence
            .starts_with("0 fetches from 0 networks")
    );

    let mut e = ready();
    if let Some(check) = e.last_check.as_mut() {
        check.findings.retain(|f| !f.code.starts_with("tlsrpt."));
        check.findings.push(finding(
            "tlsrpt.txt.missing",
            "warning",
            "_smtp._tls.example.com",
        ));
    }
    let r = only_failure(&e, "tlsrpt-record");
    assert_eq!(
        criterion(&r, "tlsrpt-record").next_step.as_deref(),
        Some("_smtp._tls.example.com: fix tlsrpt.txt.missing")
    );
}

#[test]
fn the_next_step_is_the_first_failing_criterion_in_table_order() {
    let mut e = ready();
    e.fetches = FetchTotals::default();
    e.mode_since = NOW - DAY;
    let r = judge(&e, &ReadinessSection::default());
    assert_eq!(r.next_step, criterion(&r, "days-in-testing").next_step);
}

#[test]
fn percentages_print_as_configured() {
    assert_eq!(Percent::from_hundredths(9950).to_string(), "99.5%");
    assert_eq!(Percent::from_hundredths(9999).to_string(), "99.99%");
    assert_eq!(Percent::from_hundredths(10_000).to_string(), "100%");
    assert_eq!(Percent::from_hundredths(10_001).hundredths(), 10_000);
    assert_eq!(Percent::from_hundredths(905).to_string(), "9.05%");
}
