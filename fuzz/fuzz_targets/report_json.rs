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
//!
//! The property lives in `stsward_fuzz::checks::report_json`, which the regression test replays too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stsward_fuzz::checks::report_json(data));
