//! RFC 8461 §3.2, §3.3 — the policy linter: every deviation, line by line
//!
//! [`lint`] reads policy bytes the way a sender does and says, with an `sts.policy.*` finding
//! per problem (`spec/findings.md`), everything that differs from the grammar. Its `policy`
//! is `Some` exactly when a conforming sender would use the file:
//!
//! - `version: STSv1`, one of the three modes, and a valid `max_age` are present (the first
//!   occurrence counts: "If any non-repeated field -- i.e., all fields excepting "mx" -- is
//!   duplicated, all entries except for the first SHALL be ignored", RFC 8461 §3.2; a repeat
//!   is an `sts.policy.duplicate` warning);
//! - at least one usable `mx` pattern, unless the mode is `none`;
//! - the file is UTF-8 without a byte-order mark, and no larger than 64 KiB (§3.3).
//!
//! A line that is not `key: value` (a comment, an indented line, `max_age=604800`) is reported
//! as an error but otherwise skipped, as common senders skip it; its key then counts as
//! missing, because no sender reads it. Likewise an `mx` value that can never match
//! (including one written in U-labels, which RFC 8461 §3.2 forbids) is reported as an error
//! and left out. Unknown keys are kept as extensions and ignored, as §3.2 requires.
//!
//! Severity choices that the spec leaves open:
//! - A byte-order mark is an `error`, not a warning: senders read the mark as part of the
//!   first key, so `\u{FEFF}version` is an unknown key and `version` is missing.
//! - Empty lines before or between fields are `warning`s (the grammar has none and a strict
//!   parser stops there); empty lines after the last field are `info`, since they are what
//!   editors leave behind and senders that split lines drop them.
//! - Trailing whitespace after a value is allowed by the grammar (`sts-policy-field *WSP`)
//!   and so reported nowhere; leading whitespace is not (`sts-policy-record` begins with a
//!   field name), so an indented line is a syntax error.

mod fields;

use std::collections::HashMap;

use crate::finding::{Code, Finding, Severity};
use crate::mta_sts::error::PolicyReason;
use crate::mta_sts::pattern::MxPattern;
use crate::mta_sts::record::is_ext_name;

use super::lines::{self, Encoding, Ending};
use super::{Extension, MAX_POLICY_BYTES, MaxAge, Mode, POLICY_KEYS, Policy};

/// The result of linting a policy file (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    /// The policy senders would use, or `None` when they would not use the file at all.
    pub policy: Option<Policy>,
    /// Every finding, in line order; `subject` is `line N` (1-based) or `policy`.
    pub findings: Vec<Finding>,
}

/// Lints policy bytes (RFC 8461 §3.2, size per §3.3). Never panics, whatever the bytes.
pub fn lint(bytes: &[u8]) -> Lint {
    run(bytes).0
}

/// Sort keys: file-wide findings about the bytes first, then lines, then the summary.
const BEFORE_LINES: usize = 0;
const AFTER_LINES: usize = usize::MAX;

pub(super) fn run(bytes: &[u8]) -> (Lint, Option<PolicyReason>) {
    let mut l = Linter::default();
    if bytes.len() > MAX_POLICY_BYTES {
        l.file(
            BEFORE_LINES,
            Code::StsPolicySize,
            Severity::Error,
            format!(
                "the policy is {} bytes; senders refuse policies larger than {MAX_POLICY_BYTES} bytes (64 KiB)",
                bytes.len()
            ),
        );
        l.reject(PolicyReason::TooLarge(bytes.len()));
    }
    let decoded = lines::decode(bytes);
    l.encoding(decoded.encoding, decoded.utf16_errors);
    let lines = lines::split(&decoded.text);
    let (mut crlf, mut lf) = (0usize, 0usize);
    for line in &lines {
        match line.ending {
            Ending::CrLf => crlf += 1,
            Ending::Lf => lf += 1,
            Ending::Eof => {}
        }
        l.line(line.number, line.bytes);
    }
    l.line_endings(crlf, lf);
    l.finish()
}

#[derive(Default)]
struct Linter {
    findings: Vec<(usize, Finding)>,
    rejection: Option<PolicyReason>,
    version: Option<(usize, bool)>,
    mode: Option<(usize, Option<Mode>)>,
    max_age: Option<(usize, Option<MaxAge>)>,
    mx: Vec<(usize, MxPattern)>,
    mx_lines: usize,
    extensions: Vec<Extension>,
    extension_lines: HashMap<String, usize>,
    /// Lines that look like a defined key but that senders do not read as it.
    hints: Vec<(&'static str, usize, &'static str)>,
    content_lines: Vec<usize>,
    blank_lines: Vec<usize>,
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `1 empty line`, `2 empty lines`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn defined_key(key: &str) -> Option<&'static str> {
    POLICY_KEYS.iter().copied().find(|k| *k == key)
}

impl Linter {
    fn at(&mut self, line: usize, code: Code, severity: Severity, message: String) {
        let f = Finding::new(code, severity, format!("line {line}"), message);
        self.findings.push((line, f));
    }

    fn file(&mut self, key: usize, code: Code, severity: Severity, message: String) {
        self.findings
            .push((key, Finding::new(code, severity, "policy", message)));
    }

    fn syntax(&mut self, line: usize, message: String) {
        self.at(line, Code::StsPolicySyntax, Severity::Error, message);
    }

    fn reject(&mut self, reason: PolicyReason) {
        self.rejection.get_or_insert(reason);
    }

    fn hint(&mut self, key: &str, line: usize, how: &'static str) {
        if let Some(k) = defined_key(key) {
            self.hints.push((k, line, how));
        }
    }

    fn encoding(&mut self, encoding: Encoding, utf16_errors: usize) {
        let name = match encoding {
            Encoding::Utf8 => return,
            Encoding::Utf8Bom => {
                self.at(
                    1,
                    Code::StsPolicyBom,
                    Severity::Error,
                    "the file starts with a UTF-8 byte-order mark (EF BB BF); senders read it as part of the first key, so that line's key is not what it looks like".to_owned(),
                );
                self.reject(PolicyReason::Encoding("UTF-8 with a byte-order mark"));
                return;
            }
            Encoding::Utf16Le => "UTF-16LE (byte-order mark FF FE)",
            Encoding::Utf16Be => "UTF-16BE (byte-order mark FE FF)",
        };
        let broken = if utf16_errors > 0 {
            format!("; {utf16_errors} code unit(s) did not decode")
        } else {
            String::new()
        };
        self.at(
            1,
            Code::StsPolicyBom,
            Severity::Error,
            format!(
                "the file is {name}; senders expect UTF-8 and see a NUL byte beside every character, so they find no fields at all (decoded here to lint the rest{broken})"
            ),
        );
        self.reject(PolicyReason::Encoding(if encoding == Encoding::Utf16Le {
            "UTF-16LE"
        } else {
            "UTF-16BE"
        }));
    }

    fn line(&mut self, n: usize, bytes: &[u8]) {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                self.content_lines.push(n);
                let at = e.valid_up_to();
                let byte = bytes.get(at).copied().unwrap_or_default();
                self.syntax(
                    n,
                    format!(
                        "the line is not valid UTF-8 (byte 0x{byte:02X} at column {}); the policy must be UTF-8",
                        at + 1
                    ),
                );
                return;
            }
        };
        if text.trim_matches(is_wsp).is_empty() {
            self.blank_lines.push(n);
            return;
        }
        self.content_lines.push(n);
        if text.contains('\r') {
            self.syntax(
                n,
                format!(
                    "{text:?} contains a carriage return that does not end a line; senders split lines only at LF or CRLF"
                ),
            );
            return;
        }
        if text.starts_with(is_wsp) {
            let inner = text.trim_start_matches(is_wsp);
            if let Some((k, _)) = inner.split_once(':') {
                self.hint(k, n, "is indented");
            }
            self.syntax(
                n,
                format!(
                    "{text:?} is indented; the grammar allows no whitespace before the key, so senders do not read this line"
                ),
            );
            return;
        }
        if text.starts_with('#') {
            self.syntax(
                n,
                format!("comment line {text:?}: the policy grammar has no comments"),
            );
            return;
        }
        if text.trim_end_matches(is_wsp) == "---" {
            self.syntax(
                n,
                "YAML front matter marker \"---\": a site generator's front matter is being served as part of the policy".to_owned(),
            );
            return;
        }
        let Some((key, rest)) = text.split_once(':') else {
            match text.split_once('=') {
                Some((k, _)) if defined_key(k.trim_matches(is_wsp)).is_some() => {
                    let k = k.trim_matches(is_wsp);
                    self.hint(k, n, "uses \"=\" instead of \":\"");
                    self.syntax(
                        n,
                        format!(
                            "{text:?} uses \"=\" instead of \":\"; senders do not read it as {k}"
                        ),
                    );
                }
                _ => self.syntax(n, format!("{text:?} is not \"key: value\"")),
            }
            return;
        };
        if !is_ext_name(key) {
            let trimmed = key.trim_end_matches(is_wsp);
            if trimmed != key && is_ext_name(trimmed) {
                self.hint(trimmed, n, "has whitespace before the colon");
                self.syntax(
                    n,
                    format!(
                        "{text:?} has whitespace between the key {trimmed:?} and \":\", which the grammar does not allow"
                    ),
                );
            } else {
                self.syntax(
                    n,
                    format!(
                        "{key:?} is not a field name (a letter or digit, then up to 31 letters, digits, \"_\", \"-\" or \".\")"
                    ),
                );
            }
            return;
        }
        // `sts-policy-field-delim = ":" *WSP`, and `*WSP` may follow every field.
        let value = rest.trim_matches(is_wsp);
        match key {
            "version" => self.version(n, value),
            "mode" => self.mode(n, value),
            "max_age" => self.max_age(n, value),
            "mx" => self.mx(n, value),
            _ => self.extension(n, key, value),
        }
    }

    fn line_endings(&mut self, crlf: usize, lf: usize) {
        if lf == 0 || self.content_lines.is_empty() {
            return;
        }
        let message = if crlf == 0 {
            format!(
                "{} end in LF; senders accept LF, the canonical form uses CRLF",
                count(lf, "line")
            )
        } else {
            format!("line ends are mixed: {crlf} CRLF and {lf} LF; senders accept both")
        };
        self.file(
            AFTER_LINES - 1,
            Code::StsPolicyLineEndings,
            Severity::Info,
            message,
        );
    }

    fn blank_runs(&mut self) {
        let (Some(&first), Some(&last)) = (self.content_lines.first(), self.content_lines.last())
        else {
            return;
        };
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for &n in &self.blank_lines {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == n => *end = n,
                _ => runs.push((n, n)),
            }
        }
        for (start, end) in runs {
            let n = end - start + 1;
            let (severity, message) = if start > last {
                (
                    Severity::Info,
                    format!(
                        "{} after the last field; most senders ignore them, but the grammar has no empty lines",
                        count(n, "empty line")
                    ),
                )
            } else if end < first {
                (
                    Severity::Warning,
                    format!(
                        "{} before the first field; the grammar starts with a field and strict senders reject the file",
                        count(n, "empty line")
                    ),
                )
            } else {
                (
                    Severity::Warning,
                    format!(
                        "{} between fields; the grammar has none and strict senders stop reading or reject the file here",
                        count(n, "empty line")
                    ),
                )
            };
            self.at(start, Code::StsPolicyBlankLine, severity, message);
        }
    }

    fn missing(&mut self, key: &'static str, code: Code) {
        let hints: Vec<String> = self
            .hints
            .iter()
            .filter(|(k, _, _)| *k == key)
            .map(|(_, line, how)| format!("line {line} {how}"))
            .collect();
        let hint = if hints.is_empty() {
            String::new()
        } else {
            format!(
                " ({}, so senders do not read it as {key})",
                hints.join("; ")
            )
        };
        self.file(
            AFTER_LINES - 1,
            code,
            Severity::Error,
            format!("no {key} field{hint}"),
        );
        self.reject(PolicyReason::Missing(key));
    }

    fn finish(mut self) -> (Lint, Option<PolicyReason>) {
        if self.content_lines.is_empty() {
            let what = if self.blank_lines.is_empty() {
                "the policy file is empty".to_owned()
            } else {
                format!(
                    "the policy file holds only {}",
                    count(self.blank_lines.len(), "empty line")
                )
            };
            self.file(
                AFTER_LINES - 1,
                Code::StsPolicySyntax,
                Severity::Error,
                what,
            );
            self.reject(PolicyReason::Missing("version"));
        } else {
            self.blank_runs();
            self.required_fields();
        }
        let policy = self.build();
        if let Some(p) = &policy
            && !self
                .findings
                .iter()
                .any(|(_, f)| f.severity == Severity::Error)
        {
            let message = format!(
                "senders accept this policy: mode {}, max_age {}, {} mx pattern(s)",
                p.mode(),
                p.max_age(),
                p.mx().len()
            );
            self.file(AFTER_LINES, Code::StsPolicyValid, Severity::Ok, message);
        }
        self.findings.sort_by_key(|(key, _)| *key);
        let findings = self.findings.into_iter().map(|(_, f)| f).collect();
        (Lint { policy, findings }, self.rejection)
    }

    fn required_fields(&mut self) {
        match self.version {
            None => self.missing("version", Code::StsPolicyVersion),
            Some((line, _)) => {
                if self.content_lines.first().is_some_and(|&f| f < line) {
                    self.at(
                        line,
                        Code::StsPolicyVersion,
                        Severity::Info,
                        format!(
                            "version is on line {line}, after other lines; senders accept fields in any order, but the canonical form starts with it"
                        ),
                    );
                }
            }
        }
        if self.mode.is_none() {
            self.missing("mode", Code::StsPolicyMode);
        }
        if self.max_age.is_none() {
            self.missing("max_age", Code::StsPolicyMaxAge);
        }
        let mode = self.mode.and_then(|(_, m)| m);
        if mode != Some(Mode::None) && self.mx.is_empty() {
            let mode_text = match mode {
                Some(m) => format!("mode is {m}"),
                None => "mode is missing or invalid".to_owned(),
            };
            let message = match self.mx_lines {
                0 => format!("no mx line, and {mode_text}; only mode none may omit mx"),
                1 => format!("the only mx line holds no usable pattern, and {mode_text}"),
                n => format!("none of the {n} mx lines holds a usable pattern, and {mode_text}"),
            };
            self.file(
                AFTER_LINES - 1,
                Code::StsPolicyMxMissing,
                Severity::Error,
                message,
            );
            self.reject(PolicyReason::NoMx);
        }
    }

    fn build(&mut self) -> Option<Policy> {
        if self.rejection.is_some() {
            return None;
        }
        let (Some((_, true)), Some((_, Some(mode))), Some((_, Some(max_age)))) =
            (self.version, self.mode, self.max_age)
        else {
            return None;
        };
        let mx = self.mx.iter().map(|(_, p)| p.clone()).collect();
        let mut policy = match Policy::new(mode, max_age, mx) {
            Ok(p) => p,
            Err(_) => {
                self.reject(PolicyReason::NoMx);
                return None;
            }
        };
        for ext in std::mem::take(&mut self.extensions) {
            // Repeats were already skipped line by line, so this cannot refuse.
            policy = policy.clone().with_extension(ext).unwrap_or(policy);
        }
        Some(policy)
    }
}
