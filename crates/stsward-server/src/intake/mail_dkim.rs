//! The DKIM check of the live intake: RFC 8460 §3 ("Reports sent via SMTP MUST contain a
//! valid DomainKeys Identified Mail (DKIM) \[RFC6376\] signature by the reporting domain.
//! Reports lacking such a signature MUST be ignored by the recipient.") through
//! `stsward_mail::dkim`, with keys looked up in DNS.
//!
//! This module only translates: which signature counts (the reporting domain or a parent,
//! no `l=`) is decided in `stsward_mail::dkim`; what is stored or quarantined is decided by
//! the store-backed sink.

use std::net::SocketAddr;
use std::time::Duration;

use stsward_mail::dkim::{self, DkimFailure};
use stsward_mail::dkim_dns::{DkimDnsError, DnsKeyLookup, KeyServer};

use super::dkim_check::{DkimCheck, DkimVerdict};

/// Verifies report e-mails with keys from DNS, each lookup under a deadline.
#[derive(Clone)]
pub struct MailDkim {
    lookup: DnsKeyLookup,
}

impl std::fmt::Debug for MailDkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailDkim").finish_non_exhaustive()
    }
}

impl MailDkim {
    /// Looks keys up at `server` (the system's resolvers when `None`), each within
    /// `deadline`. Must be called inside a Tokio runtime.
    pub fn new(server: Option<SocketAddr>, deadline: Duration) -> Result<MailDkim, DkimDnsError> {
        let server = match server {
            Some(addr) => KeyServer::At(addr),
            None => KeyServer::System,
        };
        Ok(MailDkim {
            lookup: DnsKeyLookup::new(server, deadline)?,
        })
    }
}

/// The sink's verdict for what `stsward_mail::dkim::verify` found.
fn translate(verdict: dkim::DkimVerdict) -> DkimVerdict {
    match verdict {
        dkim::DkimVerdict::Pass { domain, .. } => DkimVerdict::Pass { domain },
        dkim::DkimVerdict::Fail(DkimFailure::NoSignature) => DkimVerdict::Missing,
        dkim::DkimVerdict::Fail(failure) => DkimVerdict::Fail {
            reason: failure.to_string(),
        },
    }
}

#[async_trait::async_trait]
impl DkimCheck for MailDkim {
    async fn check(&self, message: &[u8], _submitter: Option<&str>) -> DkimVerdict {
        // stsward_mail::dkim reads the reporting domain (TLS-Report-Submitter, else the
        // Subject's submitter, else From) from the message itself.
        translate(dkim::verify(message, &self.lookup).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_signature_is_missing_and_every_failure_keeps_its_reason() {
        let pass = translate(dkim::DkimVerdict::Pass {
            domain: "sender.test".into(),
            selector: "s1".into(),
        });
        assert_eq!(
            pass,
            DkimVerdict::Pass {
                domain: "sender.test".into()
            }
        );
        assert_eq!(
            translate(dkim::DkimVerdict::Fail(DkimFailure::NoSignature)),
            DkimVerdict::Missing
        );
        let failure = DkimFailure::NoReportingDomain;
        let text = failure.to_string();
        match translate(dkim::DkimVerdict::Fail(failure)) {
            DkimVerdict::Fail { reason } => assert_eq!(reason, text),
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
