//! The web dashboard (issue 9), served by `stsward serve` on the REST API's listener: every
//! path outside `/api/` comes here. Pages are rendered on the server (askama templates under
//! `templates/web/`) and their assets are embedded in the binary (`web::assets`).
//! `docs/dashboard.md` describes the pages.
//!
//! ```text
//! GET  /login                  the login form (no session needed)
//! POST /login                  user, password -> a session cookie, 303 to /
//! POST /logout                 csrf -> the session is deleted, 303 to /login
//! GET  /                       overview: every domain the user may see
//! GET  /domains/{d}            one domain: records, readiness, charts, reports, checks
//! POST /domains                csrf, domain, mode, mx (, tenant) -> hosted, 303 to its page
//! POST /domains/{d}/mode       csrf, mode -> a new policy version, 303 back
//! POST /domains/{d}/checks     csrf -> a check now (the API's limits and address filter),
//!                              303 to the page's check history
//! GET  /domains/{d}/policy     the policy editor: lint findings, the id a change would get
//! POST /domains/{d}/policy     csrf, text, action=preview|save (save: a new version)
//! POST /domains/{d}/sync-mx    csrf -> the mx lines from DNS, 303 to the editor
//! GET  /reports                received reports, filtered by domain, organisation, DKIM, dates
//! GET  /reports/{id}/raw       one report's raw input (?download=1: as a file)
//! GET  /quarantine            refused report inputs (install admins); POST …/{id}/release
//! GET  /tokens                REST API tokens; POST /tokens, /tokens/{id}/revoke (admins)
//! GET  /assets/{name}          embedded CSS, JavaScript and uPlot (no session needed)
//! ```
//!
//! Every page needs a session (`web::sessions`) and redirects to `/login` without one.
//! Every POST passes the `Origin` check and, with a session, the CSRF token check
//! (`web::csrf`); a failure is 403. A login goes through [`crate::auth::login`], so the
//! store-backed throttling applies to the form as to every other login.
//!
//! **Tenants.** A tenant's user acts for that tenant only: another tenant's domain or report
//! is "not found". An install admin sees every tenant; the pages of one domain name the
//! tenant in `?tenant=`.
//!
//! Time comes from the serve [`Clock`], so tests can move it.

pub mod assets;
pub mod csrf;
mod editor;
mod pages;
mod quarantine;
mod reports;
pub mod sessions;
mod templates;
mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use stsward_store::{Store, TenantId};

use crate::api::ApiLimits;
use crate::auth::{LoginError, LoginLimits};
use crate::config::{ReadinessSection, WebSection};
use crate::domains::{DomainError, DomainService};
use crate::serve::Clock;
use sessions::{Session, SessionError, SessionSettings};

/// The content security policy of every answer: only this site's scripts, styles, images
/// and form targets, and no framing. uPlot sets element styles from its script, hence the
/// inline styles.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Who the policy history says made a change through the dashboard (followed by the user).
pub const ACTOR: &str = "web";

/// The actor of `session`'s changes in the policy history: `web:<user>`.
pub(crate) fn actor(session: &Session) -> String {
    format!("{ACTOR}:{}", session.user.name)
}

/// What every dashboard request shares.
pub struct Web {
    /// The domain service (and its store).
    pub service: DomainService,
    /// The clock pages and sessions read.
    pub clock: Clock,
    /// Sessions and cookies.
    pub sessions: SessionSettings,
    /// The login throttling.
    pub login: LoginLimits,
    /// The criteria of readiness verdicts.
    pub readiness: ReadinessSection,
    /// Body size and request time bounds (the API's).
    pub limits: Arc<ApiLimits>,
    /// The checks a user starts from a domain page (the API's runner: the same address
    /// filter against server-side request forgery, and the same limits); `None`: none.
    pub checks: Option<Arc<crate::checks::CheckRunner>>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web")
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

impl Web {
    /// The dashboard with the settings of `[web]`.
    pub fn new(
        service: DomainService,
        clock: Clock,
        section: &WebSection,
        readiness: ReadinessSection,
        limits: Arc<ApiLimits>,
    ) -> Web {
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        Web {
            service,
            clock,
            sessions: SessionSettings {
                secure_cookies: section.secure_cookies,
                lifetime: secs(section.session_lifetime),
                idle: secs(section.session_idle),
            },
            login: LoginLimits::default(),
            readiness,
            limits,
            checks: None,
        }
    }

    /// Lets users start checks from a domain page with `runner`.
    pub fn with_checks(mut self, runner: Option<Arc<crate::checks::CheckRunner>>) -> Web {
        self.checks = runner;
        self
    }

    fn store(&self) -> &Store {
        self.service.store()
    }
}

/// Whether `path` is the dashboard's (everything outside the REST API's `/api/`).
pub fn owns(path: &str) -> bool {
    path != "/api" && !path.starts_with("/api/")
}

/// Why a dashboard request failed; each maps to one status and a page that shows no
/// internals.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    TooMany(String),
    #[error("{method} is not allowed here")]
    MethodNotAllowed { method: Method },
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("internal error")]
    Internal(String),
}

impl From<DomainError> for WebError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound { .. } => WebError::NotFound,
            DomainError::Name(_) | DomainError::Invalid { .. } | DomainError::Removing { .. } => {
                WebError::BadRequest(e.to_string())
            }
            DomainError::Store(
                stsward_store::StoreError::DomainTaken { .. }
                | stsward_store::StoreError::VersionConflict { .. },
            ) => WebError::Conflict(e.to_string()),
            DomainError::Store(stsward_store::StoreError::DomainNotFound { .. }) => {
                WebError::NotFound
            }
            DomainError::NoMx { .. } => WebError::BadRequest(e.to_string()),
            DomainError::NoDns { .. } | DomainError::Dns { .. } => {
                WebError::Unavailable(e.to_string())
            }
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl From<stsward_store::StoreError> for WebError {
    fn from(e: stsward_store::StoreError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<SessionError> for WebError {
    fn from(e: SessionError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<csrf::CsrfError> for WebError {
    fn from(e: csrf::CsrfError) -> Self {
        WebError::Forbidden(e.to_string())
    }
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::Conflict(_) => StatusCode::CONFLICT,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            WebError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn response(&self) -> Response<Full<Bytes>> {
        if let WebError::Internal(detail) = self {
            tracing::error!(error = %detail, "dashboard request failed");
        }
        let status = self.status();
        let body = templates::error_page(status, &self.to_string());
        html(status, body)
    }
}

/// An HTML answer with the dashboard's headers.
pub(crate) fn html(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(h);
    r
}

fn secure_headers(h: &mut http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// A 303 to `location` (a path of this site).
pub(crate) fn redirect(location: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(r.headers_mut());
    r
}

fn with_cookie(mut r: Response<Full<Bytes>>, cookie: &str) -> Response<Full<Bytes>> {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Answers a dashboard request from `peer`; never fails (every failure is a page).
pub async fn answer<B>(
    request: Request<B>,
    peer: SocketAddr,
    web: Arc<Web>,
) -> Response<Full<Bytes>>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let timeout = web.limits.request_timeout;
    match tokio::time::timeout(timeout, route(request, peer, &web)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => e.response(),
        Err(_) => {
            WebError::Internal(format!("the request took longer than {timeout:?}")).response()
        }
    }
}

/// The form fields of a POST body (`application/x-www-form-urlencoded`), read within the
/// body bounds; the first value of each name.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn read_form<B>(request: Request<B>, limits: &ApiLimits) -> Result<Form, WebError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let form_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form_type {
        return Err(WebError::BadRequest(
            "the form must be sent as application/x-www-form-urlencoded".into(),
        ));
    }
    let max = limits.max_body_bytes;
    let body = Limited::new(request.into_body(), max);
    let bytes = match tokio::time::timeout(limits.body_read_timeout, body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(WebError::TooLarge(max));
        }
        Ok(Err(e)) => {
            return Err(WebError::BadRequest(format!(
                "the form could not be read: {e}"
            )));
        }
        Err(_) => {
            return Err(WebError::BadRequest(
                "the form did not arrive in time".into(),
            ));
        }
    };
    Ok(Form(
        form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    ))
}

/// The query parameters of `request`.
pub(crate) fn query<B>(request: &Request<B>) -> Form {
    Form(
        form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}

async fn route<B>(
    request: Request<B>,
    peer: SocketAddr,
    web: &Web,
) -> Result<Response<Full<Bytes>>, WebError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if let Some(name) = path.strip_prefix("/assets/") {
        return match method {
            Method::GET | Method::HEAD => asset(name),
            m => Err(WebError::MethodNotAllowed { method: m }),
        };
    }
    let now = web.clock.now();
    if method == Method::POST {
        csrf::check_origin(request.headers(), web.sessions.secure_cookies)?;
    }
    if path == "/login" {
        return match method {
            Method::GET => {
                let session =
                    sessions::current(web.store(), &web.sessions, request.headers(), now).await?;
                if session.is_some() {
                    return Ok(redirect("/"));
                }
                Ok(html(StatusCode::OK, templates::login_page(None)))
            }
            Method::POST => login(request, peer, web, now).await,
            m => Err(WebError::MethodNotAllowed { method: m }),
        };
    }
    let Some(session) =
        sessions::current(web.store(), &web.sessions, request.headers(), now).await?
    else {
        return Ok(redirect("/login"));
    };
    if method == Method::POST {
        let form = read_form(request, &web.limits).await?;
        csrf::check_token(form.get("csrf"), &session.csrf_token)?;
        return post(&path, &form, &session, web, now).await;
    }
    if method != Method::GET && method != Method::HEAD {
        return Err(WebError::MethodNotAllowed { method });
    }
    let q = query(&request);
    pages::get(&path, &q, &session, web, now).await
}

async fn login<B>(
    request: Request<B>,
    peer: SocketAddr,
    web: &Web,
    now: i64,
) -> Result<Response<Full<Bytes>>, WebError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let form = read_form(request, &web.limits).await?;
    let name = form.get("user").unwrap_or("");
    let password = form.get("password").unwrap_or("");
    match crate::auth::login(web.store(), &web.login, name, password, peer.ip(), now).await {
        Ok(user) => {
            let (id, _) = sessions::start(web.store(), &web.sessions, user, now).await?;
            Ok(with_cookie(redirect("/"), &web.sessions.set_cookie(&id)))
        }
        Err(e @ LoginError::Refused) => Ok(html(
            StatusCode::UNAUTHORIZED,
            templates::login_page(Some(&e.to_string())),
        )),
        Err(e @ LoginError::Throttled { retry_after_secs }) => {
            let mut r = html(
                StatusCode::TOO_MANY_REQUESTS,
                templates::login_page(Some(&e.to_string())),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(r)
        }
        Err(e) => Err(WebError::Internal(e.to_string())),
    }
}

async fn post(
    path: &str,
    form: &Form,
    session: &Session,
    web: &Web,
    now: i64,
) -> Result<Response<Full<Bytes>>, WebError> {
    if path == "/logout" {
        web.store().web_session_delete(&session.digest).await?;
        return Ok(with_cookie(
            redirect("/login"),
            &web.sessions.clear_cookie(),
        ));
    }
    if path == "/domains" {
        return add_domain(form, session, web, now).await;
    }
    if let Some(rest) = path.strip_prefix("/quarantine/") {
        return quarantine::release(rest, session, web, now).await;
    }
    if let Some(rest) = path.strip_prefix("/tokens") {
        return tokens::post(rest, form, session, web, now).await;
    }
    if let Some(domain) = path
        .strip_prefix("/domains/")
        .and_then(|r| r.strip_suffix("/sync-mx"))
    {
        return editor::sync_mx(&pages::decode(domain)?, form, session, web, now).await;
    }
    if let Some(domain) = path
        .strip_prefix("/domains/")
        .and_then(|r| r.strip_suffix("/policy"))
    {
        return editor::post(&pages::decode(domain)?, form, session, web, now).await;
    }
    if let Some(domain) = path
        .strip_prefix("/domains/")
        .and_then(|r| r.strip_suffix("/checks"))
    {
        return run_check(&pages::decode(domain)?, form, session, web).await;
    }
    if let Some(domain) = path
        .strip_prefix("/domains/")
        .and_then(|r| r.strip_suffix("/mode"))
    {
        let domain = pages::decode(domain)?;
        let tenant = pages::tenant_of(web, session, form.get("tenant")).await?;
        let mode = form
            .get("mode")
            .ok_or_else(|| WebError::BadRequest("the form has no mode".into()))?;
        let change = crate::domains::PolicyChange {
            mode: Some(mode.to_owned()),
            mx: None,
            max_age: None,
            note: Some(format!(
                "mode set in the dashboard by {}",
                session.user.name
            )),
        };
        let actor = actor(session);
        web.service
            .set(tenant.id, &domain, &change, &actor, now)
            .await?;
        return Ok(redirect(&pages::domain_link(&domain, &tenant, session)));
    }
    Err(WebError::NotFound)
}

/// `POST /domains/{d}/checks`: checks the domain now, as `POST /api/v1/domains/{d}/checks`
/// does (the tenant's and the server's limits: 429 and 503), and shows the domain page, whose
/// check history starts with this run.
async fn run_check(
    domain: &str,
    form: &Form,
    session: &Session,
    web: &Web,
) -> Result<Response<Full<Bytes>>, WebError> {
    let tenant = pages::tenant_of(web, session, form.get("tenant")).await?;
    let name = crate::domains::names::domain_name(domain)
        .map_err(|e| WebError::BadRequest(e.to_string()))?;
    if web
        .store()
        .hosted_domain_get(tenant.id, &name)
        .await?
        .is_none()
    {
        return Err(WebError::NotFound);
    }
    let runner = web
        .checks
        .as_ref()
        .ok_or_else(|| WebError::Unavailable("checks cannot run on this server".into()))?;
    let slot = runner.try_start(tenant.id).map_err(|busy| match busy {
        crate::checks::Busy::Tenant { .. } => WebError::TooMany(busy.to_string()),
        crate::checks::Busy::Overall { .. } => WebError::Unavailable(busy.to_string()),
    })?;
    runner
        .run(slot, web.store(), tenant.id, &name)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(redirect(&format!(
        "{}#checks",
        pages::domain_link(&name, &tenant, session)
    )))
}

/// `POST /domains`: hosts a new domain for the session's tenant (an install admin names
/// one), with the `mx` patterns given (space, comma or line separated) or, when none are,
/// those of its MX records.
async fn add_domain(
    form: &Form,
    session: &Session,
    web: &Web,
    now: i64,
) -> Result<Response<Full<Bytes>>, WebError> {
    let tenant = pages::tenant_of(web, session, form.get("tenant")).await?;
    let domain = form.get("domain").unwrap_or("").trim();
    let mx: Vec<String> = form
        .get("mx")
        .unwrap_or("")
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    let add = crate::domains::AddDomain {
        domain: domain.to_owned(),
        mode: form
            .get("mode")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        mx: (!mx.is_empty()).then_some(crate::domains::MxInput::Patterns(mx)),
        max_age: None,
        follow_mx: false,
    };
    let actor = actor(session);
    let change = web.service.add(tenant.id, &add, &actor, now).await?;
    Ok(redirect(&pages::domain_link(
        &change.domain,
        &tenant,
        session,
    )))
}

fn asset(name: &str) -> Result<Response<Full<Bytes>>, WebError> {
    let a = assets::find(name).ok_or(WebError::NotFound)?;
    let mut r = Response::new(Full::new(Bytes::from_static(a.body)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    secure_headers(h);
    Ok(r)
}

/// A tenant a session acts for: its id and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TenantRef {
    pub id: TenantId,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::owns;

    #[test]
    fn the_rest_api_keeps_api_and_everything_below() {
        for (path, web) in [
            ("/", true),
            ("/login", true),
            ("/domains/a.example", true),
            ("/apis", true),
            ("/api", false),
            ("/api/", false),
            ("/api/v1/domains", false),
            ("/api/v1/health", false),
        ] {
            assert_eq!(owns(path), web, "{path}");
        }
    }
}
