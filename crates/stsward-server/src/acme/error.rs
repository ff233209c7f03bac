//! RFC 8555 §6.7 — what went wrong with an order, named by the step that failed and carrying
//! the CA's problem document.
//!
//! ```text
//! step      = account | new order | authorization | challenge type | challenge
//!           | finalize | download
//! failure   = the CA's problem document (type, detail, subproblems)
//!           | no answer before the deadline | transport | a refused pre-flight
//!           | a key or certificate that could not be made or parsed
//! ```

use std::fmt;
use std::time::Duration;

use thiserror::Error;
use time::OffsetDateTime;

use super::ChallengeKind;
use super::preflight::PreflightError;

/// RFC 8555 §6.7: the problem type a CA uses when a rate limit is exceeded.
pub const RATE_LIMITED: &str = "urn:ietf:params:acme:error:rateLimited";

/// The step of an order (RFC 8555 §7.1 overview, §7.3 account, §7.4 order, §7.5
/// authorizations, §7.4 finalize, §7.4.2 download).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Creating or loading the account (RFC 8555 §7.3), including reading the directory.
    Account,
    /// `newOrder` (RFC 8555 §7.4).
    NewOrder,
    /// Fetching or waiting on an authorization (RFC 8555 §7.5).
    Authorization,
    /// Choosing a challenge type the CA offers (RFC 8555 §7.5.1).
    ChallengeType,
    /// Telling the CA a challenge is ready (RFC 8555 §7.5.1).
    Challenge,
    /// Sending the CSR (RFC 8555 §7.4).
    Finalize,
    /// Waiting for and downloading the certificate (RFC 8555 §7.4.2).
    Download,
    /// Asking for renewal information (RFC 9773 §4.2).
    RenewalInfo,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Account => "account",
            Step::NewOrder => "new order",
            Step::Authorization => "authorization",
            Step::ChallengeType => "challenge type",
            Step::Challenge => "challenge",
            Step::Finalize => "finalize",
            Step::Download => "download",
            Step::RenewalInfo => "renewal info",
        })
    }
}

/// An RFC 7807 problem document from the CA (RFC 8555 §6.7), as plain data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaProblem {
    /// The problem type, e.g. `urn:ietf:params:acme:error:unauthorized`.
    pub kind: Option<String>,
    /// The CA's explanation.
    pub detail: Option<String>,
    /// The HTTP status the CA gave.
    pub status: Option<u16>,
    /// RFC 8555 §6.7.1 subproblems, each as `identifier: detail (type)`.
    pub subproblems: Vec<String>,
}

impl CaProblem {
    pub(super) fn from_acme(p: &instant_acme::Problem) -> CaProblem {
        CaProblem {
            kind: p.r#type.clone(),
            detail: p.detail.clone(),
            status: p.status,
            subproblems: p
                .subproblems
                .iter()
                .map(|s| {
                    let who = s
                        .identifier
                        .as_ref()
                        .map(|i| format!("{i:?}: "))
                        .unwrap_or_default();
                    format!(
                        "{who}{} ({})",
                        s.detail.as_deref().unwrap_or("no detail"),
                        s.r#type.as_deref().unwrap_or("no type")
                    )
                })
                .collect(),
        }
    }

    /// Whether this is RFC 8555 §6.7 `rateLimited`.
    pub fn is_rate_limited(&self) -> bool {
        self.kind.as_deref() == Some(RATE_LIMITED)
    }
}

impl fmt::Display for CaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail.as_deref().unwrap_or("no detail given"))?;
        if let Some(kind) = &self.kind {
            write!(f, " ({kind})")?;
        }
        for sub in &self.subproblems {
            write!(f, "; {sub}")?;
        }
        Ok(())
    }
}

/// An order, account or renewal-information request that did not succeed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AcmeError {
    /// The CA answered with a problem document.
    #[error("ACME {step} for {name}: the CA refused: {problem}")]
    Ca {
        /// The step.
        step: Step,
        /// The certificate name (or the directory URL, for the account step).
        name: String,
        /// What the CA said.
        problem: Box<CaProblem>,
        /// RFC 8555 §6.6: when a rate-limited CA said to come back (its `Retry-After`).
        retry_after: Option<OffsetDateTime>,
    },
    /// An authorization ended in a state other than `valid`: the CA could not validate.
    #[error(
        "ACME authorization {url} for {name} over {kind} is {status}: {}",
        problem.as_ref().map_or_else(|| "the CA gave no reason".to_owned(), ToString::to_string)
    )]
    Authorization {
        /// The certificate name.
        name: String,
        /// The authorization URL.
        url: String,
        /// The challenge type that was answered.
        kind: ChallengeKind,
        /// The authorization status (`invalid`, `expired`, ...).
        status: String,
        /// The challenge's error, when the CA gave one.
        problem: Option<Box<CaProblem>>,
    },
    /// The CA offers neither wanted challenge type for the name.
    #[error("ACME challenge type for {name}: the CA does not offer {wanted} (offered: {})", offered.join(", "))]
    NoChallenge {
        /// The certificate name.
        name: String,
        /// The type asked for.
        wanted: ChallengeKind,
        /// The types the CA offered.
        offered: Vec<String>,
    },
    /// The policy host would not take the challenge answer; the CA was not told to validate.
    #[error("ACME challenge for {name}: the policy host refused the {kind} answer: {source}")]
    Responder {
        /// The certificate name.
        name: String,
        /// The challenge type.
        kind: ChallengeKind,
        /// What the responder said.
        #[source]
        source: super::ResponderError,
    },
    /// No answer before the deadline.
    #[error("ACME {step} for {name}: no answer within {after:?}")]
    Timeout {
        /// The step.
        step: Step,
        /// The certificate name (or the directory URL).
        name: String,
        /// The time allowed.
        after: Duration,
    },
    /// The CA could not be reached, or answered something that is not ACME.
    #[error("ACME {step} for {name}: {source}")]
    Transport {
        /// The step.
        step: Step,
        /// The certificate name (or the directory URL).
        name: String,
        /// What the client said.
        #[source]
        source: instant_acme::Error,
    },
    /// The name does not resolve to this service: nothing was asked of the CA.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    /// A key, CSR or challenge certificate could not be made, or the issued chain does not
    /// parse.
    #[error("ACME {step} for {name}: {reason}")]
    Certificate {
        /// The step.
        step: Step,
        /// The certificate name.
        name: String,
        /// What failed.
        reason: String,
    },
    /// Stored account credentials do not parse.
    #[error("stored ACME account credentials: {reason}")]
    Credentials {
        /// What is wrong with them.
        reason: String,
    },
    /// Both challenge types were tried and both failed.
    #[error("{preferred}; fallback: {fallback}")]
    BothFailed {
        /// The preferred type's failure.
        preferred: Box<AcmeError>,
        /// The fallback type's failure.
        fallback: Box<AcmeError>,
    },
}

impl AcmeError {
    /// Maps a client error at `step` for `name`.
    pub(super) fn at(step: Step, name: &str, e: instant_acme::Error) -> AcmeError {
        match e {
            instant_acme::Error::Api(problem) => AcmeError::Ca {
                step,
                name: name.to_owned(),
                problem: Box::new(CaProblem::from_acme(&problem)),
                retry_after: None,
            },
            source => AcmeError::Transport {
                step,
                name: name.to_owned(),
                source,
            },
        }
    }

    /// The step that failed (the preferred attempt's, for [`AcmeError::BothFailed`]).
    pub fn step(&self) -> Option<Step> {
        match self {
            AcmeError::Ca { step, .. }
            | AcmeError::Timeout { step, .. }
            | AcmeError::Transport { step, .. }
            | AcmeError::Certificate { step, .. } => Some(*step),
            AcmeError::Authorization { .. } => Some(Step::Authorization),
            AcmeError::Responder { .. } => Some(Step::Challenge),
            AcmeError::NoChallenge { .. } => Some(Step::ChallengeType),
            AcmeError::BothFailed { preferred, .. } => preferred.step(),
            AcmeError::Preflight(_) | AcmeError::Credentials { .. } => None,
        }
    }

    /// Whether the CA said a rate limit was hit (RFC 8555 §6.6), anywhere in this error.
    pub fn is_rate_limited(&self) -> bool {
        match self {
            AcmeError::Ca { problem, .. } => problem.is_rate_limited(),
            AcmeError::BothFailed {
                preferred,
                fallback,
            } => preferred.is_rate_limited() || fallback.is_rate_limited(),
            _ => false,
        }
    }

    /// When a rate-limited CA said to come back, if it did.
    pub fn retry_after(&self) -> Option<OffsetDateTime> {
        match self {
            AcmeError::Ca { retry_after, .. } => *retry_after,
            AcmeError::BothFailed {
                preferred,
                fallback,
            } => preferred.retry_after().max(fallback.retry_after()),
            _ => None,
        }
    }

    /// Whether trying the other challenge type can help: the chosen type was not offered,
    /// was refused, or did not validate. Rate limits, timeouts and transport failures are
    /// not helped by another challenge type.
    pub(super) fn other_challenge_may_help(&self) -> bool {
        match self {
            AcmeError::NoChallenge { .. }
            | AcmeError::Authorization { .. }
            | AcmeError::Responder { .. } => true,
            AcmeError::Ca { step, problem, .. } => {
                matches!(step, Step::Challenge | Step::Authorization) && !problem.is_rate_limited()
            }
            _ => false,
        }
    }
}
