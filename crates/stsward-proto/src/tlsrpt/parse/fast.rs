//! RFC 8259 — a small JSON reader for the common, well-formed TLS-RPT report (RFC 8460 §4.4)
//!
//! It reads into a borrowed tree ([`Raw`]) whose objects are plain lists of members: no
//! hashing, no copies of strings without escapes. It accepts only a subset of what
//! `serde_json` accepts and gives up (`None`) on anything else, so the caller falls back to
//! the `serde_json::Value` reference, which then also words the error. Given up on:
//!
//! - any syntax error, trailing text, invalid UTF-8 or a raw control character in a string;
//! - `\u` escapes (the reference decodes surrogate pairs and refuses lone surrogates);
//! - numbers other than plain non-negative integers of at most 19 digits (floats, negatives,
//!   exponents: the reference keeps their exact text and types them);
//! - member names starting with `$` (the reference reads `$serde_json::private::…` names as
//!   numbers);
//! - nesting deeper than [`MAX_DEPTH`], well within the reference's own limit of 128.
//!
//! Objects and arrays kept as extensions are handed to `serde_json` again, from their exact
//! text, so an extension is whatever the reference would have made of it.

use std::borrow::Cow;

use serde_json::Value;

use super::Node;

/// Deepest nesting of objects and arrays read here.
const MAX_DEPTH: usize = 64;

/// A JSON value read by [`parse`], borrowing from the input where it can.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Raw<'a> {
    Null,
    Bool(bool),
    /// A plain non-negative integer, as its digits.
    Int(&'a str),
    Str(Cow<'a, str>),
    /// The elements, and the exact text of the array.
    Array(Vec<Raw<'a>>, &'a [u8]),
    /// The members in document order (duplicates kept), and the exact text of the object.
    Object(Vec<(Cow<'a, str>, Raw<'a>)>, &'a [u8]),
}

impl<'a> Node for Raw<'a> {
    type Key = Cow<'a, str>;
    type Members = Vec<(Cow<'a, str>, Self)>;

    fn type_name(&self) -> &'static str {
        match self {
            Raw::Null => "null",
            Raw::Bool(_) => "boolean",
            Raw::Int(_) => "integer",
            Raw::Str(_) => "string",
            Raw::Array(..) => "array",
            Raw::Object(..) => "object",
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Raw::Null)
    }

    fn into_object(self) -> Result<Self::Members, Self> {
        match self {
            Raw::Object(members, _) => Ok(members),
            other => Err(other),
        }
    }

    fn into_array(self) -> Result<Vec<Self>, Self> {
        match self {
            Raw::Array(items, _) => Ok(items),
            other => Err(other),
        }
    }

    fn into_string(self) -> Result<String, Self> {
        match self {
            Raw::Str(s) => Ok(s.into_owned()),
            other => Err(other),
        }
    }

    fn count_text(&self) -> Option<(Cow<'_, str>, bool)> {
        match self {
            Raw::Int(digits) => Some((Cow::Borrowed(digits), false)),
            Raw::Str(s) => Some((Cow::Borrowed(s.as_ref()), true)),
            _ => None,
        }
    }

    fn into_value(self) -> Option<Value> {
        match self {
            Raw::Null => Some(Value::Null),
            Raw::Bool(b) => Some(Value::Bool(b)),
            Raw::Str(s) => Some(Value::String(s.into_owned())),
            Raw::Int(digits) => serde_json::from_str(digits).ok(),
            Raw::Array(_, text) | Raw::Object(_, text) => serde_json::from_slice(text).ok(),
        }
    }
}

/// Reads `bytes` as one JSON value, or `None` when it is not the plain JSON this reader
/// takes (see the module documentation).
pub(super) fn parse(bytes: &[u8]) -> Option<Raw<'_>> {
    // JSON the reference accepts is UTF-8 throughout (it checks every string, and anything
    // outside strings must be ASCII syntax), so checking once up front loses nothing.
    let text = std::str::from_utf8(bytes).ok()?;
    let mut r = Reader {
        s: text,
        b: bytes,
        i: 0,
    };
    let v = r.value(0)?;
    r.skip_ws();
    (r.i == bytes.len()).then_some(v)
}

struct Reader<'a> {
    /// The input as text, for string slices.
    s: &'a str,
    /// The same input as bytes, for scanning.
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// RFC 8259 §2: whitespace is space, tab, line feed and carriage return.
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn value(&mut self, depth: usize) -> Option<Raw<'a>> {
        self.skip_ws();
        match self.peek()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(Raw::Str),
            b't' => self.literal(b"true").map(|()| Raw::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Raw::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Raw::Null),
            b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    /// A plain non-negative integer (RFC 8259 §6 `int` without a minus sign), at most 19
    /// digits so that it always fits `u64`.
    fn integer(&mut self) -> Option<Raw<'a>> {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        let digits = self.b.get(start..self.i)?;
        let plain = digits.len() <= 19 && (digits.len() == 1 || digits.first() != Some(&b'0'));
        // A fraction or an exponent follows: not a plain integer.
        let ends = !matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        if !(plain && ends) {
            return None;
        }
        self.s.get(start..self.i).map(Raw::Int)
    }

    fn object(&mut self, depth: usize) -> Option<Raw<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.i;
        self.i += 1; // `{`
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                self.skip_ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?;
                if key.starts_with('$') {
                    return None;
                }
                self.eat(b':')?;
                let value = self.value(depth)?;
                members.push((key, value));
                self.skip_ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        Some(Raw::Object(members, self.b.get(start..self.i)?))
    }

    fn array(&mut self, depth: usize) -> Option<Raw<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.i;
        self.i += 1; // `[`
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                items.push(self.value(depth)?);
                self.skip_ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        Some(Raw::Array(items, self.b.get(start..self.i)?))
    }

    /// A string (RFC 8259 §7), borrowed when it has no escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.i += 1; // `"`
        let mut owned: Option<String> = None;
        loop {
            let start = self.i;
            let rest = self.b.get(start..)?;
            let stop = string_stop(rest)?;
            self.i = start + stop;
            // `stop` is at an ASCII byte, so a character boundary.
            let run = self.s.get(start..self.i)?;
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(match owned {
                        None => Cow::Borrowed(run),
                        Some(mut s) => {
                            s.push_str(run);
                            Cow::Owned(s)
                        }
                    });
                }
                b'\\' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(run);
                    let escaped = match self.b.get(self.i + 1)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        // `\u`, and anything that is no escape at all.
                        _ => return None,
                    };
                    s.push(escaped);
                    self.i += 2;
                }
                // A raw control character: not allowed in a JSON string.
                _ => return None,
            }
        }
    }
}

/// Where a string's plain run ends: the first `"`, `\\` or control character (RFC 8259 §7),
/// looking at eight bytes at a time.
fn string_stop(rest: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let special = |c: u8| c == b'"' || c == b'\\' || c < 0x20;
    let mut at = 0;
    for chunk in rest.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte is flagged when it is zero after the XOR (the quote, the backslash) or
        // below 0x20; bytes of 0x80 and above are never flagged. No special byte is missed.
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let below = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let flagged =
            zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\'))) | below;
        if flagged != 0 {
            return chunk.iter().position(|&c| special(c)).map(|i| at + i);
        }
        at += 8;
    }
    rest.get(at..)?
        .iter()
        .position(|&c| special(c))
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj<'a>(members: Vec<(&'a str, Raw<'a>)>, text: &'a str) -> Raw<'a> {
        Raw::Object(
            members
                .into_iter()
                .map(|(k, v)| (Cow::Borrowed(k), v))
                .collect(),
            text.as_bytes(),
        )
    }

    #[test]
    fn rfc8259_plain_json_is_read_into_a_borrowed_tree() {
        let text = r#" {"a": [1, "x\ty", null, true, false], "b": {}} "#;
        let v = parse(text.as_bytes()).expect("plain JSON");
        let Raw::Object(members, whole) = &v else {
            panic!("not an object: {v:?}");
        };
        assert_eq!(whole, &text.trim().as_bytes());
        assert_eq!(members.len(), 2);
        assert_eq!(
            members[0].1,
            Raw::Array(
                vec![
                    Raw::Int("1"),
                    Raw::Str(Cow::Owned("x\ty".into())),
                    Raw::Null,
                    Raw::Bool(true),
                    Raw::Bool(false),
                ],
                br#"[1, "x\ty", null, true, false]"#,
            )
        );
        assert_eq!(members[1].1, obj(vec![], "{}"));
        assert!(matches!(&members[0].0, Cow::Borrowed("a")));
    }

    #[test]
    fn rfc8259_string_runs_end_at_the_first_quote_backslash_or_control() {
        let mut text: Vec<u8> = (0x20..=0xffu8)
            .filter(|&c| c != b'"' && c != b'\\')
            .collect();
        let len = text.len();
        assert_eq!(string_stop(&text), None);
        for stop in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
            for at in [0, 1, 7, 8, 9, 15, 16, len - 1] {
                let mut t = text.clone();
                t.insert(at, stop);
                t.push(b'"');
                assert_eq!(string_stop(&t), Some(at), "{stop:#x} at {at}");
            }
        }
        text.push(b'"');
        assert_eq!(string_stop(&text), Some(len));
    }

    #[test]
    fn rfc8259_anything_unusual_is_left_to_the_reference() {
        for text in [
            "",
            "   ",
            "{",
            "{}x",
            "{} {}",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            "[1,]",
            "[1 2]",
            "01",
            "-1",
            "1.0",
            "1e3",
            "12345678901234567890",
            r#""\u0041""#,
            r#""\x""#,
            "\"a\tb\"",
            "\"\u{1}\"",
            r#"{"$serde_json::private::Number":"1"}"#,
            "tru",
            "nul",
            "[1]\u{c}",
            "'a'",
        ] {
            assert_eq!(parse(text.as_bytes()), None, "{text:?}");
        }
        assert_eq!(parse(b"\"\xff\""), None, "invalid UTF-8");
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(deep.as_bytes()), None, "too deep");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_some(), "deep but within the limit");
    }

    #[test]
    fn rfc8259_extensions_become_what_serde_json_makes_of_them() {
        let text = r#"{"n": 7, "o": {"k": 1, "j": null, "k": [2, {}]}, "s": "a\/b"}"#;
        let Some(Raw::Object(members, _)) = parse(text.as_bytes()) else {
            panic!("not read");
        };
        let reference: Value = serde_json::from_str(text).expect("JSON");
        for (k, v) in members {
            assert_eq!(v.into_value().as_ref(), reference.get(k.as_ref()), "{k}");
        }
    }
}
