//! RFC 8460 §5 report e-mails and files: extraction never panics, whatever the bytes, keeps
//! to its limits, and hands out only what it promises (JSON-looking payloads without a BOM);
//! each extracted payload then goes through the report parser, which must not panic either.
//!
//! Input: the first byte picks how the rest is presented: as a message, or as a file with one
//! of the names in `NAMES` (the seed script uses the same order).
//!
//! The property lives in `stsward_fuzz::checks::mime_extract`, which the regression test replays too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stsward_fuzz::checks::mime_extract(data));
