//! RFC 8461 §3.1 `_mta-sts` TXT records: parsing never panics, every record that parses
//! survives display → parse unchanged, and the record-set evaluation never panics.
//!
//! Input: mode byte + raw bytes or token indices into `vocab/sts_txt.txt` (see `src/lib.rs`).
//! A NUL splits the text into several TXT strings for the evaluation (one name, many records).
//!
//! The property lives in `stsward_fuzz::checks::sts_txt`, which the regression test replays too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stsward_fuzz::checks::sts_txt(data));
