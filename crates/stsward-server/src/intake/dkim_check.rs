//! The DKIM check the store-backed intake asks about each report e-mail (RFC 8460 §3:
//! "Reports sent via SMTP MUST contain a valid DomainKeys Identified Mail (DKIM) \[RFC6376\]
//! signature by the reporting domain. Reports lacking such a signature MUST be ignored by
//! the recipient.").
//!
//! The check is pluggable: [`NotChecked`] records that no verification happened (the
//! default until a verifier is wired in); a verifier (stsward-mail) implements [`DkimCheck`]
//! and decides whether a signature by the reporting domain (the `TLS-Report-Submitter`'s
//! domain or a parent of it, without `l=`) is valid.

use stsward_store::DkimRecord;

/// What a DKIM check found for one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DkimVerdict {
    /// A valid signature by the reporting domain `domain`.
    Pass {
        /// The signing domain (`d=`).
        domain: String,
    },
    /// Signatures were present but none is valid and by the reporting domain; `reason` says
    /// why (bad signature, key not found, foreign domain, `l=` used, ...).
    Fail {
        /// Why, in plain words.
        reason: String,
    },
    /// The message carries no DKIM-Signature field.
    Missing,
    /// No verification was done.
    NotChecked,
    /// The input is not an e-mail (an HTTPS POST body or a report file): DKIM does not apply.
    NotApplicable,
}

impl DkimVerdict {
    /// Whether the report may be counted where a signature is required.
    pub fn passed(&self) -> bool {
        matches!(self, DkimVerdict::Pass { .. } | DkimVerdict::NotApplicable)
    }

    /// The result as stored with each report.
    pub fn record(&self) -> DkimRecord {
        let (result, detail) = match self {
            DkimVerdict::Pass { domain } => ("pass", Some(domain.clone())),
            DkimVerdict::Fail { reason } => ("fail", Some(reason.clone())),
            DkimVerdict::Missing => ("none", None),
            DkimVerdict::NotChecked => ("not-checked", None),
            DkimVerdict::NotApplicable => ("not-applicable", None),
        };
        DkimRecord {
            result: result.to_owned(),
            detail,
        }
    }

    /// Why a message with this verdict is quarantined where a signature is required.
    pub fn refusal(&self) -> String {
        let why = match self {
            DkimVerdict::Pass { .. } | DkimVerdict::NotApplicable => "it passed".to_owned(),
            DkimVerdict::Fail { reason } => reason.clone(),
            DkimVerdict::Missing => "the message has no DKIM-Signature field".to_owned(),
            DkimVerdict::NotChecked => "no DKIM verifier is configured".to_owned(),
        };
        format!("no valid DKIM signature by the reporting domain (RFC 8460 §3): {why}")
    }
}

/// Verifies the DKIM signatures of a report e-mail.
#[async_trait::async_trait]
pub trait DkimCheck: Send + Sync + 'static {
    /// Checks `message` (the raw RFC 5322 bytes) for a valid signature by the reporting
    /// domain; `submitter` is its `TLS-Report-Submitter` header field value, if any
    /// (RFC 8460 §5.3). Every DNS wait inside must have a deadline.
    async fn check(&self, message: &[u8], submitter: Option<&str>) -> DkimVerdict;
}

/// The check that checks nothing: every message is [`DkimVerdict::NotChecked`].
#[derive(Clone, Copy, Debug, Default)]
pub struct NotChecked;

#[async_trait::async_trait]
impl DkimCheck for NotChecked {
    async fn check(&self, _message: &[u8], _submitter: Option<&str>) -> DkimVerdict {
        DkimVerdict::NotChecked
    }
}
