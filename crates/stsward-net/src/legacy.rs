//! RFC 8996 §2–3 — detecting TLS 1.0 and 1.1 on an MX host.
//!
//! RFC 8996 deprecates TLS 1.0 and 1.1; RFC 8461 §4.2 leaves the version to TLS policy, and a
//! checker wants to say "this MX only speaks TLS 1.0". rustls cannot speak either version, so
//! with the `legacy-tls` feature a second connection repeats the SMTP dance and offers only
//! TLS 1.0–1.1 through OpenSSL. Debian's OpenSSL 3 refuses those versions at its default
//! security level, hence `@SECLEVEL=0` in the cipher list. The certificate is not checked
//! on this connection: only the version is of interest.
//!
//! Without the feature the probe never runs and [`LegacyTls`] is never filled in.

use std::net::SocketAddr;

use thiserror::Error;

use crate::starttls::ProbeConfig;
use crate::tls::TlsVersion;

/// When the prober tries TLS 1.0/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyMode {
    /// Never.
    Never,
    /// Only when the rustls (TLS 1.2+) handshake failed.
    OnFailure,
    /// Always, as a second connection, when STARTTLS is offered (to report "TLS 1.0 still
    /// accepted alongside 1.2").
    Always,
}

/// What the legacy probe found.
#[derive(Debug)]
pub struct LegacyTls {
    /// The best of TLS 1.0/1.1 the server accepted; `None` when it accepts neither.
    pub best_version: Option<TlsVersion>,
    /// Why the probe could not tell, if it could not.
    pub failure: Option<LegacyFailure>,
}

/// Why the legacy probe could not reach the TLS handshake.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LegacyFailure {
    /// The TCP connection failed.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The SMTP exchange before the handshake failed.
    #[error("SMTP: {0}")]
    Smtp(crate::starttls::SmtpFailure),
    /// OpenSSL could not be set up for TLS 1.0/1.1.
    #[error("OpenSSL setup: {detail}")]
    Setup {
        /// OpenSSL's error stack.
        detail: String,
    },
    /// The probe did not finish in time.
    #[error("timed out")]
    Timeout,
}

#[cfg(feature = "legacy-tls")]
pub(crate) async fn probe(host: &str, addr: SocketAddr, cfg: &ProbeConfig) -> Option<LegacyTls> {
    let host = host.to_owned();
    let helo = cfg.helo_name.clone();
    let step = cfg
        .banner_timeout
        .max(cfg.ehlo_timeout)
        .max(cfg.handshake_timeout);
    let connect_timeout = cfg.connect_timeout;
    let total = connect_timeout
        .saturating_add(step.saturating_mul(4))
        .saturating_add(std::time::Duration::from_secs(1));
    let job = tokio::task::spawn_blocking(move || {
        blocking_probe(&host, addr, &helo, connect_timeout, step)
    });
    let outcome = match tokio::time::timeout(total, job).await {
        Ok(Ok(result)) => result,
        // The blocking job panicked or overran: report a timeout rather than guessing.
        Ok(Err(_)) | Err(_) => LegacyTls {
            best_version: None,
            failure: Some(LegacyFailure::Timeout),
        },
    };
    Some(outcome)
}

#[cfg(not(feature = "legacy-tls"))]
pub(crate) async fn probe(_host: &str, _addr: SocketAddr, _cfg: &ProbeConfig) -> Option<LegacyTls> {
    None
}

/// The one OpenSSL client context of the process, built on first use.
///
/// Building it loads and parses the system CA bundle (about 50 ms of CPU under OpenSSL 3,
/// behind a lock), which, done per MX, made bulk checks serial and twenty times slower. The
/// probe verifies nothing, and a connector is safe to share between threads.
#[cfg(feature = "legacy-tls")]
fn legacy_connector() -> Result<&'static openssl::ssl::SslConnector, String> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
    static CONNECTOR: std::sync::OnceLock<Result<SslConnector, String>> =
        std::sync::OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let build = || -> Result<SslConnector, openssl::error::ErrorStack> {
                let mut b = SslConnector::builder(SslMethod::tls_client())?;
                b.set_min_proto_version(Some(SslVersion::TLS1))?;
                b.set_max_proto_version(Some(SslVersion::TLS1_1))?;
                // Debian's OpenSSL 3 refuses TLS 1.0/1.1 below security level 0.
                b.set_cipher_list("DEFAULT:@SECLEVEL=0")?;
                b.set_verify(SslVerifyMode::NONE);
                Ok(b.build())
            };
            build().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(feature = "legacy-tls")]
fn blocking_probe(
    host: &str,
    addr: SocketAddr,
    helo: &str,
    connect_timeout: std::time::Duration,
    step: std::time::Duration,
) -> LegacyTls {
    use openssl::ssl::{HandshakeError, SslVersion};

    let fail = |failure| LegacyTls {
        best_version: None,
        failure: Some(failure),
    };
    let mut stream = match std::net::TcpStream::connect_timeout(&addr, connect_timeout) {
        Ok(s) => s,
        Err(e) => return fail(LegacyFailure::Connect(e)),
    };
    if let Err(e) = stream
        .set_read_timeout(Some(step))
        .and_then(|()| stream.set_write_timeout(Some(step)))
    {
        return fail(LegacyFailure::Connect(e));
    }
    if let Err(e) = crate::starttls::blocking_starttls(&mut stream, helo) {
        return fail(LegacyFailure::Smtp(e));
    }
    let setup = |e: openssl::error::ErrorStack| LegacyFailure::Setup {
        detail: e.to_string(),
    };
    let connector = match legacy_connector() {
        Ok(c) => c,
        Err(detail) => return fail(LegacyFailure::Setup { detail }),
    };
    let config = match connector.configure() {
        Ok(c) => c.verify_hostname(false).use_server_name_indication(true),
        Err(e) => return fail(setup(e)),
    };
    match config.connect(host, stream) {
        Ok(tls) => {
            let best_version = tls.ssl().version2().map(|v| {
                if v == SslVersion::TLS1_1 {
                    TlsVersion::Tls1_1
                } else if v == SslVersion::TLS1 {
                    TlsVersion::Tls1_0
                } else if v == SslVersion::SSL3 {
                    TlsVersion::Ssl3
                } else {
                    TlsVersion::Other(0)
                }
            });
            LegacyTls {
                best_version,
                failure: None,
            }
        }
        // The server refused every version on offer: it accepts neither 1.0 nor 1.1.
        Err(HandshakeError::Failure(_)) => LegacyTls {
            best_version: None,
            failure: None,
        },
        Err(HandshakeError::SetupFailure(e)) => fail(setup(e)),
        // A blocking socket only "would block" when its read timeout fired.
        Err(HandshakeError::WouldBlock(_)) => fail(LegacyFailure::Timeout),
    }
}
