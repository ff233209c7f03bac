//! RFC 8460 §3 `_smtp._tls` TXT records: parsing never panics, every record that parses
//! survives display → parse unchanged, and the record-set evaluation never panics.
//!
//! Input: mode byte + raw bytes or token indices into `vocab/tlsrpt_txt.txt` (see
//! `src/lib.rs`). A NUL splits the text into several TXT strings for the evaluation.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use stsward_fuzz::{shape, vocabulary};
use stsward_proto::tlsrpt::{TlsRptRecord, evaluate_txt};

static VOCAB: LazyLock<Vec<String>> =
    LazyLock::new(|| vocabulary(include_str!("../vocab/tlsrpt_txt.txt")));

fuzz_target!(|data: &[u8]| {
    let input = shape(data, &VOCAB);
    let Ok(text) = std::str::from_utf8(input.bytes()) else {
        return;
    };

    if let Ok(record) = text.parse::<TlsRptRecord>() {
        let canonical = record.to_string();
        assert_eq!(
            canonical.parse::<TlsRptRecord>().as_ref(),
            Ok(&record),
            "display does not parse back to the same record: {canonical:?}"
        );
    }

    let records: Vec<&str> = text.split('\0').collect();
    let _ = evaluate_txt("example.com", &records);
});
