//! RFC 8996 — detecting TLS 1.0 and 1.1 on an MX host.
//!
//! RFC 8996 deprecates TLS 1.0 and 1.1, and RFC 8461 §7.2 says "MTAs supporting MTA-STS MUST
//! have support for TLS 1.2 [RFC5246] or TLS 1.3 [RFC8446] or higher", so a checker wants to
//! say "this MX only speaks TLS 1.0". rustls cannot speak either version, so with the
//! `legacy-tls` feature the prober opens a second connection, runs the same SMTP exchange as
//! for the first (the code in [`crate::smtp_conn`], driven by [`crate::starttls`]), and hands
//! the socket to [`handshake`], which offers only TLS 1.0–1.1 through OpenSSL on tokio
//! (`tokio-openssl`). Nothing runs on a blocking thread: when the caller's deadline passes,
//! the handshake future is dropped and its socket closed with it.
//!
//! Debian's OpenSSL 3 refuses those versions at its default security level, hence
//! `@SECLEVEL=0` in the cipher list. The certificate is not checked on this connection: only
//! the version is of interest.
//!
//! Without the feature the probe never runs and [`LegacyTls`] is never filled in.

use std::time::Duration;

use thiserror::Error;

use crate::smtp_conn::{SmtpFailure, clone_io};
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
#[derive(Debug, Clone)]
pub struct LegacyTls {
    /// The best of TLS 1.0/1.1 the server accepted; `None` when it accepts neither.
    pub best_version: Option<TlsVersion>,
    /// Why the probe could not tell, if it could not.
    pub failure: Option<LegacyFailure>,
}

impl LegacyTls {
    pub(crate) fn failed(failure: LegacyFailure) -> LegacyTls {
        LegacyTls {
            best_version: None,
            failure: Some(failure),
        }
    }
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
    Smtp(SmtpFailure),
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

impl Clone for LegacyFailure {
    fn clone(&self) -> Self {
        match self {
            LegacyFailure::Connect(e) => LegacyFailure::Connect(clone_io(e)),
            LegacyFailure::Smtp(e) => LegacyFailure::Smtp(e.clone()),
            LegacyFailure::Setup { detail } => LegacyFailure::Setup {
                detail: detail.clone(),
            },
            LegacyFailure::Timeout => LegacyFailure::Timeout,
        }
    }
}

/// Whether this build can probe TLS 1.0/1.1 at all.
pub const AVAILABLE: bool = cfg!(feature = "legacy-tls");

/// Offers TLS 1.0–1.1 on `tcp`, a socket whose server just answered 220 to STARTTLS, and
/// reports the version it accepted. The whole handshake is bounded by `within`.
#[cfg(feature = "legacy-tls")]
pub(crate) async fn handshake(
    host: &str,
    tcp: tokio::net::TcpStream,
    within: Duration,
) -> LegacyTls {
    use openssl::ssl::SslVersion;

    let setup = |e: openssl::error::ErrorStack| LegacyFailure::Setup {
        detail: e.to_string(),
    };
    let connector = match legacy_connector() {
        Ok(c) => c,
        Err(detail) => return LegacyTls::failed(LegacyFailure::Setup { detail }),
    };
    let ssl = match connector.configure().and_then(|c| {
        c.verify_hostname(false)
            .use_server_name_indication(true)
            .into_ssl(host)
    }) {
        Ok(ssl) => ssl,
        Err(e) => return LegacyTls::failed(setup(e)),
    };
    let mut stream = match tokio_openssl::SslStream::new(ssl, tcp) {
        Ok(s) => s,
        Err(e) => return LegacyTls::failed(setup(e)),
    };
    match tokio::time::timeout(within, std::pin::Pin::new(&mut stream).connect()).await {
        Err(_) => LegacyTls::failed(LegacyFailure::Timeout),
        Ok(Ok(())) => {
            let best_version = stream.ssl().version2().map(|v| {
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
            // Politeness only, and bounded: a close_notify the server may never read.
            let _ = tokio::time::timeout(
                Duration::from_millis(200),
                tokio::io::AsyncWriteExt::shutdown(&mut stream),
            )
            .await;
            LegacyTls {
                best_version,
                failure: None,
            }
        }
        // The server refused every version on offer (an alert, or it just hung up): it
        // accepts neither 1.0 nor 1.1.
        Ok(Err(_)) => {
            // Briefly wait for the server's close, so that the connection is gone when the
            // caller frees its per-address slot.
            let mut sink = [0u8; 512];
            let _ = tokio::time::timeout(Duration::from_millis(200), async {
                while tokio::io::AsyncReadExt::read(stream.get_mut(), &mut sink)
                    .await
                    .unwrap_or(0)
                    > 0
                {}
            })
            .await;
            LegacyTls {
                best_version: None,
                failure: None,
            }
        }
    }
}

#[cfg(not(feature = "legacy-tls"))]
pub(crate) async fn handshake(
    _host: &str,
    _tcp: tokio::net::TcpStream,
    _within: Duration,
) -> LegacyTls {
    LegacyTls::failed(LegacyFailure::Setup {
        detail: "built without the legacy-tls feature".to_owned(),
    })
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
