//! RFC 8461 §3.1 `_mta-sts` TXT records: parsing never panics, every record that parses
//! survives display → parse unchanged, and the record-set evaluation never panics.
//!
//! Input: mode byte + raw bytes or token indices into `vocab/sts_txt.txt` (see `src/lib.rs`).
//! A NUL splits the text into several TXT strings for the evaluation (one name, many records).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use stsward_fuzz::{shape, vocabulary};
use stsward_proto::mta_sts::{StsRecord, evaluate};

static VOCAB: LazyLock<Vec<String>> =
    LazyLock::new(|| vocabulary(include_str!("../vocab/sts_txt.txt")));

fuzz_target!(|data: &[u8]| {
    let input = shape(data, &VOCAB);
    let Ok(text) = std::str::from_utf8(input.bytes()) else {
        return;
    };

    if let Ok(record) = text.parse::<StsRecord>() {
        let canonical = record.to_string();
        assert_eq!(
            canonical.parse::<StsRecord>().as_ref(),
            Ok(&record),
            "display does not parse back to the same record: {canonical:?}"
        );
    }

    let records: Vec<&str> = text.split('\0').collect();
    let _ = evaluate(&records, "_mta-sts.example.com");
});
