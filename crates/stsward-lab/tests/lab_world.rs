//! The lab on real loopback sockets: DNS answers (RFC 1035), MX STARTTLS (RFC 3207) and
//! policy HTTPS (RFC 8461 §3.3), each fault as the shipped scenario describes it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use http_body_util::{BodyExt, Empty};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use stsward_lab::{FINDINGS_SCENARIO, Lab, LabOptions, RunningLab, Scenario, generate_bulk};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;

/// Every test finishes well within this, or fails.
const LIMIT: Duration = Duration::from_secs(60);

async fn start(scenario: &Scenario) -> (tempfile::TempDir, RunningLab) {
    let dir = tempfile::tempdir().unwrap();
    let opts = LabOptions::new(dir.path(), time::OffsetDateTime::now_utc());
    let lab = Lab::start(scenario, &opts).await.unwrap();
    (dir, lab)
}

async fn start_findings() -> (tempfile::TempDir, RunningLab, Scenario) {
    let scenario: Scenario = FINDINGS_SCENARIO.parse().unwrap();
    let (dir, lab) = start(&scenario).await;
    (dir, lab, scenario)
}

// ---- DNS ------------------------------------------------------------------------------------

fn query_message(name: &str, rtype: RecordType) -> Message {
    let mut message = Message::new(0x5151, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    message
}

async fn dns_udp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let socket = UdpSocket::bind((server.ip(), 0)).await.unwrap();
    socket
        .send_to(&query_message(name, rtype).to_vec().unwrap(), server)
        .await
        .unwrap();
    let mut buf = vec![0u8; 65_535];
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    Message::from_vec(&buf[..len]).unwrap()
}

async fn dns_tcp(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    use tokio::io::AsyncReadExt;
    let mut stream = TcpStream::connect(server).await.unwrap();
    let wire = query_message(name, rtype).to_vec().unwrap();
    stream
        .write_all(&(wire.len() as u16).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&wire).await.unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn txt_strings(message: &Message) -> Vec<Vec<String>> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc1035_lab_dns_answers_mx_txt_a_and_tlsa() {
    tokio::time::timeout(LIMIT, async {
        let (_dir, lab, _) = start_findings().await;
        let dns = lab.resolver_addr();

        let mx = dns_udp(dns, "perfect.test.", RecordType::MX).await;
        assert_eq!(mx.metadata.response_code, ResponseCode::NoError);
        assert!(mx.metadata.authoritative);
        let exchanges: Vec<String> = mx
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some(mx.exchange.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(exchanges, ["mx.perfect.test."]);

        let four = dns_udp(dns, "four-mx.test.", RecordType::MX).await;
        assert_eq!(four.answers.len(), 4, "four-mx.test has four MX records");

        let txt = dns_udp(dns, "_mta-sts.perfect.test.", RecordType::TXT).await;
        let records = txt_strings(&txt);
        assert_eq!(records.len(), 1);
        assert!(records[0][0].starts_with("v=STSv1; id="), "{records:?}");

        let multiple = dns_udp(dns, "_mta-sts.sts-txt-multiple.test.", RecordType::TXT).await;
        assert_eq!(txt_strings(&multiple).len(), 2, "two records, not one");

        // RFC 1035 §3.3.14: a record past 255 octets arrives as several character-strings.
        let split = dns_tcp(dns, "_mta-sts.sts-txt-split.test.", RecordType::TXT).await;
        let split = txt_strings(&split);
        assert_eq!(split.len(), 1);
        assert!(split[0].len() > 1, "{split:?}");
        assert!(split[0].iter().all(|s| s.len() <= 255));
        assert!(
            split[0]
                .concat()
                .starts_with("v=STSv1; id=20240101; padding=xxx")
        );

        let a = dns_udp(dns, "mx.perfect.test.", RecordType::A).await;
        let addrs: Vec<IpAddr> = a
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect();
        assert_eq!(
            addrs,
            [IpAddr::V4(lab.host_addr("mx.perfect.test").unwrap())]
        );
        assert!(addrs[0].is_loopback());

        let tlsa = dns_udp(dns, "_25._tcp.mx.perfect.test.", RecordType::TLSA).await;
        assert!(
            tlsa.answers
                .iter()
                .any(|r| matches!(&r.data, RData::TLSA(_))),
            "perfect.test publishes a TLSA record"
        );

        // mx-address.test's MX host has no address: the name does not exist.
        let none = dns_udp(dns, "mx.mx-address.test.", RecordType::A).await;
        assert!(none.answers.is_empty());
        assert_eq!(none.metadata.response_code, ResponseCode::NXDomain);

        // The policy host of sts-policy-unreachable.test has an address, nothing listens.
        let dead = dns_udp(dns, "mta-sts.sts-policy-unreachable.test.", RecordType::A).await;
        assert_eq!(dead.answers.len(), 1);

        let cname = dns_udp(dns, "_mta-sts.sts-txt-lookup.test.", RecordType::TXT).await;
        assert!(
            cname
                .answers
                .iter()
                .any(|r| matches!(&r.data, RData::CNAME(_))),
            "the CNAME loop is served as CNAMEs"
        );
        lab.shutdown().await;
    })
    .await
    .unwrap();
}

// ---- SMTP -----------------------------------------------------------------------------------

fn lab_roots(lab: &RunningLab) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(lab.ca_file()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

fn connector(lab: &RunningLab) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(lab_roots(lab))
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Reads one (possibly multi-line) SMTP reply.
async fn reply<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut BufReader<S>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        assert!(!line.is_empty(), "connection closed after {all:?}");
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    line: &str,
) -> String {
    stream
        .get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .await
        .unwrap();
    reply(stream).await
}

async fn smtp_to(lab: &RunningLab, host: &str) -> BufReader<TcpStream> {
    let addr = SocketAddr::new(IpAddr::V4(lab.host_addr(host).unwrap()), lab.smtp_port());
    let mut stream = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let banner = reply(&mut stream).await;
    assert!(banner.starts_with("220 "), "{banner}");
    stream
}

/// EHLO, STARTTLS, and the TLS handshake with the lab CA as the only trust anchor.
async fn starttls(
    lab: &RunningLab,
    host: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut stream = smtp_to(lab, host).await;
    let ehlo = command(&mut stream, "EHLO prober.test").await;
    assert!(
        ehlo.contains("250-STARTTLS") || ehlo.contains("250 STARTTLS"),
        "{ehlo}"
    );
    let ready = command(&mut stream, "STARTTLS").await;
    assert!(ready.starts_with("220 "), "{ready}");
    connector(lab)
        .connect(
            ServerName::try_from(host.to_owned()).unwrap(),
            stream.into_inner(),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3207_good_mx_offers_starttls_and_completes_a_trusted_handshake() {
    tokio::time::timeout(LIMIT, async {
        let (_dir, lab, _) = start_findings().await;
        let tls = starttls(&lab, "mx.perfect.test").await.unwrap();
        let version = tls.get_ref().1.protocol_version();
        assert!(matches!(
            version,
            Some(rustls::ProtocolVersion::TLSv1_3 | rustls::ProtocolVersion::TLSv1_2)
        ));
        let mut tls = BufReader::new(tls);
        let ehlo = command(&mut tls, "EHLO prober.test").await;
        assert!(ehlo.starts_with("250-"), "{ehlo}");
        assert!(
            !ehlo.contains("STARTTLS"),
            "RFC 3207 §4.2: not offered again: {ehlo}"
        );
        let bye = command(&mut tls, "QUIT").await;
        assert!(bye.starts_with("221 "), "{bye}");
        lab.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3207_mx_faults_show_as_described() {
    tokio::time::timeout(LIMIT, async {
        let (_dir, lab, _) = start_findings().await;

        // no-starttls: not in EHLO, refused when asked.
        let mut plain = smtp_to(&lab, "mx.mx-starttls-missing.test").await;
        let ehlo = command(&mut plain, "EHLO prober.test").await;
        assert!(ehlo.starts_with("250"), "{ehlo}");
        assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
        let refused = command(&mut plain, "STARTTLS").await;
        assert!(refused.starts_with("502 "), "{refused}");
        assert!(
            command(&mut plain, "MAIL FROM:<a@b.test>")
                .await
                .starts_with("502 ")
        );
        assert!(command(&mut plain, "XYZZY").await.starts_with("500 "));

        // handshake-fail: STARTTLS accepted, then no TLS.
        assert!(starttls(&lab, "mx.mx-tls-handshake.test").await.is_err());

        // Certificate faults: the handshake fails against the lab CA, for the right reason.
        let cases: &[(&str, &str)] = &[
            ("mx.mx-cert-expired.test", "expired"),
            ("mx.mx-cert-name.test", "NotValidForName"),
            ("mx.mx-cert-untrusted.test", "UnknownIssuer"),
            ("mx.mx-cert-self-signed.test", "UnknownIssuer"),
        ];
        for (host, reason) in cases {
            let err = starttls(&lab, host).await.expect_err(host);
            let text = format!("{err:?}");
            assert!(
                text.to_lowercase().contains(&reason.to_lowercase()),
                "{host}: {text}"
            );
        }
        // Expiring is still valid today.
        assert!(starttls(&lab, "mx.mx-cert-expiring.test").await.is_ok());

        // Unreachable: an address, nobody home.
        let dead = SocketAddr::new(
            IpAddr::V4(lab.host_addr("mx.mx-unreachable.test").unwrap()),
            lab.smtp_port(),
        );
        assert!(TcpStream::connect(dead).await.is_err());
        assert!(lab.host_addr("mx.mx-address.test").is_none());
        lab.shutdown().await;
    })
    .await
    .unwrap();
}

/// A blocking OpenSSL client limited to TLS 1.0 at security level 0: what a legacy probe does.
fn openssl_tls10(addr: SocketAddr) -> Result<String, String> {
    use std::io::{BufRead, Write};
    let stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut reader = std::io::BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let read_reply = |reader: &mut std::io::BufReader<std::net::TcpStream>| {
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.clone();
            }
        }
    };
    read_reply(&mut reader);
    writer.write_all(b"EHLO prober.test\r\n").unwrap();
    read_reply(&mut reader);
    writer.write_all(b"STARTTLS\r\n").unwrap();
    assert!(read_reply(&mut reader).starts_with("220"));
    let mut builder =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    builder.set_verify(openssl::ssl::SslVerifyMode::NONE);
    builder.set_cipher_list("DEFAULT:@SECLEVEL=0").unwrap();
    builder.set_security_level(0);
    builder
        .set_min_proto_version(Some(openssl::ssl::SslVersion::TLS1))
        .unwrap();
    builder
        .set_max_proto_version(Some(openssl::ssl::SslVersion::TLS1))
        .unwrap();
    let connector = builder.build();
    let tls = connector
        .configure()
        .unwrap()
        .verify_hostname(false)
        .connect("legacy.test", writer)
        .map_err(|e| e.to_string())?;
    Ok(tls.ssl().version_str().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8996_legacy_tls_hosts_speak_tls10() {
    tokio::time::timeout(LIMIT, async {
        let (_dir, lab, _) = start_findings().await;
        let only = SocketAddr::new(
            IpAddr::V4(lab.host_addr("mx.mx-tls-version.test").unwrap()),
            lab.smtp_port(),
        );
        let too = SocketAddr::new(
            IpAddr::V4(lab.host_addr("mx.mx-tls-legacy.test").unwrap()),
            lab.smtp_port(),
        );
        let good = SocketAddr::new(
            IpAddr::V4(lab.host_addr("mx.perfect.test").unwrap()),
            lab.smtp_port(),
        );
        let (only_v, too_v, good_v) = tokio::task::spawn_blocking(move || {
            (openssl_tls10(only), openssl_tls10(too), openssl_tls10(good))
        })
        .await
        .unwrap();
        assert_eq!(only_v.as_deref(), Ok("TLSv1"));
        assert_eq!(too_v.as_deref(), Ok("TLSv1"));
        assert!(good_v.is_err(), "the good host refuses TLS 1.0");
        // rustls (TLS 1.2+) cannot talk to the TLS 1.0-only host, but can to the other.
        assert!(starttls(&lab, "mx.mx-tls-version.test").await.is_err());
        assert!(starttls(&lab, "mx.mx-tls-legacy.test").await.is_ok());
        lab.shutdown().await;
    })
    .await
    .unwrap();
}

// ---- HTTPS ----------------------------------------------------------------------------------

struct Fetched {
    status: u16,
    content_type: String,
    location: Option<String>,
    body: Vec<u8>,
}

async fn fetch(lab: &RunningLab, host: &str, path: &str) -> Result<Fetched, String> {
    let addr = SocketAddr::new(IpAddr::V4(lab.host_addr(host).unwrap()), lab.https_port());
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let tls = connector(lab)
        .connect(ServerName::try_from(host.to_owned()).unwrap(), tcp)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = response.status().as_u16();
    let content_type = header(http::header::CONTENT_TYPE).unwrap_or_default();
    let location = header(http::header::LOCATION);
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec();
    Ok(Fetched {
        status,
        content_type,
        location,
        body,
    })
}

const POLICY: &str = "/.well-known/mta-sts.txt";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8461_3_3_policy_hosts_serve_and_fail_as_described() {
    tokio::time::timeout(LIMIT, async {
        let (_dir, lab, scenario) = start_findings().await;

        let good = fetch(&lab, "mta-sts.perfect.test", POLICY).await.unwrap();
        assert_eq!(good.status, 200);
        assert_eq!(good.content_type, "text/plain");
        let expected = &scenario
            .domain("perfect.test")
            .unwrap()
            .policy
            .as_ref()
            .unwrap()
            .text;
        assert_eq!(String::from_utf8(good.body).unwrap(), *expected);
        assert!(expected.contains("mode: enforce\r\nmx: mx.perfect.test\r\n"));

        let redirect = fetch(&lab, "mta-sts.sts-policy-redirect.test", POLICY)
            .await
            .unwrap();
        assert_eq!(redirect.status, 301);
        let location = redirect.location.unwrap();
        let path = location
            .strip_prefix("https://mta-sts.sts-policy-redirect.test")
            .unwrap();
        let target = fetch(&lab, "mta-sts.sts-policy-redirect.test", path)
            .await
            .unwrap();
        assert_eq!(target.status, 200, "the redirect leads to a valid policy");

        let cases: &[(&str, u16, &str)] = &[
            ("mta-sts.sts-policy-status.test", 404, "text/plain"),
            ("mta-sts.sts-policy-status-500.test", 500, "text/plain"),
            ("mta-sts.sts-policy-content-type.test", 200, "text/html"),
        ];
        for (host, status, content_type) in cases {
            let got = fetch(&lab, host, POLICY).await.unwrap();
            assert_eq!(got.status, *status, "{host}");
            assert_eq!(got.content_type, *content_type, "{host}");
        }
        let big = fetch(&lab, "mta-sts.sts-policy-size.test", POLICY)
            .await
            .unwrap();
        assert!(big.body.len() > 64 * 1024);

        let bom = fetch(&lab, "mta-sts.sts-policy-bom.test", POLICY)
            .await
            .unwrap();
        assert!(
            bom.body
                .starts_with("\u{feff}version: STSv1\r\n".as_bytes())
        );

        let expired = fetch(&lab, "mta-sts.sts-policy-webpki-expired.test", POLICY)
            .await
            .err()
            .unwrap();
        assert!(expired.to_lowercase().contains("expired"), "{expired}");
        let name = fetch(&lab, "mta-sts.sts-policy-webpki-name.test", POLICY)
            .await
            .err()
            .unwrap();
        assert!(name.contains("NotValidForName"), "{name}");
        assert!(
            fetch(&lab, "mta-sts.sts-policy-unreachable.test", POLICY)
                .await
                .is_err()
        );
        assert!(lab.host_addr("mta-sts.sts-policy-host.test").is_none());

        // The slow host has not answered after a second.
        let slow = tokio::time::timeout(
            Duration::from_secs(1),
            fetch(&lab, "mta-sts.sts-policy-timeout.test", POLICY),
        )
        .await;
        assert!(slow.is_err());
        lab.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_policy_certificate_is_really_expired() {
    tokio::time::timeout(LIMIT, async {
        let (_dir, lab, _) = start_findings().await;
        let host = "mta-sts.sts-policy-webpki-expired.test";
        let addr = SocketAddr::new(IpAddr::V4(lab.host_addr(host).unwrap()), lab.https_port());
        let not_after = tokio::task::spawn_blocking(move || {
            let mut builder =
                openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
            builder.set_verify(openssl::ssl::SslVerifyMode::NONE);
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            let tls = builder.build().connect(host, tcp).unwrap();
            let cert = tls.ssl().peer_certificate().unwrap();
            let now = openssl::asn1::Asn1Time::days_from_now(0).unwrap();
            cert.not_after().compare(&now).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(not_after, std::cmp::Ordering::Less);
        lab.shutdown().await;
    })
    .await
    .unwrap();
}

// ---- Lifecycle ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_every_port() {
    tokio::time::timeout(LIMIT, async {
        let (_dir, lab, _) = start_findings().await;
        let smtp = SocketAddr::new(
            IpAddr::V4(lab.host_addr("mx.perfect.test").unwrap()),
            lab.smtp_port(),
        );
        let https = SocketAddr::new(
            IpAddr::V4(lab.host_addr("mta-sts.perfect.test").unwrap()),
            lab.https_port(),
        );
        let dns = lab.resolver_addr();
        assert!(
            tokio::net::TcpListener::bind(smtp).await.is_err(),
            "in use while running"
        );
        let describe = lab.describe();
        assert!(
            describe.contains(&format!("--resolver {dns}")),
            "{describe}"
        );
        assert!(describe.contains("--ca-file "));
        assert!(describe.contains(&format!("--smtp-port {}", lab.smtp_port())));
        assert!(describe.contains(&format!("--https-port {}", lab.https_port())));
        assert!(describe.contains("trust anchors"), "perfect.test is signed");
        lab.shutdown().await;
        tokio::net::TcpListener::bind(smtp).await.unwrap();
        tokio::net::TcpListener::bind(https).await.unwrap();
        tokio::net::TcpListener::bind(dns).await.unwrap();
        UdpSocket::bind(dns).await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_lab_of_1000_domains_starts_fast_on_few_sockets() {
    tokio::time::timeout(LIMIT, async {
        let scenario = generate_bulk(1000, &Scenario::default());
        let started = std::time::Instant::now();
        let (_dir, lab) = start(&scenario).await;
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(20), "started in {elapsed:?}");
        assert_eq!(lab.domains().len(), 1000);
        let a = lab.host_addr("mta-sts.bulk-00000.test").unwrap();
        let b = lab.host_addr("mta-sts.bulk-00004.test").unwrap();
        assert_eq!(a, b, "policy hosts share a pool of addresses");

        let mx = dns_udp(lab.resolver_addr(), "bulk-00999.test.", RecordType::MX).await;
        assert_eq!(mx.answers.len(), 2);
        for host in ["mta-sts.bulk-00000.test", "mta-sts.bulk-00999.test"] {
            let got = fetch(&lab, host, POLICY).await.unwrap();
            assert_eq!(got.status, 200, "{host}");
        }
        let tls = starttls(&lab, "mx3.bulk-mail.test").await;
        assert!(tls.is_ok());
        lab.shutdown().await;
    })
    .await
    .unwrap();
}

#[test]
fn scenario_errors_name_the_field() {
    let err =
        "[[domain]]\nname = \"x.test\"\n[domain.policy]\nbehaviour = \"good\"\ncolour = \"red\"\n"
            .parse::<Scenario>()
            .unwrap_err()
            .to_string();
    assert!(err.contains("colour"), "{err}");
    let err = "[[mx_host]]\nname = \"mx.x.test\"\nbehaviour = \"good\"\ntlsa = \"sometimes\"\n"
        .parse::<Scenario>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("mx_host[0].tlsa"), "{err}");
}

// ---- DNSSEC (RFC 4035) -----------------------------------------------------------------------

/// A UDP query with the DO bit set, as a validator sends it.
async fn dns_udp_do(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let mut message = query_message(name, rtype);
    message
        .edns
        .get_or_insert_with(hickory_proto::op::Edns::new)
        .enable_dnssec();
    let socket = UdpSocket::bind((server.ip(), 0)).await.unwrap();
    socket
        .send_to(&message.to_vec().unwrap(), server)
        .await
        .unwrap();
    let mut buf = vec![0u8; 65_535];
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    Message::from_vec(&buf[..len]).unwrap()
}

fn count(message: &Message, rtype: RecordType) -> usize {
    message
        .answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .count()
}

/// The lab's `dnssec = "expired"` zone serves signatures whose window
/// closed before the lab's "now", by the key its trust anchor names; a signed zone's are
/// current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_zone_serves_expired_signatures() {
    use hickory_proto::dnssec::rdata::DNSSECRData;
    tokio::time::timeout(LIMIT, async {
        let (_dir, lab, _) = start_findings().await;
        let now = u32::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap();
        let anchors = std::fs::read_to_string(lab.trust_anchor_file().unwrap()).unwrap();
        assert!(
            anchors
                .lines()
                .any(|l| l.starts_with("dnssec-expired.test. ")),
            "the expired zone's key is a trust anchor: {anchors}"
        );
        // (zone, whether its signatures have expired)
        for (zone, expired) in [("dnssec-expired.test.", true), ("perfect.test.", false)] {
            let answer = dns_udp_do(lab.resolver_addr(), zone, RecordType::MX).await;
            let expirations: Vec<u32> = answer
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::RRSIG(sig)) => {
                        Some(sig.input().sig_expiration.get())
                    }
                    _ => None,
                })
                .collect();
            assert!(!expirations.is_empty(), "{zone}: signed");
            for at in expirations {
                assert_eq!(at < now, expired, "{zone}: expiration {at}, now {now}");
            }
        }
    })
    .await
    .unwrap();
}

/// Issue 6: `LabOptions::plain_dns` makes the lab's server behave as one without DNSSEC
/// support, whatever the scenario signs: the DO bit is ignored, no RRSIG and no DNSKEY come
/// back, and no trust anchors are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_dns_server_passes_no_dnssec_records() {
    tokio::time::timeout(LIMIT, async {
        let scenario: Scenario = FINDINGS_SCENARIO.parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut opts = LabOptions::new(dir.path(), time::OffsetDateTime::now_utc());
        opts.plain_dns = true;
        let plain = Lab::start(&scenario, &opts).await.unwrap();
        let (_dir, signing, _) = start_findings().await;
        assert!(plain.trust_anchor_file().is_none());
        assert!(signing.trust_anchor_file().is_some());

        // (server, signatures and keys expected, why)
        for (lab, dnssec, why) in [(&plain, false, "plain"), (&signing, true, "signing")] {
            let txt = dns_udp_do(
                lab.resolver_addr(),
                "_mta-sts.perfect.test.",
                RecordType::TXT,
            )
            .await;
            assert_eq!(txt_strings(&txt).len(), 1, "{why}: the record is served");
            assert_eq!(count(&txt, RecordType::RRSIG) > 0, dnssec, "{why}: RRSIG");
            let keys = dns_udp_do(lab.resolver_addr(), "perfect.test.", RecordType::DNSKEY).await;
            assert_eq!(
                count(&keys, RecordType::DNSKEY) > 0,
                dnssec,
                "{why}: DNSKEY"
            );
        }
        plain.shutdown().await;
    })
    .await
    .unwrap();
}
