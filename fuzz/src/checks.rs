//! The property each fuzz target checks, as plain functions. The libFuzzer targets in
//! `fuzz_targets/` call them, and `tests/regressions.rs` replays every saved input under
//! `regressions/<target>/` through the same function on every `cargo test --workspace`, so a
//! fixed crash stays fixed without a fuzzing toolchain.
//!
//! Each function panics when its property fails; `README.md` has the table of properties.

use std::sync::LazyLock;

use stsward_mail::{Limits, extract_from_file, extract_from_message};
use stsward_net::smtp_reply::{MAX_REPLY_LINES, Reply, ReplyError, ReplyParser, ehlo_extensions};
use stsward_proto::mta_sts::{Policy, StsRecord, evaluate, lint};
use stsward_proto::socketmap::{
    MAX_REPLY_LEN, Reply as MapReply, ReplyParser as MapReplyParser, Request, RequestParser,
    SocketmapError,
};
use stsward_proto::tlsrpt::{TlsRptRecord, evaluate_txt, parse_report};

use crate::{chunk_len, shape, vocabulary};

/// A target's property check.
pub type Check = fn(&[u8]);

/// Every target, by the name of its `fuzz_targets/` file and `regressions/` folder.
pub const TARGETS: [(&str, Check); 7] = [
    ("policy_parse", policy_parse),
    ("sts_txt", sts_txt),
    ("tlsrpt_txt", tlsrpt_txt),
    ("report_json", report_json),
    ("mime_extract", mime_extract),
    ("smtp_reply", smtp_reply),
    ("socketmap", socketmap),
];

static POLICY_VOCAB: LazyLock<Vec<String>> =
    LazyLock::new(|| vocabulary(include_str!("../vocab/policy.txt")));
static STS_TXT_VOCAB: LazyLock<Vec<String>> =
    LazyLock::new(|| vocabulary(include_str!("../vocab/sts_txt.txt")));
static TLSRPT_TXT_VOCAB: LazyLock<Vec<String>> =
    LazyLock::new(|| vocabulary(include_str!("../vocab/tlsrpt_txt.txt")));
static SMTP_REPLY_VOCAB: LazyLock<Vec<String>> =
    LazyLock::new(|| vocabulary(include_str!("../vocab/smtp_reply.txt")));
static SOCKETMAP_VOCAB: LazyLock<Vec<String>> =
    LazyLock::new(|| vocabulary(include_str!("../vocab/socketmap.txt")));

/// RFC 8461 §3.2 policy files: the linter never panics, whatever the bytes, and every policy
/// it accepts survives display → parse unchanged (what the policy host serves is what senders
/// read back). `FromStr` and the linter are one reader: they accept the same texts and agree
/// on them.
pub fn policy_parse(data: &[u8]) {
    let input = shape(data, &POLICY_VOCAB);
    let bytes = input.bytes();
    let linted = lint(bytes);

    if let Ok(text) = std::str::from_utf8(bytes) {
        assert_eq!(
            text.parse::<Policy>().ok(),
            linted.policy,
            "FromStr disagrees with lint"
        );
    }

    let Some(policy) = linted.policy else { return };
    let canonical = policy.to_string();
    let reparsed = canonical.parse::<Policy>();
    assert_eq!(
        reparsed.as_ref(),
        Ok(&policy),
        "display does not parse back to the same policy:\n{canonical:?}"
    );
    // The canonical form is a fixed point, and the linter reads it to the same policy too.
    if let Ok(again) = reparsed {
        assert_eq!(again.to_string(), canonical, "canonical form is not stable");
    }
    assert_eq!(lint(canonical.as_bytes()).policy.as_ref(), Some(&policy));
}

/// RFC 8461 §3.1 `_mta-sts` TXT records: parsing never panics, every record that parses
/// survives display → parse unchanged, and the record-set evaluation never panics. A NUL
/// splits the text into several TXT strings for the evaluation (one name, many records).
pub fn sts_txt(data: &[u8]) {
    let input = shape(data, &STS_TXT_VOCAB);
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
}

/// RFC 8460 §3 `_smtp._tls` TXT records: parsing never panics, every record that parses
/// survives display → parse unchanged, and the record-set evaluation never panics. A NUL
/// splits the text into several TXT strings for the evaluation.
pub fn tlsrpt_txt(data: &[u8]) {
    let input = shape(data, &TLSRPT_TXT_VOCAB);
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
}

/// RFC 8460 §4.4 reports: the lenient parser never panics, whatever the bytes, and what
/// `stsward report parse` prints for an accepted report (`Report::to_json_string`) is stable:
///
/// - it parses again, to the same report (a missing `total-failure-session-count` stays
///   missing: RFC 8460 §4 lets failure counts overlap, so their sum is no total);
/// - reading it back finds no deviation that the original input did not have: the writer
///   never adds one, and removes every deviation it can (a report that lacked, say,
///   `policy-domain` still lacks it, so that deviation may stay);
/// - it is a fixed point: written again, it is byte for byte the same.
pub fn report_json(data: &[u8]) {
    let Ok(parsed) = parse_report(data) else {
        return;
    };
    let json = parsed.report.to_json_string();
    let again = match parse_report(json.as_bytes()) {
        Ok(again) => again,
        Err(e) => panic!("own RFC JSON does not parse: {e}\n{json}"),
    };
    assert_eq!(
        again.report, parsed.report,
        "RFC JSON reads back differently:\n{json}"
    );
    for d in &again.deviations {
        assert!(
            parsed
                .deviations
                .iter()
                .any(|o| o.code == d.code && o.path == d.path),
            "the writer introduced deviation {d}\ninput deviations: {:?}\n{json}",
            parsed.deviations
        );
    }
    assert_eq!(
        again.report.to_json_string(),
        json,
        "RFC JSON is not a fixed point"
    );
}

/// `mime_extract`: index 0 means "a message"; the others are file names, the last none at all.
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

/// RFC 8460 §5 report e-mails and files: extraction never panics, whatever the bytes, keeps
/// to its limits, and hands out only what it promises (JSON-looking payloads without a BOM);
/// each extracted payload then goes through the report parser, which must not panic either.
/// The first byte picks how the rest is presented: as a message, or as a file with one of
/// the names in `NAMES` (the seed script uses the same order).
pub fn mime_extract(data: &[u8]) {
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
}

/// Everything the parser returns until it needs more bytes or fails.
fn drain(parser: &mut ReplyParser, out: &mut Vec<Reply>) -> Result<(), ReplyError> {
    while let Some(reply) = parser.next_reply()? {
        out.push(reply);
    }
    Ok(())
}

fn check_reply(reply: &Reply) {
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

/// RFC 5321 §4.2 SMTP replies: the push parser in `stsward-net` that every byte an MX host
/// sends reaches first. It must never panic, and where the network splits the stream must not
/// matter: pushing the bytes in chunks yields exactly the replies (and the first error) that
/// pushing them at once does. Every reply it returns is well formed, and the EHLO extension
/// reader never panics on it. The mode byte's upper bits pick the chunk length.
pub fn smtp_reply(data: &[u8]) {
    let input = shape(data, &SMTP_REPLY_VOCAB);
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
        check_reply(reply);
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
}

/// The request limit of the `socketmap` target: small, so that the fuzzer reaches "length
/// past the limit" and "exactly the limit" with short inputs (the vocabulary has `64:`/`65:`).
pub const SOCKETMAP_LIMIT: usize = 64;

/// Requests (or replies) until the parser needs more bytes or fails.
fn drain_map<T>(
    mut next: impl FnMut() -> Result<Option<T>, SocketmapError>,
    out: &mut Vec<T>,
) -> Result<(), SocketmapError> {
    while let Some(message) = next()? {
        out.push(message);
    }
    Ok(())
}

/// Postfix socketmap netstrings (`socketmap_table(5)`): the request push parser that every
/// byte a client sends reaches first must never panic, never hold more payload bytes than
/// its limit, and not care where the network splits the stream: chunked pushes give exactly
/// the requests and the first error that one push gives. The reply parser reading the same
/// bytes obeys the same rules. Every reply the encoder writes — with the input as its text,
/// CR/LF/NUL and all — is one netstring within Postfix's limit that parses back to a reply
/// which encodes to the same bytes, and every parsed request encodes back to itself.
pub fn socketmap(data: &[u8]) {
    let input = shape(data, &SOCKETMAP_VOCAB);
    let bytes = input.bytes();
    let chunk = chunk_len(data);

    let mut whole = RequestParser::new(SOCKETMAP_LIMIT);
    whole.push(bytes);
    assert!(
        whole.buffered() <= SOCKETMAP_LIMIT,
        "buffered past the limit"
    );
    let mut at_once = Vec::new();
    let at_once_end = drain_map(|| whole.next_request(), &mut at_once);

    let mut split = RequestParser::new(SOCKETMAP_LIMIT);
    let mut chunked = Vec::new();
    let mut chunked_end = Ok(());
    for piece in bytes.chunks(chunk) {
        split.push(piece);
        assert!(
            split.buffered() <= SOCKETMAP_LIMIT,
            "buffered past the limit"
        );
        chunked_end = drain_map(|| split.next_request(), &mut chunked);
        if chunked_end.is_err() {
            break;
        }
    }
    assert_eq!(
        chunked, at_once,
        "requests depend on how the stream was split"
    );
    assert_eq!(
        chunked_end, at_once_end,
        "the outcome depends on how the stream was split"
    );
    if at_once_end.is_ok() {
        assert_eq!(split.buffered(), whole.buffered());
        assert_eq!(split.in_progress(), whole.in_progress());
    }
    for request in &at_once {
        assert!(!request.name.is_empty() && !request.name.contains(' '));
        let mut again = RequestParser::new(SOCKETMAP_LIMIT);
        again.push(&request.encode());
        assert_eq!(
            again.next_request(),
            Ok(Some(request.clone())),
            "request round trip"
        );
    }

    // The same bytes as a server's replies.
    let mut replies_whole = MapReplyParser::new(SOCKETMAP_LIMIT);
    replies_whole.push(bytes);
    let mut replies = Vec::new();
    let replies_end = drain_map(|| replies_whole.next_reply(), &mut replies);
    let mut replies_split = MapReplyParser::new(SOCKETMAP_LIMIT);
    let mut replies_chunked = Vec::new();
    let mut replies_chunked_end = Ok(());
    for piece in bytes.chunks(chunk) {
        replies_split.push(piece);
        assert!(replies_split.buffered() <= SOCKETMAP_LIMIT);
        replies_chunked_end = drain_map(|| replies_split.next_reply(), &mut replies_chunked);
        if replies_chunked_end.is_err() {
            break;
        }
    }
    assert_eq!(replies_chunked, replies);
    assert_eq!(replies_chunked_end, replies_end);

    // Every reply encodes to something the reply parser reads back.
    let text = String::from_utf8_lossy(bytes).into_owned();
    let key = Request {
        name: "postfix".into(),
        key: text.clone(),
    };
    let mut candidates = vec![
        MapReply::Ok(text.clone()),
        MapReply::NotFound,
        MapReply::Temp(text.clone()),
        MapReply::Timeout(text.clone()),
        MapReply::Perm(text),
    ];
    candidates.extend(replies);
    for reply in candidates {
        let wire = reply.encode();
        let mut parser = MapReplyParser::new(MAX_REPLY_LEN);
        for piece in wire.chunks(chunk) {
            parser.push(piece);
        }
        let parsed = match parser.next_reply() {
            Ok(Some(parsed)) => parsed,
            other => panic!("encoded reply does not parse back: {other:?} for {reply:?}"),
        };
        assert_eq!(parsed.encode(), wire, "the wire form is not a fixed point");
        assert_eq!(parser.next_reply(), Ok(None), "one reply, one netstring");
    }
    let mut again = RequestParser::new(key.encode().len());
    again.push(&key.encode());
    assert_eq!(again.next_request(), Ok(Some(key)), "request round trip");
}
