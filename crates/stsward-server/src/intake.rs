//! Report intake (RFC 8460 §5): every way a TLS-RPT report reaches stsward, and the one place
//! each lands.
//!
//! The channels (the SMTP listener, the HTTPS POST route, the IMAP poller and `stsward reports
//! import`) only move bytes: each hands what it received to a [`ReportSink`] as a
//! [`Submission`] and tells its peer "accepted" only after [`ReportSink::submit`] returned
//! `Ok`, which means the input is committed (stored, deduplicated or quarantined with its
//! raw bytes). An `Err` means nothing was committed and the peer must retry (SMTP 4xx,
//! HTTP 503, IMAP: the message stays where it was).

pub mod dkim_check;
pub mod group_commit;
pub mod https;
pub mod imap;
pub mod mail_dkim;
pub mod sink;
pub mod smtp;
pub mod store_sink;

pub use dkim_check::{DkimCheck, DkimVerdict, NotChecked};
pub use group_commit::GroupCommit;
pub use sink::{Channel, Outcome, ReportSink, SinkError, Submission, SubmissionKind};
pub use store_sink::{Prepared, StoreSink};
