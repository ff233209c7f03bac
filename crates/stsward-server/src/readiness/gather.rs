//! The evidence of a readiness verdict, read from the store for one tenant's hosted domain:
//! the mode history (policy versions), report summaries over the `[readiness]` windows (from
//! the daily rollups of RFC 8460 §4 reports), the newest check run and the policy fetch
//! counts. Another tenant's domain is "not found", as everywhere.

use stsward_store::{PolicyVersion, ReportScope, Store, SummaryParts, SummaryQuery, TenantId};

use super::{CheckFinding, DAY, Evidence, LastCheck, Readiness, judge};
use crate::config::ReadinessSection;
use crate::domains::{DomainError, MAX_HISTORY, epoch_day, names};

/// The start of the UTC day `days - 1` days before `now`'s: a window of `days` days that
/// includes today.
fn window_start(now: i64, days: u32) -> i64 {
    let first_day = epoch_day(now).saturating_sub(i64::from(days.max(1)) - 1);
    first_day.saturating_mul(DAY)
}

/// Since when `history` (newest first) has had the mode of its version `current` without a
/// break. The history is bounded ([`MAX_HISTORY`]), so this is a lower bound at worst.
pub fn mode_since(history: &[PolicyVersion], current: i64) -> Option<(String, i64)> {
    let start = history.iter().position(|v| v.version == current)?;
    let mode = history[start].mode.clone();
    let since = history[start..]
        .iter()
        .take_while(|v| v.mode == mode)
        .last()
        .map_or(history[start].changed_at, |v| v.changed_at);
    Some((mode, since))
}

/// The findings of a stored run; a run whose findings do not parse counts as one without
/// findings (the verdict then asks for a new check rather than failing).
fn findings(json: &str) -> Vec<CheckFinding> {
    match serde_json::from_str(json) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "a stored check run's findings do not parse");
            Vec::new()
        }
    }
}

/// Reads the evidence for `tenant`'s `domain` at `now` and judges it.
pub async fn readiness(
    store: &Store,
    tenant: TenantId,
    domain: &str,
    now: i64,
    settings: &ReadinessSection,
) -> Result<Readiness, DomainError> {
    Ok(judge(
        &evidence(store, tenant, domain, now, settings).await?,
        settings,
    ))
}

/// Reads the evidence for `tenant`'s `domain` at `now`.
pub async fn evidence(
    store: &Store,
    tenant: TenantId,
    domain: &str,
    now: i64,
    settings: &ReadinessSection,
) -> Result<Evidence, DomainError> {
    let name = names::domain_name(domain)?;
    let not_found = || DomainError::NotFound {
        domain: name.clone(),
    };
    let hosted = store
        .hosted_domain_get(tenant, &name)
        .await?
        .ok_or_else(not_found)?;
    let history = store.policy_versions(tenant, &name, MAX_HISTORY).await?;
    let (mode, mode_since) = mode_since(&history, hosted.current_version).ok_or_else(not_found)?;
    let summary = |days: u32| SummaryQuery {
        scope: ReportScope::Tenant(tenant),
        domain: Some(name.clone()),
        since: window_start(now, days),
        until: None,
    };
    // Only the parts the criteria read (and the window's totals and days, which the
    // dashboard's overview shows from this evidence).
    let parts = |totals, types, organizations, days| SummaryParts {
        totals,
        types,
        organizations,
        receiving_mx: false,
        days,
    };
    let window = store
        .reports_summary_parts(
            &summary(settings.window_days),
            parts(true, false, true, true),
        )
        .await?;
    let success = store
        .reports_summary_parts(
            &summary(settings.success_days),
            parts(true, true, false, false),
        )
        .await?;
    let failures = store
        .reports_summary_parts(
            &summary(settings.failure_days),
            parts(false, true, false, false),
        )
        .await?;
    let last_check = store
        .check_run_list(tenant, &name, 1)
        .await?
        .into_iter()
        .next()
        .map(|run| LastCheck {
            finished_at: run.finished_at,
            verdict: run.verdict,
            findings: findings(&run.findings),
        });
    let fetches = store
        .policy_fetches_since(tenant, &name, window_start(now, settings.fetch_days) / DAY)
        .await?;
    Ok(Evidence {
        domain: name,
        now,
        mode,
        mode_since,
        window,
        success,
        failures,
        last_check,
        fetches,
    })
}
