//! # stsward-check — MTA-STS, TLS-RPT and DANE findings for one domain
//!
//! Turns what the network layer observes into findings (`spec/findings.md`): each with a
//! stable code, a severity, the subject, a message carrying the values seen, a remedy and
//! the RFC section (RFC 8461 §3–§4, RFC 8460 §3, RFC 7672, RFC 3207). Renders them for
//! people ([`render::text`]) and machines ([`render::json`]).
//!
//! The work is split so that the judging is pure:
//! - [`observe`]: plain data for what DNS, HTTPS and SMTP said;
//! - [`judge`]: observation + `now` → findings, no I/O and no clock;
//! - [`report`]: the whole-domain [`CheckReport`], verdict and exit status;
//! - [`render`]: text and JSON;
//! - [`gather`]: the network side — [`Checker::check_domain`] runs every lookup, the policy
//!   fetch and the STARTTLS probes with `stsward-net`, then judges.
#![forbid(unsafe_code)]

pub mod error;
pub mod gather;
pub mod judge;
pub mod observe;
pub mod render;
pub mod report;

pub use error::{CheckError, NotRun};
pub use gather::{CheckConfig, Checker};
pub use observe::Observation;
pub use report::{
    BulkSummary, CheckReport, CheckResult, Counts, EXIT_ERRORS, EXIT_NOT_RUN, EXIT_OK, exit_status,
};
