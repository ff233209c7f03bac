//! `stsward resolve serve`: one process that wires the configuration to its parts — the store
//! (or memory), the network source, the [`Engine`], the socketmap [`Server`] and the local
//! admin HTTP endpoint — and reloads on SIGHUP.
//!
//! Reload (SIGHUP) re-reads the configuration file and applies what can change without
//! dropping connections: the answer, cache and DNS/fetch settings. The memory cache is kept.
//! Listeners, the admin address and the store URL need a restart; a reload that changes
//! them says so in the log. A file that does not parse keeps the running configuration.
//!
//! The admin endpoint (`[admin] listen`, loopback by default, no authentication):
//! - `GET /metrics`: the counters in Prometheus text form;
//! - `GET /domains/NAME`: what the cache holds for a Policy Domain (JSON), as
//!   `stsward resolve show` prints it;
//! - `DELETE /domains/NAME`: forgets it in memory and in the store (`stsward resolve purge`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use stsward_proto::socketmap::Reply;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{info, warn};

use crate::answer::AnswerKind;
use crate::config::{ConfigError, ResolverConfig};
use crate::engine::{Engine, system_clock};
use crate::persist::{NoPersist, PolicyPersist};
use crate::server::{Endpoint, Lookup, Server, ServerConfig, ServerError};
use crate::source::{NetSource, SourceError, roots_from_pem};

/// How often the background re-checks (TXT id, proactive refresh) are started.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);
/// Admin connections served at once; more wait in the backlog.
const ADMIN_MAX_CONNECTIONS: usize = 16;
/// An admin request must arrive (headers) within this.
const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the daemon could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// A file the configuration names could not be read.
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        /// The configuration key (or flag).
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value of the file or of an environment override is refused (names where, the key
    /// and why).
    #[error(transparent)]
    Layered(stsward_config::Problem),
    /// The configuration is invalid.
    #[error("{path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: ConfigError,
    },
    /// The network source (DNS client, TLS roots) could not be built.
    #[error("{0}")]
    Source(#[from] SourceError),
    /// The store could not be opened.
    #[error("cache.store: {0}")]
    Store(#[from] stsward_store::StoreError),
    /// A socketmap listener could not be bound.
    #[error("{0}")]
    Listen(#[from] ServerError),
    /// The admin endpoint could not be bound.
    #[error("admin.listen {addr}: {source}")]
    Admin {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the configuration came from, so that SIGHUP can read it again.
#[derive(Clone)]
pub struct ConfigSource {
    /// The file, if any (without one, SIGHUP has nothing to re-read).
    pub path: Option<PathBuf>,
    /// Applied after every read of the file: the command line's overrides.
    pub overrides: Arc<dyn Fn(&mut ResolverConfig) + Send + Sync>,
    /// The environment whose `STSWARD_RESOLVE_` variables override the file's keys (before the
    /// command line's), kept as at start so that SIGHUP applies the same ones.
    pub env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
}

impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSource")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ConfigSource {
    /// Reads the file, applies the environment's overrides, then the command line's, and
    /// validates the configuration.
    pub fn load(&self) -> Result<ResolverConfig, DaemonError> {
        let text = match &self.path {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| DaemonError::Read {
                        key: "--config",
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let file = self.path.as_deref().zip(text.as_deref());
        let loaded =
            ResolverConfig::load_layered(file, self.env.iter().cloned()).map_err(|source| {
                match source {
                    ConfigError::Layered(problem) => DaemonError::Layered(problem),
                    source => DaemonError::Config {
                        path: self.path.clone().unwrap_or_default(),
                        source,
                    },
                }
            })?;
        for o in &loaded.applied {
            info!(variable = %o.var, key = %o.key, "configuration overridden by the environment");
        }
        for var in &loaded.unknown {
            warn!(variable = %var, "no such configuration key; the variable is ignored");
        }
        let mut cfg = loaded.value;
        (self.overrides)(&mut cfg);
        cfg.validate().map_err(|source| DaemonError::Config {
            path: self
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from("(flags)")),
            source,
        })?;
        Ok(cfg)
    }
}

/// Builds the network source from the configuration (reads `fetch.ca_file` and
/// `dns.trust_anchors`).
pub fn net_source(cfg: &ResolverConfig) -> Result<NetSource, DaemonError> {
    let roots = match &cfg.fetch.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| DaemonError::Read {
                key: "fetch.ca_file",
                path: path.clone(),
                source,
            })?;
            roots_from_pem(&pem)?
        }
        None => Vec::new(),
    };
    let anchors = match &cfg.dns.trust_anchors {
        Some(path) => Some(
            std::fs::read_to_string(path).map_err(|source| DaemonError::Read {
                key: "dns.trust_anchors",
                path: path.clone(),
                source,
            })?,
        ),
        None => None,
    };
    Ok(NetSource::new(&cfg.net(roots, anchors))?)
}

/// The engine as the listener's [`Lookup`].
struct EngineLookup(Engine);

impl Lookup for EngineLookup {
    async fn lookup(&self, name: &str, key: &str) -> Reply {
        socketmap_reply(self.0.lookup(name, key).await.kind)
    }

    fn lookup_now(&self, name: &str, key: &str) -> Option<Reply> {
        self.0
            .lookup_cached(name, key)
            .map(|a| socketmap_reply(a.kind))
    }
}

/// The socketmap reply of an answer.
fn socketmap_reply(kind: AnswerKind) -> Reply {
    match kind {
        AnswerKind::Ok(data) => Reply::Ok(data),
        AnswerKind::NotFound => Reply::NotFound,
        AnswerKind::Temp(reason) => Reply::Temp(reason),
        AnswerKind::Perm(reason) => Reply::Perm(reason),
    }
}

/// A daemon that is bound and ready: [`Daemon::run`] serves until the shutdown signal.
pub struct Daemon {
    engine: Engine,
    server: Server<EngineLookup>,
    admin: Option<TcpListener>,
    store: Option<stsward_store::Store>,
    source: ConfigSource,
    running: ResolverConfig,
}

impl Daemon {
    /// Opens the store, warms the cache from it, and binds every listener.
    pub async fn bind(source: ConfigSource) -> Result<Daemon, DaemonError> {
        let cfg = source.load()?;
        let net = net_source(&cfg)?;
        let (persist, store): (Arc<dyn PolicyPersist>, _) = match &cfg.cache.store {
            Some(url) => {
                let store = stsward_store::Store::open(url).await?;
                (Arc::new(store.clone()), Some(store))
            }
            None => (Arc::new(NoPersist), None),
        };
        let engine = Engine::new(cfg.engine(), Arc::new(net), persist, system_clock());
        match engine.warm().await {
            Ok(n) => info!(policies = n, "cache warmed from the store"),
            Err(e) => warn!(error = %e, "cache not warmed; starting empty"),
        }
        let endpoints: Vec<Endpoint> = cfg
            .listen
            .tcp
            .iter()
            .copied()
            .map(Endpoint::Tcp)
            .chain(cfg.listen.unix.iter().cloned().map(Endpoint::Unix))
            .collect();
        let server = Server::bind(
            &endpoints,
            ServerConfig::default(),
            Arc::new(EngineLookup(engine.clone())),
        )
        .await?;
        let admin = match cfg.admin.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| DaemonError::Admin { addr, source })?,
            ),
            None => None,
        };
        Ok(Daemon {
            engine,
            server,
            admin,
            store,
            source,
            running: cfg,
        })
    }

    /// The socketmap endpoints actually bound (port 0 resolved).
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.server.local_endpoints()
    }

    /// The admin address actually bound.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The engine (tests, and the metrics of a running daemon).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serves until `shutdown` completes: socketmap, admin, background refresh, SIGHUP.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let Daemon {
            engine,
            server,
            admin,
            store,
            source,
            running,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let maintenance = engine.spawn_maintenance(MAINTENANCE_EVERY);
        let admin_task =
            admin.map(|l| tokio::spawn(serve_admin(l, engine.clone(), stop_rx.clone())));
        let reload_task = tokio::spawn(reload_on_sighup(
            engine.clone(),
            source,
            running,
            stop_rx.clone(),
        ));
        let mut server_stop = stop_rx.clone();
        let server_task = tokio::spawn(server.run(async move {
            let _ = server_stop.wait_for(|s| *s).await;
        }));
        shutdown.await;
        info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = server_task.await;
        if let Some(t) = admin_task {
            let _ = t.await;
        }
        let _ = reload_task.await;
        maintenance.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), engine.idle()).await;
        if let Some(store) = store {
            store.close().await;
        }
    }
}

/// Re-reads the configuration on every SIGHUP until `stop`.
async fn reload_on_sighup(
    engine: Engine,
    source: ConfigSource,
    mut running: ResolverConfig,
    mut stop: watch::Receiver<bool>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "SIGHUP reload unavailable");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            got = hup.recv() => if got.is_none() { return },
        }
        let new = match source.load() {
            Ok(cfg) => cfg,
            Err(e) => {
                warn!(error = %e, "reload refused; the running configuration stays");
                continue;
            }
        };
        let net = match net_source(&new) {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "reload refused; the running configuration stays");
                continue;
            }
        };
        if new.listen != running.listen
            || new.admin != running.admin
            || new.cache.store != running.cache.store
        {
            warn!("listen, admin and cache.store changes take effect at the next restart");
        }
        engine.reload(new.engine(), Some(Arc::new(net)));
        info!("configuration reloaded");
        running = new;
    }
}

/// The admin HTTP endpoint (see the module docs).
async fn serve_admin(listener: TcpListener, engine: Engine, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(ADMIN_MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let engine = engine.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| admin_request(engine.clone(), req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(ADMIN_HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
            drop(permit);
        });
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn admin_request(
    engine: Engine,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let json = "application/json";
    let text = "text/plain; charset=utf-8";
    let response = match (req.method(), path.as_str()) {
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            engine.metrics_text(),
        ),
        (m, p) if p.starts_with("/domains/") => {
            let domain = &p["/domains/".len()..];
            if domain.is_empty() || domain.contains('/') {
                reply(StatusCode::NOT_FOUND, text, "no such path\n".into())
            } else if m == Method::GET {
                match engine.show(domain).await {
                    Ok(shown) => match serde_json::to_string_pretty(&shown) {
                        Ok(body) => reply(StatusCode::OK, json, body + "\n"),
                        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, text, format!("{e}\n")),
                    },
                    Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, text, format!("{e}\n")),
                }
            } else if m == Method::DELETE {
                match engine.purge(domain).await {
                    Ok(found) => reply(
                        StatusCode::OK,
                        json,
                        format!(
                            "{{\"domain\":{},\"purged\":{found}}}\n",
                            json_string(domain)
                        ),
                    ),
                    Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, text, format!("{e}\n")),
                }
            } else {
                reply(
                    StatusCode::METHOD_NOT_ALLOWED,
                    text,
                    "GET or DELETE\n".into(),
                )
            }
        }
        _ => reply(StatusCode::NOT_FOUND, text, "no such path\n".into()),
    };
    Ok(response)
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}
