use proptest::prelude::*;

use super::*;

const LIMIT: usize = 100;

fn req(name: &str, key: &str) -> Request {
    Request {
        name: name.into(),
        key: key.into(),
    }
}

/// Everything a parser yields for `bytes` pushed in chunks of `chunk` bytes: the requests,
/// then the final outcome (the error, or `Ok(())` when it wants more bytes).
fn requests_in_chunks(
    bytes: &[u8],
    chunk: usize,
    limit: usize,
) -> (Vec<Request>, Result<(), SocketmapError>) {
    let mut parser = RequestParser::new(limit);
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        parser.push(piece);
        assert!(parser.buffered() <= limit, "buffered past the limit");
        loop {
            match parser.next_request() {
                Ok(Some(r)) => out.push(r),
                Ok(None) => break,
                Err(e) => return (out, Err(e)),
            }
        }
    }
    (out, Ok(()))
}

fn requests(bytes: &[u8]) -> (Vec<Request>, Result<(), SocketmapError>) {
    requests_in_chunks(bytes, bytes.len(), LIMIT)
}

#[test]
fn socketmap_request_good_cases_parse_to_name_and_key() {
    let cases: &[(&[u8], &[Request], &str)] = &[
        (
            b"19:postfix example.com,",
            &[req("postfix", "example.com")],
            "the man page's form",
        ),
        (
            b"8:postfix ,",
            &[req("postfix", "")],
            "an empty key is the lookup's business",
        ),
        (
            b"16:postfix a b  c.d,",
            &[req("postfix", "a b  c.d")],
            "the key is everything after the first space",
        ),
        (
            b"18:postfix b\xc3\xbccher.de,",
            &[req("postfix", "b\u{fc}cher.de")],
            "UTF-8 keys (Postfix sends U-labels when SMTPUTF8 is on)",
        ),
        (
            b"11:postfix a.b,11:postfix c.d,",
            &[req("postfix", "a.b"), req("postfix", "c.d")],
            "pipelined requests on one connection",
        ),
        (b"", &[], "nothing yet"),
        (
            b"19:postfix exa",
            &[],
            "an incomplete request waits for more bytes",
        ),
        (
            b"11:postfix a.b,1",
            &[req("postfix", "a.b")],
            "a complete request before a partial one",
        ),
        (b"2:x ,", &[req("x", "")], "the shortest request"),
    ];
    for (input, expected, why) in cases {
        let (got, end) = requests(input);
        assert_eq!(end, Ok(()), "{why}");
        assert_eq!(&got, expected, "{why}");
    }
}

#[test]
fn socketmap_request_bad_cases_name_the_fault_and_its_offset() {
    use SocketmapError::*;
    let cases: &[(&[u8], SocketmapError, &str)] = &[
        (
            b"x",
            BadLengthByte {
                offset: 0,
                byte: b'x',
            },
            "garbage instead of a length",
        ),
        (
            b":",
            BadLengthByte {
                offset: 0,
                byte: b':',
            },
            "a colon without digits",
        ),
        (
            b" 5:",
            BadLengthByte {
                offset: 0,
                byte: b' ',
            },
            "no whitespace before the length",
        ),
        (
            b"1a",
            BadLengthByte {
                offset: 1,
                byte: b'a',
            },
            "garbage inside the length",
        ),
        (
            b"-1:",
            BadLengthByte {
                offset: 0,
                byte: b'-',
            },
            "no sign",
        ),
        (
            b"019:postfix example.com,",
            LeadingZero { offset: 0 },
            "a leading zero",
        ),
        (b"00:", LeadingZero { offset: 0 }, "zero zero"),
        (
            b"101:",
            TooLong {
                offset: 2,
                limit: LIMIT,
            },
            "the third digit shows the length is past 100, before the colon",
        ),
        (
            b"99999999999999999999999999999",
            TooLong {
                offset: 2,
                limit: LIMIT,
            },
            "a huge length fails early, without overflow",
        ),
        (
            b"5:abcdef",
            MissingComma {
                offset: 7,
                byte: b'f',
            },
            "payload longer than announced",
        ),
        (
            b"3:a b\n",
            MissingComma {
                offset: 5,
                byte: b'\n',
            },
            "no line end instead of the comma",
        ),
        (
            b"7:postfix,",
            MissingSpace { offset: 2 },
            "no space: no key",
        ),
        (b"4: abc,", EmptyName { offset: 2 }, "an empty map name"),
        (
            b"0:,",
            MissingSpace { offset: 2 },
            "the empty netstring is not a request",
        ),
        (
            b"5:a \xff\xfeb,",
            NotUtf8 { offset: 4 },
            "a key that is not UTF-8",
        ),
        (
            b"5:a b.c,5:a\xffb.c,",
            NotUtf8 { offset: 11 },
            "the offset counts from the start of the stream",
        ),
    ];
    for (input, expected, why) in cases {
        let (_, end) = requests(input);
        assert_eq!(end.as_ref(), Err(expected), "{why}");
        // The error text says what was wrong and where.
        let text = expected.to_string();
        assert!(text.contains("offset"), "{why}: {text}");
    }
}

#[test]
fn socketmap_request_before_an_error_is_still_returned_and_the_error_is_sticky() {
    let mut parser = RequestParser::new(LIMIT);
    parser.push(b"11:postfix a.b,x11:postfix c.d,");
    assert_eq!(parser.next_request(), Ok(Some(req("postfix", "a.b"))));
    let error = SocketmapError::BadLengthByte {
        offset: 15,
        byte: b'x',
    };
    assert_eq!(parser.next_request(), Err(error.clone()));
    // Framing is lost: later bytes, even a valid request, are ignored.
    parser.push(b"11:postfix e.f,");
    assert_eq!(parser.next_request(), Err(error));
    assert_eq!(parser.buffered(), 0);
    assert!(!parser.in_progress());
}

#[test]
fn socketmap_oversized_length_is_refused_before_its_body_arrives() {
    let mut parser = RequestParser::new(10);
    parser.push(b"1");
    assert_eq!(parser.next_request(), Ok(None));
    assert!(parser.in_progress());
    parser.push(b"1");
    assert_eq!(
        parser.next_request(),
        Err(SocketmapError::TooLong {
            offset: 1,
            limit: 10
        })
    );
    // Exactly the limit is fine.
    let (got, end) = requests_in_chunks(b"10:postfix ab,", 3, 10);
    assert_eq!((got, end), (vec![req("postfix", "ab")], Ok(())));
}

#[test]
fn socketmap_buffered_bytes_never_exceed_the_limit() {
    let mut parser = RequestParser::new(20);
    parser.push(b"20:postfix ");
    assert_eq!(parser.buffered(), 8);
    parser.push(&[b'a'; 12]);
    assert_eq!(parser.buffered(), 20);
    // The 21st byte is where the comma belongs; it is not buffered.
    parser.push(b"a");
    assert!(parser.buffered() <= 20);
    assert!(matches!(
        parser.next_request(),
        Err(SocketmapError::MissingComma { offset: 23, .. })
    ));
}

#[test]
fn socketmap_in_progress_tracks_a_partly_received_request() {
    let mut parser = RequestParser::new(LIMIT);
    assert!(!parser.in_progress());
    parser.push(b"3");
    assert!(parser.in_progress(), "a length digit starts a request");
    parser.push(b":a b");
    assert!(parser.in_progress());
    parser.push(b",");
    assert!(!parser.in_progress(), "the comma ends it");
    assert_eq!(parser.next_request(), Ok(Some(req("a", "b"))));
}

#[test]
fn socketmap_split_anywhere_gives_the_same_result_as_one_push() {
    let streams: &[&[u8]] = &[
        b"19:postfix example.com,11:postfix a.b,",
        b"11:postfix a.b,019:",
        b"11:postfix a.b,5:a\xffb.c,11:postfix c.d,",
        b"11:postfix a.b,4:abcde,",
        b"11:postfix a.b,999:",
        b"18:postfix b\xc3\xbccher.de,",
    ];
    for stream in streams {
        let whole = requests(stream);
        for chunk in 1..=stream.len() {
            assert_eq!(
                requests_in_chunks(stream, chunk, LIMIT),
                whole,
                "chunk length {chunk} for {:?}",
                String::from_utf8_lossy(stream)
            );
        }
    }
}

#[test]
fn socketmap_request_encode_parses_back() {
    let r = req("postfix", "example.com");
    assert_eq!(r.encode(), b"19:postfix example.com,");
    assert_eq!(requests(&r.encode()), (vec![r], Ok(())));
}

// --- replies --------------------------------------------------------------------------------

#[test]
fn socketmap_reply_encodes_as_the_man_page_shows() {
    let cases: &[(Reply, &[u8], &str)] = &[
        (
            Reply::Ok("secure match=mx.example.com".into()),
            b"30:OK secure match=mx.example.com,",
            "OK <space> data",
        ),
        (
            Reply::NotFound,
            b"9:NOTFOUND ,",
            "NOTFOUND with its trailing space",
        ),
        (
            Reply::Temp("dns".into()),
            b"8:TEMP dns,",
            "TEMP <space> reason",
        ),
        (
            Reply::Timeout("x".into()),
            b"9:TIMEOUT x,",
            "TIMEOUT <space> reason",
        ),
        (Reply::Perm(String::new()), b"5:PERM ,", "an empty reason"),
        (
            Reply::Perm("a\r\nb\0c".into()),
            b"11:PERM a  b c,",
            "CR, LF and NUL become spaces",
        ),
        (
            Reply::Ok("\u{fc}".into()),
            b"5:OK \xc3\xbc,",
            "the length counts bytes",
        ),
    ];
    for (reply, expected, why) in cases {
        assert_eq!(reply.encode(), *expected, "{why}");
        assert_eq!(reply.try_encode().as_deref(), Ok(*expected), "{why}");
    }
}

#[test]
fn socketmap_reply_above_100000_bytes_is_refused_or_replaced() {
    // "OK " + data: exactly the limit fits.
    let fits = Reply::Ok("a".repeat(MAX_REPLY_LEN - 3));
    assert_eq!(fits.encode().len(), "100000:".len() + MAX_REPLY_LEN + 1);

    let too_long = Reply::Ok("a".repeat(MAX_REPLY_LEN - 2));
    assert_eq!(
        too_long.try_encode(),
        Err(SocketmapError::ReplyTooLong {
            len: MAX_REPLY_LEN + 1,
            limit: MAX_REPLY_LEN
        })
    );
    // OK data is never cut: it becomes a temporary failure.
    let mut parser = ReplyParser::new(MAX_REPLY_LEN);
    parser.push(&too_long.encode());
    assert!(
        matches!(parser.next_reply(), Ok(Some(Reply::Temp(r))) if r.starts_with("reply too long")),
    );

    // A reason is shortened at a character boundary, to exactly the limit or just below.
    let reason = "\u{fc}".repeat(MAX_REPLY_LEN);
    let mut parser = ReplyParser::new(MAX_REPLY_LEN);
    parser.push(&Reply::Perm(reason.clone()).encode());
    let Ok(Some(Reply::Perm(short))) = parser.next_reply() else {
        panic!("a long PERM reason must still encode as PERM");
    };
    assert!(reason.starts_with(&short));
    assert!("PERM ".len() + short.len() <= MAX_REPLY_LEN);
    assert!("PERM ".len() + short.len() >= MAX_REPLY_LEN - 1);
}

#[test]
fn socketmap_reply_parser_reads_every_status_and_rejects_others() {
    use SocketmapError::*;
    let good: &[(&[u8], Reply)] = &[
        (b"4:OK a,", Reply::Ok("a".into())),
        (b"3:OK ,", Reply::Ok(String::new())),
        (b"9:NOTFOUND ,", Reply::NotFound),
        (b"8:NOTFOUND,", Reply::NotFound),
        (b"8:TEMP dns,", Reply::Temp("dns".into())),
        (b"12:TIMEOUT slow,", Reply::Timeout("slow".into())),
        (b"7:PERM no,", Reply::Perm("no".into())),
    ];
    for (input, expected) in good {
        let mut parser = ReplyParser::new(MAX_REPLY_LEN);
        parser.push(input);
        assert_eq!(parser.next_reply(), Ok(Some(expected.clone())));
    }
    let bad: &[(&[u8], SocketmapError, &str)] = &[
        (
            b"4:ok a,",
            UnknownStatus {
                offset: 2,
                status: "ok".into(),
            },
            "case matters",
        ),
        (
            b"5:MAYBE,",
            UnknownStatus {
                offset: 2,
                status: "MAYBE".into(),
            },
            "unknown word",
        ),
        (b"4:OK \xff,", NotUtf8 { offset: 5 }, "not UTF-8"),
        (
            b"200001:",
            TooLong {
                offset: 5,
                limit: MAX_REPLY_LEN,
            },
            "past Postfix's limit",
        ),
    ];
    for (input, expected, why) in bad {
        let mut parser = ReplyParser::new(MAX_REPLY_LEN);
        parser.push(input);
        assert_eq!(parser.next_reply().as_ref(), Err(expected), "{why}");
    }
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 .:=\\-\\[\\]]{0,40}",
        any::<String>(),
        "[\r\n\0a ]{0,8}",
    ]
}

fn any_reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        any_text().prop_map(Reply::Ok),
        Just(Reply::NotFound),
        any_text().prop_map(Reply::Temp),
        any_text().prop_map(Reply::Timeout),
        any_text().prop_map(Reply::Perm),
    ]
}

proptest! {
    /// encode → parse gives the reply back (with CR/LF/NUL turned into spaces), and encoding
    /// what was parsed gives the same bytes: the wire form is a fixed point.
    #[test]
    fn socketmap_reply_encode_parse_round_trip(reply in any_reply(), chunk in 1usize..16) {
        let wire = reply.encode();
        let mut parser = ReplyParser::new(MAX_REPLY_LEN);
        for piece in wire.chunks(chunk) {
            parser.push(piece);
        }
        let parsed = parser.next_reply();
        let Ok(Some(parsed)) = parsed else {
            panic!("own encoding does not parse: {parsed:?}");
        };
        prop_assert_eq!(parsed.encode(), wire);
        let clean = |s: &str| !s.contains(['\r', '\n', '\0']);
        let unchanged = match &reply {
            Reply::Ok(t) | Reply::Temp(t) | Reply::Timeout(t) | Reply::Perm(t) => clean(t),
            Reply::NotFound => true,
        };
        if unchanged {
            prop_assert_eq!(parsed, reply);
        }
        prop_assert_eq!(parser.next_reply(), Ok(None));
    }

    /// Requests survive encode → parse, whatever the split.
    #[test]
    fn socketmap_request_encode_parse_round_trip(
        name in "[a-z_\\-]{1,12}",
        key in any::<String>(),
        chunk in 1usize..16,
    ) {
        let request = Request { name, key };
        let wire = request.encode();
        prop_assert_eq!(
            requests_in_chunks(&wire, chunk, wire.len()),
            (vec![request], Ok(()))
        );
    }
}
