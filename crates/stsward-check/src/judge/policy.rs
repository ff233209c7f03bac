//! RFC 8461 §3.3 and §3.2 — judging the policy fetch and the policy it returned
//!
//! ```text
//! RFC 8461 §3.2: Thus, for a Policy Domain of "example.com", the full URL is
//! "https://mta-sts.example.com/.well-known/mta-sts.txt".
//!
//! When fetching a policy, senders SHOULD validate that the media type
//! is "text/plain" ...
//!
//! RFC 8461 §3.3: ... the Policy Host HTTPS server
//! MUST present an X.509 certificate that is valid for the "mta-sts"
//! DNS-ID [RFC6125] (e.g., "mta-sts.example.com") as described below,
//! chain to a root CA that is trusted by the Sending MTA, and be non-
//! expired.
//! ...
//! Policies fetched via HTTPS are only valid if the HTTP response code
//! is 200 (OK).  HTTP 3xx redirects MUST NOT be followed, ...
//! ...
//! A suggested timeout is
//! one minute, and a suggested maximum policy size is 64 kilobytes;
//! ```
//!
//! A refused fetch is one error, built through [`stsward_proto::Failure`] (its one code, and
//! the result type senders report: `sts-policy-fetch-error` or `sts-webpki-invalid`). A
//! fetched body is linted by `stsward-proto` (line-numbered `sts.policy.*` findings), and the
//! parsed policy is handed on to the coverage judge.

use serde::{Deserialize, Serialize};
use stsward_proto::mta_sts::{self, Mode, Policy};
use stsward_proto::{Code, Failure, Finding, Severity};
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
    let refused = |failure: Failure, message: String| PolicyJudgement {
        findings: vec![failure.finding(
            Severity::Error,
            host,
            format!("{message}{}", failure.senders_report()),
        )],
        policy: None,
    };
    match &obs.outcome {
        PolicyFetch::Fetched {
            content_type,
            body,
            cert_not_after,
        } => fetched(obs, content_type, body, *cert_not_after, now),
        PolicyFetch::NoAddress { error: None } => refused(
            Failure::StsPolicyHostNoAddress,
            format!("{host} has no A or AAAA record, so senders cannot fetch the policy"),
        ),
        PolicyFetch::NoAddress { error: Some(err) } => refused(
            Failure::StsPolicyHostNoAddress,
            format!(
                "address lookup for {host} failed ({}): {}",
                kind_words(err),
                err.detail
            ),
        ),
        PolicyFetch::Unreachable { detail } => refused(
            Failure::StsPolicyUnreachable,
            format!("no HTTPS connection to {host} port 443: {detail}"),
        ),
        PolicyFetch::Refused { detail } => PolicyJudgement {
            findings: vec![Finding::new(
                Code::NetAddressRefused,
                Severity::Error,
                host,
                format!(
                    "the policy was not fetched: {detail}; senders on the Internet cannot reach \
                     such an address either"
                ),
            )],
            policy: None,
        },
        PolicyFetch::Webpki { problem, detail } => {
            let what = match problem {
                CertProblem::Expired => "has expired",
                CertProblem::NotYetValid => "is not valid yet",
                CertProblem::Name => "is not valid for this name",
                CertProblem::Untrusted => "is not trusted",
            };
            refused(
                Failure::StsWebpkiInvalid,
                format!("the certificate of {host} {what} ({detail})"),
            )
        }
        PolicyFetch::Redirect { status, location } => refused(
            Failure::StsPolicyRedirect,
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
            Failure::StsPolicyStatus,
            format!("{} answered HTTP {status}, not 200", obs.url),
        ),
        PolicyFetch::ContentType { content_type } => refused(
            Failure::StsPolicyContentType,
            match content_type {
                Some(ct) => format!("{} was served as \"{ct}\", not text/plain", obs.url),
                None => format!("{} was served without a Content-Type", obs.url),
            },
        ),
        PolicyFetch::TooLarge { limit } => refused(
            Failure::StsPolicyTooLarge,
            format!("{} is larger than {limit} bytes", obs.url),
        ),
        PolicyFetch::Timeout { after_ms } => refused(
            Failure::StsPolicyTimeout,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::{now, policy};

    /// A policy host the tenant check's filter refused was not fetched from: one
    /// `net.address.refused` error, no policy (issue 9, SSRF).
    #[test]
    fn a_refused_policy_host_is_one_net_address_refused_error() {
        let outcome = PolicyFetch::Refused {
            detail: "10.1.2.3 is private-use (RFC 1918)".into(),
        };
        let judged = judge(&policy("example.test", outcome), now());
        assert!(judged.policy.is_none());
        let [f] = judged.findings.as_slice() else {
            panic!("{:#?}", judged.findings)
        };
        assert_eq!(
            (f.code, f.severity),
            (Code::NetAddressRefused, Severity::Error)
        );
        assert!(f.message.contains("10.1.2.3"), "{}", f.message);
    }

    /// Every refused fetch is built through `stsward_proto::Failure`: one code, and the
    /// RFC 8460 §4.3.2.2 result type senders report, named in the message.
    #[test]
    fn rfc8460_4_3_2_2_refused_fetches_name_the_result_type() {
        // (outcome, code, result type)
        let table: Vec<(PolicyFetch, Code, &str)> = vec![
            (
                PolicyFetch::NoAddress { error: None },
                Code::StsPolicyHost,
                "sts-policy-fetch-error",
            ),
            (
                PolicyFetch::Unreachable {
                    detail: "refused".into(),
                },
                Code::StsPolicyUnreachable,
                "sts-policy-fetch-error",
            ),
            (
                PolicyFetch::Webpki {
                    problem: CertProblem::Expired,
                    detail: "x".into(),
                },
                Code::StsPolicyWebpki,
                "sts-webpki-invalid",
            ),
            (
                PolicyFetch::Redirect {
                    status: 301,
                    location: None,
                },
                Code::StsPolicyRedirect,
                "sts-policy-fetch-error",
            ),
            (
                PolicyFetch::Status { status: 404 },
                Code::StsPolicyStatus,
                "sts-policy-fetch-error",
            ),
            (
                PolicyFetch::ContentType { content_type: None },
                Code::StsPolicyContentType,
                "sts-policy-fetch-error",
            ),
            (
                PolicyFetch::TooLarge { limit: 65_536 },
                Code::StsPolicySize,
                "sts-policy-fetch-error",
            ),
            (
                PolicyFetch::Timeout { after_ms: 1 },
                Code::StsPolicyTimeout,
                "sts-policy-fetch-error",
            ),
        ];
        for (outcome, code, rt) in table {
            let judged = judge(&policy("example.test", outcome), now());
            assert!(judged.policy.is_none());
            let [f] = judged.findings.as_slice() else {
                panic!("{code}: {:#?}", judged.findings)
            };
            assert_eq!((f.code, f.severity), (code, Severity::Error));
            assert!(
                f.message.ends_with(&format!("; senders report {rt}")),
                "{code}: {}",
                f.message
            );
        }
    }
}
