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
    let mut s = serde_json::to_string_pretty(&to_value(report)).unwrap_or_default();
    s.push('\n');
    s
}

/// One result as a single line of JSON Lines (no newline inside, one at the end).
pub fn render_line(result: &CheckResult) -> String {
    let value = match result {
        Ok(report) => to_value(report),
        Err(not_run) => not_run_value(not_run),
    };
    let mut s = value.to_string();
    s.push('\n');
    s
}

/// A check that could not run, for a single-domain `--json`.
pub fn render_not_run(not_run: &NotRun) -> String {
    let mut s = serde_json::to_string_pretty(&not_run_value(not_run)).unwrap_or_default();
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
