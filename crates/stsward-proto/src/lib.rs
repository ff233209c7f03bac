//! # stsward-proto — the RFC 8461 (MTA-STS) and RFC 8460 (TLS-RPT) core
//!
//! Pure types for SMTP transport security: the MTA-STS policy file (RFC 8461 §3.2), the
//! `_mta-sts` TXT record (RFC 8461 §3.1), MX patterns (RFC 8461 §4.1), the `_smtp._tls` TXT
//! record (RFC 8460 §3), the TLS-RPT report model (RFC 8460 §4) and its result types
//! (RFC 8460 §4.3), the findings vocabulary shared by every stsward tool, and the one mapping
//! from an observed [`Failure`] to its finding code and result type.
//!
//! This crate makes no connections, does no DNS, reads no files and never reads the clock:
//! callers pass bytes and times in. Every parser returns typed errors or findings and never
//! panics on input.
#![forbid(unsafe_code)]

pub mod failure;
pub mod finding;
pub mod mta_sts;
pub mod socketmap;
pub mod tlsrpt;
pub mod txt;

pub use failure::Failure;
pub use finding::{Code, Finding, Severity};
