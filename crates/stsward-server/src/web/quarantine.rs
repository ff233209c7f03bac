//! The report intake's quarantine in the dashboard (issue 9): inputs that could not be read
//! or were refused, with their reasons, and a release that runs one through intake again
//! ([`StoreSink::release`], the path of `stsward reports release`).
//!
//! ```text
//! GET  /quarantine                 waiting inputs, newest first (?all=1: released ones too)
//! POST /quarantine/{id}/release    csrf -> run through intake again; 303 back
//! ```
//!
//! A quarantined input belongs to no tenant yet (it could not be read, or its reports were
//! not trusted), so only an install admin sees the quarantine. A release does not ask for a
//! DKIM signature, as `stsward reports release` without `--require-dkim`: it is the
//! operator's override of RFC 8460 §3 ("Reports sent via SMTP MUST contain a valid
//! DomainKeys Identified Mail (DKIM) [RFC6376] signature by the reporting domain. Reports
//! lacking such a signature MUST be ignored by the recipient."), for an input the operator
//! has checked by other means.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::sessions::Session;
use super::templates::{self, QuarantinePage, QuarantineRow};
use super::{Form, Web, WebError, html, pages, redirect};
use crate::domains::format_time;
use crate::intake::{Outcome, StoreSink};

/// Entries on the page.
const PAGE: u32 = 200;

fn install_admin(session: &Session) -> Result<(), WebError> {
    if session.user.is_install_admin() {
        Ok(())
    } else {
        Err(WebError::NotFound)
    }
}

/// `GET /quarantine`.
pub(crate) async fn show(
    q: &Form,
    session: &Session,
    web: &Web,
) -> Result<Response<Full<Bytes>>, WebError> {
    install_admin(session)?;
    let all = q.get("all") == Some("1");
    let entries = web
        .store()
        .quarantine_list(all, None, PAGE)
        .await?
        .into_iter()
        .map(|e| QuarantineRow {
            id: e.id,
            received: format_time(e.received_at),
            channel: e.channel,
            kind: e.kind,
            origin: e.origin,
            reason: e.reason,
            size: e.size,
            released: e.released_at.map(format_time).unwrap_or_default(),
        })
        .collect();
    let page = QuarantinePage {
        header: pages::header(web, session).await?,
        entries,
        all,
        message: q.get("result").unwrap_or("").to_owned(),
    };
    Ok(html(StatusCode::OK, templates::render(&page)))
}

/// `POST /quarantine/{id}/release`.
pub(crate) async fn release(
    rest: &str,
    session: &Session,
    web: &Web,
    now: i64,
) -> Result<Response<Full<Bytes>>, WebError> {
    install_admin(session)?;
    let id = rest
        .strip_suffix("/release")
        .and_then(|id| id.parse::<i64>().ok())
        .ok_or(WebError::NotFound)?;
    let outcome = StoreSink::new(web.store().clone())
        .release(id, false, now)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .ok_or(WebError::NotFound)?;
    let result = match outcome {
        Outcome::Stored { stored, duplicates } => {
            format!("entry {id} released: {stored} report(s) stored, {duplicates} already stored")
        }
        Outcome::Quarantined { reason } => {
            format!("entry {id} is still refused and stays in the quarantine: {reason}")
        }
    };
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("result", &result)
        .finish();
    Ok(redirect(&format!("/quarantine?{query}")))
}
