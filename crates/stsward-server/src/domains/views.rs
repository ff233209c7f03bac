//! What the service returns: changes with their warnings, listings, details, and the
//! snapshot the serving roles load (RFC 8461 §3.1 id, §3.2 policy text, §8.3 removal state).

use stsward_store::{
    CertState, DomainChecks, DomainState, FetchTotals, HostedDomain, PolicyVersion,
};

use crate::certs::CertActivity;

use super::format_time;

/// Something the caller should tell the user; the change was made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// An `enforce` policy lost `mx` patterns: senders that fetched it may keep it until
    /// `cached_until` (its `max_age`, RFC 8461 §3.2) and refuse MX hosts it does not list.
    DroppedPatterns {
        /// The patterns no longer listed.
        dropped: Vec<String>,
        /// The version senders may still hold.
        version: i64,
        /// Its `max_age`.
        max_age: i64,
        /// Until when they may hold it (epoch seconds).
        cached_until: i64,
    },
    /// A finding of the policy linter below error severity (e.g. a short `max_age`).
    Lint {
        /// The finding code.
        code: String,
        /// Its message.
        message: String,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::DroppedPatterns {
                dropped,
                version,
                max_age,
                cached_until,
            } => write!(
                f,
                "mx {} dropped from an enforce policy: senders that fetched version {version} \
                 may keep it for its max_age ({max_age} s, until {}) and refuse delivery to MX \
                 hosts it does not list",
                dropped.join(", "),
                format_time(*cached_until)
            ),
            Warning::Lint { code, message } => write!(f, "{code}: {message}"),
        }
    }
}

/// The result of a change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The domain.
    pub domain: String,
    /// The version now served (the previous one when nothing changed).
    pub version: PolicyVersion,
    /// Whether a new version was written (`sync-mx` with the same MX writes none).
    pub changed: bool,
    /// What the user should know.
    pub warnings: Vec<Warning>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    /// Domains now hosted (each at version 1).
    pub added: usize,
    /// Lines whose domain was hosted already (by any tenant), in file order; not changed.
    pub skipped: Vec<SkippedLine>,
    /// Lint warnings of the added domains' policies, each once with how many it concerns.
    pub warnings: Vec<ImportWarning>,
}

/// A line of an import whose domain was hosted already.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedLine {
    /// The line number, from 1.
    pub line: usize,
    /// The domain.
    pub domain: String,
}

/// A warning shared by the policies of some imported domains.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportWarning {
    /// The warning.
    pub warning: Warning,
    /// How many added domains it concerns.
    pub domains: usize,
    /// The first line it concerns.
    pub first_line: usize,
}

/// One domain in a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DomainSummary {
    /// The domain.
    pub domain: String,
    /// Its state at `now` (a removal whose time has passed is shown as gone).
    pub state: DomainState,
    /// The current version's mode.
    pub mode: String,
    /// The current version.
    pub version: i64,
    /// The current id.
    pub id: String,
    /// When a removing domain goes (epoch seconds).
    pub gone_at: Option<i64>,
}

/// Everything `domain show` says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DomainDetail {
    /// The stored row.
    pub domain: HostedDomain,
    /// The state at `now`.
    pub state: DomainState,
    /// When a removing domain goes (epoch seconds).
    pub gone_at: Option<i64>,
    /// The version served.
    pub current: PolicyVersion,
    /// Every version, newest first (at most [`MAX_HISTORY`]).
    pub history: Vec<PolicyVersion>,
    /// The state of the `mta-sts.<D>` certificate, when there is one.
    pub certificate: Option<CertificateSummary>,
    /// The certificate as the policy host has it now: issuer, validity, days left, renewal.
    pub certificate_live: Option<CertificateLive>,
    /// What the scheduler found last (MX follow, own `_mta-sts` TXT), once it has looked.
    pub checks: Option<DomainChecks>,
    /// Policy fetches by senders in the last [`FETCH_WINDOW_DAYS`] UTC days, today included.
    pub fetches: FetchTotals,
}

/// The span of `domain show`'s fetch count, in UTC days (today and the six before).
pub const FETCH_WINDOW_DAYS: i64 = 7;

/// The policy host's certificate, live (RFC 8461 §3.3: senders validate it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateLive {
    /// The host name (`mta-sts.<D>`).
    pub name: String,
    /// One line: validity and activity.
    pub summary: String,
    /// Whether a valid certificate is stored now.
    pub valid: bool,
    /// The leaf's issuer (distinguished name).
    pub issuer: Option<String>,
    /// Validity start (epoch seconds).
    pub not_before: Option<i64>,
    /// Validity end (epoch seconds).
    pub not_after: Option<i64>,
    /// Whole days until `not_after` (negative: expired).
    pub days_left: Option<i64>,
    /// When it is renewed: two thirds of its lifetime (issue 7).
    pub renew_at: Option<i64>,
    /// Whether that time has come.
    pub renewal_due: bool,
    /// What the certificate manager is doing.
    pub activity: CertActivity,
}

/// A certificate as `show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateSummary {
    /// The host name.
    pub name: String,
    /// Pending, valid or failed.
    pub state: CertState,
    /// Validity end (epoch seconds).
    pub not_after: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// One domain as the serving roles (DNS, HTTPS) load it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServedDomain {
    /// The policy domain.
    pub domain: String,
    /// Active or removing.
    pub state: DomainState,
    /// The version served.
    pub version: i64,
    /// Its `_mta-sts` id.
    pub id: String,
    /// The policy text, exactly as served (CRLF lines).
    pub policy: String,
    /// The `rua` for `_smtp._tls` (the domain's, else the install's; none: no record).
    pub tlsrpt_rua: Option<String>,
    /// When a removing domain stops being served.
    pub remove_after: Option<i64>,
}
