//! # stsward-store — persistence for stsward
//!
//! One interface over two databases: a SQLite file (the embedded default) and PostgreSQL
//! (several replicas sharing one database). [`Store::open`] picks the backend from the URL,
//! bounds the pool and every operation's time, and applies the embedded migrations.
//!
//! What is stored so far:
//! - [`resolver_policy`]: the sending-side resolver's MTA-STS policy cache (RFC 8461 §3.2,
//!   §5.1), [`CachedPolicy`].
//! - [`hosting`]: hosted MTA-STS: tenants, hosted domains, their append-only policy versions
//!   (RFC 8461 §3.1, §3.2, §8.3), certificates and ACME accounts.
//! - [`scheduler`]: the scheduler's per-domain rounds (MX follow, own `_mta-sts` TXT watch)
//!   and policy fetch counts per domain and day.
//! - [`reports`]: received TLS-RPT reports (RFC 8460 §4.4), deduplicated by a unique key,
//!   their raw input, failure details, daily rollups for summaries, and the quarantine.
//! - [`auth`]: users with argon2id password hashes, REST API tokens (digests only) and
//!   failed-login counts, each tenant-scoped (issue 9).
//! - [`checks`]: the runs of checks tenants start over the API, with a bounded history per
//!   domain (issue 9).
//! - [`alerts`]: open and resolved alerts per domain (opened once by a unique key), their
//!   sends claimed once per destination with a rate limit, and the scheduled re-check and
//!   evaluation rounds (issue 9).
//! - [`web_sessions`]: dashboard sessions, stored by the digest of their id, each with its
//!   CSRF token, expiry and last use (issue 9).
//!
//! Each area of the product gets its own module here (one `impl Store` block with its
//! queries) and its own pair of migration files, `migrations/sqlite/NNNN_<area>.sql` and
//! `migrations/postgres/NNNN_<area>.sql` (see [Migrations](#migrations)).
//!
//! Times are integer epoch seconds, so that the schema ports between the two, and they are
//! arguments: the store never reads the clock.
//!
//! # Migrations
//!
//! The SQL files are embedded in the binary and applied at open, in order; applied ones are
//! recorded (with a checksum) in sqlx's `_sqlx_migrations` table. On PostgreSQL an advisory
//! lock lets several replicas start at once.
//!
//! Queries are sqlx runtime queries with bound parameters, so building needs no database.

#![forbid(unsafe_code)]

pub mod alerts;
pub mod auth;
pub mod checks;
mod error;
pub mod hosting;
pub mod leases;
mod metrics;
mod migrate;
pub mod replicas;
pub mod reports;
pub mod resolver_policy;
pub mod scheduler;
mod store;
pub mod web_sessions;

pub use alerts::{
    Alert, AlertEvent, DeliveryClaim, DueDelivery, DueRound, OpenCause, RoundKind, SendBudget,
    SyncOutcome,
};
pub use auth::{ApiToken, LoginScope, NewToken, NewUser, Role, TokenId, User, UserId};
pub use checks::{CheckRun, NewCheckRun};
pub use error::{Field, Operation, StoreError};
pub use hosting::certificates::{AcmeAccount, CertState, Sealed, StoredCertificate};
pub use hosting::{
    DomainState, HostedDomain, NewDomain, NewVersion, PolicyVersion, SnapshotEntry, Tenant,
    TenantId, Transition,
};
pub use leases::Lease;
pub use metrics::{CertificateRow, DomainRow, FailureRow, MetricsSnapshot, SessionRow, VerdictRow};
pub use replicas::HostingChange;
pub use reports::listing::{ReportListQuery, ReportListing};
pub use reports::{
    DkimRecord, Intake, IntakeContent, IntakeResult, QuarantinedInput, RawInput, RecordError,
    ReportRecord, ReportScope, ReportSummary, SummaryParts, SummaryQuery,
};
pub use resolver_policy::CachedPolicy;
pub use scheduler::{DomainChecks, DueDomain, FetchRow, FetchTotals, TxtFlag};
pub use store::{Backend, Store, StoreOptions};
pub use web_sessions::{NewWebSession, WebSession};
