//! The policy editor of a domain: the policy file (RFC 8461 §3.2) as text, linted as
//! `stsward policy lint` lints it, with a preview of the `id` (RFC 8461 §3.1) the change would
//! publish, and a save that goes through [`DomainService::set`](crate::domains::DomainService)
//! like every other change.
//!
//! ```text
//! GET  /domains/{d}/policy                  the served policy in the editor, linted
//! POST /domains/{d}/policy  action=preview  the text's findings and the id it would get
//! POST /domains/{d}/policy  action=save     the same checks, then a new version; 303 back
//! POST /domains/{d}/sync-mx                 the mx lines from the MX records in DNS
//! ```
//!
//! Below the editor, the history: each version with who made it, when and why, and its
//! line diff from the version before.
//!
//! The editor changes what the service lets a change set: `mode`, `mx` and `max_age`. The
//! `version` line is fixed (`STSv1`), and extension fields are kept from the served policy,
//! so the text's own extensions are not applied (the preview says so).

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use stsward_proto::finding::Severity;
use stsward_proto::mta_sts::lint;

use super::sessions::Session;
use super::templates::{self, DiffLine, EditorPage, FindingRow, VersionRow};
use super::{Form, Web, WebError, html, pages, redirect};
use crate::domains::id::policy_id;
use crate::domains::{MxInput, PolicyChange, format_time};

/// The longest text the editor takes: the policy size limit of RFC 8461 §3.3 plus room for
/// the findings to say so.
const MAX_TEXT_BYTES: usize = 2 * stsward_proto::mta_sts::MAX_POLICY_BYTES;

/// How the editor page answers: its status and a message above the editor.
#[derive(Clone, Copy)]
struct Answer {
    status: StatusCode,
    message: &'static str,
}

/// The editor as asked for.
const SHOWN: Answer = Answer {
    status: StatusCode::OK,
    message: "",
};

/// A save refused: the text has errors.
const NOT_SAVED: Answer = Answer {
    status: StatusCode::UNPROCESSABLE_ENTITY,
    message: "Not saved: the policy has errors.",
};

/// What the text would change, once it lints without errors.
struct Checked {
    findings: Vec<FindingRow>,
    /// The file the policy host would serve for the text (its canonical form).
    served: String,
    change: Option<PolicyChange>,
    ignored_extensions: bool,
}

fn check(text: &str) -> Checked {
    let linted = lint(text.as_bytes());
    let errors = linted
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error);
    let findings = linted
        .findings
        .iter()
        .map(|f| FindingRow {
            code: f.code.to_string(),
            severity: f.severity.to_string(),
            subject: f.subject.clone(),
            message: f.message.clone(),
            remedy: f.remedy.clone(),
        })
        .collect();
    let policy = linted.policy.filter(|_| !errors);
    Checked {
        findings,
        served: policy.as_ref().map(ToString::to_string).unwrap_or_default(),
        ignored_extensions: policy.as_ref().is_some_and(|p| !p.extensions().is_empty()),
        change: policy.map(|p| PolicyChange {
            mode: Some(p.mode().to_string()),
            mx: Some(MxInput::Patterns(
                p.mx().iter().map(ToString::to_string).collect(),
            )),
            max_age: Some(u64::from(p.max_age().as_secs())),
            note: None,
        }),
    }
}

/// `GET /domains/{d}/policy`.
pub(crate) async fn show(
    domain: &str,
    q: &Form,
    session: &Session,
    web: &Web,
    now: i64,
) -> Result<Response<Full<Bytes>>, WebError> {
    let tenant = pages::tenant_of(web, session, q.get("tenant")).await?;
    let detail = web.service.show(tenant.id, domain, now).await?;
    let text = detail.current.policy.clone();
    page(web, session, &tenant, domain, &text, now, SHOWN).await
}

/// `POST /domains/{d}/policy`.
pub(crate) async fn post(
    domain: &str,
    form: &Form,
    session: &Session,
    web: &Web,
    now: i64,
) -> Result<Response<Full<Bytes>>, WebError> {
    let tenant = pages::tenant_of(web, session, form.get("tenant")).await?;
    let text = form.get("text").unwrap_or("");
    if text.len() > MAX_TEXT_BYTES {
        return Err(WebError::BadRequest(format!(
            "text is larger than {MAX_TEXT_BYTES} bytes"
        )));
    }
    // Normalise browser line endings (a textarea sends CRLF) to what the host serves.
    let text = text.replace("\r\n", "\n");
    match form.get("action") {
        Some("save") => {
            let checked = check(&text);
            let Some(mut change) = checked.change else {
                return page(web, session, &tenant, domain, &text, now, NOT_SAVED).await;
            };
            change.note = Some(format!("edited in the dashboard by {}", session.user.name));
            let actor = super::actor(session);
            web.service
                .set(tenant.id, domain, &change, &actor, now)
                .await?;
            Ok(redirect(&pages::domain_link(domain, &tenant, session)))
        }
        Some("preview") | None => page(web, session, &tenant, domain, &text, now, SHOWN).await,
        Some(other) => Err(WebError::BadRequest(format!(
            "action {:?} is neither preview nor save",
            other.chars().take(20).collect::<String>()
        ))),
    }
}

/// The line diff from `old` to `new`.
fn diff(old: &str, new: &str) -> Vec<DiffLine> {
    similar::TextDiff::from_lines(old, new)
        .iter_all_changes()
        .map(|c| DiffLine {
            tag: match c.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            },
            text: c.value().trim_end_matches('\n').to_owned(),
        })
        .collect()
}

/// The versions of `history` (newest first), each with its diff from the one before it.
fn history_rows(history: &[stsward_store::PolicyVersion]) -> Vec<VersionRow> {
    history
        .iter()
        .enumerate()
        .map(|(i, v)| VersionRow {
            version: v.version,
            id: v.sts_id.clone(),
            mode: v.mode.clone(),
            changed_by: v.changed_by.clone(),
            changed_at: format_time(v.changed_at),
            note: v.note.clone().unwrap_or_default(),
            diff: diff(
                history.get(i + 1).map_or("", |p| p.policy.as_str()),
                &v.policy,
            ),
        })
        .collect()
}

/// `POST /domains/{d}/sync-mx`: the `mx` lines rebuilt from the domain's MX records.
pub(crate) async fn sync_mx(
    domain: &str,
    form: &Form,
    session: &Session,
    web: &Web,
    now: i64,
) -> Result<Response<Full<Bytes>>, WebError> {
    let tenant = pages::tenant_of(web, session, form.get("tenant")).await?;
    let actor = super::actor(session);
    web.service.sync_mx(tenant.id, domain, &actor, now).await?;
    Ok(redirect(&format!(
        "/domains/{domain}/policy{}",
        pages::tenant_query(&tenant, session)
    )))
}

async fn page(
    web: &Web,
    session: &Session,
    tenant: &super::TenantRef,
    domain: &str,
    text: &str,
    now: i64,
    answer: Answer,
) -> Result<Response<Full<Bytes>>, WebError> {
    let detail = web.service.show(tenant.id, domain, now).await?;
    let checked = check(text);
    let unchanged = checked.change.as_ref().is_some_and(|c| {
        c.mode.as_deref() == Some(detail.current.mode.as_str())
            && c.max_age == u64::try_from(detail.current.max_age).ok()
            && matches!(&c.mx, Some(MxInput::Patterns(p)) if *p == detail.current.mx)
    });
    let new_id = match &checked.change {
        None => String::new(),
        Some(_) if unchanged => detail.current.sts_id.clone(),
        Some(_) => policy_id(now, detail.current.version + 1)
            .map(|id| id.to_string())
            .unwrap_or_default(),
    };
    let editor = EditorPage {
        header: pages::header(web, session).await?,
        domain: detail.domain.domain.clone(),
        tenant: tenant.name.clone(),
        back_link: pages::domain_link(&detail.domain.domain, tenant, session),
        current_id: detail.current.sts_id.clone(),
        text: text.to_owned(),
        valid: checked.change.is_some(),
        unchanged,
        new_id,
        ignored_extensions: checked.ignored_extensions,
        findings: checked.findings,
        message: answer.message.to_owned(),
        served: checked.served.clone(),
        history: history_rows(&detail.history),
    };
    Ok(html(answer.status, templates::render(&editor)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_mark_removed_and_added_lines() {
        let d = diff(
            "version: STSv1\nmode: testing\nmax_age: 86400\n",
            "version: STSv1\nmode: enforce\nmax_age: 86400\n",
        );
        let lines: Vec<(char, &str)> = d.iter().map(|l| (l.tag, l.text.as_str())).collect();
        assert_eq!(
            lines,
            vec![
                (' ', "version: STSv1"),
                ('-', "mode: testing"),
                ('+', "mode: enforce"),
                (' ', "max_age: 86400"),
            ]
        );
        assert!(
            diff("", "a\n").iter().all(|l| l.tag == '+'),
            "the first version is all new"
        );
    }

    #[test]
    fn a_valid_policy_becomes_a_change() {
        let c = check(
            "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: *.example.net\nmax_age: 86400\n",
        );
        let change = c.change.expect("valid");
        assert_eq!(change.mode.as_deref(), Some("enforce"));
        assert_eq!(change.max_age, Some(86_400));
        assert!(
            matches!(&change.mx, Some(MxInput::Patterns(p)) if p == &["mx1.example.com", "*.example.net"])
        );
        assert!(!c.ignored_extensions);
    }

    #[test]
    fn a_policy_with_errors_is_no_change() {
        for (text, why) in [
            (
                "version: STSv1\nmode: enforce\nmax_age: 86400\n",
                "no mx in enforce",
            ),
            (
                "version: STSv1\nmode: sometimes\nmx: a.example\nmax_age: 86400\n",
                "a bad mode",
            ),
            (
                "mode: testing\nmx: a.example\nmax_age: 86400\n",
                "no version",
            ),
            (
                "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 99999999999\n",
                "max_age too large",
            ),
        ] {
            let c = check(text);
            assert!(c.change.is_none(), "{why}");
            assert!(
                c.findings.iter().any(|f| f.severity == "error"),
                "{why}: an error finding"
            );
        }
    }
}
