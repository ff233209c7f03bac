//! The certificate manager (`stsward_server::certs`) against a real ACME CA: Debian's Pebble,
//! resolving names through the lab DNS and validating challenges against the real policy host
//! on loopback, with the store on a SQLite file, in memory, or a throwaway PostgreSQL.
//!
//! Zone `certs.test` in the lab DNS:
//!
//! ```text
//! mta-sts.ok.certs.test        A 127.0.0.1   (this service)
//! mta-sts.two.certs.test       A 127.0.0.1
//! mta-sts.elsewhere.certs.test A 127.0.0.2   (another host: never ordered)
//! ```
//!
//! Pebble missing: the group `stsward-server/certs` is skipped and recorded (a failure in CI);
//! the pre-flight test needs no CA and always runs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use stsward_lab::dns::{DnsServer, DnsServerOptions, LabRecord, Zone};
use stsward_lab::scenario::Dnssec;
use stsward_net::dns::{Dns, DnsConfig};
use stsward_server::acme::preflight::ServiceTarget;
use stsward_server::acme::renewal::OrderRateLimit;
use stsward_server::acme::{AcmeConfig, ChallengeKind};
use stsward_server::certs::{
    CertActivity, CertManager, CertSettings, CertSetup, Clock, certificate_status,
};
use stsward_server::host::{Challenges, FetchCounter, HostLimits, HostServer, Sites, SniResolver};
use stsward_server::sealing::SealingKey;
use stsward_store::{NewDomain, NewVersion, Store};
use stsward_testkit::pebble::Pebble;
use stsward_testkit::postgres::Postgres;
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const GROUP: &str = "stsward-server/certs";
const SERVICE: Ipv4Addr = Ipv4Addr::LOCALHOST;
const KEY_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

// ---------------------------------------------------------------- the lab world

fn zone() -> Zone {
    let a = |name: &str, addr: [u8; 4]| LabRecord::A {
        name: name.to_owned(),
        addr: Ipv4Addr::from(addr),
    };
    Zone {
        origin: "certs.test".to_owned(),
        records: vec![
            a("mta-sts.ok.certs.test", SERVICE.octets()),
            a("mta-sts.two.certs.test", SERVICE.octets()),
            a("mta-sts.elsewhere.certs.test", [127, 0, 0, 2]),
        ],
        dnssec: Dnssec::Off,
    }
}

async fn start_dns() -> (DnsServer, SocketAddr) {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind UDP");
        let addr = udp.local_addr().expect("UDP address");
        let Ok(tcp) = TcpListener::bind(addr).await else {
            continue;
        };
        let opts = DnsServerOptions {
            now: OffsetDateTime::now_utc(),
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
        canonical_name: None,
    }
}

/// A clock the test moves.
#[derive(Clone)]
struct TestClock(Arc<Mutex<OffsetDateTime>>);

impl TestClock {
    fn new() -> TestClock {
        TestClock(Arc::new(Mutex::new(OffsetDateTime::now_utc())))
    }
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
    fn set(&self, t: OffsetDateTime) {
        *self.0.lock().unwrap() = t;
    }
    fn clock(&self) -> Clock {
        let inner = self.0.clone();
        Arc::new(move || *inner.lock().unwrap())
    }
}

struct World {
    _dns: DnsServer,
    dns: Dns,
    pebble: Option<Pebble>,
    /// What the policy host Pebble validates against serves.
    sites: Sites,
    challenges: Challenges,
    https: SocketAddr,
    clock: TestClock,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The lab DNS, the policy host, and Pebble when `with_ca` (then `None` when Pebble is not
/// installed).
async fn world(with_ca: bool) -> Option<World> {
    let (server, dns_addr) = start_dns().await;
    let any = SocketAddr::from((SERVICE, 0));
    let host = HostServer::bind(&[any], &[any], HostLimits::default()).expect("policy host");
    let https = host.https_addrs()[0];
    let http = host.http_addrs()[0];
    let sites = Sites::new();
    let challenges = Challenges::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (served_sites, served_challenges) = (sites.clone(), challenges.clone());
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        host.run(
            served_sites,
            served_challenges,
            FetchCounter::default(),
            shutdown,
        )
        .await
        .expect("policy host runs");
    });
    let pebble = if with_ca {
        let p = tokio::task::spawn_blocking(move || {
            Pebble::start(GROUP, dns_addr, http.port(), https.port())
        })
        .await
        .expect("Pebble start task")?;
        Some(p)
    } else {
        None
    };
    Some(World {
        _dns: server,
        dns: dns_client(dns_addr),
        pebble,
        sites,
        challenges,
        https,
        clock: TestClock::new(),
        _stop: stop,
    })
}

impl World {
    fn acme_config(&self) -> AcmeConfig {
        match &self.pebble {
            Some(p) => {
                let mut config = AcmeConfig::new(
                    p.directory_url(),
                    vec!["mailto:hostmaster@example.com".into()],
                );
                config.ca_roots = Some(vec![p.wfe_ca_der()]);
                config.order_timeout = Duration::from_secs(60);
                config.request_timeout = Duration::from_secs(10);
                config
            }
            // Never contacted: nothing is ordered in the tests without a CA.
            None => AcmeConfig::new("https://127.0.0.1:1/dir", Vec::new()),
        }
    }

    /// A manager on `store` installing into `sites`, answering challenges through the
    /// policy host Pebble validates against.
    fn manager(&self, store: &Store, sites: &Sites) -> CertManager {
        self.manager_with(store, sites, |_| {})
    }

    /// [`World::manager`] with changed settings.
    fn manager_with(
        &self,
        store: &Store,
        sites: &Sites,
        change: impl FnOnce(&mut CertSettings),
    ) -> CertManager {
        let acme = self.acme_config();
        let mut settings = CertSettings::for_acme(&acme);
        change(&mut settings);
        CertManager::new(
            CertSetup {
                store: store.clone(),
                acme,
                challenge: ChallengeKind::Http01,
                sealing: Arc::new(SealingKey::from_hex(KEY_HEX).expect("key")),
                sites: sites.clone(),
                challenges: self.challenges.clone(),
                dns: self.dns.clone(),
                target: target(),
                clock: self.clock.clock(),
            },
            settings,
        )
    }

    fn pebble_log(&self) -> String {
        self.pebble.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    /// A TLS handshake with the policy host for `name`, trusting only Pebble's root: the
    /// leaf presented, or the handshake error.
    async fn served_leaf(&self, name: &str) -> Result<CertificateDer<'static>, String> {
        let pebble = self.pebble.as_ref().expect("a CA");
        let root = CertificateDer::from_pem_slice(pebble.issuing_root_pem().as_bytes())
            .expect("Pebble root PEM");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root).expect("root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.https).await.expect("connect");
        let server_name = ServerName::try_from(name.to_owned()).expect("name");
        let tls =
            tokio::time::timeout(Duration::from_secs(10), connector.connect(server_name, tcp))
                .await
                .map_err(|_| "handshake timed out".to_owned())?
                .map_err(|e| e.to_string())?;
        let (_, conn) = tls.get_ref();
        conn.peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned())
            .ok_or_else(|| "no certificate".to_owned())
    }
}

/// Whether `sites` would present a certificate for `name` now.
fn presents(sites: &Sites, name: &str) -> bool {
    SniResolver::new(sites.clone(), Challenges::new())
        .choose(Some(name), std::iter::empty(), SystemTime::now())
        .is_some()
}

async fn add_domain(store: &Store, domain: &str) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let tenant = store.tenant_default(now).await.expect("tenant");
    let policy = "version: STSv1\r\nmode: testing\r\nmx: mx.example.net\r\nmax_age: 86400\r\n";
    store
        .hosted_domain_add(
            tenant.id,
            &NewDomain {
                domain: domain.to_owned(),
                follow_mx: false,
                tlsrpt_rua: None,
                created_at: now,
            },
            NewVersion {
                mode: "testing".to_owned(),
                mx: vec!["mx.example.net".to_owned()],
                max_age: 86400,
                policy: policy.to_owned(),
                sts_id: "20260101T000000".to_owned(),
                changed_by: "test".to_owned(),
                changed_at: now,
                note: None,
            },
        )
        .await
        .expect("domain added");
}

async fn sqlite_file(dir: &tempfile::TempDir) -> (Store, String) {
    let url = format!("sqlite://{}", dir.path().join("stsward.db").display());
    (Store::open(&url).await.expect("SQLite store"), url)
}

// ---------------------------------------------------------------- tests

/// (1) A hosted domain gets a certificate on `run_once`, stored sealed and served; (2) a
/// second manager on the same SQLite file loads it without ordering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosted_domain_gets_a_sealed_certificate_that_the_host_serves() {
    let Some(w) = world(true).await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, url) = sqlite_file(&dir).await;
    add_domain(&store, "ok.certs.test").await;
    let name = "mta-sts.ok.certs.test";

    let a = w.manager(&store, &w.sites);
    assert_eq!(a.load_all().await.expect("load"), 0);
    assert!(
        w.served_leaf(name).await.is_err(),
        "nothing served before the order"
    );
    let report = a
        .run_once(w.clock.now())
        .await
        .unwrap_or_else(|e| panic!("run: {e}\n{}", w.pebble_log()));
    assert_eq!(report.ordered, [name], "{report:?}\n{}", w.pebble_log());
    assert_eq!(a.orders_placed(), 1);

    // Stored sealed: the key column is not PEM and holds no PEM marker.
    let row = store
        .certificate_get(name)
        .await
        .expect("get")
        .expect("row");
    let key = row.key.as_ref().expect("sealed key stored");
    assert!(
        !key.ciphertext.windows(5).any(|w| w == b"-----"),
        "key is not PEM"
    );
    assert!(rustls::pki_types::PrivateKeyDer::from_pem_slice(&key.ciphertext).is_err());
    assert!(
        row.chain_pem
            .as_deref()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    );
    assert!(row.not_after > Some(w.clock.now().unix_timestamp()));
    assert_eq!(row.last_error, None);
    // The ACME account is stored sealed too.
    let directory = w.pebble.as_ref().expect("CA").directory_url();
    let account = store
        .acme_account_get(&directory)
        .await
        .expect("account")
        .expect("account stored");
    let credentials = &account.credentials.ciphertext;
    assert!(
        serde_json::from_slice::<serde_json::Value>(credentials).is_err()
            && !credentials.windows(5).any(|w| w == b"-----"),
        "credentials are sealed"
    );

    // Served and verifying against Pebble's root for the name.
    let leaf = w
        .served_leaf(name)
        .await
        .expect("the host serves a verifying certificate");
    let stored_leaf = CertificateDer::pem_slice_iter(row.chain_pem.as_deref().unwrap().as_bytes())
        .next()
        .expect("leaf")
        .expect("leaf PEM");
    assert_eq!(leaf, stored_leaf);
    let status = a.status("ok.certs.test").await.expect("status");
    assert_eq!(status.valid_until, row.not_after);
    assert_eq!(status.activity, CertActivity::Idle);

    // Nothing due: a second run orders nothing.
    let again = a.run_once(w.clock.now()).await.expect("run");
    assert!(again.ordered.is_empty(), "{again:?}");
    assert_eq!(a.orders_placed(), 1);

    // A second manager (replica) on the same file loads it without ordering.
    let other_store = Store::open(&url).await.expect("second connection");
    let other_sites = Sites::new();
    let b = w.manager(&other_store, &other_sites);
    assert_eq!(b.load_all().await.expect("load"), 1);
    assert!(presents(&other_sites, name));
    let report = b.run_once(w.clock.now()).await.expect("run");
    assert!(report.ordered.is_empty(), "{report:?}");
    assert_eq!(b.orders_placed(), 0);
}

/// (2) PostgreSQL: two managers running at once order the name once; a third loads it
/// without ordering; a replica that was running picks a new certificate up from the feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_order_each_name_once() {
    let Some(pg) = Postgres::start(GROUP) else {
        return;
    };
    let Some(w) = world(true).await else { return };
    let url = pg.create_database();
    let store_a = Store::open(&url).await.expect("store A");
    let store_b = Store::open(&url).await.expect("store B");
    add_domain(&store_a, "two.certs.test").await;
    let name = "mta-sts.two.certs.test";

    let sites_b = Sites::new();
    let a = w.manager(&store_a, &w.sites);
    let b = w.manager(&store_b, &sites_b);
    assert_ne!(a.holder(), b.holder());
    a.load_all().await.expect("load A");
    b.load_all().await.expect("load B");
    let now = w.clock.now();
    let (ra, rb) = tokio::join!(a.run_once(now), b.run_once(now));
    let (ra, rb) = (ra.expect("run A"), rb.expect("run B"));
    assert_eq!(
        a.orders_placed() + b.orders_placed(),
        1,
        "A: {ra:?}\nB: {rb:?}\n{}",
        w.pebble_log()
    );
    assert_eq!(
        ra.ordered.len() + rb.ordered.len(),
        1,
        "A: {ra:?}\nB: {rb:?}"
    );
    // The one that did not order serves it too, now or after its next look at the feed.
    let _ = a.run_once(now).await.expect("run A again");
    let _ = b.run_once(now).await.expect("run B again");
    assert!(presents(&w.sites, name) && presents(&sites_b, name));
    assert_eq!(a.orders_placed() + b.orders_placed(), 1);
    assert!(w.served_leaf(name).await.is_ok());

    // A third replica starting later loads it, no order.
    let sites_c = Sites::new();
    let c = w.manager(&Store::open(&url).await.expect("store C"), &sites_c);
    assert_eq!(c.load_all().await.expect("load C"), 1);
    assert!(presents(&sites_c, name));
    let rc = c.run_once(now).await.expect("run C");
    assert!(rc.ordered.is_empty(), "{rc:?}");
    assert_eq!(c.orders_placed(), 0);

    lease_behaviour(&store_a, &store_b, now.unix_timestamp()).await;
}

/// A held lease is refused to another holder until it expires; its holder extends it; only
/// the holder releases it.
async fn lease_behaviour(a: &Store, b: &Store, t: i64) {
    assert!(a.lease_acquire("test:x", "a", t, t + 10).await.unwrap());
    assert!(!b.lease_acquire("test:x", "b", t + 5, t + 15).await.unwrap());
    assert!(
        a.lease_acquire("test:x", "a", t + 5, t + 20).await.unwrap(),
        "extended"
    );
    assert!(
        !b.lease_acquire("test:x", "b", t + 15, t + 25)
            .await
            .unwrap(),
        "still held"
    );
    assert!(
        b.lease_acquire("test:x", "b", t + 20, t + 30)
            .await
            .unwrap(),
        "expired"
    );
    let lease = a.lease_get("test:x").await.unwrap().expect("lease row");
    assert_eq!((lease.holder.as_str(), lease.expires_at), ("b", t + 30));
    assert!(!a.lease_release("test:x", "a").await.unwrap());
    assert!(b.lease_release("test:x", "b").await.unwrap());
    assert!(a.lease_get("test:x").await.unwrap().is_none());
    assert!(
        a.lease_acquire("test:x", "a", t + 21, t + 31)
            .await
            .unwrap(),
        "released"
    );
}

/// The same lease rules on a SQLite file shared by two connections pools.
#[tokio::test]
async fn sqlite_leases_are_exclusive_until_they_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, url) = sqlite_file(&dir).await;
    let b = Store::open(&url).await.expect("second pool");
    lease_behaviour(&a, &b, 1_800_000_000).await;
}

/// (3) A domain whose `mta-sts.` points elsewhere: no order, `last_error` says where it
/// points, and the status says it waits for DNS. No CA is needed: none is contacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_pointing_elsewhere_is_not_ordered_and_the_reason_is_stored() {
    let Some(w) = world(false).await else { return };
    let store = Store::open("sqlite::memory:").await.expect("store");
    add_domain(&store, "elsewhere.certs.test").await;
    let name = "mta-sts.elsewhere.certs.test";
    let m = w.manager(&store, &w.sites);
    let report = m.run_once(w.clock.now()).await.expect("run");
    assert_eq!(report.waiting.len(), 1, "{report:?}");
    assert!(
        report.ordered.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    assert_eq!(m.orders_placed(), 0);
    let row = store
        .certificate_get(name)
        .await
        .expect("get")
        .expect("row");
    let error = row.last_error.expect("last_error stored");
    assert!(error.contains("127.0.0.2"), "{error}");
    assert!(row.chain_pem.is_none() && row.key.is_none());
    let status = certificate_status(&store, "elsewhere.certs.test", w.clock.now())
        .await
        .expect("status");
    assert!(
        matches!(&status.activity, CertActivity::WaitingForDns { reason } if reason.contains("127.0.0.2")),
        "{status:?}"
    );
    assert_eq!(status.valid_until, None);
    assert!(status.to_string().contains("waiting for DNS"), "{status}");
    assert!(!presents(&w.sites, name));

    // Backing off: the next run does not even look again.
    let report = m.run_once(w.clock.now()).await.expect("run");
    assert!(report.waiting.is_empty(), "{report:?}");
    // A new replica respects the failure another stored recently.
    let fresh = w.manager(&store, &Sites::new());
    let report = fresh.run_once(w.clock.now()).await.expect("run");
    assert!(report.waiting.is_empty(), "{report:?}");
    // After the back-off, it is checked again.
    w.clock.set(w.clock.now() + time::Duration::hours(7));
    let report = m.run_once(w.clock.now()).await.expect("run");
    assert_eq!(report.waiting.len(), 1, "{report:?}");
    assert_eq!(m.orders_placed(), 0);
}

/// (4) Renewal: with the clock past two thirds of the lifetime, a new certificate replaces
/// the old one, in the store and on the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_past_two_thirds_of_its_lifetime_is_replaced() {
    let Some(w) = world(true).await else { return };
    let store = Store::open("sqlite::memory:").await.expect("store");
    add_domain(&store, "ok.certs.test").await;
    let name = "mta-sts.ok.certs.test";
    let m = w.manager(&store, &w.sites);
    let first = m.run_once(w.clock.now()).await.expect("run");
    assert_eq!(first.ordered, [name], "{first:?}\n{}", w.pebble_log());
    let old = store.certificate_get(name).await.unwrap().expect("row");
    let old_leaf = w.served_leaf(name).await.expect("served");
    let (nb, na) = (old.not_before.unwrap(), old.not_after.unwrap());

    // Just before two thirds: nothing.
    let two_thirds = nb + (na - nb) * 2 / 3;
    w.clock
        .set(OffsetDateTime::from_unix_timestamp(two_thirds - 60).unwrap());
    let report = m.run_once(w.clock.now()).await.expect("run");
    assert!(report.ordered.is_empty(), "{report:?}");
    assert_eq!(m.orders_placed(), 1);

    // Just after: renewed.
    w.clock
        .set(OffsetDateTime::from_unix_timestamp(two_thirds + 60).unwrap());
    let report = m.run_once(w.clock.now()).await.expect("run");
    assert_eq!(report.ordered, [name], "{report:?}\n{}", w.pebble_log());
    assert_eq!(m.orders_placed(), 2);
    let new = store.certificate_get(name).await.unwrap().expect("row");
    assert_ne!(new.chain_pem, old.chain_pem);
    assert!(new.updated_at > old.updated_at);
    let new_leaf = w.served_leaf(name).await.expect("served");
    assert_ne!(new_leaf, old_leaf, "the host serves the new certificate");
}

/// (5) A stored key that does not unseal is never served, and is ordered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_sealed_key_is_not_served_and_is_reordered() {
    let Some(w) = world(true).await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = sqlite_file(&dir).await;
    add_domain(&store, "ok.certs.test").await;
    let name = "mta-sts.ok.certs.test";
    let first_sites = Sites::new();
    let m = w.manager(&store, &first_sites);
    let first = m.run_once(w.clock.now()).await.expect("run");
    assert_eq!(first.ordered, [name], "{first:?}\n{}", w.pebble_log());

    let directory = w.pebble.as_ref().expect("CA").directory_url();
    let account = store.acme_account_get(&directory).await.unwrap();
    assert!(account.is_some());
    let mut row = store.certificate_get(name).await.unwrap().expect("row");
    let key = row.key.as_mut().expect("key");
    key.ciphertext[0] ^= 0x55;
    row.updated_at += 1;
    store.certificate_put(&row).await.expect("corrupt the row");

    // A restart: the row does not load and nothing is presented.
    let restarted = w.manager(&store, &w.sites);
    assert_eq!(restarted.load_all().await.expect("load"), 0);
    assert!(!presents(&w.sites, name));
    assert!(w.served_leaf(name).await.is_err());
    // The next run orders a new one and serves it.
    w.clock.set(w.clock.now() + time::Duration::seconds(5));
    let report = restarted.run_once(w.clock.now()).await.expect("run");
    assert_eq!(report.ordered, [name], "{report:?}\n{}", w.pebble_log());
    assert_eq!(restarted.orders_placed(), 1);
    w.served_leaf(name)
        .await
        .expect("served after the new order");
    let fixed = store.certificate_get(name).await.unwrap().expect("row");
    assert_ne!(fixed.key, row.key);
    // No second account replaced the stored one.
    assert_eq!(store.acme_account_get(&directory).await.unwrap(), account);
}

/// The order budget: with one order an hour, two names due get one order now and one
/// deferred (no lease, no CA request); an hour later the second is ordered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_budget_defers_names_to_a_later_run() {
    let Some(w) = world(true).await else { return };
    let store = Store::open("sqlite::memory:").await.expect("store");
    add_domain(&store, "ok.certs.test").await;
    add_domain(&store, "two.certs.test").await;
    let m = w.manager_with(&store, &w.sites, |s| {
        s.rate = OrderRateLimit { per_hour: 1 };
        s.concurrency = 1;
    });
    let report = m.run_once(w.clock.now()).await.expect("run");
    assert_eq!(report.ordered.len(), 1, "{report:?}\n{}", w.pebble_log());
    assert_eq!(report.deferred.len(), 1, "{report:?}");
    assert_eq!(m.orders_placed(), 1);
    let deferred = report.deferred[0].clone();
    assert!(!presents(&w.sites, &deferred));

    w.clock.set(w.clock.now() + time::Duration::minutes(30));
    let report = m.run_once(w.clock.now()).await.expect("run");
    assert_eq!(
        report.deferred,
        std::slice::from_ref(&deferred),
        "{report:?}"
    );
    assert_eq!(m.orders_placed(), 1);

    w.clock.set(w.clock.now() + time::Duration::minutes(31));
    let report = m.run_once(w.clock.now()).await.expect("run");
    assert_eq!(
        report.ordered,
        std::slice::from_ref(&deferred),
        "{report:?}"
    );
    assert!(presents(&w.sites, &deferred));
}

/// `run` works through the domains until told to stop, and stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_checks_domains_until_shutdown() {
    let Some(w) = world(false).await else { return };
    let store = Store::open("sqlite::memory:").await.expect("store");
    add_domain(&store, "elsewhere.certs.test").await;
    let m = w.manager_with(&store, &w.sites, |s| s.interval = Duration::from_millis(50));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let m = m.clone();
        async move {
            m.run(async {
                let _ = stopped.await;
            })
            .await
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row = store
            .certificate_get("mta-sts.elsewhere.certs.test")
            .await
            .expect("get");
        if row.is_some_and(|r| r.last_error.is_some()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run never checked the domain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).expect("still running");
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("run stops on shutdown")
        .expect("run task");
    assert_eq!(m.orders_placed(), 0);
}
