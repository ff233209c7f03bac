//! The dashboard in a real browser: `stsward serve` in-process on loopback with a temporary
//! SQLite store, users in two tenants, TLS-RPT reports (RFC 8460 §4) ingested through the
//! intake, and Debian's Chromium driven by playwright-core (`tests/browser/dashboard.mjs`):
//! login, overview, a domain's records, the charts' data points, a raw report, another
//! tenant's domain refused, logout. Screenshots at 1280 and 390 px go to
//! `target/browser-artifacts/`.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/browser` (all from
//! `scripts/install-test-deps`). Without them the test fails under `CI=true` and is skipped,
//! saying why, elsewhere.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use stsward_server::config::ServeConfig;
use stsward_server::intake::StoreSink;
use stsward_server::serve::{Clock, Runtime, ServeOptions};
use stsward_store::{FetchRow, NewCheckRun, Store, TenantId};
use tokio::sync::oneshot;

mod serve_support;
mod web_support;
use web_support::{PASSWORD, ingest, two_tenants};

const DAY: i64 = 86_400;
/// The corpus's policy domain with the most distinct reports: hosted, its reports imported,
/// and its charts read over the window below.
const CORPUS_DOMAIN: &str = "example.com";
/// The charts' window for the corpus (its example.com reports run from 2020 to 2026).
const CORPUS_FROM: &str = "2017-01-01";
const CORPUS_TO: &str = "2026-12-31";

/// Imports every TLS-RPT sample of the corpus (JSON, gzip and e-mail) through the intake,
/// as `stsward reports import` would, and returns the sessions the files state for
/// [`CORPUS_DOMAIN`] (successful, failed), counted independently of the store:
/// stsward-mail extracts, stsward-proto parses, a repeated (organisation, report id) counts
/// once. `None` when the corpus is absent (skipped visibly outside CI).
async fn import_the_corpus(sink: &StoreSink, now: i64) -> Option<(u64, u64)> {
    use stsward_mail::{Limits, extract_from_file, extract_from_message};
    use stsward_server::intake::{Channel, ReportSink, Submission, SubmissionKind};
    let root = stsward_testkit::corpus("stsward-server/web_browser_corpus")?.join("tlsrpt");
    let mut seen = std::collections::HashSet::new();
    let (mut successful, mut failed) = (0u64, 0u64);
    for sub in ["json", "gz", "eml"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(sub))
            .expect("corpus dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for path in files {
            let bytes = std::fs::read(&path).expect("read");
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let kind = if sub == "eml" {
                SubmissionKind::Message
            } else {
                SubmissionKind::File { name: name.clone() }
            };
            sink.submit(Submission {
                channel: Channel::File,
                kind,
                raw: bytes.clone().into(),
                received_at: now,
                peer: None,
                origin: name.clone(),
                require_dkim: false,
            })
            .await
            .expect("the intake answers");
            let extracted = if sub == "eml" {
                extract_from_message(&bytes, &Limits::default())
            } else {
                extract_from_file(&name, &bytes, &Limits::default())
            };
            let Ok(extracted) = extracted else { continue };
            for part in extracted.reports {
                let Ok(parsed) = stsward_proto::tlsrpt::parse_report(&part.json) else {
                    continue;
                };
                let r = parsed.report;
                let key = stsward_store::reports::dedup_key(&r.organization_name, &r.report_id)
                    .expect("key");
                if !seen.insert(key) {
                    continue;
                }
                for p in r
                    .policies
                    .iter()
                    .filter(|p| p.policy.policy_domain.as_deref() == Some(CORPUS_DOMAIN))
                {
                    successful += p.summary.total_successful_session_count;
                    failed += p.summary.failure_count(&p.failure_details).sessions;
                }
            }
        }
    }
    Some((successful, failed))
}
/// What the last check saw when the domain is ready: every MX covered with a valid
/// certificate, and the TLS-RPT record in place (spec/findings.md codes).
const GOOD_FINDINGS: &str = r#"[
 {"code":"sts.mx.covered","severity":"ok","subject":"alpha.test","message":"every MX is covered","remedy":""},
 {"code":"mx.cert.ok","severity":"ok","subject":"mx1.alpha.test","message":"valid","remedy":""},
 {"code":"tlsrpt.txt.ok","severity":"ok","subject":"_smtp._tls.alpha.test","message":"v=TLSRPTv1","remedy":""}
]"#;

/// The browser's request to move the clock: 31 days on, then a week of clean reports from
/// two organisations, a good check and policy fetches, so that the domain is ready.
async fn move_the_clock(clock: &Clock, store: &Store, alpha: TenantId, signals: &Path) {
    let deadline = std::time::Instant::now() + NODE_DEADLINE;
    while !signals.join("move").exists() {
        if std::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    clock.advance(Duration::from_secs(31 * DAY as u64));
    let now = clock.now();
    let today = now.div_euclid(DAY) * DAY;
    let sink = StoreSink::new(store.clone());
    for back in 1..=7 {
        let day = today - back * DAY;
        for org in ["google.com", "microsoft.com"] {
            let id = format!("{org}-late-{back}");
            ingest(&sink, report(org, &id, "alpha.test", day, 800, &[]), now).await;
        }
    }
    let run = NewCheckRun {
        started_at: now - 60,
        finished_at: now - 50,
        verdict: "ok".into(),
        findings: GOOD_FINDINGS.into(),
    };
    store
        .check_run_add(alpha, "alpha.test", &run, 10)
        .await
        .expect("check run");
    let fetches = FetchRow {
        domain: "alpha.test".into(),
        day: now / DAY,
        network: "192.0.2.0/24".into(),
        fetches: 12,
    };
    store.policy_fetches_add(&[fetches]).await.expect("fetches");
    std::fs::write(signals.join("moved"), b"").expect("signal");
}

/// The whole browser run, launch included.
const NODE_DEADLINE: Duration = Duration::from_secs(180);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> PathBuf {
    std::env::var_os("STSWARD_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Why the browser test cannot run here, if it cannot.
fn missing() -> Option<String> {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("node is not installed".into());
    }
    if !chromium().exists() {
        return Some(format!("{} is not installed", chromium().display()));
    }
    let pw = repo_root().join("tests/browser/node_modules/playwright-core/package.json");
    if !pw.exists() {
        return Some("playwright-core is not installed (npm ci in tests/browser)".into());
    }
    None
}

fn date(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// A one-day report by `org` for `domain`, on the day that starts at `day`.
fn report(
    org: &str,
    id: &str,
    domain: &str,
    day: i64,
    ok: u64,
    failures: &[(&str, &str, u64)],
) -> Vec<u8> {
    let details: Vec<String> = failures
        .iter()
        .map(|(result_type, mx, n)| {
            format!(
                r#"{{"result-type":"{result_type}","sending-mta-ip":"192.0.2.25","receiving-mx-hostname":"{mx}","receiving-ip":"198.51.100.7","failed-session-count":{n}}}"#
            )
        })
        .collect();
    let failed: u64 = failures.iter().map(|(_, _, n)| n).sum();
    format!(
        r#"{{"organization-name":"{org}","date-range":{{"start-datetime":"{}","end-datetime":"{}"}},"contact-info":"tlsrpt@{org}","report-id":"{id}","policies":[{{"policy":{{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx1.{domain}","max_age: 86400"],"policy-domain":"{domain}","mx-host":["mx1.{domain}"]}},"summary":{{"total-successful-session-count":{ok},"total-failure-session-count":{failed}}},"failure-details":[{}]}}]}}"#,
        date(day),
        date(day + DAY - 1),
        details.join(","),
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_chromium() {
    if let Some(why) = missing() {
        // A failure under CI; elsewhere a skip, recorded for scripts/test's summary.
        eprintln!("the browser test needs node, Chromium and playwright-core: {why}");
        stsward_testkit::missing(
            "stsward-server/web-browser",
            &format!("{why} (scripts/install-test-deps installs it)"),
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = serve_support::pki(dir.path(), &["mta-sts.alpha.test"]);
    let url = format!("sqlite://{}", dir.path().join("web.db").display());
    let text = format!(
        "{}[web]\nsecure_cookies = false\n",
        serve_support::config_text(&pki, &url, false)
    );
    let cfg: ServeConfig = text.parse().expect("config");
    let clock = Clock::system();
    let runtime = Runtime::start(
        cfg,
        ServeOptions {
            clock: clock.clone(),
            replica_id: Some("browser".into()),
            ..ServeOptions::default()
        },
    )
    .await
    .expect("serve starts");
    let api = runtime.started().api[0];
    let dns_addr = runtime.started().dns[0];
    let service = runtime.service().clone();
    let store = service.store().clone();
    let now = clock.now();
    let (alpha, _) = two_tenants(&service, now).await;

    // Five days of reports from two organisations through the intake's sink.
    let sink = StoreSink::new(store.clone());
    let today = now.div_euclid(DAY) * DAY;
    let mut expected_days = Vec::new();
    for back in 1..=5 {
        let day = today - back * DAY;
        expected_days.push(day);
        let reports = [
            report(
                "google.com",
                &format!("g-{back}"),
                "alpha.test",
                day,
                1000,
                &[("certificate-expired", "mx1.alpha.test", 3)],
            ),
            report(
                "microsoft.com",
                &format!("m-{back}"),
                "alpha.test",
                day,
                500,
                &[("starttls-not-supported", "mx2.alpha.test", 2)],
            ),
            report(
                "google.com",
                &format!("gb-{back}"),
                "beta.test",
                day,
                7,
                &[],
            ),
        ];
        for raw in reports {
            ingest(&sink, raw, now).await;
        }
    }
    expected_days.sort();
    let add = stsward_server::domains::AddDomain {
        domain: CORPUS_DOMAIN.into(),
        mode: Some("testing".into()),
        mx: Some(stsward_server::domains::MxInput::Patterns(vec![
            "mx1.example.com".into(),
        ])),
        max_age: None,
        follow_mx: false,
    };
    service
        .add(alpha, &add, "test", now)
        .await
        .expect("host the corpus domain");
    let corpus = import_the_corpus(&sink, now).await;
    // The tenant user's own REST API token, for the refusal by API.
    let api_token = stsward_server::auth::issue(&store, alpha, "name", "ann's", now)
        .await
        .expect("alpha's token")
        .1
        .token;

    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        runtime
            .run(async {
                let _ = stopped.await;
            })
            .await
            .expect("run");
    });

    let artifacts = stsward_testkit::target_dir().join("browser-artifacts");
    // The browser runs on a blocking thread (tokio's process feature is not in this
    // build), its output in files, killed at the deadline.
    let out_file = dir.path().join("node.out");
    let err_file = dir.path().join("node.err");
    let signals = dir.path().join("signals");
    std::fs::create_dir_all(&signals).expect("signal dir");
    let mover = {
        let (clock, store, signals) = (clock.clone(), store.clone(), signals.clone());
        tokio::spawn(async move { move_the_clock(&clock, &store, alpha, &signals).await })
    };
    let mut node = std::process::Command::new("node");
    node.arg("dashboard.mjs")
        .current_dir(repo_root().join("tests/browser"))
        .env("STSWARD_URL", format!("http://{api}"))
        .env("STSWARD_USER", "ann")
        .env("STSWARD_PASSWORD", PASSWORD)
        .env("STSWARD_DOMAIN", "alpha.test")
        .env("STSWARD_API_TOKEN", &api_token)
        .env("STSWARD_OTHER_DOMAIN", "beta.test")
        .env("STSWARD_OTHER_TENANT", "beta")
        .env("STSWARD_ARTIFACTS", &artifacts)
        .env("STSWARD_CHROMIUM", chromium())
        .env("STSWARD_SIGNAL_DIR", &signals)
        .env(
            "STSWARD_CORPUS_PAGE",
            if corpus.is_some() {
                format!("/domains/{CORPUS_DOMAIN}?from={CORPUS_FROM}&to={CORPUS_TO}")
            } else {
                String::new()
            },
        )
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_file).expect("stdout file"))
        .stderr(std::fs::File::create(&err_file).expect("stderr file"));
    let mut child = node.spawn().expect("node runs");
    let finished = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + NODE_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().expect("wait for node") {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .expect("the waiting thread");
    mover.abort();
    let stdout = std::fs::read_to_string(&out_file).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_file).unwrap_or_default();
    assert!(
        finished.is_some(),
        "the browser run did not end within {NODE_DEADLINE:?}: {stdout}\n{stderr}"
    );
    let seen: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("node printed no JSON ({e}): {stdout}\n{stderr}"));
    assert_eq!(
        seen["ok"], true,
        "the browser run failed: {seen:#}\n{stderr}"
    );

    // 1. Login: the overview first sent the browser to the login form.
    assert_eq!(seen["before_login_url"], "/login");
    // 2. The overview shows the tenant's domains, not the other tenant's.
    assert_eq!(
        seen["overview"]["domains"],
        serde_json::json!(["alpha.test", CORPUS_DOMAIN])
    );
    assert_eq!(
        seen["overview"]["light"], "rgb(255, 255, 255)",
        "light scheme"
    );
    assert_eq!(seen["overview"]["dark"], "rgb(15, 19, 24)", "dark scheme");
    // 2b. A domain added in the page, with the records to publish (not looked up yet).
    let added = &seen["added"];
    assert_eq!(added["name"], "new-alpha.test");
    let added_records: Vec<(&str, &str)> = added["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| Some((r["name"].as_str()?, r["status"].as_str()?)))
        .collect();
    assert_eq!(
        added_records,
        vec![
            ("mta-sts.new-alpha.test.", "not-checked"),
            ("_mta-sts.new-alpha.test.", "not-checked"),
            ("_smtp._tls.new-alpha.test.", "not-checked"),
        ]
    );
    assert_eq!(
        added["overview"],
        serde_json::json!(["alpha.test", CORPUS_DOMAIN, "new-alpha.test"])
    );
    // 3. The domain and its records.
    assert_eq!(seen["domain"]["name"], "alpha.test");
    assert_eq!(seen["domain"]["mode"], "testing");
    let records = seen["domain"]["records"].as_array().expect("records");
    let names: Vec<&str> = records.iter().filter_map(|r| r["name"].as_str()).collect();
    assert!(
        names.contains(&"mta-sts.alpha.test.") && names.contains(&"_mta-sts.alpha.test."),
        "{names:?}"
    );
    assert_eq!(
        seen["domain"]["verdict"], "not-ready",
        "30 days in testing have not passed"
    );
    assert_eq!(seen["domain"]["criteria"].as_array().map(Vec::len), Some(7));
    assert_eq!(
        seen["domain"]["reports"], 10,
        "five days from two organisations"
    );
    // 5. The corpus's reports, imported: the charts over their years hold exactly the
    // sessions the files state for the domain.
    if let Some((successful, failed)) = corpus {
        assert!(
            successful + failed > 0,
            "the corpus has {CORPUS_DOMAIN} sessions"
        );
        assert_eq!(
            (&seen["corpus"]["successful"], &seen["corpus"]["failed"]),
            (&Value::from(successful), &Value::from(failed)),
            "{}",
            seen["corpus"]
        );
        assert!(
            seen["corpus"]["points"].as_u64().is_some_and(|n| n >= 3),
            "several days drawn: {}",
            seen["corpus"]
        );
    }
    // 4. The charts carry the ingested reports: the JSON and what uPlot drew.
    let json = &seen["charts"]["json"];
    let days: Vec<i64> = json["sessions"]["x"]
        .as_array()
        .expect("x")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert_eq!(days, expected_days, "one point per day of reports");
    assert!(
        json["sessions"]["successful"]
            .as_array()
            .expect("ok")
            .iter()
            .all(|v| v == 1500)
    );
    assert!(
        json["sessions"]["failed"]
            .as_array()
            .expect("failed")
            .iter()
            .all(|v| v == 5)
    );
    assert_eq!(
        json["by_result_type"]["labels"],
        serde_json::json!(["certificate-expired", "starttls-not-supported"])
    );
    assert_eq!(
        json["by_result_type"]["failed"],
        serde_json::json!([15, 10])
    );
    assert_eq!(
        json["by_organization"]["labels"],
        serde_json::json!(["google.com", "microsoft.com"])
    );
    assert_eq!(
        json["by_receiving_mx"]["labels"],
        serde_json::json!(["mx1.alpha.test", "mx2.alpha.test"])
    );
    let drawn = &seen["charts"]["drawn"];
    assert_eq!(
        drawn["sessions"][0].as_array().map(Vec::len),
        Some(5),
        "uPlot drew five days"
    );
    assert_eq!(drawn["sessions"][1][0], 1500);
    assert_eq!(drawn["by_result_type"][1], serde_json::json!([15, 10]));
    assert_eq!(seen["charts"]["canvases"], 4, "four charts drawn");
    // 4b. The verdict changes as the clock moves and reports, a check and fetches come in.
    assert_eq!(seen["readiness_before"]["verdict"], "not-ready");
    let before = seen["readiness_before"]["passed"]
        .as_array()
        .expect("passed");
    assert!(
        !before.contains(&serde_json::json!("days-in-testing")),
        "{before:?}"
    );
    assert!(
        !before.contains(&serde_json::json!("blocking-failures")),
        "{before:?}"
    );
    assert_eq!(
        seen["readiness_relogin"], "/login",
        "the session idled out meanwhile"
    );
    assert_eq!(
        seen["readiness_after"]["verdict"], "ready",
        "31 days in testing, clean reports from two senders, a good check, fetches: {}",
        seen["readiness_after"]
    );
    assert_eq!(
        seen["readiness_after"]["passed"].as_array().map(Vec::len),
        Some(7)
    );
    // 5. A raw report.
    let raw = seen["raw"]["text"].as_str().expect("raw text");
    assert!(
        raw.contains("\"organization-name\"") && raw.contains("alpha.test"),
        "{raw}"
    );
    // 5b. The editor: an invalid edit is flagged as typed, a valid one previews the id of
    // version 2, and after saving the page and the DNS answer carry the new id. The id's
    // time part is the save's second, so the preview's is the same or a little earlier.
    let editor = &seen["editor"];
    let invalid = editor["invalid_codes"].as_array().expect("codes");
    assert!(!invalid.is_empty(), "the missing mx is an error: {editor}");
    let preview = editor["preview_id"].as_str().expect("preview id");
    let saved = editor["saved_id"].as_str().expect("saved id");
    assert_eq!(editor["saved_mode"], "enforce");
    assert!(
        preview.ends_with('2') && saved.ends_with('2'),
        "version 2: {editor}"
    );
    assert!(preview <= saved && preview.len() == saved.len(), "{editor}");
    assert_eq!(
        editor["served_preview"],
        "version: STSv1\nmode: enforce\nmx: mx1.alpha.test\nmax_age: 86400\n",
        "the served file's preview"
    );
    let history = editor["history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "two versions: {editor}");
    assert!(
        history[0]["summary"]
            .as_str()
            .is_some_and(|s| s.contains(saved))
    );
    assert_eq!(
        history[0]["added"],
        serde_json::json!(["+ mode: enforce", "+ max_age: 86400"])
    );
    assert_eq!(
        history[0]["removed"],
        serde_json::json!(["- mode: testing", "- max_age: 604800"])
    );
    let dns = dns_addr;
    let in_dns = serve_support::within(Duration::from_secs(10), || async move {
        serve_support::sts_id(dns, "alpha.test").await.as_deref() == Ok(saved)
    })
    .await;
    assert!(
        in_dns.is_some(),
        "the DNS answer carries the saved id {saved}"
    );
    // 6. Another tenant's domain is refused by page.
    // 8. ... and by API: 401 with the session alone, 404 with the tenant's own token.
    assert_eq!(
        seen["cross_tenant_api"],
        serde_json::json!({"with_session": 401, "own_domain": 200, "other_domain": 404})
    );
    for c in seen["cross_tenant"].as_array().expect("cross tenant") {
        assert_eq!(c["status"], 404, "{c}");
        assert_eq!(c["leaked"], false, "{c}");
    }
    // 7. After logout every page goes to the login.
    for a in seen["after_logout"].as_array().expect("after logout") {
        assert_eq!(a["landed"], "/login", "{a}");
    }
    assert_eq!(
        seen["errors_before_refusal"],
        serde_json::json!([]),
        "no script, CSP or resource errors on the pages"
    );
    for width in [1280, 390] {
        for page in ["overview", "domain"] {
            let shot = artifacts.join(format!("{page}-{width}.png"));
            let len = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{} is missing or empty", shot.display());
        }
    }

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("serve stops")
        .expect("serve task");
}
