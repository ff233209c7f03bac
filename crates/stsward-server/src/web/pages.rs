//! The dashboard's overview and domain pages, and the routing of GETs: what each page reads
//! from the domain service and the store, always for the tenant the session acts for, turned
//! into the views of `templates`.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::json;
use stsward_proto::tlsrpt::ResultType;
use stsward_store::{ReportListQuery, ReportScope, ReportSummary, SummaryQuery};

use super::sessions::Session;
use super::templates::{
    self, AlertRow, CheckRow, CriterionRow, DomainPage, ExplanationRow, FindingRow, Header,
    OverviewPage, OverviewRow, PolicyRow, RecordRow,
};
use super::{Form, TenantRef, Web, WebError, html};
use crate::domains::{RecordState, epoch_day, format_time};
use crate::readiness::{self, CheckFinding, Verdict};

const DAY: i64 = 86_400;
/// Days of reports the charts and the overview's success rate cover.
pub(crate) const CHART_DAYS: i64 = 30;
/// Domains on one overview page.
pub(crate) const OVERVIEW_PAGE: u32 = 50;
/// Days of policy fetches the overview counts.
const FETCH_DAYS: i64 = 7;
/// Overview rows read at once.
const OVERVIEW_CONCURRENCY: usize = 8;
/// Open alerts counted on the overview, at most (more show as this many).
const MAX_OPEN_ALERTS: u32 = 1000;
/// Alerts in a domain page's list.
const ALERT_ROWS: u32 = 50;
/// Reports in a domain page's table.
const DOMAIN_REPORTS: u32 = 100;
/// Rows in a domain page's tables of reported policies and failure details.
const DETAIL_ROWS: u32 = 200;
/// Check runs in a domain page's history.
const CHECK_HISTORY: u32 = 20;

/// Answers a GET for `path`.
pub(crate) async fn get(
    path: &str,
    q: &Form,
    session: &Session,
    web: &Web,
    now: i64,
) -> Result<Response<Full<Bytes>>, WebError> {
    if path == "/" {
        return overview(q, session, web, now).await;
    }
    if path == "/reports" {
        return super::reports::reports(q, session, web).await;
    }
    if path == "/quarantine" {
        return super::quarantine::show(q, session, web).await;
    }
    if path == "/tokens" {
        return super::tokens::show(q, session, web).await;
    }
    if let Some(rest) = path.strip_prefix("/reports/") {
        let id = rest
            .strip_suffix("/raw")
            .and_then(|id| id.parse::<i64>().ok())
            .ok_or(WebError::NotFound)?;
        return super::reports::raw(id, q, session, web).await;
    }
    if let Some(rest) = path.strip_prefix("/domains/") {
        if let Some(domain) = rest.strip_suffix("/policy") {
            return super::editor::show(&decode(domain)?, q, session, web, now).await;
        }
        if rest.contains('/') {
            return Err(WebError::NotFound);
        }
        let domain = decode(rest)?;
        return domain_page(&domain, q, session, web, now).await;
    }
    Err(WebError::NotFound)
}

/// A path segment, percent-decoded (RFC 3986 §2.1).
pub(crate) fn decode(segment: &str) -> Result<String, WebError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| WebError::BadRequest("the path is not UTF-8 once decoded".into()))
}

/// What a path segment or query value keeps as is: RFC 3986 §2.3's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// The tenant `session` acts for. A tenant's user acts for its own tenant only: naming
/// another one is "not found". An install admin names one (`requested`), or acts for the
/// default tenant.
pub(crate) async fn tenant_of(
    web: &Web,
    session: &Session,
    requested: Option<&str>,
) -> Result<TenantRef, WebError> {
    let store = web.store();
    let requested = requested.filter(|r| !r.is_empty());
    match session.user.tenant {
        Some(own) => {
            let tenant = store
                .tenant_list()
                .await?
                .into_iter()
                .find(|t| t.id == own)
                .ok_or(WebError::NotFound)?;
            if requested.is_some_and(|r| r != tenant.name) {
                return Err(WebError::NotFound);
            }
            Ok(TenantRef {
                id: tenant.id,
                name: tenant.name,
            })
        }
        None => {
            let tenant = match requested {
                Some(name) => store
                    .tenant_by_name(name)
                    .await?
                    .ok_or(WebError::NotFound)?,
                None => {
                    let id = web.service.default_tenant(web.clock.now()).await?;
                    store
                        .tenant_list()
                        .await?
                        .into_iter()
                        .find(|t| t.id == id)
                        .ok_or(WebError::NotFound)?
                }
            };
            Ok(TenantRef {
                id: tenant.id,
                name: tenant.name,
            })
        }
    }
}

/// `?tenant=NAME` for an install admin's links, else nothing.
pub(crate) fn tenant_query(tenant: &TenantRef, session: &Session) -> String {
    if session.user.tenant.is_none() {
        format!("?tenant={}", encode(&tenant.name))
    } else {
        String::new()
    }
}

/// The link to a domain's page.
pub(crate) fn domain_link(domain: &str, tenant: &TenantRef, session: &Session) -> String {
    format!(
        "/domains/{}{}",
        encode(domain),
        tenant_query(tenant, session)
    )
}

pub(crate) async fn header(web: &Web, session: &Session) -> Result<Header, WebError> {
    let admin = session.user.is_install_admin();
    let scope = match session.user.tenant {
        Some(_) => tenant_of(web, session, None).await?.name,
        None => "all tenants".into(),
    };
    Ok(Header {
        user: session.user.name.clone(),
        scope,
        csrf: session.csrf_token.clone(),
        admin,
    })
}

fn summary_query(tenant: &TenantRef, domain: &str, now: i64, days: i64) -> SummaryQuery {
    SummaryQuery {
        scope: ReportScope::Tenant(tenant.id),
        domain: Some(domain.to_owned()),
        since: (epoch_day(now) - (days - 1)) * DAY,
        until: None,
    }
}

/// The longest chart window a domain page takes (`?from=&to=`), in days.
const MAX_WINDOW_DAYS: i64 = 3660;

/// A domain page's chart window: the last [`CHART_DAYS`] days, or `?from=YYYY-MM-DD` to
/// `?to=YYYY-MM-DD` (both UTC days, inclusive; `to` defaults to today). Returns the summary
/// query's `since` and `until` (exclusive) and the window in words.
fn chart_window(q: &Form, now: i64) -> Result<(i64, Option<i64>, String), WebError> {
    let today = epoch_day(now);
    let day = |key: &str| -> Result<Option<i64>, WebError> {
        let Some(text) = q.get(key).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(text, &format)
            .map(|d| Some(i64::from(d.to_julian_day()) - 2_440_588))
            .map_err(|_| WebError::BadRequest(format!("{key} is not a date YYYY-MM-DD: {text:?}")))
    };
    let (from, to) = (day("from")?, day("to")?);
    if from.is_none() && to.is_none() {
        let since = (today - (CHART_DAYS - 1)) * DAY;
        return Ok((since, None, format!("last {CHART_DAYS} days")));
    }
    let to = to.unwrap_or(today);
    let from = from.unwrap_or(to - (CHART_DAYS - 1));
    if from > to || to - from >= MAX_WINDOW_DAYS {
        return Err(WebError::BadRequest(format!(
            "from must not be after to, and the window at most {MAX_WINDOW_DAYS} days"
        )));
    }
    let words = format!(
        "{} to {}",
        format_time(from * DAY).chars().take(10).collect::<String>(),
        format_time(to * DAY).chars().take(10).collect::<String>()
    );
    Ok((from * DAY, Some((to + 1) * DAY), words))
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".into(), |r| format!("{:.1}%", r * 100.0))
}

/// The daily success rates of `summary` as SVG polyline points in a 100×20 box.
fn sparkline(summary: &ReportSummary, now: i64) -> String {
    let first = epoch_day(now) - (CHART_DAYS - 1);
    summary
        .days
        .iter()
        .filter_map(|d| {
            let total = d.successful.saturating_add(d.failed);
            (total > 0).then(|| {
                let x = (d.day / DAY - first) as f64 * 100.0 / (CHART_DAYS - 1) as f64;
                let y = 20.0 - 20.0 * d.successful as f64 / total as f64;
                format!("{x:.1},{y:.1}")
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Ready => "ready",
        Verdict::NotReady => "not-ready",
        Verdict::Enforcing => "enforcing",
    }
}

async fn overview_row(
    web: &Web,
    session: &Session,
    tenant: &TenantRef,
    domain: &str,
    now: i64,
) -> Result<OverviewRow, WebError> {
    let store = web.store();
    let evidence =
        readiness::gather::evidence(store, tenant.id, domain, now, &web.readiness).await?;
    let verdict = readiness::judge(&evidence, &web.readiness);
    // The readiness window and the fetch window are the overview's: their evidence serves
    // both, read once.
    let (summary, fetches) = if i64::from(web.readiness.window_days) == CHART_DAYS
        && i64::from(web.readiness.fetch_days) == FETCH_DAYS
    {
        (evidence.window.clone(), evidence.fetches.clone())
    } else {
        let summary = store
            .reports_summary(&summary_query(tenant, domain, now, CHART_DAYS))
            .await?;
        let fetches = store
            .policy_fetches_since(tenant.id, domain, epoch_day(now) - (FETCH_DAYS - 1))
            .await?;
        (summary, fetches)
    };
    let detail = web.service.show(tenant.id, domain, now).await?;
    let open_alerts = store
        .alert_list(tenant.id, Some(domain), true, MAX_OPEN_ALERTS)
        .await?
        .len();
    let cert_days = detail
        .certificate_live
        .as_ref()
        .and_then(|c| c.days_left)
        .or_else(|| {
            detail
                .certificate
                .as_ref()
                .and_then(|c| c.not_after)
                .map(|t| (t - now).div_euclid(DAY))
        });
    Ok(OverviewRow {
        tenant: tenant.name.clone(),
        domain: domain.to_owned(),
        link: domain_link(domain, tenant, session),
        mode: evidence.mode.clone(),
        days_in_mode: (now - evidence.mode_since).max(0) / DAY,
        last_check: evidence
            .last_check
            .as_ref()
            .map_or_else(|| "not run".into(), |c| c.verdict.clone()),
        success_rate: percent(summary.success_rate()),
        sparkline: sparkline(&summary, now),
        sessions: summary.successful.saturating_add(summary.failed),
        readiness: verdict_name(verdict.verdict).into(),
        cert_days: cert_days.map_or_else(|| "—".into(), |d| d.to_string()),
        fetches_7d: fetches.fetches,
        open_alerts,
    })
}

/// Where an overview page starts: after this tenant's domain (`?after=TENANT/DOMAIN`).
fn overview_cursor(q: &Form) -> Option<(String, String)> {
    let after = q.get("after")?;
    let (tenant, domain) = after.split_once('/')?;
    Some((tenant.to_owned(), domain.to_owned()))
}

async fn overview(
    q: &Form,
    session: &Session,
    web: &Web,
    now: i64,
) -> Result<Response<Full<Bytes>>, WebError> {
    let tenants: Vec<TenantRef> = match session.user.tenant {
        Some(_) => vec![tenant_of(web, session, None).await?],
        None => web
            .store()
            .tenant_list()
            .await?
            .into_iter()
            .map(|t| TenantRef {
                id: t.id,
                name: t.name,
            })
            .collect(),
    };
    // One page of OVERVIEW_PAGE domains, in (tenant, domain) order from the cursor: each
    // row costs a few store queries, so a page, not the install, bounds the work.
    let cursor = overview_cursor(q);
    let mut listed: Vec<(&TenantRef, String)> = Vec::new();
    for tenant in &tenants {
        let after = match &cursor {
            Some((t, _)) if tenant.name < *t => continue,
            Some((t, d)) if tenant.name == *t => Some(d.as_str()),
            _ => None,
        };
        let want = OVERVIEW_PAGE.saturating_sub(listed.len() as u32);
        if want == 0 {
            break;
        }
        for d in web.service.list_page(tenant.id, after, want, now).await? {
            listed.push((tenant, d.domain));
        }
    }
    // The rows' reads overlap, a few at a time (the store's pool serves them), in order.
    let mut rows: Vec<OverviewRow> = Vec::with_capacity(listed.len());
    for chunk in listed.chunks(OVERVIEW_CONCURRENCY) {
        let mut reads = Vec::with_capacity(chunk.len());
        for (tenant, domain) in chunk {
            reads.push(overview_row(web, session, tenant, domain, now));
        }
        rows.extend(futures::future::try_join_all(reads).await?);
    }
    let next = if rows.len() as u32 == OVERVIEW_PAGE {
        rows.last()
            .map(|r| format!("/?after={}/{}", encode(&r.tenant), encode(&r.domain)))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let page = OverviewPage {
        header: header(web, session).await?,
        rows,
        show_tenant: session.user.tenant.is_none(),
        tenants: if session.user.tenant.is_none() {
            tenants.iter().map(|t| t.name.clone()).collect()
        } else {
            Vec::new()
        },
        next,
    };
    Ok(html(StatusCode::OK, templates::render(&page)))
}

fn record_rows(
    records: &crate::domains::Records,
    live: Option<&crate::domains::Verification>,
) -> Vec<RecordRow> {
    let mut rows = Vec::new();
    let mut push = |r: &crate::domains::DnsRecord, note: &str| {
        let check = live.and_then(|v| {
            v.records
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(&r.name))
        });
        let (status, detail) = match check.map(|c| &c.state) {
            None => ("not-checked", String::new()),
            Some(RecordState::InPlace { how }) => ("in-place", how.clone()),
            Some(RecordState::Missing) => ("missing", format!("publish: {}", r.zone_line())),
            Some(RecordState::Wrong { found }) => (
                "wrong",
                format!("found {found}; publish: {}", r.zone_line()),
            ),
            Some(RecordState::Unknown { why }) => ("unknown", why.clone()),
        };
        rows.push(RecordRow {
            name: r.name.clone(),
            rtype: r.rtype.into(),
            value: r.value.clone(),
            zone_line: r.zone_line(),
            note: note.into(),
            status: status.into(),
            detail,
        });
    };
    push(&records.policy_host, "policy host (recommended)");
    push(
        &records.sts,
        "MTA-STS TXT (recommended: follows every change)",
    );
    if let Some(t) = &records.tlsrpt {
        push(t, "TLS-RPT");
    }
    rows
}

/// The chart data of a domain page: what the uPlot charts draw, and what tests read.
fn chart_data(summary: &ReportSummary) -> serde_json::Value {
    json!({
        "sessions": {
            "x": summary.days.iter().map(|d| d.day).collect::<Vec<_>>(),
            "successful": summary.days.iter().map(|d| d.successful).collect::<Vec<_>>(),
            "failed": summary.days.iter().map(|d| d.failed).collect::<Vec<_>>(),
        },
        "by_result_type": {
            "labels": summary.by_result_type.iter().map(|t| &t.result_type).collect::<Vec<_>>(),
            "failed": summary.by_result_type.iter().map(|t| t.failed).collect::<Vec<_>>(),
        },
        "by_organization": {
            "labels": summary.by_organization.iter().map(|o| &o.organization).collect::<Vec<_>>(),
            "successful": summary.by_organization.iter().map(|o| o.successful).collect::<Vec<_>>(),
            "failed": summary.by_organization.iter().map(|o| o.failed).collect::<Vec<_>>(),
        },
        "by_receiving_mx": {
            "labels": summary.by_receiving_mx.iter().map(|m| {
                if m.receiving_mx.is_empty() { "(unnamed)".to_owned() } else { m.receiving_mx.clone() }
            }).collect::<Vec<_>>(),
            "failed": summary.by_receiving_mx.iter().map(|m| m.failed).collect::<Vec<_>>(),
        },
    })
}

fn finding_rows(json: &str) -> Vec<FindingRow> {
    serde_json::from_str::<Vec<CheckFinding>>(json)
        .unwrap_or_default()
        .into_iter()
        .map(|f| FindingRow {
            code: f.code,
            severity: f.severity,
            subject: f.subject,
            message: f.message,
            remedy: f.remedy,
        })
        .collect()
}

async fn domain_page(
    domain: &str,
    q: &Form,
    session: &Session,
    web: &Web,
    now: i64,
) -> Result<Response<Full<Bytes>>, WebError> {
    let tenant = tenant_of(web, session, q.get("tenant")).await?;
    let store = web.store();
    let detail = web.service.show(tenant.id, domain, now).await?;
    let name = detail.domain.domain.clone();
    let records = web.service.records(tenant.id, &name).await?;
    // Live DNS lookups only when asked: a page load does not wait on other people's DNS.
    let (live, live_error) = if q.get("live") == Some("1") {
        // A failed lookup (or no DNS client) is said on the page, not an error page.
        match web.service.verify(tenant.id, &name).await {
            Ok(v) => (Some(v), String::new()),
            Err(e) => (None, e.to_string()),
        }
    } else {
        (None, String::new())
    };
    let readiness =
        readiness::gather::readiness(store, tenant.id, &name, now, &web.readiness).await?;
    let (since, until, window) = chart_window(q, now)?;
    let summary = store
        .reports_summary(&SummaryQuery {
            since,
            until,
            ..summary_query(&tenant, &name, now, CHART_DAYS)
        })
        .await?;
    let tq = tenant_query(&tenant, session);
    let reports = store
        .reports_list(&ReportListQuery {
            scope: ReportScope::Tenant(tenant.id),
            domain: Some(name.clone()),
            organization: None,
            dkim: None,
            since: None,
            until: None,
            limit: DOMAIN_REPORTS,
        })
        .await?
        .into_iter()
        .map(|r| super::reports::report_row(r, &tq))
        .collect();
    let since = (epoch_day(now) - (CHART_DAYS - 1)) * DAY;
    let policies = store
        .reported_policies(tenant.id, &name, since, DETAIL_ROWS)
        .await?
        .into_iter()
        .map(|p| PolicyRow {
            organization: p.organization,
            begin: format_time(p.begin_at),
            begin_at: p.begin_at,
            end: format_time(p.end_at),
            policy_type: p.policy_type,
            policy_strings: p.policy_strings,
            mx_hosts: p.mx_hosts,
            successful: p.successful,
            failed: p.failed,
        })
        .collect();
    let failures = store
        .failure_details(tenant.id, &name, since, DETAIL_ROWS)
        .await?;
    let checks = store
        .check_run_list(tenant.id, &name, CHECK_HISTORY)
        .await?
        .into_iter()
        .map(|run| CheckRow {
            finished: format_time(run.finished_at),
            verdict: run.verdict,
            findings: finding_rows(&run.findings),
        })
        .collect();
    let mut alerts = store
        .alert_list(tenant.id, Some(&name), false, ALERT_ROWS)
        .await?;
    // Open ones first (stable: newest first within each group).
    alerts.sort_by_key(|a| a.resolved_at.is_some());
    let alerts = alerts
        .into_iter()
        .map(|a| AlertRow {
            rule: a.rule,
            summary: a.summary,
            opened: format_time(a.opened_at),
            resolved: a.resolved_at.map(format_time).unwrap_or_default(),
        })
        .collect();
    let explanations = ResultType::KNOWN
        .iter()
        .map(|t| ExplanationRow {
            result_type: t.as_str().into(),
            section: t.section().into(),
            meaning: t.meaning().into(),
            remedy: t.remedy().into(),
            failed: summary
                .by_result_type
                .iter()
                .find(|f| f.result_type == t.as_str())
                .map_or(0, |f| f.failed),
        })
        .collect();
    let page = DomainPage {
        header: header(web, session).await?,
        self_link: domain_link(&name, &tenant, session),
        tenant_query: tq,
        tenant: tenant.name.clone(),
        mode: detail.current.mode.clone(),
        policy_id: detail.current.sts_id.clone(),
        version: detail.current.version,
        policy: detail.current.policy.clone(),
        records: record_rows(&records, live.as_ref()),
        live_checked: live.is_some(),
        live_error,
        verdict: verdict_name(readiness.verdict).into(),
        next_step: readiness.next_step.clone().unwrap_or_default(),
        criteria: readiness
            .criteria
            .iter()
            .map(|c| CriterionRow {
                code: c.code.into(),
                title: c.title.into(),
                passed: c.passed,
                evidence: c.evidence.clone(),
                next_step: c.next_step.clone().unwrap_or_default(),
            })
            .collect(),
        modes: vec!["testing", "enforce", "none"],
        chart_json: templates::script_json(&chart_data(&summary)),
        successful: summary.successful,
        failed: summary.failed,
        explanations,
        reports,
        policies,
        failures,
        checks,
        alerts,
        domain: name,
        window,
    };
    Ok(html(StatusCode::OK, templates::render(&page)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stsward_store::reports::summary::DaySessions;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn the_chart_window_is_the_last_30_days_or_the_dates_given() {
        // 2026-12-03 12:00 UTC.
        let now = 1_796_299_200;
        let today = epoch_day(now);
        let (since, until, words) = chart_window(&form(&[]), now).expect("default");
        assert_eq!((since, until), ((today - 29) * DAY, None));
        assert_eq!(words, "last 30 days");
        let q = form(&[("from", "2016-04-01"), ("to", "2016-04-02")]);
        let (since, until, words) = chart_window(&q, now).expect("dates");
        // 2016-04-01 00:00 UTC is 1459468800.
        assert_eq!(
            (since, until),
            (1_459_468_800, Some(1_459_468_800 + 2 * DAY))
        );
        assert_eq!(words, "2016-04-01 to 2016-04-02");
        for bad in [
            &[("from", "2016-13-01")][..],
            &[("from", "2016-04-02"), ("to", "2016-04-01")],
            &[("from", "1990-01-01"), ("to", "2026-01-01")],
            &[("to", "yesterday")],
        ] {
            assert!(
                matches!(chart_window(&form(bad), now), Err(WebError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sparklines_plot_daily_success_in_a_100_by_20_box() {
        let now = 100 * DAY + 5;
        let first = epoch_day(now) - (CHART_DAYS - 1);
        let summary = ReportSummary {
            days: vec![
                DaySessions {
                    day: first * DAY,
                    successful: 10,
                    failed: 0,
                },
                DaySessions {
                    day: (first + CHART_DAYS - 1) * DAY,
                    successful: 5,
                    failed: 5,
                },
                DaySessions {
                    day: (first + 3) * DAY,
                    successful: 0,
                    failed: 0,
                },
            ],
            ..ReportSummary::default()
        };
        assert_eq!(sparkline(&summary, now), "0.0,0.0 100.0,10.0");
        assert_eq!(sparkline(&ReportSummary::default(), now), "");
    }
}
