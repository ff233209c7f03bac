//! The dashboard's sessions and CSRF defences over real HTTP on loopback, against a real
//! store (a SQLite file, and a throwaway PostgreSQL from crates/stsward-testkit where it is
//! installed): redirects to the login, the cookie's attributes, the stored digest, expiry and
//! idle time on a moving clock, logout, bad and missing CSRF tokens, a foreign `Origin`,
//! login throttling through the form, and tenant isolation by page.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use stsward_server::api::{ApiLimits, ApiServer, ApiStartError};
use stsward_server::config::{HostingSection, ServeConfig, WebSection};
use stsward_server::domains::DomainService;
use stsward_server::intake::StoreSink;
use stsward_server::serve::Clock;
use stsward_server::web::sessions::digest_of;
use stsward_store::{Store, TenantId};
use stsward_testkit::postgres::Postgres;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod api_support;
mod web_support;
use web_support::{ingest, login_form, two_tenants, user};
const LIFETIME: u64 = 3600;
const IDLE: u64 = 600;
/// The `Host` api_support sends.
const HOST: &str = "api.test";

type Case = fn(Dash) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const CASES: &[(&str, Case)] = &[
    ("pages_redirect_to_login_without_a_session", |d| {
        Box::pin(pages_redirect_to_login_without_a_session(d))
    }),
    (
        "login_sets_a_strict_cookie_and_stores_only_its_digest",
        |d| Box::pin(login_sets_a_strict_cookie_and_stores_only_its_digest(d)),
    ),
    ("sessions_end_when_idle_and_at_expiry", |d| {
        Box::pin(sessions_end_when_idle_and_at_expiry(d))
    }),
    ("bad_tokens_and_foreign_origins_get_403", |d| {
        Box::pin(bad_tokens_and_foreign_origins_get_403(d))
    }),
    ("login_throttling_holds_through_the_form", |d| {
        Box::pin(login_throttling_holds_through_the_form(d))
    }),
    ("a_tenant_user_is_refused_another_tenants_pages", |d| {
        Box::pin(a_tenant_user_is_refused_another_tenants_pages(d))
    }),
    ("tokens_are_shown_once_and_managed_by_admins", |d| {
        Box::pin(tokens_are_shown_once_and_managed_by_admins(d))
    }),
    ("the_quarantine_is_for_install_admins", |d| {
        Box::pin(the_quarantine_is_for_install_admins(d))
    }),
    ("the_overview_is_paged", |d| {
        Box::pin(the_overview_is_paged(d))
    }),
    ("the_readiness_panel_follows_the_clock", |d| {
        Box::pin(the_readiness_panel_follows_the_clock(d))
    }),
    ("a_check_runs_from_the_domain_page", |d| {
        Box::pin(a_check_runs_from_the_domain_page(d))
    }),
    ("alerts_show_on_the_overview_and_the_domain_page", |d| {
        Box::pin(alerts_show_on_the_overview_and_the_domain_page(d))
    }),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_behaviours() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (n, (name, case)) in CASES.iter().enumerate() {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("web{n}.db")).display()
        );
        eprintln!("sqlite: {name}");
        case(Dash::start(&url).await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_behaviours() {
    let Some(server) = Postgres::start("stsward-server/web") else {
        return;
    };
    for (name, case) in CASES {
        eprintln!("postgres: {name}");
        case(Dash::start(&server.create_database()).await).await;
    }
}

/// A dashboard on loopback over a fresh store: tenants `alpha` (domain alpha.test, user
/// ann) and `beta` (beta.test, user bob), and an install admin `root`.
struct Dash {
    addr: SocketAddr,
    service: DomainService,
    url: String,
    store: Store,
    clock: Clock,
    alpha: TenantId,
    beta: TenantId,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ApiStartError>>,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of the hidden `csrf` field of the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("the page has a CSRF field");
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').expect("end of value")].to_owned()
    }
}

fn report(domain: &str, id: &str) -> Vec<u8> {
    format!(
        r#"{{"organization-name":"sender.example","date-range":{{"start-datetime":"2026-01-01T00:00:00Z","end-datetime":"2026-01-01T23:59:59Z"}},"contact-info":"tlsrpt@sender.example","report-id":"{id}","policies":[{{"policy":{{"policy-type":"sts","policy-domain":"{domain}","mx-host":["mx1.{domain}"]}},"summary":{{"total-successful-session-count":10,"total-failure-session-count":0}}}}]}}"#
    )
    .into_bytes()
}

impl Dash {
    async fn start(url: &str) -> Dash {
        let store = Store::open(url).await.expect("open");
        let clock = Clock::system();
        let now = clock.now();
        let service = DomainService::new(
            store.clone(),
            HostingSection {
                zone: Some("sts.provider.test".into()),
                policy_host: Some("mta-sts.provider.test".into()),
                tlsrpt_rua: Some("mailto:tlsrpt@provider.test".into()),
                ..HostingSection::default()
            },
            None,
        );
        let (alpha, beta) = two_tenants(&service, now).await;
        user(&store, None, "root").await;
        let sink = StoreSink::new(store.clone());
        for (domain, id) in [("alpha.test", "r-alpha"), ("beta.test", "r-beta")] {
            ingest(&sink, report(domain, id), now).await;
        }
        let limits = ApiLimits {
            header_read_timeout: Duration::from_secs(2),
            body_read_timeout: Duration::from_secs(2),
            ..ApiLimits::default()
        };
        let web = WebSection {
            enabled: true,
            secure_cookies: false,
            session_lifetime: LIFETIME,
            session_idle: IDLE,
        };
        let server = ApiServer::bind(&["127.0.0.1:0".parse().expect("addr")], limits)
            .expect("bind")
            .with_web(web, clock.clone())
            // Checks from a domain page: a resolver that answers nothing, so a run ends
            // quickly with what it could not learn (no network is reached).
            .with_checks(stsward_server::config::ChecksSection {
                resolver: Some("127.0.0.1:9".parse().expect("addr")),
                timeout: 2,
                ..Default::default()
            });
        let addr = server.addrs()[0];
        let token: ServeConfig = "[api]\ntoken = \"web-test-admin-token\"\n"
            .parse()
            .expect("config");
        let (stop, stopped) = oneshot::channel::<()>();
        let task =
            tokio::spawn(
                server.run(service.clone(), token.api_token().expect("token"), async {
                    let _ = stopped.await;
                }),
            );
        let dash = Dash {
            addr,
            service: service.clone(),
            url: url.to_owned(),
            store,
            clock,
            alpha,
            beta,
            stop: Some(stop),
            task,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while dash.get("/login", None).await.status != 200 {
            assert!(Instant::now() < deadline, "the dashboard did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        dash
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

    async fn request(&self, method: &str, path: &str, headers: &[String], body: &str) -> Reply {
        let mut headers = headers.to_vec();
        if method == "POST" {
            headers.push("Content-Type: application/x-www-form-urlencoded".into());
        }
        let raw = api_support::send_raw(self.addr, method, path, &headers, body.as_bytes()).await;
        let (status, headers, body) = api_support::split_reply(&raw);
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let headers: Vec<String> = cookie
            .map(|c| vec![format!("Cookie: stsward_session={c}")])
            .unwrap_or_default();
        self.request("GET", path, &headers, "").await
    }

    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        body: &str,
    ) -> Reply {
        let mut headers = Vec::new();
        if let Some(c) = cookie {
            headers.push(format!("Cookie: stsward_session={c}"));
        }
        if let Some(o) = origin {
            headers.push(format!("Origin: {o}"));
        }
        self.request("POST", path, &headers, body).await
    }

    /// `GET /api/v1/domains` with a bearer token.
    async fn api_domains(&self, token: &str) -> Reply {
        let auth = format!("Authorization: Bearer {token}");
        self.request("GET", "/api/v1/domains", &[auth], "").await
    }

    /// A POST whose form holds only the CSRF token, from this site.
    async fn post_csrf(&self, path: &str, cookie: &str, csrf: &str) -> Reply {
        self.post(path, Some(cookie), None, &format!("csrf={csrf}"))
            .await
    }

    /// Logs `name` in; the session id from the cookie.
    async fn login(&self, name: &str) -> String {
        let r = self
            .post(
                "/login",
                None,
                Some(&format!("http://{HOST}")),
                &login_form(name),
            )
            .await;
        assert_eq!(r.status, 303, "login of {name}: {r:?}");
        assert_eq!(r.header("location"), Some("/"));
        let cookie = r.header("set-cookie").expect("a cookie");
        let id = cookie
            .strip_prefix("stsward_session=")
            .and_then(|c| c.split(';').next())
            .expect("the session cookie");
        id.to_owned()
    }
}

async fn pages_redirect_to_login_without_a_session(d: Dash) {
    for path in [
        "/",
        "/reports",
        "/domains/alpha.test",
        "/reports/1/raw",
        "/nowhere",
    ] {
        let r = d.get(path, None).await;
        assert_eq!(r.status, 303, "{path}: {r:?}");
        assert_eq!(r.header("location"), Some("/login"), "{path}");
    }
    let r = d.get("/", Some(&"0".repeat(64))).await;
    assert_eq!(r.status, 303, "an unknown session id is no session");
    let r = d.get("/assets/dashboard.css", None).await;
    assert_eq!(r.status, 200, "assets need no session");
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/css"))
    );
    let r = d.get("/assets/uplot-1.6.32.min.js", None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("uPlot"));
    let r = d.get("/login", None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-security-policy")
            .is_some_and(|c| c.contains("script-src 'self'"))
    );
    let r = d.request("GET", "/api/v1/domains", &[], "").await;
    assert_eq!(r.status, 401, "the REST API keeps its own auth: {r:?}");
    d.shutdown().await;
}

async fn login_sets_a_strict_cookie_and_stores_only_its_digest(d: Dash) {
    let r = d.post("/login", None, None, &login_form("ann")).await;
    assert_eq!(r.status, 303, "{r:?}");
    let cookie = r.header("set-cookie").expect("cookie").to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "secure_cookies is off in this lab: {cookie}"
    );
    let id = d.login("ann").await;
    assert!(
        d.store
            .web_session_lookup(&digest_of(&id))
            .await
            .expect("lookup")
            .is_some(),
        "the store finds the session by the digest of its id"
    );
    if let Some(path) = d.url.strip_prefix("sqlite://") {
        for file in [path.to_owned(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains(&id), "{file} holds the session id itself");
            }
        }
    }
    let page = d.get("/", Some(&id)).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains("alpha.test"),
        "the overview lists the tenant's domain"
    );
    let csrf = page.csrf();
    let r = d.post_csrf("/logout", &id, &csrf).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    assert!(
        d.store
            .web_session_lookup(&digest_of(&id))
            .await
            .expect("lookup")
            .is_none(),
        "logout deletes the session"
    );
    let r = d.get("/", Some(&id)).await;
    assert_eq!(r.status, 303, "the old cookie is no session");
    d.shutdown().await;
}

async fn sessions_end_when_idle_and_at_expiry(d: Dash) {
    let id = d.login("ann").await;
    assert_eq!(d.get("/", Some(&id)).await.status, 200);
    d.clock.advance(Duration::from_secs(IDLE + 1));
    let r = d.get("/", Some(&id)).await;
    assert_eq!(r.status, 303, "idle past session_idle: {r:?}");
    assert!(
        d.store
            .web_session_lookup(&digest_of(&id))
            .await
            .expect("lookup")
            .is_none()
    );

    let id = d.login("ann").await;
    // Busy all along (a request every half idle time), yet the lifetime ends it.
    let mut busy = 0;
    while busy + IDLE / 2 < LIFETIME {
        d.clock.advance(Duration::from_secs(IDLE / 2));
        busy += IDLE / 2;
        assert_eq!(d.get("/", Some(&id)).await.status, 200, "busy at +{busy} s");
    }
    d.clock.advance(Duration::from_secs(LIFETIME - busy));
    let r = d.get("/", Some(&id)).await;
    assert_eq!(r.status, 303, "past session_lifetime: {r:?}");
    d.shutdown().await;
}

async fn bad_tokens_and_foreign_origins_get_403(d: Dash) {
    let id = d.login("ann").await;
    let page = d.get("/domains/alpha.test", Some(&id)).await;
    assert_eq!(page.status, 200, "{page:?}");
    let csrf = page.csrf();
    let cases: &[(&str, Option<&str>, String, &str)] = &[
        ("/logout", None, String::new(), "no token"),
        ("/logout", None, "csrf=".into(), "an empty token"),
        (
            "/logout",
            None,
            format!("csrf={}", "0".repeat(64)),
            "another token",
        ),
        (
            "/logout",
            Some("http://evil.test"),
            format!("csrf={csrf}"),
            "a foreign origin",
        ),
        (
            "/logout",
            Some("null"),
            format!("csrf={csrf}"),
            "an opaque origin",
        ),
        (
            "/domains/alpha.test/mode",
            None,
            "mode=enforce&tenant=alpha".into(),
            "a mode change without a token",
        ),
        (
            "/domains/alpha.test/mode",
            Some("https://dash.test.evil.test"),
            format!("csrf={csrf}&mode=enforce"),
            "a mode change from another origin",
        ),
    ];
    for (path, origin, body, why) in cases {
        let r = d.post(path, Some(&id), *origin, body).await;
        assert_eq!(r.status, 403, "{why}: {r:?}");
    }
    let r = d
        .post("/login", None, Some("http://evil.test"), &login_form("ann"))
        .await;
    assert_eq!(r.status, 403, "a login from another origin: {r:?}");
    assert_eq!(
        d.get("/", Some(&id)).await.status,
        200,
        "the session is still alive"
    );
    let page = d.get("/domains/alpha.test", Some(&id)).await;
    assert!(
        page.body.contains(">testing<"),
        "no refused POST changed the mode"
    );
    // The same change with the token and this site's origin goes through.
    let r = d
        .post(
            "/domains/alpha.test/mode",
            Some(&id),
            Some(&format!("http://{HOST}")),
            &format!("csrf={csrf}&mode=enforce&tenant=alpha"),
        )
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let page = d.get("/domains/alpha.test", Some(&id)).await;
    assert!(
        page.body.contains("id=\"mode\">enforce<"),
        "the mode changed"
    );
    d.shutdown().await;
}

async fn login_throttling_holds_through_the_form(d: Dash) {
    for n in 1..=5 {
        let r = d
            .post("/login", None, None, "user=ann&password=wrong+password")
            .await;
        assert_eq!(r.status, 401, "failure {n}: {r:?}");
        assert!(r.header("set-cookie").is_none());
        assert!(r.body.contains("login-error"));
    }
    let r = d.post("/login", None, None, &login_form("ann")).await;
    assert_eq!(
        r.status, 429,
        "the right password is refused while throttled: {r:?}"
    );
    assert!(r.header("retry-after").is_some());
    assert!(r.header("set-cookie").is_none());
    // Another user from another address is not held up... but this test has one address,
    // so bob still logs in (the per-address limit is higher).
    let _ = d.login("bob").await;
    d.shutdown().await;
}

async fn a_tenant_user_is_refused_another_tenants_pages(d: Dash) {
    // A failure detail for each tenant's domain: each page shows its own only.
    let sink = StoreSink::new(d.store.clone());
    for (domain, id, ip) in [
        ("alpha.test", "f-alpha", "192.0.2.1"),
        ("beta.test", "f-beta", "192.0.2.2"),
    ] {
        let day = d.clock.now().div_euclid(86_400) * 86_400 - 86_400;
        let raw = String::from_utf8(report(domain, id))
            .expect("utf-8")
            .replace("2026-01-01T00:00:00Z", &rfc3339(day))
            .replace("2026-01-01T23:59:59Z", &rfc3339(day + 86_399))
            .replace(
            r#""total-failure-session-count":0}"#,
            &format!(
                r#""total-failure-session-count":2}},"failure-details":[{{"result-type":"starttls-not-supported","sending-mta-ip":"{ip}","receiving-mx-hostname":"mx1.{domain}","failed-session-count":2}}]"#
            ),
        );
        ingest(&sink, raw.into_bytes(), d.clock.now()).await;
    }
    let ann = d.login("ann").await;
    let page = d.get("/domains/alpha.test", Some(&ann)).await;
    let details = &page.body[page.body.find("id=\"failures-table\"").expect("table")..];
    assert!(
        details.contains("192.0.2.1") && !details.contains("192.0.2.2"),
        "{details}"
    );
    let overview = d.get("/", Some(&ann)).await;
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("alpha.test") && !overview.body.contains("beta.test"));
    for path in [
        "/domains/beta.test",
        "/domains/beta.test/policy",
        "/domains/beta.test?tenant=beta",
        "/domains/alpha.test?tenant=beta",
    ] {
        let r = d.get(path, Some(&ann)).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
    }
    let reports = d.get("/reports", Some(&ann)).await;
    assert!(reports.body.contains("r-alpha") && !reports.body.contains("r-beta"));
    let beta_id = d
        .store
        .reports_list(&stsward_store::ReportListQuery {
            scope: stsward_store::ReportScope::Tenant(d.beta),
            domain: None,
            organization: None,
            dkim: None,
            since: None,
            until: None,
            limit: 10,
        })
        .await
        .expect("list")
        .into_iter()
        .find(|r| r.report_id == "r-beta")
        .expect("r-beta is stored")
        .id;
    let r = d.get(&format!("/reports/{beta_id}/raw"), Some(&ann)).await;
    assert_eq!(r.status, 404, "another tenant's raw report: {r:?}");
    let csrf = overview.csrf();
    let r = d
        .post(
            "/domains/beta.test/mode",
            Some(&ann),
            None,
            &format!("csrf={csrf}&mode=enforce"),
        )
        .await;
    assert_eq!(r.status, 404, "another tenant's mode: {r:?}");
    let r = d
        .post(
            "/domains/beta.test/policy",
            Some(&ann),
            None,
            &format!(
                "csrf={csrf}&action=save&text=version%3A+STSv1%0Amode%3A+none%0Amax_age%3A+86400%0A"
            ),
        )
        .await;
    assert_eq!(r.status, 404, "another tenant's policy: {r:?}");
    let r = d
        .post(
            "/domains/alpha.test/policy",
            Some(&ann),
            None,
            "action=save&text=version%3A+STSv1%0Amode%3A+none%0Amax_age%3A+86400%0A",
        )
        .await;
    assert_eq!(r.status, 403, "an editor save without a token: {r:?}");
    let r = d.post_csrf("/domains/beta.test/sync-mx", &ann, &csrf).await;
    assert_eq!(r.status, 404, "another tenant's MX sync: {r:?}");
    let r = d
        .post_csrf("/domains/alpha.test/sync-mx", &ann, &csrf)
        .await;
    assert_eq!(r.status, 503, "this dashboard has no DNS client: {r:?}");
    let add = |tenant: &str, domain: &str| {
        format!("csrf={csrf}&domain={domain}&mx=mx1.{domain}&mode=testing&tenant={tenant}")
    };
    let r = d
        .post("/domains", Some(&ann), None, &add("beta", "gamma.test"))
        .await;
    assert_eq!(r.status, 404, "adding for another tenant: {r:?}");
    let r = d
        .post("/domains", Some(&ann), None, &add("alpha", "beta.test"))
        .await;
    assert_eq!(r.status, 409, "another tenant's domain is taken: {r:?}");
    let r = d
        .post("/domains", Some(&ann), None, &add("alpha", "gamma.test"))
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(r.header("location"), Some("/domains/gamma.test"));
    let root = d.login("root").await;
    let all = d.get("/", Some(&root)).await;
    assert!(all.body.contains("alpha.test") && all.body.contains("beta.test"));
    let beta = d.get("/domains/beta.test?tenant=beta", Some(&root)).await;
    assert_eq!(beta.status, 200);
    assert!(
        beta.body.contains("id=\"mode\">testing<"),
        "bob's domain kept its mode"
    );
    let raw = d
        .get(&format!("/reports/{beta_id}/raw?tenant=beta"), Some(&root))
        .await;
    assert_eq!(raw.status, 200);
    assert!(raw.body.contains("r-beta"));
    let _ = d.alpha;
    d.shutdown().await;
}

/// Whether the domain page shows the readiness criterion `code` as passed.
fn criterion_passed(page: &Reply, code: &str) -> bool {
    let marker = format!("data-code=\"{code}\"");
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("{code} on the page"));
    let head = &page.body[..at];
    let open = head
        .rfind("<li class=\"criterion ")
        .expect("the criterion's item");
    head[open..].contains("criterion pass")
}

async fn the_readiness_panel_follows_the_clock(d: Dash) {
    let ann = d.login("ann").await;
    let page = d.get("/domains/alpha.test", Some(&ann)).await;
    assert_eq!(page.status, 200);
    assert!(!criterion_passed(&page, "days-in-testing"), "a new domain");
    assert!(page.body.contains("id=\"verdict\">not-ready<"));
    // 31 days on, the domain has been in testing long enough. The session has idled out
    // meanwhile, so the page asks for a new login first.
    d.clock.advance(Duration::from_secs(31 * 86_400));
    assert_eq!(d.get("/domains/alpha.test", Some(&ann)).await.status, 303);
    let ann = d.login("ann").await;
    let page = d.get("/domains/alpha.test", Some(&ann)).await;
    assert!(
        criterion_passed(&page, "days-in-testing"),
        "31 days in testing"
    );
    // The report of day one has left the 14-day success window: no sessions to judge.
    assert!(!criterion_passed(&page, "success-rate"));
    let sink = StoreSink::new(d.store.clone());
    let now = d.clock.now();
    let day = now.div_euclid(86_400) * 86_400 - 86_400;
    let fresh = String::from_utf8(report("alpha.test", "r-fresh"))
        .expect("utf-8")
        .replace("2026-01-01T00:00:00Z", &rfc3339(day))
        .replace("2026-01-01T23:59:59Z", &rfc3339(day + 86_399));
    ingest(&sink, fresh.into_bytes(), now).await;
    let page = d.get("/domains/alpha.test", Some(&ann)).await;
    assert!(
        criterion_passed(&page, "success-rate"),
        "a fresh report, all successful"
    );
    d.shutdown().await;
}

/// "Run a check now" on a domain page: a run is stored and heads the check history; without
/// the CSRF token it is refused, and another tenant's domain is not found.
async fn a_check_runs_from_the_domain_page(d: Dash) {
    let ann = d.login("ann").await;
    let page = d.get("/domains/alpha.test", Some(&ann)).await;
    assert!(page.body.contains("id=\"run-check\""), "{}", page.body);
    assert!(page.body.contains("No checks yet."));
    let csrf = page.csrf();
    let r = d
        .post("/domains/alpha.test/checks", Some(&ann), None, "csrf=wrong")
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = d.post_csrf("/domains/beta.test/checks", &ann, &csrf).await;
    assert_eq!(r.status, 404, "another tenant's domain: {r:?}");
    let r = d.post_csrf("/domains/alpha.test/checks", &ann, &csrf).await;
    assert_eq!(r.status, 303, "{r:?}");
    assert!(
        r.header("location")
            .is_some_and(|l| l.starts_with("/domains/alpha.test") && l.ends_with("#checks")),
        "{r:?}"
    );
    let runs = d
        .store
        .check_run_list(d.alpha, "alpha.test", 10)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1, "{runs:?}");
    let page = d.get("/domains/alpha.test", Some(&ann)).await;
    assert!(!page.body.contains("No checks yet."), "{}", page.body);
    assert!(
        page.body.contains(&format!(
            "verdict-{}\">{}<",
            runs[0].verdict, runs[0].verdict
        )),
        "{}",
        page.body
    );
    assert!(
        d.store
            .check_run_list(d.beta, "beta.test", 10)
            .await
            .expect("runs")
            .is_empty()
    );
    d.shutdown().await;
}

/// Alerts (docs/alerts.md) in the dashboard: the overview counts a domain's open alerts, and
/// its page lists them, open first, then resolved ones.
async fn alerts_show_on_the_overview_and_the_domain_page(d: Dash) {
    let ann = d.login("ann").await;
    let page = d.get("/", Some(&ann)).await;
    assert!(
        page.body.contains("class=\"open-alerts\">0<"),
        "{}",
        page.body
    );
    let domain = d
        .store
        .hosted_domain_get(d.alpha, "alpha.test")
        .await
        .expect("read")
        .expect("hosted")
        .id;
    let cause = |rule: &str, key: &str| stsward_store::OpenCause {
        rule: rule.into(),
        key: key.into(),
        summary: format!("{rule} because of {key}"),
    };
    let now = d.clock.now();
    let rules = ["cert-expiring", "verdict-worse"];
    let open = [
        cause("cert-expiring", "mx:mx1.alpha.test"),
        cause("verdict-worse", "v"),
    ];
    d.store
        .alerts_sync(domain, &rules, &open, &[], now)
        .await
        .expect("open two");
    // The verdict came back: that alert resolves, the certificate one stays open.
    d.store
        .alerts_sync(domain, &rules, &open[..1], &[], now + 60)
        .await
        .expect("resolve one");
    let page = d.get("/", Some(&ann)).await;
    assert!(
        page.body
            .contains("<span class=\"verdict verdict-error\">1</span>"),
        "{}",
        page.body
    );
    let page = d.get("/domains/alpha.test", Some(&ann)).await;
    let table = page
        .body
        .split("id=\"alert-table\"")
        .nth(1)
        .unwrap_or_default();
    let open_at = table.find("cert-expiring because of mx:mx1.alpha.test");
    let resolved_at = table.find("verdict-worse because of v");
    assert!(
        open_at.is_some() && resolved_at.is_some() && open_at < resolved_at,
        "open first, then resolved: {table}"
    );
    assert_eq!(table.matches("alert-row open").count(), 1, "{table}");
    // Another tenant's user sees none of it.
    let bob = d.login("bob").await;
    let page = d.get("/", Some(&bob)).await;
    assert!(!page.body.contains("alpha.test"), "{}", page.body);
    d.shutdown().await;
}

fn rfc3339(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

async fn tokens_are_shown_once_and_managed_by_admins(d: Dash) {
    d.store
        .user_create(&stsward_store::NewUser {
            tenant: Some(d.alpha),
            name: "ada".into(),
            password_hash: stsward_server::auth::password::hash(web_support::PASSWORD)
                .expect("hash"),
            role: stsward_store::Role::Admin,
            created_at: 1_700_000_000,
        })
        .await
        .expect("tenant admin");
    let ann = d.login("ann").await;
    let list = d.get("/tokens", Some(&ann)).await;
    assert_eq!(list.status, 200);
    assert!(!list.body.contains("token-form"), "a member gets no form");
    let r = d
        .post(
            "/tokens",
            Some(&ann),
            None,
            &format!("csrf={}&name=ci", list.csrf()),
        )
        .await;
    assert_eq!(r.status, 403, "a member issues nothing: {r:?}");

    let ada = d.login("ada").await;
    let csrf = d.get("/tokens", Some(&ada)).await.csrf();
    let r = d
        .post("/tokens", Some(&ada), None, &format!("csrf={csrf}&name=ci"))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let at = r
        .body
        .find("id=\"new-token\">")
        .expect("the token is shown")
        + 15;
    let token = r.body[at..at + r.body[at..].find('<').expect("end")].to_owned();
    assert!(token.starts_with("stw_"), "{token}");
    let again = d.get("/tokens", Some(&ada)).await;
    assert!(!again.body.contains(&token), "the token is shown once only");
    let api = d.api_domains(&token).await;
    assert_eq!(api.status, 200, "{api:?}");
    assert!(api.body.contains("alpha.test") && !api.body.contains("beta.test"));
    let id = d.store.api_token_list(d.alpha).await.expect("list")[0].id;
    let beta_token = stsward_server::auth::issue(&d.store, d.beta, "name", "theirs", d.clock.now())
        .await
        .expect("beta's token")
        .0
        .id;
    let r = d
        .post_csrf(&format!("/tokens/{beta_token}/revoke"), &ada, &csrf)
        .await;
    assert_eq!(r.status, 404, "another tenant's token: {r:?}");
    let r = d
        .post_csrf(&format!("/tokens/{id}/revoke"), &ada, &csrf)
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let api = d.api_domains(&token).await;
    assert_eq!(api.status, 401, "a revoked token: {api:?}");
    d.shutdown().await;
}

async fn the_quarantine_is_for_install_admins(d: Dash) {
    use stsward_server::intake::{Channel, Outcome, ReportSink, Submission, SubmissionKind};
    let outcome = StoreSink::new(d.store.clone())
        .submit(Submission {
            channel: Channel::File,
            kind: SubmissionKind::Json,
            raw: b"{\"organization-name\": <not json>".to_vec().into(),
            received_at: d.clock.now(),
            peer: None,
            origin: "web test <garbage>".into(),
            require_dkim: false,
        })
        .await
        .expect("submit");
    assert!(
        matches!(outcome, Outcome::Quarantined { .. }),
        "{outcome:?}"
    );
    let ann = d.login("ann").await;
    assert_eq!(
        d.get("/quarantine", Some(&ann)).await.status,
        404,
        "a tenant's user"
    );
    let root = d.login("root").await;
    let page = d.get("/quarantine", Some(&root)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("quarantine-row"), "the entry is listed");
    assert!(
        page.body.contains("web test &#60;garbage&#62;"),
        "its origin, escaped"
    );
    let id = d
        .store
        .quarantine_list(false, None, 10)
        .await
        .expect("list")[0]
        .id;
    let csrf = page.csrf();
    let r = d
        .post(
            &format!("/quarantine/{id}/release"),
            Some(&ann),
            None,
            &format!("csrf={}", d.get("/", Some(&ann)).await.csrf()),
        )
        .await;
    assert_eq!(r.status, 404, "a tenant's user releases nothing: {r:?}");
    let r = d
        .post_csrf(&format!("/quarantine/{id}/release"), &root, &csrf)
        .await;
    assert_eq!(r.status, 303, "{r:?}");
    let back = d
        .get(r.header("location").expect("location"), Some(&root))
        .await;
    assert!(back.body.contains("still refused"), "garbage stays refused");
    d.shutdown().await;
}

/// The domains an overview page lists, and its link to the next page.
fn overview_page(page: &Reply) -> (usize, Option<String>) {
    let rows = page.body.matches("class=\"domain-row\"").count();
    let next = page.body.find("id=\"next-page\"").map(|_| {
        let at = page.body.find("href=\"/?after=").expect("the next link") + 6;
        page.body[at..at + page.body[at..].find('"').expect("end")].replace("&#38;", "&")
    });
    (rows, next)
}

async fn the_overview_is_paged(d: Dash) {
    let now = d.clock.now();
    for n in 0..50 {
        let domain = format!("d{n:02}.example");
        let add = stsward_server::domains::AddDomain {
            domain: domain.clone(),
            mode: None,
            mx: Some(stsward_server::domains::MxInput::Patterns(vec![format!(
                "mx.{domain}"
            )])),
            max_age: None,
            follow_mx: false,
        };
        d.service
            .add(d.alpha, &add, "test", now)
            .await
            .expect("add");
    }
    let ann = d.login("ann").await;
    let first = d.get("/", Some(&ann)).await;
    let (rows, next) = overview_page(&first);
    assert_eq!(rows, 50, "one page");
    let next = next.expect("a next page");
    assert_eq!(next, "/?after=alpha/d48.example");
    let (rows, next) = overview_page(&d.get(&next, Some(&ann)).await);
    assert_eq!((rows, next), (1, None), "d49.example is left");
    // An install admin pages over every tenant in turn.
    let root = d.login("root").await;
    let (rows, next) = overview_page(&d.get("/", Some(&root)).await);
    assert_eq!(rows, 50);
    let second = d.get(&next.expect("a next page"), Some(&root)).await;
    let (rows, next) = overview_page(&second);
    assert_eq!((rows, next), (2, None), "d49.example of alpha, beta.test");
    assert!(second.body.contains("beta.test"));
    d.shutdown().await;
}
