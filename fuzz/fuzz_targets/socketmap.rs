//! Postfix socketmap (`socketmap_table(5)`) netstrings: the request push parser in
//! `stsward-proto` that every byte a socketmap client sends reaches first, and the reply
//! encoder/parser. No panic; pushing the stream in chunks yields exactly the requests (and the
//! first error) that pushing it at once does; the parser never holds more than its limit;
//! every reply the encoder writes parses back.
//!
//! Input: mode byte + raw bytes or token indices into `vocab/socketmap.txt` (see
//! `src/lib.rs`); the mode byte's upper bits pick the chunk length.
//!
//! The property lives in `stsward_fuzz::checks::socketmap`, which the regression test replays too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stsward_fuzz::checks::socketmap(data));
