//! Machine-readable output (`spec/findings.md`)
//!
//! ```text
//! check    = { "domain", "verdict", "checked_at", ["policy_mode"], "counts",
//!              "findings": [ { "code", "severity", "subject", "message", "remedy",
//!                              "reference" } ],
//!              "observed": { "sts_txt", "policy", "mx", "tlsrpt_txt" } }
//! not-run  = { "domain", "error": { "kind", "message" } }
//! bulk     = one check or not-run object per line (JSON Lines), then
//!            { "summary": { "domains", "ok", "info", "warning", "error", "not_run" } }
//! ```
//!
//! The field names of a finding are public API and come straight from
//! [`stsward_proto::Finding`]'s serde form.
//!
//! serde writes U+0000..U+001F as `\u00XX` but leaves DEL, the C1 controls and the
//! bidirectional formatting characters as they are; [`terminal_safe`] writes those as `\uXXXX`
//! too, so that JSON piped to a terminal (`stsward check --json | less -R`) is as safe as the
//! text output. The JSON value is unchanged: any character may be written as `\uXXXX`.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::error::NotRun;
use crate::report::{BulkSummary, CheckReport, CheckResult};

/// One report as a JSON value.
pub fn to_value(report: &CheckReport) -> Value {
    // Serialising plain data with string keys cannot fail; fall back to a minimal object
    // rather than panic if a future field ever makes it fail.
    serde_json::to_value(report).unwrap_or_else(|e| {
        json!({
            "domain": report.domain,
            "verdict": report.verdict,
            "findings": report.findings,
            "render_error": e.to_string(),
        })
    })
}

/// One report, pretty-printed, for `stsward check DOMAIN --json`.
pub fn render(report: &CheckReport) -> String {
    let mut s = terminal_safe(serde_json::to_string_pretty(&to_value(report)).unwrap_or_default());
    s.push('\n');
    s
}

/// One result as a single line of JSON Lines (no newline inside, one at the end).
pub fn render_line(result: &CheckResult) -> String {
    let value = match result {
        Ok(report) => to_value(report),
        Err(not_run) => not_run_value(not_run),
    };
    let mut s = terminal_safe(value.to_string());
    s.push('\n');
    s
}

/// A check that could not run, for a single-domain `--json`.
pub fn render_not_run(not_run: &NotRun) -> String {
    let mut s =
        terminal_safe(serde_json::to_string_pretty(&not_run_value(not_run)).unwrap_or_default());
    s.push('\n');
    s
}

/// The bulk summary line.
pub fn render_summary(summary: &BulkSummary) -> String {
    let mut s = json!({ "summary": summary }).to_string();
    s.push('\n');
    s
}

fn not_run_value(not_run: &NotRun) -> Value {
    json!({
        "domain": not_run.domain,
        "error": { "kind": not_run.error.kind(), "message": not_run.error.to_string() },
    })
}

/// Serialised JSON with DEL, C1 controls and bidirectional formatting characters written as
/// `\uXXXX`. They can only occur inside JSON strings, where the escape means the same
/// character, so a plain pass over the text is exact.
fn terminal_safe(json: String) -> String {
    // C0 controls are serde's job (and the pretty printer's own newlines are not in strings).
    let unsafe_char = |c: char| c >= '\u{7f}' && super::escape::is_unsafe(c);
    if !json.chars().any(unsafe_char) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_char(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}
