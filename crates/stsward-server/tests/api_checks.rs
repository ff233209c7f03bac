//! Tenant-requested checks through the REST API, end to end on loopback only (issue 9, no
//! server-side request forgery): the lab (crates/stsward-lab) serves DNS on a 127.x address
//! with MX and policy hosts on 127.0.x addresses. With the default filter a tenant's check
//! of such a domain is refused without one connection (listeners of this test on those very
//! addresses count their accepts), also when the policy host is reached through a CNAME;
//! with `allow_ranges = ["127.0.0.0/8"]` the same check reaches the lab's servers. Another
//! tenant's domain is 404, and runs are listed newest first.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stsward_lab::{Lab, LabOptions, RunningLab, Scenario};
use stsward_server::api::{ApiLimits, ApiServer, ApiStartError};
use stsward_server::config::{ChecksSection, HostingSection, ServeConfig};
use stsward_server::domains::DomainService;
use stsward_store::Store;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod api_support;
use api_support::{Reply, send};

const ADMIN: &str = "install-admin-token-0123456789";

const SCENARIO: &str = r#"
[lab]
dns = "plain"

[[domain]]
name = "inside.test"
mx = [{ host = "mx.inside.test", preference = 10 }]
sts_txt = "good"
tlsrpt_txt = "good"
policy = { behaviour = "good" }

# No policy host of its own: mta-sts.chained.test is a CNAME to inside.test's.
[[domain]]
name = "chained.test"
mx = [{ host = "mx.inside.test", preference = 10 }]
sts_txt = "good"
tlsrpt_txt = "good"
cname = [{ name = "mta-sts.chained.test", target = "mta-sts.inside.test" }]
"#;

struct Api {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ApiStartError>>,
}

impl Api {
    async fn start(store: Store, checks: ChecksSection) -> Api {
        let hosting = HostingSection {
            zone: Some("sts.provider.test".into()),
            policy_host: Some("mta-sts.provider.test".into()),
            tlsrpt_rua: Some("mailto:tlsrpt@provider.test".into()),
            ..HostingSection::default()
        };
        let service = DomainService::new(store, hosting, None);
        let limits = ApiLimits {
            header_read_timeout: Duration::from_secs(2),
            body_read_timeout: Duration::from_secs(2),
            ..ApiLimits::default()
        };
        let server = ApiServer::bind(&["127.0.0.1:0".parse().expect("addr")], limits)
            .expect("bind")
            .with_checks(checks);
        let addr = server.addrs()[0];
        let token = format!("[api]\ntoken = {ADMIN:?}\n")
            .parse::<ServeConfig>()
            .expect("config")
            .api_token()
            .expect("token");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(service, token, async {
            let _ = stopped.await;
        }));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = send(addr, "GET", "/api/v1/health", &[], b"").await;
            if r.status == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "the API did not come up: {r:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Api {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let ran = tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the server stops")
            .expect("no panic");
        ran.expect("the server ran");
    }

    async fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string());
        let mut head = vec![format!("Authorization: Bearer {token}")];
        if body.is_some() {
            head.push("Content-Type: application/json".into());
        }
        send(
            self.addr,
            method,
            path,
            &head,
            body.as_deref().unwrap_or("").as_bytes(),
        )
        .await
    }

    async fn tenant_with_token(&self, name: &str) -> String {
        let r = self
            .call(
                ADMIN,
                "POST",
                "/api/v1/tenants",
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(r.status, 201, "create tenant {name}: {r:?}");
        let r = self
            .call(
                ADMIN,
                "POST",
                "/api/v1/tokens",
                Some(json!({ "name": format!("{name} automation"), "tenant": name })),
            )
            .await;
        assert_eq!(r.status, 201, "create token for {name}: {r:?}");
        r.body["token"].as_str().expect("the token").to_owned()
    }

    async fn host(&self, token: &str, domain: &str) {
        let r = self
            .call(
                token,
                "POST",
                "/api/v1/domains",
                Some(json!({ "domain": domain, "mx": ["mx.inside.test"] })),
            )
            .await;
        assert_eq!(r.status, 201, "{domain}: {r:?}");
    }
}

/// The finding with `code`, if the run has one.
fn finding<'a>(r: &'a Reply, code: &str) -> Option<&'a Value> {
    r.body["findings"]
        .as_array()?
        .iter()
        .find(|f| f["code"] == code)
}

fn codes(r: &Reply) -> Vec<String> {
    r.body["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["code"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A listener on `ip` that counts the connections it accepts, holding each one open (so a
/// check that did connect waits for a banner, as against a silent server).
async fn counting_listener(ip: IpAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (addr, count)
}

fn checks(lab: &RunningLab, smtp_port: u16, https_port: u16) -> ChecksSection {
    ChecksSection {
        resolver: Some(lab.resolver_addr()),
        smtp_port,
        https_port,
        timeout: 8,
        max_per_tenant: 1,
        max_concurrent: 4,
        history: 3,
        ..ChecksSection::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_check_never_connects_to_loopback_unless_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario: Scenario = SCENARIO.parse().expect("scenario");
    let lab = Lab::start(
        &scenario,
        &LabOptions::new(dir.path(), OffsetDateTime::now_utc()),
    )
    .await
    .expect("lab");
    let mx_ip = IpAddr::V4(lab.host_addr("mx.inside.test").expect("mx address"));
    let policy_ip = IpAddr::V4(
        lab.host_addr("mta-sts.inside.test")
            .expect("policy address"),
    );
    assert!(mx_ip.is_loopback() && policy_ip.is_loopback());
    let (smtp, smtp_accepts) = counting_listener(mx_ip).await;
    let (https, https_accepts) = counting_listener(policy_ip).await;
    let url = format!("sqlite://{}", dir.path().join("api.db").display());

    // The filter on, nothing allowed: the checker is pointed at this test's listeners.
    let api = Api::start(
        Store::open(&url).await.expect("store"),
        checks(&lab, smtp.port(), https.port()),
    )
    .await;
    let alpha = api.tenant_with_token("alpha").await;
    let beta = api.tenant_with_token("beta").await;
    api.host(&alpha, "inside.test").await;
    api.host(&alpha, "chained.test").await;
    for domain in ["inside.test", "chained.test"] {
        let r = api
            .call(
                &alpha,
                "POST",
                &format!("/api/v1/domains/{domain}/checks"),
                None,
            )
            .await;
        assert_eq!(r.status, 201, "{domain}: {r:?}");
        assert_eq!(r.body["verdict"], "error", "{domain}: {r:?}");
        let refused: Vec<&Value> = r.body["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|f| f["code"] == "net.address.refused")
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            refused.len(),
            2,
            "{domain}: the policy host and the MX: {r:?}"
        );
        for gone in ["sts.policy.unreachable", "mx.unreachable"] {
            assert!(
                finding(&r, gone).is_none(),
                "{domain}: not probed, so not {gone}"
            );
        }
        let policy = refused
            .iter()
            .find(|f| {
                f["subject"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("mta-sts."))
            })
            .unwrap_or_else(|| panic!("{domain}: {:?}", codes(&r)));
        let message = policy["message"].as_str().expect("message");
        assert!(
            message.contains(&policy_ip.to_string()) && message.contains("loopback"),
            "{domain}: {message}"
        );
        if domain == "chained.test" {
            assert!(
                message.contains("mta-sts.inside.test"),
                "the CNAME target: {message}"
            );
        }
        let mx = refused
            .iter()
            .find(|f| {
                f["subject"]
                    .as_str()
                    .is_some_and(|s| !s.starts_with("mta-sts."))
            })
            .unwrap_or_else(|| panic!("{domain}: {:?}", codes(&r)));
        let message = mx["message"].as_str().expect("message");
        assert!(
            message.contains(&mx_ip.to_string()) && message.contains("loopback"),
            "{domain}: {message}"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        smtp_accepts.load(Ordering::SeqCst),
        0,
        "an SMTP connection was made"
    );
    assert_eq!(
        https_accepts.load(Ordering::SeqCst),
        0,
        "an HTTPS connection was made"
    );

    // No token, or a bad one: 401 on both routes.
    for method in ["POST", "GET"] {
        let path = "/api/v1/domains/inside.test/checks";
        let r = send(api.addr, method, path, &[], b"").await;
        assert_eq!(r.status, 401, "{method} without a token: {r:?}");
        let r = api.call("not-a-token", method, path, None).await;
        assert_eq!(r.status, 401, "{method} with a bad token: {r:?}");
    }
    // Another tenant: 404 for alpha's domain, both routes; nothing is stored for it.
    for method in ["POST", "GET"] {
        let r = api
            .call(&beta, method, "/api/v1/domains/inside.test/checks", None)
            .await;
        assert_eq!(r.status, 404, "beta {method}: {r:?}");
    }
    let r = api
        .call(&alpha, "GET", "/api/v1/domains/inside.test/checks", None)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["runs"].as_array().map(Vec::len), Some(1), "{r:?}");
    assert_eq!(r.body["runs"][0]["verdict"], "error");
    let r = api
        .call(&alpha, "DELETE", "/api/v1/domains/inside.test/checks", None)
        .await;
    assert_eq!(r.status, 405, "{r:?}");
    api.shutdown().await;

    // 127.0.0.0/8 allowed, still pointed at the silent listeners: now they are connected to,
    // and a second check of the same tenant meanwhile gets 429 with Retry-After.
    let mut allowing = checks(&lab, smtp.port(), https.port());
    allowing.allow_ranges = vec!["127.0.0.0/8".into()];
    allowing.timeout = 3;
    let api = Arc::new(Api::start(Store::open(&url).await.expect("store"), allowing).await);
    let first = {
        let api = api.clone();
        let alpha = alpha.clone();
        tokio::spawn(async move {
            api.call(&alpha, "POST", "/api/v1/domains/inside.test/checks", None)
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while smtp_accepts.load(Ordering::SeqCst) == 0 && https_accepts.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the allowed check never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = api
        .call(&alpha, "POST", "/api/v1/domains/chained.test/checks", None)
        .await;
    assert_eq!(second.status, 429, "{second:?}");
    assert_eq!(second.header("retry-after"), Some("5"), "{second:?}");
    let first = first.await.expect("first check");
    assert_eq!(first.status, 201, "{first:?}");
    Arc::try_unwrap(api)
        .ok()
        .expect("one owner")
        .shutdown()
        .await;

    // 127.0.0.0/8 allowed and the lab's real servers: the check goes through.
    let pem_path = lab.ca_file().to_path_buf();
    let mut real = checks(&lab, lab.smtp_port(), lab.https_port());
    real.allow_ranges = vec!["127.0.0.0/8".into()];
    real.ca_file = Some(pem_path);
    let api = Api::start(Store::open(&url).await.expect("store"), real).await;
    let r = api
        .call(&alpha, "POST", "/api/v1/domains/inside.test/checks", None)
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let codes = codes(&r);
    for code in ["sts.policy.fetched", "mx.starttls.ok", "mx.cert.ok"] {
        assert!(codes.iter().any(|c| c == code), "{code} in {codes:?}");
    }
    assert!(!codes.iter().any(|c| c == "mx.unreachable"), "{codes:?}");
    // History: newest first, bounded by `history`.
    let r = api
        .call(
            &alpha,
            "GET",
            "/api/v1/domains/inside.test/checks?limit=10",
            None,
        )
        .await;
    let runs = r.body["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "{r:?}");
    assert!(
        runs[0]["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    );
    assert!(
        runs.windows(2)
            .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64())
    );
    api.shutdown().await;
    lab.shutdown().await;
}
