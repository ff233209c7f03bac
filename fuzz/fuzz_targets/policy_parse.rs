//! RFC 8461 §3.2 policy files: the linter never panics, whatever the bytes, and every policy
//! it accepts survives display → parse unchanged (what the policy host serves is what senders
//! read back).
//!
//! Input: mode byte + raw bytes or token indices into `vocab/policy.txt` (see `src/lib.rs`).
//!
//! The property lives in `stsward_fuzz::checks::policy_parse`, which the regression test replays too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stsward_fuzz::checks::policy_parse(data));
