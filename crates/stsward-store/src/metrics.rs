//! What the Prometheus endpoint of `stsward serve` shows (issue 9), read from the store, so
//! that every replica on one database shows the same numbers: hosted domains and their
//! modes, reported sessions and failures of the last days (RFC 8460 §4.2.2, §4.3; from the
//! daily rollups, never from report rows), policy fetches, certificate expiry, each domain's
//! last check verdict, reports stored per intake channel, and alerts open and sends by state.

use crate::error::{Operation, StoreError};
use crate::store::{Store, with_pool};

/// One hosted domain that is not gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainRow {
    /// Its tenant's name.
    pub tenant: String,
    /// The policy domain.
    pub domain: String,
    /// `active` or `removing`.
    pub state: String,
    /// The current policy's mode.
    pub mode: String,
}

/// Sessions of one hosted domain over the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// The policy domain.
    pub domain: String,
    /// Successful sessions.
    pub successful: i64,
    /// Failed sessions.
    pub failed: i64,
}

/// Failed sessions of one hosted domain and result type over the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureRow {
    /// The policy domain.
    pub domain: String,
    /// The result type as reported (RFC 8460 §4.3).
    pub result_type: String,
    /// Failed sessions.
    pub failed: i64,
}

/// A stored certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRow {
    /// The host name (`mta-sts.<domain>`).
    pub name: String,
    /// `pending`, `valid` or `failed`.
    pub state: String,
    /// The end of its validity, epoch seconds (none while pending).
    pub not_after: Option<i64>,
}

/// The newest check run of one hosted domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictRow {
    /// The policy domain.
    pub domain: String,
    /// `ok`, `info`, `warning`, `error` or `not-run`.
    pub verdict: String,
    /// When it finished, epoch seconds.
    pub finished_at: i64,
}

/// Everything the endpoint shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Hosted domains that are not gone.
    pub domains: Vec<DomainRow>,
    /// Sessions per hosted domain since `since_day`.
    pub sessions: Vec<SessionRow>,
    /// Failures per hosted domain and result type since `since_day`.
    pub failures: Vec<FailureRow>,
    /// Policy fetches per hosted domain since `since_day`.
    pub fetches: Vec<(String, i64)>,
    /// Stored certificates.
    pub certificates: Vec<CertificateRow>,
    /// The newest check run per hosted domain.
    pub verdicts: Vec<VerdictRow>,
    /// Reports stored per intake channel, all time.
    pub reports_by_channel: Vec<(String, i64)>,
    /// Open alerts per rule, of hosted domains.
    pub open_alerts: Vec<(String, i64)>,
    /// Alert sends per state (`pending`, `sending`, `sent`, `failed`).
    pub alert_deliveries: Vec<(String, i64)>,
}

const DOMAINS: &str = "SELECT t.name, d.domain, d.state, v.mode FROM hosted_domains d \
     JOIN tenants t ON t.id = d.tenant_id \
     JOIN policy_versions v ON v.domain_id = d.id AND v.version = d.current_version \
     WHERE d.state <> 'gone' ORDER BY d.domain";
// $1: the first day (epoch seconds of its 00:00 UTC), as the rollups store days. The
// session totals are the rows without a result type; the rows with one hold failure details,
// which would count the failed sessions twice (as in `reports_summary`).
const SESSIONS: &str = "SELECT r.policy_domain, CAST(SUM(r.successful) AS BIGINT), \
     CAST(SUM(r.failed) AS BIGINT) FROM report_rollups r \
     JOIN hosted_domains d ON d.domain = r.policy_domain AND d.state <> 'gone' \
     WHERE r.day >= $1 AND r.result_type = '' GROUP BY r.policy_domain ORDER BY r.policy_domain";
const FAILURES: &str = "SELECT r.policy_domain, r.result_type, CAST(SUM(r.failed) AS BIGINT) \
     FROM report_rollups r \
     JOIN hosted_domains d ON d.domain = r.policy_domain AND d.state <> 'gone' \
     WHERE r.day >= $1 AND r.failed > 0 AND r.result_type <> '' \
     GROUP BY r.policy_domain, r.result_type ORDER BY r.policy_domain, r.result_type";
// $1: the first day as days since 1970-01-01, as the fetch counts store days.
const FETCHES: &str = "SELECT d.domain, CAST(SUM(f.fetches) AS BIGINT) FROM policy_fetches f \
     JOIN hosted_domains d ON d.id = f.domain_id AND d.state <> 'gone' \
     WHERE f.day >= $1 GROUP BY d.domain ORDER BY d.domain";
const CERTIFICATES: &str = "SELECT name, state, not_after FROM certificates ORDER BY name";
const VERDICTS: &str = "SELECT d.domain, r.verdict, r.finished_at FROM hosted_domains d \
     JOIN check_runs r ON r.domain_id = d.id \
     AND r.id = (SELECT MAX(id) FROM check_runs WHERE domain_id = d.id) \
     WHERE d.state <> 'gone' ORDER BY d.domain";
const OPEN_ALERTS: &str = "SELECT a.rule, COUNT(*) FROM alerts a \
     JOIN hosted_domains d ON d.id = a.domain_id AND d.state <> 'gone' \
     WHERE a.resolved_at IS NULL GROUP BY a.rule ORDER BY a.rule";
const DELIVERIES: &str =
    "SELECT state, COUNT(*) FROM alert_deliveries GROUP BY state ORDER BY state";
const CHANNELS: &str = "SELECT channel, COUNT(*) FROM reports GROUP BY channel ORDER BY channel";

impl Store {
    /// Reads what the Prometheus endpoint shows; report sessions and fetches count from the
    /// UTC day `since` (epoch seconds) falls in.
    pub async fn metrics_snapshot(&self, since: i64) -> Result<MetricsSnapshot, StoreError> {
        let day = since.div_euclid(86_400);
        let day_start = day.saturating_mul(86_400);
        self.run(Operation::MetricsSnapshot, async {
            with_pool!(self, pool => {
                let domains = sqlx::query_as::<_, (String, String, String, String)>(DOMAINS)
                    .fetch_all(pool)
                    .await?;
                let sessions = sqlx::query_as::<_, (String, i64, i64)>(SESSIONS)
                    .bind(day_start)
                    .fetch_all(pool)
                    .await?;
                let failures = sqlx::query_as::<_, (String, String, i64)>(FAILURES)
                    .bind(day_start)
                    .fetch_all(pool)
                    .await?;
                let fetches = sqlx::query_as::<_, (String, i64)>(FETCHES)
                    .bind(day)
                    .fetch_all(pool)
                    .await?;
                let certificates =
                    sqlx::query_as::<_, (String, String, Option<i64>)>(CERTIFICATES)
                        .fetch_all(pool)
                        .await?;
                let verdicts = sqlx::query_as::<_, (String, String, i64)>(VERDICTS)
                    .fetch_all(pool)
                    .await?;
                let reports_by_channel = sqlx::query_as::<_, (String, i64)>(CHANNELS)
                    .fetch_all(pool)
                    .await?;
                let open_alerts = sqlx::query_as::<_, (String, i64)>(OPEN_ALERTS)
                    .fetch_all(pool)
                    .await?;
                let alert_deliveries = sqlx::query_as::<_, (String, i64)>(DELIVERIES)
                    .fetch_all(pool)
                    .await?;
                Ok(MetricsSnapshot {
                    domains: domains
                        .into_iter()
                        .map(|(tenant, domain, state, mode)| DomainRow {
                            tenant,
                            domain,
                            state,
                            mode,
                        })
                        .collect(),
                    sessions: sessions
                        .into_iter()
                        .map(|(domain, successful, failed)| SessionRow {
                            domain,
                            successful,
                            failed,
                        })
                        .collect(),
                    failures: failures
                        .into_iter()
                        .map(|(domain, result_type, failed)| FailureRow {
                            domain,
                            result_type,
                            failed,
                        })
                        .collect(),
                    fetches,
                    certificates: certificates
                        .into_iter()
                        .map(|(name, state, not_after)| CertificateRow {
                            name,
                            state,
                            not_after,
                        })
                        .collect(),
                    verdicts: verdicts
                        .into_iter()
                        .map(|(domain, verdict, finished_at)| VerdictRow {
                            domain,
                            verdict,
                            finished_at,
                        })
                        .collect(),
                    reports_by_channel,
                    open_alerts,
                    alert_deliveries,
                })
            })
        })
        .await
    }
}
