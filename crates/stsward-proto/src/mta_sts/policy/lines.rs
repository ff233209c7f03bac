//! RFC 8461 §3.2 — from policy bytes to numbered lines
//!
//! ```text
//! sts-policy-term = LF / CRLF
//! ```
//!
//! The policy is UTF-8 (extension values may carry UTF-8, RFC 3629). Files saved by Windows
//! editors sometimes start with a byte-order mark or are UTF-16; those are recognised here so
//! that the linter can name the problem and still read the rest.

/// How the bytes were encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// Plain UTF-8 (or bytes that are meant to be).
    Utf8,
    /// UTF-8 preceded by EF BB BF.
    Utf8Bom,
    /// UTF-16 little-endian with the FF FE mark.
    Utf16Le,
    /// UTF-16 big-endian with the FE FF mark.
    Utf16Be,
}

/// The policy text as UTF-8 bytes (UTF-16 converted), without any byte-order mark.
pub(super) struct Decoded {
    pub encoding: Encoding,
    pub text: Vec<u8>,
    /// UTF-16 code units that did not form characters (replaced by U+FFFD).
    pub utf16_errors: usize,
}

pub(super) fn decode(bytes: &[u8]) -> Decoded {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return Decoded {
            encoding: Encoding::Utf8Bom,
            text: rest.to_vec(),
            utf16_errors: 0,
        };
    }
    let utf16 = match bytes {
        [0xFF, 0xFE, rest @ ..] => Some((Encoding::Utf16Le, rest, true)),
        [0xFE, 0xFF, rest @ ..] => Some((Encoding::Utf16Be, rest, false)),
        _ => None,
    };
    let Some((encoding, rest, little)) = utf16 else {
        return Decoded {
            encoding: Encoding::Utf8,
            text: bytes.to_vec(),
            utf16_errors: 0,
        };
    };
    let chunks = rest.chunks_exact(2);
    let mut errors = usize::from(!chunks.remainder().is_empty());
    let units = chunks.map(|c| match c {
        [a, b] if little => u16::from_le_bytes([*a, *b]),
        [a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0xFFFD,
    });
    let mut text = String::new();
    for ch in char::decode_utf16(units) {
        text.push(ch.unwrap_or_else(|_| {
            errors += 1;
            char::REPLACEMENT_CHARACTER
        }));
    }
    Decoded {
        encoding,
        text: text.into_bytes(),
        utf16_errors: errors,
    }
}

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    Lf,
    CrLf,
    /// The last line, with no terminator (allowed: `[sts-policy-term]`).
    Eof,
}

/// One line without its terminator; `number` is 1-based.
pub(super) struct Line<'a> {
    pub number: usize,
    pub bytes: &'a [u8],
    pub ending: Ending,
}

/// Splits at LF, taking a CR just before it as part of the terminator. A final terminator does
/// not start another line.
pub(super) fn split(text: &[u8]) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let number = lines.len() + 1;
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let (line, tail) = rest.split_at(i);
                let (bytes, ending) = match line.strip_suffix(b"\r") {
                    Some(b) => (b, Ending::CrLf),
                    None => (line, Ending::Lf),
                };
                lines.push(Line {
                    number,
                    bytes,
                    ending,
                });
                rest = tail.get(1..).unwrap_or_default();
            }
            None => {
                lines.push(Line {
                    number,
                    bytes: rest,
                    ending: Ending::Eof,
                });
                rest = &[];
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8461_3_2_lines_end_in_lf_or_crlf() {
        let lines = split(b"a\r\nb\nc");
        let got: Vec<(&[u8], Ending)> = lines.iter().map(|l| (l.bytes, l.ending)).collect();
        assert_eq!(
            got,
            [
                (&b"a"[..], Ending::CrLf),
                (&b"b"[..], Ending::Lf),
                (&b"c"[..], Ending::Eof)
            ]
        );
        assert_eq!(split(b"a\n").len(), 1);
        assert_eq!(split(b"\n").len(), 1);
        assert!(split(b"").is_empty());
        assert_eq!(split(b"a\n\n\n").len(), 3);
    }

    #[test]
    fn byte_order_marks_are_recognised() {
        let d = decode(b"\xEF\xBB\xBFversion: STSv1");
        assert_eq!(d.encoding, Encoding::Utf8Bom);
        assert_eq!(d.text, b"version: STSv1");
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("mx: é\r\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let d = decode(&le);
        assert_eq!(d.encoding, Encoding::Utf16Le);
        assert_eq!(String::from_utf8(d.text).unwrap(), "mx: é\r\n");
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("ab".encode_utf16().flat_map(u16::to_be_bytes))
            .chain([0x41])
            .collect();
        let d = decode(&be);
        assert_eq!(d.encoding, Encoding::Utf16Be);
        assert_eq!(d.text, b"ab");
        assert_eq!(d.utf16_errors, 1, "odd trailing byte");
    }
}
