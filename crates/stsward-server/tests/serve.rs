//! `stsward serve` in-process, with real listeners on loopback: the policy reaches HTTPS and
//! DNS, a change moves the body before the id (RFC 8461 §8.1: "Recipients SHOULD also update
//! the HTTPS policy body before updating the TXT record"), replicas on one PostgreSQL agree
//! before the id moves, and a removal ends with NXDOMAIN only after the old `max_age`
//! (RFC 8461 §8.3).

mod serve_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use serve_support::{Fetched, Pki, config_text, fetch, pki, sts_id, within};
use stsward_server::config::ServeConfig;
use stsward_server::domains::{AddDomain, DomainService, MxInput, PolicyChange};
use stsward_server::serve::{Clock, Runtime, ServeOptions, Started};
use stsward_testkit::postgres::Postgres;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SECOND: Duration = Duration::from_secs(1);

struct Running {
    started: Started,
    service: DomainService,
    clock: Clock,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    fn https(&self) -> std::net::SocketAddr {
        self.started.https[0]
    }

    fn dns(&self) -> std::net::SocketAddr {
        self.started.dns[0]
    }

    /// A graceful stop: SIGTERM's path.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("run returns after the shutdown signal")
            .expect("run task");
    }

    /// A crash: the task is dropped, nothing is deregistered.
    async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn start(pki: &Pki, url: &str, replica: &str, v6: bool) -> Running {
    start_with(pki, url, replica, v6, "").await
}

async fn start_with(pki: &Pki, url: &str, replica: &str, v6: bool, extra: &str) -> Running {
    let text = format!("{}{extra}", config_text(pki, url, v6));
    let cfg: ServeConfig = text.parse().expect("test config");
    let clock = Clock::system();
    let runtime = Runtime::start(
        cfg,
        ServeOptions {
            clock: clock.clone(),
            replica_id: Some(replica.into()),
            ..ServeOptions::default()
        },
    )
    .await
    .expect("the runtime starts");
    let started = runtime.started().clone();
    let service = runtime.service().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        runtime
            .run(async {
                let _ = stopped.await;
            })
            .await
            .expect("run");
    });
    Running {
        started,
        service,
        clock,
        stop: Some(stop),
        task,
    }
}

/// A plain HTTP/1.1 GET; the whole response as text.
async fn api_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        tcp.read_to_end(&mut out).await.expect("read");
        String::from_utf8_lossy(&out).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .expect("API answers")
}

fn now() -> i64 {
    Clock::system().now()
}

async fn add(service: &DomainService, domain: &str) -> String {
    let tenant = service.default_tenant(now()).await.expect("tenant");
    let change = service
        .add(
            tenant,
            &AddDomain {
                domain: domain.into(),
                mode: Some("testing".into()),
                mx: Some(MxInput::Patterns(vec![format!("mx.{domain}")])),
                max_age: Some(86_400),
                follow_mx: false,
            },
            "test",
            now(),
        )
        .await
        .expect("add");
    change.version.sts_id
}

async fn set_mode(service: &DomainService, domain: &str, mode: &str) -> String {
    let tenant = service.default_tenant(now()).await.expect("tenant");
    let change = service
        .set(
            tenant,
            domain,
            &PolicyChange {
                mode: Some(mode.into()),
                ..PolicyChange::default()
            },
            "test",
            now(),
        )
        .await
        .expect("set");
    assert!(change.changed, "{mode} is a change");
    change.version.sts_id
}

/// Waits until `r` serves `mode` over HTTPS and `id` in DNS.
async fn until_served(
    r: &Running,
    ca: &rustls::pki_types::CertificateDer<'static>,
    domain: &str,
    mode: &str,
    id: &str,
    limit: Duration,
) -> Option<Duration> {
    within(limit, || async {
        fetch(r.https(), domain, ca).await.mode().as_deref() == Some(mode)
            && sts_id(r.dns(), domain).await.as_deref() == Ok(id)
    })
    .await
}

/// Polls DNS then HTTPS on every runtime in `rs`; counts the rounds in which some DNS id was
/// `new_id` while some body still said `old_mode`.
fn watch_order(
    rs: Vec<(std::net::SocketAddr, std::net::SocketAddr)>,
    ca: rustls::pki_types::CertificateDer<'static>,
    domain: &'static str,
    new_id: Arc<std::sync::Mutex<String>>,
    old_mode: &'static str,
    done: Arc<AtomicBool>,
) -> (Arc<AtomicUsize>, Arc<AtomicUsize>, JoinHandle<()>) {
    let violations = Arc::new(AtomicUsize::new(0));
    let rounds = Arc::new(AtomicUsize::new(0));
    let (v, n) = (violations.clone(), rounds.clone());
    let task = tokio::spawn(async move {
        while !done.load(Ordering::SeqCst) {
            let want = new_id.lock().expect("id").clone();
            let mut new_published = false;
            for (_, dns) in &rs {
                if sts_id(*dns, domain).await.as_deref() == Ok(want.as_str()) {
                    new_published = true;
                }
            }
            let mut old_served = false;
            for (https, _) in &rs {
                if fetch(*https, domain, &ca).await.mode().as_deref() == Some(old_mode) {
                    old_served = true;
                }
            }
            if new_published && old_served {
                v.fetch_add(1, Ordering::SeqCst);
            }
            n.fetch_add(1, Ordering::SeqCst);
        }
    });
    (violations, rounds, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_moves_the_body_then_the_id_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path(), &["mta-sts.a.test", "mta-sts.b.test"]);
    let url = format!("sqlite://{}", dir.path().join("stsward.db").display());
    let r = start(&pki, &url, "r1", true).await;
    assert_eq!(r.started.domains, 0);
    assert_eq!(r.started.https.len(), 2, "IPv4 and IPv6");
    assert_eq!(r.started.dns.len(), 2, "IPv4 and IPv6");

    // Unknown before it is added: NXDOMAIN, and the handshake has no certificate to offer.
    assert_eq!(sts_id(r.dns(), "a.test").await, Err(ResponseCode::NXDomain));
    assert!(matches!(
        fetch(r.https(), "a.test", &pki.ca).await,
        Fetched::Refused(_)
    ));

    // The REST API runs in the same process.
    assert_eq!(r.started.api.len(), 1);
    let health = api_get(r.started.api[0], "/api/v1/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let id1 = add(&r.service, "a.test").await;
    let took = until_served(&r, &pki.ca, "a.test", "testing", &id1, 3 * SECOND).await;
    assert!(
        took.is_some_and(|t| t < SECOND),
        "added domain served after {took:?}"
    );
    // Both address families answer.
    assert_eq!(
        sts_id(r.started.dns[1], "a.test").await.as_deref(),
        Ok(id1.as_str())
    );
    assert_eq!(
        fetch(r.started.https[1], "a.test", &pki.ca)
            .await
            .mode()
            .as_deref(),
        Some("testing")
    );

    let new_id = Arc::new(std::sync::Mutex::new(String::from("not-yet")));
    let done = Arc::new(AtomicBool::new(false));
    let (violations, rounds, poller) = watch_order(
        vec![(r.https(), r.dns())],
        pki.ca.clone(),
        "a.test",
        new_id.clone(),
        "testing",
        done.clone(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id2 = set_mode(&r.service, "a.test", "enforce").await;
    *new_id.lock().expect("id") = id2.clone();
    assert_ne!(id1, id2);
    let took = until_served(&r, &pki.ca, "a.test", "enforce", &id2, 3 * SECOND).await;
    done.store(true, Ordering::SeqCst);
    poller.await.expect("poller");
    assert!(
        took.is_some_and(|t| t < SECOND),
        "change served after {took:?}"
    );
    assert!(
        rounds.load(Ordering::SeqCst) >= 3,
        "the poller ran during the change"
    );
    assert_eq!(
        violations.load(Ordering::SeqCst),
        0,
        "new id seen while the old body was served"
    );

    // A second start of the same store loads the domain from the snapshot.
    r.stop().await;
    let r = start(&pki, &url, "r1", false).await;
    assert_eq!(r.started.domains, 1);
    assert_eq!(r.started.with_static_cert, 1);
    assert!(
        until_served(&r, &pki.ca, "a.test", "enforce", &id2, SECOND)
            .await
            .is_some()
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_serves_mode_none_then_nxdomain_after_the_old_max_age() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path(), &["mta-sts.gone.test"]);
    let url = format!("sqlite://{}", dir.path().join("stsward.db").display());
    // With a DNSSEC key file that does not exist yet: created with mode 0600, DS printed.
    let key = dir.path().join("zone.key");
    let keys = format!(
        "[keys]\ndnssec_key_file = {:?}\n",
        key.display().to_string()
    );
    let r = start_with(&pki, &url, "r1", false, &keys).await;
    assert!(r.started.dnssec_key_created);
    let ds = r
        .started
        .ds_record
        .clone()
        .expect("a signed zone has a DS record");
    assert!(ds.contains(" DS "), "{ds}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let id1 = add(&r.service, "gone.test").await;
    assert!(
        until_served(&r, &pki.ca, "gone.test", "testing", &id1, 3 * SECOND)
            .await
            .is_some()
    );

    let tenant = r.service.default_tenant(now()).await.expect("tenant");
    let removal = r
        .service
        .remove(tenant, "gone.test", "test", now())
        .await
        .expect("remove");
    let id2 = removal.version.sts_id;
    assert_ne!(id1, id2);
    assert!(
        until_served(&r, &pki.ca, "gone.test", "none", &id2, 3 * SECOND)
            .await
            .is_some(),
        "mode none under a new id"
    );
    // An hour later it is still served: the old policy (max_age one day) may be cached.
    r.clock.advance(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fetch(r.https(), "gone.test", &pki.ca)
            .await
            .mode()
            .as_deref(),
        Some("none")
    );
    assert_eq!(
        sts_id(r.dns(), "gone.test").await.as_deref(),
        Ok(id2.as_str())
    );

    // Past the old max_age: NXDOMAIN, and no policy over HTTPS.
    r.clock.advance(Duration::from_secs(86_400));
    let gone = within(3 * SECOND, || async {
        sts_id(r.dns(), "gone.test").await == Err(ResponseCode::NXDomain)
    })
    .await;
    assert!(gone.is_some(), "NXDOMAIN after the removal time");
    // RFC 8461 §8.3 step 3: the HTTPS endpoint answers "not found" over TLS, the handshake
    // still works (the certificate is kept until it expires).
    let fetched = fetch(r.https(), "gone.test", &pki.ca).await;
    assert!(matches!(fetched, Fetched::Http(404, _)), "{fetched:?}");
    r.stop().await;

    // The key is read back, not replaced: the same DS record.
    let r = start_with(&pki, &url, "r1", false, &keys).await;
    assert!(!r.started.dnssec_key_created);
    assert_eq!(r.started.ds_record.as_deref(), Some(ds.as_str()));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_publish_only_what_every_live_replica_serves() {
    let Some(server) = Postgres::start("stsward-server/serve-replicas") else {
        return;
    };
    let url = server.create_database();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path(), &["mta-sts.r.test"]);
    let r1 = start(&pki, &url, "replica-1", false).await;
    let r2 = start(&pki, &url, "replica-2", false).await;
    let id1 = add(&r1.service, "r.test").await;
    for r in [&r1, &r2] {
        assert!(
            until_served(r, &pki.ca, "r.test", "testing", &id1, 3 * SECOND)
                .await
                .is_some(),
            "both replicas serve the new domain"
        );
    }

    // A change: the id moves on either replica only once both serve the new body.
    let new_id = Arc::new(std::sync::Mutex::new(String::from("not-yet")));
    let done = Arc::new(AtomicBool::new(false));
    let (violations, rounds, poller) = watch_order(
        vec![(r1.https(), r1.dns()), (r2.https(), r2.dns())],
        pki.ca.clone(),
        "r.test",
        new_id.clone(),
        "testing",
        done.clone(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id2 = set_mode(&r2.service, "r.test", "enforce").await;
    *new_id.lock().expect("id") = id2.clone();
    for r in [&r1, &r2] {
        let took = until_served(r, &pki.ca, "r.test", "enforce", &id2, 3 * SECOND).await;
        assert!(took.is_some_and(|t| t < SECOND), "served after {took:?}");
    }
    done.store(true, Ordering::SeqCst);
    poller.await.expect("poller");
    assert!(rounds.load(Ordering::SeqCst) >= 2);
    assert_eq!(
        violations.load(Ordering::SeqCst),
        0,
        "new id seen while an old body was served"
    );

    // Replica 2 dies without deregistering: replica 1 serves the next body at once, but
    // publishes its id only after replica 2's heartbeat expired (2 s).
    r2.crash().await;
    let id3 = set_mode(&r1.service, "r.test", "testing").await;
    let body = within(3 * SECOND, || async {
        fetch(r1.https(), "r.test", &pki.ca).await.mode().as_deref() == Some("testing")
    })
    .await;
    assert!(body.is_some(), "replica 1 serves the new body");
    assert_eq!(
        sts_id(r1.dns(), "r.test").await.as_deref(),
        Ok(id2.as_str()),
        "the id waits for the silent replica"
    );
    let published = within(5 * SECOND, || async {
        sts_id(r1.dns(), "r.test").await.as_deref() == Ok(id3.as_str())
    })
    .await;
    assert!(published.is_some(), "published after the heartbeat expiry");

    // The database goes away: replica 1 keeps serving what it has, and still stops cleanly.
    drop(server);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        fetch(r1.https(), "r.test", &pki.ca).await.mode().as_deref(),
        Some("testing")
    );
    assert_eq!(
        sts_id(r1.dns(), "r.test").await.as_deref(),
        Ok(id3.as_str())
    );
    r1.stop().await;
}
