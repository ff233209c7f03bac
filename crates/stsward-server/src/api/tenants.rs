//! `/api/v1/tenants`: listing, creating and reading tenants, for the install admin's token only (a
//! provider creates a tenant per customer, then a token for it on `/api/v1/tokens`).

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::json;

use super::routes::{Api, PREFIX, decode, method_not_allowed, now, read_json};
use super::wire::{self, ApiError, json_response};
use crate::auth::{self, Caller};

/// 403 for a tenant's token on an install admin's route.
pub(super) fn admin_only() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "only the install admin's token (api.token) may do this",
    )
}

/// `GET` lists every tenant; `POST {"name"}` creates one (201, `Location`).
pub(super) async fn route<B>(
    request: Request<B>,
    api: &Api,
    caller: &Caller,
) -> Result<Response<Full<Bytes>>, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = request.method().clone();
    if !matches!(method, Method::GET | Method::POST) {
        return Err(method_not_allowed(&method, "GET, POST"));
    }
    if !caller.install_admin {
        return Err(admin_only());
    }
    let store = api.service.store();
    if method == Method::GET {
        let tenants = store.tenant_list().await.map_err(wire::store_error)?;
        return Ok(json_response(
            StatusCode::OK,
            &json!({ "tenants": tenants }),
        ));
    }
    let body = read_json(request, &api.limits).await?;
    wire::only(&body, &super::table::names(super::table::TENANT_FIELDS))?;
    let name = wire::string(&body, "name")?
        .ok_or_else(|| ApiError::invalid("name", "name is required"))?;
    auth::check_name("name", &name).map_err(|e| ApiError::invalid("name", e.to_string()))?;
    let tenant = store
        .tenant_create(&name, now())
        .await
        .map_err(wire::store_error)?;
    let mut r = json_response(StatusCode::CREATED, &tenant);
    if let Ok(v) = HeaderValue::from_str(&format!("{PREFIX}/tenants/{}", tenant.name)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// `GET /api/v1/tenants/{name}`: one tenant (the `Location` of a created one).
pub(super) async fn one<B>(
    request: Request<B>,
    api: &Api,
    caller: &Caller,
    name: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let method = request.method().clone();
    if method != Method::GET {
        return Err(method_not_allowed(&method, "GET"));
    }
    if !caller.install_admin {
        return Err(admin_only());
    }
    let name = decode(name, "name")?;
    match api
        .service
        .store()
        .tenant_by_name(&name)
        .await
        .map_err(wire::store_error)?
    {
        Some(tenant) => Ok(json_response(StatusCode::OK, &tenant)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no tenant is called {:?}",
                name.chars().take(64).collect::<String>()
            ),
        )),
    }
}
