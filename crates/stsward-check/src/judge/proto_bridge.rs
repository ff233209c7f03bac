//! The narrow seam to `stsward-proto`'s MTA-STS and TLS-RPT evaluators
//!
//! The policy linter (RFC 8461 §3.2), the `_mta-sts` record evaluator (RFC 8461 §3.1), the
//! `_smtp._tls` record evaluator (RFC 8460 §3) and MX pattern matching (RFC 8461 §4.1) are
//! `stsward-proto`'s job. The judges call them only through the four functions here, so
//! that the checker never grows a second parser.
//!
//! INTERIM: until those evaluators land, the bodies below are deliberately minimal stand-ins
//! (enough to extract the mode and patterns, and to catch the grossest mistakes). They are
//! to be replaced by calls into `stsward_proto::mta_sts` / `stsward_proto::tlsrpt`.

use stsward_proto::{Code, Finding, Severity};

/// The policy mode (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    /// Senders refuse MX hosts that fail validation.
    Enforce,
    /// Senders deliver anyway and report failures.
    Testing,
    /// The policy is withdrawn.
    None,
}

impl PolicyMode {
    /// The mode as written in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Enforce => "enforce",
            PolicyMode::Testing => "testing",
            PolicyMode::None => "none",
        }
    }
}

/// What the coverage judge needs from a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPolicy {
    /// The mode.
    pub mode: PolicyMode,
    /// `max_age`, when it parsed.
    pub max_age: Option<u64>,
    /// The valid `mx` patterns, as written.
    pub mx: Vec<String>,
}

/// The linter's findings and, when the content has a usable mode, the policy.
#[derive(Debug, Clone)]
pub struct LintedPolicy {
    /// Line-numbered `sts.policy.*` findings.
    pub findings: Vec<Finding>,
    /// The policy, when a mode could be read.
    pub policy: Option<ParsedPolicy>,
}

/// Lints a fetched policy body.
pub fn lint_policy(body: &[u8]) -> LintedPolicy {
    let mut findings = Vec::new();
    let text = String::from_utf8_lossy(body);
    let mut mode = None;
    let mut max_age = None;
    let mut version_ok = false;
    let mut mx = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let subject = format!("line {}", i + 1);
        let line = line.trim_end_matches('\r');
        let Some((key, value)) = line.split_once(':') else {
            findings.push(Finding::new(
                Code::StsPolicySyntax,
                Severity::Error,
                subject,
                format!("\"{line}\" is not key: value"),
            ));
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "version" => version_ok = value == "STSv1",
            "mode" => {
                mode = match value {
                    "enforce" => Some(PolicyMode::Enforce),
                    "testing" => Some(PolicyMode::Testing),
                    "none" => Some(PolicyMode::None),
                    _ => None,
                }
            }
            "max_age" => max_age = value.parse::<u64>().ok(),
            "mx" => mx.push(value.trim_end_matches('.').to_ascii_lowercase()),
            _ => {}
        }
    }
    if !version_ok {
        findings.push(Finding::new(
            Code::StsPolicyVersion,
            Severity::Error,
            "line 1",
            "no \"version: STSv1\" line",
        ));
    }
    if mode.is_none() {
        findings.push(Finding::new(
            Code::StsPolicyMode,
            Severity::Error,
            "policy",
            "no valid mode line",
        ));
    }
    if max_age.is_none() {
        findings.push(Finding::new(
            Code::StsPolicyMaxAge,
            Severity::Error,
            "policy",
            "no valid max_age line",
        ));
    }
    match mode {
        Some(PolicyMode::Testing) => findings.push(Finding::new(
            Code::StsPolicyModeTesting,
            Severity::Info,
            "policy",
            "mode is testing: failures are reported, not enforced",
        )),
        Some(PolicyMode::None) => findings.push(Finding::new(
            Code::StsPolicyModeNone,
            Severity::Warning,
            "policy",
            "mode is none: the policy is withdrawn",
        )),
        _ => {}
    }
    LintedPolicy {
        findings,
        policy: mode.map(|mode| ParsedPolicy { mode, max_age, mx }),
    }
}

/// Evaluates the one selected `v=STSv1` record: `sts.txt.*` problem findings, empty when
/// the record is valid.
pub fn evaluate_sts_record(name: &str, record: &str) -> Vec<Finding> {
    let id = record
        .split(';')
        .filter_map(|f| f.trim().split_once('='))
        .find(|(k, _)| k.trim() == "id")
        .map(|(_, v)| v.trim());
    match id {
        Some(id)
            if (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Vec::new()
        }
        Some(id) => vec![Finding::new(
            Code::StsTxtId,
            Severity::Error,
            name,
            format!("id \"{id}\" is not 1-32 letters or digits"),
        )],
        None => vec![Finding::new(
            Code::StsTxtId,
            Severity::Error,
            name,
            "the record has no id field",
        )],
    }
}

/// Evaluates the one selected `v=TLSRPTv1` record: `tlsrpt.*` problem findings, empty when
/// the record is valid.
pub fn evaluate_tlsrpt_record(name: &str, record: &str) -> Vec<Finding> {
    let rua = record
        .split(';')
        .filter_map(|f| f.trim().split_once('='))
        .find(|(k, _)| k.trim() == "rua")
        .map(|(_, v)| v.trim());
    let Some(rua) = rua else {
        return vec![Finding::new(
            Code::TlsrptRuaMissing,
            Severity::Error,
            name,
            "the record has no rua field",
        )];
    };
    rua.split(',')
        .map(str::trim)
        .filter(|u| !(u.starts_with("mailto:") && u.contains('@')) && !u.starts_with("https://"))
        .map(|u| {
            Finding::new(
                Code::TlsrptRuaInvalid,
                Severity::Error,
                name,
                format!("rua URI \"{u}\" is neither mailto: nor https:"),
            )
        })
        .collect()
}

/// Whether the policy pattern `pattern` matches MX host `host` (RFC 8461 §4.1: a leading
/// `*.` matches exactly one label; comparison ignores case and a trailing dot).
pub fn mx_pattern_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
    }
}
