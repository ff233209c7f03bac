//! RFC 5321 §4.2 SMTP replies: the push parser in `stsward-net` that every byte an MX host
//! sends reaches first. It must never panic, and where the network splits the stream must not
//! matter: pushing the bytes in chunks yields exactly the replies (and the first error) that
//! pushing them at once does. Every reply it returns is well formed, and the EHLO extension
//! reader never panics on it.
//!
//! Input: mode byte + raw bytes or token indices into `vocab/smtp_reply.txt` (see
//! `src/lib.rs`); the mode byte's upper bits pick the chunk length.
//!
//! The property lives in `stsward_fuzz::checks::smtp_reply`, which the regression test replays too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| stsward_fuzz::checks::smtp_reply(data));
