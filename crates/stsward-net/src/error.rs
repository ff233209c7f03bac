//! The one error type of the layer, wrapping the error of each job.

use thiserror::Error;

use crate::cert::CertParseError;
use crate::dns::{DnsError, DnsSetupError};
use crate::policy_fetch::FetchError;
use crate::smtp_reply::ReplyError;
use crate::starttls::ProbeError;

/// Every failure of `stsward-net`, by job.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetError {
    /// The DNS client could not be set up.
    #[error("DNS setup: {0}")]
    DnsSetup(#[from] DnsSetupError),
    /// A DNS lookup failed.
    #[error("DNS: {0}")]
    Dns(#[from] DnsError),
    /// The RFC 8461 §3.3 policy fetch was refused.
    #[error("policy fetch: {0}")]
    Fetch(#[from] FetchError),
    /// An STARTTLS probe stopped early.
    #[error("STARTTLS probe: {0}")]
    Probe(#[from] ProbeError),
    /// A certificate given as configuration (an extra root) does not parse.
    #[error("configured certificate: {0}")]
    Cert(#[from] CertParseError),
    /// An SMTP server answered with bytes that are not an SMTP reply.
    #[error("SMTP reply: {0}")]
    Reply(#[from] ReplyError),
}
