//! The demo's senders deliver their reports the way RFC 8460 §5.4 describes for an `https:`
//! `rua`: the report gzip-compressed (§5.2), POSTed as `application/tlsrpt+gzip` to the URI
//! the domain's TLS-RPT record names — here `https://mta-sts.<domain>/tlsrpt`, stsward's
//! report intake on the domain's policy host, over TLS trusted through the lab's root. One
//! connection per report, one deadline over all of it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The whole of one POST: connect, handshake, send, answer.
const POST_DEADLINE: Duration = Duration::from_secs(10);
/// The most of an answer read: the intake answers with a line of text.
const MAX_ANSWER: usize = 16 * 1024;

/// The senders' HTTPS client for the report URIs of one server.
#[derive(Clone)]
pub struct Poster {
    addr: SocketAddr,
    path: String,
    tls: TlsConnector,
}

impl Poster {
    /// POSTs to `https://<host>{path}` at `addr`, trusting the roots in `ca_pem`.
    pub fn new(addr: SocketAddr, path: &str, ca_pem: &[u8]) -> anyhow::Result<Poster> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots
                .add(cert.context("the lab's root CA")?)
                .context("the lab's root CA")?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS settings")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Poster {
            addr,
            path: path.to_owned(),
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Compresses `json` and POSTs it to `host`; the answer's status.
    pub async fn post(&self, host: &str, json: &[u8]) -> anyhow::Result<StatusCode> {
        let body = gzip(json).context("gzip")?;
        tokio::time::timeout(POST_DEADLINE, self.exchange(host, body))
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {POST_DEADLINE:?}"))?
    }

    async fn exchange(&self, host: &str, body: Vec<u8>) -> anyhow::Result<StatusCode> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connect {}", self.addr))?;
        let name = ServerName::try_from(host.to_owned()).context("the report host")?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS with {host}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .context("HTTP")?;
        // Ends when the answer is read, or with this future at the deadline.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let request = Request::post(self.path.as_str())
            .header(HOST, host)
            .header(CONTENT_TYPE, "application/tlsrpt+gzip")
            .header(
                USER_AGENT,
                concat!("stsward-demo/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .context("the request")?;
        let answer = sender.send_request(request).await.context("HTTP")?;
        let status = answer.status();
        let _ = Limited::new(answer.into_body(), MAX_ANSWER).collect().await;
        Ok(status)
    }
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8460_5_2_the_body_is_gzip_of_the_report() {
        use std::io::Read as _;
        let json = br#"{"organization-name":"x"}"#;
        let packed = gzip(json).expect("gzip");
        assert_eq!(&packed[..2], &[0x1f, 0x8b], "RFC 1952 magic");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut back)
            .expect("gunzip");
        assert_eq!(back, json);
    }

    #[test]
    fn a_root_file_without_certificates_is_still_a_client_and_bad_pem_is_an_error() {
        let addr: SocketAddr = "127.0.0.1:443".parse().expect("addr");
        assert!(Poster::new(addr, "/tlsrpt", b"").is_ok());
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert!(Poster::new(addr, "/tlsrpt", bad).is_err());
    }
}
