//! RFC 5321 §4.2 SMTP replies: the push parser in `stsward-net` that every byte an MX host
//! sends reaches first. It must never panic, and where the network splits the stream must not
//! matter: pushing the bytes in chunks yields exactly the replies (and the first error) that
//! pushing them at once does. Every reply it returns is well formed, and the EHLO extension
//! reader never panics on it.
//!
//! Input: mode byte + raw bytes or token indices into `vocab/smtp_reply.txt` (see
//! `src/lib.rs`); the mode byte's upper bits pick the chunk length.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use stsward_fuzz::{chunk_len, shape, vocabulary};
use stsward_net::smtp_reply::{MAX_REPLY_LINES, Reply, ReplyError, ReplyParser, ehlo_extensions};

static VOCAB: LazyLock<Vec<String>> =
    LazyLock::new(|| vocabulary(include_str!("../vocab/smtp_reply.txt")));

/// Everything the parser returns until it needs more bytes or fails.
fn drain(parser: &mut ReplyParser, out: &mut Vec<Reply>) -> Result<(), ReplyError> {
    while let Some(reply) = parser.next_reply()? {
        out.push(reply);
    }
    Ok(())
}

fn check(reply: &Reply) {
    assert!(
        reply.code <= 999,
        "code {} has more than three digits",
        reply.code
    );
    assert!(
        (1..=MAX_REPLY_LINES).contains(&reply.lines.len()),
        "{} lines",
        reply.lines.len()
    );
    for ext in ehlo_extensions(reply) {
        assert!(!ext.keyword.is_empty());
        assert!(!ext.keyword.contains(|c: char| c.is_ascii_whitespace()));
        assert_eq!(ext.keyword, ext.keyword.to_ascii_uppercase());
    }
}

fuzz_target!(|data: &[u8]| {
    let input = shape(data, &VOCAB);
    let bytes = input.bytes();

    let mut whole = ReplyParser::new();
    whole.push(bytes);
    let mut at_once = Vec::new();
    let at_once_end = drain(&mut whole, &mut at_once);
    assert!(whole.buffered() <= bytes.len());

    let mut split = ReplyParser::new();
    let mut chunked = Vec::new();
    let mut chunked_end = Ok(());
    for chunk in bytes.chunks(chunk_len(data)) {
        split.push(chunk);
        chunked_end = drain(&mut split, &mut chunked);
        if chunked_end.is_err() {
            break;
        }
    }

    for reply in &at_once {
        check(reply);
    }
    assert_eq!(
        chunked, at_once,
        "replies depend on how the stream was split"
    );
    assert_eq!(
        chunked_end, at_once_end,
        "the outcome depends on how the stream was split"
    );
    if at_once_end.is_ok() {
        assert_eq!(split.buffered(), whole.buffered());
    }

    // RFC 3207 §4.2: after `220` to STARTTLS the caller throws away what is buffered.
    split.clear();
    assert_eq!(split.buffered(), 0);
    assert_eq!(split.next_reply(), Ok(None));
});
