//! The whole-domain report, its verdict, and the exit status (`spec/findings.md`)
//!
//! ```text
//! verdict     = worst severity of all findings ("ok" when there are none)
//! exit status = 0 no finding is an error
//!               1 at least one finding is an error
//!               2 the check could not run at all (bad arguments, no usable resolver)
//! ```

use serde::{Deserialize, Serialize};
use stsward_proto::finding::verdict;
use stsward_proto::{Code, Finding, Severity};
use time::OffsetDateTime;

use crate::error::NotRun;
use crate::judge::{self, PolicyMode};
use crate::observe::Observation;

/// Exit status: no finding is an error.
pub const EXIT_OK: u8 = 0;
/// Exit status: at least one finding is an error.
pub const EXIT_ERRORS: u8 = 1;
/// Exit status: the check could not run.
pub const EXIT_NOT_RUN: u8 = 2;

/// Everything the checker says about one domain. Serialises to the `--json` object of
/// `spec/findings.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The domain checked.
    pub domain: String,
    /// The worst severity among the findings.
    pub verdict: Severity,
    /// When the check ran.
    #[serde(with = "crate::observe::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// The mode of the fetched policy, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_mode: Option<PolicyMode>,
    /// How many findings of each severity.
    pub counts: Counts,
    /// Every finding, passing checks included.
    pub findings: Vec<Finding>,
    /// What was observed: records, the policy, each MX with its addresses, TLS and
    /// certificate facts.
    pub observed: Observation,
}

impl CheckReport {
    /// Judges `observed` as of `now` and builds the report.
    pub fn from_observation(observed: Observation, now: OffsetDateTime) -> Self {
        let judged = judge::judge(&observed, now);
        CheckReport {
            domain: observed.domain.clone(),
            verdict: verdict(&judged.findings),
            checked_at: now,
            policy_mode: judged.policy_mode,
            counts: Counts::of(&judged.findings),
            findings: judged.findings,
            observed,
        }
    }

    /// 0 when no finding is an error, 1 otherwise.
    pub fn exit_status(&self) -> u8 {
        if self.verdict == Severity::Error {
            EXIT_ERRORS
        } else {
            EXIT_OK
        }
    }

    /// Whether any finding has this code.
    pub fn has(&self, code: Code) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// A short phrase for the last line of the text output: what the verdict means for the
    /// step the owner cares about, switching to (or staying in) `enforce`.
    pub fn readiness(&self) -> &'static str {
        let errors = self.counts.error > 0;
        let warnings = self.counts.warning > 0;
        match self.policy_mode {
            _ if self.has(Code::StsTxtMissing) && self.policy_mode.is_none() && !errors => {
                "MTA-STS is not deployed"
            }
            Some(PolicyMode::Enforce) if errors => "enforced, and mail can fail: fix the errors",
            Some(PolicyMode::Enforce) if warnings => "enforced; fix the warnings before they bite",
            Some(PolicyMode::Enforce) => "enforced and healthy",
            Some(PolicyMode::None) => "policy withdrawn (mode none)",
            _ if errors => "not ready for enforce",
            _ if warnings => "ready for enforce once the warnings are fixed",
            _ => "ready for enforce",
        }
    }
}

/// How many findings of each severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Passing checks.
    pub ok: usize,
    /// Informational findings.
    pub info: usize,
    /// Warnings.
    pub warning: usize,
    /// Errors.
    pub error: usize,
}

impl Counts {
    /// Counts `findings` by severity.
    pub fn of(findings: &[Finding]) -> Self {
        let mut c = Counts::default();
        for f in findings {
            match f.severity {
                Severity::Ok => c.ok += 1,
                Severity::Info => c.info += 1,
                Severity::Warning => c.warning += 1,
                Severity::Error => c.error += 1,
            }
        }
        c
    }
}

/// The outcome of checking one domain: a report, or why the check could not run.
pub type CheckResult = Result<CheckReport, NotRun>;

/// The exit status for one or many results: 2 when any check could not run, else 1 when any
/// report has an error, else 0.
pub fn exit_status<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> u8 {
    results
        .into_iter()
        .map(|r| match r {
            Ok(report) => report.exit_status(),
            Err(_) => EXIT_NOT_RUN,
        })
        .max()
        .unwrap_or(EXIT_OK)
}

/// Bulk summary: how many domains got each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkSummary {
    /// Domains attempted.
    pub domains: usize,
    /// Verdict `ok`.
    pub ok: usize,
    /// Verdict `info`.
    pub info: usize,
    /// Verdict `warning`.
    pub warning: usize,
    /// Verdict `error`.
    pub error: usize,
    /// Checks that could not run.
    pub not_run: usize,
}

impl BulkSummary {
    /// Counts `results` by verdict.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Self {
        let mut s = BulkSummary::default();
        for r in results {
            s.add(r);
        }
        s
    }

    /// Adds one result (for a summary kept while results stream in).
    pub fn add(&mut self, result: &CheckResult) {
        self.domains += 1;
        match result {
            Ok(r) => match r.verdict {
                Severity::Ok => self.ok += 1,
                Severity::Info => self.info += 1,
                Severity::Warning => self.warning += 1,
                Severity::Error => self.error += 1,
            },
            Err(_) => self.not_run += 1,
        }
    }
}
