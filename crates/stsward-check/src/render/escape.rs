//! Escaping text that a remote party chose before it reaches a terminal
//!
//! SMTP reply text, EHLO keywords, certificate names and DNs, HTTP header values and TXT
//! record strings are written by whoever runs the host being checked. Printed raw, an
//! `ESC [ 2 J` in a 554 greeting clears the reader's screen, a CR rewrites the line the
//! reader is looking at, and a right-to-left override reorders it. The text renderer passes
//! every field it prints through [`escape`], so no such character reaches the terminal;
//! JSON output needs none of this because serde already writes control characters as
//! `\u00XX`.
//!
//! ```text
//! U+0000..U+001F, U+007F          -> \xHH       (C0 controls and DEL; tab and newline too)
//! U+0080..U+009F                  -> \u{HH}     (C1 controls, e.g. the one-character CSI)
//! U+200E, U+200F, U+202A..U+202E,
//! U+2066..U+2069                  -> \u{HHHH}   (bidirectional formatting)
//! everything else                 -> itself
//! ```
//!
//! Tab and newline are escaped as well: inside one field they would break the layout of the
//! output (a forged "fix:" line), and the renderer adds its own line ends.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as it is.
pub(crate) fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every control character and bidirectional formatting character written as a
/// visible escape (see the module docs). Borrows when there is nothing to escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn remote_text_is_escaped_before_a_terminal_sees_it() {
        let cases: &[(&str, &str, &str)] = &[
            ("mx.example.test", "mx.example.test", "plain text passes"),
            ("ünïcödé mx", "ünïcödé mx", "printable non-ASCII passes"),
            ("back\\slash", "back\\slash", "a backslash is printable"),
            ("\x1b[2J", "\\x1b[2J", "ESC: would clear the screen"),
            (
                "\x1b]0;owned\x07",
                "\\x1b]0;owned\\x07",
                "OSC title, BEL ends it",
            ),
            ("ok\rFAKE", "ok\\x0dFAKE", "CR would overwrite the line"),
            (
                "a\nfix: run this",
                "a\\x0afix: run this",
                "LF would forge a line",
            ),
            ("a\tb", "a\\x09b", "tab would break the layout"),
            ("nul\0", "nul\\x00", "NUL"),
            ("del\x7f", "del\\x7f", "DEL"),
            ("\u{9b}31m", "\\u{9b}31m", "C1 CSI is an escape on its own"),
            ("\u{85}", "\\u{85}", "C1 next-line"),
            (
                "abc\u{202e}gpj.exe",
                "abc\\u{202e}gpj.exe",
                "right-to-left override",
            ),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}", "bidi isolates"),
            ("\u{200f}", "\\u{200f}", "right-to-left mark"),
        ];
        for (input, expected, why) in cases {
            assert_eq!(escape(input), *expected, "{why}: {input:?}");
        }
    }

    #[test]
    fn escaped_text_has_no_byte_a_terminal_acts_on() {
        let all: String = (0u32..0x250)
            .chain(0x2000..0x2070)
            .filter_map(char::from_u32)
            .collect();
        let out = escape(&all);
        assert!(
            out.bytes().all(|b| b >= 0x20 && b != 0x7f),
            "{:?}",
            out.bytes().find(|b| *b < 0x20 || *b == 0x7f)
        );
        assert!(!out.chars().any(|c| c.is_control()));
    }
}
