//! The dashboard's pages as askama templates (`templates/web/*.html`, compiled into the
//! binary, HTML-escaped by default) and the view values they show. Only the chart data goes
//! in unescaped, as JSON made safe for a `<script type="application/json">` element by
//! [`script_json`].

use askama::Template;
use http::StatusCode;
use serde::Serialize;

/// Who is logged in, for the page header.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    pub user: String,
    /// The tenant's name, or "all tenants" for an install admin.
    pub scope: String,
    pub csrf: String,
    /// An install admin (sees the quarantine).
    pub admin: bool,
}

#[derive(Template)]
#[template(path = "web/login.html")]
struct LoginPage<'a> {
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    code: u16,
    reason: &'a str,
    message: &'a str,
}

/// One row of the overview.
#[derive(Clone, Debug)]
pub(crate) struct OverviewRow {
    pub tenant: String,
    pub domain: String,
    pub link: String,
    pub mode: String,
    pub days_in_mode: i64,
    pub last_check: String,
    pub success_rate: String,
    /// SVG polyline points of the daily success rate, or empty.
    pub sparkline: String,
    pub sessions: u64,
    pub readiness: String,
    pub cert_days: String,
    pub fetches_7d: i64,
    /// Open alerts of the domain (`docs/alerts.md`).
    pub open_alerts: usize,
}

#[derive(Template)]
#[template(path = "web/overview.html")]
pub(crate) struct OverviewPage {
    pub header: Header,
    pub rows: Vec<OverviewRow>,
    pub show_tenant: bool,
    /// The tenants an install admin may add a domain to (empty for a tenant's user).
    pub tenants: Vec<String>,
    /// The link to the next page, when there may be one.
    pub next: String,
}

/// One record to publish, with its live status when it was looked up.
#[derive(Clone, Debug)]
pub(crate) struct RecordRow {
    pub name: String,
    pub rtype: String,
    pub value: String,
    pub zone_line: String,
    pub note: String,
    /// `in-place`, `missing`, `wrong`, `unknown`, or `not-checked`.
    pub status: String,
    pub detail: String,
}

/// One readiness criterion.
#[derive(Clone, Debug)]
pub(crate) struct CriterionRow {
    pub code: String,
    pub title: String,
    pub passed: bool,
    pub evidence: String,
    pub next_step: String,
}

/// One failure type with its explanation.
#[derive(Clone, Debug)]
pub(crate) struct ExplanationRow {
    pub result_type: String,
    pub section: String,
    pub meaning: String,
    pub remedy: String,
    pub failed: u64,
}

/// One stored report, as tables show it.
#[derive(Clone, Debug)]
pub(crate) struct ReportRow {
    pub id: i64,
    pub organization: String,
    pub report_id: String,
    pub begin: String,
    pub begin_at: i64,
    pub end: String,
    pub domains: String,
    pub channel: String,
    pub dkim: String,
    pub successful: i64,
    pub failed: i64,
    pub raw_link: String,
    pub has_raw: bool,
}

/// A policy as a report stated it.
#[derive(Clone, Debug)]
pub(crate) struct PolicyRow {
    pub organization: String,
    pub begin: String,
    pub begin_at: i64,
    pub end: String,
    pub policy_type: String,
    pub policy_strings: String,
    pub mx_hosts: String,
    pub successful: i64,
    pub failed: i64,
}

/// One check run with its findings.
#[derive(Clone, Debug)]
pub(crate) struct AlertRow {
    pub rule: String,
    pub summary: String,
    pub opened: String,
    /// When it resolved, or empty while open.
    pub resolved: String,
}

/// One check run of a domain page's history.
#[derive(Clone, Debug)]
pub(crate) struct CheckRow {
    pub finished: String,
    pub verdict: String,
    pub findings: Vec<FindingRow>,
}

/// One finding of a check run.
#[derive(Clone, Debug)]
pub(crate) struct FindingRow {
    pub code: String,
    pub severity: String,
    pub subject: String,
    pub message: String,
    pub remedy: String,
}

#[derive(Template)]
#[template(path = "web/domain.html")]
pub(crate) struct DomainPage {
    pub header: Header,
    pub domain: String,
    pub tenant: String,
    /// `?tenant=…` for an install admin's links, else empty.
    pub tenant_query: String,
    pub self_link: String,
    pub mode: String,
    pub policy_id: String,
    pub version: i64,
    pub policy: String,
    pub records: Vec<RecordRow>,
    pub live_checked: bool,
    pub live_error: String,
    pub verdict: String,
    pub next_step: String,
    pub criteria: Vec<CriterionRow>,
    pub modes: Vec<&'static str>,
    pub chart_json: String,
    /// The charts' window in words (`last 30 days`, or `?from=` to `?to=`).
    pub window: String,
    pub successful: u64,
    pub failed: u64,
    pub explanations: Vec<ExplanationRow>,
    pub reports: Vec<ReportRow>,
    pub policies: Vec<PolicyRow>,
    pub failures: Vec<stsward_store::reports::details::FailureDetail>,
    pub checks: Vec<CheckRow>,
    /// The domain's alerts, open first then newest first.
    pub alerts: Vec<AlertRow>,
}

/// One line of a diff: `+`, `-` or ` `, and the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DiffLine {
    pub tag: char,
    pub text: String,
}

/// One policy version in the editor's history, with its diff from the version before.
#[derive(Clone, Debug)]
pub(crate) struct VersionRow {
    pub version: i64,
    pub id: String,
    pub mode: String,
    pub changed_by: String,
    pub changed_at: String,
    pub note: String,
    pub diff: Vec<DiffLine>,
}

#[derive(Template)]
#[template(path = "web/editor.html")]
pub(crate) struct EditorPage {
    pub header: Header,
    pub domain: String,
    pub tenant: String,
    pub back_link: String,
    pub current_id: String,
    pub text: String,
    /// The text lints without errors.
    pub valid: bool,
    /// The text is the served policy.
    pub unchanged: bool,
    /// The id a save would publish (the current one when unchanged).
    pub new_id: String,
    pub ignored_extensions: bool,
    pub findings: Vec<FindingRow>,
    pub message: String,
    /// The file a save would serve.
    pub served: String,
    pub history: Vec<VersionRow>,
}

/// One API token.
#[derive(Clone, Debug)]
pub(crate) struct TokenRow {
    pub id: i64,
    pub active: bool,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub revoked: String,
}

#[derive(Template)]
#[template(path = "web/tokens.html")]
pub(crate) struct TokensPage {
    pub header: Header,
    pub tenant: String,
    /// The user may issue and revoke.
    pub manage: bool,
    pub tokens: Vec<TokenRow>,
    /// A token just issued, shown once.
    pub new_token: String,
    pub message: String,
}

/// One quarantined input.
#[derive(Clone, Debug)]
pub(crate) struct QuarantineRow {
    pub id: i64,
    pub received: String,
    pub channel: String,
    pub kind: String,
    pub origin: String,
    pub reason: String,
    pub size: u64,
    pub released: String,
}

#[derive(Template)]
#[template(path = "web/quarantine.html")]
pub(crate) struct QuarantinePage {
    pub header: Header,
    pub entries: Vec<QuarantineRow>,
    /// Released entries are listed too.
    pub all: bool,
    /// What the last release did.
    pub message: String,
}

#[derive(Template)]
#[template(path = "web/reports.html")]
pub(crate) struct ReportsPage {
    pub header: Header,
    pub domain: String,
    pub organization: String,
    pub dkim: String,
    pub since: String,
    pub until: String,
    pub tenant: String,
    pub reports: Vec<ReportRow>,
    pub limit: u32,
}

#[derive(Template)]
#[template(path = "web/raw.html")]
pub(crate) struct RawPage {
    pub header: Header,
    pub report: ReportRow,
    pub size: usize,
    /// The input as text, when it is UTF-8.
    pub text: Option<String>,
    pub download_link: String,
}

/// Renders a template; a failure (which a compiled template does not have for these
/// values) becomes a plain message.
pub(crate) fn render(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "a dashboard template failed");
        "<!doctype html><title>error</title><p>The page could not be rendered.</p>".into()
    })
}

/// The login page, with an error message after a failed attempt.
pub(crate) fn login_page(error: Option<&str>) -> String {
    render(&LoginPage { error })
}

/// An error page.
pub(crate) fn error_page(status: StatusCode, message: &str) -> String {
    render(&ErrorPage {
        code: status.as_u16(),
        reason: status.canonical_reason().unwrap_or(""),
        message,
    })
}

/// `value` as JSON that can sit inside a `<script>` element: `<`, `>` and `&` are written
/// as `\u` escapes, so no `</script>` or `<!--` can end or change the element.
pub(crate) fn script_json(value: &impl Serialize) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let v = serde_json::json!({"org": "</script><script>alert(1)</script>&"});
        let s = script_json(&v);
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        let back: serde_json::Value = serde_json::from_str(&s).expect("still JSON");
        assert_eq!(back, v, "the escapes decode to the same value");
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = login_page(Some("<b>bad</b>"));
        assert!(!page.contains("<b>bad"), "{page}");
        assert!(page.contains("&#60;b&#62;bad&#60;/b&#62;"), "{page}");
        let page = error_page(StatusCode::NOT_FOUND, "<x>");
        assert!(!page.contains("<x>") && page.contains("&#60;x&#62;") && page.contains("404"));
    }
}
