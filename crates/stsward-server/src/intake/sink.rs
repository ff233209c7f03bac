//! The contract between the intake channels and the store (RFC 8460 §5: reports arrive by
//! mail, §5.3, or by HTTPS POST, §5.4).
//!
//! A channel builds a [`Submission`] from exactly the bytes it received and calls
//! [`ReportSink::submit`]. The sink parses, checks DKIM where the submission asks for it
//! (RFC 8460 §3), deduplicates and stores, all before it returns. Its answer decides what the
//! channel tells its peer:
//! - `Ok(Outcome::Stored { .. })` or `Ok(Outcome::Quarantined { .. })`: committed; the channel
//!   acknowledges (SMTP 250, HTTP 2xx for stored, 4xx with the reason for quarantined input
//!   that can never be read; IMAP moves the message to its folder);
//! - `Err(SinkError)`: nothing committed; the channel asks the peer to retry later (SMTP 451,
//!   HTTP 503) or leaves the message in place (IMAP).

use std::net::IpAddr;

use bytes::Bytes;

/// Which channel received a submission; stored with every report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The receive-only SMTP listener (`rua=mailto:`, RFC 8460 §5.3).
    Smtp,
    /// HTTPS POST (`rua=https:`, RFC 8460 §5.4).
    Https,
    /// A message read from an IMAP mailbox.
    Imap,
    /// `stsward reports import`.
    File,
}

impl Channel {
    /// The name stored and shown: `smtp`, `https`, `imap` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Smtp => "smtp",
            Channel::Https => "https",
            Channel::Imap => "imap",
            Channel::File => "file",
        }
    }
}

/// What the bytes of a submission are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmissionKind {
    /// An RFC 5322 message (SMTP `DATA`, an IMAP message, an `.eml` file).
    Message,
    /// `application/tlsrpt+json` (RFC 8460 §5.4) or a `.json` file.
    Json,
    /// `application/tlsrpt+gzip` (RFC 8460 §5.4) or a `.json.gz` file.
    Gzip,
    /// A file of another kind (`.zip`, `.mbox` entries are split by the caller), named so
    /// that the extractor can judge it by its name.
    File {
        /// The file's name, as `stsward_mail::extract_from_file` wants it.
        name: String,
    },
}

/// One input, exactly as received.
#[derive(Clone, Debug)]
pub struct Submission {
    /// Which channel received it.
    pub channel: Channel,
    /// What the bytes are.
    pub kind: SubmissionKind,
    /// The bytes, unmodified (SMTP: the message after dot-unstuffing).
    pub raw: Bytes,
    /// When it was received, in Unix seconds (from the caller's clock, so tests can move it).
    pub received_at: i64,
    /// The peer's address, where there is one (SMTP, HTTPS).
    pub peer: Option<IpAddr>,
    /// Where it came from, for people: `smtp from 192.0.2.1 MAIL FROM:<a@b>`, a file path,
    /// `imap INBOX uid 17`. Shown with quarantined input.
    pub origin: String,
    /// Whether a report e-mail without a valid DKIM signature by the reporting domain is
    /// quarantined (RFC 8460 §3) rather than stored with its DKIM result. Only meaningful for
    /// [`SubmissionKind::Message`].
    pub require_dkim: bool,
}

/// What became of a committed submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The input was read; `stored` reports are new, `duplicates` were already stored (by
    /// their unique key) and are only counted.
    Stored {
        /// Reports stored now.
        stored: usize,
        /// Reports already stored before.
        duplicates: usize,
    },
    /// The input was kept with its raw bytes but not counted, for this reason (unreadable,
    /// no valid DKIM signature, ...). `stsward reports invalid` lists it.
    Quarantined {
        /// Why, in plain words, naming the field or part where there is one.
        reason: String,
    },
}

/// Nothing was committed: the storage failed or is unavailable. The peer should retry.
#[derive(Debug, Clone, thiserror::Error)]
#[error("report intake: {0}")]
pub struct SinkError(pub String);

/// Where every channel hands its input. Implemented by the store-backed intake; channels'
/// tests may implement it to observe what a channel submits.
#[async_trait::async_trait]
pub trait ReportSink: Send + Sync + 'static {
    /// Commits one submission (see the module documentation for what each answer means).
    async fn submit(&self, submission: Submission) -> Result<Outcome, SinkError>;
}
