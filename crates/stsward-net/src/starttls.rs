//! RFC 3207 §4 / RFC 8461 §4.2 — probing an MX host's STARTTLS.
//!
//! ```text
//! S: 220[-] banner                 (RFC 5321 §4.3.1; multi-line with "220-")
//! C: EHLO <helo name>              S: 250[-] keywords … (RFC 5321 §4.1.1.1)
//! C: STARTTLS                      S: 220 go ahead      (RFC 3207 §4)
//!    TLS handshake, SNI = the MX host name (RFC 8461 §4.2, RFC 6066 §3)
//! C: QUIT                          (over TLS, or in clear when STARTTLS is not offered)
//! ```
//!
//! Every step has its own timeout and its own error, so that "STARTTLS offered but the
//! handshake failed" is never confused with "STARTTLS not offered". The handshake accepts any
//! chain (see [`crate::tls`]); the chain is then judged for trust, name and validity
//! separately by [`crate::cert::judge`]. Bytes the server sent after its `220` to STARTTLS
//! are discarded unread (RFC 3207 §6: no plaintext may be trusted once TLS starts).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, ServerName};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::cert::{CertVerdict, Roots, judge};
use crate::legacy::{LegacyMode, LegacyTls};
use crate::smtp_reply::{EhloExtension, Reply, ReplyError, ReplyParser, ehlo_extensions};
use crate::tls::{TlsVersion, client_config, negotiated};

/// RFC 5321 §4.5.3.2.1: a client should wait 5 minutes for the banner. A probe shows a person
/// a result, so it gives up sooner by default; a sender may configure the RFC's values.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// `--smtp-port` (25 in production).
    pub smtp_port: u16,
    /// The name sent with EHLO.
    pub helo_name: String,
    /// Trust anchors for judging the chain.
    pub roots: Roots,
    /// TCP connect.
    pub connect_timeout: Duration,
    /// Waiting for the 220 banner.
    pub banner_timeout: Duration,
    /// EHLO and its reply.
    pub ehlo_timeout: Duration,
    /// STARTTLS and its reply.
    pub starttls_timeout: Duration,
    /// The TLS handshake.
    pub handshake_timeout: Duration,
    /// When to try TLS 1.0/1.1 with OpenSSL (needs the `legacy-tls` feature).
    pub legacy: LegacyMode,
}

impl ProbeConfig {
    /// Port 25, RFC-shaped timeouts of [`DEFAULT_STEP_TIMEOUT`], legacy probe on failure.
    pub fn new(helo_name: impl Into<String>, roots: Roots) -> ProbeConfig {
        ProbeConfig {
            smtp_port: 25,
            helo_name: helo_name.into(),
            roots,
            connect_timeout: DEFAULT_STEP_TIMEOUT,
            banner_timeout: DEFAULT_STEP_TIMEOUT,
            ehlo_timeout: DEFAULT_STEP_TIMEOUT,
            starttls_timeout: DEFAULT_STEP_TIMEOUT,
            handshake_timeout: DEFAULT_STEP_TIMEOUT,
            legacy: LegacyMode::OnFailure,
        }
    }
}

/// The step a probe was at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeStep {
    /// TCP connect.
    Connect,
    /// Reading the banner.
    Banner,
    /// EHLO.
    Ehlo,
    /// STARTTLS.
    Starttls,
    /// The TLS handshake.
    Handshake,
}

/// How an SMTP exchange went wrong.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SmtpFailure {
    /// The server answered with a code other than the expected one.
    #[error("server answered {code}: {text}")]
    Rejected {
        /// The reply code.
        code: u16,
        /// The reply text, lines joined with a space.
        text: String,
    },
    /// The bytes are not an SMTP reply.
    #[error("malformed reply: {0}")]
    Malformed(#[from] ReplyError),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// A socket error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a probe of one address stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// No TCP connection.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// No usable 220 banner.
    #[error("banner: {0}")]
    Banner(SmtpFailure),
    /// EHLO failed.
    #[error("EHLO: {0}")]
    Ehlo(SmtpFailure),
    /// STARTTLS was offered but the server refused the command with this code.
    #[error("STARTTLS refused with {0}")]
    StarttlsRefused(u16),
    /// STARTTLS was offered but the exchange broke down (not a refusal).
    #[error("STARTTLS: {0}")]
    Starttls(SmtpFailure),
    /// STARTTLS was accepted but the TLS handshake failed.
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
    /// A step took longer than its timeout.
    #[error("{step:?} timed out after {after:?}")]
    Timeout {
        /// The step.
        step: ProbeStep,
        /// Its timeout.
        after: Duration,
    },
}

/// The TLS facts of a completed handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Negotiated version.
    pub version: TlsVersion,
    /// Negotiated cipher suite.
    pub cipher: String,
    /// The presented chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Trust, name and validity, each judged on its own.
    pub verdict: CertVerdict,
}

/// What one address of an MX host showed.
#[derive(Debug)]
pub struct AddrProbe {
    /// The address and port probed.
    pub addr: SocketAddr,
    /// The banner, if one came.
    pub banner: Option<Reply>,
    /// EHLO keywords, if EHLO succeeded.
    pub ehlo_extensions: Vec<EhloExtension>,
    /// Whether EHLO announced STARTTLS.
    pub starttls_offered: bool,
    /// The TLS session, if the handshake completed.
    pub tls: Option<TlsInfo>,
    /// The TLS 1.0/1.1 probe, when it ran.
    pub legacy: Option<LegacyTls>,
    /// Where the probe stopped early, if it did.
    pub error: Option<ProbeError>,
}

impl AddrProbe {
    /// The best version the server accepted: the rustls session if there was one, else what
    /// the legacy probe found.
    pub fn best_version(&self) -> Option<TlsVersion> {
        let modern = self.tls.as_ref().map(|t| t.version);
        let old = self.legacy.as_ref().and_then(|l| l.best_version);
        modern.max(old)
    }
}

/// Probes every address of MX host `host`, concurrently; results are in the order of `addrs`.
pub async fn probe_mx(
    host: &str,
    addrs: &[IpAddr],
    cfg: &ProbeConfig,
    now: SystemTime,
) -> Vec<AddrProbe> {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    futures::future::join_all(addrs.iter().map(|ip| probe_addr(&host, *ip, cfg, now))).await
}

async fn probe_addr(host: &str, ip: IpAddr, cfg: &ProbeConfig, now: SystemTime) -> AddrProbe {
    let addr = SocketAddr::new(ip, cfg.smtp_port);
    let mut probe = AddrProbe {
        addr,
        banner: None,
        ehlo_extensions: Vec::new(),
        starttls_offered: false,
        tls: None,
        legacy: None,
        error: None,
    };
    if let Err(e) = smtp_then_tls(host, addr, cfg, now, &mut probe).await {
        probe.error = Some(e);
    }
    let run_legacy = match cfg.legacy {
        LegacyMode::Never => false,
        LegacyMode::Always => probe.starttls_offered,
        // Any handshake failure, not only a protocol-version alert: servers that cannot
        // speak TLS 1.2 often answer with a bare handshake_failure or just close.
        LegacyMode::OnFailure => matches!(
            probe.error,
            Some(ProbeError::Handshake(_))
                | Some(ProbeError::Timeout {
                    step: ProbeStep::Handshake,
                    ..
                })
        ),
    };
    if run_legacy {
        probe.legacy = crate::legacy::probe(host, addr, cfg).await;
    }
    probe
}

async fn step<T>(
    step: ProbeStep,
    after: Duration,
    fut: impl std::future::Future<Output = Result<T, ProbeError>>,
) -> Result<T, ProbeError> {
    tokio::time::timeout(after, fut)
        .await
        .map_err(|_| ProbeError::Timeout { step, after })?
}

async fn smtp_then_tls(
    host: &str,
    addr: SocketAddr,
    cfg: &ProbeConfig,
    now: SystemTime,
    probe: &mut AddrProbe,
) -> Result<(), ProbeError> {
    let tcp = step(ProbeStep::Connect, cfg.connect_timeout, async {
        TcpStream::connect(addr).await.map_err(ProbeError::Connect)
    })
    .await?;
    let mut smtp = SmtpConn::new(tcp);

    let banner = step(ProbeStep::Banner, cfg.banner_timeout, async {
        smtp.expect(None, 220).await.map_err(ProbeError::Banner)
    })
    .await?;
    probe.banner = Some(banner);

    let ehlo = step(ProbeStep::Ehlo, cfg.ehlo_timeout, async {
        let cmd = format!("EHLO {}\r\n", cfg.helo_name);
        smtp.expect(Some(&cmd), 250).await.map_err(ProbeError::Ehlo)
    })
    .await?;
    probe.ehlo_extensions = ehlo_extensions(&ehlo);
    probe.starttls_offered = probe
        .ehlo_extensions
        .iter()
        .any(|e| e.keyword == "STARTTLS");
    if !probe.starttls_offered {
        smtp.quit().await;
        return Ok(());
    }

    step(ProbeStep::Starttls, cfg.starttls_timeout, async {
        match smtp.expect(Some("STARTTLS\r\n"), 220).await {
            Ok(_) => Ok(()),
            Err(SmtpFailure::Rejected { code, .. }) => Err(ProbeError::StarttlsRefused(code)),
            Err(other) => Err(ProbeError::Starttls(other)),
        }
    })
    .await?;

    let tcp = smtp.into_plain();
    let tls = step(ProbeStep::Handshake, cfg.handshake_timeout, async {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            ProbeError::Handshake(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        })?;
        let config =
            client_config(&[]).map_err(|e| ProbeError::Handshake(std::io::Error::other(e)))?;
        TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(ProbeError::Handshake)
    })
    .await?;
    let session = negotiated(tls.get_ref().1);
    let verdict = judge(&session.chain, host, &cfg.roots, now);
    probe.tls = Some(TlsInfo {
        version: session.version,
        cipher: session.cipher,
        chain: session.chain,
        verdict,
    });
    let mut smtp = SmtpConn::new(tls);
    // Politeness only: the probe already has what it came for.
    let _ = tokio::time::timeout(cfg.ehlo_timeout, smtp.quit()).await;
    Ok(())
}

/// The thin async wrapper around [`ReplyParser`].
struct SmtpConn<S> {
    io: S,
    parser: ReplyParser,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SmtpConn<S> {
    fn new(io: S) -> Self {
        SmtpConn {
            io,
            parser: ReplyParser::new(),
        }
    }

    async fn read_reply(&mut self) -> Result<Reply, SmtpFailure> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(reply) = self.parser.next_reply()? {
                return Ok(reply);
            }
            let n = self.io.read(&mut buf).await?;
            let Some(got) = buf.get(..n).filter(|g| !g.is_empty()) else {
                return Err(SmtpFailure::Closed);
            };
            self.parser.push(got);
        }
    }

    /// Sends `cmd` (if any) and expects a reply with code `want`.
    async fn expect(&mut self, cmd: Option<&str>, want: u16) -> Result<Reply, SmtpFailure> {
        if let Some(cmd) = cmd {
            self.io.write_all(cmd.as_bytes()).await?;
            self.io.flush().await?;
        }
        let reply = self.read_reply().await?;
        if reply.code != want {
            return Err(SmtpFailure::Rejected {
                code: reply.code,
                text: reply.lines.join(" "),
            });
        }
        Ok(reply)
    }

    async fn quit(&mut self) {
        if self.io.write_all(b"QUIT\r\n").await.is_ok() {
            let _ = self.read_reply().await;
        }
        let _ = self.io.shutdown().await;
    }

    /// The raw stream for the TLS handshake; whatever the server sent after its 220 is
    /// dropped here, never fed to TLS or read as SMTP.
    fn into_plain(mut self) -> S {
        self.parser.clear();
        self.io
    }
}

/// The blocking twin of the SMTP dance, for the OpenSSL legacy probe.
#[cfg(feature = "legacy-tls")]
pub(crate) fn blocking_starttls(
    stream: &mut std::net::TcpStream,
    helo: &str,
) -> Result<(), SmtpFailure> {
    use std::io::{Read, Write};
    let mut parser = ReplyParser::new();
    let read = |s: &mut std::net::TcpStream, p: &mut ReplyParser| -> Result<Reply, SmtpFailure> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(r) = p.next_reply()? {
                return Ok(r);
            }
            let n = s.read(&mut buf)?;
            let Some(got) = buf.get(..n).filter(|g| !g.is_empty()) else {
                return Err(SmtpFailure::Closed);
            };
            p.push(got);
        }
    };
    let check = |r: Reply, want: u16| {
        if r.code == want {
            Ok(r)
        } else {
            Err(SmtpFailure::Rejected {
                code: r.code,
                text: r.lines.join(" "),
            })
        }
    };
    check(read(stream, &mut parser)?, 220)?;
    stream.write_all(format!("EHLO {helo}\r\n").as_bytes())?;
    check(read(stream, &mut parser)?, 250)?;
    stream.write_all(b"STARTTLS\r\n")?;
    check(read(stream, &mut parser)?, 220)?;
    Ok(())
}
