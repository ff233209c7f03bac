//! `/api/v1/tokens`: a tenant's REST API tokens. A caller lists, creates and revokes the
//! tokens of its own tenant; another tenant's token is "not found". The install admin's
//! token may name another tenant with `tenant` (query parameter, or body field on `POST`).
//! A new token is in the answer to its `POST` only: the store keeps its digest.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use stsward_store::{TenantId, TokenId};

use super::routes::{Api, decode, method_not_allowed, now, read_body, read_json};
use super::tenants::admin_only;
use super::wire::{self, ApiError, json_response};
use crate::auth::{self, Caller, IssueError};

/// The tenant a call acts for: the caller's, or (install admin only) the one named.
async fn acting_for(
    api: &Api,
    caller: &Caller,
    named: Option<String>,
) -> Result<TenantId, ApiError> {
    let Some(name) = named else {
        return Ok(caller.tenant);
    };
    if !caller.install_admin {
        return Err(ApiError {
            field: Some("tenant".into()),
            ..admin_only()
        });
    }
    match api
        .service
        .store()
        .tenant_by_name(&name)
        .await
        .map_err(wire::store_error)?
    {
        Some(t) => Ok(t.id),
        None => Err(ApiError {
            field: Some("tenant".into()),
            ..ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "no tenant is called {:?}",
                    name.chars().take(64).collect::<String>()
                ),
            )
        }),
    }
}

/// The `tenant` query parameter; any other parameter is refused, naming it.
fn tenant_query<B>(request: &Request<B>) -> Result<Option<String>, ApiError> {
    let mut tenant = None;
    for pair in request.uri().query().unwrap_or("").split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key, "query")?;
        match key.as_str() {
            "tenant" => tenant = Some(decode(value, "tenant")?),
            other => {
                return Err(ApiError::invalid(
                    other,
                    format!("unknown query parameter {other:?}; expected tenant"),
                ));
            }
        }
    }
    Ok(tenant)
}

/// `GET /api/v1/tokens` lists; `POST {"name", "tenant"?}` creates (201).
pub(super) async fn collection<B>(
    request: Request<B>,
    api: &Api,
    caller: &Caller,
) -> Result<Response<Full<Bytes>>, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let store = api.service.store();
    match request.method().clone() {
        Method::GET => {
            let tenant = acting_for(api, caller, tenant_query(&request)?).await?;
            let tokens = store
                .api_token_list(tenant)
                .await
                .map_err(wire::store_error)?;
            Ok(json_response(StatusCode::OK, &json!({ "tokens": tokens })))
        }
        Method::POST => {
            let body = read_json(request, &api.limits).await?;
            wire::only(&body, &super::table::names(super::table::TOKEN_FIELDS))?;
            let name = wire::string(&body, "name")?
                .ok_or_else(|| ApiError::invalid("name", "name is required"))?;
            let tenant = acting_for(api, caller, wire::string(&body, "tenant")?).await?;
            let (stored, secret) = auth::issue(store, tenant, "name", &name, now())
                .await
                .map_err(|e| match e {
                    IssueError::Name(n) => ApiError::invalid("name", n.to_string()),
                    IssueError::TooMany => {
                        ApiError::new(StatusCode::CONFLICT, "too_many_tokens", e.to_string())
                    }
                    IssueError::Store(s) => wire::store_error(s),
                    other => wire::store_failure(&other),
                })?;
            let mut view = serde_json::to_value(&stored).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut view {
                map.insert("token".into(), Value::from(secret.token));
            }
            Ok(json_response(StatusCode::CREATED, &view))
        }
        m => Err(method_not_allowed(&m, "GET, POST")),
    }
}

/// `DELETE /api/v1/tokens/{id}[?tenant=]`: revokes (200, the token as stored now).
pub(super) async fn one<B>(
    request: Request<B>,
    api: &Api,
    caller: &Caller,
    id: &str,
) -> Result<Response<Full<Bytes>>, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = request.method().clone();
    if method != Method::DELETE {
        return Err(method_not_allowed(&method, "DELETE"));
    }
    let id = decode(id, "id")?
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(TokenId)
        .ok_or_else(|| ApiError::invalid("id", "id must be a token's number"))?;
    let named = tenant_query(&request)?;
    // A body, if any, is read (bounded) so the connection stays usable.
    read_body(request, &api.limits).await?;
    let tenant = acting_for(api, caller, named).await?;
    match api
        .service
        .store()
        .api_token_revoke(tenant, id, now())
        .await
        .map_err(wire::store_error)?
    {
        Some(token) => Ok(json_response(StatusCode::OK, &token)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("token {id} is not one of this tenant's tokens"),
        )),
    }
}
