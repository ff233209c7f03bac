//! Tenants and their API tokens through the REST API, against real parts: a real server on
//! 127.0.0.1 (port 0) over a SQLite file and a throwaway PostgreSQL (crates/stsward-testkit),
//! and a raw HTTP/1.1 client on a TcpStream. Tenant A's token sees only A's domains and
//! tokens, and gets 404 for B's; a revoked token gets 401 (RFC 6750 §3.1 `invalid_token`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stsward_server::api::{ApiLimits, ApiServer, ApiStartError};
use stsward_server::auth::MAX_ACTIVE_TOKENS;
use stsward_server::auth::token::digest_of;
use stsward_server::config::{HostingSection, ServeConfig};
use stsward_server::domains::DomainService;
use stsward_store::Store;
use stsward_testkit::postgres::Postgres;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod api_support;
use api_support::{Reply, send};

/// The configured `[api]` token: the install admin's.
const ADMIN: &str = "install-admin-token-0123456789";

type Case = fn(Api) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const CASES: &[(&str, Case)] = &[
    ("tenant_a_sees_only_its_domains_and_gets_404_for_bs", |a| {
        Box::pin(tenant_a_sees_only_its_domains_and_gets_404_for_bs(a))
    }),
    ("tenant_a_cannot_list_or_revoke_bs_tokens", |a| {
        Box::pin(tenant_a_cannot_list_or_revoke_bs_tokens(a))
    }),
    ("a_revoked_token_gets_401_at_once", |a| {
        Box::pin(a_revoked_token_gets_401_at_once(a))
    }),
    ("tenants_are_for_the_install_admin_only", |a| {
        Box::pin(tenants_are_for_the_install_admin_only(a))
    }),
    ("every_new_route_refuses_a_missing_or_bad_token", |a| {
        Box::pin(every_new_route_refuses_a_missing_or_bad_token(a))
    }),
    ("the_token_is_shown_once_and_last_use_is_noted", |a| {
        Box::pin(the_token_is_shown_once_and_last_use_is_noted(a))
    }),
    ("live_tokens_per_tenant_are_bounded", |a| {
        Box::pin(live_tokens_per_tenant_are_bounded(a))
    }),
    ("bad_input_to_write_routes_is_a_clear_4xx", |a| {
        Box::pin(bad_input_to_write_routes_is_a_clear_4xx(a))
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

    /// One call bearing `token`.
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

    /// Creates tenant `name` with the admin token, and a token for it; the token.
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
        assert_eq!(r.body["name"], name);
        let r = self
            .call(
                ADMIN,
                "POST",
                "/api/v1/tokens",
                Some(json!({ "name": format!("{name} automation"), "tenant": name })),
            )
            .await;
        assert_eq!(r.status, 201, "create token for {name}: {r:?}");
        assert!(r.body["tenant"].is_i64(), "the tenant's id: {r:?}");
        r.body["token"].as_str().expect("the token").to_owned()
    }
}

fn limits() -> ApiLimits {
    ApiLimits {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        ..ApiLimits::default()
    }
}

fn admin_token() -> Option<stsward_server::config::Secret> {
    let cfg: ServeConfig = format!("[api]\ntoken = {ADMIN:?}\n")
        .parse()
        .expect("config");
    cfg.api_token().expect("token")
}

fn hosting() -> HostingSection {
    HostingSection {
        zone: Some("sts.provider.test".into()),
        policy_host: Some("mta-sts.provider.test".into()),
        tlsrpt_rua: Some("mailto:tlsrpt@provider.test".into()),
        ..HostingSection::default()
    }
}

async fn start(service: DomainService) -> Api {
    let server = ApiServer::bind(&["127.0.0.1:0".parse().expect("addr")], limits()).expect("bind");
    let addr = server.addrs()[0];
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(service.clone(), admin_token(), async {
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
        service,
        stop: Some(stop),
        task,
    }
}

fn domain_names(r: &Reply) -> Vec<String> {
    r.body["domains"]
        .as_array()
        .expect("domains")
        .iter()
        .map(|d| d["domain"].as_str().expect("name").to_owned())
        .collect()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---- the cases ----

async fn tenant_a_sees_only_its_domains_and_gets_404_for_bs(api: Api) {
    let a = api.tenant_with_token("alpha").await;
    let b = api.tenant_with_token("beta").await;
    for (token, domain) in [(&a, "alpha.test"), (&b, "beta.test")] {
        let r = api
            .call(
                token,
                "POST",
                "/api/v1/domains",
                Some(json!({ "domain": domain, "mx": [format!("mx.{domain}")] })),
            )
            .await;
        assert_eq!(r.status, 201, "{domain}: {r:?}");
    }
    let r = api.call(&a, "GET", "/api/v1/domains", None).await;
    assert_eq!(domain_names(&r), ["alpha.test"], "{r:?}");
    let r = api.call(&b, "GET", "/api/v1/domains", None).await;
    assert_eq!(domain_names(&r), ["beta.test"], "{r:?}");
    let r = api.call(ADMIN, "GET", "/api/v1/domains", None).await;
    assert_eq!(
        domain_names(&r),
        Vec::<String>::new(),
        "the admin token acts for the default tenant: {r:?}"
    );
    let before = api.call(&b, "GET", "/api/v1/domains/beta.test", None).await;
    assert_eq!(before.status, 200);
    for (method, path, body) in [
        ("GET", "/api/v1/domains/beta.test", None),
        (
            "PATCH",
            "/api/v1/domains/beta.test",
            Some(json!({ "mode": "enforce" })),
        ),
        ("DELETE", "/api/v1/domains/beta.test", None),
        ("POST", "/api/v1/domains/beta.test/sync-mx", None),
        ("GET", "/api/v1/domains/beta.test/records", None),
    ] {
        let r = api.call(&a, method, path, body).await;
        assert_eq!(
            (r.status, r.code()),
            (404, Some("not_found")),
            "A's {method} {path}: {r:?}"
        );
    }
    let after = api.call(&b, "GET", "/api/v1/domains/beta.test", None).await;
    assert_eq!(before.body, after.body, "B's domain did not change");
    api.shutdown().await;
}

async fn tenant_a_cannot_list_or_revoke_bs_tokens(api: Api) {
    let a = api.tenant_with_token("alpha").await;
    let b = api.tenant_with_token("beta").await;
    let r = api
        .call(
            &a,
            "POST",
            "/api/v1/tokens",
            Some(json!({ "name": "second" })),
        )
        .await;
    assert_eq!(
        r.status, 201,
        "a tenant token makes another for its tenant: {r:?}"
    );
    let a_list = api.call(&a, "GET", "/api/v1/tokens", None).await;
    let names: Vec<&str> = a_list.body["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["alpha automation", "second"], "{a_list:?}");
    let b_list = api.call(&b, "GET", "/api/v1/tokens", None).await;
    let b_tokens = b_list.body["tokens"].as_array().expect("tokens");
    assert_eq!(b_tokens.len(), 1, "{b_list:?}");
    let b_id = b_tokens[0]["id"].as_i64().expect("id");
    let r = api
        .call(&a, "DELETE", &format!("/api/v1/tokens/{b_id}"), None)
        .await;
    assert_eq!((r.status, r.code()), (404, Some("not_found")), "{r:?}");
    let r = api
        .call(&a, "GET", "/api/v1/tokens?tenant=beta", None)
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (403, Some("forbidden"), Some("tenant")),
        "a tenant token cannot name another tenant: {r:?}"
    );
    let r = api
        .call(
            &a,
            "POST",
            "/api/v1/tokens",
            Some(json!({ "name": "sneaky", "tenant": "beta" })),
        )
        .await;
    assert_eq!((r.status, r.field()), (403, Some("tenant")), "{r:?}");
    let r = api.call(&b, "GET", "/api/v1/domains", None).await;
    assert_eq!(r.status, 200, "B's token still works: {r:?}");
    let b_again = api.call(&b, "GET", "/api/v1/tokens", None).await;
    assert_eq!(b_again.body, b_list.body, "B's tokens did not change");
    api.shutdown().await;
}

async fn a_revoked_token_gets_401_at_once(api: Api) {
    let a = api.tenant_with_token("alpha").await;
    let r = api.call(&a, "GET", "/api/v1/tokens", None).await;
    let id = r.body["tokens"][0]["id"].as_i64().expect("id");
    let r = api
        .call(&a, "DELETE", &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["revoked_at"].is_i64(), "{r:?}");
    let r = api.call(&a, "GET", "/api/v1/domains", None).await;
    assert_eq!((r.status, r.code()), (401, Some("unauthorized")), "{r:?}");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer")),
        "RFC 6750 §3 challenge: {r:?}"
    );
    let r = api
        .call(ADMIN, "GET", "/api/v1/tokens?tenant=alpha", None)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body["tokens"][0]["revoked_at"].is_i64(),
        "the admin sees it revoked: {r:?}"
    );
    api.shutdown().await;
}

async fn tenants_are_for_the_install_admin_only(api: Api) {
    let a = api.tenant_with_token("alpha").await;
    for (method, body) in [("GET", None), ("POST", Some(json!({ "name": "gamma" })))] {
        let r = api.call(&a, method, "/api/v1/tenants", body).await;
        assert_eq!(
            (r.status, r.code()),
            (403, Some("forbidden")),
            "{method}: {r:?}"
        );
    }
    let r = api.call(ADMIN, "GET", "/api/v1/tenants", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let names: Vec<&str> = r.body["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["alpha", "default"], "gamma was not created: {r:?}");
    let r = api
        .call(
            ADMIN,
            "POST",
            "/api/v1/tenants",
            Some(json!({ "name": "alpha" })),
        )
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (409, Some("tenant_exists"), Some("name")),
        "{r:?}"
    );
    let r = api.call(ADMIN, "GET", "/api/v1/tenants/alpha", None).await;
    assert_eq!(
        (r.status, r.body["name"].as_str()),
        (200, Some("alpha")),
        "{r:?}"
    );
    let r = api.call(ADMIN, "GET", "/api/v1/tenants/gamma", None).await;
    assert_eq!((r.status, r.code()), (404, Some("not_found")), "{r:?}");
    let r = api.call(&a, "GET", "/api/v1/tenants/alpha", None).await;
    assert_eq!(
        (r.status, r.code()),
        (403, Some("forbidden")),
        "even its own: {r:?}"
    );
    let r = api.call(ADMIN, "PUT", "/api/v1/tenants", None).await;
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, POST")),
        "{r:?}"
    );
    api.shutdown().await;
}

async fn every_new_route_refuses_a_missing_or_bad_token(api: Api) {
    let a = api.tenant_with_token("alpha").await;
    // The shape of a stored token, but not one: a store lookup that finds nothing.
    let unknown = format!("stw_{}", "ab".repeat(32));
    let routes = [
        ("GET", "/api/v1/tenants"),
        ("POST", "/api/v1/tenants"),
        ("GET", "/api/v1/tenants/default"),
        ("GET", "/api/v1/tokens"),
        ("POST", "/api/v1/tokens"),
        ("DELETE", "/api/v1/tokens/1"),
        ("GET", "/api/v1/domains"),
    ];
    for (method, path) in routes {
        for (headers, why) in [
            (vec![], "no Authorization"),
            (
                vec![format!("Authorization: Bearer {unknown}")],
                "unknown token",
            ),
            (
                vec![format!("Authorization: Bearer {a}x")],
                "a token and more",
            ),
            (vec![format!("Authorization: Basic {a}")], "Basic"),
        ] {
            let r = send(api.addr, method, path, &headers, b"").await;
            assert_eq!(
                (r.status, r.code()),
                (401, Some("unauthorized")),
                "{method} {path}, {why}: {r:?}"
            );
        }
    }
    let r = api.call(ADMIN, "GET", "/api/v1/tenants", None).await;
    assert_eq!(
        r.body["tenants"].as_array().map(Vec::len),
        Some(2),
        "no tenant was created without a token: {r:?}"
    );
    api.shutdown().await;
}

async fn the_token_is_shown_once_and_last_use_is_noted(api: Api) {
    let r = api
        .call(
            ADMIN,
            "POST",
            "/api/v1/tokens",
            Some(json!({ "name": "mine" })),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let token = r.body["token"].as_str().expect("token").to_owned();
    let prefix = r.body["prefix"].as_str().expect("prefix").to_owned();
    assert!(token.starts_with(&prefix) && prefix.len() < token.len());
    assert!(r.body["last_used_at"].is_null());
    let stored = api
        .service
        .store()
        .api_token_lookup(&digest_of(&token))
        .await
        .expect("lookup")
        .expect("the digest is stored");
    assert_eq!(stored.last_used_at, None);
    let started = now();
    let r = api.call(&token, "GET", "/api/v1/domains", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = api.call(&token, "GET", "/api/v1/tokens", None).await;
    let listed = &r.body["tokens"][0];
    assert!(
        listed.get("token").is_none(),
        "listed without the secret: {r:?}"
    );
    assert!(
        !r.body.to_string().contains(&token),
        "the token appears nowhere in a list: {r:?}"
    );
    let used = listed["last_used_at"]
        .as_i64()
        .expect("last_used_at is set");
    assert!(used >= started - 1 && used <= now() + 1, "{used}");
    api.shutdown().await;
}

async fn bad_input_to_write_routes_is_a_clear_4xx(api: Api) {
    let json_header = vec![
        format!("Authorization: Bearer {ADMIN}"),
        "Content-Type: application/json".to_string(),
    ];
    for path in ["/api/v1/tenants", "/api/v1/tokens"] {
        let r = send(api.addr, "POST", path, &json_header, b"{").await;
        assert_eq!((r.status, r.field()), (400, Some("body")), "{path}: {r:?}");
        let r = send(api.addr, "POST", path, &json_header, b"[]").await;
        assert_eq!((r.status, r.field()), (400, Some("body")), "{path}: {r:?}");
        let r = send(
            api.addr,
            "POST",
            path,
            &json_header,
            br#"{"name":"x","colour":1}"#,
        )
        .await;
        assert_eq!(
            (r.status, r.field()),
            (400, Some("colour")),
            "{path}: {r:?}"
        );
        let r = send(api.addr, "POST", path, &json_header, br#"{"name":7}"#).await;
        assert_eq!((r.status, r.field()), (400, Some("name")), "{path}: {r:?}");
        let r = send(
            api.addr,
            "POST",
            path,
            &[format!("Authorization: Bearer {ADMIN}")],
            br#"{"name":"x"}"#,
        )
        .await;
        assert_eq!(r.status, 415, "{path} needs application/json: {r:?}");
    }
    for (name, why) in [("Upper", "upper case"), ("", "empty"), ("a b", "a space")] {
        let r = api
            .call(
                ADMIN,
                "POST",
                "/api/v1/tenants",
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!((r.status, r.field()), (400, Some("name")), "{why}: {r:?}");
    }
    let r = api
        .call(
            ADMIN,
            "POST",
            "/api/v1/tokens",
            Some(json!({ "name": "x", "tenant": "nobody" })),
        )
        .await;
    assert_eq!((r.status, r.field()), (404, Some("tenant")), "{r:?}");
    for id in ["abc", "0", "-1", "1.5"] {
        let r = api
            .call(ADMIN, "DELETE", &format!("/api/v1/tokens/{id}"), None)
            .await;
        assert_eq!((r.status, r.field()), (400, Some("id")), "{id}: {r:?}");
    }
    let r = api
        .call(ADMIN, "DELETE", "/api/v1/tokens/99999", None)
        .await;
    assert_eq!((r.status, r.code()), (404, Some("not_found")), "{r:?}");
    let r = api.call(ADMIN, "GET", "/api/v1/tokens/1", None).await;
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("DELETE")),
        "{r:?}"
    );
    let r = api
        .call(ADMIN, "GET", "/api/v1/tokens?colour=1", None)
        .await;
    assert_eq!((r.status, r.field()), (400, Some("colour")), "{r:?}");
    api.shutdown().await;
}

async fn live_tokens_per_tenant_are_bounded(api: Api) {
    let a = api.tenant_with_token("alpha").await;
    for i in 1..MAX_ACTIVE_TOKENS {
        let r = api
            .call(
                &a,
                "POST",
                "/api/v1/tokens",
                Some(json!({ "name": format!("t{i}") })),
            )
            .await;
        assert_eq!(r.status, 201, "token {i}: {r:?}");
    }
    let r = api
        .call(
            &a,
            "POST",
            "/api/v1/tokens",
            Some(json!({ "name": "one too many" })),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, Some("too_many_tokens")),
        "{r:?}"
    );
    let r = api.call(&a, "GET", "/api/v1/tokens", None).await;
    let tokens = r.body["tokens"].as_array().expect("tokens");
    assert_eq!(
        tokens.len(),
        MAX_ACTIVE_TOKENS,
        "nothing was stored for the refused one"
    );
    let last = tokens[MAX_ACTIVE_TOKENS - 1]["id"].as_i64().expect("id");
    let r = api
        .call(&a, "DELETE", &format!("/api/v1/tokens/{last}"), None)
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = api
        .call(
            &a,
            "POST",
            "/api/v1/tokens",
            Some(json!({ "name": "after a revoke" })),
        )
        .await;
    assert_eq!(r.status, 201, "a revoked token frees its place: {r:?}");
    let b = api.tenant_with_token("beta").await;
    let r = api
        .call(&b, "POST", "/api/v1/tokens", Some(json!({ "name": "b2" })))
        .await;
    assert_eq!(r.status, 201, "the bound is per tenant: {r:?}");
    api.shutdown().await;
}

// ---- the harness ----

async fn run_table(mut fresh: impl FnMut() -> String) {
    let mut failed = Vec::new();
    for (name, case) in CASES {
        let store = Store::open(&fresh()).await.expect("open");
        let service = DomainService::new(store, hosting(), None);
        let api = start(service).await;
        if let Err(e) = tokio::spawn(case(api)).await {
            failed.push(format!("{name}: {e}"));
        }
    }
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tenants_and_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    run_table(|| {
        n += 1;
        format!("sqlite://{}", dir.path().join(format!("c{n}.db")).display())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tenants_and_tokens() {
    let Some(server) = Postgres::start("stsward-server/postgres-api-tenants") else {
        return;
    };
    run_table(|| server.create_database()).await;
}
