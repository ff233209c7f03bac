//! RFC 8555 orders against a real ACME CA: Debian's Pebble, resolving names through the lab's
//! authoritative DNS, validating challenges against a responder on loopback.
//!
//! The challenges are answered by the real policy host (`stsward_server::host`): its HTTP
//! listener (RFC 8555 §8.3) and its TLS listener with the SNI resolver (RFC 8737 `acme-tls/1`),
//! on Pebble's validation ports, serving its `Challenges` table. The responder handed to the
//! order wraps that table: it records every set and remove (so the tests can check that every
//! challenge is removed afterwards) and, on request, registers wrong answers.
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

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use stsward_lab::dns::{DnsServer, DnsServerOptions, LabRecord, Zone};
use stsward_lab::scenario::Dnssec;
use stsward_net::dns::{Dns, DnsConfig};
use stsward_server::acme::preflight::{self, ServiceTarget};
use stsward_server::acme::tls_alpn;
use stsward_server::acme::{
    AccountOrigin, Acme, AcmeConfig, AcmeError, ChallengeKind, ChallengeResponder, CheckedName,
    Issued, PreflightError, ResponderError, StoredAccount,
};
use stsward_server::host::{Challenges, FetchCounter, HostLimits, HostServer, Sites};
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

/// The status code of `GET path` on the policy host's plain-HTTP listener.
async fn http_status(addr: SocketAddr, path: &str) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: mta-sts.ok.acme.test\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut response))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1).unwrap_or("").to_owned()
}

fn target() -> ServiceTarget {
    ServiceTarget {
        addresses: vec![IpAddr::V4(SERVICE)],
        canonical_name: Some("policy.acme.test".to_owned()),
    }
}

// ---------------------------------------------------------------- the responder

/// How the responder misbehaves.
#[derive(Default)]
struct Behaviour {
    /// HTTP-01 registers a key authorization with another thumbprint.
    wrong_http: AtomicBool,
    /// TLS-ALPN-01 registers a certificate whose acmeIdentifier holds a wrong digest.
    wrong_alpn: AtomicBool,
    /// Every set is refused, as a full challenge table would.
    refuse: AtomicBool,
}

#[derive(Default)]
struct Recorder {
    /// Every call, in order: `set-http <token>`, `remove-http <token>`, `set-alpn <name>`, ...
    log: Mutex<Vec<String>>,
    behaviour: Behaviour,
}

/// The policy host's own challenge table, served by the real listeners, with a record of
/// every call and, on request, wrong answers.
#[derive(Clone)]
struct TestResponder {
    host: Challenges,
    recorder: Arc<Recorder>,
}

impl TestResponder {
    fn note(&self, entry: String) {
        self.recorder.log.lock().unwrap().push(entry);
    }
}

impl ChallengeResponder for TestResponder {
    fn set_http01(&self, token: &str, key_authorization: &str) -> Result<(), ResponderError> {
        self.note(format!("set-http {token}"));
        if self.recorder.behaviour.refuse.load(Ordering::SeqCst) {
            return Err("refused by the test".into());
        }
        let answer = if self.recorder.behaviour.wrong_http.load(Ordering::SeqCst) {
            format!("{token}.bm90LXRoZS1hY2NvdW50LWtleQ")
        } else {
            key_authorization.to_owned()
        };
        ChallengeResponder::set_http01(&self.host, token, &answer)
    }
    fn remove_http01(&self, token: &str) {
        self.note(format!("remove-http {token}"));
        ChallengeResponder::remove_http01(&self.host, token);
    }
    fn set_tls_alpn01(&self, name: &str, cert: CertifiedKey) -> Result<(), ResponderError> {
        self.note(format!("set-alpn {name}"));
        if self.recorder.behaviour.refuse.load(Ordering::SeqCst) {
            return Err("refused by the test".into());
        }
        let cert = if self.recorder.behaviour.wrong_alpn.load(Ordering::SeqCst) {
            tls_alpn::challenge_certificate(name, &[0u8; 32])?
        } else {
            cert
        };
        ChallengeResponder::set_tls_alpn01(&self.host, name, cert)
    }
    fn remove_tls_alpn01(&self, name: &str) {
        self.note(format!("remove-alpn {name}"));
        ChallengeResponder::remove_tls_alpn01(&self.host, name);
    }
}

impl TestResponder {
    fn log(&self) -> Vec<String> {
        self.recorder.log.lock().unwrap().clone()
    }

    fn sets(&self, kind: &str) -> usize {
        self.log()
            .iter()
            .filter(|e| e.starts_with(&format!("set-{kind} ")))
            .count()
    }
}

// ---------------------------------------------------------------- one lab per test

struct World {
    _dns: DnsServer,
    dns: Dns,
    pebble: Pebble,
    responder: TestResponder,
    /// The policy host's plain-HTTP listener.
    http: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The lab DNS, the policy host and Pebble; `None` when Pebble is not installed.
async fn world() -> Option<World> {
    let (server, dns_addr) = start_dns().await;
    let any = SocketAddr::from((SERVICE, 0));
    let host = HostServer::bind(&[any], &[any], HostLimits::default()).expect("policy host");
    let tls_port = host.https_addrs()[0].port();
    let http = host.http_addrs()[0];
    let challenges = Challenges::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = challenges.clone();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        host.run(Sites::new(), served, FetchCounter::default(), shutdown)
            .await
            .expect("policy host runs");
    });
    let pebble =
        tokio::task::spawn_blocking(move || Pebble::start(GROUP, dns_addr, http.port(), tls_port))
            .await
            .expect("Pebble start task")?;
    Some(World {
        _dns: server,
        dns: dns_client(dns_addr),
        pebble,
        responder: TestResponder {
            host: challenges,
            recorder: Arc::default(),
        },
        http,
        _stop: stop,
    })
}

impl World {
    /// Every set was followed by its remove, and the policy host no longer answers any
    /// HTTP-01 token that was set.
    async fn assert_all_removed(&self) {
        let log = self.responder.log();
        for entry in log.iter().filter(|e| e.starts_with("set-")) {
            let removal = entry.replacen("set-", "remove-", 1);
            assert!(log.contains(&removal), "{entry} never removed: {log:?}");
        }
        for token in log.iter().filter_map(|e| e.strip_prefix("set-http ")) {
            let status =
                http_status(self.http, &format!("/.well-known/acme-challenge/{token}")).await;
            assert_eq!(status, "404", "token {token} still answered");
        }
    }

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
    w.assert_all_removed().await;

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
    w.assert_all_removed().await;
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
    w.assert_all_removed().await;

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
        .recorder
        .behaviour
        .wrong_http
        .store(true, Ordering::SeqCst);
    w.responder
        .recorder
        .behaviour
        .wrong_alpn
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
    w.assert_all_removed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_type_is_used_when_the_preferred_fails() {
    let Some(w) = world().await else { return };
    // HTTP-01 answers wrongly; TLS-ALPN-01 works.
    w.responder
        .recorder
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
    w.assert_all_removed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_that_refuses_the_answer_stops_the_order_at_the_challenge_step() {
    let Some(w) = world().await else { return };
    w.responder
        .recorder
        .behaviour
        .refuse
        .store(true, Ordering::SeqCst);
    let (acme, _) = w.acme().await;
    let checked = w.checked("ok.acme.test").await;
    let err = acme
        .order(&checked, ChallengeKind::TlsAlpn01, &w.responder)
        .await
        .expect_err("nothing can be answered");
    let AcmeError::BothFailed {
        preferred,
        fallback,
    } = &err
    else {
        panic!("both types were tried: {err:?}")
    };
    assert!(
        matches!(
            preferred.as_ref(),
            AcmeError::Responder {
                kind: ChallengeKind::TlsAlpn01,
                ..
            }
        ),
        "{preferred:?}"
    );
    assert!(
        matches!(
            fallback.as_ref(),
            AcmeError::Responder {
                kind: ChallengeKind::Http01,
                ..
            }
        ),
        "{fallback:?}"
    );
    assert_eq!(err.step(), Some(stsward_server::acme::Step::Challenge));
    assert!(err.to_string().contains("refused by the test"), "{err}");
    w.assert_all_removed().await;
}
