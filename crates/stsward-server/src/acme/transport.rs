//! RFC 8555 §6.1 — the HTTPS transport under the ACME client: one TLS connection per request
//! (rustls with aws-lc-rs), a deadline on every request, a bound on every response body.
//!
//! instant-acme's own client (hyper-rustls with the platform verifier) is not used: this one
//! trusts exactly the roots it is given (the web PKI, or a test CA such as Pebble's), cannot
//! wait forever, and notes the `Retry-After` of rate-limited answers (RFC 8555 §6.6), which
//! instant-acme does not hand on with the problem document.
//!
//! An order makes a dozen requests at most, minutes apart at worst; a connection per request
//! costs a handshake each and keeps no idle connection to the CA between orders.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HOST, RETRY_AFTER};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use instant_acme::{BodyWrapper, BytesResponse, Error, HttpClient};
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Bound on an ACME response: directories, orders and authorizations are small JSON, and a
/// certificate chain is a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The `Retry-After` of the latest 429 or 503 answer, shared with the order code.
#[derive(Debug, Clone, Default)]
pub(super) struct RetryAfterSlot(Arc<Mutex<Option<SystemTime>>>);

impl RetryAfterSlot {
    /// Takes the noted time, leaving none.
    pub(super) fn take(&self) -> Option<SystemTime> {
        self.0.lock().map(|mut slot| slot.take()).unwrap_or(None)
    }

    fn set(&self, at: SystemTime) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(at);
        }
    }
}

/// The ACME client's HTTPS transport.
pub(super) struct Transport {
    tls: TlsConnector,
    request_timeout: Duration,
    retry_after: RetryAfterSlot,
}

impl Transport {
    /// A transport trusting `roots` (the web PKI when `None`).
    pub(super) fn new(
        roots: Option<&[CertificateDer<'static>]>,
        request_timeout: Duration,
        retry_after: RetryAfterSlot,
    ) -> Result<Transport, String> {
        let mut store = RootCertStore::empty();
        match roots {
            Some(roots) => {
                for root in roots {
                    store
                        .add(root.clone())
                        .map_err(|e| format!("CA root for the ACME directory: {e}"))?;
                }
            }
            None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS settings for the ACME client: {e}"))?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Transport {
            tls: TlsConnector::from(Arc::new(config)),
            request_timeout,
            retry_after,
        })
    }
}

impl HttpClient for Transport {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, Error>> + Send>> {
        let tls = self.tls.clone();
        let limit = self.request_timeout;
        let slot = self.retry_after.clone();
        Box::pin(async move {
            let response = tokio::time::timeout(limit, send(tls, req))
                .await
                .map_err(|_| other(format!("no HTTP answer within {limit:?}")))??;
            if matches!(
                response.status(),
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) && let Some(at) = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
            {
                slot.set(at);
            }
            Ok(BytesResponse::from(response))
        })
    }
}

/// One request on a fresh connection; the body is read whole, up to the bound.
async fn send(
    tls: TlsConnector,
    req: Request<BodyWrapper<Bytes>>,
) -> Result<Response<Full<Bytes>>, Error> {
    let (mut parts, body) = req.into_parts();
    let uri = parts.uri.clone();
    if uri.scheme_str() != Some("https") {
        return Err(other(format!("{uri}: ACME needs https (RFC 8555 §6.1)")));
    }
    let host = uri
        .host()
        .ok_or_else(|| other(format!("{uri}: no host")))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    // A bracketed IPv6 literal in a URI is a bare address for the socket and the SNI.
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let server_name = ServerName::try_from(bare.clone())
        .map_err(|e| other(format!("{uri}: host {host}: {e}")))?;
    let tcp = TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| other(format!("connect {host}:{port}: {e}")))?;
    let stream = tls
        .connect(server_name, tcp)
        .await
        .map_err(|e| other(format!("TLS with {host}:{port}: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Error::Other(Box::new(e)))?;
    // The connection task ends when the response is read or the request future is dropped.
    tokio::spawn(async move {
        if let Err(error) = conn.await {
            tracing::debug!(%error, "ACME HTTP connection ended with an error");
        }
    });
    let authority = match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    parts.uri = uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
        .parse::<Uri>()
        .map_err(|e| other(format!("{uri}: {e}")))?;
    parts.headers.insert(
        HOST,
        authority
            .parse()
            .map_err(|e| other(format!("{uri}: Host header: {e}")))?,
    );
    let response = sender
        .send_request(Request::from_parts(parts, body))
        .await
        .map_err(|e| Error::Other(Box::new(e)))?;
    let (parts, body) = response.into_parts();
    let bytes = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| other(format!("{uri}: response body: {e}")))?
        .to_bytes();
    Ok(Response::from_parts(parts, Full::new(bytes)))
}

fn other(message: String) -> Error {
    Error::Other(message.into())
}

/// RFC 9110 §10.2.3 `Retry-After = HTTP-date / delay-seconds`; only the delay form is read
/// here (the date form is rare from ACME CAs and answers `None`, so the caller's own back-off
/// applies).
pub(super) fn parse_retry_after(value: &str, now: SystemTime) -> Option<SystemTime> {
    let secs: u64 = value.trim().parse().ok()?;
    now.checked_add(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_delay_seconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let cases: &[(&str, Option<u64>, &str)] = &[
            ("120", Some(1_120), "delay-seconds"),
            (" 5 ", Some(1_005), "surrounding space"),
            ("0", Some(1_000), "now"),
            ("-1", None, "negative: not delay-seconds"),
            ("soon", None, "not a number"),
            (
                "Fri, 31 Dec 1999 23:59:59 GMT",
                None,
                "HTTP-date form is not read",
            ),
        ];
        for (value, expected, why) in cases {
            let got = parse_retry_after(value, now)
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_secs());
            assert_eq!(got, *expected, "{why}: {value:?}");
        }
    }
}
