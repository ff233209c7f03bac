//! Shared by the `stsward serve` tests: a test CA and a static certificate (PEM files, as a
//! self-hoster gives them), a configuration on loopback, an HTTPS policy client and the
//! `_mta-sts` TXT lookup.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;

pub const ZONE: &str = "sts.provider.test";
/// Every wait of a test client.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A CA, and a leaf for the given names written as `cert.pem` and `key.pem` in `dir`.
pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

pub fn pki(dir: &Path, names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "stsward serve test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(params, ca_key);
    let key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("leaf params")
        .signed_by(&key, &issuer)
        .expect("leaf");
    let cert_file = dir.join("cert.pem");
    let key_file = dir.join("key.pem");
    std::fs::write(&cert_file, leaf.pem()).expect("write cert");
    std::fs::write(&key_file, key.serialize_pem()).expect("write key");
    Pki {
        ca: ca.der().clone(),
        cert_file,
        key_file,
    }
}

/// A configuration on loopback (port 0: free ports), fast polling, a 2 s heartbeat expiry,
/// and no scheduled full checks (they would look real domains up when a test moves the
/// clock on).
pub fn config_text(pki: &Pki, store_url: &str, v6: bool) -> String {
    let (https, dns) = if v6 {
        (
            r#"["127.0.0.1:0", "[::1]:0"]"#,
            r#"["127.0.0.1:0", "[::1]:0"]"#,
        )
    } else {
        (r#"["127.0.0.1:0"]"#, r#"["127.0.0.1:0"]"#)
    };
    format!(
        r#"
[listen]
https = {https}
http = ["127.0.0.1:0"]
dns = {dns}
[hosting]
zone = "{ZONE}"
policy_host = "mta-sts.{ZONE}"
policy_host_addrs = ["127.0.0.1"]
txt_ttl = 60
tlsrpt_rua = "mailto:tlsrpt@provider.test"
[[hosting.nameservers]]
name = "ns1.{ZONE}"
addrs = ["127.0.0.1"]
[tls]
cert_file = {cert:?}
key_file = {key:?}
[store]
url = {store_url:?}
[api]
listen = ["127.0.0.1:0"]
token = "serve-test-token"
[replicas]
poll_interval_ms = 100
heartbeat_expiry = 2
[alerts]
check_interval = 0
"#,
        cert = pki.cert_file.display().to_string(),
        key = pki.key_file.display().to_string(),
    )
}

fn client(ca: &CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("test root");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// What a policy fetch got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Status and body.
    Http(u16, String),
    /// The connection or the TLS handshake failed.
    Refused(String),
}

impl Fetched {
    /// The policy's `mode`, when the fetch gave 200.
    pub fn mode(&self) -> Option<String> {
        match self {
            Fetched::Http(200, body) => body
                .lines()
                .find_map(|l| l.strip_prefix("mode: "))
                .map(|m| m.trim().to_owned()),
            _ => None,
        }
    }
}

/// `GET /.well-known/mta-sts.txt` for `mta-sts.<domain>` at `addr`, trusting `ca`.
pub async fn fetch(addr: SocketAddr, domain: &str, ca: &CertificateDer<'static>) -> Fetched {
    let host = format!("mta-sts.{domain}");
    let work = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let mut tls = TlsConnector::from(client(ca))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let request = format!(
            "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        tls.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(String::from_utf8_lossy(&raw).into_owned())
    };
    match tokio::time::timeout(CLIENT_TIMEOUT, work).await {
        Ok(Ok(text)) => {
            let status = text
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let body = text
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_owned())
                .unwrap_or_default();
            Fetched::Http(status, body)
        }
        Ok(Err(e)) => Fetched::Refused(e),
        Err(_) => Fetched::Refused("timeout".into()),
    }
}

/// One TXT question over UDP; `None` when nothing (decodable) came back in time.
async fn ask_txt(dns: SocketAddr, name: &str) -> Option<Message> {
    let mut msg = Message::new(0x5157, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(
        Name::from_ascii(name).expect("test name parses"),
        RecordType::TXT,
    ));
    let bytes = msg.to_vec().expect("question encodes");
    let local = if dns.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let socket = UdpSocket::bind(local).await.ok()?;
    socket.send_to(&bytes, dns).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}

/// The `_mta-sts` TXT of `domain` in the zone: `Ok(id)`, `Err(rcode)` when there is none
/// (`ServFail` when no answer came).
pub async fn sts_id(dns: SocketAddr, domain: &str) -> Result<String, ResponseCode> {
    let name = format!("_mta-sts.{domain}.{ZONE}.");
    let Some(msg) = ask_txt(dns, &name).await else {
        return Err(ResponseCode::ServFail);
    };
    let txts: Vec<String> = msg
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect();
    match txts.first() {
        Some(txt) => Ok(txt
            .split(';')
            .find_map(|f| f.trim().strip_prefix("id="))
            .unwrap_or_default()
            .to_owned()),
        None => Err(msg.metadata.response_code),
    }
}

/// Waits (polling every 20 ms) up to `limit` for `check` to hold; returns the time it took.
pub async fn within<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
