//! Why a check could not run at all (exit status 2 in `spec/findings.md`)
//!
//! Everything the checker *observes* going wrong — a failed lookup, a refused fetch, an MX
//! that does not answer — is a finding, not an error. These errors are for the cases where
//! there is nothing to judge: the input is not a domain, or the tools are unusable.

/// A check that could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The argument is not a domain name.
    #[error("{domain:?} is not a domain name: {reason}")]
    InvalidDomain {
        /// The argument as given.
        domain: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The resolver could not be used for any lookup.
    #[error("the DNS resolver {resolver} cannot be used: {detail}")]
    ResolverUnusable {
        /// The resolver (address, or "system").
        resolver: String,
        /// What failed.
        detail: String,
    },
    /// The configured trust roots could not be used.
    #[error("the CA certificates cannot be used: {detail}")]
    Roots {
        /// What is wrong with them.
        detail: String,
    },
}

impl CheckError {
    /// A short stable name for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckError::InvalidDomain { .. } => "invalid-domain",
            CheckError::ResolverUnusable { .. } => "resolver-unusable",
            CheckError::Roots { .. } => "roots",
        }
    }
}

/// A domain whose check could not run, and why: the error side of a [`crate::CheckResult`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{domain}: the check could not run: {error}")]
pub struct NotRun {
    /// The domain as given.
    pub domain: String,
    /// Why.
    #[source]
    pub error: CheckError,
}
