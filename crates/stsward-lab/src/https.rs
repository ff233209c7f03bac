//! The lab's policy hosts: `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461
//! §3.3), served right or wrong on purpose.
//!
//! ```text
//! RFC 8461 §3.3: the policy is fetched with HTTPS GET from
//!   https://mta-sts.<domain>/.well-known/mta-sts.txt
//! the answer must be 200, media type text/plain, no redirects followed, the certificate
//! valid for mta-sts.<domain>; senders may limit the body to 64 KiB and time out the fetch.
//! ```
//!
//! One listener serves every policy host that shares its address: the certificate is chosen
//! by SNI and the behaviour by the `Host` header (falling back to SNI), so a bulk lab of
//! thousands of domains needs only a handful of sockets.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::ca::IssuedCert;
use crate::scenario::PolicyBehaviour;

/// RFC 8461 §3.3: the well-known path of the policy.
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// Where a `redirect` host sends the client (same host, other path).
pub const REDIRECT_TARGET_PATH: &str = "/policy/mta-sts.txt";
/// RFC 8461 §3.3: senders may refuse a policy larger than 64 KiB; `oversize` hosts serve a
/// body past this.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// How far past the limit an `oversize` body goes.
const OVERSIZE_MARGIN: usize = 4 * 1024;
/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors building an HTTPS site.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpsError {
    /// rustls refused a certificate or the configuration.
    #[error("configuring rustls for {host}: {source}")]
    Rustls {
        /// The first host of the certificate.
        host: String,
        /// The underlying error.
        #[source]
        source: rustls::Error,
    },
}

/// The crypto provider of every lab TLS server. Named explicitly so that the lab does not
/// depend on which provider the process installed as default.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A rustls server configuration presenting certificates chosen by `resolver`.
fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    Ok(rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver))
}

/// Chooses a certificate by SNI; unknown or absent SNI gets the default one.
#[derive(Debug)]
pub struct SniCerts {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniCerts {
    /// A resolver whose default certificate is `cert`, presented for `names` too.
    pub fn new(default_host: &str, cert: &IssuedCert) -> Result<Self, HttpsError> {
        Ok(SniCerts {
            by_name: HashMap::new(),
            default: certified(default_host, cert)?,
        })
    }

    /// Presents `cert` to clients asking for any of `names`.
    pub fn add(&mut self, names: &[String], cert: &IssuedCert) -> Result<(), HttpsError> {
        let key = certified(names.first().map_or("", String::as_str), cert)?;
        for name in names {
            self.by_name.insert(name.to_ascii_lowercase(), key.clone());
        }
        Ok(())
    }
}

impl ResolvesServerCert for SniCerts {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = client_hello
            .server_name()
            .and_then(|name| self.by_name.get(&name.to_ascii_lowercase()));
        Some(chosen.unwrap_or(&self.default).clone())
    }
}

fn certified(host: &str, cert: &IssuedCert) -> Result<Arc<CertifiedKey>, HttpsError> {
    CertifiedKey::from_der(cert.chain.clone(), cert.private_key(), &provider())
        .map(Arc::new)
        .map_err(|source| HttpsError::Rustls {
            host: host.to_owned(),
            source,
        })
}

/// What one policy host serves.
#[derive(Debug, Clone)]
pub struct PolicySite {
    /// How it behaves at the HTTP level (certificate faults behave as `Good` here).
    pub behaviour: PolicyBehaviour,
    /// The policy body.
    pub text: String,
}

/// The policy hosts behind one listener, by lowercase host name.
pub type PolicySites = HashMap<String, PolicySite>;

/// Serves `sites` on `listener` with certificates from `certs` until the task is aborted.
pub fn spawn(
    listener: TcpListener,
    certs: Arc<SniCerts>,
    sites: Arc<PolicySites>,
) -> Result<JoinHandle<()>, HttpsError> {
    let host = sites.keys().next().cloned().unwrap_or_default();
    let config = server_config(certs).map_err(|source| HttpsError::Rustls { host, source })?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    Ok(tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::debug!(%error, "lab HTTPS accept failed");
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let sites = sites.clone();
            tokio::spawn(async move {
                let tls =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, %peer, "lab HTTPS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                let sni = tls.get_ref().1.server_name().map(str::to_ascii_lowercase);
                let service = service_fn(move |request| {
                    let sites = sites.clone();
                    let sni = sni.clone();
                    async move { Ok::<_, Infallible>(answer(&request, &sites, sni.as_deref()).await) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!(%error, %peer, "lab HTTPS connection ended");
                }
            });
        }
    }))
}

/// Answers one request per the behaviour of the host it is for.
async fn answer(
    request: &Request<Incoming>,
    sites: &PolicySites,
    sni: Option<&str>,
) -> Response<Full<Bytes>> {
    let host_header = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let host_name = host_header
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _port)| name))
        .map(str::to_ascii_lowercase);
    let site = host_name
        .as_deref()
        .and_then(|name| sites.get(name))
        .or_else(|| sni.and_then(|name| sites.get(name)))
        .or_else(|| {
            // A lone host on its address answers whatever name was asked, like a real
            // single-site server would.
            (sites.len() == 1).then(|| sites.values().next()).flatten()
        });
    let Some(site) = site else {
        return plain(StatusCode::NOT_FOUND, "text/plain", "no such lab host\n");
    };
    let path = request.uri().path();
    if path == REDIRECT_TARGET_PATH && site.behaviour == PolicyBehaviour::Redirect {
        return plain(StatusCode::OK, "text/plain", &site.text);
    }
    if path != POLICY_PATH {
        return plain(StatusCode::NOT_FOUND, "text/plain", "not found\n");
    }
    match site.behaviour {
        PolicyBehaviour::Redirect => {
            let authority = host_header.unwrap_or_default();
            let mut response = plain(StatusCode::MOVED_PERMANENTLY, "text/plain", "moved\n");
            if let Ok(location) =
                header::HeaderValue::from_str(&format!("https://{authority}{REDIRECT_TARGET_PATH}"))
            {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        PolicyBehaviour::NotFound => plain(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        PolicyBehaviour::ServerError => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "internal server error\n",
        ),
        PolicyBehaviour::WrongContentType => plain(StatusCode::OK, "text/html", &site.text),
        PolicyBehaviour::Oversize => {
            plain(StatusCode::OK, "text/plain", &oversize_body(&site.text))
        }
        PolicyBehaviour::Slow { delay } => {
            tokio::time::sleep(delay).await;
            plain(StatusCode::OK, "text/plain", &site.text)
        }
        PolicyBehaviour::Good
        | PolicyBehaviour::CertExpired
        | PolicyBehaviour::CertExpiring { .. }
        | PolicyBehaviour::CertWrongName
        | PolicyBehaviour::CertSelfSigned
        | PolicyBehaviour::CertUntrusted
        | PolicyBehaviour::NoAddress
        | PolicyBehaviour::Unreachable => plain(StatusCode::OK, "text/plain", &site.text),
    }
}

/// The policy followed by extension lines (RFC 8461 §3.2 allows unknown keys) until the body
/// is past [`MAX_POLICY_BYTES`]: still a valid policy, only too big.
pub fn oversize_body(policy: &str) -> String {
    let mut body = policy.to_owned();
    let filler = "x".repeat(100);
    let mut n = 0usize;
    while body.len() <= MAX_POLICY_BYTES + OVERSIZE_MARGIN {
        body.push_str(&format!("x-padding-{n}: {filler}\r\n"));
        n += 1;
    }
    body
}

fn plain(status: StatusCode, content_type: &'static str, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8461_3_3_oversize_body_is_past_64_kib_and_still_starts_with_the_policy() {
        let policy = "version: STSv1\r\nmode: enforce\r\nmx: mx.a.test\r\nmax_age: 86400\r\n";
        let body = oversize_body(policy);
        assert!(body.len() > MAX_POLICY_BYTES);
        assert!(body.starts_with(policy));
        assert!(body.ends_with("\r\n"));
    }
}
