//! The tokio side of the SMTP listener: accepting under the connection bound, feeding each
//! session's bytes to its state machine (`session.rs`) under deadlines, STARTTLS, and the
//! hand-over of each message to the sink.
//!
//! Bounds, each chosen so that a peer cannot make the server wait or grow without limit:
//! - a connection over `max_connections` gets one 421 line written without waiting (a fresh
//!   socket's send buffer always has room) and is closed: it never holds a task or a slot;
//! - each read waits at most `command_timeout`, the DATA block at most `data_timeout`, the
//!   whole session at most `session_timeout`; writes share the command deadline, so a peer
//!   that pipelines without reading its replies is cut off too;
//! - input is read [`READ_CHUNK`] octets at a time and only once the session handled all it
//!   had (`Step::NeedInput`); replies are written out once [`FLUSH_AT`] octets are pending;
//! - the messages being received share `max_buffered_bytes`: room for a message and its
//!   next reads is taken before they are read, and a message that finds none is discarded
//!   and answered 452 (so many sessions of the largest size cannot exhaust memory);
//! - the sink runs in its own task: its error, panic or silence past `submit_timeout` is a
//!   451 for this message and the session goes on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::reply::{self, Reply, SubmitFailure};
use super::session::{Received, Session, SessionConfig, Step};
use super::{SmtpLimits, SmtpSettings};
use crate::intake::{Channel, ReportSink, Submission, SubmissionKind};

/// Octets read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

/// Pending reply octets that are written out even while more pipelined commands wait.
const FLUSH_AT: usize = 4 * 1024;

/// The wait for a last reply (421, 221) and the TLS close before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What every session of one server shares.
pub(super) struct Shared {
    session: Arc<SessionConfig>,
    limits: SmtpLimits,
    require_dkim: bool,
    sink: Arc<dyn ReportSink>,
    tls: Option<TlsAcceptor>,
    busy: Vec<u8>,
    /// [`SmtpLimits::max_buffered_bytes`] in KiB, taken by the messages being received.
    budget: Arc<Semaphore>,
}

impl Shared {
    pub(super) fn new(
        settings: SmtpSettings,
        sink: Arc<dyn ReportSink>,
        tls: Option<Arc<ServerConfig>>,
    ) -> Shared {
        let budget = Arc::new(Semaphore::new(
            (settings.limits.max_buffered_bytes / 1024).min(Semaphore::MAX_PERMITS),
        ));
        let busy = reply::closing(&settings.hostname, "too many connections")
            .to_string()
            .into_bytes();
        Shared {
            session: Arc::new(SessionConfig {
                hostname: settings.hostname,
                recipients: settings.recipients,
                max_message_bytes: settings.limits.max_message_bytes,
                max_recipients: settings.limits.max_recipients,
                starttls: tls.is_some(),
            }),
            limits: settings.limits,
            require_dkim: settings.require_dkim,
            sink,
            tls: tls.map(TlsAcceptor::from),
            busy,
            budget,
        }
    }
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
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
                tracing::debug!(%error, "SMTP intake accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(serve(tcp, peer, shared.clone(), stop.clone(), permit));
            }
            Err(_) => {
                // Best effort: the 421 tells a well-behaved sender to come back later.
                let _ = tcp.try_write(&shared.busy);
                tracing::debug!(%peer, "SMTP intake full, connection refused with 421");
            }
        }
    }
}

/// How a run of the session over one transport ended.
enum Ended<S> {
    Closed,
    StartTls(S),
}

struct Driver {
    shared: Arc<Shared>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    session_deadline: Instant,
    out: Vec<u8>,
}

async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let mut session = Session::new(shared.session.clone());
    let mut driver = Driver {
        session_deadline: Instant::now() + shared.limits.session_timeout,
        shared: shared.clone(),
        peer,
        stop,
        out: Vec::with_capacity(FLUSH_AT),
    };
    session.greeting().write_to(&mut driver.out);
    let Ended::StartTls(tcp) = driver.drive(tcp, &mut session).await else {
        return;
    };
    // Only offered when configured, so the acceptor is there.
    let Some(acceptor) = shared.tls.clone() else {
        return;
    };
    let deadline = driver
        .session_deadline
        .min(Instant::now() + shared.limits.handshake_timeout);
    let tls = match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%error, %peer, "SMTP intake TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "SMTP intake TLS handshake timed out");
            return;
        }
    };
    session.tls_started();
    // STARTTLS is refused once TLS is active, so this run ends with the session.
    let _ = driver.drive(tls, &mut session).await;
}

impl Driver {
    /// Runs `session` over `io` until it closes or STARTTLS hands `io` back for the handshake.
    async fn drive<S>(&mut self, mut io: S, session: &mut Session) -> Ended<S>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let limits = self.shared.limits.clone();
        let host = self.shared.session.hostname.clone();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut data_deadline: Option<Instant> = None;
        let mut reserved: Option<OwnedSemaphorePermit> = None;
        loop {
            match session.poll() {
                Step::Reply(r) => {
                    r.write_to(&mut self.out);
                    if self.out.len() >= FLUSH_AT && !self.flush(&mut io).await {
                        return Ended::Closed;
                    }
                }
                Step::Message(m) => {
                    data_deadline = None;
                    // Earlier replies first, so the peer is not left waiting on them.
                    if !self.flush(&mut io).await {
                        return Ended::Closed;
                    }
                    let r = self.submit(m).await;
                    r.write_to(&mut self.out);
                }
                Step::StartTls(r) => {
                    r.write_to(&mut self.out);
                    if !self.flush(&mut io).await {
                        return Ended::Closed;
                    }
                    return Ended::StartTls(io);
                }
                Step::Close(r) => {
                    self.close(io, r).await;
                    return Ended::Closed;
                }
                Step::NeedInput => {
                    if !self.flush(&mut io).await {
                        return Ended::Closed;
                    }
                    if !session.in_data() {
                        data_deadline = None;
                    } else if data_deadline.is_none() {
                        data_deadline = Some(Instant::now() + limits.data_timeout);
                    }
                    self.reserve(&mut reserved, session);
                    let mut deadline = (Instant::now() + limits.command_timeout, "command");
                    if self.session_deadline < deadline.0 {
                        deadline = (self.session_deadline, "session");
                    }
                    if let Some(d) = data_deadline.filter(|d| *d < deadline.0) {
                        deadline = (d, "DATA");
                    }
                    let read = tokio::select! {
                        _ = self.stop.wait_for(|s| *s) => None,
                        read = tokio::time::timeout_at(deadline.0, io.read(&mut buf)) => Some(read),
                    };
                    let Some(read) = read else {
                        self.close(io, reply::closing(&host, "shutting down")).await;
                        return Ended::Closed;
                    };
                    match read {
                        Ok(Ok(0)) => return Ended::Closed,
                        Ok(Ok(n)) => session.feed(&buf[..n]),
                        Ok(Err(error)) => {
                            tracing::debug!(%error, peer = %self.peer, "SMTP intake read failed");
                            return Ended::Closed;
                        }
                        Err(_) => {
                            tracing::debug!(peer = %self.peer, what = deadline.1, "SMTP intake deadline");
                            self.close(io, reply::timed_out(&host, deadline.1)).await;
                            return Ended::Closed;
                        }
                    }
                }
            }
        }
    }

    /// Holds room in the shared budget for the message being received and the next reads,
    /// or gives the message up (452) when there is none; frees the room outside DATA.
    fn reserve(&self, reserved: &mut Option<OwnedSemaphorePermit>, session: &mut Session) {
        if !session.receiving() {
            *reserved = None;
            return;
        }
        let need = (session.body_len() + 2 * READ_CHUNK).div_ceil(1024);
        let have = reserved
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits);
        if need <= have {
            return;
        }
        let more = u32::try_from(need - have).unwrap_or(u32::MAX);
        match self.shared.budget.clone().try_acquire_many_owned(more) {
            Ok(permit) => match reserved {
                Some(held) => held.merge(permit),
                None => *reserved = Some(permit),
            },
            Err(_) => {
                tracing::info!(peer = %self.peer, "SMTP intake out of message memory, 452");
                session.drop_message(reply::no_room());
                *reserved = None;
            }
        }
    }

    /// Writes the pending replies within the command deadline; whether they went out.
    async fn flush<S: AsyncWrite + Unpin>(&mut self, io: &mut S) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let deadline = self
            .session_deadline
            .min(Instant::now() + self.shared.limits.command_timeout);
        let write = async {
            io.write_all(&self.out).await?;
            io.flush().await
        };
        let ok = matches!(tokio::time::timeout_at(deadline, write).await, Ok(Ok(())));
        if !ok {
            tracing::debug!(peer = %self.peer, "SMTP intake could not write its replies");
        }
        self.out.clear();
        ok
    }

    /// Sends the last reply, and the TLS close where there is one, briefly; then drops `io`.
    async fn close<S: AsyncWrite + Unpin>(&mut self, mut io: S, last: Reply) {
        last.write_to(&mut self.out);
        let out = std::mem::take(&mut self.out);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            io.write_all(&out).await?;
            io.shutdown().await
        })
        .await;
    }

    /// Hands a message to the sink; the reply says whether it was committed.
    async fn submit(&self, m: Received) -> Reply {
        let ip = self.peer.ip();
        let from: String = m
            .from
            .chars()
            .filter(|c| !c.is_control())
            .take(256)
            .collect();
        let submission = Submission {
            channel: Channel::Smtp,
            kind: SubmissionKind::Message,
            raw: Bytes::from(m.body),
            // The outermost layer reads the clock.
            received_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            peer: Some(ip),
            origin: format!("smtp from {ip} MAIL FROM:<{from}>"),
            require_dkim: self.shared.require_dkim,
        };
        let sink = self.shared.sink.clone();
        // Its own task: a panic in the sink is a JoinError here, not the end of the session.
        let mut task = tokio::spawn(async move { sink.submit(submission).await });
        let result = match tokio::time::timeout(self.shared.limits.submit_timeout, &mut task).await
        {
            Ok(Ok(Ok(outcome))) => Ok(outcome),
            Ok(Ok(Err(e))) => Err(SubmitFailure::Sink(e)),
            Ok(Err(_)) => Err(SubmitFailure::Crashed),
            Err(_) => {
                task.abort();
                Err(SubmitFailure::Timeout)
            }
        };
        match &result {
            Ok(outcome) => {
                tracing::debug!(peer = %self.peer, ?outcome, "SMTP intake committed a message")
            }
            Err(error) => tracing::warn!(
                peer = %self.peer,
                %error,
                "SMTP intake: message not committed, the sender was told to retry"
            ),
        }
        reply::submitted(&result)
    }
}
