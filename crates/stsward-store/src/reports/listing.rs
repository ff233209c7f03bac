//! Received reports one by one, for the dashboard's reports table: a tenant-scoped, filtered
//! list (RFC 8460 §4.4 report metadata and totals) and one report's raw input as it arrived.
//!
//! A tenant sees a report when one of its policies names a domain the tenant hosts (not
//! gone); the tenant condition is part of both queries, so another tenant's report is "not
//! found", not refused.

use serde::Serialize;

use super::{RawInput, ReportScope, normalise_domain};
use crate::error::{Operation, StoreError};
use crate::store::{Store, with_pool};

/// The most reports one list returns.
pub const MAX_REPORT_LIST: u32 = 500;

/// Which reports to list, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportListQuery {
    /// Whose reports.
    pub scope: ReportScope,
    /// Only reports with a policy for this domain.
    pub domain: Option<String>,
    /// Only reports from this organisation (exact, case-insensitive).
    pub organization: Option<String>,
    /// Only reports whose DKIM result is this (`pass`, `none`, …).
    pub dkim: Option<String>,
    /// Only reports whose range ends at or after this time (epoch seconds).
    pub since: Option<i64>,
    /// Only reports whose range begins before this time (epoch seconds).
    pub until: Option<i64>,
    /// At most this many (capped at [`MAX_REPORT_LIST`]).
    pub limit: u32,
}

/// One stored report, without its details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportListing {
    /// The store's id of the report.
    pub id: i64,
    /// The sending organisation (`organization-name`).
    pub organization: String,
    /// The report's own id (`report-id`).
    pub report_id: String,
    /// Start of the date range, epoch seconds.
    pub begin_at: i64,
    /// End of the date range, epoch seconds.
    pub end_at: i64,
    /// The report's policy domains, space-separated.
    pub policy_domains: String,
    /// How it arrived (`smtp`, `https`, `imap`, `file`).
    pub channel: String,
    /// The DKIM result of its e-mail.
    pub dkim: String,
    /// Successful sessions over its policies.
    pub successful: i64,
    /// Failed sessions over its policies.
    pub failed: i64,
    /// When it was received, epoch seconds.
    pub received_at: i64,
    /// Whether its raw input is still kept (retention prunes it).
    pub has_raw: bool,
}

type ListingRow = (
    i64,
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
);

/// The columns of a [`ListingRow`], on `reports r`.
const LISTING_COLUMNS: &str = "r.id, r.organization, r.report_id, r.begin_at, r.end_at, \
     r.policy_domains, r.channel, r.dkim, r.successful, r.failed, r.received_at, r.raw_id";

fn listing_from(row: ListingRow) -> ReportListing {
    let (
        id,
        organization,
        report_id,
        begin_at,
        end_at,
        policy_domains,
        channel,
        dkim,
        successful,
        failed,
        received_at,
        raw_id,
    ) = row;
    ReportListing {
        id,
        organization,
        report_id,
        begin_at,
        end_at,
        policy_domains,
        channel,
        dkim,
        successful,
        failed,
        received_at,
        has_raw: raw_id.is_some(),
    }
}

/// The condition that keeps a query to the reports of the scope's tenant (`$1`).
fn scope_condition(scope: ReportScope) -> (&'static str, i64) {
    match scope {
        ReportScope::Install => ("$1 = $1", 0),
        ReportScope::Tenant(t) => (
            "EXISTS (SELECT 1 FROM report_policies p WHERE p.report_id = r.id \
             AND p.policy_domain IN (SELECT domain FROM hosted_domains \
             WHERE tenant_id = $1 AND state <> 'gone'))",
            t.0,
        ),
    }
}

impl Store {
    /// The reports `query` selects, newest range first.
    pub async fn reports_list(
        &self,
        query: &ReportListQuery,
    ) -> Result<Vec<ReportListing>, StoreError> {
        let (scope, tenant) = scope_condition(query.scope);
        // A filter that does not narrow compares its parameter with itself.
        let domain = query.domain.as_deref().map(normalise_domain);
        let domain_cond = if domain.as_deref().is_some_and(|d| !d.is_empty()) {
            // The domain's report ids from the index on policy_domain, then each report by
            // its key: no walk over every report of the install.
            "r.id IN (SELECT q.report_id FROM report_policies q WHERE q.policy_domain = $2)"
        } else {
            "$2 = $2"
        };
        let org = query
            .organization
            .as_deref()
            .map(|o| o.trim().to_lowercase());
        let org_cond = if org.as_deref().is_some_and(|o| !o.is_empty()) {
            "r.org_key = $3"
        } else {
            "$3 = $3"
        };
        let dkim_cond = if query.dkim.as_deref().is_some_and(|d| !d.is_empty()) {
            "r.dkim = $4"
        } else {
            "$4 = $4"
        };
        let sql = format!(
            "SELECT {LISTING_COLUMNS} FROM reports r WHERE {scope} AND {domain_cond} AND {org_cond} AND {dkim_cond} \
             AND r.end_at >= $5 AND r.begin_at < $6 ORDER BY r.begin_at DESC, r.id DESC LIMIT $7"
        );
        let limit = i64::from(query.limit.min(MAX_REPORT_LIST));
        let rows = self
            .run(Operation::ReportsList, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, ListingRow>(&sql)
                        .bind(tenant)
                        .bind(domain.clone().unwrap_or_default())
                        .bind(org.clone().unwrap_or_default())
                        .bind(query.dkim.clone().unwrap_or_default())
                        .bind(query.since.unwrap_or(i64::MIN))
                        .bind(query.until.unwrap_or(i64::MAX))
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows.into_iter().map(listing_from).collect())
    }

    /// The report `id` with its raw input (still compressed; `None` inside when retention
    /// pruned it), if the scope may see it.
    pub async fn report_raw(
        &self,
        scope: ReportScope,
        id: i64,
    ) -> Result<Option<(ReportListing, Option<RawInput>)>, StoreError> {
        let (scope_cond, tenant) = scope_condition(scope);
        let sql =
            format!("SELECT {LISTING_COLUMNS} FROM reports r WHERE {scope_cond} AND r.id = $2");
        const RAW: &str = "SELECT size, compressed FROM report_raw WHERE id = $1";
        let found = self
            .run(Operation::ReportRaw, async {
                with_pool!(self, pool => {
                    let Some(row) = sqlx::query_as::<_, ListingRow>(&sql)
                        .bind(tenant)
                        .bind(id)
                        .fetch_optional(pool)
                        .await?
                    else {
                        return Ok(None);
                    };
                    let raw = match row.11 {
                        Some(raw_id) => {
                            sqlx::query_as::<_, (i64, Vec<u8>)>(RAW)
                                .bind(raw_id)
                                .fetch_optional(pool)
                                .await?
                        }
                        None => None,
                    };
                    Ok::<_, sqlx::Error>(Some((row, raw)))
                })
            })
            .await?;
        Ok(found.map(|(row, raw)| {
            let raw = raw
                .map(|(size, compressed)| RawInput::from_stored(size, compressed, String::new()));
            (listing_from(row), raw)
        }))
    }
}
