//! The socketmap listener: serves one [`Lookup`] to Postfix over TCP and unix-domain sockets.
//!
//! The protocol (`socketmap_table(5)`) is decoded by the pure push parser in
//! [`stsward_proto::socketmap`]; this module is the thin tokio layer around it: sockets,
//! deadlines, the connection cap and shutdown.
//!
//! Per connection, requests are answered in order, as many as the client sends (Postfix keeps
//! a connection open and reuses it). Everything a client can make the server wait for is
//! bounded:
//! - a request may be at most [`ServerConfig::max_request_len`] bytes; a longer length prefix
//!   is refused as soon as its digits show it;
//! - once the first byte of a request arrived, the rest must arrive within
//!   [`ServerConfig::request_timeout`];
//! - a connection with no request in progress is closed after
//!   [`ServerConfig::idle_timeout`] (longer than Postfix's own 10 s idle close, so Postfix is
//!   normally the one that closes);
//! - a lookup that takes longer than [`ServerConfig::lookup_timeout`] is answered `TEMP`, so
//!   Postfix defers the mail instead of hanging until its own 100 s limit;
//! - writing a reply must finish within [`ServerConfig::write_timeout`].
//!
//! A malformed or oversized request is answered `PERM <what was wrong>` and the connection is
//! closed, because netstring framing cannot be recovered. A request for a map name the server
//! does not serve is answered `PERM` and the connection stays usable.
//!
//! **Over the connection cap** ([`ServerConfig::max_connections`]) the client waits: a
//! listener that accepted a connection while every slot is taken holds it, unanswered, until a
//! slot frees, and accepts nothing more meanwhile, so further clients wait in the kernel's
//! listen backlog. Postfix's smtp processes then see a slow answer rather than an error, which
//! suits short bursts; the wait is bounded by the other connections' idle timeout. Each
//! listener holds at most one such waiting connection.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use stsward_proto::socketmap::{Reply, Request, RequestParser};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{debug, error, info, warn};

/// What the server asks for each request it accepted.
///
/// The returned future must be `Send` (connections run on tokio's multi-threaded runtime);
/// implementors may write `async fn lookup(&self, name: &str, key: &str) -> Reply`. The server
/// bounds the time it waits (see [`ServerConfig::lookup_timeout`]), so a lookup need not.
pub trait Lookup: Send + Sync + 'static {
    /// The answer for `key` in the map `name` (one of [`ServerConfig::map_names`]).
    fn lookup(&self, name: &str, key: &str) -> impl Future<Output = Reply> + Send;

    /// The answer when it is at hand without waiting (a cache hit), else `None` and the
    /// server calls [`Lookup::lookup`]. It runs inline on the connection's task, without a
    /// task of its own, so it must not block; a panic in it ends only that connection.
    fn lookup_now(&self, name: &str, key: &str) -> Option<Reply> {
        let _ = (name, key);
        None
    }
}

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP address, IPv4 or IPv6 (Postfix: `socketmap:inet:host:port:name`). Port 0 picks
    /// a free port; [`Server::local_endpoints`] tells which.
    Tcp(SocketAddr),
    /// A unix-domain socket path (Postfix: `socketmap:unix:pathname:name`).
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    /// Postfix's notation: `inet:127.0.0.1:8461`, `unix:/run/stsward/socketmap`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "inet:{addr}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// The listener's knobs. [`ServerConfig::default`] documents each default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The socketmap names served (the last field of Postfix's `socketmap:…:name`); any other
    /// name is answered `PERM`. Default: `["postfix"]`.
    pub map_names: Vec<String>,
    /// The largest request payload (`name <space> key`) accepted, in bytes. Default: 4096
    /// (a next-hop domain is at most 255 bytes; the rest is room for other map keys).
    pub max_request_len: usize,
    /// How long the rest of a request may take once its first byte arrived. Default: 10 s.
    pub request_timeout: Duration,
    /// How long a connection may sit with no request in progress. Default: 30 s, longer than
    /// the 10 s after which Postfix closes an idle socketmap connection itself.
    pub idle_timeout: Duration,
    /// How long a lookup may take before the client is answered `TEMP`. Default: 30 s, below
    /// the 100 s that Postfix waits for a reply, so Postfix hears a reason, not a timeout.
    pub lookup_timeout: Duration,
    /// How long writing one reply may take (a client that never reads). Default: 10 s.
    pub write_timeout: Duration,
    /// Connections served at once, over every listener; see the module docs for what happens
    /// past it. Default: 1024 (Postfix's default process limit is 100).
    pub max_connections: usize,
    /// After the shutdown signal, how long connections may take to finish the requests they
    /// already received; then they are dropped. Default: 5 s.
    pub shutdown_grace: Duration,
    /// The file mode of unix-domain sockets (set after binding). Default: `0o660`: the
    /// owner and its group (put Postfix in it) may connect.
    pub unix_mode: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            map_names: vec!["postfix".to_owned()],
            max_request_len: 4096,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            lookup_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(5),
            unix_mode: 0o660,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A configuration value the server cannot work with.
    #[error("socketmap server configuration: {field} {problem}")]
    InvalidConfig {
        /// The [`ServerConfig`] field (or `endpoints`).
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Binding (or inspecting the path of) an endpoint failed.
    #[error("cannot listen on {endpoint}: {source}")]
    Bind {
        /// The endpoint.
        endpoint: Endpoint,
        /// The operating system's error.
        source: io::Error,
    },
    /// Something that is not a socket exists at a unix socket's path; it is left alone.
    #[error(
        "cannot listen on unix:{}: the path exists and is not a socket (refusing to remove it)",
        path.display()
    )]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Another process is serving the unix socket at the path.
    #[error("cannot listen on unix:{}: another process is listening on it", path.display())]
    SocketInUse {
        /// The path.
        path: PathBuf,
    },
    /// A stale unix socket could not be removed.
    #[error("cannot remove the stale socket unix:{}: {source}", path.display())]
    RemoveStale {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The unix socket's mode could not be set.
    #[error("cannot set mode {mode:o} on unix:{}: {source}", path.display())]
    SetMode {
        /// The path.
        path: PathBuf,
        /// The mode asked for.
        mode: u32,
        /// The operating system's error.
        source: io::Error,
    },
}

/// The unix socket file this server created; removed when the listener goes away, unless
/// something else has replaced it meanwhile.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && m.dev() == self.dev && m.ino() == self.ino);
        if ours && let Err(e) = std::fs::remove_file(&self.path) {
            warn!(path = %self.path.display(), "cannot remove the socket file: {e}");
        }
    }
}

#[derive(Debug)]
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, SocketFile),
}

/// A connection accepted by a listener.
enum Conn {
    Tcp(TcpStream, SocketAddr),
    Unix(UnixStream),
}

/// A bound socketmap server, ready to [`run`](Server::run).
pub struct Server<L> {
    lookup: Arc<L>,
    config: Arc<ServerConfig>,
    listeners: Vec<Listener>,
}

impl<L> fmt::Debug for Server<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
    }
}

impl<L: Lookup> Server<L> {
    /// Binds every endpoint (all or none: on an error, what was bound is released and socket
    /// files created so far are removed).
    ///
    /// For a unix socket: an existing socket file at the path is replaced when nobody listens
    /// on it (a stale file from a crashed run); a live socket, or anything that is not a
    /// socket, is an error and is left untouched. The new socket gets
    /// [`ServerConfig::unix_mode`]; its directory decides who can reach it at all.
    pub async fn bind(
        endpoints: &[Endpoint],
        config: ServerConfig,
        lookup: Arc<L>,
    ) -> Result<Self, ServerError> {
        validate(endpoints, &config)?;
        let mut listeners = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let listener = match endpoint {
                Endpoint::Tcp(addr) => {
                    let l = TcpListener::bind(addr)
                        .await
                        .map_err(|source| ServerError::Bind {
                            endpoint: endpoint.clone(),
                            source,
                        })?;
                    Listener::Tcp(l)
                }
                Endpoint::Unix(path) => {
                    let (l, file) = bind_unix(path, config.unix_mode)?;
                    Listener::Unix(l, file)
                }
            };
            listeners.push(listener);
        }
        Ok(Self {
            lookup,
            config: Arc::new(config),
            listeners,
        })
    }

    /// The endpoints actually bound (a TCP port 0 replaced by the port chosen).
    pub fn local_endpoints(&self) -> Vec<Endpoint> {
        self.listeners
            .iter()
            .filter_map(|l| match l {
                Listener::Tcp(t) => t.local_addr().ok().map(Endpoint::Tcp),
                Listener::Unix(_, file) => Some(Endpoint::Unix(file.path.clone())),
            })
            .collect()
    }

    /// Serves until `shutdown` completes. Then it stops accepting (and removes its unix
    /// socket files), closes idle connections, lets connections finish the requests they
    /// already received for up to [`ServerConfig::shutdown_grace`], drops what is left, and
    /// returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let Server {
            lookup,
            config,
            listeners,
        } = self;
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (conn_tx, mut conn_rx) = mpsc::channel::<(Conn, OwnedSemaphorePermit)>(1);

        let mut acceptors = JoinSet::new();
        for listener in listeners {
            acceptors.spawn(accept_loop(listener, Arc::clone(&slots), conn_tx.clone()));
        }
        drop(conn_tx);

        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some((conn, permit)) = conn_rx.recv() => {
                    connections.spawn(serve_accepted(
                        conn,
                        permit,
                        Arc::clone(&lookup),
                        Arc::clone(&config),
                        stop_rx.clone(),
                    ));
                }
                Some(done) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(e) = done && e.is_panic() {
                        error!("a socketmap connection task panicked: {e}");
                    }
                }
            }
        }

        info!("socketmap server shutting down");
        acceptors.abort_all();
        while acceptors.join_next().await.is_some() {}
        // Connections accepted but not yet started are closed unanswered.
        drop(conn_rx);
        let _ = stop_tx.send(true);
        let drained = timeout(config.shutdown_grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                left = connections.len(),
                "socketmap connections still busy after the shutdown grace; dropping them"
            );
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
    }
}

fn validate(endpoints: &[Endpoint], config: &ServerConfig) -> Result<(), ServerError> {
    let invalid = |field, problem| Err(ServerError::InvalidConfig { field, problem });
    if endpoints.is_empty() {
        return invalid("endpoints", "is empty");
    }
    if config.max_connections == 0 {
        return invalid("max_connections", "must be at least 1");
    }
    if config.max_connections > Semaphore::MAX_PERMITS {
        return invalid("max_connections", "is too large");
    }
    if config.max_request_len == 0 {
        return invalid("max_request_len", "must be at least 1");
    }
    if config.map_names.is_empty() {
        return invalid("map_names", "is empty");
    }
    if config
        .map_names
        .iter()
        .any(|n| n.is_empty() || n.contains(' '))
    {
        return invalid("map_names", "must be non-empty words without spaces");
    }
    Ok(())
}

fn bind_unix(path: &Path, mode: u32) -> Result<(UnixListener, SocketFile), ServerError> {
    let bind_error = |source| ServerError::Bind {
        endpoint: Endpoint::Unix(path.to_owned()),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // Someone answering on it means a running daemon, not a stale file.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServerError::SocketInUse {
                    path: path.to_owned(),
                });
            }
            std::fs::remove_file(path).map_err(|source| ServerError::RemoveStale {
                path: path.to_owned(),
                source,
            })?;
        }
        Ok(_) => {
            return Err(ServerError::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_error(e)),
    }
    let listener = UnixListener::bind(path).map_err(bind_error)?;
    let meta = std::fs::symlink_metadata(path).map_err(bind_error)?;
    // From here on the file is removed again if anything below fails.
    let file = SocketFile {
        path: path.to_owned(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        ServerError::SetMode {
            path: path.to_owned(),
            mode,
            source,
        }
    })?;
    Ok((listener, file))
}

/// Accepts connections on one listener, each once a connection slot is free (see the module
/// docs: over the cap, the client waits).
async fn accept_loop(
    listener: Listener,
    slots: Arc<Semaphore>,
    out: mpsc::Sender<(Conn, OwnedSemaphorePermit)>,
) {
    loop {
        let accepted = match &listener {
            Listener::Tcp(l) => l.accept().await.map(|(s, peer)| Conn::Tcp(s, peer)),
            Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Conn::Unix(s)),
        };
        let conn = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin; the listener
                // itself stays good.
                warn!("socketmap accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                warn!("socketmap connection cap reached; the new connection waits for a slot");
                match Arc::clone(&slots).acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => return,
                }
            }
        };
        if out.send((conn, permit)).await.is_err() {
            return;
        }
    }
}

/// Serves one accepted connection; its slot frees when it ends.
async fn serve_accepted<L: Lookup>(
    conn: Conn,
    permit: OwnedSemaphorePermit,
    lookup: Arc<L>,
    config: Arc<ServerConfig>,
    stop: watch::Receiver<bool>,
) {
    match conn {
        Conn::Tcp(stream, peer) => {
            serve_connection(stream, &peer.to_string(), &lookup, &config, stop).await;
        }
        Conn::Unix(stream) => serve_connection(stream, "unix", &lookup, &config, stop).await,
    }
    drop(permit);
}

/// Size of each read from a client.
const READ_CHUNK: usize = 4096;

/// Serves one connection until the client closes it, a deadline passes, a request is
/// malformed, or the server stops.
async fn serve_connection<S, L>(
    mut stream: S,
    peer: &str,
    lookup: &Arc<L>,
    config: &ServerConfig,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    L: Lookup,
{
    let mut parser = RequestParser::new(config.max_request_len);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut request_deadline: Option<Instant> = None;
    let mut stopping = *stop.borrow();
    loop {
        loop {
            match parser.next_request() {
                Ok(Some(request)) => {
                    let reply = answer(lookup, config, &request).await;
                    if !send(&mut stream, &reply, config, peer).await {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(peer, "malformed socketmap request: {e}");
                    let reply = Reply::Perm(format!("malformed socketmap request: {e}"));
                    if send(&mut stream, &reply, config, peer).await {
                        let _ = timeout(config.write_timeout, stream.shutdown()).await;
                    }
                    return;
                }
            }
        }
        if !parser.in_progress() {
            request_deadline = None;
            if stopping {
                return;
            }
        }
        let deadline = if parser.in_progress() {
            *request_deadline.get_or_insert_with(|| Instant::now() + config.request_timeout)
        } else {
            Instant::now() + config.idle_timeout
        };
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => return,
                Ok(n) => parser.push(buf.get(..n).unwrap_or_default()),
                Err(e) => {
                    debug!(peer, "socketmap read failed: {e}");
                    return;
                }
            },
            () = sleep_until(deadline) => {
                if parser.in_progress() {
                    debug!(peer, "socketmap request not complete in time; closing");
                } else {
                    debug!(peer, "idle socketmap connection; closing");
                }
                return;
            }
            _ = stop.changed(), if !stopping => stopping = true,
        }
    }
}

/// The reply to one well-formed request.
///
/// An answer at hand ([`Lookup::lookup_now`]) is sent at once. Otherwise the lookup runs as
/// its own task: a panic in it is answered `TEMP` (the connection and the daemon go on), and
/// at the deadline, or when the connection is dropped, it is aborted rather than left
/// running.
async fn answer<L: Lookup>(lookup: &Arc<L>, config: &ServerConfig, request: &Request) -> Reply {
    if !config.map_names.contains(&request.name) {
        return Reply::Perm(format!(
            "unknown socketmap name {:?}; this server answers {}",
            request.name,
            config.map_names.join(", ")
        ));
    }
    if let Some(reply) = lookup.lookup_now(&request.name, &request.key) {
        return reply;
    }
    let task = {
        let lookup = Arc::clone(lookup);
        let Request { name, key } = request.clone();
        tokio::spawn(async move { lookup.lookup(&name, &key).await })
    };
    let _abort = AbortOnDrop(task.abort_handle());
    match timeout(config.lookup_timeout, task).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => {
            error!(key = %request.key, "socketmap lookup failed: {e}");
            Reply::Temp("internal error in the lookup".to_owned())
        }
        Err(_) => {
            warn!(key = %request.key, "socketmap lookup timed out");
            Reply::Temp(format!(
                "lookup did not finish within {} ms",
                config.lookup_timeout.as_millis()
            ))
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes one reply; false when the connection is no longer usable.
async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    reply: &Reply,
    config: &ServerConfig,
    peer: &str,
) -> bool {
    let wire = reply.try_encode().unwrap_or_else(|e| {
        warn!(peer, "socketmap reply replaced: {e}");
        reply.encode()
    });
    match timeout(config.write_timeout, stream.write_all(&wire)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            debug!(peer, "socketmap write failed: {e}");
            false
        }
        Err(_) => {
            debug!(peer, "socketmap client does not read its replies; closing");
            false
        }
    }
}
