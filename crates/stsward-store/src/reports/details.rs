//! One policy domain's reports in detail, for the dashboard's tables: the policies as the
//! senders reported them (RFC 8460 §4.4 `policies`: type, strings, counts) and their failure
//! details (§4.4 `failure-details`) summed over identical rows.
//!
//! Both read the report rows (not the rollups), bounded by a row limit, and keep to the
//! domains the tenant hosts (not gone): another tenant's domain gives no rows.

use serde::Serialize;

use super::normalise_domain;
use crate::TenantId;
use crate::error::{Operation, StoreError};
use crate::store::{Store, with_pool};

/// The most rows one detail query returns.
pub const MAX_DETAIL_ROWS: u32 = 500;

/// The tenant condition on `p.policy_domain` (tenant `$1`, domain `$2`).
const TENANT_DOMAIN: &str = "p.policy_domain = $2 AND p.policy_domain IN \
     (SELECT domain FROM hosted_domains WHERE tenant_id = $1 AND state <> 'gone')";

/// A policy as one report stated it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportedPolicy {
    /// The sending organisation.
    pub organization: String,
    /// Start of the report's date range, epoch seconds.
    pub begin_at: i64,
    /// End of the report's date range, epoch seconds.
    pub end_at: i64,
    /// `sts`, `tlsa` or `no-policy-found` (RFC 8460 §4.3).
    pub policy_type: String,
    /// The policy strings, one a line.
    pub policy_strings: String,
    /// The MX hosts the sender saw, space-separated.
    pub mx_hosts: String,
    /// Successful sessions.
    pub successful: i64,
    /// Failed sessions.
    pub failed: i64,
}

/// Failure details with the same values, summed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailureDetail {
    /// The sending organisation.
    pub organization: String,
    /// `result-type`.
    pub result_type: String,
    /// `sending-mta-ip`.
    pub sending_ip: String,
    /// `receiving-mx-hostname`.
    pub receiving_mx: String,
    /// `receiving-ip`.
    pub receiving_ip: String,
    /// `failure-reason-code`.
    pub reason_code: String,
    /// `additional-information`.
    pub additional_info: String,
    /// `failed-session-count`, summed.
    pub failed: i64,
}

impl Store {
    /// Runs `sql` (tenant `$1`, domain `$2`, since `$3`, limit `$4`) for rows of `R`.
    async fn detail_rows<R>(
        &self,
        op: Operation,
        sql: &str,
        tenant: TenantId,
        domain: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<R>, StoreError>
    where
        R: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let domain = normalise_domain(domain);
        let limit = i64::from(limit.min(MAX_DETAIL_ROWS));
        self.run(op, async {
            with_pool!(self, pool => {
                sqlx::query_as::<_, R>(sql)
                    .bind(tenant.0)
                    .bind(&domain)
                    .bind(since)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
            })
        })
        .await
    }

    /// The policies `tenant`'s reports stated for `domain` in ranges ending at or after
    /// `since`, newest first, at most `limit` (capped at [`MAX_DETAIL_ROWS`]).
    pub async fn reported_policies(
        &self,
        tenant: TenantId,
        domain: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<ReportedPolicy>, StoreError> {
        let sql = format!(
            "SELECT r.organization, r.begin_at, r.end_at, p.policy_type, p.policy_strings, \
             p.mx_hosts, p.successful, p.failed FROM report_policies p \
             JOIN reports r ON r.id = p.report_id \
             WHERE {TENANT_DOMAIN} AND r.end_at >= $3 \
             ORDER BY r.begin_at DESC, r.id DESC, p.idx LIMIT $4"
        );
        type Row = (String, i64, i64, String, String, String, i64, i64);
        let rows: Vec<Row> = self
            .detail_rows(
                Operation::ReportedPolicies,
                &sql,
                tenant,
                domain,
                since,
                limit,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    organization,
                    begin_at,
                    end_at,
                    policy_type,
                    policy_strings,
                    mx_hosts,
                    successful,
                    failed,
                )| {
                    ReportedPolicy {
                        organization,
                        begin_at,
                        end_at,
                        policy_type,
                        policy_strings,
                        mx_hosts,
                        successful,
                        failed,
                    }
                },
            )
            .collect())
    }

    /// The failure details of `tenant`'s reports for `domain` in ranges ending at or after
    /// `since`, rows with the same values summed, most failures first, at most `limit`.
    pub async fn failure_details(
        &self,
        tenant: TenantId,
        domain: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<FailureDetail>, StoreError> {
        const COLUMNS: &str = "r.organization, f.result_type, \
             COALESCE(f.sending_mta_ip, ''), COALESCE(f.receiving_mx_hostname, ''), \
             COALESCE(f.receiving_ip, ''), COALESCE(f.failure_reason_code, ''), \
             COALESCE(f.additional_information, '')";
        let sql = format!(
            "SELECT {COLUMNS}, CAST(SUM(f.failed) AS BIGINT) AS n FROM report_failures f \
             JOIN report_policies p ON p.report_id = f.report_id AND p.idx = f.policy_idx \
             JOIN reports r ON r.id = f.report_id \
             WHERE {TENANT_DOMAIN} AND r.end_at >= $3 \
             GROUP BY {COLUMNS} ORDER BY n DESC, 1, 2 LIMIT $4"
        );
        type Row = (String, String, String, String, String, String, String, i64);
        let rows: Vec<Row> = self
            .detail_rows(
                Operation::FailureDetails,
                &sql,
                tenant,
                domain,
                since,
                limit,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    organization,
                    result_type,
                    sending_ip,
                    receiving_mx,
                    receiving_ip,
                    reason_code,
                    additional_info,
                    failed,
                )| {
                    FailureDetail {
                        organization,
                        result_type,
                        sending_ip,
                        receiving_mx,
                        receiving_ip,
                        reason_code,
                        additional_info,
                        failed,
                    }
                },
            )
            .collect())
    }
}
