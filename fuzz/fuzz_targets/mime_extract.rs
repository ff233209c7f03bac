//! RFC 8460 §5 report e-mails and files: extraction never panics, whatever the bytes, keeps
//! to its limits, and hands out only what it promises (JSON-looking payloads without a BOM);
//! each extracted payload then goes through the report parser, which must not panic either.
//!
//! Input: the first byte picks how the rest is presented: as a message, or as a file with one
//! of the names in `NAMES` (the seed script uses the same order).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stsward_mail::{Limits, extract_from_file, extract_from_message};
use stsward_proto::tlsrpt::parse_report;

/// Index 0 means "a message"; the others are file names, the last none at all.
const NAMES: [&str; 6] = [
    "",
    "report.eml",
    "google.com!example.com!1700000000!1700086399.json",
    "google.com!example.com!1700000000!1700086399.json.gz",
    "reports.zip",
    "",
];

/// Small limits keep a decompression bomb from spending the fuzzer's time; the logic that
/// enforces them is the same at any size.
const LIMITS: Limits = Limits {
    max_input: 256 * 1024,
    max_decompressed: 256 * 1024,
    max_total_decompressed: 1024 * 1024,
    max_zip_entries: 16,
    max_reports: 8,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let pick = usize::from(mode) % NAMES.len();
    let result = match pick {
        0 => extract_from_message(rest, &LIMITS),
        _ => extract_from_file(NAMES.get(pick).copied().unwrap_or_default(), rest, &LIMITS),
    };
    let Ok(extracted) = result else { return };

    assert!(!extracted.reports.is_empty(), "Ok with no report");
    assert!(
        extracted.reports.len() <= LIMITS.max_reports,
        "more reports than max_reports"
    );
    let mut total = 0u64;
    for report in &extracted.reports {
        let len = report.json.len() as u64;
        assert!(
            len <= LIMITS.max_decompressed,
            "report past max_decompressed"
        );
        total += len;
        assert!(
            !report.json.starts_with(b"\xEF\xBB\xBF"),
            "payload keeps its BOM"
        );
        let first = report.json.iter().find(|b| !b.is_ascii_whitespace());
        assert_eq!(first, Some(&b'{'), "payload does not start with '{{'");
        let _ = parse_report(&report.json);
    }
    assert!(
        total <= LIMITS.max_total_decompressed,
        "past max_total_decompressed"
    );
});
