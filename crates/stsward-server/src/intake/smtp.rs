//! The receive-only SMTP listener for TLS-RPT reports sent by mail (RFC 8460 §3 `rua=mailto:`,
//! §5.3 the report e-mail).
//!
//! ```text
//! accept ── slot free? no ─► "421 4.3.2 too many connections", closed at once (no task)
//!   220 ─► EHLO/HELO ─► [STARTTLS ─► TLS handshake ─► EHLO] ─► MAIL ─► RCPT ─► DATA
//!   RCPT: report addresses and domains only, others 550 5.1.1
//!   MAIL SIZE= over the limit 552 5.3.4; a body over the limit is discarded, 552 5.3.4
//!   end of DATA ─► ReportSink::submit ─► Ok (stored or quarantined): 250
//!                                    └─► Err, slow, or crashed:       451 4.3.0 (retry)
//! deadlines: each command (read), the whole DATA, the whole session, the TLS handshake,
//!            the sink's answer; a missed one gets 421 4.4.2 and the connection closes
//! memory:    messages being received share max_buffered_bytes; one that finds no room is
//!            discarded and answered 452 4.3.1 (retry)
//! ```
//!
//! RFC 8460 §3 names the `mailto:` address in the `rua`, and §5.3 says what arrives there:
//! "The report MAY be delivered by email." This listener only moves the message to the
//! [`ReportSink`](crate::intake::ReportSink), which parses it and checks DKIM (RFC 8460 §3),
//! so a 250 here means "committed", never "read".
//!
//! The session itself (commands, replies, dot-stuffing, limits) is a pure state machine in
//! `session.rs`, fed bytes by the tokio driver in `conn.rs`; the accepted recipients are in
//! `recipients.rs` and every reply text in `reply.rs`. RFC 5321 (SMTP), RFC 3207 (STARTTLS),
//! RFC 1870 (SIZE), RFC 2920 (PIPELINING) and RFC 3463 (enhanced status codes) are not in the
//! project's reference set: where cited here, they are paraphrased, never quoted. RFC 5321
//! §4.5.3.2 suggests a server wait 5 minutes for each command; that is the default of
//! [`SmtpLimits::command_timeout`].
//!
//! ```no_run
//! # async fn demo(sink: std::sync::Arc<dyn stsward_server::intake::ReportSink>)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use stsward_server::intake::smtp::{ReportRecipients, SmtpLimits, SmtpServer, SmtpSettings};
//! let settings = SmtpSettings {
//!     hostname: "mx.provider.example".into(),
//!     recipients: ReportRecipients::new(&["tlsrpt@provider.example".into()], &[])?,
//!     require_dkim: true,
//!     limits: SmtpLimits::default(),
//! };
//! let server = SmtpServer::bind(&["0.0.0.0:25".parse()?, "[::]:25".parse()?], settings)?;
//! server
//!     .run(sink, None, async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! # Ok(()) }
//! ```

mod conn;
mod recipients;
mod reply;
mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::ResolvesServerCert;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub use recipients::{RecipientError, ReportRecipients};
pub use session::MAX_COMMAND_LINE;

use crate::intake::ReportSink;
use crate::listen;

/// The kernel's queue of connections not yet accepted, per listener.
pub const LISTEN_BACKLOG: i32 = 1024;

/// The bounds of the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpLimits {
    /// Sessions served at once over every listener; over it a new connection gets 421 and
    /// is closed at once.
    pub max_connections: usize,
    /// The largest message, in octets (announced as `SIZE`, RFC 1870).
    pub max_message_bytes: usize,
    /// The octets all messages being received may hold together; a message that finds no
    /// room is discarded and answered 452 4.3.1 (the sender retries). At least
    /// `max_message_bytes`.
    pub max_buffered_bytes: usize,
    /// Recipients per message (RFC 5321 §4.5.3.1.8, paraphrase: at least 100 must be
    /// accepted).
    pub max_recipients: usize,
    /// The wait for each command line, and for each read and write.
    pub command_timeout: Duration,
    /// The whole DATA block, from the 354 to the final dot.
    pub data_timeout: Duration,
    /// The whole session, however busy.
    pub session_timeout: Duration,
    /// The TLS handshake after STARTTLS.
    pub handshake_timeout: Duration,
    /// The sink's answer to one message; past it the sender gets 451 and retries (the
    /// store's unique keys make a late commit and the retry count once).
    pub submit_timeout: Duration,
    /// How long [`SmtpServer::run`] waits for sessions in flight after the shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for SmtpLimits {
    fn default() -> Self {
        SmtpLimits {
            max_connections: 1000,
            max_message_bytes: 10 * 1024 * 1024,
            max_buffered_bytes: 128 * 1024 * 1024,
            max_recipients: 100,
            // RFC 5321 §4.5.3.2.7 (paraphrase): a server should wait at least 5 minutes
            // for the next command.
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            session_timeout: Duration::from_secs(1800),
            handshake_timeout: Duration::from_secs(30),
            // RFC 5321 §4.5.3.2.6 (paraphrase): a client waits 10 minutes for the reply to
            // the final dot; answering well before that keeps it from giving up first.
            submit_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What the listener accepts and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// The name in the greeting and the EHLO reply (the MX host name).
    pub hostname: String,
    /// The accepted recipients.
    pub recipients: ReportRecipients,
    /// Passed on with every message ([`Submission::require_dkim`](crate::intake::Submission)).
    pub require_dkim: bool,
    /// The bounds.
    pub limits: SmtpLimits,
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpStartError {
    /// A listen address could not be bound.
    #[error("binding intake_smtp.listen {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// `max_connections` is zero or too large for a semaphore.
    #[error("intake_smtp.max_connections {0} must be between 1 and {max}", max = Semaphore::MAX_PERMITS)]
    MaxConnections(usize),
    /// A limit that must not be zero is.
    #[error("intake_smtp.{0} must not be zero")]
    Zero(&'static str),
    /// `max_buffered_bytes` cannot hold one message of `max_message_bytes`.
    #[error("intake_smtp.max_buffered_bytes {0} is smaller than max_message_bytes")]
    Buffered(usize),
    /// No recipient is configured: the listener would refuse every message.
    #[error("intake_smtp: no report_addresses or report_domains to accept mail for")]
    NoRecipients,
}

/// The bound listeners, ready to [`run`](SmtpServer::run).
#[derive(Debug)]
pub struct SmtpServer {
    listeners: Vec<TcpListener>,
    settings: SmtpSettings,
}

impl SmtpServer {
    /// Binds `addrs` (port 0 picks a free port; see [`addrs`](SmtpServer::addrs)). IPv6
    /// sockets are IPv6-only, so `0.0.0.0:25` and `[::]:25` can both be given. Must be called
    /// inside a Tokio runtime.
    pub fn bind(addrs: &[SocketAddr], settings: SmtpSettings) -> Result<Self, SmtpStartError> {
        let l = &settings.limits;
        if l.max_connections == 0 || l.max_connections > Semaphore::MAX_PERMITS {
            return Err(SmtpStartError::MaxConnections(l.max_connections));
        }
        for (name, zero) in [
            ("max_message_bytes", l.max_message_bytes == 0),
            ("max_recipients", l.max_recipients == 0),
            ("command_timeout", l.command_timeout.is_zero()),
            ("data_timeout", l.data_timeout.is_zero()),
            ("session_timeout", l.session_timeout.is_zero()),
            ("handshake_timeout", l.handshake_timeout.is_zero()),
            ("submit_timeout", l.submit_timeout.is_zero()),
        ] {
            if zero {
                return Err(SmtpStartError::Zero(name));
            }
        }
        if l.max_buffered_bytes < l.max_message_bytes {
            return Err(SmtpStartError::Buffered(l.max_buffered_bytes));
        }
        if settings.recipients.is_empty() {
            return Err(SmtpStartError::NoRecipients);
        }
        let listeners = addrs
            .iter()
            .map(|&addr| {
                listen::tcp(addr, LISTEN_BACKLOG)
                    .map_err(|source| SmtpStartError::Bind { addr, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SmtpServer {
            listeners,
            settings,
        })
    }

    /// The bound addresses, in the order given.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` completes, handing every message to `sink`; offers STARTTLS
    /// when `tls` is given (see [`tls_config`]). Then the listeners close, idle sessions get
    /// 421, a message being submitted is answered first, and sessions get up to
    /// [`SmtpLimits::shutdown_grace`] to end.
    pub async fn run(
        self,
        sink: Arc<dyn ReportSink>,
        tls: Option<Arc<ServerConfig>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), SmtpStartError> {
        let settings = self.settings;
        let limits = settings.limits.clone();
        let shared = Arc::new(conn::Shared::new(settings, sink, tls));
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let (stop_tx, stop) = watch::channel(false);
        let mut loops = JoinSet::new();
        for listener in self.listeners {
            loops.spawn(conn::accept_loop(
                listener,
                shared.clone(),
                slots.clone(),
                stop.clone(),
            ));
        }
        shutdown.await;
        // Receivers only go away with the tasks; a send error means nothing is left to stop.
        let _ = stop_tx.send(true);
        while loops.join_next().await.is_some() {}
        if !listen::drained(&slots, limits.max_connections, limits.shutdown_grace).await {
            tracing::info!("SMTP intake stopped with sessions still open");
        }
        Ok(())
    }
}

/// A TLS configuration for STARTTLS: TLS 1.3 and 1.2, the certificate from `resolver` (the
/// store's certificates, or one from files through `rustls::sign::SingleCertAndKey`).
pub fn tls_config(
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    Ok(Arc::new(config))
}
