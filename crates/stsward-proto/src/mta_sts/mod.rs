//! RFC 8461 — SMTP MTA Strict Transport Security (MTA-STS)
//!
//! - [`record`]: the `_mta-sts` TXT record and the one-record rule (§3.1);
//! - [`policy`]: the policy file, its canonical form, and the linter (§3.2, size from §3.3);
//! - [`pattern`]: `mx` patterns and MX host matching (§3.2, §4.1);
//! - [`error`]: why a value was refused.
//!
//! Nothing here does I/O: the fetcher and the resolver pass bytes, strings and times in.

pub mod error;
pub mod pattern;
pub mod policy;
pub mod record;

pub use error::{
    Error, ExtensionReason, MaxAgeReason, MxPatternReason, PolicyReason, RecordReason,
};
pub use pattern::{MxPattern, normalize_host};
pub use policy::{
    Extension as PolicyExtension, Lint, MAX_AGE_LIMIT, MAX_POLICY_BYTES, MaxAge, Mode, Policy, lint,
};
pub use record::{Extension as RecordExtension, PolicyId, StsRecord, StsTxtOutcome, evaluate};
