//! The evidence the alert rules ([`super::rules`]) judge, read from the store for one hosted
//! domain of one tenant: daily report rollups (RFC 8460 §4.2 session counts, §4.3 result types),
//! the policy host's certificate (`mta-sts.<domain>`, RFC 8461 §3.3), the stored check runs,
//! and the scheduler's MX follow and own-TXT outcomes.

use stsward_store::{ReportScope, Store, StoreError, SummaryQuery, TenantId};

use super::rules::{
    CertEvidence, DAY, DayEvidence, Evidence, FindingEvidence, NEW_TYPE_LOOKBACK_DAYS, QUIET_DAYS,
    RunEvidence, day_start,
};
use crate::readiness::CheckFinding;

/// Verdicts read per evaluation: the verdict rule looks back over this many runs.
pub const VERDICTS_READ: u32 = 50;
/// Runs read with their findings: the newest that ran is among them unless the last few
/// could not run at all.
pub const FINDINGS_READ: u32 = 3;

/// The findings of a stored run; a run whose findings do not parse counts as one without
/// findings, and says so in the log.
fn findings(json: &str) -> Vec<FindingEvidence> {
    match serde_json::from_str::<Vec<CheckFinding>>(json) {
        Ok(found) => found
            .into_iter()
            .map(|f| FindingEvidence {
                code: f.code,
                subject: f.subject,
                message: f.message,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "alerts: a stored check run's findings do not parse");
            Vec::new()
        }
    }
}

/// Reads the evidence for `tenant`'s `domain` at `now`.
pub async fn gather(
    store: &Store,
    tenant: TenantId,
    domain: &str,
    now: i64,
) -> Result<Evidence, StoreError> {
    let today = day_start(now);
    let query = |since: i64, until: Option<i64>| SummaryQuery {
        scope: ReportScope::Tenant(tenant),
        domain: Some(domain.to_owned()),
        since,
        until,
    };
    let lookback = DAY * (NEW_TYPE_LOOKBACK_DAYS + QUIET_DAYS);
    let all = store
        .reports_summary(&query(today - lookback, None))
        .await?;
    let recent_from = today - DAY;
    let recent = store.reports_summary(&query(recent_from, None)).await?;
    let earlier = store
        .reports_summary(&query(
            recent_from - DAY * NEW_TYPE_LOOKBACK_DAYS,
            Some(recent_from),
        ))
        .await?;
    let types = |s: &stsward_store::ReportSummary| {
        s.by_result_type
            .iter()
            .filter(|t| t.failed > 0)
            .map(|t| t.result_type.clone())
            .collect()
    };
    let policy_cert = store
        .certificate_get(&format!("mta-sts.{domain}"))
        .await?
        .map(|c| CertEvidence {
            name: c.name,
            state: c.state,
            not_after: c.not_after,
            last_error: c.last_error,
        });
    // Findings are large: only those of the newest run that ran are read and parsed.
    let with_findings = store.check_run_list(tenant, domain, FINDINGS_READ).await?;
    let last_ran = with_findings.iter().find(|r| r.verdict != "not-run");
    let runs = store
        .check_run_verdicts(tenant, domain, VERDICTS_READ)
        .await?
        .into_iter()
        .map(|(id, verdict)| RunEvidence {
            findings: match last_ran {
                Some(run) if run.id == id => findings(&run.findings),
                _ => Vec::new(),
            },
            verdict,
        })
        .collect();
    let checks = store.domain_check_get(tenant, domain).await?;
    let (mx_outcome, txt_flagged_since) = match checks {
        Some(c) => (
            c.mx_outcome.map(|o| (o, c.mx_detail.unwrap_or_default())),
            c.txt_flagged_since,
        ),
        None => (None, None),
    };
    Ok(Evidence {
        now,
        days: all
            .days
            .iter()
            .map(|d| DayEvidence {
                day: d.day,
                successful: d.successful,
                failed: d.failed,
            })
            .collect(),
        recent_types: types(&recent),
        earlier_types: types(&earlier),
        policy_cert,
        runs,
        mx_outcome,
        txt_flagged_since,
    })
}
