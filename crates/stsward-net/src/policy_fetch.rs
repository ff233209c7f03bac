//! RFC 8461 §3.3 — fetching the policy over HTTPS.
//!
//! ```text
//! GET https://mta-sts.<domain>/.well-known/mta-sts.txt     (HTTP/1.1, Host: mta-sts.<domain>)
//!          the well-known path and the host name: RFC 8461 §3.2
//! accept:  200 only; 3xx MUST NOT be followed (§3.3);
//!          media type text/plain, parameters allowed (§3.2: senders SHOULD check it);
//!          the certificate must be PKIX-valid for mta-sts.<domain> (§3.3);
//!          a body larger than 64 KiB is refused (§3.3 suggests that limit to senders).
//! ```
//!
//! RFC 8461 §3.2: the policy is "served via the HTTPS GET method from the fixed "well-known"
//! [RFC5785] path of ".well-known/mta-sts.txt" served by the Policy Host."
//!
//! The fetch as a whole is bounded by [`FetchConfig::timeout`]. The policy host may have
//! several addresses (A and AAAA); each gets its own share of what is left of the bound, so
//! a blackholed first address cannot use it all and keep the next one from being tried.
//!
//! Only this one URL is ever fetched. Each refusal is its own [`FetchError`] variant so that a
//! checker can name it and a sender can map it to its TLS-RPT result type (RFC 8460 §4.3).
//! The certificate is judged at the `now` the caller passes, never the wall clock.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use thiserror::Error;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::cert::{CertInfo, CertProblem, Roots, judge};
use crate::connect_guard::{self, ConnectError, ConnectGuard};
use crate::dns::{Dns, DnsError};
use crate::tls::{Negotiated, fetch_config, negotiated};

/// RFC 8461 §3.3: "a suggested maximum policy size is 64 kilobytes". The one constant lives
/// in `stsward-proto`, beside the policy it limits.
pub use stsward_proto::mta_sts::MAX_POLICY_BYTES;

/// RFC 8461 §3.2: the well-known path of the policy.
pub const WELL_KNOWN_PATH: &str = "/.well-known/mta-sts.txt";

/// RFC 8461 §3.3 suggests a one-minute timeout to senders. A checker talking to a
/// person should give up sooner; this is its default.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The sender's bound (RFC 8461 §3.3: "A suggested timeout is one minute").
pub const SENDER_TIMEOUT: Duration = Duration::from_secs(60);

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// `--https-port` (443 in production).
    pub https_port: u16,
    /// Trust anchors for the policy host's certificate, built once and shared.
    pub roots: Roots,
    /// The whole fetch: DNS, connect, handshake, request and body.
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_body: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            https_port: 443,
            roots: Roots::webpki(),
            timeout: DEFAULT_CHECK_TIMEOUT,
            max_body: MAX_POLICY_BYTES,
        }
    }
}

/// A policy body that passed every rule of RFC 8461 §3.2 and §3.3. Its content is not parsed here.
#[derive(Debug, Clone)]
pub struct FetchedPolicy {
    /// The body, at most `max_body` octets.
    pub body: Vec<u8>,
    /// The `Content-Type` header as sent.
    pub content_type: String,
    /// The address that answered.
    pub addr: SocketAddr,
    /// The policy host's leaf certificate (for "expires within 14 days" warnings).
    pub cert: CertInfo,
    /// The TLS session facts.
    pub tls: Negotiated,
}

/// Why no policy was accepted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The address lookup of `mta-sts.<domain>` failed.
    #[error("looking up the policy host: {0}")]
    Dns(#[from] DnsError),
    /// `mta-sts.<domain>` has no A or AAAA record.
    #[error("the policy host has no address")]
    NoAddress,
    /// No TCP connection (the last address's error when all failed).
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The TLS handshake failed before a certificate could be judged.
    #[error("TLS handshake with {addr}: {source}")]
    Handshake {
        /// The address tried.
        addr: SocketAddr,
        /// The TLS error.
        source: std::io::Error,
    },
    /// The certificate is not PKIX-valid for the policy host (senders: `sts-webpki-invalid`).
    #[error("policy host certificate: {0}")]
    Tls(CertProblem),
    /// A 3xx answer: RFC 8461 §3.3, "HTTP 3xx redirects MUST NOT be followed".
    #[error("redirect {status} to {location:?} (redirects must not be followed)")]
    Redirect {
        /// The status code.
        status: u16,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// Any other non-200 status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The media type is not `text/plain` (the header as sent, empty when absent).
    #[error("content type {0:?} is not text/plain")]
    ContentType(String),
    /// The body exceeds the limit.
    #[error("policy body larger than {limit} octets")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The address filter refused every address of the policy host (issue 9, SSRF): no
    /// connection was attempted. `chain` is the CNAME chain the answer came through.
    #[error("{refused} (policy host reached through {chain:?})")]
    Refused {
        /// The first refused address and why.
        refused: crate::connect_guard::Refused,
        /// The CNAME targets followed from `mta-sts.<domain>`, in order (empty: none).
        chain: Vec<String>,
    },
    /// The fetch did not finish within the configured bound.
    #[error("no complete answer within {after:?}")]
    Timeout {
        /// The bound.
        after: Duration,
    },
    /// The HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built (a host name that is not a valid header value).
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
}

/// Fetches the policy of `domain` as RFC 8461 §3.3 prescribes, within `cfg.timeout`.
pub async fn fetch_policy(
    dns: &Dns,
    domain: &str,
    cfg: &FetchConfig,
    now: SystemTime,
) -> Result<FetchedPolicy, FetchError> {
    fetch_policy_guarded(dns, domain, cfg, None, now).await
}

/// [`fetch_policy`] under an address filter: the policy host's addresses (the answer at the
/// end of its CNAME chain) are judged by `guard`, refused ones are never tried, and the
/// exact address is judged again right before its connection.
pub async fn fetch_policy_guarded(
    dns: &Dns,
    domain: &str,
    cfg: &FetchConfig,
    guard: Option<&ConnectGuard>,
    now: SystemTime,
) -> Result<FetchedPolicy, FetchError> {
    let deadline = Instant::now() + cfg.timeout;
    tokio::time::timeout_at(deadline, fetch(dns, domain, cfg, guard, now, deadline))
        .await
        .map_err(|_| FetchError::Timeout { after: cfg.timeout })?
}

/// The policy host of `domain` (RFC 8461 §3.2: "prepending "mta-sts" to the Policy Domain").
pub fn policy_host(domain: &str) -> String {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    format!("mta-sts.{}", d.to_ascii_lowercase())
}

async fn fetch(
    dns: &Dns,
    domain: &str,
    cfg: &FetchConfig,
    guard: Option<&ConnectGuard>,
    now: SystemTime,
    deadline: Instant,
) -> Result<FetchedPolicy, FetchError> {
    let host = policy_host(domain);
    let lookup = dns.addrs(&host).await?;
    let (admitted, refused) = match guard {
        Some(g) => g.partition(lookup.records()),
        None => (lookup.records().to_vec(), None),
    };
    if let (true, Some(refused)) = (admitted.is_empty(), refused) {
        return Err(FetchError::Refused {
            refused,
            chain: lookup.cname_chain.clone(),
        });
    }
    let addrs = admitted.as_slice();
    let mut last = None;
    for (i, ip) in addrs.iter().enumerate() {
        // An equal share of what is left for this address and each one after it.
        let left = deadline.saturating_duration_since(Instant::now());
        let tries_left = u32::try_from(addrs.len() - i).unwrap_or(u32::MAX).max(1);
        let share = left / tries_left;
        match tokio::time::timeout(share, fetch_from(*ip, &host, cfg, guard, now)).await {
            // Another address may still answer; every other refusal is the host's answer.
            Err(_) => last = Some(FetchError::Timeout { after: cfg.timeout }),
            Ok(Err(e @ FetchError::Connect { .. })) => last = Some(e),
            Ok(other) => return other,
        }
    }
    Err(last.unwrap_or(FetchError::NoAddress))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn fetch_from(
    ip: IpAddr,
    host: &str,
    cfg: &FetchConfig,
    guard: Option<&ConnectGuard>,
    now: SystemTime,
) -> Result<FetchedPolicy, FetchError> {
    let addr = SocketAddr::new(ip, cfg.https_port);
    let tcp = connect_guard::connect(guard, addr)
        .await
        .map_err(|e| match e {
            ConnectError::Refused(refused) => FetchError::Refused {
                refused,
                chain: Vec::new(),
            },
            ConnectError::Io(source) => FetchError::Connect { addr, source },
        })?;
    let handshake_err = |source| FetchError::Handshake { addr, source };
    let server_name = ServerName::try_from(host.to_owned())
        .map_err(|e| handshake_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let config = fetch_config().map_err(|e| handshake_err(std::io::Error::other(e)))?;
    let tls = TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(handshake_err)?;
    let session = negotiated(tls.get_ref().1);
    let verdict = judge(&session.chain, host, &cfg.roots, now);
    if let Some(problem) = verdict.problem() {
        return Err(FetchError::Tls(problem));
    }
    let Some(cert) = verdict.leaf else {
        return Err(FetchError::Tls(CertProblem::Untrusted {
            reason: crate::cert::UntrustedReason::EmptyChain,
        }));
    };

    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("policy connection ended: {e}");
        }
    }));
    let request = Request::get(WELL_KNOWN_PATH)
        .header(HOST, host)
        .header(USER_AGENT, concat!("stsward/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;

    let status = response.status();
    if status.is_redirection() {
        return Err(FetchError::Redirect {
            status: status.as_u16(),
            location: header_text(response.headers().get(LOCATION)),
        });
    }
    if status != StatusCode::OK {
        return Err(FetchError::Status(status.as_u16()));
    }
    let content_type = header_text(response.headers().get(CONTENT_TYPE)).unwrap_or_default();
    if !is_text_plain(&content_type) {
        return Err(FetchError::ContentType(content_type));
    }
    let declared = header_text(response.headers().get(CONTENT_LENGTH))
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > cfg.max_body as u64) {
        return Err(FetchError::TooLarge {
            limit: cfg.max_body,
        });
    }
    let mut body_stream = response.into_body();
    let mut body = Vec::new();
    while let Some(frame) = body_stream.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers carry no policy
        };
        if body.len().saturating_add(data.len()) > cfg.max_body {
            return Err(FetchError::TooLarge {
                limit: cfg.max_body,
            });
        }
        body.extend_from_slice(&data);
    }
    Ok(FetchedPolicy {
        body,
        content_type,
        addr,
        cert,
        tls: session,
    })
}

fn header_text(v: Option<&http::HeaderValue>) -> Option<String> {
    v.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// RFC 8461 §3.2: "senders SHOULD validate that the media type is "text/plain""; parameters
/// (`charset=utf-8`) are ignored. Media types are case-insensitive (RFC 9110 §8.3.1, not in
/// the project's reference set).
pub fn is_text_plain(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("text/plain")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8461_3_2_media_type_table() {
        let good = [
            "text/plain",
            "text/plain; charset=utf-8",
            "TEXT/PLAIN;charset=UTF-8",
            " text/plain ",
        ];
        for ct in good {
            assert!(is_text_plain(ct), "{ct:?}");
        }
        let bad = [
            ("text/html", "HTML"),
            ("application/octet-stream", "binary"),
            ("", "missing header"),
            ("text/plainx", "a different type with the same prefix"),
            ("text/plain-text", "not the type"),
        ];
        for (ct, why) in bad {
            assert!(!is_text_plain(ct), "{why}: {ct:?}");
        }
    }

    #[test]
    fn rfc8461_3_2_policy_host_is_mta_sts_label() {
        assert_eq!(policy_host("Example.COM."), "mta-sts.example.com");
    }
}
