//! The lab's MX servers: just enough SMTP (RFC 5321 §4.1) and STARTTLS (RFC 3207 §4) for a
//! prober to see the banner, the EHLO keywords, and the TLS handshake of each fault.
//!
//! ```text
//! S: 220 <host> ESMTP stsward-lab
//! C: EHLO <client>        S: 250-<host> ... 250 STARTTLS (unless no-starttls)
//! C: STARTTLS             S: 220 2.0.0 Ready to start TLS     -> TLS handshake
//! C: EHLO <client>        S: 250-<host> ...   (no STARTTLS once TLS is up)
//! C: MAIL FROM:<..>       S: 250 2.1.0 Ok     (only once TLS is up; 502 before)
//! C: RCPT TO:<..>         S: 250 2.1.5 Ok
//! C: DATA                 S: 354 ...  then the message up to a line ".": 250 2.0.0 Ok
//! C: QUIT                 S: 221 2.0.0 Bye
//! anything else           S: 502 / 500 / 503
//! ```
//!
//! A message accepted over TLS is counted per listening address ([`ConnStats::messages`]),
//! so that a test delivering real mail (Postfix, in `stsward-testkit`) can ask how many
//! messages an MX host took; the lab keeps no message content.
//!
//! The session is a pure state machine ([`Session`]) fed one line at a time; thin wrappers
//! run it over tokio (rustls) or, for the legacy TLS variants that rustls cannot speak, over
//! a blocking OpenSSL stream on a worker thread.

use std::io::{BufRead, BufReader as StdBufReader, Read as _, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use openssl::ssl::{SslAcceptor, SslMethod, SslVersion};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::ca::IssuedCert;

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF; the lab allows
/// some slack before it gives up on a client.
const MAX_COMMAND_LINE: u64 = 1024;
/// How long a client may stay silent before the lab hangs up (RFC 5321 §4.5.3.2.7 allows
/// five minutes; a test lab needs far less).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The greeting of an `escape-greeting` host (RFC 5321 §3.1: a 554 greeting refuses the
/// session), with terminal escape sequences in its text: erase screen, red, the window title
/// ended by BEL, a bare CR that would return over the line, a C1 CSI (U+009B in UTF-8), DEL.
/// A checker must show the text (it explains the refusal) without letting the terminal act
/// on it.
pub const ESCAPE_GREETING: &[u8] =
    b"554 \x1b[2J\x1b[31mno service\x1b[0m \x1b]0;pwned\x07\rFAKE \xc2\x9b1m\x7f\r\n";
/// What a `handshake-fail` host sends instead of a TLS ServerHello.
const NOT_TLS: &[u8] = b"this is not a TLS handshake\r\n";

/// Errors building an SMTP site.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// OpenSSL refused the legacy acceptor's configuration.
    #[error("configuring OpenSSL for {host}: {source}")]
    Openssl {
        /// The MX host.
        host: String,
        /// The underlying error.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// rustls refused the certificate.
    #[error("configuring rustls for {host}: {source}")]
    Rustls {
        /// The MX host.
        host: String,
        /// The underlying error.
        #[source]
        source: rustls::Error,
    },
}

/// Which TLS versions a legacy (OpenSSL) site accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyTls {
    /// TLS 1.0 only.
    Tls10Only,
    /// TLS 1.0 up to TLS 1.3.
    Tls10AndModern,
}

/// How an SMTP site treats STARTTLS.
#[derive(Clone)]
pub enum SmtpTls {
    /// STARTTLS is not offered.
    NotOffered,
    /// STARTTLS with rustls (TLS 1.2 and 1.3).
    Modern(TlsAcceptor),
    /// STARTTLS with OpenSSL, legacy versions allowed.
    Legacy(Arc<SslAcceptor>),
    /// STARTTLS is accepted, then the server sends bytes that are not TLS and hangs up.
    Garbage,
    /// No session at all: the server greets with these bytes (a 554 refusal) and hangs up.
    RejectGreeting(&'static [u8]),
    /// Waits this long after accepting, then behaves as the inner variant.
    DelayedBanner(Duration, Box<SmtpTls>),
}

impl std::fmt::Debug for SmtpTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SmtpTls::NotOffered => "NotOffered",
            SmtpTls::Modern(_) => "Modern",
            SmtpTls::Legacy(_) => "Legacy",
            SmtpTls::Garbage => "Garbage",
            SmtpTls::RejectGreeting(_) => "RejectGreeting",
            SmtpTls::DelayedBanner(..) => "DelayedBanner",
        })
    }
}

impl SmtpTls {
    /// A rustls acceptor presenting `cert`.
    pub fn modern(host: &str, cert: &IssuedCert) -> Result<Self, SmtpError> {
        let config = rustls::ServerConfig::builder_with_provider(crate::https::provider())
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                builder
                    .with_no_client_auth()
                    .with_single_cert(cert.chain.clone(), cert.private_key())
            })
            .map_err(|source| SmtpError::Rustls {
                host: host.to_owned(),
                source,
            })?;
        Ok(SmtpTls::Modern(TlsAcceptor::from(Arc::new(config))))
    }

    /// An OpenSSL acceptor presenting `cert` with TLS 1.0 enabled. `@SECLEVEL=0` is what lets
    /// OpenSSL 3 negotiate TLS 1.0 at all (its default level 1 forbids SHA-1 signatures).
    pub fn legacy(host: &str, cert: &IssuedCert, versions: LegacyTls) -> Result<Self, SmtpError> {
        let err = |source| SmtpError::Openssl {
            host: host.to_owned(),
            source,
        };
        let mut builder =
            SslAcceptor::mozilla_intermediate(SslMethod::tls_server()).map_err(err)?;
        builder
            .set_cipher_list("DEFAULT:@SECLEVEL=0")
            .map_err(err)?;
        builder.set_security_level(0);
        builder
            .set_min_proto_version(Some(SslVersion::TLS1))
            .map_err(err)?;
        let max = match versions {
            LegacyTls::Tls10Only => Some(SslVersion::TLS1),
            LegacyTls::Tls10AndModern => Some(SslVersion::TLS1_3),
        };
        builder.set_max_proto_version(max).map_err(err)?;
        let mut chain = cert.chain.iter();
        if let Some(leaf) = chain.next() {
            let leaf = openssl::x509::X509::from_der(leaf.as_ref()).map_err(err)?;
            builder.set_certificate(&leaf).map_err(err)?;
        }
        for extra in chain {
            let extra = openssl::x509::X509::from_der(extra.as_ref()).map_err(err)?;
            builder.add_extra_chain_cert(extra).map_err(err)?;
        }
        let key =
            openssl::pkey::PKey::private_key_from_pkcs8(cert.private_key_pkcs8()).map_err(err)?;
        builder.set_private_key(&key).map_err(err)?;
        builder.check_private_key().map_err(err)?;
        Ok(SmtpTls::Legacy(Arc::new(builder.build())))
    }
}

/// Where a stalling MX host stops answering. A prober must bound every step; each of these
/// hosts leaves it waiting at one step, for far longer than any check's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// TCP connect never completes: the listener never accepts and its backlog is kept full,
    /// so the kernel drops further SYNs (the loopback stand-in for a blackholed address).
    Connect,
    /// Accepts TCP, never sends the banner.
    AfterConnect,
    /// Sends the banner, never answers EHLO.
    AfterBanner,
    /// Answers EHLO (offering STARTTLS), never answers STARTTLS.
    AfterEhlo,
    /// Offers no STARTTLS, and never answers QUIT.
    AtQuit,
    /// Says 220 to STARTTLS, then never speaks TLS.
    InHandshake,
    /// Sends its banner one byte a second.
    TrickleBanner,
}

/// How long a stalling host holds a connection before it gives up on the client.
const STALL_HOLD: Duration = Duration::from_secs(600);

/// One listening MX address: its banner name and its STARTTLS behaviour.
#[derive(Debug, Clone)]
pub struct SmtpSite {
    /// The name in the banner and EHLO answer.
    pub hostname: String,
    /// What STARTTLS does.
    pub tls: SmtpTls,
    /// Where the host stops answering, if it does.
    pub stall: Option<Stall>,
}

/// Concurrent connections of one listener, for the benchmark's "at most N per address".
#[derive(Debug, Default)]
pub struct ConnStats {
    open: AtomicUsize,
    peak: AtomicUsize,
    total: AtomicUsize,
    messages: AtomicUsize,
}

impl ConnStats {
    /// The most connections that were open at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Connections accepted in all.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Messages accepted (end of DATA answered 250), all over TLS: the lab takes no mail
    /// in plaintext.
    pub fn messages(&self) -> usize {
        self.messages.load(Ordering::Relaxed)
    }

    fn message_accepted(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    fn opened(self: &Arc<Self>) -> OpenConn {
        let n = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(n, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        OpenConn(self.clone())
    }
}

struct OpenConn(Arc<ConnStats>);

/// A connection that counts as open until the lab shuts down its write side or drops it.
/// `open` is declared before `tcp`, so it is dropped first: the count falls before the FIN
/// leaves, and a client that waits for the lab's close before opening its next connection
/// is never seen overlapping with itself.
struct Counted {
    open: Option<OpenConn>,
    tcp: TcpStream,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.open = None;
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl Drop for OpenConn {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the session wants the transport to do after a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this reply (CRLF-terminated lines) and read the next command.
    Reply(String),
    /// Send this reply, then start the TLS handshake.
    StartTls(String),
    /// Send this reply, then close the connection.
    Close(String),
    /// A message was accepted (the end of DATA): count it, send this reply, read on.
    Accepted(String),
    /// A line of message content: nothing to send, read the next line.
    Silent,
}

/// Where the session is in a mail transaction (RFC 5321 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transaction {
    /// No MAIL yet (or after RSET, or after a message).
    Idle,
    /// MAIL accepted, no RCPT yet.
    HaveSender,
    /// At least one RCPT accepted.
    HaveRecipient,
    /// Inside DATA: lines are content until a line with a single ".".
    Data,
}

/// The SMTP session state machine (RFC 5321 §4.1.1, RFC 3207 §4).
#[derive(Debug, Clone)]
pub struct Session {
    hostname: String,
    offer_starttls: bool,
    tls_active: bool,
    transaction: Transaction,
}

impl Session {
    /// A new session for `hostname`, offering STARTTLS or not.
    pub fn new(hostname: &str, offer_starttls: bool) -> Self {
        Session {
            hostname: hostname.to_owned(),
            offer_starttls,
            tls_active: false,
            transaction: Transaction::Idle,
        }
    }

    /// The greeting (RFC 5321 §4.2: `220 <domain> <text>`).
    pub fn banner(&self) -> String {
        format!("220 {} ESMTP stsward-lab\r\n", self.hostname)
    }

    /// RFC 3207 §4.2: after the handshake the server forgets everything the client said.
    pub fn tls_started(&mut self) {
        self.tls_active = true;
        self.transaction = Transaction::Idle;
    }

    /// Answers one command line (without its CRLF).
    pub fn on_line(&mut self, line: &str) -> Action {
        let line = line.trim_end_matches(['\r', '\n']);
        if self.transaction == Transaction::Data {
            // RFC 5321 §4.1.1.4: the content ends with a line holding a single ".".
            if line == "." {
                self.transaction = Transaction::Idle;
                return Action::Accepted("250 2.0.0 Ok: accepted by stsward-lab\r\n".into());
            }
            return Action::Silent;
        }
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, rest)) => (verb, rest.trim()),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" if !argument.is_empty() => Action::Reply(self.ehlo_reply(argument)),
            "HELO" if !argument.is_empty() => {
                Action::Reply(format!("250 {} greets {argument}\r\n", self.hostname))
            }
            "EHLO" | "HELO" => Action::Reply("501 5.5.4 Syntax: EHLO hostname\r\n".into()),
            "STARTTLS" if self.tls_active => {
                Action::Reply("503 5.5.1 TLS already active\r\n".into())
            }
            "STARTTLS" if self.offer_starttls => {
                Action::StartTls("220 2.0.0 Ready to start TLS\r\n".into())
            }
            "STARTTLS" => Action::Reply("502 5.5.1 STARTTLS not available\r\n".into()),
            "NOOP" => Action::Reply("250 2.0.0 OK\r\n".into()),
            "RSET" => {
                self.transaction = Transaction::Idle;
                Action::Reply("250 2.0.0 OK\r\n".into())
            }
            "QUIT" => Action::Close("221 2.0.0 Bye\r\n".into()),
            "MAIL" | "RCPT" | "DATA" if self.tls_active => self.transaction_step(verb, argument),
            "MAIL" | "RCPT" | "DATA" | "VRFY" | "EXPN" | "HELP" | "BDAT" => {
                Action::Reply("502 5.5.1 The lab accepts no mail\r\n".into())
            }
            _ => Action::Reply("500 5.5.2 Command unrecognized\r\n".into()),
        }
    }

    /// MAIL, RCPT and DATA once TLS is up (RFC 5321 §3.3): any sender and recipient are
    /// taken, in the order the RFC requires.
    fn transaction_step(&mut self, verb: &str, argument: &str) -> Action {
        let reply = |text: &str| Action::Reply(format!("{text}\r\n"));
        match (verb.to_ascii_uppercase().as_str(), self.transaction) {
            ("MAIL", Transaction::Idle) if argument.to_ascii_uppercase().starts_with("FROM:") => {
                self.transaction = Transaction::HaveSender;
                reply("250 2.1.0 Ok")
            }
            ("MAIL", Transaction::Idle) => reply("501 5.5.4 Syntax: MAIL FROM:<address>"),
            ("MAIL", _) => reply("503 5.5.1 Nested MAIL command"),
            ("RCPT", Transaction::HaveSender | Transaction::HaveRecipient)
                if argument.to_ascii_uppercase().starts_with("TO:") =>
            {
                self.transaction = Transaction::HaveRecipient;
                reply("250 2.1.5 Ok")
            }
            ("RCPT", Transaction::HaveSender | Transaction::HaveRecipient) => {
                reply("501 5.5.4 Syntax: RCPT TO:<address>")
            }
            ("RCPT", _) => reply("503 5.5.1 Need MAIL command"),
            ("DATA", Transaction::HaveRecipient) => {
                self.transaction = Transaction::Data;
                reply("354 End data with <CR><LF>.<CR><LF>")
            }
            _ => reply("503 5.5.1 Need RCPT command"),
        }
    }

    fn ehlo_reply(&self, client: &str) -> String {
        let mut lines = vec![
            format!("{} greets {client}", self.hostname),
            "PIPELINING".to_owned(),
            "SIZE 10485760".to_owned(),
            "8BITMIME".to_owned(),
        ];
        if self.offer_starttls && !self.tls_active {
            lines.push("STARTTLS".to_owned());
        }
        let last = lines.len().saturating_sub(1);
        lines
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let sep = if i == last { ' ' } else { '-' };
                format!("250{sep}{text}\r\n")
            })
            .collect()
    }
}

/// Serves `site` on `listener` until the task is aborted, counting connections in `stats`.
pub fn spawn(listener: TcpListener, site: Arc<SmtpSite>, stats: Arc<ConnStats>) -> JoinHandle<()> {
    tokio::spawn(async move {
        if site.stall == Some(Stall::Connect) {
            stall_connect(listener).await;
            return;
        }
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::debug!(%error, "lab SMTP accept failed");
                    continue;
                }
            };
            let site = site.clone();
            let stream = Counted {
                open: Some(stats.opened()),
                tcp: stream,
            };
            let stats = stats.clone();
            tokio::spawn(async move {
                if let Err(error) = serve(stream, &site, &stats).await {
                    tracing::debug!(%error, %peer, host = %site.hostname, "lab SMTP session ended");
                }
            });
        }
    })
}

/// Re-listens on the listener's address with the smallest backlog, fills that backlog with
/// connections of its own and never accepts: the kernel then drops every further SYN, and a
/// client's connect times out as it would towards a blackholed address.
async fn stall_connect(listener: TcpListener) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    drop(listener);
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    };
    let Ok(socket) = socket else { return };
    if socket.set_reuseaddr(true).is_err() || socket.bind(addr).is_err() {
        return;
    }
    let Ok(_listener) = socket.listen(0) else {
        return;
    };
    // Linux queues backlog + 1 connections; a few more attempts make sure the queue is full.
    let mut held = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(c)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
        {
            held.push(c);
        }
    }
    tokio::time::sleep(STALL_HOLD).await;
}

/// Reads and discards until the client hangs up (or [`STALL_HOLD`] passes): a host that
/// stopped answering but keeps the connection open.
async fn hold<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<()> {
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(STALL_HOLD, async {
        while stream.read(&mut sink).await.unwrap_or(0) > 0 {}
    })
    .await;
    Ok(())
}

async fn serve(
    mut stream: Counted,
    site: &SmtpSite,
    stats: &Arc<ConnStats>,
) -> std::io::Result<()> {
    let mut tls = &site.tls;
    if let SmtpTls::DelayedBanner(delay, inner) = tls {
        tokio::time::sleep(*delay).await;
        tls = inner;
    }
    if let SmtpTls::RejectGreeting(greeting) = tls {
        stream.write_all(greeting).await?;
        return stream.shutdown().await;
    }
    let offer = !matches!(tls, SmtpTls::NotOffered) && site.stall != Some(Stall::AtQuit);
    let mut session = Session::new(&site.hostname, offer);
    let mut stream = BufReader::new(stream);
    let banner = session.banner();
    match site.stall {
        Some(Stall::AfterConnect) => return hold(&mut stream).await,
        Some(Stall::TrickleBanner) => {
            for b in banner.as_bytes() {
                stream.get_mut().write_all(&[*b]).await?;
                stream.get_mut().flush().await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        _ => stream.get_mut().write_all(banner.as_bytes()).await?,
    }
    if !run_plain(&mut stream, &mut session, site.stall, stats).await? {
        return Ok(());
    }
    if site.stall == Some(Stall::InHandshake) {
        return hold(&mut stream).await;
    }
    // Whatever the client sent after STARTTLS is dropped with the buffer (RFC 3207 §4.2:
    // nothing from before the handshake may leak into the TLS session).
    let mut tcp = stream.into_inner();
    match tls {
        SmtpTls::NotOffered | SmtpTls::RejectGreeting(_) | SmtpTls::DelayedBanner(..) => Ok(()),
        SmtpTls::Garbage => {
            tcp.write_all(NOT_TLS).await?;
            tcp.shutdown().await
        }
        SmtpTls::Modern(acceptor) => {
            let tls = acceptor.accept(tcp).await?;
            session.tls_started();
            let mut tls = BufReader::new(tls);
            run_plain(&mut tls, &mut session, None, stats).await?;
            Ok(())
        }
        SmtpTls::Legacy(acceptor) => {
            // The blocking OpenSSL session closes its socket itself; it counts as open until
            // this task ends (a little after the close, unlike the tokio sessions).
            let Counted { open, tcp } = tcp;
            let _open = open;
            let std_stream = tcp.into_std()?;
            std_stream.set_nonblocking(false)?;
            std_stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
            std_stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
            let acceptor = acceptor.clone();
            let stats = stats.clone();
            tokio::task::spawn_blocking(move || {
                serve_legacy(std_stream, &acceptor, session, &stats)
            })
            .await
            .map_err(std::io::Error::other)?
        }
    }
}

/// Runs the session until QUIT (returns false), STARTTLS (returns true) or end of input. A
/// stalling host stops answering at its step and holds the connection instead.
async fn run_plain<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    session: &mut Session,
    stall: Option<Stall>,
    stats: &ConnStats,
) -> std::io::Result<bool> {
    let mut line = String::new();
    loop {
        line.clear();
        let read = tokio::time::timeout(
            IDLE_TIMEOUT,
            (&mut *stream).take(MAX_COMMAND_LINE).read_line(&mut line),
        )
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if read == 0 {
            return Ok(false);
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let stop_here = match stall {
            Some(Stall::AfterBanner) => true,
            Some(Stall::AfterEhlo) => verb != "EHLO",
            Some(Stall::AtQuit) => verb == "QUIT",
            _ => false,
        };
        if stop_here {
            hold(stream).await?;
            return Ok(false);
        }
        match session.on_line(&line) {
            Action::Reply(reply) => stream.get_mut().write_all(reply.as_bytes()).await?,
            Action::Silent => {}
            Action::Accepted(reply) => {
                stats.message_accepted();
                stream.get_mut().write_all(reply.as_bytes()).await?;
            }
            Action::StartTls(reply) => {
                stream.get_mut().write_all(reply.as_bytes()).await?;
                return Ok(true);
            }
            Action::Close(reply) => {
                stream.get_mut().write_all(reply.as_bytes()).await?;
                stream.get_mut().shutdown().await?;
                return Ok(false);
            }
        }
    }
}

fn serve_legacy(
    stream: std::net::TcpStream,
    acceptor: &SslAcceptor,
    mut session: Session,
    stats: &ConnStats,
) -> std::io::Result<()> {
    let tls = acceptor.accept(stream).map_err(std::io::Error::other)?;
    session.tls_started();
    let mut tls = StdBufReader::new(tls);
    let mut line = String::new();
    loop {
        line.clear();
        if (&mut tls).take(MAX_COMMAND_LINE).read_line(&mut line)? == 0 {
            return Ok(());
        }
        let (reply, close) = match session.on_line(&line) {
            Action::Reply(reply) | Action::StartTls(reply) => (reply, false),
            Action::Accepted(reply) => {
                stats.message_accepted();
                (reply, false)
            }
            Action::Silent => (String::new(), false),
            Action::Close(reply) => (reply, true),
        };
        tls.get_mut().write_all(reply.as_bytes())?;
        if close {
            let _ = tls.get_mut().shutdown();
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5321_4_1_1_session_replies() {
        let mut session = Session::new("mx.a.test", true);
        assert_eq!(session.banner(), "220 mx.a.test ESMTP stsward-lab\r\n");
        let cases: &[(&str, &str)] = &[
            (
                "EHLO client.test\r\n",
                "250-mx.a.test greets client.test\r\n",
            ),
            (
                "HELO client.test\r\n",
                "250 mx.a.test greets client.test\r\n",
            ),
            ("EHLO\r\n", "501 "),
            ("NOOP\r\n", "250 "),
            ("MAIL FROM:<a@b.test>\r\n", "502 "),
            ("BOGUS\r\n", "500 "),
            ("\r\n", "500 "),
        ];
        for (line, expected) in cases {
            match session.on_line(line) {
                Action::Reply(reply) => assert!(reply.starts_with(expected), "{line:?}: {reply:?}"),
                other => panic!("{line:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn rfc3207_4_starttls_offered_then_withdrawn_after_handshake() {
        let mut session = Session::new("mx.a.test", true);
        let Action::Reply(ehlo) = session.on_line("EHLO c.test") else {
            panic!("EHLO must be answered")
        };
        assert!(ehlo.ends_with("250 STARTTLS\r\n"), "{ehlo}");
        assert!(
            matches!(session.on_line("starttls"), Action::StartTls(r) if r.starts_with("220 "))
        );
        session.tls_started();
        let Action::Reply(ehlo) = session.on_line("EHLO c.test") else {
            panic!("EHLO must be answered")
        };
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        assert!(matches!(session.on_line("STARTTLS"), Action::Reply(r) if r.starts_with("503 ")));
        assert!(matches!(session.on_line("QUIT"), Action::Close(r) if r.starts_with("221 ")));
    }

    #[test]
    fn rfc5321_3_3_mail_transaction_only_after_starttls() {
        let mut session = Session::new("mx.a.test", true);
        assert!(
            matches!(session.on_line("MAIL FROM:<a@b.test>"), Action::Reply(r) if r.starts_with("502 ")),
            "no mail in plaintext"
        );
        session.tls_started();
        // (line, expected reply prefix or "accepted"/"silent", why)
        let cases: &[(&str, &str, &str)] = &[
            ("RCPT TO:<x@a.test>", "503 ", "RCPT before MAIL"),
            ("DATA", "503 ", "DATA before MAIL"),
            ("MAIL TO:<a@b.test>", "501 ", "MAIL without FROM:"),
            ("MAIL FROM:<a@b.test> SIZE=10", "250 ", "MAIL"),
            ("MAIL FROM:<a@b.test>", "503 ", "nested MAIL"),
            ("DATA", "503 ", "DATA before RCPT"),
            ("RCPT TO:<x@a.test>", "250 ", "RCPT"),
            ("RCPT TO:<y@a.test>", "250 ", "a second RCPT"),
            ("DATA", "354 ", "DATA"),
            ("Subject: QUIT", "silent", "content is not a command"),
            ("..", "silent", "a dot-stuffed line is content"),
            (".", "accepted", "the end of the content"),
            ("DATA", "503 ", "a new transaction needs MAIL again"),
            ("MAIL FROM:<>", "250 ", "null sender"),
            ("RSET", "250 ", "RSET ends the transaction"),
            ("RCPT TO:<x@a.test>", "503 ", "after RSET RCPT needs MAIL"),
        ];
        for (line, expected, why) in cases {
            match (session.on_line(line), *expected) {
                (Action::Accepted(r), "accepted") => assert!(r.starts_with("250 "), "{why}"),
                (Action::Silent, "silent") => {}
                (Action::Reply(r), prefix) => assert!(r.starts_with(prefix), "{why}: {r:?}"),
                (other, _) => panic!("{why}: {line:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn rfc3207_4_no_starttls_host_neither_offers_nor_accepts_it() {
        let mut session = Session::new("mx.a.test", false);
        let Action::Reply(ehlo) = session.on_line("EHLO c.test") else {
            panic!("EHLO must be answered")
        };
        assert!(!ehlo.contains("STARTTLS"));
        assert!(ehlo.ends_with("250 8BITMIME\r\n"), "{ehlo}");
        assert!(matches!(session.on_line("STARTTLS"), Action::Reply(r) if r.starts_with("502 ")));
    }
}
