//! The REST API over the domain service: the same [`DomainService`] calls as
//! `stsward domain`, as JSON over HTTP/1.1 (RFC 9110 semantics, RFC 9112 messages), with a
//! bearer token (RFC 6750 §2.1) from `[api]` in the configuration. `docs/api.md` lists the
//! routes.
//!
//! ```text
//! GET    /api/v1/health                       no token; 200 when the store answers, else 503
//! GET    /metrics                             no token; Prometheus (`crate::metrics`), with
//!                                              `[metrics]`; also on listeners of its own
//! GET    /api/v1/openapi.json                 the OpenAPI 3.0.3 document, made from the route
//!                                              table (`table`) that gates every request
//! GET    /api/v1/domains?after=&limit=        one page of the tenant's domains
//! POST   /api/v1/domains                      add (201, Location)
//! GET    /api/v1/domains/{domain}             show, with the history
//! PATCH  /api/v1/domains/{domain}             mode, mx, max_age, note, follow_mx, tlsrpt_rua,
//!                                              own_sts_txt
//! DELETE /api/v1/domains/{domain}             safe removal (RFC 8461 §8.3), 202
//! POST   /api/v1/domains/{domain}/sync-mx     mx lines from DNS
//! GET    /api/v1/domains/{domain}/records     the records to publish
//! POST   /api/v1/domains/{domain}/checks      run a check now (201; 429/503 + Retry-After
//!                                              beyond the limits of `[checks]`)
//! GET    /api/v1/domains/{domain}/checks      past runs, newest first
//! GET    /api/v1/domains/{domain}/readiness   the verdict on moving to enforce, with each
//!                                              criterion's evidence (`crate::readiness`)
//! GET    /api/v1/domains/{domain}/alerts      the domain's alerts, newest first (?open, ?limit)
//! GET    /api/v1/alerts                       the tenant's alerts, newest first (?open, ?limit)
//! GET    /api/v1/tenants                      every tenant (install admin token only)
//! POST   /api/v1/tenants                      create a tenant (install admin token only), 201
//! GET    /api/v1/tenants/{name}               one tenant (install admin token only)
//! GET    /api/v1/tokens                       the caller's tenant's API tokens
//! POST   /api/v1/tokens                       a new token for the caller's tenant, 201; the
//!                                              token is in this answer only
//! DELETE /api/v1/tokens/{id}                  revoke one of the caller's tenant's tokens
//! ```
//!
//! Every path outside `/api/` belongs to the web dashboard ([`crate::web`]) when `[web]` is
//! on ([`ApiServer::with_web`]): the same listeners, limits and shutdown serve both.
//!
//! It speaks plain HTTP: keep it on loopback (the default, `127.0.0.1:8480`) or behind a
//! TLS-terminating proxy. The connection rules are the policy host's (see `host`):
//! at most [`ApiLimits::max_connections`] at once (the rest wait in the listen backlog), each
//! request head within [`ApiLimits::header_read_timeout`] (also the keep-alive idle time), each
//! body at most [`ApiLimits::max_body_bytes`] within [`ApiLimits::body_read_timeout`], each
//! request answered within [`ApiLimits::request_timeout`], each connection closed at
//! [`ApiLimits::connection_lifetime`]. On shutdown the listeners close and requests in flight
//! finish for up to [`ApiLimits::shutdown_grace`].
//!
//! Every request acts for one tenant, passed explicitly to every service call: the tenant of
//! its token (`crate::auth::bearer`). A tenant's token reaches only that tenant's domains
//! and tokens; another tenant's are "not found". The configured `[api]` token is the install
//! admin's: it acts for the default tenant, manages tenants, and may name another tenant
//! (`tenant`) on the token routes.

mod alerts;
mod checks;
pub mod openapi;
mod routes;
pub mod table;
mod tenants;
mod tokens;
mod wire;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::checks::CheckRunner;
use crate::config::{ChecksSection, MetricsSection, ReadinessSection, Secret, WebSection};
use crate::domains::{DomainError, DomainService};
use crate::listen;
use crate::metrics::{MetricsEndpoint, MetricsSettings};

pub use routes::{ACTOR, DEFAULT_PAGE, MAX_PAGE, PREFIX};
pub use wire::{ApiError, JSON};

/// The kernel's queue of connections not yet accepted, per listener.
pub const LISTEN_BACKLOG: i32 = 128;

/// hyper's smallest read buffer (it refuses a smaller `max_buf_size`).
const MIN_BUF_SIZE: usize = 8192;

/// A pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The bounds of the API's listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLimits {
    /// Time to receive a complete request head; also how long a kept-alive connection may
    /// sit idle between requests.
    pub header_read_timeout: Duration,
    /// Time to receive a request body once its head is in.
    pub body_read_timeout: Duration,
    /// Time to answer a request (body read and service call); then 503.
    pub request_timeout: Duration,
    /// The longest a connection may live, however busy.
    pub connection_lifetime: Duration,
    /// Connections served at once, over every listener.
    pub max_connections: usize,
    /// The largest request body, in octets; larger gets 413.
    pub max_body_bytes: usize,
    /// The largest request head (request line and headers), in octets; larger gets 431.
    pub max_head_bytes: usize,
    /// The most header fields in one request; more gets 431.
    pub max_headers: usize,
    /// How long [`ApiServer::run`] waits for requests in flight after the shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            // MX lookups are bounded by the DNS client, store calls by the store; this is the
            // backstop over both.
            request_timeout: Duration::from_secs(30),
            connection_lifetime: Duration::from_secs(300),
            max_connections: 256,
            max_body_bytes: 64 * 1024,
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiStartError {
    /// No token is configured: the API does not run open.
    #[error(
        "the REST API needs a bearer token: set api.token or api.token_file in the configuration"
    )]
    NoToken,
    /// A listen address could not be bound.
    #[error("binding api.listen {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// `max_connections` is zero or too large for a semaphore.
    #[error("max_connections {0} must be between 1 and {max}", max = Semaphore::MAX_PERMITS)]
    MaxConnections(usize),
    /// The tenant the API acts for could not be read.
    #[error("reading the tenant the REST API acts for")]
    Tenant(#[source] DomainError),
}

/// The bound listeners, ready to [`run`](ApiServer::run).
#[derive(Debug)]
pub struct ApiServer {
    listeners: Vec<TcpListener>,
    limits: ApiLimits,
    checks: ChecksSection,
    runner: Option<Arc<CheckRunner>>,
    readiness: ReadinessSection,
    metrics: Option<MetricsSection>,
    metrics_listeners: Vec<TcpListener>,
    /// The dashboard's settings and the clock its pages read; `None`: no dashboard.
    web: Option<(WebSection, crate::serve::Clock)>,
}

impl ApiServer {
    /// Binds `addrs` (port 0 picks a free port; see [`addrs`](ApiServer::addrs)). IPv6
    /// sockets are IPv6-only, so `0.0.0.0:P` and `[::]:P` can both be given. Must be called
    /// inside a Tokio runtime.
    pub fn bind(addrs: &[SocketAddr], limits: ApiLimits) -> Result<ApiServer, ApiStartError> {
        if limits.max_connections == 0 || limits.max_connections > Semaphore::MAX_PERMITS {
            return Err(ApiStartError::MaxConnections(limits.max_connections));
        }
        let listeners = addrs
            .iter()
            .map(|&addr| {
                listen::tcp(addr, LISTEN_BACKLOG)
                    .map_err(|source| ApiStartError::Bind { addr, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ApiServer {
            listeners,
            limits,
            checks: ChecksSection::default(),
            runner: None,
            readiness: ReadinessSection::default(),
            metrics: None,
            metrics_listeners: Vec::new(),
            web: None,
        })
    }

    /// Tenant-requested checks run with `section` (`[checks]`: allowed ranges, limits,
    /// deadline) instead of its defaults.
    pub fn with_checks(mut self, section: ChecksSection) -> ApiServer {
        self.checks = section;
        self
    }

    /// Tenant checks share `runner` (and its limits) with the scheduled checks of
    /// `crate::alerts` instead of a runner of their own.
    pub fn with_check_runner(mut self, runner: Arc<CheckRunner>) -> ApiServer {
        self.runner = Some(runner);
        self
    }

    /// Readiness verdicts use the criteria of `section` (`[readiness]`) instead of its
    /// defaults.
    pub fn with_readiness(mut self, section: ReadinessSection) -> ApiServer {
        self.readiness = section;
        self
    }

    /// Serves `GET /metrics` (`crate::metrics`) as `section` says: on the API's listeners
    /// when `on_api`, and on listeners of its own at `section.listen`, bound here, which
    /// answer nothing else.
    pub fn with_metrics(mut self, section: MetricsSection) -> Result<ApiServer, ApiStartError> {
        self.metrics_listeners = section
            .listen
            .iter()
            .map(|&addr| {
                listen::tcp(addr, LISTEN_BACKLOG)
                    .map_err(|source| ApiStartError::Bind { addr, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.metrics = Some(section);
        Ok(self)
    }

    /// The addresses of the metrics-only listeners, in the order given.
    pub fn metrics_addrs(&self) -> Vec<SocketAddr> {
        self.metrics_listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves the dashboard (`crate::web`) on the same listeners, for every path outside
    /// `/api/`, with `section` (`[web]`; nothing when it is not `enabled`) and `clock`.
    pub fn with_web(mut self, section: WebSection, clock: crate::serve::Clock) -> ApiServer {
        self.web = section.enabled.then_some((section, clock));
        self
    }

    /// The bound addresses, in the order given.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves the API over `service`, for callers bearing `token`, until `shutdown`
    /// completes; then waits up to [`ApiLimits::shutdown_grace`] for requests in flight.
    /// Without a token it refuses to start ([`ApiStartError::NoToken`]).
    pub async fn run(
        self,
        service: DomainService,
        token: Option<Secret>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ApiStartError> {
        let token = token
            .filter(|t| !t.expose().trim().is_empty())
            .ok_or(ApiStartError::NoToken)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let tenant = service
            .default_tenant(now)
            .await
            .map_err(ApiStartError::Tenant)?;
        let limits = Arc::new(self.limits);
        let checks = match self.runner {
            Some(runner) => Ok(runner),
            None => CheckRunner::new(&self.checks).map(Arc::new).map_err(|e| {
                tracing::error!(error = %e, "REST API: tenant checks are unavailable");
                e.to_string()
            }),
        };
        let metrics = self.metrics.as_ref().map(|m| {
            let settings = MetricsSettings {
                window_days: m.window_days,
                cache: Duration::from_secs(m.cache_seconds),
            };
            Arc::new(MetricsEndpoint::new(service.store().clone(), settings))
        });
        let metrics_on_api = self.metrics.as_ref().is_some_and(|m| m.on_api);
        let web = self.web.map(|(section, clock)| {
            Arc::new(
                crate::web::Web::new(
                    service.clone(),
                    clock,
                    &section,
                    self.readiness.clone(),
                    limits.clone(),
                )
                .with_checks(checks.as_ref().ok().cloned()),
            )
        });
        let api = Arc::new(routes::Api {
            metrics,
            metrics_on_api,
            web,
            checks,
            service,
            token_digest: digest::digest(&digest::SHA256, token.expose().trim().as_bytes()),
            tenant,
            limits: limits.clone(),
            readiness: self.readiness,
        });
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let (stop_tx, stop) = watch::channel(false);
        let mut loops = JoinSet::new();
        let listeners = self.listeners.into_iter().map(|l| (l, Role::Api));
        let metrics_only = self
            .metrics_listeners
            .into_iter()
            .map(|l| (l, Role::MetricsOnly));
        for (listener, role) in listeners.chain(metrics_only) {
            loops.spawn(accept_loop(
                listener,
                role,
                api.clone(),
                slots.clone(),
                stop.clone(),
            ));
        }
        shutdown.await;
        // Receivers only go away with the tasks; a send error means nothing is left to stop.
        let _ = stop_tx.send(true);
        while loops.join_next().await.is_some() {}
        if !listen::drained(&slots, limits.max_connections, limits.shutdown_grace).await {
            tracing::info!("REST API stopped with connections still open");
        }
        Ok(())
    }
}

/// What a listener answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The API (and `/metrics` when `[metrics] on_api`).
    Api,
    /// `/metrics` only.
    MetricsOnly,
}

async fn accept_loop(
    listener: TcpListener,
    role: Role,
    api: Arc<routes::Api>,
    slots: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                tracing::debug!(%error, "REST API accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // Waiting here keeps this listener from accepting more: the rest queue in the backlog.
        let permit = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return, // the semaphore is never closed
            },
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve(tcp, peer, role, api.clone(), stop.clone(), permit));
    }
}

async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    role: Role,
    api: Arc<routes::Api>,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let limits = api.limits.clone();
    let deadline = Instant::now() + limits.connection_lifetime;
    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let api = api.clone();
        async move {
            // Paths outside /api/ are the dashboard's, when it is on (never on a
            // metrics-only listener, and never /metrics itself).
            let path = request.uri().path();
            let dashboard = role == Role::Api
                && !(path == routes::METRICS_PATH && api.metrics_on_api)
                && crate::web::owns(path);
            if let Some(web) = api.web.clone().filter(|_| dashboard) {
                return Ok::<_, Infallible>(crate::web::answer(request, peer, web).await);
            }
            Ok::<_, Infallible>(routes::answer(request, api, role).await)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_head_bytes)
        .max_buf_size(limits.max_head_bytes.max(MIN_BUF_SIZE))
        .keep_alive(true);
    let served = builder.serve_connection(TokioIo::new(tcp), service);
    let mut served = std::pin::pin!(served);
    tokio::select! {
        result = served.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "REST API connection ended");
            }
            return;
        }
        _ = tokio::time::sleep_until(deadline) => {
            tracing::debug!(%peer, "REST API connection reached its lifetime");
            return;
        }
        _ = stop.wait_for(|s| *s) => {}
    }
    // Shutting down: finish the request in flight, then close.
    served.as_mut().graceful_shutdown();
    let grace = Instant::now() + limits.shutdown_grace;
    let _ = tokio::time::timeout_at(grace.min(deadline), served).await;
}
