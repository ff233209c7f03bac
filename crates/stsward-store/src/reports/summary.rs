//! Report summaries, read from the daily rollups only (never from report rows): sessions
//! successful and failed (RFC 8460 §4.2.2), failures by result type (§4.3), by sending
//! organisation and by receiving MX, and the day-by-day series.
//!
//! ```text
//! scope      Install (the operator)   or   Tenant(id): policy domains the tenant hosts
//! filter     day >= since [AND day < until] [AND policy_domain = domain]
//! ```
//!
//! A tenant sees the rollups of the domains it hosts (not gone), and nothing else: the tenant
//! condition is part of every query here.

use serde::Serialize;
use stsward_proto::tlsrpt::ResultType;

use crate::TenantId;
use crate::error::{Operation, StoreError};
use crate::reports::normalise_domain;
use crate::store::{Store, with_pool};

/// Whose reports a summary covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportScope {
    /// Every report this install received (the operator, `stsward reports summary`).
    Install,
    /// Reports about the policy domains this tenant hosts.
    Tenant(TenantId),
}

/// What a summary covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryQuery {
    /// Whose reports.
    pub scope: ReportScope,
    /// One policy domain only.
    pub domain: Option<String>,
    /// From this day on (epoch seconds; rounded down to its UTC day).
    pub since: i64,
    /// Before this time (epoch seconds), if given.
    pub until: Option<i64>,
}

/// Failed sessions of one result type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TypeFailures {
    /// The result type as reported (RFC 8460 §4.3).
    pub result_type: String,
    /// Failed sessions.
    pub failed: u64,
    /// What it means, in plain words (from stsward-proto).
    pub meaning: String,
}

/// Sessions reported by one sending organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrganizationSessions {
    /// The organisation, as its reports name it.
    pub organization: String,
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
}

/// Failed sessions towards one receiving MX (host name, else IP; `""` when unnamed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MxFailures {
    /// The receiving MX host name or IP.
    pub receiving_mx: String,
    /// Failed sessions.
    pub failed: u64,
}

/// Sessions on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DaySessions {
    /// The day's 00:00 UTC, epoch seconds.
    pub day: i64,
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
}

/// A summary of received reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReportSummary {
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions (a policy without a stated failure total counts the sum of its
    /// failure details).
    pub failed: u64,
    /// Failed sessions by result type, most first. Types may overlap (RFC 8460 §4), so the
    /// sum may exceed `failed`.
    pub by_result_type: Vec<TypeFailures>,
    /// Sessions by sending organisation, most failures first.
    pub by_organization: Vec<OrganizationSessions>,
    /// Failed sessions by receiving MX, most first.
    pub by_receiving_mx: Vec<MxFailures>,
    /// Sessions per day, oldest first (days without reports are absent).
    pub days: Vec<DaySessions>,
}

impl ReportSummary {
    /// Successful sessions over all sessions, from 0 to 1; `None` without sessions.
    pub fn success_rate(&self) -> Option<f64> {
        let total = self.successful.saturating_add(self.failed);
        (total > 0).then(|| self.successful as f64 / total as f64)
    }
}

fn n(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Which parts of a [`ReportSummary`] to read; the others stay empty (zero totals, empty
/// lists). Each part is one statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SummaryParts {
    /// `successful` and `failed`.
    pub totals: bool,
    /// `by_result_type`.
    pub types: bool,
    /// `by_organization`.
    pub organizations: bool,
    /// `by_receiving_mx`.
    pub receiving_mx: bool,
    /// `days`.
    pub days: bool,
}

impl SummaryParts {
    /// Every part.
    pub const ALL: SummaryParts = SummaryParts {
        totals: true,
        types: true,
        organizations: true,
        receiving_mx: true,
        days: true,
    };
    /// No part (a base to name the parts wanted from).
    pub const NONE: SummaryParts = SummaryParts {
        totals: false,
        types: false,
        organizations: false,
        receiving_mx: false,
        days: false,
    };
}

impl Store {
    /// Summarises the reports `query` covers, from the rollups alone.
    pub async fn reports_summary(&self, query: &SummaryQuery) -> Result<ReportSummary, StoreError> {
        self.reports_summary_parts(query, SummaryParts::ALL).await
    }

    /// [`Store::reports_summary`], reading only `parts`.
    pub async fn reports_summary_parts(
        &self,
        query: &SummaryQuery,
        parts: SummaryParts,
    ) -> Result<ReportSummary, StoreError> {
        // $1 since, $2 until, $3 domain ('' = all), $4 tenant (unused for Install). A
        // parameter that does not narrow is compared with itself, so that the planner sees
        // only the conditions that apply (`$3 = '' OR policy_domain = $3` would keep it from
        // using the primary key for one domain).
        let one_domain = query
            .domain
            .as_deref()
            .is_some_and(|d| !normalise_domain(d).is_empty());
        let (table, domain_cond) = if one_domain {
            ("report_rollups", "policy_domain = $3")
        } else if matches!(query.scope, ReportScope::Install) {
            // Every domain of the install: the rollups summed over domains at write time.
            ("report_rollups_install", "$3 = $3")
        } else {
            ("report_rollups", "$3 = $3")
        };
        let scope = match query.scope {
            ReportScope::Install => "$4 = $4",
            ReportScope::Tenant(_) => {
                "policy_domain IN (SELECT domain FROM hosted_domains \
                 WHERE tenant_id = $4 AND state <> 'gone')"
            }
        };
        let filter = format!("day >= $1 AND day < $2 AND {domain_cond} AND {scope}");
        let since = query.since.div_euclid(super::DAY) * super::DAY;
        let until = query.until.unwrap_or(i64::MAX);
        let domain = query
            .domain
            .as_deref()
            .map(normalise_domain)
            .unwrap_or_default();
        let tenant = match query.scope {
            ReportScope::Install => 0,
            ReportScope::Tenant(t) => t.0,
        };
        let sum = |c: &str| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT)");
        let totals_sql = format!(
            "SELECT {}, {} FROM {table} WHERE result_type = '' AND {filter}",
            sum("successful"),
            sum("failed")
        );
        let types_sql = format!(
            "SELECT result_type, {} AS f FROM {table} WHERE result_type <> '' AND {filter} \
             GROUP BY result_type ORDER BY f DESC, result_type",
            sum("failed")
        );
        let orgs_sql = format!(
            "SELECT organization, {}, {} AS f FROM {table} \
             WHERE result_type = '' AND {filter} GROUP BY organization ORDER BY f DESC, organization",
            sum("successful"),
            sum("failed")
        );
        let mx_sql = format!(
            "SELECT receiving_mx, {} AS f FROM {table} WHERE result_type <> '' AND {filter} \
             GROUP BY receiving_mx ORDER BY f DESC, receiving_mx",
            sum("failed")
        );
        let days_sql = format!(
            "SELECT day, {}, {} FROM {table} WHERE result_type = '' AND {filter} \
             GROUP BY day ORDER BY day",
            sum("successful"),
            sum("failed")
        );
        let (totals, types, orgs, mxs, days) = self
            .run(Operation::ReportsSummary, async {
                with_pool!(self, pool => {
                    let totals = if parts.totals {
                        sqlx::query_as::<_, (i64, i64)>(&totals_sql)
                            .bind(since).bind(until).bind(&domain).bind(tenant)
                            .fetch_one(pool).await?
                    } else {
                        (0, 0)
                    };
                    let types = if parts.types {
                        sqlx::query_as::<_, (String, i64)>(&types_sql)
                            .bind(since).bind(until).bind(&domain).bind(tenant)
                            .fetch_all(pool).await?
                    } else {
                        Vec::new()
                    };
                    let orgs = if parts.organizations {
                        sqlx::query_as::<_, (String, i64, i64)>(&orgs_sql)
                            .bind(since).bind(until).bind(&domain).bind(tenant)
                            .fetch_all(pool).await?
                    } else {
                        Vec::new()
                    };
                    let mxs = if parts.receiving_mx {
                        sqlx::query_as::<_, (String, i64)>(&mx_sql)
                            .bind(since).bind(until).bind(&domain).bind(tenant)
                            .fetch_all(pool).await?
                    } else {
                        Vec::new()
                    };
                    let days = if parts.days {
                        sqlx::query_as::<_, (i64, i64, i64)>(&days_sql)
                            .bind(since).bind(until).bind(&domain).bind(tenant)
                            .fetch_all(pool).await?
                    } else {
                        Vec::new()
                    };
                    Ok::<_, sqlx::Error>((totals, types, orgs, mxs, days))
                })
            })
            .await?;
        Ok(ReportSummary {
            successful: n(totals.0),
            failed: n(totals.1),
            by_result_type: types
                .into_iter()
                .map(|(result_type, failed)| {
                    let meaning = result_type
                        .parse::<ResultType>()
                        .map(|t| t.meaning().to_owned())
                        .unwrap_or_default();
                    TypeFailures {
                        result_type,
                        failed: n(failed),
                        meaning,
                    }
                })
                .collect(),
            by_organization: orgs
                .into_iter()
                .map(|(organization, s, f)| OrganizationSessions {
                    organization,
                    successful: n(s),
                    failed: n(f),
                })
                .collect(),
            by_receiving_mx: mxs
                .into_iter()
                .map(|(receiving_mx, f)| MxFailures {
                    receiving_mx,
                    failed: n(f),
                })
                .collect(),
            days: days
                .into_iter()
                .map(|(day, s, f)| DaySessions {
                    day,
                    successful: n(s),
                    failed: n(f),
                })
                .collect(),
        })
    }
}
