//! Alert webhooks: one JSON POST per notice, over `https://` (rustls,
//! web PKI roots) or `http://`, on a fresh connection, with one deadline over connecting,
//! sending and reading the answer, and at most [`MAX_ANSWER_BYTES`] of the answer read.
//! Any 2xx status is success; anything else is an error that the sender retries.
//!
//! Webhook URLs come from the operator's `[alerts]`, never from a tenant, so they are not
//! put through the checks' address filter.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The most of a webhook's answer that is read: its body is only logged on failure.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// One configured webhook.
#[derive(Clone)]
pub struct Webhook {
    uri: Uri,
    timeout: Duration,
    tls: TlsConnector,
}

impl std::fmt::Debug for Webhook {
    // The URL often holds a secret (Slack's do): only its host is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("host", &self.uri.host())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Webhook {
    /// A webhook posting to `url` within `timeout`; the URL was validated with the config.
    pub fn new(url: &str, timeout: Duration) -> Result<Webhook, String> {
        let uri: Uri = url.parse().map_err(|e| format!("webhook URL: {e}"))?;
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS settings for webhooks: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Webhook {
            uri,
            timeout,
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// POSTs `body` (JSON) and waits for a 2xx answer, all within the deadline.
    pub async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        tokio::time::timeout(self.timeout, self.exchange(body))
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }

    async fn exchange(&self, body: Vec<u8>) -> Result<(), String> {
        let host = self.uri.host().ok_or("the URL has no host")?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let https = self.uri.scheme_str() == Some("https");
        let port = self.uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((bare, port))
            .await
            .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        if https {
            let name =
                ServerName::try_from(bare.to_owned()).map_err(|e| format!("host {host}: {e}"))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
            self.send(tls, body).await
        } else {
            self.send(tcp, body).await
        }
    }

    async fn send<S>(&self, stream: S, body: Vec<u8>) -> Result<(), String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        // Ends when the answer is read or this future is dropped by the deadline.
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%error, "webhook connection ended with an error");
            }
        });
        let authority = self
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let request = Request::post(path)
            .header(HOST, authority)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("stsward/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        let answer = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = answer.status();
        // Read (bounded) so the receiver sees its answer taken; a longer one is cut, not an error.
        let text = match Limited::new(answer.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
        {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            Err(_) => String::new(),
        };
        if status.is_success() {
            Ok(())
        } else {
            let shown: String = text.chars().take(200).collect();
            Err(format!("HTTP status {status}: {shown}"))
        }
    }
}
