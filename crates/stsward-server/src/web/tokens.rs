//! REST API tokens in the dashboard (issue 9): a tenant's tokens listed, a new one issued
//! through [`crate::auth::issue`] (the path of `stsward token create` and `POST
//! /api/v1/tokens`) and shown once, a token revoked. Only the digest is stored (RFC 6750
//! bearer tokens, `crate::auth::token`).
//!
//! ```text
//! GET  /tokens                    the tenant's tokens (every user of the tenant)
//! POST /tokens                    csrf, name -> a new token, shown in this answer only
//! POST /tokens/{id}/revoke        csrf -> revoked; 303 to /tokens
//! ```
//!
//! Issuing and revoking take an admin: the tenant's own admins, or an install admin
//! naming the tenant (`tenant`). A member sees the list without the forms.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use stsward_store::{Role, TokenId};

use super::sessions::Session;
use super::templates::{self, TokenRow, TokensPage};
use super::{Form, TenantRef, Web, WebError, html, pages, redirect};
use crate::auth::IssueError;
use crate::domains::format_time;

fn may_manage(session: &Session) -> bool {
    session.user.role == Role::Admin
}

async fn page(
    web: &Web,
    session: &Session,
    tenant: &TenantRef,
    status: StatusCode,
    new_token: Option<String>,
    message: &str,
) -> Result<Response<Full<Bytes>>, WebError> {
    let tokens = web
        .store()
        .api_token_list(tenant.id)
        .await?
        .into_iter()
        .rev()
        .map(|t| TokenRow {
            id: t.id.0,
            active: t.is_active(),
            name: t.name,
            prefix: t.prefix,
            created: format_time(t.created_at),
            last_used: t.last_used_at.map(format_time).unwrap_or_default(),
            revoked: t.revoked_at.map(format_time).unwrap_or_default(),
        })
        .collect();
    let view = TokensPage {
        header: pages::header(web, session).await?,
        tenant: tenant.name.clone(),
        manage: may_manage(session),
        tokens,
        new_token: new_token.unwrap_or_default(),
        message: message.to_owned(),
    };
    Ok(html(status, templates::render(&view)))
}

/// `GET /tokens`.
pub(crate) async fn show(
    q: &Form,
    session: &Session,
    web: &Web,
) -> Result<Response<Full<Bytes>>, WebError> {
    let tenant = pages::tenant_of(web, session, q.get("tenant")).await?;
    page(web, session, &tenant, StatusCode::OK, None, "").await
}

/// `POST /tokens` and `POST /tokens/{id}/revoke`.
pub(crate) async fn post(
    rest: &str,
    form: &Form,
    session: &Session,
    web: &Web,
    now: i64,
) -> Result<Response<Full<Bytes>>, WebError> {
    let tenant = pages::tenant_of(web, session, form.get("tenant")).await?;
    if !may_manage(session) {
        return Err(WebError::Forbidden(
            "only an admin issues and revokes API tokens".into(),
        ));
    }
    if rest.is_empty() {
        let name = form.get("name").unwrap_or("");
        return match crate::auth::issue(web.store(), tenant.id, "name", name, now).await {
            Ok((_, secret)) => {
                page(
                    web,
                    session,
                    &tenant,
                    StatusCode::CREATED,
                    Some(secret.token),
                    "",
                )
                .await
            }
            Err(e @ (IssueError::Name(_) | IssueError::TooMany)) => {
                page(
                    web,
                    session,
                    &tenant,
                    StatusCode::BAD_REQUEST,
                    None,
                    &e.to_string(),
                )
                .await
            }
            Err(e) => Err(WebError::Internal(e.to_string())),
        };
    }
    let id = rest
        .strip_prefix('/')
        .and_then(|r| r.strip_suffix("/revoke"))
        .and_then(|id| id.parse::<i64>().ok())
        .ok_or(WebError::NotFound)?;
    web.store()
        .api_token_revoke(tenant.id, TokenId(id), now)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(redirect(&format!(
        "/tokens{}",
        pages::tenant_query(&tenant, session)
    )))
}
