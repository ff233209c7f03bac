//! RFC 8460 §4.4 reports: the lenient parser never panics, whatever the bytes, and what
//! `stsward report parse` prints for an accepted report (`Report::to_json_string`) is stable:
//!
//! - it parses again, to the same report (a missing `total-failure-session-count` stays
//!   missing: RFC 8460 §4 lets failure counts overlap, so their sum is no total);
//! - reading it back finds no deviation that the original input did not have: the writer
//!   never adds one, and removes every deviation it can (a report that lacked, say,
//!   `policy-domain` still lacks it, so that deviation may stay);
//! - it is a fixed point: written again, it is byte for byte the same.
//!
//! Input: raw bytes (seeds are the corpus reports; `dict/report_json.dict` holds the keys).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stsward_proto::tlsrpt::parse_report;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = parse_report(data) else {
        return;
    };
    let json = parsed.report.to_json_string();
    let again = match parse_report(json.as_bytes()) {
        Ok(again) => again,
        Err(e) => panic!("own RFC JSON does not parse: {e}\n{json}"),
    };
    assert_eq!(
        again.report, parsed.report,
        "RFC JSON reads back differently:\n{json}"
    );
    for d in &again.deviations {
        assert!(
            parsed
                .deviations
                .iter()
                .any(|o| o.code == d.code && o.path == d.path),
            "the writer introduced deviation {d}\ninput deviations: {:?}\n{json}",
            parsed.deviations
        );
    }
    assert_eq!(
        again.report.to_json_string(),
        json,
        "RFC JSON is not a fixed point"
    );
});
