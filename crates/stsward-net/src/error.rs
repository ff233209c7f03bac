//! The one error type of the layer, wrapping the error of each job.

use thiserror::Error;

use crate::cert::CertParseError;
use crate::smtp_reply::ReplyError;

/// Every failure of `stsward-net`, by job.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetError {
    /// A certificate given as configuration (an extra root) does not parse.
    #[error("configured certificate: {0}")]
    Cert(#[from] CertParseError),
    /// An SMTP server answered with bytes that are not an SMTP reply.
    #[error("SMTP reply: {0}")]
    Reply(#[from] ReplyError),
}
