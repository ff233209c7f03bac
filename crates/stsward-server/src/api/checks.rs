//! `/api/v1/domains/{domain}/checks`: a tenant runs a check of one of its hosted domains
//! (`POST`) and lists the past runs (`GET`, newest first). Another tenant's domain is "not
//! found". The check never connects to non-global addresses unless `[checks] allow_ranges`
//! allows them (issue 9, no server-side request forgery; see `crate::checks`). Beyond
//! `max_per_tenant` running checks of the tenant the answer is 429, beyond `max_concurrent`
//! of all tenants 503, both with `Retry-After` (RFC 9110 §10.2.3).

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};
use stsward_store::{CheckRun, TenantId};

use super::routes::{Api, decode, read_body};
use super::wire::{self, ApiError, json_response};
use crate::checks::Busy;
use crate::domains::names::domain_name;

/// Runs listed by `GET` unless `limit` says otherwise.
pub const DEFAULT_RUNS: u32 = 20;
/// Seconds a refused caller is asked to wait.
const RETRY_AFTER: &str = "5";

/// The domain of the path, normalised; 404 unless `tenant` hosts it.
pub(super) async fn hosted(api: &Api, tenant: TenantId, raw: &str) -> Result<String, ApiError> {
    let name = domain_name(raw).map_err(|e| ApiError::invalid("domain", e.to_string()))?;
    let found = api
        .service
        .store()
        .hosted_domain_get(tenant, &name)
        .await
        .map_err(wire::store_error)?;
    match found {
        Some(d) => Ok(d.domain),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{name} is not a hosted domain"),
        )),
    }
}

fn view(run: &CheckRun, error: Option<&str>) -> Value {
    let findings: Value = serde_json::from_str(&run.findings).unwrap_or(Value::Array(Vec::new()));
    let mut v = json!({
        "id": run.id,
        "domain": run.domain,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "verdict": run.verdict,
        "findings": findings,
    });
    if let (Some(e), Some(obj)) = (error, v.as_object_mut()) {
        obj.insert("error".into(), Value::from(e));
    }
    v
}

fn busy(b: Busy) -> Response<Full<Bytes>> {
    let (status, code) = match b {
        Busy::Tenant { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_checks"),
        Busy::Overall { .. } => (StatusCode::SERVICE_UNAVAILABLE, "checks_busy"),
    };
    let mut r = ApiError::new(status, code, b.to_string()).response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
    r
}

/// `POST`: runs the check now and answers with the stored run (201).
pub(super) async fn run<B>(
    request: Request<B>,
    api: &Api,
    tenant: TenantId,
    raw: &str,
) -> Result<Response<Full<Bytes>>, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // No body is needed; one is read (bounded) so the connection stays usable.
    read_body(request, &api.limits).await?;
    let domain = hosted(api, tenant, &decode(raw, "domain")?).await?;
    let runner = api.checks.as_ref().map_err(|why| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "checks_unavailable",
            format!("checks cannot run on this server: {why}"),
        )
    })?;
    let slot = match runner.try_start(tenant) {
        Ok(s) => s,
        Err(b) => return Ok(busy(b)),
    };
    let outcome = runner
        .run(slot, api.service.store(), tenant, &domain)
        .await
        .map_err(wire::store_error)?;
    match outcome {
        Some(o) => Ok(json_response(
            StatusCode::CREATED,
            &view(&o.run, o.error.as_deref()),
        )),
        // Removed while it was being checked.
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{domain} is not a hosted domain"),
        )),
    }
}

/// `GET ?limit=N`: the past runs, newest first.
pub(super) async fn list<B>(
    request: &Request<B>,
    api: &Api,
    tenant: TenantId,
    raw: &str,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let mut limit = DEFAULT_RUNS;
    for pair in request.uri().query().unwrap_or("").split('&') {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match decode(key, "query")?.as_str() {
            "limit" => {
                limit = decode(value, "limit")?
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid("limit", "limit must be a number from 1 to 1000")
                    })?;
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    format!("unknown query parameter {other:?}; expected limit"),
                ));
            }
        }
    }
    let domain = hosted(api, tenant, &decode(raw, "domain")?).await?;
    let runs = match &api.checks {
        Ok(runner) => {
            runner
                .list(api.service.store(), tenant, &domain, limit)
                .await
        }
        Err(_) => {
            api.service
                .store()
                .check_run_list(tenant, &domain, limit)
                .await
        }
    }
    .map_err(wire::store_error)?;
    let runs: Vec<Value> = runs.iter().map(|r| view(r, None)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "domain": domain, "runs": runs }),
    ))
}
