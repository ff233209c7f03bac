//! Why a domain operation failed (nothing was changed), and how times are shown in messages.

use stsward_net::dns::DnsError;
use stsward_store::StoreError;

use super::NameError;

/// Why a domain operation failed; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The domain name is not usable.
    #[error("domain: {0}")]
    Name(#[from] NameError),
    /// A policy field is not valid (`field` is `mode`, `mx`, `max_age` or `policy`).
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The tenant hosts no such domain.
    #[error("{domain} is not a hosted domain")]
    NotFound {
        /// The domain.
        domain: String,
    },
    /// The domain is being removed (RFC 8461 §8.3); it cannot change until it is gone.
    #[error("{domain} is being removed and serves mode none until {}; it can be added again after that", format_time(*gone_at))]
    Removing {
        /// The domain.
        domain: String,
        /// When it goes.
        gone_at: i64,
    },
    /// The MX records could not be read.
    #[error("cannot look up the MX records of {domain}")]
    Dns {
        /// The domain.
        domain: String,
        /// Why (boxed: DNS errors are large, and rare).
        #[source]
        source: Box<DnsError>,
    },
    /// The domain has no MX records to build `mx` lines from.
    #[error("{domain} has no MX records ({why}); give the mx patterns with --mx")]
    NoMx {
        /// The domain.
        domain: String,
        /// NXDOMAIN, no MX records, or a null MX.
        why: &'static str,
    },
    /// `FromDns` was asked of a service without a DNS client.
    #[error("no DNS client to read the MX records of {domain} with")]
    NoDns {
        /// The domain.
        domain: String,
    },
    /// A configuration key the operation needs is not set.
    #[error("{key} is not set in the configuration; {why}")]
    NotConfigured {
        /// `section.key`.
        key: &'static str,
        /// What it is needed for.
        why: &'static str,
    },
    /// An import file has bad lines; nothing was written. `errors` holds the first
    /// [`MAX_REPORTED`](super::import::MAX_REPORTED), `total` counts them all.
    #[error("{total} bad line(s), nothing imported; the first: {}", errors.first().map(ToString::to_string).unwrap_or_default())]
    Import {
        /// The first bad lines, in file order.
        errors: Vec<super::import::LineError>,
        /// How many lines were bad.
        total: usize,
    },
    /// The database failed in the middle of an import: the domains of the batches before
    /// (`written`) are hosted, the rest not; running the import again skips those.
    #[error(
        "the import stopped at the batch starting on line {at_line} after {written} domain(s) were written; running it again skips them"
    )]
    ImportStopped {
        /// Domains hosted before the failure.
        written: usize,
        /// The first line of the batch that failed.
        at_line: usize,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The store failed or refused (a taken name, a version conflict, a size limit).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `at` as RFC 3339 UTC, or the raw number when out of range.
pub fn format_time(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}
