//! The IMAP poller: report e-mails (RFC 8460 §5.3) that land in an existing mailbox, read and
//! filed away, one round at a time.
//!
//! ```text
//! round:  connect (implicit TLS | STARTTLS | plain on loopback) → LOGIN → CAPABILITY
//!         create processed/invalid folders when missing → SELECT mailbox
//!         UID FETCH 1:* (UID RFC822.SIZE FLAGS)            every message still there
//!         for each, in UID order:
//!           larger than max_message_bytes      → invalid folder, unread (logged)
//!           UID FETCH uid BODY.PEEK[] → ReportSink::submit
//!             Ok(Stored)      → processed folder
//!             Ok(Quarantined) → invalid folder
//!             Err             → left in place; the round ends (retried next round)
//!         LOGOUT
//! move:   UID MOVE (RFC 6851) when CAPABILITY has MOVE, else UID COPY, +FLAGS (\Deleted),
//!         and UID EXPUNGE (RFC 4315 UIDPLUS; plain EXPUNGE without it)
//! ```
//!
//! Which messages are new needs no state of ours: every message still in the mailbox is
//! unhandled, since a handled one has been moved out. A crash (or a lost connection) between
//! `submit` and the move leaves the message in place, so the next round submits it again;
//! the store deduplicates reports by their unique key, so the second submission is counted
//! as a duplicate and nothing is stored twice. A message flagged `\Deleted` (a fallback move
//! that copied but did not expunge) is skipped: its copy already sits in its folder.
//!
//! Every network wait (connect, TLS handshake, each command) has [`ImapSettings::timeout`].
//! Message size is bounded by the server's `RFC822.SIZE` before the body is fetched; a server
//! that lies about it is bounded only by the IMAP client's own buffer limit (the mailbox is
//! the operator's, so this is not an untrusted peer).
//!
//! Without UIDPLUS, plain `EXPUNGE` also removes other messages in the mailbox that someone
//! else flagged `\Deleted`; point the poller at a mailbox that receives reports only.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::{Client, Session};
use bytes::Bytes;
use futures::TryStreamExt;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::sink::{Channel, Outcome, ReportSink, Submission, SubmissionKind};
use crate::config::{ImapTlsMode, Secret};

/// The poller's settings, validated (built by `IntakeImapSection::settings` in the config).
#[derive(Debug, Clone)]
pub struct ImapSettings {
    /// Host name (the certificate must name it) or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: ImapTlsMode,
    /// PEM roots for the server's certificate; the web PKI when `None`.
    pub ca_file: Option<PathBuf>,
    /// Login name.
    pub user: String,
    /// Password.
    pub password: Secret,
    /// The mailbox read.
    pub mailbox: String,
    /// Where stored reports go.
    pub processed_folder: String,
    /// Where quarantined and oversized input goes.
    pub invalid_folder: String,
    /// Time between rounds.
    pub poll_interval: Duration,
    /// The deadline of every network wait.
    pub timeout: Duration,
    /// The largest message fetched, in octets.
    pub max_message_bytes: u64,
    /// Whether submissions ask for a valid DKIM signature (RFC 8460 §3).
    pub require_dkim: bool,
}

/// Why a round failed before it finished. Messages not yet moved stay in the mailbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// The TCP connection could not be made.
    #[error("intake_imap: connecting to {host}:{port}: {source}")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A wait passed its deadline.
    #[error("intake_imap: {step} took longer than {timeout:?}")]
    Timeout {
        /// What was waited for.
        step: String,
        /// The deadline.
        timeout: Duration,
    },
    /// TLS could not be set up (bad host name, CA file, handshake).
    #[error("intake_imap: TLS with {host}: {reason}")]
    Tls {
        /// Host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The server refused the login.
    #[error("intake_imap: login as {user} refused: {reason}")]
    Login {
        /// The user.
        user: String,
        /// The server's words.
        reason: String,
    },
    /// An IMAP command failed.
    #[error("intake_imap: {step}: {source}")]
    Command {
        /// The command, in words.
        step: String,
        /// The client's error.
        #[source]
        source: async_imap::error::Error,
    },
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundSummary {
    /// Messages whose reports were stored (or were duplicates), moved to the processed folder.
    pub processed: usize,
    /// Messages quarantined by the sink, moved to the invalid folder.
    pub quarantined: usize,
    /// Messages over the size bound, moved to the invalid folder unread.
    pub oversized: usize,
    /// When the sink failed: its error; that message and the rest stay for the next round.
    pub deferred: Option<String>,
}

/// Runs a round every [`ImapSettings::poll_interval`] until `stop` turns true; a failed
/// round is logged and retried at the next interval. The clock gives `received_at`.
///
/// `stop` also abandons a round in flight: a message submitted but not yet moved is
/// submitted again by the next round, which the store counts as a duplicate.
pub async fn run(
    settings: ImapSettings,
    sink: Arc<dyn ReportSink>,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let polled = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            polled = poll_once(&settings, sink.as_ref(), clock()) => polled,
        };
        match polled {
            Ok(summary) if summary.deferred.is_some() => {
                tracing::warn!(?summary, "intake_imap: round ended early, the sink failed")
            }
            Ok(summary) => tracing::debug!(?summary, "intake_imap: round done"),
            Err(error) => tracing::warn!(%error, "intake_imap: round failed"),
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(settings.poll_interval) => {}
        }
    }
}

/// Starts [`run`] on its own task (the caller keeps the handle and the stop sender).
pub fn start(
    settings: ImapSettings,
    sink: Arc<dyn ReportSink>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(settings, sink, Arc::new(unix_now), stop))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One round (see the module documentation); `now` is the `received_at` of its submissions.
pub async fn poll_once(
    settings: &ImapSettings,
    sink: &dyn ReportSink,
    now: i64,
) -> Result<RoundSummary, ImapError> {
    let mut session = login(settings).await?;
    let result = round(&mut session, settings, sink, now).await;
    // The round's outcome stands whether or not the goodbye arrives.
    let _ = tokio::time::timeout(settings.timeout, session.logout()).await;
    result
}

type ImapSession = Session<Stream>;

/// Runs `f` under the settings' deadline, naming the step on failure.
async fn step<T, F>(settings: &ImapSettings, what: &str, f: F) -> Result<T, ImapError>
where
    F: std::future::Future<Output = async_imap::error::Result<T>>,
{
    match tokio::time::timeout(settings.timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(ImapError::Command {
            step: what.to_owned(),
            source,
        }),
        Err(_) => Err(ImapError::Timeout {
            step: what.to_owned(),
            timeout: settings.timeout,
        }),
    }
}

async fn login(settings: &ImapSettings) -> Result<ImapSession, ImapError> {
    let timeout = settings.timeout;
    let timed = |step: &str| ImapError::Timeout {
        step: step.to_owned(),
        timeout,
    };
    let addr = (settings.host.as_str(), settings.port);
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| timed("connecting"))?
        .map_err(|source| ImapError::Connect {
            host: settings.host.clone(),
            port: settings.port,
            source,
        })?;
    let stream = match settings.tls {
        ImapTlsMode::Implicit => Stream::Tls(Box::new(tls_handshake(settings, tcp).await?)),
        ImapTlsMode::Plain => Stream::Plain(tcp),
        ImapTlsMode::Starttls => {
            let mut client = Client::new(tcp);
            greeting(settings, &mut client).await?;
            step(
                settings,
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            Stream::Tls(Box::new(
                tls_handshake(settings, client.into_inner()).await?,
            ))
        }
    };
    let mut client = Client::new(stream);
    if settings.tls != ImapTlsMode::Starttls {
        greeting(settings, &mut client).await?;
    }
    let login = client.login(&settings.user, settings.password.expose());
    match tokio::time::timeout(timeout, login).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err((error, _))) => Err(ImapError::Login {
            user: settings.user.clone(),
            reason: error.to_string(),
        }),
        Err(_) => Err(timed("LOGIN")),
    }
}

/// Reads the server's greeting (`* OK …`).
async fn greeting<T>(settings: &ImapSettings, client: &mut Client<T>) -> Result<(), ImapError>
where
    T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match tokio::time::timeout(settings.timeout, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(ImapError::Command {
            step: "reading the greeting".into(),
            source: async_imap::error::Error::ConnectionLost,
        }),
        Ok(Err(e)) => Err(ImapError::Command {
            step: "reading the greeting".into(),
            source: e.into(),
        }),
        Err(_) => Err(ImapError::Timeout {
            step: "the greeting".into(),
            timeout: settings.timeout,
        }),
    }
}

async fn tls_handshake(
    settings: &ImapSettings,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, ImapError> {
    let tls_error = |reason: String| ImapError::Tls {
        host: settings.host.clone(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| tls_error(format!("intake_imap.ca_file {}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    tls_error(format!("intake_imap.ca_file {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    tls_error(format!("intake_imap.ca_file {}: {e}", path.display()))
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(settings.host.trim_matches(['[', ']']).to_owned())
        .map_err(|e| tls_error(format!("intake_imap.host is not a TLS server name: {e}")))?;
    let connect = TlsConnector::from(Arc::new(config)).connect(name, tcp);
    match tokio::time::timeout(settings.timeout, connect).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => Err(tls_error(e.to_string())),
        Err(_) => Err(ImapError::Timeout {
            step: "the TLS handshake".into(),
            timeout: settings.timeout,
        }),
    }
}

/// A message still in the mailbox.
struct Pending {
    uid: u32,
    size: u64,
}

async fn round(
    session: &mut ImapSession,
    settings: &ImapSettings,
    sink: &dyn ReportSink,
    now: i64,
) -> Result<RoundSummary, ImapError> {
    let capabilities = step(settings, "CAPABILITY", session.capabilities()).await?;
    let has_move = capabilities.has_str("MOVE");
    let has_uidplus = capabilities.has_str("UIDPLUS");
    for folder in [&settings.processed_folder, &settings.invalid_folder] {
        ensure_folder(session, settings, folder).await?;
    }
    let mailbox = step(settings, "SELECT", session.select(&settings.mailbox)).await?;
    let mut pending = Vec::new();
    if mailbox.exists > 0 {
        let fetches = step(settings, "UID FETCH (sizes)", async {
            session
                .uid_fetch("1:*", "(UID RFC822.SIZE FLAGS)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        for fetch in &fetches {
            let deleted = fetch
                .flags()
                .any(|f| matches!(f, async_imap::types::Flag::Deleted));
            if let (Some(uid), false) = (fetch.uid, deleted) {
                pending.push(Pending {
                    uid,
                    size: fetch.size.map_or(0, u64::from),
                });
            }
        }
    }
    pending.sort_by_key(|p| p.uid);
    let uidvalidity = mailbox.uid_validity.unwrap_or(0);
    let mut summary = RoundSummary::default();
    for message in pending {
        if message.size > settings.max_message_bytes {
            tracing::warn!(
                uid = message.uid,
                size = message.size,
                limit = settings.max_message_bytes,
                mailbox = %settings.mailbox,
                "intake_imap: message too large, moved to the invalid folder unread"
            );
            move_to(
                session,
                settings,
                message.uid,
                &settings.invalid_folder,
                has_move,
                has_uidplus,
            )
            .await?;
            summary.oversized += 1;
            continue;
        }
        let uid_set = message.uid.to_string();
        let fetches = step(settings, "UID FETCH (body)", async {
            session
                .uid_fetch(&uid_set, "BODY.PEEK[]")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        let Some(raw) = fetches
            .iter()
            .find(|f| f.uid == Some(message.uid))
            .and_then(|f| f.body())
        else {
            // Expunged by someone else since the size fetch: nothing left to handle.
            continue;
        };
        let submission = Submission {
            channel: Channel::Imap,
            kind: SubmissionKind::Message,
            raw: Bytes::copy_from_slice(raw),
            received_at: now,
            peer: None,
            origin: format!(
                "imap {}@{}:{} {} uidvalidity {uidvalidity} uid {}",
                settings.user, settings.host, settings.port, settings.mailbox, message.uid
            ),
            require_dkim: settings.require_dkim,
        };
        let folder = match sink.submit(submission).await {
            Ok(Outcome::Stored { .. }) => {
                summary.processed += 1;
                &settings.processed_folder
            }
            Ok(Outcome::Quarantined { .. }) => {
                summary.quarantined += 1;
                &settings.invalid_folder
            }
            Err(error) => {
                summary.deferred = Some(error.to_string());
                return Ok(summary);
            }
        };
        move_to(
            session,
            settings,
            message.uid,
            folder,
            has_move,
            has_uidplus,
        )
        .await?;
    }
    Ok(summary)
}

/// Creates `folder` unless `LIST` finds it.
async fn ensure_folder(
    session: &mut ImapSession,
    settings: &ImapSettings,
    folder: &str,
) -> Result<(), ImapError> {
    let found = step(settings, "LIST", async {
        session
            .list(Some(""), Some(folder))
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    if found.iter().any(|n| n.name() == folder) {
        return Ok(());
    }
    step(
        settings,
        &format!("CREATE {folder}"),
        session.create(folder),
    )
    .await
}

async fn move_to(
    session: &mut ImapSession,
    settings: &ImapSettings,
    uid: u32,
    folder: &str,
    has_move: bool,
    has_uidplus: bool,
) -> Result<(), ImapError> {
    let uid_set = uid.to_string();
    if has_move {
        return step(settings, "UID MOVE", session.uid_mv(&uid_set, folder)).await;
    }
    step(settings, "UID COPY", session.uid_copy(&uid_set, folder)).await?;
    step(settings, "UID STORE +FLAGS (\\Deleted)", async {
        session
            .uid_store(&uid_set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    if has_uidplus {
        step(settings, "UID EXPUNGE", async {
            session
                .uid_expunge(&uid_set)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
    } else {
        step(settings, "EXPUNGE", async {
            session.expunge().await?.try_collect::<Vec<_>>().await
        })
        .await?;
    }
    Ok(())
}

/// The connection, plain or TLS.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
