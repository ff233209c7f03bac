//! The REST API against real parts: a real server on 127.0.0.1 (port 0) over a SQLite file
//! and a throwaway PostgreSQL (crates/stsward-testkit), the lab's DNS on loopback for MX
//! lookups, and a raw HTTP/1.1 client on a TcpStream. One table of behaviours per backend,
//! each case on a fresh database and a fresh server.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stsward_lab::{Lab, LabOptions, RunningLab, Scenario};
use stsward_net::dns::{Dns, DnsConfig};
use stsward_server::api::{ApiLimits, ApiServer, ApiStartError};
use stsward_server::config::{HostingSection, ServeConfig};
use stsward_server::domains::{AddDomain, DomainService, MxInput};
use stsward_store::Store;
use stsward_testkit::postgres::Postgres;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod api_support;
use api_support::{Reply, parse_reply, read_reply, send};

const TOKEN: &str = "api-test-token-0123456789";

const SCENARIO: &str = r#"
[lab]
dns = "plain"

[[domain]]
name = "hosted.test"
mx = [{ host = "mx1.hosted.test", preference = 10 }, { host = "mx2.hosted.test", preference = 20 }]
"#;

type Case = fn(Api) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const CASES: &[(&str, Case)] = &[
    ("a_token_is_required_and_a_wrong_one_refused", |a| {
        Box::pin(a_token_is_required_and_a_wrong_one_refused(a))
    }),
    ("add_list_show_patch_delete_round_trip", |a| {
        Box::pin(add_list_show_patch_delete_round_trip(a))
    }),
    ("invalid_input_names_the_field_and_changes_nothing", |a| {
        Box::pin(invalid_input_names_the_field_and_changes_nothing(a))
    }),
    ("duplicates_conflict_and_unknown_domains_are_404", |a| {
        Box::pin(duplicates_conflict_and_unknown_domains_are_404(a))
    }),
    ("bodies_are_bounded_and_must_be_json", |a| {
        Box::pin(bodies_are_bounded_and_must_be_json(a))
    }),
    ("a_slow_client_is_cut_off", |a| {
        Box::pin(a_slow_client_is_cut_off(a))
    }),
    ("the_openapi_document_matches_the_routes", |a| {
        Box::pin(the_openapi_document_matches_the_routes(a))
    }),
    ("readiness_explains_each_criterion", |a| {
        Box::pin(readiness_explains_each_criterion(a))
    }),
    ("sync_mx_and_records_match_the_service", |a| {
        Box::pin(sync_mx_and_records_match_the_service(a))
    }),
    ("listing_pages_by_name", |a| {
        Box::pin(listing_pages_by_name(a))
    }),
    ("idn_percent_encoded_and_trailing_dot_names", |a| {
        Box::pin(idn_percent_encoded_and_trailing_dot_names(a))
    }),
    ("another_tenants_domains_are_out_of_reach", |a| {
        Box::pin(another_tenants_domains_are_out_of_reach(a))
    }),
    ("health_follows_the_store", |a| {
        Box::pin(health_follows_the_store(a))
    }),
];

/// A running API over a fresh store.
struct Api {
    addr: SocketAddr,
    service: DomainService,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ApiStartError>>,
}

impl Api {
    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let ran = tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the server stops within its grace time")
            .expect("the server task did not panic");
        ran.expect("the server ran");
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string());
        let mut head = vec![format!("Authorization: Bearer {TOKEN}")];
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

    /// What `stsward domain show --json` prints: the service's view, as JSON.
    async fn cli_show(&self, domain: &str) -> Value {
        let t = self.service.default_tenant(now()).await.expect("tenant");
        let detail = self
            .service
            .show(t, domain, now())
            .await
            .expect("service show");
        serde_json::to_value(detail).expect("json")
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn limits() -> ApiLimits {
    ApiLimits {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        ..ApiLimits::default()
    }
}

fn token() -> Option<stsward_server::config::Secret> {
    let cfg: ServeConfig = format!("[api]\ntoken = {TOKEN:?}\n")
        .parse()
        .expect("config");
    cfg.api_token().expect("token")
}

async fn start(service: DomainService) -> Api {
    let server = ApiServer::bind(&["127.0.0.1:0".parse().expect("addr")], limits()).expect("bind");
    let addr = server.addrs()[0];
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(service.clone(), token(), async {
        let _ = stopped.await;
    }));
    // Ready when the health check answers (the tenant is read before serving).
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
        service,
        stop: Some(stop),
        task,
    }
}

// ---- the cases ----

async fn a_token_is_required_and_a_wrong_one_refused(api: Api) {
    let path = "/api/v1/domains";
    for (headers, why) in [
        (vec![], "no Authorization"),
        (
            vec![format!("Authorization: Bearer {TOKEN}x")],
            "longer token",
        ),
        (
            vec!["Authorization: Bearer wrong".to_string()],
            "wrong token",
        ),
        (vec!["Authorization: Bearer ".to_string()], "empty token"),
        (
            vec![format!("Authorization: Basic {TOKEN}")],
            "Basic scheme",
        ),
    ] {
        let r = send(api.addr, "GET", path, &headers, b"").await;
        assert_eq!(r.status, 401, "{why}: {r:?}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{why}: RFC 6750 §3 challenge: {r:?}"
        );
        assert_eq!(r.body["error"]["code"], "unauthorized", "{why}");
    }
    // Nothing was listed or added without the token.
    let r = send(
        api.addr,
        "POST",
        path,
        &["Content-Type: application/json".to_string()],
        br#"{"domain":"hosted.test","mx":["mx.hosted.test"]}"#,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(
        api.addr,
        "GET",
        path,
        &[format!("authorization: bearer {TOKEN}")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "the scheme is case-insensitive: {r:?}");
    assert_eq!(
        r.body["domains"],
        json!([]),
        "the unauthorised add wrote nothing"
    );
    api.shutdown().await;
}

async fn add_list_show_patch_delete_round_trip(api: Api) {
    let r = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "Hosted.Test."})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("location"), Some("/api/v1/domains/hosted.test"));
    assert_eq!(r.body["domain"], "hosted.test");
    assert_eq!(r.body["version"]["mode"], "testing", "the default mode");
    assert_eq!(
        r.body["version"]["mx"],
        json!(["mx1.hosted.test", "mx2.hosted.test"]),
        "the default: the MX hosts in DNS"
    );
    assert_eq!(r.body["version"]["changed_by"], "api");
    let first_id = r.body["version"]["sts_id"].as_str().expect("id").to_owned();

    let list = api.call("GET", "/api/v1/domains", None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["domains"][0]["domain"], "hosted.test");
    assert_eq!(list.body["domains"][0]["id"], first_id.as_str());
    assert_eq!(list.body["next_after"], Value::Null);

    let shown = api.call("GET", "/api/v1/domains/hosted.test", None).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body, api.cli_show("hosted.test").await, "API = CLI");

    let r = api
        .call(
            "PATCH",
            "/api/v1/domains/hosted.test",
            Some(
                json!({"mode": "enforce", "max_age": 86400, "note": "go live", "follow_mx": true}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["changed"], true);
    assert_eq!(r.body["version"]["version"], 2);
    assert_eq!(r.body["version"]["mode"], "enforce");
    assert_eq!(r.body["version"]["max_age"], 86400);
    assert_eq!(r.body["version"]["note"], "go live");
    let second_id = r.body["version"]["sts_id"].as_str().expect("id");
    assert_ne!(
        second_id, first_id,
        "RFC 8461 §3.1: the id changes with the policy"
    );
    let shown = api.call("GET", "/api/v1/domains/hosted.test", None).await;
    assert_eq!(shown.body, api.cli_show("hosted.test").await, "API = CLI");
    assert_eq!(shown.body["domain"]["follow_mx"], true);
    assert_eq!(shown.body["history"].as_array().map(Vec::len), Some(2));

    let r = api
        .call("DELETE", "/api/v1/domains/hosted.test", None)
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["state"], "removing");
    assert_eq!(r.body["version"]["mode"], "none");
    let gone_at = r.body["gone_at"].as_i64().expect("gone_at");
    // Version 1 (a week) was served until the PATCH, just now, and may be cached a week.
    assert!(gone_at >= now() + 604_800 - 120, "gone at {gone_at}");
    let shown = api.call("GET", "/api/v1/domains/hosted.test", None).await;
    assert_eq!(shown.body["state"], "removing");
    assert_eq!(shown.body["gone_at"], gone_at);
    assert_eq!(shown.body, api.cli_show("hosted.test").await, "API = CLI");
    let r = api
        .call(
            "PATCH",
            "/api/v1/domains/hosted.test",
            Some(json!({"mode": "testing"})),
        )
        .await;
    assert_eq!(r.status, 409, "a removing domain does not change: {r:?}");
    assert_eq!(r.body["error"]["code"], "removing");
    api.shutdown().await;
}

async fn invalid_input_names_the_field_and_changes_nothing(api: Api) {
    let r = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "hosted.test", "mode": "enforce", "mx": ["mx.hosted.test"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let before = api.call("GET", "/api/v1/domains/hosted.test", None).await;
    let bad = [
        (
            json!({"max_age": 31_557_601}),
            "max_age",
            "over RFC 8461 §3.2's maximum",
        ),
        (json!({"max_age": -5}), "max_age", "negative"),
        (json!({"mx": ["*"]}), "mx", "a bare wildcard"),
        (json!({"mx": ["mx..hosted.test"]}), "mx", "an empty label"),
        (json!({"mx": []}), "mx", "enforce without mx"),
        (
            json!({"mode": "Enforce"}),
            "mode",
            "modes are case-sensitive",
        ),
        (
            json!({"mode": "testing", "tlsrpt_rua": "ftp://x.test"}),
            "tlsrpt_rua",
            "a bad rua with a good mode changes neither",
        ),
        (
            json!({"mode": "Enforce", "follow_mx": true}),
            "mode",
            "a bad mode with good options changes neither",
        ),
        (
            json!({"max_age": 31_557_601, "tlsrpt_rua": "mailto:tlsrpt@other.test"}),
            "max_age",
            "a bad max_age with a good rua changes neither",
        ),
        (json!({"colour": "red"}), "colour", "an unknown field"),
        (json!({}), "body", "nothing to change"),
    ];
    for (body, field, why) in bad {
        let r = api
            .call("PATCH", "/api/v1/domains/hosted.test", Some(body))
            .await;
        assert_eq!(r.status, 400, "{why}: {r:?}");
        assert_eq!(r.field(), Some(field), "{why}: {r:?}");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{why}"
        );
    }
    let after = api.call("GET", "/api/v1/domains/hosted.test", None).await;
    assert_eq!(before.body, after.body, "nothing changed");
    let r = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "other.test", "mx": ["a b"]})),
        )
        .await;
    assert_eq!((r.status, r.field()), (400, Some("mx")), "{r:?}");
    let r = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "192.0.2.1", "mx": ["mx.test"]})),
        )
        .await;
    assert_eq!((r.status, r.field()), (400, Some("domain")), "{r:?}");
    let list = api.call("GET", "/api/v1/domains", None).await;
    assert_eq!(list.body["domains"].as_array().map(Vec::len), Some(1));
    api.shutdown().await;
}

async fn duplicates_conflict_and_unknown_domains_are_404(api: Api) {
    let add = json!({"domain": "hosted.test", "mx": ["mx.hosted.test"]});
    let r = api.call("POST", "/api/v1/domains", Some(add.clone())).await;
    assert_eq!(r.status, 201);
    let r = api.call("POST", "/api/v1/domains", Some(add)).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.body["error"]["code"], "already_hosted");
    assert_eq!(r.field(), Some("domain"));
    for (method, path, body) in [
        ("GET", "/api/v1/domains/unknown.test", None),
        (
            "PATCH",
            "/api/v1/domains/unknown.test",
            Some(json!({"mode": "none"})),
        ),
        ("DELETE", "/api/v1/domains/unknown.test", None),
        ("POST", "/api/v1/domains/unknown.test/sync-mx", None),
        ("GET", "/api/v1/domains/unknown.test/records", None),
    ] {
        let r = api.call(method, path, body).await;
        assert_eq!(r.status, 404, "{method} {path}: {r:?}");
        assert_eq!(r.body["error"]["code"], "not_found");
    }
    let r = api.call("GET", "/api/v1/nothing", None).await;
    assert_eq!(r.status, 404);
    let r = api.call("PUT", "/api/v1/domains", None).await;
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.header("allow"), Some("GET, POST"));
    let r = api
        .call("GET", "/api/v1/domains/hosted.test/sync-mx", None)
        .await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    api.shutdown().await;
}

async fn bodies_are_bounded_and_must_be_json(api: Api) {
    let auth = format!("Authorization: Bearer {TOKEN}");
    // Declared too large: refused from the head alone, nothing read.
    let mut tcp = TcpStream::connect(api.addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/domains HTTP/1.1\r\nHost: api.test\r\n{auth}\r\n\
         Content-Type: application/json\r\nContent-Length: 70000\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    let r = read_reply(&mut tcp).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.body["error"]["code"], "too_large");
    // Chunked, so the size shows only while reading: cut off at the limit.
    let big = format!(
        r#"{{"domain":"hosted.test","mx":["mx.hosted.test"],"note":"{}"}}"#,
        "x".repeat(70_000)
    );
    let mut tcp = TcpStream::connect(api.addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/domains HTTP/1.1\r\nHost: api.test\r\n{auth}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    let mut reply = Vec::new();
    let mut sent = 0;
    // Write a chunk at a time until the server answers (it stops reading at the limit).
    while sent < big.len() {
        let end = (sent + 8192).min(big.len());
        let chunk = format!("{:x}\r\n{}\r\n", end - sent, &big[sent..end]);
        if tcp.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
        sent = end;
        let mut buf = [0u8; 4096];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(20), tcp.read(&mut buf)).await
        {
            reply.extend_from_slice(&buf[..n]);
            if n == 0 || reply.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut reply)).await;
    let r = parse_reply(&reply);
    assert_eq!(r.status, 413, "{r:?}");
    // Wrong content type.
    let r = send(
        api.addr,
        "POST",
        "/api/v1/domains",
        &[auth.clone(), "Content-Type: text/plain".into()],
        br#"{"domain":"hosted.test","mx":["mx.hosted.test"]}"#,
    )
    .await;
    assert_eq!(r.status, 415, "{r:?}");
    assert_eq!(r.body["error"]["code"], "unsupported_media_type");
    // Not JSON, or not an object.
    for body in [&b"{"[..], b"[1,2]"] {
        let r = send(
            api.addr,
            "POST",
            "/api/v1/domains",
            &[
                auth.clone(),
                "Content-Type: application/json; charset=utf-8".into(),
            ],
            body,
        )
        .await;
        assert_eq!((r.status, r.field()), (400, Some("body")), "{r:?}");
    }
    let list = api.call("GET", "/api/v1/domains", None).await;
    assert_eq!(list.body["domains"], json!([]), "nothing was added");
    api.shutdown().await;
}

async fn a_slow_client_is_cut_off(api: Api) {
    // A head that never ends: closed at header_read_timeout (1 s here).
    let mut tcp = TcpStream::connect(api.addr).await.expect("connect");
    tcp.write_all(b"GET /api/v1/domains HTTP/1.1\r\nHost: api.test\r\n")
        .await
        .expect("partial head");
    let start = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
    let waited = start.elapsed();
    assert!(read.is_ok(), "the connection was not closed within 5 s");
    assert!(
        waited >= Duration::from_millis(800),
        "closed after {waited:?}, before the timeout"
    );
    // A body that never ends: 408 at body_read_timeout, and the connection closes.
    let mut tcp = TcpStream::connect(api.addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/domains HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"domain\""
    );
    tcp.write_all(head.as_bytes()).await.expect("partial body");
    let start = Instant::now();
    let r = read_reply(&mut tcp).await;
    assert_eq!(r.status, 408, "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // The server still serves others.
    let r = api.call("GET", "/api/v1/domains", None).await;
    assert_eq!(r.status, 200);
    api.shutdown().await;
}

async fn sync_mx_and_records_match_the_service(api: Api) {
    let r = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "hosted.test", "mode": "enforce", "mx": ["mx1.hosted.test"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = api
        .call("POST", "/api/v1/domains/hosted.test/sync-mx", None)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["changed"], true);
    assert_eq!(
        r.body["version"]["mx"],
        json!(["mx1.hosted.test", "mx2.hosted.test"])
    );
    let r = api
        .call("POST", "/api/v1/domains/hosted.test/sync-mx", None)
        .await;
    assert_eq!((r.status, &r.body["changed"]), (200, &json!(false)));
    // Drop a pattern from an enforce policy: the warning comes back with the change.
    let r = api
        .call(
            "PATCH",
            "/api/v1/domains/hosted.test",
            Some(json!({"mx": ["mx1.hosted.test"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["warnings"][0]["kind"], "dropped_patterns");
    assert_eq!(r.body["warnings"][0]["dropped"], json!(["mx2.hosted.test"]));
    let records = api
        .call("GET", "/api/v1/domains/hosted.test/records", None)
        .await;
    assert_eq!(records.status, 200, "{records:?}");
    let t = api.service.default_tenant(now()).await.expect("tenant");
    let expected = api
        .service
        .records(t, "hosted.test")
        .await
        .expect("service records");
    assert_eq!(
        records.body,
        serde_json::to_value(expected).expect("json"),
        "API = CLI"
    );
    assert_eq!(
        api.call("GET", "/api/v1/domains/hosted.test", None)
            .await
            .body,
        api.cli_show("hosted.test").await
    );
    api.shutdown().await;
}

async fn listing_pages_by_name(api: Api) {
    let names = ["e.test", "a.test", "d.test", "b.test", "c.test"];
    for n in names {
        let r = api
            .call(
                "POST",
                "/api/v1/domains",
                Some(json!({"domain": n, "mode": "none", "mx": ["mx.example.test"]})),
            )
            .await;
        assert_eq!(r.status, 201, "{n}: {r:?}");
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/domains?limit=2".to_string();
    for _ in 0..10 {
        let r = api.call("GET", &path, None).await;
        assert_eq!(r.status, 200, "{r:?}");
        let page = r.body["domains"].as_array().expect("domains").clone();
        assert!(page.len() <= 2);
        seen.extend(
            page.iter()
                .map(|d| d["domain"].as_str().expect("name").to_owned()),
        );
        match r.body["next_after"].as_str() {
            Some(next) => path = format!("/api/v1/domains?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["a.test", "b.test", "c.test", "d.test", "e.test"]);
    for q in ["limit=0", "limit=1001", "limit=x", "colour=red"] {
        let r = api.call("GET", &format!("/api/v1/domains?{q}"), None).await;
        assert_eq!(r.status, 400, "{q}: {r:?}");
        assert!(r.field().is_some(), "{q}");
    }
    api.shutdown().await;
}

async fn idn_percent_encoded_and_trailing_dot_names(api: Api) {
    let r = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "Bücher.test", "mx": ["mx.example.test"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        r.body["domain"], "xn--bcher-kva.test",
        "normalised to A-labels"
    );
    assert_eq!(
        r.header("location"),
        Some("/api/v1/domains/xn--bcher-kva.test")
    );
    let expected = api.cli_show("xn--bcher-kva.test").await;
    for path in [
        "/api/v1/domains/b%C3%BCcher.test",
        "/api/v1/domains/B%C3%BCcher.test.",
        "/api/v1/domains/xn--bcher-kva.test.",
        "/api/v1/domains/xn--bcher-kva%2Etest",
    ] {
        let r = api.call("GET", path, None).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.body, expected, "{path}");
    }
    let r = api.call("GET", "/api/v1/domains/%FF.test", None).await;
    assert_eq!((r.status, r.field()), (400, Some("domain")), "{r:?}");
    api.shutdown().await;
}

async fn another_tenants_domains_are_out_of_reach(api: Api) {
    let other = api
        .service
        .store()
        .tenant_create("other", now())
        .await
        .expect("tenant")
        .id;
    let add = AddDomain {
        domain: "theirs.test".into(),
        mx: Some(MxInput::Patterns(vec!["mx.theirs.test".into()])),
        ..AddDomain::default()
    };
    api.service
        .add(other, &add, "other", now())
        .await
        .expect("the other tenant adds");
    let before = api
        .service
        .show(other, "theirs.test", now())
        .await
        .expect("show");
    let list = api.call("GET", "/api/v1/domains", None).await;
    assert_eq!(list.body["domains"], json!([]), "{list:?}");
    for (method, path, body) in [
        ("GET", "/api/v1/domains/theirs.test", None),
        (
            "PATCH",
            "/api/v1/domains/theirs.test",
            Some(json!({"mode": "none", "follow_mx": true})),
        ),
        ("DELETE", "/api/v1/domains/theirs.test", None),
        ("POST", "/api/v1/domains/theirs.test/sync-mx", None),
        ("GET", "/api/v1/domains/theirs.test/records", None),
        ("GET", "/api/v1/domains/theirs.test/readiness", None),
    ] {
        let r = api.call(method, path, body).await;
        assert_eq!(r.status, 404, "{method} {path}: {r:?}");
    }
    let r = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "theirs.test", "mx": ["mx.theirs.test"]})),
        )
        .await;
    assert_eq!(r.status, 409, "a name is hosted once: {r:?}");
    let after = api
        .service
        .show(other, "theirs.test", now())
        .await
        .expect("show");
    assert_eq!(before, after, "the other tenant's domain did not change");
    api.shutdown().await;
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `GET /api/v1/openapi.json` against the server itself: every documented operation is
/// answered by a handler (never `no_route` or 405), refuses a missing or wrong token, and
/// answers broken JSON with a 4xx that names the problem; every other method on a documented
/// path is 405 with `Allow` naming exactly the documented ones; other paths are 404.
async fn the_openapi_document_matches_the_routes(api: Api) {
    let r = send(api.addr, "GET", "/api/v1/openapi.json", &[], b"").await;
    assert_eq!(r.status, 401, "the document needs the token too: {r:?}");
    let doc = api.call("GET", "/api/v1/openapi.json", None).await;
    assert_eq!((doc.status, &doc.body["openapi"]), (200, &json!("3.0.3")));
    let paths = doc.body["paths"].as_object().cloned().unwrap_or_default();
    assert!(paths.len() >= 11, "{paths:?}");
    let wrong = ["Authorization: Bearer wrong-token".to_string()];
    let broken = [
        "Content-Type: application/json".to_string(),
        format!("Authorization: Bearer {TOKEN}"),
    ];
    for (template, item) in &paths {
        // Absent things: every handler answers them with a 4xx of its own.
        let path = template
            .replace("{domain}", "absent.test")
            .replace("{name}", "nobody")
            .replace("{id}", "999999");
        let mut documented: Vec<String> = item
            .as_object()
            .map(|m| m.keys().map(|k| k.to_uppercase()).collect())
            .unwrap_or_default();
        documented.sort();
        for method in METHODS {
            let op = &item[method.to_lowercase()];
            if !documented.iter().any(|m| m == method) {
                let r = api.call(method, &path, None).await;
                assert_eq!(r.status, 405, "{method} {path}: {r:?}");
                let mut allow: Vec<String> = r
                    .header("allow")
                    .unwrap_or("")
                    .split(", ")
                    .map(str::to_owned)
                    .collect();
                allow.sort();
                assert_eq!(allow, documented, "{method} {path}");
                continue;
            }
            if op["security"] != json!([]) {
                for head in [&[][..], &wrong[..]] {
                    let r = send(api.addr, method, &path, head, b"").await;
                    assert_eq!(r.status, 401, "{method} {path} {head:?}: {r:?}");
                }
            }
            let r = api.call(method, &path, None).await;
            assert!(
                r.status != 405 && r.code() != Some("no_route") && r.status < 500,
                "{method} {path} reaches no handler: {r:?}"
            );
            if method != "GET" {
                let r = send(api.addr, method, &path, &broken, br#"{"broken"#).await;
                assert!(
                    (400..500).contains(&r.status) && r.code().is_some_and(|c| c != "no_route"),
                    "{method} {path} with broken JSON: {r:?}"
                );
            }
        }
    }
    for path in [
        "/api/v1/nothing",
        "/api/v1/domains/absent.test/nothing",
        "/api/v1/tenants/a/b",
        "/api/v2/domains",
    ] {
        let r = api.call("GET", path, None).await;
        assert_eq!(
            (r.status, r.code()),
            (404, Some("no_route")),
            "{path}: {r:?}"
        );
    }
    api.shutdown().await;
}

/// `GET /api/v1/domains/{domain}/readiness` (issue 9): a fresh domain in testing is not
/// ready, and every criterion says why, with a next step; the route needs the token and
/// takes GET only.
async fn readiness_explains_each_criterion(api: Api) {
    let r = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "ready.test", "mx": ["mx.ready.test"], "mode": "testing"})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let path = "/api/v1/domains/ready.test/readiness";
    let r = api.call("GET", path, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (&r.body["domain"], &r.body["mode"], &r.body["verdict"]),
        (&json!("ready.test"), &json!("testing"), &json!("not-ready"))
    );
    let codes: Vec<&str> = r.body["criteria"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["code"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        codes,
        [
            "days-in-testing",
            "sending-organizations",
            "success-rate",
            "blocking-failures",
            "mx-coverage",
            "policy-fetches",
            "tlsrpt-record"
        ]
    );
    let first = &r.body["criteria"][0];
    assert_eq!(first["passed"], json!(false), "{first}");
    assert!(
        first["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("0 days (at least 30 needed)")),
        "{first}"
    );
    assert_eq!(r.body["next_step"], first["next_step"]);
    let mx = &r.body["criteria"][4];
    assert_eq!(mx["next_step"], json!("run a check of the domain"), "{mx}");

    let r = api.call("POST", path, None).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")), "{r:?}");
    let r = send(api.addr, "GET", path, &[], b"").await;
    assert_eq!(r.status, 401, "{r:?}");
    let r = api
        .call("GET", "/api/v1/domains/unknown.test/readiness", None)
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    api.shutdown().await;
}

async fn health_follows_the_store(api: Api) {
    let r = send(api.addr, "GET", "/api/v1/health", &[], b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "ok");
    let r = send(api.addr, "POST", "/api/v1/health", &[], b"").await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    api.service.store().close().await;
    let r = send(api.addr, "GET", "/api/v1/health", &[], b"").await;
    assert_eq!(r.status, 503, "a closed store is not healthy: {r:?}");
    api.shutdown().await;
}

// ---- the harness ----

struct World {
    lab: RunningLab,
    _dir: tempfile::TempDir,
}

async fn lab() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario: Scenario = SCENARIO.parse().expect("scenario");
    let mut opts = LabOptions::new(dir.path(), time::OffsetDateTime::now_utc());
    opts.plain_dns = true;
    let lab = Lab::start(&scenario, &opts).await.expect("lab starts");
    World { lab, _dir: dir }
}

fn dns(lab: &RunningLab) -> Dns {
    Dns::new(&DnsConfig {
        server: Some(lab.resolver_addr()),
        timeout: Duration::from_secs(2),
        attempts: 2,
        lookup_timeout: Duration::from_secs(5),
        dnssec: false,
        trust_anchors: None,
    })
    .expect("dns client")
}

fn hosting() -> HostingSection {
    HostingSection {
        zone: Some("sts.provider.test".into()),
        policy_host: Some("mta-sts.provider.test".into()),
        tlsrpt_rua: Some("mailto:tlsrpt@provider.test".into()),
        ..HostingSection::default()
    }
}

async fn run_table(world: &World, mut fresh: impl FnMut() -> String) {
    let mut failed = Vec::new();
    for (name, case) in CASES {
        let store = Store::open(&fresh()).await.expect("open");
        let service = DomainService::new(store, hosting(), Some(dns(&world.lab)));
        let api = start(service).await;
        if let Err(e) = tokio::spawn(case(api)).await {
            failed.push(format!("{name}: {e}"));
        }
    }
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rest_api() {
    let world = lab().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    run_table(&world, || {
        n += 1;
        format!("sqlite://{}", dir.path().join(format!("c{n}.db")).display())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rest_api() {
    let Some(server) = Postgres::start("stsward-server/postgres-api") else {
        return;
    };
    let world = lab().await;
    run_table(&world, || server.create_database()).await;
}

/// `GET /metrics` (issue 9) on both backends: no token needed, on the API's listener and on
/// one of its own that answers nothing else; the numbers are the store's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_no_token_and_have_a_listener_of_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut urls = vec![format!("sqlite://{}", dir.path().join("m.db").display())];
    let pg = Postgres::start("stsward-server/postgres-metrics");
    if let Some(server) = &pg {
        urls.push(server.create_database());
    }
    for url in urls {
        metrics_on(&url).await;
    }
}

async fn metrics_on(url: &str) {
    use stsward_server::config::MetricsSection;
    use stsward_server::intake::{Channel, ReportSink, StoreSink, Submission, SubmissionKind};
    let store = Store::open(url).await.expect("open");
    let service = DomainService::new(store.clone(), hosting(), None);
    let t = service.default_tenant(now()).await.expect("tenant");
    let add = AddDomain {
        domain: "metrics.test".into(),
        mx: Some(MxInput::Patterns(vec!["mx.metrics.test".into()])),
        ..AddDomain::default()
    };
    service.add(t, &add, "test", now()).await.expect("add");
    let day = now() / 86_400 * 86_400 - 86_400;
    let date = |at: i64| {
        time::OffsetDateTime::from_unix_timestamp(at)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let report = format!(
        r#"{{"organization-name":"Org","date-range":{{"start-datetime":"{}","end-datetime":"{}"}},"contact-info":"a@org.example","report-id":"m1","policies":[{{"policy":{{"policy-type":"sts","policy-domain":"metrics.test"}},"summary":{{"total-successful-session-count":30,"total-failure-session-count":2}},"failure-details":[{{"result-type":"certificate-expired","receiving-mx-hostname":"mx.metrics.test","failed-session-count":2}}]}}]}}"#,
        date(day),
        date(day + 86_399)
    );
    let outcome = StoreSink::new(store.clone())
        .submit(Submission {
            channel: Channel::Https,
            kind: SubmissionKind::Json,
            raw: report.into_bytes().into(),
            received_at: now(),
            peer: None,
            origin: "metrics test".into(),
            require_dkim: false,
        })
        .await
        .expect("stored");
    assert!(format!("{outcome:?}").starts_with("Stored"), "{outcome:?}");
    let run = stsward_store::NewCheckRun {
        started_at: now() - 5,
        finished_at: now(),
        verdict: "error".into(),
        findings: "[]".into(),
    };
    store
        .check_run_add(t, "metrics.test", &run, 10)
        .await
        .expect("run");

    let section = MetricsSection {
        listen: vec!["127.0.0.1:0".parse().expect("addr")],
        cache_seconds: 0,
        ..MetricsSection::default()
    };
    let server = ApiServer::bind(&["127.0.0.1:0".parse().expect("addr")], limits())
        .expect("bind")
        .with_metrics(section)
        .expect("metrics listener");
    let (addr, own) = (server.addrs()[0], server.metrics_addrs()[0]);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(service.clone(), token(), async {
        let _ = stopped.await;
    }));
    let api = Api {
        addr,
        service,
        stop: Some(stop),
        task,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while send(addr, "GET", "/api/v1/health", &[], b"").await.status != 200 {
        assert!(Instant::now() < deadline, "the API did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for at in [addr, own] {
        let r = send(at, "GET", "/metrics", &[], b"").await;
        assert_eq!(r.status, 200, "{at} on {url}: {r:?}");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/openmetrics-text")),
            "{r:?}"
        );
        let text = r.body.as_str().unwrap_or_default();
        for line in [
            "stsward_domain_info{tenant=\"default\",domain=\"metrics.test\",mode=\"testing\",state=\"active\"} 1",
            "stsward_reported_sessions{domain=\"metrics.test\",result=\"successful\"} 30",
            "stsward_reported_sessions{domain=\"metrics.test\",result=\"failed\"} 2",
            "stsward_reported_failures{domain=\"metrics.test\",result_type=\"certificate-expired\"} 2",
            "stsward_check_verdict{domain=\"metrics.test\",verdict=\"error\"} 1",
            "stsward_reports_stored_total{channel=\"https\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{url}: no {line:?} in\n{text}"
            );
        }
        let r = send(at, "POST", "/metrics", &[], b"").await;
        assert_eq!((r.status, r.header("allow")), (405, Some("GET")), "{r:?}");
    }
    // The metrics listener answers nothing else, even with the token.
    let r = send(
        own,
        "GET",
        "/api/v1/domains",
        &[format!("Authorization: Bearer {TOKEN}")],
        b"",
    )
    .await;
    assert_eq!((r.status, r.code()), (404, Some("no_route")), "{r:?}");
    api.shutdown().await;
    store.close().await;
}

/// schemathesis (PyPI, pinned in scripts/install-test-deps) fuzzes every operation of the
/// OpenAPI document the server serves, with the token, and must find no 5xx. Bounded in
/// examples and time; loopback only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let Some(st) = stsward_testkit::peer_tool("stsward-server/schemathesis", "st") else {
        return;
    };
    let world = lab().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("st.db").display());
    let store = Store::open(&url).await.expect("open");
    let service = DomainService::new(store, hosting(), Some(dns(&world.lab)));
    let api = start(service).await;
    let r = api
        .call(
            "POST",
            "/api/v1/domains",
            Some(json!({"domain": "hosted.test"})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let doc = api.call("GET", "/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.body.to_string()).expect("write the document");
    let out_file = dir.path().join("st.out");
    let log = std::fs::File::create(&out_file).expect("output file");
    let mut child = std::process::Command::new(&st)
        .arg("run")
        .arg(&file)
        .args(["--url", &format!("http://{}", api.addr)])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--checks", "not_a_server_error"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "10", "--max-time", "60"])
        .args(["--request-timeout", "30", "--workers", "1"])
        .args(["--seed", "8460"])
        .env("NO_COLOR", "1")
        .stdout(log.try_clone().expect("output file"))
        .stderr(log)
        .spawn()
        .expect("schemathesis starts");
    // Polled, so that the server keeps answering on this runtime meanwhile.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("schemathesis did not finish within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let text = std::fs::read_to_string(&out_file).unwrap_or_default();
    eprintln!("{text}");
    assert!(status.success(), "schemathesis found a problem:\n{text}");
    // It really ran the operations (a run that tested nothing also exits 0).
    assert!(text.contains("passed"), "{text}");
    api.shutdown().await;
}

#[tokio::test]
async fn without_a_token_the_api_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::open(&url).await.expect("open");
    let service = DomainService::new(store, hosting(), None);
    let server = ApiServer::bind(&["127.0.0.1:0".parse().expect("addr")], limits()).expect("bind");
    let addr = server.addrs()[0];
    let cfg = ServeConfig::default();
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        server.run(
            service,
            cfg.api_token().expect("no token"),
            std::future::pending(),
        ),
    )
    .await
    .expect("it returns at once")
    .expect_err("no token, no API");
    assert!(matches!(err, ApiStartError::NoToken), "{err}");
    assert!(err.to_string().contains("api.token"), "{err}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

/// With every slot taken by a client that never finishes its head, the next connection waits
/// in the backlog until the slow one is cut off at `header_read_timeout`, then is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_freed_by_the_deadlines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("cap.db").display());
    let store = Store::open(&url).await.expect("open");
    let service = DomainService::new(store, hosting(), None);
    let one = ApiLimits {
        max_connections: 1,
        ..limits()
    };
    let server = ApiServer::bind(&["127.0.0.1:0".parse().expect("addr")], one).expect("bind");
    let addr = server.addrs()[0];
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(service, token(), async {
        let _ = stopped.await;
    }));
    let r = send(addr, "GET", "/api/v1/health", &[], b"").await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\n")
        .await
        .expect("partial head");
    // Let the server accept the slow one first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let r = send(addr, "GET", "/api/v1/health", &[], b"").await;
    let waited = start.elapsed();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        waited >= Duration::from_millis(500),
        "served after {waited:?}: the one slot was not held by the slow client"
    );
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(1), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the slow client was cut off");
    let _ = stop.send(());
    let ran = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("no panic");
    assert!(ran.is_ok(), "{ran:?}");
}
