//! RFC 8461 §3.3 and §3.2 — judging the policy fetch and the policy it returned
//!
//! ```text
//! RFC 8461 §3.3: The policy is fetched via HTTPS GET from
//!   https://mta-sts.<domain>/.well-known/mta-sts.txt
//! ... the certificate MUST be valid for the "mta-sts" host ... HTTP 3xx redirects MUST NOT
//! be followed ... senders SHOULD validate that the media type is "text/plain" ... and may
//! limit the size of the policy (64 KiB) and the time taken to fetch it.
//! ```
//!
//! A refused fetch is one error, with the reason a sender would give. A fetched body is
//! linted by `stsward-proto` (line-numbered `sts.policy.*` findings), and the parsed policy
//! is handed on to the coverage judge.

use serde::{Deserialize, Serialize};
use stsward_proto::mta_sts::{self, Mode, Policy};
use stsward_proto::{Code, Finding, Severity};
use time::OffsetDateTime;

use super::{EXPIRY_WARNING, date, relative_days, sts_txt::kind_words};
use crate::observe::{CertProblem, PolicyFetch, PolicyObservation};

/// The policy mode (RFC 8461 §5), as reported in `--json` (`policy_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    /// Senders refuse MX hosts that fail validation.
    Enforce,
    /// Senders deliver anyway and report failures.
    Testing,
    /// The policy is withdrawn.
    None,
}

impl From<Mode> for PolicyMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Enforce => PolicyMode::Enforce,
            Mode::Testing => PolicyMode::Testing,
            Mode::None => PolicyMode::None,
        }
    }
}

/// The findings about the policy, and the policy itself when it could be used.
#[derive(Debug)]
pub struct PolicyJudgement {
    /// The findings.
    pub findings: Vec<Finding>,
    /// The policy senders would use, when the fetch succeeded and the content is usable.
    pub policy: Option<Policy>,
}

/// Whether `mta-sts.<domain>` exists: anything but "no address" means a server was there
/// to ask (even if it then failed).
pub fn host_exists(obs: &PolicyObservation) -> bool {
    !matches!(obs.outcome, PolicyFetch::NoAddress { .. })
}

/// Judges the fetch and, when it succeeded, the content.
pub fn judge(obs: &PolicyObservation, now: OffsetDateTime) -> PolicyJudgement {
    let host = obs.host.as_str();
    let refused = |code: Code, message: String| PolicyJudgement {
        findings: vec![Finding::new(code, Severity::Error, host, message)],
        policy: None,
    };
    match &obs.outcome {
        PolicyFetch::Fetched {
            content_type,
            body,
            cert_not_after,
        } => fetched(obs, content_type, body, *cert_not_after, now),
        PolicyFetch::NoAddress { error: None } => refused(
            Code::StsPolicyHost,
            format!("{host} has no A or AAAA record, so senders cannot fetch the policy"),
        ),
        PolicyFetch::NoAddress { error: Some(err) } => refused(
            Code::StsPolicyHost,
            format!(
                "address lookup for {host} failed ({}): {}",
                kind_words(err),
                err.detail
            ),
        ),
        PolicyFetch::Unreachable { detail } => refused(
            Code::StsPolicyUnreachable,
            format!("no HTTPS connection to {host} port 443: {detail}"),
        ),
        PolicyFetch::Webpki { problem, detail } => {
            let what = match problem {
                CertProblem::Expired => "has expired",
                CertProblem::NotYetValid => "is not valid yet",
                CertProblem::Name => "is not valid for this name",
                CertProblem::Untrusted => "is not trusted",
            };
            refused(
                Code::StsPolicyWebpki,
                format!(
                    "the certificate of {host} {what} ({detail}); senders report sts-webpki-invalid"
                ),
            )
        }
        PolicyFetch::Redirect { status, location } => refused(
            Code::StsPolicyRedirect,
            match location {
                Some(to) => format!(
                    "{} answered {status} redirecting to {to}; senders do not follow redirects",
                    obs.url
                ),
                None => format!(
                    "{} answered {status} (a redirect); senders do not follow redirects",
                    obs.url
                ),
            },
        ),
        PolicyFetch::Status { status } => refused(
            Code::StsPolicyStatus,
            format!("{} answered HTTP {status}, not 200", obs.url),
        ),
        PolicyFetch::ContentType { content_type } => refused(
            Code::StsPolicyContentType,
            match content_type {
                Some(ct) => format!("{} was served as \"{ct}\", not text/plain", obs.url),
                None => format!("{} was served without a Content-Type", obs.url),
            },
        ),
        PolicyFetch::TooLarge { limit } => refused(
            Code::StsPolicySize,
            format!("{} is larger than {limit} bytes", obs.url),
        ),
        PolicyFetch::Timeout { after_ms } => refused(
            Code::StsPolicyTimeout,
            format!("{} gave no complete answer within {after_ms} ms", obs.url),
        ),
    }
}

fn fetched(
    obs: &PolicyObservation,
    content_type: &str,
    body: &[u8],
    cert_not_after: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> PolicyJudgement {
    let host = obs.host.as_str();
    let mut findings = vec![Finding::new(
        Code::StsPolicyFetched,
        Severity::Ok,
        host,
        format!("fetched {} ({} bytes, {content_type})", obs.url, body.len()),
    )];

    if let Some(not_after) = cert_not_after
        && not_after - now <= EXPIRY_WARNING
    {
        findings.push(Finding::new(
            Code::StsPolicyCertExpiring,
            Severity::Warning,
            host,
            format!(
                "the certificate of {host} expires {} ({})",
                date(not_after),
                relative_days(not_after, now)
            ),
        ));
    }

    // The linter names file-wide findings `policy`; in a check, the policy is the one served
    // by this host, so say so. Line-numbered subjects (`line 3`) stay as they are.
    let linted = mta_sts::lint(body);
    findings.extend(linted.findings.into_iter().map(|mut f| {
        if f.subject == "policy" {
            f.subject = host.to_owned();
        }
        f
    }));
    PolicyJudgement {
        findings,
        policy: linted.policy,
    }
}
