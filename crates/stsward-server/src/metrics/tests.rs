//! The exposition from a snapshot: names, labels, escaping and the bound on result types.

use stsward_store::{CertificateRow, DomainRow, FailureRow, SessionRow, VerdictRow};

use super::*;

fn snapshot() -> MetricsSnapshot {
    MetricsSnapshot {
        domains: vec![
            DomainRow {
                tenant: "acme".into(),
                domain: "a.example".into(),
                state: "active".into(),
                mode: "testing".into(),
            },
            DomainRow {
                tenant: "acme".into(),
                domain: "b.example".into(),
                state: "active".into(),
                mode: "testing".into(),
            },
        ],
        sessions: vec![SessionRow {
            domain: "a.example".into(),
            successful: 990,
            failed: 10,
        }],
        failures: vec![
            FailureRow {
                domain: "a.example".into(),
                result_type: "certificate-expired".into(),
                failed: 6,
            },
            // A sender's own words: not an RFC 8460 §4.3 type, and hostile.
            FailureRow {
                domain: "a.example".into(),
                result_type: "x\"} 1\nstsward_fake 2".into(),
                failed: 3,
            },
            FailureRow {
                domain: "a.example".into(),
                result_type: "made-up".into(),
                failed: 1,
            },
        ],
        fetches: vec![("a.example".into(), 42)],
        certificates: vec![
            CertificateRow {
                name: "mta-sts.a.example".into(),
                state: "valid".into(),
                not_after: Some(1_900_000_000),
            },
            CertificateRow {
                name: "mta-sts.b.example".into(),
                state: "pending".into(),
                not_after: None,
            },
        ],
        verdicts: vec![VerdictRow {
            domain: "a.example".into(),
            verdict: "warning".into(),
            finished_at: 1_800_000_000,
        }],
        reports_by_channel: vec![("smtp".into(), 7), ("with\"quote".into(), 1)],
        open_alerts: vec![("cert-expiring".into(), 2)],
        alert_deliveries: vec![("failed".into(), 1), ("sent".into(), 5)],
    }
}

#[test]
fn every_family_is_there_with_its_labels() {
    let text = encode(snapshot(), 7);
    for line in [
        "# TYPE stsward_hosted_domains gauge",
        "stsward_hosted_domains{mode=\"testing\",state=\"active\"} 2",
        "stsward_domain_info{tenant=\"acme\",domain=\"a.example\",mode=\"testing\",state=\"active\"} 1",
        "stsward_reported_sessions{domain=\"a.example\",result=\"successful\"} 990",
        "stsward_reported_sessions{domain=\"a.example\",result=\"failed\"} 10",
        "stsward_reported_failures{domain=\"a.example\",result_type=\"certificate-expired\"} 6",
        "stsward_policy_fetches{domain=\"a.example\"} 42",
        "stsward_certificate_not_after_seconds{name=\"mta-sts.a.example\",state=\"valid\"} 1900000000",
        "stsward_check_verdict{domain=\"a.example\",verdict=\"warning\"} 1",
        "stsward_check_finished_seconds{domain=\"a.example\"} 1800000000",
        "# TYPE stsward_reports_stored counter",
        "stsward_reports_stored_total{channel=\"smtp\"} 7",
        "stsward_metrics_window_days 7",
        "stsward_alerts_open{rule=\"cert-expiring\"} 2",
        "stsward_alert_deliveries{state=\"failed\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    // A pending certificate has no expiry to show.
    assert!(!text.contains("mta-sts.b.example"), "{text}");
}

#[test]
fn senders_words_cannot_add_series_or_break_the_format() {
    let text = encode(snapshot(), 7);
    // The two unknown types are summed under one label.
    assert!(
        text.lines()
            .any(|l| l
                == "stsward_reported_failures{domain=\"a.example\",result_type=\"unknown\"} 4"),
        "{text}"
    );
    assert!(!text.contains("stsward_fake"), "{text}");
    assert!(!text.contains("made-up"), "{text}");
    // A quote in a stored value is escaped, not a label's end.
    assert!(
        text.lines()
            .any(|l| l == "stsward_reports_stored_total{channel=\"with\\\"quote\"} 1"),
        "{text}"
    );
    // Every sample line is `name{labels} value` or `name value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap_or("");
        assert!(value.parse::<f64>().is_ok(), "{line:?}");
        assert!(line.starts_with("stsward_"), "{line:?}");
    }
}

#[test]
fn escape_covers_backslash_quote_and_line_feed() {
    assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    assert_eq!(escape("plain.example"), "plain.example");
}

#[test]
fn result_types_are_the_rfc_8460_names_or_unknown() {
    for t in KNOWN {
        assert_eq!(result_label(t), *t);
    }
    assert_eq!(result_label(""), "unknown");
    assert_eq!(result_label("sts-invented"), "unknown");
}
