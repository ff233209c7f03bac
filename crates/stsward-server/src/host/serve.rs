//! The listeners of the policy host: TLS (port 443's role) and plain HTTP (port 80's role),
//! each connection under deadlines and all of them under one bound.
//!
//! ```text
//! accept ── slot free? (at most max_connections, else wait in the listen backlog)
//!   TLS:  handshake within handshake_timeout (TLS 1.2/1.3 only, certificate by SNI)
//!         ALPN "acme-tls/1" → close at once (RFC 8737 §3; the certificate was the answer)
//!   HTTP/1.1: each request head within header_read_timeout — this timer also runs while a
//!         kept-alive connection waits for its next request, so it is the idle timeout too;
//!         heads over max_head_bytes or max_headers get 431; the whole connection ends at
//!         connection_lifetime.
//! ```
//!
//! A slow client (slowloris) costs one task and one slot until the first deadline it misses;
//! it never blocks an OS thread or another client. When every slot is taken, each listener
//! holds the one connection it last accepted, unserved, until a slot frees (which the deadlines
//! above guarantee), and accepts no more meanwhile: later connections wait in the kernel's
//! listen backlog ([`LISTEN_BACKLOG`]). Nothing is refused outright and nothing grows.
//!
//! With an [`HttpsIntake`] attached ([`HostServer::with_https_intake`]), a request for its
//! path on any TLS name goes to it (RFC 8460 §5.4 reports); every other request is the
//! policy host's as above.
//!
//! Only HTTP/1.x is spoken (ALPN `http/1.1` or `http/1.0`, or none; no h2): a client that
//! offers ALPN but none of these is refused in the handshake (`no_application_protocol`).
//!
//! On shutdown the listeners close at once; connections in flight finish their current request
//! (hyper's graceful shutdown) for up to [`HostLimits::shutdown_grace`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::challenges::{ACME_TLS_ALPN, Challenges};
use super::counts::FetchCounter;
use super::http01;
use super::name;
use super::policy::{self, TlsConn};
use super::sites::Sites;
use super::sni::SniResolver;
use crate::intake::https::HttpsIntake;
use crate::listen;

/// The kernel's queue of connections not yet accepted, per listener.
pub const LISTEN_BACKLOG: i32 = 1024;

/// hyper's smallest read buffer (it refuses a smaller `max_buf_size`).
const MIN_BUF_SIZE: usize = 8192;

/// How long a TLS-ALPN-01 connection may take to receive our close_notify.
const ACME_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The bounds of the listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLimits {
    /// Time for the whole TLS handshake.
    pub handshake_timeout: Duration,
    /// Time to receive a complete request head; also how long a kept-alive connection may
    /// sit idle between requests.
    pub header_read_timeout: Duration,
    /// The longest a connection may live, however busy.
    pub connection_lifetime: Duration,
    /// Connections served at once, over every listener (TLS and plain HTTP together).
    pub max_connections: usize,
    /// The largest request head (request line and headers), in octets; larger gets 431.
    pub max_head_bytes: usize,
    /// The most header fields in one request; more gets 431.
    pub max_headers: usize,
    /// How long [`HostServer::run`] waits for connections in flight after the shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            // RFC 8461 §3.3 suggests senders give up after one minute; a connection that
            // lives longer is not a policy fetch.
            connection_lifetime: Duration::from_secs(120),
            max_connections: 4096,
            max_head_bytes: 8 * 1024,
            max_headers: 32,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Why the policy host could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// A listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// rustls refused the server configuration.
    #[error("configuring TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// `max_connections` is zero or too large for a semaphore.
    #[error("max_connections {0} must be between 1 and {max}", max = Semaphore::MAX_PERMITS)]
    MaxConnections(usize),
}

/// The bound listeners, ready to [`run`](HostServer::run).
#[derive(Debug)]
pub struct HostServer {
    https: Vec<TcpListener>,
    http: Vec<TcpListener>,
    limits: HostLimits,
    intake: Option<HttpsIntake>,
}

impl HostServer {
    /// Binds the TLS listeners on `https` and the plain-HTTP listeners on `http` (port 0
    /// picks a free port; see [`https_addrs`](HostServer::https_addrs)). IPv6 sockets are
    /// IPv6-only, so `0.0.0.0:443` and `[::]:443` can both be given. Must be called inside a
    /// Tokio runtime.
    pub fn bind(
        https: &[SocketAddr],
        http: &[SocketAddr],
        limits: HostLimits,
    ) -> Result<HostServer, HostError> {
        if limits.max_connections == 0 || limits.max_connections > Semaphore::MAX_PERMITS {
            return Err(HostError::MaxConnections(limits.max_connections));
        }
        let bind_all = |addrs: &[SocketAddr]| -> Result<Vec<TcpListener>, HostError> {
            addrs
                .iter()
                .map(|&addr| {
                    listen::tcp(addr, LISTEN_BACKLOG)
                        .map_err(|source| HostError::Bind { addr, source })
                })
                .collect()
        };
        Ok(HostServer {
            https: bind_all(https)?,
            http: bind_all(http)?,
            limits,
            intake: None,
        })
    }

    /// Also serves the TLS-RPT report route `intake` (RFC 8460 §5.4) on the TLS listeners.
    pub fn with_https_intake(mut self, intake: HttpsIntake) -> HostServer {
        self.intake = Some(intake);
        self
    }

    /// The bound TLS addresses, in the order given.
    pub fn https_addrs(&self) -> Vec<SocketAddr> {
        self.https
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The bound plain-HTTP addresses, in the order given.
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.http
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves `sites` and `challenges`, counting fetches in `counter`, until `shutdown`
    /// completes; then waits up to [`HostLimits::shutdown_grace`] for connections in flight.
    pub async fn run(
        self,
        sites: Sites,
        challenges: Challenges,
        counter: FetchCounter,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), HostError> {
        let resolver = Arc::new(SniResolver::new(sites.clone(), challenges.clone()));
        let acceptor = TlsAcceptor::from(Arc::new(tls_config(resolver)?));
        let limits = Arc::new(self.limits);
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let (stop_tx, stop) = watch::channel(false);

        let mut loops = JoinSet::new();
        for listener in self.https {
            let handler = TlsHandler {
                acceptor: acceptor.clone(),
                sites: sites.clone(),
                counter: counter.clone(),
                intake: self.intake.clone(),
            };
            loops.spawn(accept_loop(
                listener,
                Handler::Tls(handler),
                limits.clone(),
                slots.clone(),
                stop.clone(),
            ));
        }
        for listener in self.http {
            loops.spawn(accept_loop(
                listener,
                Handler::Plain(challenges.clone()),
                limits.clone(),
                slots.clone(),
                stop.clone(),
            ));
        }

        shutdown.await;
        // Receivers only go away with the tasks; a send error means nothing is left to stop.
        let _ = stop_tx.send(true);
        while loops.join_next().await.is_some() {}
        // Every slot back means every connection is done.
        if !listen::drained(&slots, limits.max_connections, limits.shutdown_grace).await {
            tracing::info!("policy host stopped with connections still open");
        }
        Ok(())
    }
}

/// RFC 8461 §3.3 asks nothing of the TLS version; the issue asks for TLS 1.2 and 1.3 only.
fn tls_config(resolver: Arc<SniResolver>) -> Result<ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    // `acme-tls/1` first: rustls picks the first of ours that the client offers (see sni.rs).
    config.alpn_protocols = vec![
        ACME_TLS_ALPN.to_vec(),
        b"http/1.1".to_vec(),
        b"http/1.0".to_vec(),
    ];
    Ok(config)
}

#[derive(Clone)]
struct TlsHandler {
    acceptor: TlsAcceptor,
    sites: Sites,
    counter: FetchCounter,
    intake: Option<HttpsIntake>,
}

#[derive(Clone)]
enum Handler {
    Tls(TlsHandler),
    Plain(Challenges),
}

async fn accept_loop(
    listener: TcpListener,
    handler: Handler,
    limits: Arc<HostLimits>,
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
                tracing::debug!(%error, "policy host accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // Waiting here keeps this listener from accepting more: the rest queue in the
        // backlog. (Taking a slot before `accept` would let an idle listener sit on one.)
        let permit = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return, // the semaphore is never closed
            },
        };
        // Small answers: do not wait for more data to fill a segment.
        let _ = tcp.set_nodelay(true);
        let conn = Conn {
            peer,
            limits: limits.clone(),
            stop: stop.clone(),
            _permit: permit,
        };
        match &handler {
            Handler::Tls(h) => tokio::spawn(serve_tls(tcp, conn, h.clone())),
            Handler::Plain(c) => tokio::spawn(serve_plain(tcp, conn, c.clone())),
        };
    }
}

/// One accepted connection; its slot is given back when this is dropped.
struct Conn {
    peer: SocketAddr,
    limits: Arc<HostLimits>,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

async fn serve_tls(tcp: TcpStream, conn: Conn, h: TlsHandler) {
    let deadline = Instant::now() + conn.limits.connection_lifetime;
    let handshake = tokio::time::timeout(conn.limits.handshake_timeout, h.acceptor.accept(tcp));
    let mut tls = match handshake.await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%error, peer = %conn.peer, "policy host TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %conn.peer, "policy host TLS handshake timed out");
            return;
        }
    };
    let session = tls.get_ref().1;
    if session.alpn_protocol() == Some(ACME_TLS_ALPN) {
        let _ = tokio::time::timeout(ACME_CLOSE_TIMEOUT, tls.shutdown()).await;
        return;
    }
    // The resolver refuses handshakes without a usable SNI name, so this is always Some.
    let Some(sni) = session.server_name().and_then(|n| name::normalize(n).ok()) else {
        return;
    };
    let info = TlsConn {
        sni: Arc::from(sni),
        peer: conn.peer.ip(),
    };
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        if let Some(intake) = h.intake.as_ref().filter(|i| i.matches(&request)) {
            let (intake, info) = (intake.clone(), info.clone());
            return futures::future::Either::Left(async move {
                Ok::<_, Infallible>(intake.answer(request, &info.sni, info.peer).await)
            });
        }
        let response = policy::answer(&request, &info, &h.sites, &h.counter, SystemTime::now());
        futures::future::Either::Right(std::future::ready(Ok::<_, Infallible>(response)))
    });
    serve_http(tls, service, conn, deadline).await;
}

async fn serve_plain(tcp: TcpStream, conn: Conn, challenges: Challenges) {
    let deadline = Instant::now() + conn.limits.connection_lifetime;
    let service = service_fn(move |request| {
        std::future::ready(Ok::<_, Infallible>(http01::answer(&request, &challenges)))
    });
    serve_http(tcp, service, conn, deadline).await;
}

async fn serve_http<I, S>(io: I, service: S, mut conn: Conn, deadline: Instant)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<http_body_util::Full<bytes::Bytes>>,
            Error = Infallible,
        >,
    S::Future: Send + 'static,
{
    let limits = &conn.limits;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_head_bytes)
        .max_buf_size(limits.max_head_bytes.max(MIN_BUF_SIZE))
        .keep_alive(true);
    let served = builder.serve_connection(TokioIo::new(io), service);
    let mut served = std::pin::pin!(served);
    let peer = conn.peer;
    tokio::select! {
        result = served.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "policy host connection ended");
            }
            return;
        }
        _ = tokio::time::sleep_until(deadline) => {
            tracing::debug!(%peer, "policy host connection reached its lifetime");
            return;
        }
        _ = conn.stop.wait_for(|s| *s) => {}
    }
    // Shutting down: finish the request in flight, then close.
    served.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout_at(deadline, served).await;
}
