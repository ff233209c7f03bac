//! `GET /api/v1/alerts` and `GET /api/v1/domains/{domain}/alerts`: the caller's tenant's
//! alerts (issue 9), newest first, from `Store::alert_list`. Another tenant's domain is "not
//! found", and its alerts are never listed.
//!
//! ```text
//! ?open=true|false   only open alerts (default false: open and resolved)
//! ?limit=N           1 to 1000 (default 100)
//! ```

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;
use stsward_store::TenantId;

use super::checks::hosted;
use super::routes::{Api, decode, method_not_allowed};
use super::wire::{self, ApiError, json_response};

/// Alerts listed unless `limit` says otherwise.
pub const DEFAULT_ALERTS: u32 = 100;

/// The query of a listing.
struct Query {
    open: bool,
    limit: u32,
}

fn query<B>(request: &Request<B>) -> Result<Query, ApiError> {
    let mut q = Query {
        open: false,
        limit: DEFAULT_ALERTS,
    };
    let pairs = request.uri().query().unwrap_or("").split('&');
    for (key, value) in pairs
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
    {
        let value = decode(value, key)?;
        match decode(key, "query")?.as_str() {
            "open" => {
                q.open = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::invalid("open", "open is true or false")),
                };
            }
            "limit" => {
                q.limit = match value.parse::<u32>() {
                    Ok(n) if (1..=1000).contains(&n) => n,
                    _ => {
                        return Err(ApiError::invalid(
                            "limit",
                            "limit must be a number from 1 to 1000",
                        ));
                    }
                };
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    format!("unknown query parameter {other:?}; expected open or limit"),
                ));
            }
        }
    }
    Ok(q)
}

/// Lists `tenant`'s alerts: of one hosted domain (`raw`, from the path) or of all.
pub(super) async fn list<B>(
    request: &Request<B>,
    api: &Api,
    tenant: TenantId,
    raw: Option<&str>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    if request.method() != Method::GET {
        return Err(method_not_allowed(request.method(), "GET"));
    }
    let q = query(request)?;
    let domain = match raw {
        Some(raw) => Some(hosted(api, tenant, &decode(raw, "domain")?).await?),
        None => None,
    };
    let alerts = api
        .service
        .store()
        .alert_list(tenant, domain.as_deref(), q.open, q.limit)
        .await
        .map_err(wire::store_error)?;
    let body = match &domain {
        Some(d) => json!({ "domain": d, "alerts": alerts }),
        None => json!({ "alerts": alerts }),
    };
    Ok(json_response(StatusCode::OK, &body))
}
