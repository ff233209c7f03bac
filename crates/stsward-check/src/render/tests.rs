//! Rendering tests: the JSON contract of `spec/findings.md` and the shape of the text.

use serde_json::Value;
use stsward_proto::{Code, Severity};
use time::Duration;

use crate::judge::fixtures::*;
use crate::observe::PolicyFetch;
use crate::report::{BulkSummary, CheckReport, CheckResult, EXIT_ERRORS, EXIT_NOT_RUN, EXIT_OK};
use crate::{CheckError, NotRun, exit_status};

fn broken() -> CheckReport {
    let mut obs = healthy();
    obs.policy = policy(
        "example.test",
        PolicyFetch::Redirect {
            status: 301,
            location: Some("https://www.example.test/".into()),
        },
    );
    mx1_cert(&mut obs).not_after = now() + Duration::days(3);
    CheckReport::from_observation(obs, now())
}

#[test]
fn spec_json_has_domain_verdict_and_findings_with_exact_field_names() {
    let v: Value = serde_json::from_str(&super::json::render(&broken())).unwrap();
    assert_eq!(v["domain"], "example.test");
    assert_eq!(v["verdict"], "error");
    let findings = v["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for f in findings {
        let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "code",
                "severity",
                "subject",
                "message",
                "remedy",
                "reference"
            ]
        );
    }
    let redirect = findings
        .iter()
        .find(|f| f["code"] == "sts.policy.redirect")
        .unwrap();
    assert_eq!(redirect["severity"], "error");
    assert_eq!(redirect["subject"], "mta-sts.example.test");
    assert_eq!(redirect["reference"], "RFC 8461 §3.3");
    assert_eq!(redirect["remedy"], Code::StsPolicyRedirect.remedy());
}

#[test]
fn json_carries_observed_details() {
    let v: Value = serde_json::from_str(&super::json::render(&broken())).unwrap();
    let obs = &v["observed"];
    assert_eq!(obs["sts_txt"]["records"][0], "v=STSv1; id=20250601;");
    assert_eq!(obs["policy"]["outcome"], "redirect");
    assert_eq!(obs["policy"]["status"], 301);
    let host = &obs["mx"]["hosts"][0];
    assert_eq!(host["host"], "mx1.example.test");
    let addr = &host["addresses"]["addresses"][0];
    assert_eq!(addr["ip"], "127.0.0.11");
    let hs = &addr["probe"]["tls"]["handshake"];
    assert_eq!(hs["version"], "TLSv1.3");
    assert_eq!(hs["certificate"]["not_after"], "2025-06-04T12:00:00Z");
    assert_eq!(hs["certificate"]["trust"]["trust"], "trusted");
}

#[test]
fn report_round_trips_through_json() {
    let report = broken();
    let back: CheckReport = serde_json::from_str(&super::json::render(&report)).unwrap();
    assert_eq!(back, report);
}

#[test]
fn json_lines_are_one_object_per_line_with_a_summary() {
    let results: Vec<CheckResult> = vec![
        Ok(broken()),
        Ok(CheckReport::from_observation(healthy(), now())),
        Err(NotRun {
            domain: "bad..test".into(),
            error: CheckError::InvalidDomain {
                domain: "bad..test".into(),
                reason: "empty label",
            },
        }),
    ];
    let mut out = String::new();
    for r in &results {
        out.push_str(&super::json::render_line(r));
    }
    out.push_str(&super::json::render_summary(&BulkSummary::of(&results)));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["verdict"], "error");
    assert_eq!(lines[1]["verdict"], "info");
    assert_eq!(lines[2]["domain"], "bad..test");
    assert_eq!(lines[2]["error"]["kind"], "invalid-domain");
    let s = &lines[3]["summary"];
    assert_eq!(
        (&s["domains"], &s["error"], &s["info"], &s["not_run"]),
        (
            &Value::from(3),
            &Value::from(1),
            &Value::from(1),
            &Value::from(1)
        )
    );
}

#[test]
fn spec_exit_status_0_1_2() {
    let healthy = CheckReport::from_observation(healthy(), now());
    assert_eq!(healthy.exit_status(), EXIT_OK);
    assert_eq!(broken().exit_status(), EXIT_ERRORS);
    let not_run: CheckResult = Err(NotRun {
        domain: "x".into(),
        error: CheckError::ResolverUnusable {
            resolver: "127.0.0.1:1".into(),
            detail: "connection refused".into(),
        },
    });
    assert_eq!(exit_status(&[Ok(healthy.clone())]), EXIT_OK);
    assert_eq!(
        exit_status(&[Ok(healthy.clone()), Ok(broken())]),
        EXIT_ERRORS
    );
    assert_eq!(exit_status(&[Ok(broken()), not_run]), EXIT_NOT_RUN);
}

#[test]
fn verdict_is_the_worst_severity_and_counts_add_up() {
    let r = broken();
    assert_eq!(r.verdict, Severity::Error);
    let c = r.counts;
    assert_eq!(c.ok + c.info + c.warning + c.error, r.findings.len());
    assert_eq!(c.warning, 1, "the expiring MX certificate");
}

#[test]
fn text_follows_every_problem_with_its_remedy() {
    let text = super::text::render(&broken(), false);
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let problem = ["error", "warning", "info"]
            .iter()
            .any(|s| line.starts_with(&format!("  {s} ")));
        if problem {
            assert!(
                lines[i + 1].trim_start().starts_with("fix:"),
                "no remedy after {line:?}"
            );
        }
    }
    assert!(text.contains("sts.policy.redirect"));
    assert!(text.contains(Code::StsPolicyRedirect.remedy()));
    assert!(text.contains("\nMX host mx1.example.test (preference 10; 127.0.0.11)\n"));
    assert!(text.contains("\nTLS-RPT record  _smtp._tls.example.test\n"));
    assert!(!text.contains('\u{1b}'), "no colour unless asked");
}

#[test]
fn text_ends_with_a_one_line_verdict() {
    let text = super::text::render(&broken(), false);
    assert_eq!(
        text.lines().last().unwrap(),
        "example.test: 1 error, 1 warning — not ready for enforce"
    );
    let ok = CheckReport::from_observation(healthy(), now());
    let last = super::text::render(&ok, false);
    assert!(
        last.trim_end().ends_with("— enforced and healthy"),
        "{last}"
    );
}

#[test]
fn text_uses_colour_only_when_asked() {
    assert!(super::text::render(&broken(), true).contains('\u{1b}'));
}

#[test]
fn text_bulk_summary_counts_verdicts() {
    let results: Vec<CheckResult> = vec![Ok(broken()), Ok(broken())];
    assert_eq!(
        super::text::render_summary(&BulkSummary::of(&results)),
        "2 domains: 2 error\n"
    );
}

/// Text a hostile host could choose: erase the screen, set the window title, ring the bell,
/// return to the start of the line, a C1 CSI, a right-to-left override, DEL, tab.
const HOSTILE: &str = "\x1b[2J\x1b]0;pwned\x07\rFAKE\nfix: curl|sh\u{9b}31m\u{202e}\x7f\t";

fn assert_terminal_safe(text: &str) {
    for (i, b) in text.bytes().enumerate() {
        assert!(
            (b >= 0x20 || b == b'\n') && b != 0x7f,
            "byte {b:#04x} at {i} reaches the terminal: {text:?}"
        );
    }
    assert!(
        !text.contains(['\u{9b}', '\u{202e}']),
        "C1 or bidi control reaches the terminal: {text:?}"
    );
}

/// Every field the text renderer prints, filled with hostile text: the domain, the record
/// and policy names in the section titles, the MX host name, and each finding's subject,
/// message, remedy and reference.
fn hostile_report() -> CheckReport {
    let mut r = broken();
    r.domain = format!("example.test{HOSTILE}");
    r.observed.sts_txt.name = format!("_mta-sts.{HOSTILE}");
    r.observed.tlsrpt_txt.name = format!("_smtp._tls.{HOSTILE}");
    r.observed.policy.url = format!("https://{HOSTILE}/");
    if let crate::observe::MxLookup::Answer { hosts } = &mut r.observed.mx {
        for h in hosts {
            h.host = format!("mx{HOSTILE}");
        }
    }
    for f in &mut r.findings {
        if f.subject.starts_with("mx1") {
            f.subject = format!("mx{HOSTILE}");
        } else {
            f.subject = format!("{}{HOSTILE}", f.subject);
        }
        f.message = format!("554 {HOSTILE} go away");
        f.remedy = format!("remedy {HOSTILE}");
        f.reference = format!("RFC {HOSTILE}");
    }
    r
}

#[test]
fn regression_issue_6_text_output_escapes_every_remote_field() {
    let text = super::text::render(&hostile_report(), false);
    assert_terminal_safe(&text);
    assert!(text.contains("554 \\x1b[2J\\x1b]0;pwned\\x07\\x0dFAKE\\x0afix: curl|sh"));
    assert!(text.contains("\\u{9b}31m\\u{202e}\\x7f\\x09"), "{text}");
    assert!(text.contains("remedy \\x1b[2J"), "{text}");
    assert!(text.contains("RFC \\x1b[2J"), "{text}");
    assert!(text.contains("MX host mx\\x1b[2J"), "{text}");
    assert!(text.contains("MTA-STS record  _mta-sts.\\x1b[2J"), "{text}");
}

#[test]
fn regression_issue_6_colour_codes_are_the_only_escapes_in_coloured_text() {
    let text = super::text::render(&hostile_report(), true);
    assert!(
        !text.contains("\x1b[2J") && !text.contains("\x1b]0"),
        "{text:?}"
    );
    assert!(!text.contains(['\x07', '\r', '\x7f', '\t', '\u{9b}', '\u{202e}']));
    // Without the colour codes (ESC [ ... m), nothing unsafe is left.
    let mut plain = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("\x1b[") {
        plain.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('m').expect("an SGR sequence ends with m");
        assert!(
            after[..end]
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b';'),
            "only SGR colour codes: {:?}",
            &after[..end]
        );
        rest = &after[end + 1..];
    }
    plain.push_str(rest);
    assert_terminal_safe(&plain);
}

#[test]
fn regression_issue_6_not_run_and_verdict_lines_are_escaped() {
    let not_run = NotRun {
        domain: HOSTILE.into(),
        error: CheckError::InvalidDomain {
            domain: HOSTILE.into(),
            reason: "empty label",
        },
    };
    assert_terminal_safe(&super::text::render_not_run(&not_run, false));
    assert_terminal_safe(&super::text::verdict_line_plain(&hostile_report()));
}

#[test]
fn regression_issue_6_json_keeps_hostile_text_json_escaped() {
    let report = hostile_report();
    let out = super::json::render(&report);
    assert_terminal_safe(&out);
    let line = super::json::render_line(&Ok(report.clone()));
    assert_terminal_safe(&line);
    let back: CheckReport = serde_json::from_str(&out).unwrap();
    assert_eq!(back, report, "escaping in JSON loses nothing");
}
