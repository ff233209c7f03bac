//! RFC 5321 §4.2 — SMTP replies, read by a pure push parser.
//!
//! ```text
//! Reply-line     = *( Reply-code "-" [ textstring ] CRLF )
//!                     Reply-code [ SP textstring ] CRLF
//! Reply-code     = %x32-35 %x30-35 %x30-39
//! ```
//!
//! The parser does no I/O: the caller pushes whatever bytes arrived with [`ReplyParser::push`]
//! and asks for complete replies with [`ReplyParser::next_reply`]. A thin tokio wrapper lives in
//! `starttls.rs`. Bytes left over after a reply stay in the parser; after `220` to STARTTLS the
//! wrapper must throw them away (RFC 3207 §4.2 — nothing sent in clear before the handshake may
//! be trusted), which is why the parser exposes [`ReplyParser::buffered`].
//!
//! Real servers deviate: bare LF line ends are accepted, non-UTF-8 text is kept lossily (the
//! text is for humans; only the code drives the protocol). A code that changes between the
//! lines of one reply, or a line that does not start with three digits, is an error.

use thiserror::Error;

/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including CRLF. Real servers
/// exceed it with long EHLO keyword lists, so the parser allows eight times that before it
/// gives up: the bound exists to stop a hostile peer from filling memory, not to police style.
pub const MAX_REPLY_LINE: usize = 8 * 512;

/// A bound on the number of lines in one reply (RFC 5321 sets none); EHLO answers from real
/// servers have a few dozen.
pub const MAX_REPLY_LINES: usize = 256;

/// One complete SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (RFC 5321 §4.2.1).
    pub code: u16,
    /// The text of each line, without the code, the separator and the line end.
    pub lines: Vec<String>,
}

impl Reply {
    /// True for 2yz codes (RFC 5321 §4.2.1: positive completion).
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// Why the bytes a server sent are not an SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line does not start with a three-digit code followed by SP, `-` or the line end.
    #[error("line {line:?} is not an SMTP reply line")]
    Malformed {
        /// The offending line, lossily decoded.
        line: String,
    },
    /// The lines of one multi-line reply carry different codes (RFC 5321 §4.2.1).
    #[error("reply code changed from {first} to {then} inside one reply")]
    CodeChanged {
        /// The code of the first line.
        first: u16,
        /// The code that differed.
        then: u16,
    },
    /// A line grew past [`MAX_REPLY_LINE`] without a line end.
    #[error("reply line longer than {limit} octets")]
    LineTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A reply grew past [`MAX_REPLY_LINES`] lines.
    #[error("reply with more than {limit} lines")]
    TooManyLines {
        /// The limit that was exceeded.
        limit: usize,
    },
}

/// A push parser for SMTP replies.
#[derive(Debug, Default)]
pub struct ReplyParser {
    buf: Vec<u8>,
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    /// A parser with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the server.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// How many received bytes are not yet part of a returned reply.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Drops every buffered byte and any partial reply.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.code = None;
        self.lines.clear();
    }

    /// Returns the next complete reply, `Ok(None)` when more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_REPLY_LINE {
                    return Err(ReplyError::LineTooLong {
                        limit: MAX_REPLY_LINE,
                    });
                }
                return Ok(None);
            };
            if end > MAX_REPLY_LINE {
                return Err(ReplyError::LineTooLong {
                    limit: MAX_REPLY_LINE,
                });
            }
            let raw: Vec<u8> = self.buf.drain(..=end).collect();
            let line = strip_line_end(&raw);
            let (code, last, text) = split_line(line)?;
            match self.code {
                Some(first) if first != code => {
                    return Err(ReplyError::CodeChanged { first, then: code });
                }
                _ => self.code = Some(code),
            }
            if self.lines.len() >= MAX_REPLY_LINES {
                return Err(ReplyError::TooManyLines {
                    limit: MAX_REPLY_LINES,
                });
            }
            self.lines.push(text);
            if last {
                self.code = None;
                let lines = std::mem::take(&mut self.lines);
                return Ok(Some(Reply { code, lines }));
            }
        }
    }
}

fn strip_line_end(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

/// Splits `250-text` into (250, false, "text"); `250 text` and a bare `250` end a reply.
fn split_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let malformed = || ReplyError::Malformed {
        line: String::from_utf8_lossy(line).into_owned(),
    };
    let (digits, rest) = line.split_at_checked(3).ok_or_else(malformed)?;
    let mut code: u16 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(malformed());
        }
        code = code * 10 + u16::from(d - b'0');
    }
    let (last, text) = match rest.split_first() {
        None => (true, &[][..]),
        Some((b' ', text)) => (true, text),
        Some((b'-', text)) => (false, text),
        Some(_) => return Err(malformed()),
    };
    Ok((code, last, String::from_utf8_lossy(text).into_owned()))
}

/// One EHLO keyword with its parameters (RFC 5321 §4.1.1.1: `ehlo-line = ehlo-keyword
/// *( SP ehlo-param )`). The keyword is upper-cased, since keywords are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EhloExtension {
    /// The keyword, upper-cased (`STARTTLS`, `SIZE`, …).
    pub keyword: String,
    /// The parameters as sent.
    pub params: Vec<String>,
}

/// The extensions announced in a `250` EHLO reply: every line after the first, which is the
/// server's greeting (RFC 5321 §4.1.1.1).
pub fn ehlo_extensions(reply: &Reply) -> Vec<EhloExtension> {
    reply
        .lines
        .iter()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_ascii_whitespace();
            let keyword = words.next()?.to_ascii_uppercase();
            Some(EhloExtension {
                keyword,
                params: words.map(str::to_owned).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Reply>, ReplyError> {
        let mut p = ReplyParser::new();
        p.push(input);
        let mut out = Vec::new();
        while let Some(r) = p.next_reply()? {
            out.push(r);
        }
        Ok(out)
    }

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply {
            code,
            lines: lines.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn rfc5321_4_2_good_replies() {
        let good: &[(&[u8], Vec<Reply>)] = &[
            (
                b"220 mx.example ESMTP\r\n",
                vec![reply(220, &["mx.example ESMTP"])],
            ),
            (
                b"220-mx.example ESMTP\r\n220-second\r\n220 last\r\n",
                vec![reply(220, &["mx.example ESMTP", "second", "last"])],
            ),
            (b"250\r\n", vec![reply(250, &[""])]),
            (b"250-\r\n250 \r\n", vec![reply(250, &["", ""])]),
            // bare LF, seen in the wild
            (b"220 hi\n", vec![reply(220, &["hi"])]),
            (
                b"250-mx\r\n250 STARTTLS\r\n221 bye\r\n",
                vec![reply(250, &["mx", "STARTTLS"]), reply(221, &["bye"])],
            ),
            (b"554 5.7.1 no\r\n", vec![reply(554, &["5.7.1 no"])]),
            (b"220 caf\xe9\r\n", vec![reply(220, &["caf\u{fffd}"])]),
        ];
        for (input, want) in good {
            assert_eq!(parse_all(input).as_ref(), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn rfc5321_4_2_bad_replies() {
        let bad: &[(&[u8], &str)] = &[
            (b"22 short\r\n", "code has two digits"),
            (b"2x0 letters\r\n", "code has a letter"),
            (b"220/what\r\n", "separator is neither SP nor '-'"),
            (b"250-a\r\n251 b\r\n", "code changed inside one reply"),
            (b"HTTP/1.1 400 Bad\r\n", "not SMTP at all"),
        ];
        for (input, reason) in bad {
            assert!(parse_all(input).is_err(), "{reason}: {input:?}");
        }
    }

    #[test]
    fn replies_split_across_pushes_need_more_then_complete() {
        let input = b"220-one\r\n220 two\r\n";
        for cut in 0..input.len() {
            let mut p = ReplyParser::new();
            p.push(&input[..cut]);
            assert_eq!(p.next_reply(), Ok(None), "cut at {cut}");
            p.push(&input[cut..]);
            assert_eq!(p.next_reply(), Ok(Some(reply(220, &["one", "two"]))));
            assert_eq!(p.buffered(), 0);
        }
    }

    #[test]
    fn bytes_after_a_reply_stay_buffered() {
        let mut p = ReplyParser::new();
        p.push(b"220 go ahead\r\n250 injected\r\n");
        assert_eq!(p.next_reply(), Ok(Some(reply(220, &["go ahead"]))));
        assert_eq!(p.buffered(), b"250 injected\r\n".len());
        p.clear();
        assert_eq!(p.next_reply(), Ok(None));
    }

    #[test]
    fn endless_line_is_refused_with_line_too_long() {
        let mut p = ReplyParser::new();
        p.push(&vec![b'2'; MAX_REPLY_LINE + 1]);
        assert_eq!(
            p.next_reply(),
            Err(ReplyError::LineTooLong {
                limit: MAX_REPLY_LINE
            })
        );
    }

    #[test]
    fn endless_multiline_reply_is_refused_with_too_many_lines() {
        let mut p = ReplyParser::new();
        for _ in 0..=MAX_REPLY_LINES {
            p.push(b"250-x\r\n");
        }
        assert_eq!(
            p.next_reply(),
            Err(ReplyError::TooManyLines {
                limit: MAX_REPLY_LINES
            })
        );
    }

    #[test]
    fn rfc5321_4_1_1_1_ehlo_keywords_skip_greeting_and_upper_case() {
        let r = reply(
            250,
            &[
                "mx.example Hello",
                "PIPELINING",
                "size 10240000",
                "starttls",
                "",
            ],
        );
        let ext = ehlo_extensions(&r);
        let keywords: Vec<&str> = ext.iter().map(|e| e.keyword.as_str()).collect();
        assert_eq!(keywords, ["PIPELINING", "SIZE", "STARTTLS"]);
        assert_eq!(ext[1].params, ["10240000"]);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // a cheap stand-in for the fuzz target: every byte pattern over the SMTP alphabet
        let alphabet = [b'2', b'5', b'0', b'-', b' ', b'\r', b'\n', b'x'];
        for seed in 0u32..4096 {
            let mut input = Vec::new();
            let mut s = seed;
            for _ in 0..12 {
                input.push(alphabet[(s % 8) as usize]);
                s /= 3;
                s = s.wrapping_mul(2_654_435_761).rotate_left(5);
            }
            let _ = parse_all(&input);
        }
    }
}
