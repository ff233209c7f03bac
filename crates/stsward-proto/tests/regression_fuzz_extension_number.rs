//! Regression (found by the `report_json` fuzz target): an extension member holding an
//! integer beyond u64 was read as a float and written back as `1.0000000000037123e+20`,
//! which reads back as a different number. Extensions are kept exactly as sent (STYLE.md §6),
//! so numbers keep their original text (serde_json's `arbitrary_precision`).

use stsward_proto::tlsrpt::parse_report;

const REPORT: &str = r#"{"organization-name":"o","date-range":{"start-datetime":"2026-01-01T00:00:00Z","end-datetime":"2026-01-01T23:59:59Z"},"contact-info":"c@example.org","report-id":"r","x-count":100000000000371220624,"x-ratio":0.1000000000000000055511151231257827,"policies":[{"policy":{"policy-type":"no-policy-found","policy-domain":"example.org"},"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}]}"#;

#[test]
fn extension_numbers_survive_serialise_and_reparse_exactly() {
    let first = parse_report(REPORT.as_bytes()).expect("parses");
    let text = first.report.to_json_string();
    assert!(text.contains("\"x-count\":100000000000371220624"), "{text}");
    assert!(
        text.contains("\"x-ratio\":0.1000000000000000055511151231257827"),
        "{text}"
    );
    let again = parse_report(text.as_bytes()).expect("re-parses");
    assert_eq!(again.report, first.report);
    assert_eq!(
        again.report.to_json_string(),
        text,
        "serialisation is a fixed point"
    );
}
