//! RFC 3207 §4 / RFC 8461 §4.2 — probing an MX host's STARTTLS.
//!
//! ```text
//! S: 220[-] banner                 (RFC 5321 §4.3.1; multi-line with "220-")
//! C: EHLO <helo name>              S: 250[-] keywords … (RFC 5321 §4.1.1.1)
//! C: STARTTLS                      S: 220 go ahead      (RFC 3207 §4)
//!    TLS handshake, SNI = the MX host name (RFC 8461 §7.1)
//! C: QUIT                          (over TLS, or in clear when STARTTLS is not offered)
//! ```
//!
//! RFC 8461 §7.1: "When connecting to an SMTP server, the SNI extension MUST contain the MX
//! hostname."
//!
//! Every step has its own timeout and its own error, so that "STARTTLS offered but the
//! handshake failed" is never confused with "STARTTLS not offered". Every step is also cut
//! short by the caller's `deadline`, so a probe of one address never outlives the job that
//! asked for it, whatever the server does (stalls, trickles bytes, never answers QUIT). The
//! handshake accepts any chain (see [`crate::tls`]); the chain is then judged for trust, name
//! and validity separately by [`crate::cert::judge`]. Bytes the server sent after its `220`
//! to STARTTLS are discarded unread (see [`crate::smtp_conn`]).
//!
//! Each TCP connection holds a permit of the shared [`PerIpLimit`] while it is open.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, ServerName};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::cert::{CertVerdict, Roots, judge};
use crate::legacy::{LegacyFailure, LegacyMode, LegacyTls};
use crate::limit::{IpPermit, PerIpLimit};
use crate::smtp_conn::{SmtpConn, clone_io};
use crate::smtp_reply::{EhloExtension, Reply, ehlo_extensions};
use crate::tls::{TlsVersion, negotiated, probe_config};

pub use crate::smtp_conn::SmtpFailure;

/// RFC 5321 §4.5.3.2.1 (not in the project's reference set; paraphrase): a client should
/// wait 5 minutes for the banner. A probe shows a person a result, so it gives up sooner by
/// default; a sender may configure longer values.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// QUIT is politeness: the probe already has what it came for, so it waits briefly.
pub const DEFAULT_QUIT_TIMEOUT: Duration = Duration::from_secs(2);

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// `--smtp-port` (25 in production).
    pub smtp_port: u16,
    /// The name sent with EHLO.
    pub helo_name: String,
    /// Trust anchors for judging the chain.
    pub roots: Roots,
    /// TCP connect (including the wait for a free per-address slot).
    pub connect_timeout: Duration,
    /// Waiting for the 220 banner.
    pub banner_timeout: Duration,
    /// EHLO and its reply.
    pub ehlo_timeout: Duration,
    /// STARTTLS and its reply.
    pub starttls_timeout: Duration,
    /// The TLS handshake.
    pub handshake_timeout: Duration,
    /// QUIT and its reply (never an error: the probe is done by then).
    pub quit_timeout: Duration,
    /// When to try TLS 1.0/1.1 with OpenSSL (needs the `legacy-tls` feature).
    pub legacy: LegacyMode,
    /// Concurrent connections per address, shared by every probe of the process.
    pub limit: PerIpLimit,
    /// The address filter (issue 9, SSRF) judged on the exact address of every connection;
    /// `None` connects anywhere (the operator's own checks).
    pub guard: Option<crate::connect_guard::ConnectGuard>,
}

impl ProbeConfig {
    /// Port 25, RFC-shaped timeouts of [`DEFAULT_STEP_TIMEOUT`], legacy probe on failure,
    /// [`crate::limit::DEFAULT_PER_IP`] connections per address.
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
            quit_timeout: DEFAULT_QUIT_TIMEOUT,
            legacy: LegacyMode::OnFailure,
            limit: PerIpLimit::default(),
            guard: None,
        }
    }

    /// Every step's timeout set to `step`, QUIT to at most [`DEFAULT_QUIT_TIMEOUT`].
    pub fn with_step_timeout(mut self, step: Duration) -> ProbeConfig {
        self.connect_timeout = step;
        self.banner_timeout = step;
        self.ehlo_timeout = step;
        self.starttls_timeout = step;
        self.handshake_timeout = step;
        self.quit_timeout = step.min(DEFAULT_QUIT_TIMEOUT);
        self
    }

    /// The longest one address can take when no deadline cuts it short: both connections
    /// (rustls and, when it runs, TLS 1.0/1.1) with every step at its timeout.
    pub fn worst_case(&self) -> Duration {
        let one = self
            .connect_timeout
            .saturating_add(self.banner_timeout)
            .saturating_add(self.ehlo_timeout)
            .saturating_add(self.starttls_timeout)
            .saturating_add(self.handshake_timeout)
            .saturating_add(self.quit_timeout);
        match self.legacy {
            LegacyMode::Never => one,
            _ => one.saturating_mul(2),
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

/// Why a probe of one address stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// No TCP connection.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The address filter refused the address: no connection was attempted.
    #[error("not connected: {0}")]
    Refused(crate::connect_guard::Refused),
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
    /// A step took longer than its timeout (or than what was left of the job's deadline).
    #[error("{step:?} timed out after {after:?}")]
    Timeout {
        /// The step.
        step: ProbeStep,
        /// The time it was given.
        after: Duration,
    },
}

impl Clone for ProbeError {
    fn clone(&self) -> Self {
        match self {
            ProbeError::Connect(e) => ProbeError::Connect(clone_io(e)),
            ProbeError::Refused(r) => ProbeError::Refused(*r),
            ProbeError::Banner(e) => ProbeError::Banner(e.clone()),
            ProbeError::Ehlo(e) => ProbeError::Ehlo(e.clone()),
            ProbeError::StarttlsRefused(c) => ProbeError::StarttlsRefused(*c),
            ProbeError::Starttls(e) => ProbeError::Starttls(e.clone()),
            ProbeError::Handshake(e) => ProbeError::Handshake(clone_io(e)),
            ProbeError::Timeout { step, after } => ProbeError::Timeout {
                step: *step,
                after: *after,
            },
        }
    }
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
#[derive(Debug, Clone)]
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
    /// Whether the server left QUIT unanswered within its timeout (harmless for delivery,
    /// but it shows why a probe took as long as it did).
    pub quit_timed_out: bool,
}

impl AddrProbe {
    /// The best version the server accepted: the rustls session if there was one, else what
    /// the legacy probe found.
    pub fn best_version(&self) -> Option<TlsVersion> {
        let modern = self.tls.as_ref().map(|t| t.version);
        let old = self.legacy.as_ref().and_then(|l| l.best_version);
        modern.max(old)
    }

    /// Judges the certificate again at `now` (a cached probe handed to a later check).
    pub fn rejudged(mut self, host: &str, roots: &Roots, now: SystemTime) -> AddrProbe {
        if let Some(tls) = &mut self.tls {
            tls.verdict = judge(&tls.chain, host, roots, now);
        }
        self
    }
}

/// Probes every address of MX host `host`, concurrently; results are in the order of `addrs`.
/// The deadline is what [`ProbeConfig::worst_case`] allows from now.
pub async fn probe_mx(
    host: &str,
    addrs: &[IpAddr],
    cfg: &ProbeConfig,
    now: SystemTime,
) -> Vec<AddrProbe> {
    let deadline = Instant::now() + cfg.worst_case();
    futures::future::join_all(
        addrs
            .iter()
            .map(|ip| probe_address(host, *ip, cfg, now, deadline)),
    )
    .await
}

/// Probes one address of `host`; returns by `deadline` at the latest, whatever the server
/// does. `now` is the instant the certificate is judged at.
pub async fn probe_address(
    host: &str,
    ip: IpAddr,
    cfg: &ProbeConfig,
    now: SystemTime,
    deadline: Instant,
) -> AddrProbe {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let addr = SocketAddr::new(ip, cfg.smtp_port);
    let mut probe = AddrProbe {
        addr,
        banner: None,
        ehlo_extensions: Vec::new(),
        starttls_offered: false,
        tls: None,
        legacy: None,
        error: None,
        quit_timed_out: false,
    };
    if let Err(e) = smtp_then_tls(&host, addr, cfg, now, deadline, &mut probe).await {
        probe.error = Some(e);
    }
    let run_legacy = crate::legacy::AVAILABLE
        && match cfg.legacy {
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
        probe.legacy = Some(legacy_probe(&host, addr, cfg, deadline).await);
    }
    probe
}

/// What is left of `limit` before `deadline`.
fn budget(limit: Duration, deadline: Instant) -> Duration {
    limit.min(deadline.saturating_duration_since(Instant::now()))
}

async fn step<T>(
    step: ProbeStep,
    limit: Duration,
    deadline: Instant,
    fut: impl std::future::Future<Output = Result<T, ProbeError>>,
) -> Result<T, ProbeError> {
    let after = budget(limit, deadline);
    tokio::time::timeout(after, fut)
        .await
        .map_err(|_| ProbeError::Timeout { step, after })?
}

/// What the clear-text part of the conversation showed.
#[derive(Default)]
struct Greeting {
    banner: Option<Reply>,
    ehlo_extensions: Vec<EhloExtension>,
    starttls_offered: bool,
}

/// A per-address slot, then TCP connect; both within the Connect step's time. Waiting too
/// long for a slot is a connect failure that is not a timeout of the network: nobody may
/// read it as "port 25 is blocked".
async fn connect(
    addr: SocketAddr,
    cfg: &ProbeConfig,
    deadline: Instant,
) -> Result<(TcpStream, Option<IpPermit>), ProbeError> {
    // The last gate before the socket: the exact address, whatever DNS said before.
    crate::connect_guard::admit(cfg.guard.as_ref(), addr.ip()).map_err(ProbeError::Refused)?;
    let limit = budget(cfg.connect_timeout, deadline);
    let step_deadline = Instant::now() + limit;
    let permit = tokio::time::timeout_at(step_deadline, cfg.limit.acquire(addr.ip()))
        .await
        .map_err(|_| {
            ProbeError::Connect(std::io::Error::other(format!(
                "no free connection slot to this address within {limit:?} (at most {} at once)",
                cfg.limit.per_ip()
            )))
        })?;
    let tcp = step(ProbeStep::Connect, limit, step_deadline, async {
        TcpStream::connect(addr).await.map_err(ProbeError::Connect)
    })
    .await?;
    Ok((tcp, permit))
}

/// Banner, EHLO and, when offered, STARTTLS with its 220: the conversation both connections
/// of a probe have before their handshakes. Returns whether the socket is ready for TLS;
/// when STARTTLS is not offered it has sent QUIT (bounded) and the socket is done.
async fn greet(
    smtp: &mut SmtpConn<TcpStream>,
    cfg: &ProbeConfig,
    deadline: Instant,
    seen: &mut Greeting,
) -> Result<bool, ProbeError> {
    let banner = step(ProbeStep::Banner, cfg.banner_timeout, deadline, async {
        smtp.expect(None, 220).await.map_err(ProbeError::Banner)
    })
    .await?;
    seen.banner = Some(banner);

    let ehlo = step(ProbeStep::Ehlo, cfg.ehlo_timeout, deadline, async {
        let cmd = format!("EHLO {}\r\n", cfg.helo_name);
        smtp.expect(Some(&cmd), 250).await.map_err(ProbeError::Ehlo)
    })
    .await?;
    seen.ehlo_extensions = ehlo_extensions(&ehlo);
    seen.starttls_offered = seen.ehlo_extensions.iter().any(|e| e.keyword == "STARTTLS");
    if !seen.starttls_offered {
        return Ok(false);
    }

    step(ProbeStep::Starttls, cfg.starttls_timeout, deadline, async {
        match smtp.expect(Some("STARTTLS\r\n"), 220).await {
            Ok(_) => Ok(()),
            Err(SmtpFailure::Rejected { code, .. }) => Err(ProbeError::StarttlsRefused(code)),
            Err(other) => Err(ProbeError::Starttls(other)),
        }
    })
    .await?;
    Ok(true)
}

/// QUIT, bounded: true when the server did not answer in time.
async fn quit<S>(smtp: &mut SmtpConn<S>, cfg: &ProbeConfig, deadline: Instant) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    tokio::time::timeout(budget(cfg.quit_timeout, deadline), smtp.quit())
        .await
        .is_err()
}

async fn smtp_then_tls(
    host: &str,
    addr: SocketAddr,
    cfg: &ProbeConfig,
    now: SystemTime,
    deadline: Instant,
    probe: &mut AddrProbe,
) -> Result<(), ProbeError> {
    let (tcp, _permit) = connect(addr, cfg, deadline).await?;
    let mut smtp = SmtpConn::new(tcp);
    let mut seen = Greeting::default();
    let greeted = greet(&mut smtp, cfg, deadline, &mut seen).await;
    probe.banner = seen.banner;
    probe.ehlo_extensions = seen.ehlo_extensions;
    probe.starttls_offered = seen.starttls_offered;
    if !greeted? {
        probe.quit_timed_out = quit(&mut smtp, cfg, deadline).await;
        return Ok(());
    }

    let tcp = smtp.into_plain();
    let tls = step(
        ProbeStep::Handshake,
        cfg.handshake_timeout,
        deadline,
        async {
            let name = ServerName::try_from(host.to_owned()).map_err(|e| {
                ProbeError::Handshake(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
            })?;
            let config =
                probe_config().map_err(|e| ProbeError::Handshake(std::io::Error::other(e)))?;
            TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(ProbeError::Handshake)
        },
    )
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
    probe.quit_timed_out = quit(&mut smtp, cfg, deadline).await;
    if !probe.quit_timed_out {
        // The server's close_notify came first; its TCP close follows. Wait for that too,
        // so the connection is really gone when this probe frees its per-address slot.
        let mut tls = smtp.into_plain();
        let tcp = tls.get_mut().0;
        let mut sink = [0u8; 512];
        let _ = tokio::time::timeout(budget(cfg.quit_timeout, deadline), async {
            while tokio::io::AsyncReadExt::read(tcp, &mut sink)
                .await
                .unwrap_or(0)
                > 0
            {}
        })
        .await;
    }
    Ok(())
}

/// The second connection: the same conversation, then OpenSSL offering TLS 1.0/1.1.
async fn legacy_probe(
    host: &str,
    addr: SocketAddr,
    cfg: &ProbeConfig,
    deadline: Instant,
) -> LegacyTls {
    let failure = |e: ProbeError| match e {
        ProbeError::Connect(e) => LegacyFailure::Connect(e),
        ProbeError::Refused(r) => LegacyFailure::Connect(std::io::Error::other(r.to_string())),
        ProbeError::Banner(e) | ProbeError::Ehlo(e) | ProbeError::Starttls(e) => {
            LegacyFailure::Smtp(e)
        }
        ProbeError::StarttlsRefused(code) => LegacyFailure::Smtp(SmtpFailure::Rejected {
            code,
            text: String::new(),
        }),
        ProbeError::Handshake(e) => LegacyFailure::Connect(e),
        ProbeError::Timeout { .. } => LegacyFailure::Timeout,
    };
    let (tcp, _permit) = match connect(addr, cfg, deadline).await {
        Ok(c) => c,
        Err(e) => return LegacyTls::failed(failure(e)),
    };
    let mut smtp = SmtpConn::new(tcp);
    match greet(&mut smtp, cfg, deadline, &mut Greeting::default()).await {
        Ok(true) => {}
        // STARTTLS vanished between the two connections: nothing to learn.
        Ok(false) => {
            quit(&mut smtp, cfg, deadline).await;
            return LegacyTls {
                best_version: None,
                failure: None,
            };
        }
        Err(e) => return LegacyTls::failed(failure(e)),
    }
    crate::legacy::handshake(
        host,
        smtp.into_plain(),
        budget(cfg.handshake_timeout, deadline),
    )
    .await
}
