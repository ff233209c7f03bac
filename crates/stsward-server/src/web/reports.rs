//! The reports pages: received reports listed and filtered (by domain, organisation, DKIM
//! result and dates), and one report's raw input as it arrived (RFC 8460 §4.4 reports), for
//! the session's tenant, or install-wide for an install admin who names no tenant.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use stsward_store::{ReportListQuery, ReportListing, ReportScope};

use super::pages::{self, tenant_of, tenant_query};
use super::sessions::Session;
use super::templates::{self, RawPage, ReportRow, ReportsPage};
use super::{Form, Web, WebError, html};
use crate::domains::format_time;

const DAY: i64 = 86_400;
/// Reports on the reports page unless `limit` says otherwise.
const DEFAULT_REPORTS: u32 = 200;

pub(crate) fn report_row(r: ReportListing, tenant_query: &str) -> ReportRow {
    ReportRow {
        raw_link: format!("/reports/{}/raw{tenant_query}", r.id),
        id: r.id,
        organization: r.organization,
        report_id: r.report_id,
        begin: format_time(r.begin_at),
        begin_at: r.begin_at,
        end: format_time(r.end_at),
        domains: r.policy_domains,
        channel: r.channel,
        dkim: r.dkim,
        successful: r.successful,
        failed: r.failed,
        has_raw: r.has_raw,
    }
}

/// A `YYYY-MM-DD` date as the epoch second its UTC day starts.
fn parse_date(field: &str, raw: &str) -> Result<Option<i64>, WebError> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw.trim(), &format)
        .map(|d| Some(d.midnight().assume_utc().unix_timestamp()))
        .map_err(|_| WebError::BadRequest(format!("{field} is not a date (YYYY-MM-DD)")))
}

/// The scope of the reports pages: the session's tenant, or for an install admin every
/// tenant unless one is named.
async fn report_scope(
    q: &Form,
    session: &Session,
    web: &Web,
) -> Result<(ReportScope, String), WebError> {
    if session.user.tenant.is_none() && q.get("tenant").is_none_or(str::is_empty) {
        return Ok((ReportScope::Install, String::new()));
    }
    let tenant = tenant_of(web, session, q.get("tenant")).await?;
    let tq = tenant_query(&tenant, session);
    Ok((ReportScope::Tenant(tenant.id), tq))
}

pub(crate) async fn reports(
    q: &Form,
    session: &Session,
    web: &Web,
) -> Result<Response<Full<Bytes>>, WebError> {
    let (scope, tq) = report_scope(q, session, web).await?;
    let text = |k: &str| q.get(k).unwrap_or("").trim().to_owned();
    let since = parse_date("since", &text("since"))?;
    let until = parse_date("until", &text("until"))?.map(|d| d + DAY);
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => l
            .parse::<u32>()
            .map_err(|_| WebError::BadRequest("limit is not a number".into()))?,
        None => DEFAULT_REPORTS,
    };
    let some = |s: String| (!s.is_empty()).then_some(s);
    let list = web
        .store()
        .reports_list(&ReportListQuery {
            scope,
            domain: some(text("domain")),
            organization: some(text("organization")),
            dkim: some(text("dkim")),
            since,
            until,
            limit,
        })
        .await?;
    let page = ReportsPage {
        header: pages::header(web, session).await?,
        domain: text("domain"),
        organization: text("organization"),
        dkim: text("dkim"),
        since: text("since"),
        until: text("until"),
        tenant: text("tenant"),
        reports: list.into_iter().map(|r| report_row(r, &tq)).collect(),
        limit: limit.min(stsward_store::reports::listing::MAX_REPORT_LIST),
    };
    Ok(html(StatusCode::OK, templates::render(&page)))
}

pub(crate) async fn raw(
    id: i64,
    q: &Form,
    session: &Session,
    web: &Web,
) -> Result<Response<Full<Bytes>>, WebError> {
    let (scope, tq) = report_scope(q, session, web).await?;
    let (listing, raw) = web
        .store()
        .report_raw(scope, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let raw = raw.ok_or_else(|| {
        WebError::BadRequest("the raw input of this report was pruned by retention".into())
    })?;
    let bytes = raw
        .decompress()
        .map_err(|e| WebError::Internal(format!("report {id} raw input: {e}")))?;
    if q.get("download") == Some("1") {
        let size = bytes.len();
        let mut r = Response::new(Full::new(Bytes::from(bytes)));
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"report-{id}.raw\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        tracing::debug!(id, size, "raw report downloaded");
        return Ok(r);
    }
    let size = bytes.len();
    let text = String::from_utf8(bytes).ok();
    let sep = if tq.is_empty() { '?' } else { '&' };
    let page = RawPage {
        header: pages::header(web, session).await?,
        download_link: format!("/reports/{id}/raw{tq}{sep}download=1"),
        report: report_row(listing, &tq),
        size,
        text,
    };
    Ok(html(StatusCode::OK, templates::render(&page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_good_and_bad() {
        assert_eq!(parse_date("since", "").ok(), Some(None));
        assert_eq!(
            parse_date("since", "2024-01-02").ok(),
            Some(Some(1_704_153_600))
        );
        for bad in ["2024-13-01", "yesterday", "2024-1-2x"] {
            assert!(parse_date("since", bad).is_err(), "{bad}");
        }
    }
}
