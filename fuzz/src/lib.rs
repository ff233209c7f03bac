//! Shared input shaping for the stsward fuzz targets.
//!
//! Random bytes rarely form `key: value` lines or `v=STSv1; id=...` records, so a target that
//! only fed raw bytes to a parser would spend its time in the first few error branches. The
//! first byte of each input therefore picks one of two modes:
//!
//! - even: **raw** — the rest of the input is handed to the parser unchanged (corpus files
//!   are seeded this way, so the fuzzer mutates real-world bytes);
//! - odd: **tokens** — every further byte picks one token (byte modulo the vocabulary size)
//!   from the target's vocabulary, and the tokens are concatenated. Every mutation then
//!   changes whole keys, separators, values, line ends and IDNA oddities, which reaches the
//!   deep states of the grammar.
//!
//! Vocabularies live in `fuzz/vocab/*.txt`, one token per line, so that `fuzz/seed` can
//! encode corpus files into token mode with the same table the targets decode with.
//!
//! The property each target checks lives in [`checks`].

pub mod checks;

/// How a fuzz input is turned into parser input.
pub enum Shaped<'a> {
    /// The input minus its mode byte.
    Raw(&'a [u8]),
    /// The concatenation of the tokens that the input bytes picked.
    Tokens(String),
}

impl Shaped<'_> {
    /// The bytes the parser sees.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Shaped::Raw(b) => b,
            Shaped::Tokens(s) => s.as_bytes(),
        }
    }
}

/// Shapes `data` by its mode byte (see the module docs). Empty input is raw and empty.
pub fn shape<'a>(data: &'a [u8], vocab: &[String]) -> Shaped<'a> {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 1 && !vocab.is_empty() => Shaped::Tokens(
            rest.iter()
                .filter_map(|&b| vocab.get(usize::from(b) % vocab.len()))
                .map(String::as_str)
                .collect(),
        ),
        Some((_, rest)) => Shaped::Raw(rest),
        None => Shaped::Raw(&[]),
    }
}

/// For push parsers: how many bytes each `push` hands over, from the mode byte's upper seven
/// bits (1 to 128), so that the fuzzer also varies where the network splits the stream.
pub fn chunk_len(data: &[u8]) -> usize {
    1 + usize::from(data.first().copied().unwrap_or(0) >> 1)
}

/// Parses a vocabulary file: one token per line; blank lines and lines starting with `# `
/// are skipped; `\n`, `\r`, `\t`, `\s` (space), `\\` and `\xHH`/`\u{...}` escapes let a token
/// hold what a line cannot show.
pub fn vocabulary(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with("# "))
        .map(unescape)
        .collect()
}

fn unescape(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('s') => out.push(' '),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                if let Some(ch) = u8::from_str_radix(&hex, 16).ok().map(char::from) {
                    out.push(ch);
                }
            }
            Some('u') => {
                let hex: String = chars
                    .by_ref()
                    .skip_while(|&c| c == '{')
                    .take_while(|&c| c != '}')
                    .collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_mode_byte_picks_tokens_modulo_vocabulary_size() {
        let vocab = vocabulary("# comment\nmx\n:\\s\n\\r\\n\n");
        assert_eq!(vocab, ["mx", ": ", "\r\n"]);
        let shaped = shape(&[1, 0, 1, 5, 3], &vocab);
        assert_eq!(shaped.bytes(), b"mx: \r\nmx");
    }

    #[test]
    fn even_mode_byte_passes_the_rest_through() {
        let vocab = vocabulary("a\n");
        assert_eq!(shape(&[2, 0xff, b'x'], &vocab).bytes(), &[0xff, b'x']);
        assert_eq!(shape(&[], &vocab).bytes(), b"");
    }

    #[test]
    fn chunk_length_comes_from_the_mode_bytes_upper_bits() {
        let cases: &[(&[u8], usize, &str)] = &[
            (&[], 1, "empty input: one byte at a time"),
            (&[0], 1, "raw, smallest chunks"),
            (&[1], 1, "tokens, smallest chunks"),
            (&[0x20, 9], 17, "0x20 >> 1 = 16"),
            (&[0xff], 128, "largest chunks"),
        ];
        for (data, expected, why) in cases {
            assert_eq!(chunk_len(data), *expected, "{why}");
        }
    }

    #[test]
    fn escapes_cover_bytes_a_line_cannot_hold() {
        assert_eq!(
            vocabulary("\\x23\n\\u{feff}\n\\\\\n"),
            ["#", "\u{feff}", "\\"]
        );
    }
}
