//! The policy host end to end (RFC 8461 §3.3, RFC 8555 §8.3, RFC 8737 §3): real listeners on
//! 127.0.0.1 and ::1, real TLS clients (rustls, OpenSSL, stsward-net's policy fetcher), and
//! certificates from the lab CA.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use stsward_lab::dns::{DnsServer, DnsServerOptions, LabRecord, Zone};
use stsward_lab::scenario::Dnssec;
use stsward_lab::{CertVariant, LabCa};
use stsward_proto::mta_sts::Policy;
use stsward_server::host::{
    Challenges, FetchCounter, HostLimits, HostServer, Network, POLICY_CONTENT_TYPE, Sites,
    WELL_KNOWN_PATH,
};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const POLICY_A: &str = "version: STSv1\r\nmode: testing\r\nmx: mx.a.test\r\nmax_age: 86400\r\n";
const POLICY_B: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mx1.b.test\r\nmx: *.b.test\r\nmax_age: 604800\r\n";
/// Every wait of a test client.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The `Display` of the proto policy, as the domain service passes it.
fn served_body(text: &str) -> String {
    text.parse::<Policy>().expect("fixture policy").to_string()
}

fn certified(ca: &LabCa, host: &str, variant: CertVariant) -> CertifiedKey {
    let issued = ca.issue(&[host.to_owned()], variant).expect("issue");
    CertifiedKey::from_der(issued.chain.clone(), issued.private_key(), &provider())
        .expect("certified key")
}

struct Running {
    https: Vec<SocketAddr>,
    http: Vec<SocketAddr>,
    sites: Sites,
    challenges: Challenges,
    counter: FetchCounter,
    ca: LabCa,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    fn https_v4(&self) -> SocketAddr {
        self.https[0]
    }

    fn https_v6(&self) -> SocketAddr {
        self.https[1]
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(CLIENT_TIMEOUT, &mut self.task)
            .await
            .expect("run returns after the shutdown signal")
            .expect("run task");
    }
}

/// A host serving `a.test` and `b.test` with good certificates.
async fn start(limits: HostLimits) -> Running {
    let ca = LabCa::new(OffsetDateTime::now_utc()).expect("lab CA");
    let sites = Sites::new();
    for (domain, policy) in [("a.test", POLICY_A), ("b.test", POLICY_B)] {
        sites.upsert_policy(domain, served_body(policy)).unwrap();
        let host = format!("mta-sts.{domain}");
        sites
            .set_certificate(&host, certified(&ca, &host, CertVariant::Good))
            .unwrap();
    }
    let challenges = Challenges::new();
    let counter = FetchCounter::default();
    let server = HostServer::bind(
        &["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()],
        &["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()],
        limits,
    )
    .expect("bind");
    let https = server.https_addrs();
    let http = server.http_addrs();
    assert_eq!(https.len(), 2);
    let (stop, stopped) = oneshot::channel::<()>();
    let (s, c, n) = (sites.clone(), challenges.clone(), counter.clone());
    let task = tokio::spawn(async move {
        server
            .run(s, c, n, async {
                let _ = stopped.await;
            })
            .await
            .expect("run");
    });
    Running {
        https,
        http,
        sites,
        challenges,
        counter,
        ca,
        stop: Some(stop),
        task,
    }
}

fn client_config(ca: &LabCa, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.ca_der().clone()).expect("lab root");
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

async fn tls_connect(
    addr: SocketAddr,
    sni: &str,
    cfg: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned()).expect("server name");
    tokio::time::timeout(CLIENT_TIMEOUT, TlsConnector::from(cfg).connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))?
}

#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` and reads one response (a HEAD response has no body).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &str,
) -> std::io::Result<Resp> {
    tokio::time::timeout(CLIENT_TIMEOUT, async {
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed before a response head",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end - 4]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let mut resp = Resp {
            status,
            head,
            body: buf[head_end..].to_vec(),
        };
        let len: usize = if request.starts_with("HEAD ") {
            0
        } else {
            resp.header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        while resp.body.len() < len {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            resp.body.extend_from_slice(&chunk[..n]);
        }
        Ok(resp)
    })
    .await
    .map_err(|_| std::io::Error::other("response timed out"))?
}

fn request(method: &str, target: &str, host: &str) -> String {
    format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: test\r\n\r\n")
}

/// One request on a new TLS connection to `addr` with SNI `sni`.
async fn fetch(run: &Running, addr: SocketAddr, sni: &str, req: &str) -> Resp {
    let mut tls = tls_connect(addr, sni, client_config(&run.ca, &[b"http/1.1"]))
        .await
        .expect("handshake");
    exchange(&mut tls, req).await.expect("response")
}

/// Waits until the peer closes `stream`; returns how long that took from `since`.
async fn closed_after<S: AsyncRead + Unpin>(stream: &mut S, since: Instant) -> Duration {
    let mut buf = [0u8; 1024];
    let waited = tokio::time::timeout(CLIENT_TIMEOUT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the server never closed the connection");
    since.elapsed()
}

fn presented_names(tls: &TlsStream<TcpStream>) -> Vec<String> {
    let chain = tls.get_ref().1.peer_certificates().expect("a certificate");
    let (_, cert) = x509_parser::parse_x509_certificate(chain[0].as_ref()).expect("leaf parses");
    cert.subject_alternative_name()
        .expect("SAN parses")
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn rfc8461_3_3_policy_is_served_with_exact_body_and_headers_over_ipv4_and_ipv6() {
    let run = start(HostLimits::default()).await;
    let want = served_body(POLICY_A);
    assert!(want.ends_with("\r\n") && !want.replace("\r\n", "").contains('\n'));
    for addr in [run.https_v4(), run.https_v6()] {
        let got = fetch(
            &run,
            addr,
            "mta-sts.a.test",
            &request("GET", WELL_KNOWN_PATH, "mta-sts.a.test"),
        )
        .await;
        assert_eq!(got.status, 200, "{addr}: {}", got.head);
        assert_eq!(
            got.body,
            want.as_bytes(),
            "{addr}: the policy's Display, CRLF lines"
        );
        assert_eq!(got.header("content-type"), Some(POLICY_CONTENT_TYPE));
        assert_eq!(
            got.header("content-length"),
            Some(want.len().to_string().as_str())
        );
        assert_eq!(got.header("cache-control"), Some("no-store"));
        assert_eq!(got.header("location"), None);

        let head = fetch(
            &run,
            addr,
            "mta-sts.a.test",
            &request("HEAD", WELL_KNOWN_PATH, "mta-sts.a.test"),
        )
        .await;
        assert_eq!(head.status, 200);
        assert_eq!(
            head.header("content-length"),
            Some(want.len().to_string().as_str())
        );
        assert!(head.body.is_empty(), "HEAD carries no body");
    }
    // Host matched case-insensitively, with a trailing dot and a port.
    for host in [
        "MTA-STS.A.TEST",
        "mta-sts.a.test.",
        "mta-sts.a.test:443",
        "Mta-Sts.A.Test.:443",
    ] {
        let got = fetch(
            &run,
            run.https_v4(),
            "mta-sts.a.test",
            &request("GET", WELL_KNOWN_PATH, host),
        )
        .await;
        assert_eq!(got.status, 200, "Host {host:?}");
    }
    run.shutdown().await;
}

#[tokio::test]
async fn sni_picks_each_domains_certificate_and_unknown_names_fail_the_handshake() {
    let run = start(HostLimits::default()).await;
    let cfg = client_config(&run.ca, &[b"http/1.1"]);
    for (sni, body) in [("mta-sts.a.test", POLICY_A), ("MTA-STS.B.TEST", POLICY_B)] {
        let mut tls = tls_connect(run.https_v4(), sni, cfg.clone())
            .await
            .expect("handshake");
        assert_eq!(presented_names(&tls), vec![sni.to_ascii_lowercase()]);
        let got = exchange(&mut tls, &request("GET", WELL_KNOWN_PATH, sni))
            .await
            .unwrap();
        assert_eq!(got.body, served_body(body).as_bytes());
    }

    // Not hosted; hosted without a certificate; hosted with an expired one.
    run.sites
        .upsert_policy("nocert.test", served_body(POLICY_A))
        .unwrap();
    run.sites
        .upsert_policy("expired.test", served_body(POLICY_A))
        .unwrap();
    run.sites
        .set_certificate(
            "mta-sts.expired.test",
            certified(&run.ca, "mta-sts.expired.test", CertVariant::Expired),
        )
        .unwrap();
    for sni in [
        "mta-sts.unknown.test",
        "mta-sts.nocert.test",
        "mta-sts.expired.test",
        "a.test",
    ] {
        let got = tls_connect(run.https_v4(), sni, cfg.clone()).await;
        assert!(got.is_err(), "{sni}: the handshake must fail");
    }
    // No SNI at all (an IP address as the server name sends none).
    let ip = ServerName::IpAddress(IpAddr::from(Ipv4Addr::LOCALHOST).into());
    let tcp = TcpStream::connect(run.https_v4()).await.unwrap();
    assert!(
        TlsConnector::from(cfg.clone())
            .connect(ip, tcp)
            .await
            .is_err()
    );

    // A certificate for another name is refused when set, and nothing changes.
    let wrong = certified(&run.ca, "mta-sts.b.test", CertVariant::Good);
    assert!(run.sites.set_certificate("mta-sts.a.test", wrong).is_err());
    let tls = tls_connect(run.https_v4(), "mta-sts.a.test", cfg.clone())
        .await
        .unwrap();
    assert_eq!(presented_names(&tls), vec!["mta-sts.a.test".to_owned()]);

    // A certificate before any policy (the first ACME order): TLS works, the policy is 404.
    let c = "mta-sts.c.test";
    run.sites
        .set_certificate(c, certified(&run.ca, c, CertVariant::Good))
        .unwrap();
    let mut tls = tls_connect(run.https_v4(), c, cfg.clone()).await.unwrap();
    let got = exchange(&mut tls, &request("GET", WELL_KNOWN_PATH, c))
        .await
        .unwrap();
    assert_eq!(got.status, 404);
    run.sites
        .upsert_policy("c.test", served_body(POLICY_A))
        .unwrap();
    let got = exchange(&mut tls, &request("GET", WELL_KNOWN_PATH, c))
        .await
        .unwrap();
    assert_eq!(got.status, 200);

    // Removal: the next handshake fails.
    assert!(run.sites.remove("a.test").unwrap());
    assert!(
        tls_connect(run.https_v4(), "mta-sts.a.test", cfg)
            .await
            .is_err()
    );
    run.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_404_405_or_421() {
    let run = start(HostLimits::default()).await;
    let a = "mta-sts.a.test";
    let cases = [
        (
            request("GET", WELL_KNOWN_PATH, "mta-sts.unknown.test"),
            404,
            "unknown Host",
        ),
        (
            request("GET", WELL_KNOWN_PATH, "127.0.0.1"),
            404,
            "bare IPv4 Host",
        ),
        (
            request("GET", WELL_KNOWN_PATH, "[::1]:443"),
            404,
            "bare IPv6 Host",
        ),
        (
            request("GET", "/.well-known/../mta-sts.txt", a),
            404,
            "dot segments",
        ),
        (
            request("GET", "/.well-known/%2e%2e/.well-known/mta-sts.txt", a),
            404,
            "encoded dots",
        ),
        (
            request("GET", "/%2e%2e/%2e%2e/etc/passwd", a),
            404,
            "traversal",
        ),
        (
            request("GET", "/.well-known/mta-sts.txt?v=2", a),
            404,
            "query string",
        ),
        (request("GET", "/", a), 404, "other path"),
        (
            request("GET", "/.well-known/acme-challenge/x", a),
            404,
            "challenges are plain HTTP only",
        ),
        (request("POST", WELL_KNOWN_PATH, a), 405, "POST"),
        (
            request("GET", WELL_KNOWN_PATH, "mta-sts.b.test"),
            421,
            "Host differs from SNI",
        ),
        (
            "GET /.well-known/mta-sts.txt HTTP/1.1\r\n\r\n".to_owned(),
            400,
            "no Host",
        ),
    ];
    for (req, status, why) in cases {
        let got = fetch(&run, run.https_v4(), a, &req).await;
        assert_eq!(got.status, status, "{why}: {}", got.head);
        assert_eq!(got.header("location"), None, "{why}: never a redirect");
        assert_ne!(got.body, served_body(POLICY_A).as_bytes(), "{why}");
    }
    let got = fetch(
        &run,
        run.https_v4(),
        a,
        &request("POST", WELL_KNOWN_PATH, a),
    )
    .await;
    assert_eq!(got.header("allow"), Some("GET, HEAD"));
    assert_eq!(
        run.counter.drain().counts,
        vec![],
        "no fetch was answered 200"
    );
    run.shutdown().await;
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let run = start(HostLimits::default()).await;
    let a = "mta-sts.a.test";
    let big = format!(
        "GET {WELL_KNOWN_PATH} HTTP/1.1\r\nHost: {a}\r\nX-Big: {}\r\n\r\n",
        "x".repeat(20 * 1024)
    );
    let mut many = format!("GET {WELL_KNOWN_PATH} HTTP/1.1\r\nHost: {a}\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    for (req, why) in [(big, "a 20 KiB header"), (many, "100 header fields")] {
        let mut tls = tls_connect(run.https_v4(), a, client_config(&run.ca, &[]))
            .await
            .unwrap();
        match exchange(&mut tls, &req).await {
            Ok(got) => assert_eq!(got.status, 431, "{why}: {}", got.head),
            Err(e) => assert_ne!(
                e.to_string(),
                "response timed out",
                "{why}: closed is fine, hanging is not"
            ),
        }
    }
    run.shutdown().await;
}

#[tokio::test]
async fn tls_1_1_client_is_refused_and_tls_1_2_accepted() {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
    let run = start(HostLimits::default()).await;
    let addr = run.https_v4();
    let handshake = |version: SslVersion| {
        tokio::task::spawn_blocking(move || -> Result<String, String> {
            let mut b =
                SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
            b.set_min_proto_version(Some(version))
                .map_err(|e| e.to_string())?;
            b.set_max_proto_version(Some(version))
                .map_err(|e| e.to_string())?;
            // TLS 1.1 needs security level 0 in current OpenSSL builds (as in stsward-net's
            // legacy probe).
            b.set_cipher_list("DEFAULT:@SECLEVEL=0")
                .map_err(|e| e.to_string())?;
            b.set_verify(SslVerifyMode::NONE);
            let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
            tcp.set_read_timeout(Some(CLIENT_TIMEOUT))
                .map_err(|e| e.to_string())?;
            let tls = b
                .build()
                .connect("mta-sts.a.test", tcp)
                .map_err(|e| e.to_string())?;
            Ok(tls.ssl().version_str().to_owned())
        })
    };
    let tls12 = handshake(SslVersion::TLS1_2).await.unwrap();
    assert_eq!(
        tls12.as_deref(),
        Ok("TLSv1.2"),
        "the same client at TLS 1.2 connects"
    );
    let tls11 = handshake(SslVersion::TLS1_1).await.unwrap();
    let err = tls11.expect_err("a TLS 1.1 handshake must fail");
    // rustls answers a ClientHello without TLS 1.2 or 1.3 with a fatal alert
    // (handshake_failure); the TLS 1.2 control above shows it is the version that differs.
    assert!(
        err.contains("alert"),
        "refused by the server with an alert: {err}"
    );
    run.shutdown().await;
}

#[tokio::test]
async fn slow_clients_are_cut_off_within_the_deadlines_while_others_are_served() {
    let limits = HostLimits {
        handshake_timeout: Duration::from_secs(1),
        header_read_timeout: Duration::from_secs(1),
        max_connections: 8,
        ..HostLimits::default()
    };
    let run = start(limits).await;
    let a = "mta-sts.a.test";
    let cfg = client_config(&run.ca, &[b"http/1.1"]);

    // Half a request head, then silence.
    let mut half = tls_connect(run.https_v4(), a, cfg.clone()).await.unwrap();
    half.write_all(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-")
        .await
        .unwrap();
    let half_since = Instant::now();
    // A drip: one byte every 200 ms, which never finishes the head in time.
    let mut drip = tls_connect(run.https_v4(), a, cfg.clone()).await.unwrap();
    let drip_since = Instant::now();
    let drip_task = tokio::spawn(async move {
        for b in b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.a.test\r\nX: "
            .iter()
            .cycle()
        {
            if drip.write_all(&[*b]).await.is_err() || drip.flush().await.is_err() {
                break;
            }
            let mut buf = [0u8; 64];
            match tokio::time::timeout(Duration::from_millis(200), drip.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                _ => {}
            }
        }
        drip_since.elapsed()
    });
    // TCP only, no TLS ClientHello.
    let mut silent = TcpStream::connect(run.https_v4()).await.unwrap();
    let silent_since = Instant::now();
    // A kept-alive connection that goes idle after one answered request.
    let mut idle = tls_connect(run.https_v4(), a, cfg.clone()).await.unwrap();
    let first = exchange(&mut idle, &request("GET", WELL_KNOWN_PATH, a))
        .await
        .unwrap();
    assert_eq!(first.status, 200);
    let idle_since = Instant::now();

    // Meanwhile another client is served at once.
    let t = Instant::now();
    let got = fetch(&run, run.https_v6(), a, &request("GET", WELL_KNOWN_PATH, a)).await;
    assert_eq!(got.status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "served while the slow ones wait"
    );

    let limit = Duration::from_millis(2500);
    let half_after = closed_after(&mut half, half_since).await;
    assert!(
        half_after < limit,
        "half request cut off after {half_after:?}"
    );
    let silent_after = closed_after(&mut silent, silent_since).await;
    assert!(
        silent_after < limit,
        "silent TCP client cut off after {silent_after:?}"
    );
    let idle_after = closed_after(&mut idle, idle_since).await;
    assert!(
        idle_after < limit,
        "idle keep-alive cut off after {idle_after:?}"
    );
    let drip_after = drip_task.await.unwrap();
    assert!(
        drip_after < limit + Duration::from_millis(300),
        "drip cut off after {drip_after:?}"
    );
    assert!(
        drip_after >= Duration::from_millis(800),
        "the header timeout, not something else"
    );
    run.shutdown().await;
}

#[tokio::test]
async fn a_full_house_makes_new_connections_wait_for_a_slot() {
    let limits = HostLimits {
        handshake_timeout: Duration::from_secs(1),
        max_connections: 1,
        ..HostLimits::default()
    };
    let run = start(limits).await;
    let _holder = TcpStream::connect(run.https_v4()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    let got = fetch(
        &run,
        run.https_v4(),
        "mta-sts.a.test",
        &request("GET", WELL_KNOWN_PATH, "mta-sts.a.test"),
    )
    .await;
    assert_eq!(got.status, 200);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(700),
        "served only once the holder's handshake deadline freed the slot ({waited:?})"
    );
    run.shutdown().await;
}

#[tokio::test]
async fn rfc8555_8_3_http01_token_is_served_on_the_http_listener() {
    let run = start(HostLimits::default()).await;
    let token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
    let key_auth = format!("{token}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI");
    run.challenges.set_http01(token, &key_auth).unwrap();
    let path = format!("/.well-known/acme-challenge/{token}");
    for http in run.http.clone() {
        let get = |req: String| async move {
            let mut tcp = TcpStream::connect(http).await.unwrap();
            exchange(&mut tcp, &req).await.unwrap()
        };
        let got = get(request("GET", &path, "mta-sts.a.test")).await;
        assert_eq!(got.status, 200, "{http}");
        assert_eq!(got.body, key_auth.as_bytes());
        assert_eq!(got.header("content-type"), Some("text/plain"));
        for (req, why) in [
            (
                request("GET", "/.well-known/acme-challenge/unknown", "x.test"),
                "unknown token",
            ),
            (
                request("GET", WELL_KNOWN_PATH, "mta-sts.a.test"),
                "no policy over plain HTTP",
            ),
            (request("GET", "/", "mta-sts.a.test"), "other path"),
        ] {
            let got = get(req).await;
            assert_eq!(got.status, 404, "{http}: {why}");
            assert_eq!(got.header("location"), None, "{why}: no redirect");
        }
    }
    assert!(run.challenges.remove_http01(token));
    let mut tcp = TcpStream::connect(run.http[0]).await.unwrap();
    let got = exchange(&mut tcp, &request("GET", &path, "mta-sts.a.test"))
        .await
        .unwrap();
    assert_eq!(got.status, 404, "removed");
    run.shutdown().await;
}

/// Accepts any chain: a TLS-ALPN-01 certificate is self-signed by design (RFC 8737 §3). The
/// handshake signature is not checked either: rustls checks it through webpki, which refuses
/// the certificate's critical acmeIdentifier extension. What is asserted here is which
/// certificate the server presents, not who holds its key.
#[derive(Debug)]
struct AnyCert(rustls::crypto::WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

fn any_cert_config(alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let p = provider();
    let verifier = Arc::new(AnyCert(p.signature_verification_algorithms));
    let mut cfg = ClientConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// A TLS-ALPN-01 certificate as RFC 8737 §3 describes it: self-signed, one dNSName, and the
/// critical acmeIdentifier extension holding SHA-256 of the key authorization.
fn alpn_challenge_cert(name: &str) -> (CertifiedKey, CertificateDer<'static>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(&[7u8; 32])];
    let cert = params.self_signed(&key).unwrap();
    let der = cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: its key check parses the certificate with webpki, which
    // refuses the critical acmeIdentifier extension.
    let signer = provider().key_provider.load_private_key(private).unwrap();
    (CertifiedKey::new(vec![der.clone()], signer), der)
}

#[tokio::test]
async fn rfc8737_3_tls_alpn01_certificate_is_presented_only_for_acme_tls_1() {
    let run = start(HostLimits::default()).await;
    let name = "mta-sts.a.test";
    let (ck, der) = alpn_challenge_cert(name);
    run.challenges.set_tls_alpn01(name, ck).unwrap();

    let acme = any_cert_config(&[b"acme-tls/1"]);
    let tls = tls_connect(run.https_v4(), name, acme.clone())
        .await
        .expect("acme handshake");
    let session = tls.get_ref().1;
    assert_eq!(session.alpn_protocol(), Some(&b"acme-tls/1"[..]));
    assert_eq!(
        session.peer_certificates().unwrap()[0],
        der,
        "the challenge certificate"
    );
    let mut tls = tls;
    let t = Instant::now();
    let after = closed_after(&mut tls, t).await;
    assert!(
        after < Duration::from_secs(2),
        "closed right after the handshake"
    );

    // The same name without acme-tls/1 gets its ordinary certificate, and HTTP.
    let alpns: [&[&[u8]]; 2] = [&[b"http/1.1"], &[]];
    for alpn in alpns {
        let mut tls = tls_connect(run.https_v4(), name, any_cert_config(alpn))
            .await
            .unwrap();
        assert_ne!(
            tls.get_ref().1.peer_certificates().unwrap()[0],
            der,
            "{alpn:?}"
        );
        let got = exchange(&mut tls, &request("GET", WELL_KNOWN_PATH, name))
            .await
            .unwrap();
        assert_eq!(got.status, 200);
    }
    // acme-tls/1 for a name with no pending challenge fails, though the name is hosted.
    assert!(
        tls_connect(run.https_v4(), "mta-sts.b.test", acme.clone())
            .await
            .is_err()
    );
    // A challenge for a name that is not hosted yet (the first certificate) works too.
    let (ck, der) = alpn_challenge_cert("mta-sts.new.test");
    run.challenges
        .set_tls_alpn01("MTA-STS.new.test.", ck)
        .unwrap();
    let tls = tls_connect(run.https_v4(), "mta-sts.new.test", acme.clone())
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], der);
    assert!(run.challenges.remove_tls_alpn01("mta-sts.new.test"));
    assert!(
        tls_connect(run.https_v4(), "mta-sts.new.test", acme)
            .await
            .is_err()
    );
    run.shutdown().await;
}

#[tokio::test]
async fn fetches_are_counted_per_domain_day_and_network() {
    let run = start(HostLimits::default()).await;
    let day_before = OffsetDateTime::now_utc().date();
    let a = "mta-sts.a.test";
    let get_a = request("GET", WELL_KNOWN_PATH, a);
    fetch(&run, run.https_v4(), a, &get_a).await;
    fetch(&run, run.https_v4(), a, &get_a).await;
    fetch(&run, run.https_v6(), a, &get_a).await;
    fetch(
        &run,
        run.https_v4(),
        a,
        &request("HEAD", WELL_KNOWN_PATH, a),
    )
    .await;
    fetch(&run, run.https_v4(), a, &request("GET", "/other", a)).await;
    let b = "mta-sts.b.test";
    fetch(&run, run.https_v4(), b, &request("GET", WELL_KNOWN_PATH, b)).await;
    let day_after = OffsetDateTime::now_utc().date();

    let drained = run.counter.drain();
    assert_eq!(drained.dropped, 0);
    let rows: Vec<(String, String, u64)> = drained
        .counts
        .iter()
        .map(|c| {
            assert!(c.day == day_before || c.day == day_after, "{}", c.day);
            (c.domain.to_string(), c.network.to_string(), c.fetches)
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("a.test".to_owned(), "127.0.0.0/24".to_owned(), 2),
            ("a.test".to_owned(), "::/48".to_owned(), 1),
            ("b.test".to_owned(), "127.0.0.0/24".to_owned(), 1),
        ]
    );
    assert_eq!(drained.counts[0].network, Network::V4([127, 0, 0]));
    assert!(run.counter.drain().counts.is_empty());
    run.shutdown().await;
}

#[tokio::test]
async fn a_policy_update_is_served_on_the_next_request_of_the_same_connection() {
    let run = start(HostLimits::default()).await;
    let a = "mta-sts.a.test";
    let mut tls = tls_connect(run.https_v4(), a, client_config(&run.ca, &[b"http/1.1"]))
        .await
        .unwrap();
    let req = request("GET", WELL_KNOWN_PATH, a);
    let before = exchange(&mut tls, &req).await.unwrap();
    assert_eq!(before.body, served_body(POLICY_A).as_bytes());
    let enforce = POLICY_A.replace("testing", "enforce");
    run.sites
        .upsert_policy("a.test", served_body(&enforce))
        .unwrap();
    let after = exchange(&mut tls, &req).await.unwrap();
    assert_eq!(after.body, served_body(&enforce).as_bytes());
    assert_ne!(after.body, before.body);
    run.shutdown().await;
}

#[tokio::test]
async fn stsward_net_policy_fetcher_accepts_the_hosted_policy() {
    use stsward_net::cert::Roots;
    use stsward_net::dns::{Dns, DnsConfig};
    use stsward_net::policy_fetch::{FetchConfig, MAX_POLICY_BYTES, fetch_policy};

    let run = start(HostLimits::default()).await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dns_addr = udp.local_addr().unwrap();
    let tcp = tokio::net::TcpListener::bind(dns_addr).await.unwrap();
    let zone = Zone {
        origin: "a.test".into(),
        records: vec![LabRecord::A {
            name: "mta-sts.a.test".into(),
            addr: Ipv4Addr::LOCALHOST,
        }],
        dnssec: Dnssec::Off,
    };
    let opts = DnsServerOptions {
        now: OffsetDateTime::now_utc(),
        plain: true,
    };
    let dns_server = DnsServer::start(udp, tcp, &[zone], opts).expect("lab DNS");
    let dns = Dns::new(&DnsConfig {
        server: Some(dns_addr),
        timeout: Duration::from_secs(2),
        attempts: 1,
        lookup_timeout: Duration::from_secs(5),
        dnssec: false,
        trust_anchors: None,
    })
    .unwrap();
    let cfg = FetchConfig {
        https_port: run.https_v4().port(),
        roots: Roots::new(false, &[run.ca.ca_der().clone()]).unwrap(),
        timeout: CLIENT_TIMEOUT,
        max_body: MAX_POLICY_BYTES,
    };
    let fetched = fetch_policy(&dns, "a.test", &cfg, SystemTime::now())
        .await
        .expect("stsward-net accepts the hosted policy");
    assert_eq!(fetched.body, served_body(POLICY_A).as_bytes());
    let parsed: Policy = std::str::from_utf8(&fetched.body).unwrap().parse().unwrap();
    assert_eq!(parsed.to_string(), served_body(POLICY_A));
    assert_eq!(fetched.addr, run.https_v4());

    // Without the lab root the same fetch is refused: the trust decision is real.
    let untrusting = FetchConfig {
        roots: Roots::new(false, &[]).unwrap(),
        ..cfg
    };
    assert!(
        fetch_policy(&dns, "a.test", &untrusting, SystemTime::now())
            .await
            .is_err()
    );
    dns_server.shutdown().await;
    run.shutdown().await;
}

#[tokio::test]
async fn run_stops_on_the_shutdown_signal_and_closes_the_listeners() {
    let run = start(HostLimits::default()).await;
    let addr = run.https_v4();
    run.shutdown().await;
    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "the listener is closed after run returns");
}
