//! `stsward serve` end to end with a real ACME CA (issue 7, "End-to-end against a real ACME
//! server"): a domain is hosted, its `mta-sts.` name resolves (in the lab DNS) to this
//! service, and the running service obtains the certificate from Debian's Pebble on its own
//! listeners (HTTP-01 on the HTTP one, TLS-ALPN-01 on the HTTPS one), then serves the policy
//! over HTTPS with Pebble's chain.
//!
//! Pebble missing: the group `stsward-server/serve-acme` is skipped and recorded (a failure
//! in CI).

mod serve_support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serve_support::{Fetched, fetch, within};
use stsward_lab::dns::{DnsServer, DnsServerOptions, LabRecord, Zone};
use stsward_lab::scenario::Dnssec;
use stsward_net::dns::{Dns, DnsConfig};
use stsward_server::config::ServeConfig;
use stsward_server::domains::{AddDomain, DomainService, MxInput};
use stsward_server::serve::{Clock, Runtime, ServeOptions};
use stsward_store::Store;
use stsward_testkit::pebble::Pebble;
use time::OffsetDateTime;
use tokio::net::{TcpListener, UdpSocket};

const GROUP: &str = "stsward-server/serve-acme";
const DOMAIN: &str = "e2e.acme.test";
const KEY_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// The lab DNS: `mta-sts.e2e.acme.test` is this service (127.0.0.1), as a customer's record
/// would make it.
async fn start_dns() -> (DnsServer, SocketAddr) {
    let zone = Zone {
        origin: "acme.test".to_owned(),
        records: vec![LabRecord::A {
            name: format!("mta-sts.{DOMAIN}"),
            addr: Ipv4Addr::LOCALHOST,
        }],
        dnssec: Dnssec::Off,
    };
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
        let server = DnsServer::start(udp, tcp, &[zone], opts).expect("lab DNS starts");
        return (server, addr);
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// A free loopback TCP port (bound and released: Pebble must be told the ports before the
/// service binds them).
async fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    l.local_addr().expect("address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_obtains_its_certificate_from_pebble_over_http_01_and_serves_the_policy() {
    end_to_end("http-01").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_obtains_its_certificate_from_pebble_over_tls_alpn_01_and_serves_the_policy() {
    end_to_end("tls-alpn-01").await;
}

/// Hosts the domain, starts the service with `challenge` preferred, and waits for the policy
/// over HTTPS with a certificate from Pebble.
async fn end_to_end(challenge: &str) {
    let (_dns_server, dns_addr) = start_dns().await;
    let (http_port, https_port) = (free_port().await, free_port().await);
    let Some(pebble) =
        tokio::task::spawn_blocking(move || Pebble::start(GROUP, dns_addr, http_port, https_port))
            .await
            .expect("Pebble start task")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("pebble-wfe.pem");
    std::fs::write(&ca_file, pebble.wfe_ca_pem()).expect("write CA");
    let secret_file = dir.path().join("secret.key");
    std::fs::write(&secret_file, KEY_HEX).expect("write secret");
    let url = format!("sqlite://{}", dir.path().join("stsward.db").display());
    let text = format!(
        r#"
[listen]
https = ["127.0.0.1:{https_port}"]
http = ["127.0.0.1:{http_port}"]
dns = ["127.0.0.1:0"]
[hosting]
zone = "sts.provider.test"
policy_host = "mta-sts.sts.provider.test"
policy_host_addrs = ["127.0.0.1"]
[[hosting.nameservers]]
name = "ns1.sts.provider.test"
addrs = ["127.0.0.1"]
[acme]
directory = {directory:?}
contact = ["mailto:ops@provider.test"]
challenge = {challenge:?}
ca_file = {ca:?}
[keys]
secret_file = {secret:?}
[store]
url = {url:?}
[api]
listen = ["127.0.0.1:0"]
token = "serve-acme-token"
[replicas]
poll_interval_ms = 100
"#,
        directory = pebble.directory_url(),
        ca = ca_file.display().to_string(),
        secret = secret_file.display().to_string(),
    );
    let cfg: ServeConfig = text.parse().expect("test config");

    // The customer's domain is hosted before the service starts: its first certificate run
    // orders at once.
    let store = Store::open(&url).await.expect("store");
    let service = DomainService::new(store.clone(), cfg.hosting.clone(), None);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let tenant = service.default_tenant(now).await.expect("tenant");
    service
        .add(
            tenant,
            &AddDomain {
                domain: DOMAIN.into(),
                mode: Some("enforce".into()),
                mx: Some(MxInput::Patterns(vec![format!("mx.{DOMAIN}")])),
                max_age: Some(86_400),
                follow_mx: false,
            },
            "test",
            now,
        )
        .await
        .expect("add");
    store.close().await;

    let dns = Dns::new(&DnsConfig {
        server: Some(dns_addr),
        dnssec: false,
        ..DnsConfig::default()
    })
    .expect("DNS client");
    let runtime = Runtime::start(
        cfg,
        ServeOptions {
            clock: Clock::system(),
            replica_id: Some("acme".into()),
            dns: Some(dns),
            ..ServeOptions::default()
        },
    )
    .await
    .expect("the runtime starts");
    let https = SocketAddr::from((Ipv4Addr::LOCALHOST, https_port));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        runtime
            .run(async {
                let _ = stopped.await;
            })
            .await
            .expect("run");
    });

    // Trusting Pebble's issuing root only: the certificate came from the CA.
    let root = CertificateDer::from_pem_slice(pebble.issuing_root_pem().as_bytes())
        .expect("Pebble's root");
    let served = within(Duration::from_secs(60), || async {
        matches!(fetch(https, DOMAIN, &root).await, Fetched::Http(200, _))
    })
    .await;
    let last = fetch(https, DOMAIN, &root).await;
    assert!(
        served.is_some(),
        "the policy is served with a certificate from Pebble: {last:?}\n{}",
        pebble.log()
    );
    assert_eq!(last.mode().as_deref(), Some("enforce"), "{last:?}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("serve stops")
        .expect("serve task");
}
