//! The fast path and the `serde_json::Value` reference agree (RFC 8460 §4.4 reports): same
//! report, same deviations, same errors, on every corpus report and on tricky inputs.

use std::io::Read;

use super::*;

/// What one path made of the input: the report and its deviations, or the error's text.
type Outcome = Result<ParsedReport, String>;

/// The fast path alone: `None` when it declined (its parser gave up, or an extension could
/// not be kept exactly).
fn fast_only(bytes: &[u8]) -> Option<Outcome> {
    let (bom, bytes) = match bytes.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    let tree = fast::parse(bytes)?;
    let mut w = Walker::new(bom);
    let report = w.report(tree);
    if w.bailed {
        return None;
    }
    Some(
        report
            .map_err(|e| e.to_string())
            .map(|report| ParsedReport {
                report,
                deviations: w.deviations,
            }),
    )
}

fn reference(bytes: &[u8]) -> Outcome {
    let (bom, bytes) = match bytes.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    parse_reference(bom, bytes).map_err(|e| e.to_string())
}

/// Asserts that both paths agree on `bytes`, and that [`parse_report`] gives the reference's
/// answer; returns whether the fast path took the input.
fn agree(name: &str, bytes: &[u8]) -> bool {
    let want = reference(bytes);
    let got = parse_report(bytes).map_err(|e| e.to_string());
    assert_eq!(got, want, "{name}: parse_report differs from the reference");
    if let Ok(p) = &got {
        // Extensions and numbers must also render identically.
        let want_text = want.as_ref().map(|w| w.report.to_json_string());
        assert_eq!(
            Ok(p.report.to_json_string()),
            want_text,
            "{name}: rendering"
        );
    }
    match fast_only(bytes) {
        None => false,
        Some(fast) => {
            assert_eq!(
                fast, want,
                "{name}: the fast path differs from the reference"
            );
            true
        }
    }
}

fn corpus_reports() -> Vec<(String, Vec<u8>)> {
    let Some(corpus) = stsward_testkit::corpus("stsward-proto/parse-agreement") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for dir in ["json", "gz"] {
        let dir = corpus.join("tlsrpt").join(dir);
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .expect("corpus directory")
            .map(|e| e.expect("corpus entry").path())
            .collect();
        paths.sort();
        for path in paths {
            let raw = std::fs::read(&path).expect("corpus file");
            let bytes = if path.extension().is_some_and(|e| e == "gz") {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(raw.as_slice())
                    .read_to_end(&mut out)
                    .expect("corpus gzip");
                out
            } else {
                raw
            };
            out.push((path.display().to_string(), bytes));
        }
    }
    out
}

#[test]
fn rfc8460_4_4_fast_path_agrees_on_every_corpus_report() {
    let reports = corpus_reports();
    let mut taken = 0;
    for (name, bytes) in &reports {
        if agree(name, bytes) {
            taken += 1;
        }
    }
    // The fast path must actually carry the corpus, or it saves nothing.
    assert!(
        reports.is_empty() || taken * 10 >= reports.len() * 8,
        "the fast path took only {taken} of {} corpus reports",
        reports.len()
    );
}

const BASE: &str = r#"{"organization-name":"Org","date-range":{"start-datetime":"2026-01-01T00:00:00Z","end-datetime":"2026-01-01T23:59:59Z"},"contact-info":"c@example.org","report-id":"r-1","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: enforce"],"policy-domain":"example.org","mx-host":["mx.example.org"]},"summary":{"total-successful-session-count":10,"total-failure-session-count":2},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.1","receiving-mx-hostname":"mx.example.org","receiving-ip":"198.51.100.2","failed-session-count":2,"additional-information":"https://example.org/x","failure-reason-code":"X"}]}]}"#;

/// `BASE` with `from` replaced by `to` (which must occur).
fn variant(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

#[test]
fn rfc8460_4_4_fast_path_agrees_on_tricky_inputs() {
    let ok_count = r#""total-successful-session-count":10"#;
    let detail_count = r#""failed-session-count":2"#;
    let cases: Vec<(&str, String, Option<bool>)> = vec![
        // (name, input, whether the fast path must take it; None: either way)
        ("base", BASE.to_owned(), Some(true)),
        ("bom", format!("\u{feff}{BASE}"), Some(true)),
        ("bom and spaces", format!("\u{feff} \r\n\t{BASE}\n"), Some(true)),
        (
            "float count",
            variant(ok_count, r#""total-successful-session-count":10.0"#),
            Some(false),
        ),
        (
            "exponent count",
            variant(detail_count, r#""failed-session-count":2e0"#),
            Some(false),
        ),
        (
            "fractional count",
            variant(detail_count, r#""failed-session-count":2.5"#),
            Some(false),
        ),
        (
            "negative count",
            variant(ok_count, r#""total-successful-session-count":-1"#),
            Some(false),
        ),
        (
            "string count",
            variant(ok_count, r#""total-successful-session-count":"10""#),
            Some(true),
        ),
        (
            "padded string count",
            variant(ok_count, r#""total-successful-session-count":"010""#),
            Some(true),
        ),
        (
            "non-numeric string count",
            variant(ok_count, r#""total-successful-session-count":"ten""#),
            Some(true),
        ),
        (
            "string float count",
            variant(ok_count, r#""total-successful-session-count":"1e1""#),
            Some(true),
        ),
        (
            "u64::MAX",
            variant(ok_count, r#""total-successful-session-count":18446744073709551615"#),
            Some(false),
        ),
        (
            "huge count",
            variant(ok_count, r#""total-successful-session-count":184467440737095516150000"#),
            Some(false),
        ),
        (
            "boolean count",
            variant(ok_count, r#""total-successful-session-count":true"#),
            Some(true),
        ),
        (
            "null count",
            variant(detail_count, r#""failed-session-count":null"#),
            Some(true),
        ),
        (
            "unknown members everywhere",
            BASE.replace(
                r#""summary":{"#,
                r#""summary":{"x-s":[1,{"a":null}],"#,
            )
            .replacen("{", r#"{"x-top":{"b":true,"c":"\"q\""},"#, 1)
            .replace(r#""policy":{"#, r#""policy":{"x-p":"v","#),
            Some(true),
        ),
        (
            "unknown member with a float",
            BASE.replacen("{", r#"{"x-ratio":0.1000000000000000055511151231257827,"#, 1),
            Some(false),
        ),
        (
            "unknown member with a huge integer",
            BASE.replacen("{", r#"{"x-count":100000000000371220624,"#, 1),
            Some(false),
        ),
        (
            "duplicate known key",
            BASE.replacen(
                r#""report-id":"r-1","#,
                r#""report-id":"first","x":1,"report-id":"r-1","#,
                1,
            ),
            Some(true),
        ),
        (
            "duplicate unknown key",
            BASE.replacen("{", r#"{"x":1,"y":2,"x":{"z":[3]},"#, 1),
            Some(true),
        ),
        (
            "duplicate key inside an extension",
            BASE.replacen("{", r#"{"x":{"k":1,"j":2,"k":3},"#, 1),
            Some(true),
        ),
        (
            "both mx-host keys",
            variant(
                r#""mx-host":["mx.example.org"]"#,
                r#""mx-host-pattern":"b","mx-host":["mx.example.org"],"mx-host-pattern":"*.c""#,
            ),
            Some(true),
        ),
        (
            "mx-host string",
            variant(r#"["mx.example.org"]"#, r#""mx.example.org""#),
            Some(true),
        ),
        ("mx-host empty", variant(r#"["mx.example.org"]"#, r#""""#), Some(true)),
        (
            "aliases",
            variant(
                r#""additional-information":"https://example.org/x","failure-reason-code":"X""#,
                r#""additional-info-uri":"u","failure-error-code":"E","failure-reason-code":"X""#,
            ),
            Some(true),
        ),
        (
            "escapes",
            variant(r#""Org""#, r#""O\"r\\g\/\b\f\n\r\t""#),
            Some(true),
        ),
        ("unicode escape", variant(r#""Org""#, r#""\u00e9""#), Some(false)),
        (
            "surrogate pair",
            variant(r#""Org""#, r#""\ud83d\ude00""#),
            Some(false),
        ),
        ("lone surrogate", variant(r#""Org""#, r#""\ud83d""#), Some(false)),
        ("non-ASCII", variant(r#""Org""#, "\"Örg ✓\""), Some(true)),
        (
            "magic key",
            BASE.replacen("{", r#"{"$serde_json::private::Number":"1","#, 1),
            Some(false),
        ),
        (
            "magic date-range",
            variant(
                r#"{"start-datetime":"2026-01-01T00:00:00Z","end-datetime":"2026-01-01T23:59:59Z"}"#,
                r#"{"$serde_json::private::Number":"5"}"#,
            ),
            Some(false),
        ),
        ("null contact", variant(r#""c@example.org""#, "null"), Some(true)),
        (
            "wrong type org",
            variant(r#""Org""#, r#"["Org"]"#),
            Some(true),
        ),
        (
            "no policies",
            variant(r#""policies":["#, r#""x":0,"y":["#),
            Some(true),
        ),
        ("empty object", "{}".to_owned(), Some(true)),
        ("array", "[1,2]".to_owned(), Some(true)),
        ("string", r#""report""#.to_owned(), Some(true)),
        ("empty", String::new(), Some(false)),
        ("only a BOM", "\u{feff}".to_owned(), Some(false)),
        ("truncated", BASE[..BASE.len() - 3].to_owned(), Some(false)),
        ("trailing comma", variant("]}]}", "],}]}"), Some(false)),
        ("trailing text", format!("{BASE} x"), Some(false)),
        ("two documents", format!("{BASE}{BASE}"), Some(false)),
        (
            "control character",
            variant(r#""Org""#, "\"O\trg\""),
            Some(false),
        ),
        (
            "naive date-time",
            variant("2026-01-01T00:00:00Z", "2026-01-01 00:00:00"),
            Some(true),
        ),
        (
            "bad date-time",
            variant("2026-01-01T00:00:00Z", "yesterday"),
            Some(true),
        ),
        (
            "tlsa policy-string as JSON",
            variant(
                r#""policy-type":"sts","policy-string":["version: STSv1","mode: enforce"]"#,
                r#""policy-type":"tlsa","policy-string":["[\"3 1 1 ab\",\"3 1 1 cd\"]"]"#,
            ),
            Some(true),
        ),
        (
            "empty details and policies",
            r#"{"organization-name":"o","report-id":"r","date-range":{"start-datetime":"2026-01-02T00:00:00Z","end-datetime":"2026-01-01T00:00:00Z"},"policies":[]}"#.to_owned(),
            Some(true),
        ),
    ];
    for (name, text, fast) in &cases {
        let taken = agree(name, text.as_bytes());
        if let Some(fast) = fast {
            assert_eq!(taken, *fast, "{name}: whether the fast path takes it");
        }
    }
    // Invalid UTF-8 inside a string and outside one.
    let bad = BASE.replacen("Org", "O\u{1}", 1).into_bytes();
    let mut bad_utf8 = bad.clone();
    if let Some(at) = bad_utf8.iter().position(|&b| b == 1) {
        bad_utf8[at] = 0xff;
    }
    assert!(!agree("invalid UTF-8 in a string", &bad_utf8));
    assert!(!agree("invalid UTF-8 outside", b"\xff{}"));
}
