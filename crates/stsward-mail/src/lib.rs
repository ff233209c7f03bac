//! # stsward-mail — TLS-RPT report e-mail (RFC 8460 §5)
//!
//! Takes TLS-RPT reports out of what arrives at a reporting address: RFC 5322 messages
//! (`multipart/report; report-type=tlsrpt` and the many ways real senders deviate from
//! it) and bare files (`.json`, `.json.gz`, `.zip`, `.eml`). It returns the report bytes,
//! decompressed within hard limits, with where each came from; parsing the JSON is the
//! caller's job (see `stsward-proto`).
//!
//! - [`filename`]: the RFC 8460 §5.1 report file name convention.
//! - [`headers`]: the RFC 8460 §5.3 header fields and Subject.
//! - [`decompress`]: gzip and zip, bounded (RFC 8460 §5.2); `gzip_fast`: its common case
//!   with an inflater reused per thread (RFC 1952).
//! - [`extract`]: the entry points [`extract_from_message`] and [`extract_from_file`].
//! - [`dkim`]: DKIM verification of report e-mails against RFC 8460 §3 ([`dkim::verify`]).
//! - `dkim_dns` (feature `dns`): the DNS side of it, key lookups with hickory-resolver.
//!
//! No I/O without the `dns` feature: callers hand in bytes, and DKIM keys through
//! [`dkim::KeyLookup`]. Nothing here panics on input.
#![forbid(unsafe_code)]

pub mod decompress;
pub mod dkim;
#[cfg(feature = "dns")]
pub mod dkim_dns;
mod error;
pub mod extract;
pub mod filename;
mod gzip_fast;
pub mod headers;
mod parts;

pub use decompress::{DEFAULT_MAX_DECOMPRESSED, Limits};
pub use error::MailError;
pub use extract::{
    Compression, Extracted, ExtractedReport, PartInfo, SkippedPart, extract_from_file,
    extract_from_message,
};
pub use filename::{FilenameError, ReportFilename};
pub use headers::{ReportHeaders, SubjectFields};
