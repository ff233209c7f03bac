//! RFC 8460 §4.4 reports: the lenient parser never panics, whatever the bytes, and a report it
//! accepts, written back as RFC JSON, reads back as the same report with no deviations — the
//! normalised output `stsward report parse` prints is itself a conformant report.
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
    assert!(
        again.deviations.is_empty(),
        "own RFC JSON deviates from RFC 8460: {:?}\n{json}",
        again.deviations
    );
    assert_eq!(
        again.report.to_json_string(),
        json,
        "RFC JSON is not a fixed point"
    );
});
