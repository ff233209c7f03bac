//! The scheduler inside `stsward serve`, with real listeners on loopback and the lab DNS:
//! - the runtime follows a domain's MX records on its own clock (moved forward by the test)
//!   and the policy host serves the version the scheduler made (RFC 8461 §3.2 `mx` lines);
//! - policy fetches (RFC 8461 §3.3) counted by the policy host reach the store, periodically
//!   and at a graceful stop, and survive a restart, on SQLite and on PostgreSQL.

mod lab_dns;
mod serve_support;

use std::time::Duration;

use lab_dns::{LabDns, zone};
use serve_support::{Fetched, Pki, config_text, fetch, pki};
use stsward_net::dns::Dns;
use stsward_server::config::ServeConfig;
use stsward_server::domains::{AddDomain, DomainService, MxInput, SCHEDULER_ACTOR};
use stsward_server::serve::{Clock, Runtime, ServeOptions, Started};
use stsward_testkit::postgres::Postgres;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Fast rounds and flushes for tests; rounds move with the test's clock.
const SCHEDULER: &str = "
[scheduler]
check_interval = 10
tick_ms = 50
fetch_flush_interval = 1
";

struct Running {
    started: Started,
    service: DomainService,
    clock: Clock,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("run returns after the shutdown signal")
            .expect("run task");
    }
}

async fn start(pki: &Pki, url: &str, dns: Option<Dns>) -> Running {
    let text = format!("{}{SCHEDULER}", config_text(pki, url, false));
    let cfg: ServeConfig = text.parse().expect("test config");
    let clock = Clock::system();
    let runtime = Runtime::start(
        cfg,
        ServeOptions {
            clock: clock.clone(),
            replica_id: Some("replica-1".into()),
            dns,
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

/// One REST API request with the test token; the status and the JSON body.
async fn api(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    json: &str,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \
             serve-test-token\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{json}",
            json.len()
        );
        tcp.write_all(req.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        tcp.read_to_end(&mut out).await.expect("read");
        String::from_utf8_lossy(&out).into_owned()
    };
    let text = tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .expect("the API answers");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or_default())
}

fn body(f: &Fetched) -> Option<&str> {
    match f {
        Fetched::Http(200, body) => Some(body),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_follows_the_mx_records_on_its_clock() {
    let mut lab = LabDns::start(&[
        zone("follow.test", &["mx1.follow.test"], None),
        zone("own.test", &["mx.own.test"], Some("v=STSv1; id=stale1;")),
    ])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path(), &["mta-sts.follow.test", "mta-sts.own.test"]);
    let url = format!("sqlite://{}", dir.path().join("serve.db").display());
    let r = start(&pki, &url, Some(lab.client())).await;
    let now = r.clock.now();
    let tenant = r.service.default_tenant(now).await.expect("tenant");
    r.service
        .add(
            tenant,
            &AddDomain {
                domain: "follow.test".into(),
                mode: Some("testing".into()),
                mx: Some(MxInput::FromDns),
                max_age: Some(86_400),
                follow_mx: true,
            },
            "test",
            now,
        )
        .await
        .expect("add");
    let https = r.started.https[0];
    let mut served = None;
    for _ in 0..40 {
        served = body(&fetch(https, "follow.test", &pki.ca).await).map(str::to_owned);
        if served.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served.is_some_and(|b| b.contains("mx: mx1.follow.test\r\n")),
        "the first version is served"
    );

    // own.test keeps its own TXT, set through the REST API; it names a stale id.
    r.service
        .add(
            tenant,
            &AddDomain {
                domain: "own.test".into(),
                mode: Some("testing".into()),
                mx: Some(MxInput::Patterns(vec!["mx.own.test".into()])),
                max_age: Some(86_400),
                follow_mx: false,
            },
            "test",
            now,
        )
        .await
        .expect("add own.test");
    let api_addr = r.started.api[0];
    let (status, _) = api(
        api_addr,
        "PATCH",
        "/api/v1/domains/own.test",
        r#"{"own_sts_txt":true}"#,
    )
    .await;
    assert_eq!(status, 200);

    // The MX record moves. Nothing happens until the clock says a round is due.
    lab.restart(&[
        zone("follow.test", &["mx2.follow.test"], None),
        zone("own.test", &["mx.own.test"], Some("v=STSv1; id=stale1;")),
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let same = r.service.show(tenant, "follow.test", r.clock.now()).await;
    assert_eq!(
        same.expect("show").current.version,
        1,
        "no round before it is due"
    );
    let mut followed = false;
    for _ in 0..60 {
        r.clock.advance(Duration::from_secs(11));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let fetched = fetch(https, "follow.test", &pki.ca).await;
        if body(&fetched).is_some_and(|b| b.contains("mx: mx2.follow.test\r\n")) {
            followed = true;
            break;
        }
    }
    assert!(
        followed,
        "the policy host serves the version that follows the MX"
    );
    let d = r
        .service
        .show(tenant, "follow.test", r.clock.now())
        .await
        .expect("show");
    assert_eq!(d.current.version, 2);
    assert_eq!(d.current.changed_by, SCHEDULER_ACTOR);
    assert_eq!(d.current.mx, ["mx2.follow.test"]);
    // A later round (the clock moved on while the body propagated) finds it in step.
    let outcome = d.checks.and_then(|c| c.mx_outcome);
    assert!(
        matches!(outcome.as_deref(), Some("changed" | "in_step")),
        "{outcome:?}"
    );
    r.stop().await;
    lab.stop().await;
}

/// Fetches the policy until it is served, then `extra` more times; returns the 200s.
async fn fetch_n(r: &Running, pki: &Pki, domain: &str, extra: usize) -> i64 {
    let https = r.started.https[0];
    let mut ok = 0;
    for _ in 0..40 {
        if body(&fetch(https, domain, &pki.ca).await).is_some() {
            ok += 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ok, 1, "{domain} is served");
    for _ in 0..extra {
        assert!(body(&fetch(https, domain, &pki.ca).await).is_some());
        ok += 1;
    }
    ok
}

async fn fetches_shown(r: &Running, domain: &str) -> (i64, i64) {
    let now = r.clock.now();
    let tenant = r.service.default_tenant(now).await.expect("tenant");
    let d = r.service.show(tenant, domain, now).await.expect("show");
    (d.fetches.fetches, d.fetches.networks)
}

async fn fetch_counts_survive_restarts(url: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path(), &["mta-sts.count.test"]);
    let r1 = start(&pki, url, None).await;
    let now = r1.clock.now();
    let tenant = r1.service.default_tenant(now).await.expect("tenant");
    r1.service
        .add(
            tenant,
            &AddDomain {
                domain: "count.test".into(),
                mode: Some("testing".into()),
                mx: Some(MxInput::Patterns(vec!["mx.count.test".into()])),
                max_age: Some(86_400),
                follow_mx: false,
            },
            "test",
            now,
        )
        .await
        .expect("add");
    let first = fetch_n(&r1, &pki, "count.test", 2).await;
    // A graceful stop flushes what the last periodic flush did not take.
    r1.stop().await;

    let r2 = start(&pki, url, None).await;
    assert_eq!(fetches_shown(&r2, "count.test").await, (first, 1));
    let more = fetch_n(&r2, &pki, "count.test", 3).await;
    // The periodic flush (every second) adds them without a stop.
    let mut shown = (0, 0);
    for _ in 0..50 {
        shown = fetches_shown(&r2, "count.test").await;
        if shown.0 == first + more {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shown, (first + more, 1), "flushed while running");
    r2.stop().await;

    let r3 = start(&pki, url, None).await;
    assert_eq!(
        fetches_shown(&r3, "count.test").await,
        (first + more, 1),
        "nothing counted twice or lost across restarts"
    );
    r3.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_counts_survive_restarts_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("counts.db").display());
    fetch_counts_survive_restarts(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_counts_survive_restarts_on_postgres() {
    let Some(server) = Postgres::start("stsward-server/serve-fetch-counts") else {
        return;
    };
    fetch_counts_survive_restarts(&server.create_database()).await;
}
