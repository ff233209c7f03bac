//! RFC 8555 orders against a real ACME CA: Debian's Pebble, resolving names through the lab's
//! authoritative DNS, validating challenges against a responder on loopback.
//!
//! `stsward_server::host` (the policy host, which will implement `ChallengeResponder`) is not
//! written yet, so the responder here is a minimal one of the test's own: an HTTP listener
//! for RFC 8555 §8.3 and a TLS listener that answers RFC 8737 `acme-tls/1` handshakes with
//! the challenge certificate for the SNI name. It records every set and remove, so the tests
//! can check that every challenge is removed afterwards.
//!
//! Zone `acme.test` in the lab DNS:
//!
//! ```text
//! mta-sts.ok.acme.test        A     127.0.0.1       (this service)
//! mta-sts.cname.acme.test     CNAME policy.acme.test
//! policy.acme.test            A     127.0.0.1       (the canonical name)
//! mta-sts.elsewhere.acme.test A     127.0.0.2       (another host)
//! mta-sts.old.acme.test       CNAME old-provider.acme.test
//! old-provider.acme.test      A     127.0.0.3
//! ```
//!
//! Pebble missing: the group `stsward-server/acme` is skipped and recorded (a failure in CI).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use stsward_lab::dns::{DnsServer, DnsServerOptions, LabRecord, Zone};
use stsward_lab::scenario::Dnssec;
use stsward_net::dns::{Dns, DnsConfig};
use stsward_server::acme::preflight::{self, ServiceTarget};
use stsward_server::acme::tls_alpn::ACME_TLS_ALPN_PROTOCOL;
use stsward_server::acme::{
    AccountOrigin, Acme, AcmeConfig, AcmeError, ChallengeKind, ChallengeResponder, CheckedName,
    Issued, PreflightError, StoredAccount,
};
use stsward_testkit::pebble::Pebble;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

const GROUP: &str = "stsward-server/acme";
const SERVICE: Ipv4Addr = Ipv4Addr::LOCALHOST;

// ---------------------------------------------------------------- the lab world

fn zone() -> Zone {
    let a = |name: &str, addr: [u8; 4]| LabRecord::A {
        name: name.to_owned(),
        addr: Ipv4Addr::from(addr),
    };
    let cname = |name: &str, target: &str| LabRecord::Cname {
        name: name.to_owned(),
        target: target.to_owned(),
    };
    Zone {
        origin: "acme.test".to_owned(),
        records: vec![
            a("mta-sts.ok.acme.test", SERVICE.octets()),
            cname("mta-sts.cname.acme.test", "policy.acme.test"),
            a("policy.acme.test", SERVICE.octets()),
            a("mta-sts.elsewhere.acme.test", [127, 0, 0, 2]),
            cname("mta-sts.old.acme.test", "old-provider.acme.test"),
            a("old-provider.acme.test", [127, 0, 0, 3]),
        ],
        dnssec: Dnssec::Off,
    }
}

/// The lab DNS on one loopback port, UDP and TCP.
async fn start_dns() -> (DnsServer, SocketAddr) {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind UDP");
        let addr = udp.local_addr().expect("UDP address");
        let Ok(tcp) = TcpListener::bind(addr).await else {
            continue; // the TCP port is taken: another pair
        };
        let opts = DnsServerOptions {
            now: time::OffsetDateTime::now_utc(),
            plain: true,
        };
        let server = DnsServer::start(udp, tcp, &[zone()], opts).expect("lab DNS starts");
        return (server, addr);
    }
    panic!("no loopback port free for both UDP and TCP");
}

fn dns_client(addr: SocketAddr) -> Dns {
    Dns::new(&DnsConfig {
        server: Some(addr),
        dnssec: false,
        ..DnsConfig::default()
    })
    .expect("DNS client")
}

fn target() -> ServiceTarget {
    ServiceTarget {
        addresses: vec![IpAddr::V4(SERVICE)],
        canonical_name: Some("policy.acme.test".to_owned()),
    }
}

// ---------------------------------------------------------------- the responder

/// What the responder answers.
#[derive(Default)]
struct Behaviour {
    /// HTTP-01 answers a wrong key authorization.
    wrong_http: AtomicBool,
    /// TLS-ALPN-01 handshakes are refused (no certificate).
    refuse_alpn: AtomicBool,
}

#[derive(Default)]
struct State {
    http: Mutex<HashMap<String, String>>,
    alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// Every call, in order: `set-http <token>`, `remove-http <token>`, `set-alpn <name>`, ...
    log: Mutex<Vec<String>>,
    behaviour: Behaviour,
}

#[derive(Clone, Default)]
struct TestResponder(Arc<State>);

impl ChallengeResponder for TestResponder {
    fn set_http01(&self, token: &str, key_authorization: &str) {
        self.0.log.lock().unwrap().push(format!("set-http {token}"));
        self.0
            .http
            .lock()
            .unwrap()
            .insert(token.to_owned(), key_authorization.to_owned());
    }
    fn remove_http01(&self, token: &str) {
        self.0
            .log
            .lock()
            .unwrap()
            .push(format!("remove-http {token}"));
        self.0.http.lock().unwrap().remove(token);
    }
    fn set_tls_alpn01(&self, name: &str, cert: CertifiedKey) {
        self.0.log.lock().unwrap().push(format!("set-alpn {name}"));
        self.0
            .alpn
            .lock()
            .unwrap()
            .insert(name.to_owned(), Arc::new(cert));
    }
    fn remove_tls_alpn01(&self, name: &str) {
        self.0
            .log
            .lock()
            .unwrap()
            .push(format!("remove-alpn {name}"));
        self.0.alpn.lock().unwrap().remove(name);
    }
}

impl TestResponder {
    fn log(&self) -> Vec<String> {
        self.0.log.lock().unwrap().clone()
    }

    /// Nothing is served any more, and every set was followed by its remove.
    fn assert_all_removed(&self) {
        assert!(self.0.http.lock().unwrap().is_empty(), "HTTP-01 left set");
        assert!(
            self.0.alpn.lock().unwrap().is_empty(),
            "TLS-ALPN-01 left set"
        );
        let log = self.log();
        for entry in log.iter().filter(|e| e.starts_with("set-")) {
            let removal = entry.replacen("set-", "remove-", 1);
            assert!(log.contains(&removal), "{entry} never removed: {log:?}");
        }
    }

    fn sets(&self, kind: &str) -> usize {
        self.log()
            .iter()
            .filter(|e| e.starts_with(&format!("set-{kind} ")))
            .count()
    }
}

struct AlpnResolver(Arc<State>);

impl std::fmt::Debug for AlpnResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlpnResolver")
    }
}

impl ResolvesServerCert for AlpnResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let state = &self.0;
        if state.behaviour.refuse_alpn.load(Ordering::SeqCst) {
            return None;
        }
        let offers_acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN_PROTOCOL));
        if !offers_acme {
            return None;
        }
        let name = hello.server_name()?.to_ascii_lowercase();
        state.alpn.lock().unwrap().get(&name).cloned()
    }
}

/// Listens on `http` (HTTP-01) and `tls` (TLS-ALPN-01); the tasks end with the runtime.
async fn serve(responder: &TestResponder, http: TcpListener, tls: TcpListener) {
    let state = responder.0.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = http.accept().await {
            let state = state.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                let read = tokio::time::timeout(Duration::from_secs(10), async {
                    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
                        match conn.read(&mut buf[len..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => len += n,
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let head = String::from_utf8_lossy(&buf[..len]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let token = path.strip_prefix("/.well-known/acme-challenge/");
                let answer = token.and_then(|t| state.http.lock().unwrap().get(t).cloned());
                let response = match answer {
                    Some(ka) => {
                        let body = if state.behaviour.wrong_http.load(Ordering::SeqCst) {
                            format!("{ka}-not-it")
                        } else {
                            ka
                        };
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    None => {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_owned()
                    }
                };
                let _ = conn.write_all(response.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(AlpnResolver(responder.0.clone())));
    config.alpn_protocols = vec![ACME_TLS_ALPN_PROTOCOL.to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((conn, _)) = tls.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let done =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(conn)).await;
                if let Ok(Ok(mut stream)) = done {
                    let _ = stream.shutdown().await;
                }
            });
        }
    });
}

// ---------------------------------------------------------------- one lab per test

struct World {
    _dns: DnsServer,
    dns: Dns,
    pebble: Pebble,
    responder: TestResponder,
}

/// The lab DNS, the responder's listeners and Pebble; `None` when Pebble is not installed.
async fn world() -> Option<World> {
    let (server, dns_addr) = start_dns().await;
    let http = TcpListener::bind((SERVICE, 0)).await.expect("bind HTTP");
    let tls = TcpListener::bind((SERVICE, 0)).await.expect("bind TLS");
    let http_port = http.local_addr().expect("HTTP port").port();
    let tls_port = tls.local_addr().expect("TLS port").port();
    let responder = TestResponder::default();
    serve(&responder, http, tls).await;
    let pebble =
        tokio::task::spawn_blocking(move || Pebble::start(GROUP, dns_addr, http_port, tls_port))
            .await
            .expect("Pebble start task")?;
    Some(World {
        _dns: server,
        dns: dns_client(dns_addr),
        pebble,
        responder,
    })
}

impl World {
    fn config(&self) -> AcmeConfig {
        let mut config = AcmeConfig::new(
            self.pebble.directory_url(),
            vec!["mailto:hostmaster@example.com".to_owned()],
        );
        config.ca_roots = Some(vec![self.pebble.wfe_ca_der()]);
        config.order_timeout = Duration::from_secs(60);
        config.request_timeout = Duration::from_secs(10);
        config
    }

    async fn acme(&self) -> (Acme, AccountOrigin) {
        Acme::new(self.config(), None)
            .await
            .unwrap_or_else(|e| panic!("account: {e}\npebble log:\n{}", self.pebble.log()))
    }

    async fn checked(&self, domain: &str) -> CheckedName {
        preflight::check(&self.dns, domain, &target())
            .await
            .unwrap_or_else(|e| panic!("pre-flight for {domain}: {e}"))
    }

    /// The chain verifies against Pebble's issuing root for `name`, and the key is the
    /// leaf's.
    fn assert_issued_for(&self, issued: &Issued, name: &str) {
        assert_eq!(issued.name, name);
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(issued.chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("chain PEM");
        assert!(chain.len() >= 2, "leaf and intermediate: {}", chain.len());
        let root = CertificateDer::from_pem_slice(self.pebble.issuing_root_pem().as_bytes())
            .expect("Pebble root PEM");
        let anchor = webpki::anchor_from_trusted_cert(&root).expect("root as anchor");
        let leaf = webpki::EndEntityCert::try_from(&chain[0]).expect("leaf parses");
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &chain[1..],
            UnixTime::now(),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .unwrap_or_else(|e| panic!("{name}: chain does not verify against Pebble's root: {e}"));
        let server_name = ServerName::try_from(name.to_owned()).expect("server name");
        leaf.verify_is_valid_for_subject_name(&server_name)
            .unwrap_or_else(|e| panic!("{name}: leaf not valid for the name: {e}"));
        let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("key PEM");
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        CertifiedKey::from_der(chain, key, &provider).expect("the key is the leaf's");
        assert!(issued.not_before < issued.not_after);
        let now = time::OffsetDateTime::now_utc();
        assert!(issued.not_before <= now && now < issued.not_after);
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8555_8_3_http01_order_gives_a_chain_that_verifies_against_pebbles_root() {
    let Some(w) = world().await else { return };
    let (acme, origin) = w.acme().await;
    assert!(matches!(origin, AccountOrigin::Created(_)));
    let checked = w.checked("ok.acme.test").await;
    assert_eq!(checked.name(), "mta-sts.ok.acme.test");
    let issued = acme
        .order(&checked, ChallengeKind::Http01, &w.responder)
        .await
        .unwrap_or_else(|e| panic!("order: {e}\npebble log:\n{}", w.pebble.log()));
    w.assert_issued_for(&issued, "mta-sts.ok.acme.test");
    assert_eq!(issued.validated_by, Some(ChallengeKind::Http01));
    assert_eq!(w.responder.sets("http"), 1, "{:?}", w.responder.log());
    assert_eq!(w.responder.sets("alpn"), 0, "{:?}", w.responder.log());
    w.responder.assert_all_removed();

    // RFC 9773: Debian's Pebble 2.4 offers no renewal information, so the two-thirds rule
    // applies; a CA that does must give a window that makes sense.
    match acme.renewal_window(&issued.chain_pem).await {
        Ok(None) => {}
        Ok(Some((window, _))) => assert!(window.start < window.end),
        Err(e) => panic!("renewal info: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8737_3_tls_alpn01_order_gives_a_chain_that_verifies_against_pebbles_root() {
    let Some(w) = world().await else { return };
    let (acme, _) = w.acme().await;
    // Through the canonical-name CNAME this time.
    let checked = w.checked("cname.acme.test").await;
    assert_eq!(checked.cname_chain(), ["policy.acme.test"]);
    let issued = acme
        .order(&checked, ChallengeKind::TlsAlpn01, &w.responder)
        .await
        .unwrap_or_else(|e| panic!("order: {e}\npebble log:\n{}", w.pebble.log()));
    w.assert_issued_for(&issued, "mta-sts.cname.acme.test");
    assert_eq!(issued.validated_by, Some(ChallengeKind::TlsAlpn01));
    assert_eq!(w.responder.sets("alpn"), 1, "{:?}", w.responder.log());
    assert_eq!(w.responder.sets("http"), 0, "{:?}", w.responder.log());
    w.responder.assert_all_removed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8555_7_3_a_stored_account_is_reused() {
    let Some(w) = world().await else { return };
    let (first, origin) = w.acme().await;
    let AccountOrigin::Created(stored) = origin else {
        panic!("no account was stored, so one is created")
    };
    assert_eq!(
        stored.directory_url().as_deref(),
        Some(w.pebble.directory_url().as_str())
    );
    assert!(
        !format!("{stored:?}").contains(stored.as_json()),
        "Debug must not print the key"
    );
    // What the caller stores and reads back.
    let stored = StoredAccount::from_json(stored.as_json().to_owned()).expect("round trip");
    let (again, origin) = Acme::new(w.config(), Some(&stored))
        .await
        .expect("load the stored account");
    assert_eq!(origin, AccountOrigin::Loaded);
    assert_eq!(again.account_id(), first.account_id());
    let checked = w.checked("ok.acme.test").await;
    let issued = again
        .order(&checked, ChallengeKind::Http01, &w.responder)
        .await
        .unwrap_or_else(|e| panic!("order with the loaded account: {e}"));
    w.assert_issued_for(&issued, "mta-sts.ok.acme.test");
    w.responder.assert_all_removed();

    // An account stored for another directory is not used there: a new one is made.
    let mut elsewhere: serde_json::Value =
        serde_json::from_str(stored.as_json()).expect("credentials are JSON");
    elsewhere["directory"] = "https://127.0.0.1:1/dir".into();
    let elsewhere = StoredAccount::from_json(elsewhere.to_string()).expect("still credentials");
    let (third, origin) = Acme::new(w.config(), Some(&elsewhere))
        .await
        .expect("new account");
    assert!(matches!(origin, AccountOrigin::Created(_)));
    assert_ne!(third.account_id(), first.account_id());

    assert!(matches!(
        StoredAccount::from_json("{\"id\": 3}"),
        Err(AcmeError::Credentials { .. })
    ));
}

/// No Pebble: a refused pre-flight never reaches a CA, so none is started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_a_name_that_resolves_elsewhere() {
    let (_server, addr) = start_dns().await;
    let dns = dns_client(addr);
    let cases: &[(&str, &str, &str)] = &[
        (
            "elsewhere.acme.test",
            "127.0.0.2",
            "an A record to another host",
        ),
        (
            "old.acme.test",
            "CNAME old-provider.acme.test -> 127.0.0.3",
            "a CNAME to another provider",
        ),
        ("missing.acme.test", "NXDOMAIN", "no record published"),
    ];
    for (domain, shown, why) in cases {
        let err = preflight::check(&dns, domain, &target())
            .await
            .expect_err(why);
        assert!(
            matches!(err, PreflightError::Elsewhere { .. }),
            "{why}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(&format!("mta-sts.{domain}")), "{why}: {text}");
        assert!(text.contains(shown), "{why}: {text}");
        assert!(
            text.contains("CNAME policy.acme.test or 127.0.0.1"),
            "{why}: {text}"
        );
    }
    for good in ["ok.acme.test", "cname.acme.test", "OK.acme.test."] {
        preflight::check(&dns, good, &target())
            .await
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_that_fails_validation_names_the_authorization() {
    let Some(w) = world().await else { return };
    w.responder
        .0
        .behaviour
        .wrong_http
        .store(true, Ordering::SeqCst);
    w.responder
        .0
        .behaviour
        .refuse_alpn
        .store(true, Ordering::SeqCst);
    let (acme, _) = w.acme().await;
    let checked = w.checked("ok.acme.test").await;
    let err = acme
        .order(&checked, ChallengeKind::Http01, &w.responder)
        .await
        .expect_err("both challenge types fail");
    let text = err.to_string();
    let AcmeError::BothFailed {
        preferred,
        fallback,
    } = &err
    else {
        panic!("both types were tried: {err:?}")
    };
    for (e, kind) in [
        (preferred.as_ref(), ChallengeKind::Http01),
        (fallback.as_ref(), ChallengeKind::TlsAlpn01),
    ] {
        let AcmeError::Authorization {
            name,
            url,
            kind: got,
            status,
            problem,
        } = e
        else {
            panic!("{kind}: an authorization failure: {e:?}")
        };
        assert_eq!(name, "mta-sts.ok.acme.test");
        assert_eq!(*got, kind);
        assert_eq!(status, "invalid");
        assert!(url.starts_with("https://"), "{url}");
        assert!(
            text.contains(url.as_str()),
            "the message names the authorization: {text}"
        );
        let problem = problem.as_ref().expect("the CA says why");
        assert!(
            problem.detail.as_deref().is_some_and(|d| !d.is_empty()),
            "{problem:?}"
        );
        assert!(
            text.contains(problem.detail.as_deref().unwrap_or("")),
            "{text}"
        );
    }
    assert!(text.contains("ACME authorization"), "{text}");
    w.responder.assert_all_removed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_type_is_used_when_the_preferred_fails() {
    let Some(w) = world().await else { return };
    // HTTP-01 answers wrongly; TLS-ALPN-01 works.
    w.responder
        .0
        .behaviour
        .wrong_http
        .store(true, Ordering::SeqCst);
    let (acme, _) = w.acme().await;
    let checked = w.checked("ok.acme.test").await;
    let issued = acme
        .order(&checked, ChallengeKind::Http01, &w.responder)
        .await
        .unwrap_or_else(|e| panic!("fallback order: {e}\npebble log:\n{}", w.pebble.log()));
    w.assert_issued_for(&issued, "mta-sts.ok.acme.test");
    assert_eq!(issued.validated_by, Some(ChallengeKind::TlsAlpn01));
    assert_eq!(w.responder.sets("http"), 1, "{:?}", w.responder.log());
    assert_eq!(w.responder.sets("alpn"), 1, "{:?}", w.responder.log());
    w.responder.assert_all_removed();
}
