//! One request: the bearer check (RFC 6750 §2.1 header, §3 challenge), the route, the body
//! under its bounds, and the call into [`DomainService`] for the caller's tenant. The JSON
//! views are the ones `stsward domain … --json` prints.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use stsward_store::TenantId;

use super::ApiLimits;
use super::table;
use super::wire::{self, ApiError, JSON, json_response};
use crate::auth::bearer::{self, BearerError, Caller};
use crate::domains::DomainService;

/// The Prometheus endpoint's path.
pub const METRICS_PATH: &str = "/metrics";

/// `GET /metrics`: the exposition, or 404 without `[metrics]`.
async fn metrics(api: &Api) -> Result<Response<Full<Bytes>>, ApiError> {
    let Some(endpoint) = &api.metrics else {
        return Err(not_found(METRICS_PATH));
    };
    let text = endpoint.render(now()).await.map_err(wire::store_error)?;
    let mut response = Response::new(Full::new(Bytes::from(text.as_bytes().to_vec())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    Ok(response)
}

/// The OpenAPI document, made once.
static OPENAPI: std::sync::LazyLock<Value> = std::sync::LazyLock::new(super::openapi::document);

/// The path every route starts with.
pub const PREFIX: &str = "/api/v1";
/// Who the policy history says made a change through the API.
pub const ACTOR: &str = "api";
/// Domains in one page of `GET /api/v1/domains` unless `limit` says otherwise.
pub const DEFAULT_PAGE: u32 = 100;
/// The most domains in one page.
pub const MAX_PAGE: u32 = 1000;
/// How long the health check waits for the store.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// What every request shares.
pub(super) struct Api {
    pub service: DomainService,
    /// SHA-256 of the token: compared in constant time, and of one length whatever was sent.
    pub token_digest: digest::Digest,
    /// The default tenant: the one the configured token acts for.
    pub tenant: TenantId,
    pub limits: Arc<ApiLimits>,
    /// Tenant-requested checks, or why they cannot run on this server.
    pub checks: Result<Arc<crate::checks::CheckRunner>, String>,
    /// The criteria of readiness verdicts (`[readiness]`).
    pub readiness: crate::config::ReadinessSection,
    /// The Prometheus endpoint, with `[metrics]`.
    pub metrics: Option<Arc<crate::metrics::MetricsEndpoint>>,
    /// Whether the API's own listeners answer `/metrics` too.
    pub metrics_on_api: bool,
    /// The dashboard, served for paths outside `/api/` (`crate::web`), when `[web]` is on.
    pub web: Option<Arc<crate::web::Web>>,
}

pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Answers `request`; never fails (every failure is a JSON error response).
pub(super) async fn answer<B>(
    request: Request<B>,
    api: Arc<Api>,
    role: super::Role,
) -> Response<Full<Bytes>>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let timeout = api.limits.request_timeout;
    match tokio::time::timeout(timeout, route(request, &api, role)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => e.response(),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {timeout:?}"),
        )
        .response(),
    }
}

pub(super) fn method_not_allowed(method: &Method, allow: &'static str) -> ApiError {
    ApiError {
        allow: Some(allow.to_owned()),
        ..ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed here; allowed: {allow}"),
        )
    }
}

fn not_found(path: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!(
            "no such API path: {}",
            path.chars().take(200).collect::<String>()
        ),
    )
}

/// The bearer token of RFC 6750 §2.1: the configured install-wide token, or a tenant's token
/// from the store, which decides the tenant every call acts for (see `crate::auth::bearer`).
async fn authenticate<B>(request: &Request<B>, api: &Api) -> Result<Caller, ApiError> {
    let refuse =
        |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message.to_owned());
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| refuse("an Authorization: Bearer token is required"))?;
    let value = value
        .to_str()
        .map_err(|_| refuse("the Authorization header is not ASCII"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| refuse("the Authorization header is not \"Bearer <token>\""))?;
    // RFC 9110 §11.1: the scheme is case-insensitive.
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(refuse("the Authorization scheme must be Bearer"));
    }
    let checked = bearer::authenticate(
        api.service.store(),
        Some(&api.token_digest),
        api.tenant,
        token.trim(),
        now(),
    )
    .await;
    match checked {
        Ok(caller) => Ok(caller),
        Err(e @ (BearerError::Invalid | BearerError::Revoked)) => Err(refuse(&e.to_string())),
        Err(e) => Err(wire::store_failure(&e)),
    }
}

/// A path segment percent-decoded as UTF-8 (RFC 3986 §2.1).
pub(super) fn decode(segment: &str, field: &str) -> Result<String, ApiError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::invalid(field, format!("{field} is not UTF-8 once decoded")))
}

async fn route<B>(
    request: Request<B>,
    api: &Api,
    role: super::Role,
) -> Result<Response<Full<Bytes>>, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if path == METRICS_PATH && (role == super::Role::MetricsOnly || api.metrics_on_api) {
        if method != Method::GET {
            return Err(method_not_allowed(&method, "GET"));
        }
        return metrics(api).await;
    }
    if role == super::Role::MetricsOnly {
        return Err(not_found(&path));
    }
    // The route table lets through only what it lists (and the OpenAPI document shows).
    let found = table::find(&method, &path);
    if table::is_public(&path) {
        found?;
        return Ok(health(api).await);
    }
    let caller = authenticate(&request, api).await?;
    if found?.id == "openapi" {
        return Ok(json_response(StatusCode::OK, &*OPENAPI));
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Err(not_found(&path));
    };
    if let Some(rest) = rest.strip_prefix("/tenants") {
        return match rest {
            "" | "/" => super::tenants::route(request, api, &caller).await,
            _ => match rest.strip_prefix('/') {
                Some(name) if !name.contains('/') => {
                    super::tenants::one(request, api, &caller, name).await
                }
                _ => Err(not_found(&path)),
            },
        };
    }
    if let Some(rest) = rest.strip_prefix("/tokens") {
        return match rest {
            "" | "/" => super::tokens::collection(request, api, &caller).await,
            _ => match rest.strip_prefix('/') {
                Some(id) if !id.contains('/') => {
                    super::tokens::one(request, api, &caller, id).await
                }
                _ => Err(not_found(&path)),
            },
        };
    }
    if rest == "/alerts" {
        return super::alerts::list(&request, api, caller.tenant, None).await;
    }
    let Some(rest) = rest.strip_prefix("/domains") else {
        return Err(not_found(&path));
    };
    let s = &api.service;
    let t = caller.tenant;
    if rest.is_empty() || rest == "/" {
        return match method {
            Method::GET => list(&request, api, t).await,
            Method::POST => {
                let body = read_json(request, &api.limits).await?;
                let add = wire::add_request(&body)?;
                let change = s.add(t, &add, ACTOR, now()).await?;
                let mut r = json_response(StatusCode::CREATED, &change);
                let location = format!("{PREFIX}/domains/{}", change.domain);
                if let Ok(v) = HeaderValue::from_str(&location) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                Ok(r)
            }
            _ => Err(method_not_allowed(&method, "GET, POST")),
        };
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err(not_found(&path));
    };
    let (segment, action) = match rest.split_once('/') {
        Some((d, a)) => (d, Some(a)),
        None => (rest, None),
    };
    let domain = decode(segment, "domain")?;
    match (action, method) {
        (None, Method::GET) => Ok(json_response(
            StatusCode::OK,
            &s.show(t, &domain, now()).await?,
        )),
        (None, Method::PATCH) => {
            let body = read_json(request, &api.limits).await?;
            let (change, options) = wire::patch_request(&body)?;
            patch(api, t, &domain, &change, &options).await
        }
        (None, Method::DELETE) => {
            let at = now();
            let change = s.remove(t, &domain, ACTOR, at).await?;
            let detail = s.show(t, &change.domain, at).await?;
            Ok(json_response(
                StatusCode::ACCEPTED,
                &json!({
                    "domain": change.domain,
                    "version": change.version,
                    "state": detail.state,
                    "gone_at": detail.gone_at,
                }),
            ))
        }
        (None, m) => Err(method_not_allowed(&m, "GET, PATCH, DELETE")),
        (Some("sync-mx"), Method::POST) => {
            // No body is needed; one is read (bounded) so the connection stays usable.
            read_body(request, &api.limits).await?;
            Ok(json_response(
                StatusCode::OK,
                &s.sync_mx(t, &domain, ACTOR, now()).await?,
            ))
        }
        (Some("sync-mx"), m) => Err(method_not_allowed(&m, "POST")),
        (Some("records"), Method::GET) => {
            Ok(json_response(StatusCode::OK, &s.records(t, &domain).await?))
        }
        (Some("records"), m) => Err(method_not_allowed(&m, "GET")),
        (Some("checks"), Method::POST) => super::checks::run(request, api, t, segment).await,
        (Some("checks"), Method::GET) => super::checks::list(&request, api, t, segment).await,
        (Some("checks"), m) => Err(method_not_allowed(&m, "GET, POST")),
        (Some("readiness"), Method::GET) => {
            let verdict =
                crate::readiness::gather::readiness(s.store(), t, &domain, now(), &api.readiness)
                    .await?;
            Ok(json_response(StatusCode::OK, &verdict))
        }
        (Some("readiness"), m) => Err(method_not_allowed(&m, "GET")),
        (Some("alerts"), _) => super::alerts::list(&request, api, t, Some(segment)).await,
        (Some(_), _) => Err(not_found(&path)),
    }
}

/// `PATCH`: options are checked first, the policy change (validated by the service) is
/// written, and only then the options, so invalid input of either kind changes nothing.
async fn patch(
    api: &Api,
    t: TenantId,
    domain: &str,
    change: &crate::domains::PolicyChange,
    options: &crate::domains::DomainOptions,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let s = &api.service;
    if let Some(Some(rua)) = &options.tlsrpt_rua {
        crate::config::check_rua(rua).map_err(|reason| ApiError::invalid("tlsrpt_rua", reason))?;
    }
    let policy = change.mode.is_some() || change.mx.is_some() || change.max_age.is_some();
    let at = now();
    let written = if policy {
        Some(s.set(t, domain, change, ACTOR, at).await?)
    } else {
        None
    };
    if !options.is_empty() {
        s.set_options(t, domain, options).await?;
    }
    match written {
        Some(change) => Ok(json_response(StatusCode::OK, &change)),
        None => Ok(json_response(StatusCode::OK, &s.show(t, domain, at).await?)),
    }
}

/// `GET /api/v1/domains?after=NAME&limit=N`: one keyset page and the cursor of the next.
async fn list<B>(
    request: &Request<B>,
    api: &Api,
    t: TenantId,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let mut after: Option<String> = None;
    let mut limit = DEFAULT_PAGE;
    for pair in request.uri().query().unwrap_or("").split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key, "query")?;
        let value = decode(value, &key)?;
        match key.as_str() {
            "after" if !value.is_empty() => after = Some(value),
            "after" => {}
            "limit" => {
                limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "limit",
                            format!("limit must be a number from 1 to {MAX_PAGE}"),
                        )
                    })?;
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    format!("unknown query parameter {other:?}; expected after, limit"),
                ));
            }
        }
    }
    if after.as_ref().is_some_and(|a| a.len() > 253) {
        return Err(ApiError::invalid(
            "after",
            "after is longer than a domain name",
        ));
    }
    let page = api
        .service
        .list_page(t, after.as_deref(), limit, now())
        .await?;
    let next = if page.len() == limit as usize {
        page.last().map(|d| d.domain.clone())
    } else {
        None
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({ "domains": page, "next_after": next }),
    ))
}

/// `GET /api/v1/health`: 200 when the store answers a read in time, 503 otherwise.
async fn health(api: &Api) -> Response<Full<Bytes>> {
    let probe = api.service.list_page(api.tenant, None, 1, now());
    match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
        Ok(Ok(_)) => json_response(StatusCode::OK, &json!({ "status": "ok" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "REST API health: the store failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "unavailable", "reason": "the store does not answer" }),
            )
        }
        Err(_) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "unavailable", "reason": "the store did not answer in time" }),
        ),
    }
}

fn too_large(limits: &ApiLimits) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the body is larger than {} bytes", limits.max_body_bytes),
    )
}

/// Whether `Content-Length` alone says the body is over the limit (refused unread).
fn declared_too_large<B>(request: &Request<B>, limits: &ApiLimits) -> bool {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limits.max_body_bytes as u64)
}

/// The body, at most `max_body_bytes`, within `body_read_timeout`.
pub(super) async fn read_body<B>(request: Request<B>, limits: &ApiLimits) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if declared_too_large(&request, limits) {
        return Err(too_large(limits));
    }
    let body = Limited::new(request.into_body(), limits.max_body_bytes);
    match tokio::time::timeout(limits.body_read_timeout, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(too_large(limits))
            } else {
                Err(ApiError::invalid(
                    "body",
                    format!("the body could not be read: {e}"),
                ))
            }
        }
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the body did not arrive within {:?}",
                limits.body_read_timeout
            ),
        )),
    }
}

/// The body as a JSON object; the content type must be `application/json`.
pub(super) async fn read_json<B>(
    request: Request<B>,
    limits: &ApiLimits,
) -> Result<serde_json::Map<String, Value>, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != JSON {
        if declared_too_large(&request, limits) {
            return Err(too_large(limits));
        }
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the body must be {JSON}, not {content_type:?}"),
        ));
    }
    let body = read_body(request, limits).await?;
    wire::object(&body)
}
