//! `stsward resolve` against the real lab on loopback (DNS with DNSSEC, HTTPS policy hosts):
//! the exact answer Postfix gets for each case of the answer table (docs/resolver.md).

use std::sync::Arc;
use std::time::Duration;

use stsward_lab::{Lab, LabOptions, RunningLab, Scenario};
use stsward_resolver::config::EngineSettings;
use stsward_resolver::source::{NetSettings, NetSource, roots_from_pem};
use stsward_resolver::{CachedPolicy, Engine, MemoryPersist, PolicyPersist, system_clock};
use time::OffsetDateTime;

const SCENARIO: &str = include_str!("../../stsward-lab/scenarios/resolver.toml");

struct World {
    _dir: tempfile::TempDir,
    lab: RunningLab,
    source: Arc<NetSource>,
}

async fn world() -> World {
    world_with(false).await
}

/// `plain_dns`: the lab's DNS server has no DNSSEC support (like a plain forwarder).
async fn world_with(plain_dns: bool) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario: Scenario = SCENARIO.parse().expect("scenario parses");
    let mut opts = LabOptions::new(dir.path(), OffsetDateTime::now_utc());
    opts.plain_dns = plain_dns;
    let lab = Lab::start(&scenario, &opts).await.expect("lab starts");
    let pem = std::fs::read(lab.ca_file()).expect("ca file");
    let anchors = lab
        .trust_anchor_file()
        .map(|p| std::fs::read_to_string(p).expect("anchors"));
    let source = NetSource::new(&NetSettings {
        resolver: Some(lab.resolver_addr()),
        dns_timeout: Duration::from_secs(2),
        trust_anchors: anchors,
        https_port: lab.https_port(),
        extra_roots: roots_from_pem(&pem).expect("pem"),
        webpki_roots: false,
        fetch_timeout: Duration::from_secs(10),
        ..NetSettings::default()
    })
    .expect("source");
    World {
        _dir: dir,
        lab,
        source: Arc::new(source),
    }
}

fn engine(w: &World, settings: EngineSettings, persist: Arc<MemoryPersist>) -> Engine {
    Engine::new(settings, w.source.clone(), persist, system_clock())
}

fn settings(tlsrpt: bool) -> EngineSettings {
    let mut s = EngineSettings {
        lookup_deadline: Duration::from_secs(20),
        ..EngineSettings::default()
    };
    s.answer.tlsrpt_attributes = tlsrpt;
    s
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn lines(policy: &str) -> String {
    policy
        .lines()
        .map(|l| format!(" {{ policy_string = {l} }}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8461_answers_for_every_lab_case() {
    let w = world().await;
    let plain = engine(&w, settings(false), Arc::default());
    let tlsrpt = engine(&w, settings(true), Arc::default());
    let enforce_policy =
        "version: STSv1\nmode: enforce\nmx: mx.resolve-enforce.test\nmax_age: 604800";
    let testing_policy =
        "version: STSv1\nmode: testing\nmx: mx.resolve-testing.test\nmax_age: 604800";
    // (key, answer without TLSRPT attributes, answer with them, why)
    let table: Vec<(&str, String, String, &str)> = vec![
        (
            "resolve-enforce.test",
            "OK secure match=mx.resolve-enforce.test servername=hostname".into(),
            format!("OK secure match=mx.resolve-enforce.test servername=hostname policy_type=sts policy_domain=resolve-enforce.test mx_host_pattern=mx.resolve-enforce.test{}", lines(enforce_policy)),
            "RFC 8461 §5 enforce",
        ),
        (
            "resolve-testing.test",
            "NOTFOUND ".into(),
            format!("OK may policy_type=sts policy_domain=resolve-testing.test mx_host_pattern=mx.resolve-testing.test{}", lines(testing_policy)),
            "testing: opportunistic, reported as sts",
        ),
        ("resolve-none.test", "NOTFOUND ".into(), "NOTFOUND ".into(), "RFC 8461 §5 none"),
        ("resolve-nopolicy.test", "NOTFOUND ".into(), "NOTFOUND ".into(), "no _mta-sts record"),
        (
            "resolve-wildcard.test.",
            "OK secure match=.resolve-wildcard.test:backup.resolve-enforce.test servername=hostname".into(),
            format!("OK secure match=.resolve-wildcard.test:backup.resolve-enforce.test servername=hostname policy_type=sts policy_domain=resolve-wildcard.test mx_host_pattern=*.resolve-wildcard.test mx_host_pattern=backup.resolve-enforce.test{}", lines("version: STSv1\nmode: enforce\nmx: *.resolve-wildcard.test\nmx: backup.resolve-enforce.test\nmax_age: 604800")),
            "wildcard pattern and a trailing dot",
        ),
        ("resolve-broken.test", "NOTFOUND ".into(), "NOTFOUND ".into(), "sts-policy-invalid, nothing cached"),
        ("resolve-unreachable.test", "NOTFOUND ".into(), "NOTFOUND ".into(), "RFC 8461 §3.3 fetch failure, nothing cached"),
        (
            "bücher-resolve.test",
            "OK secure match=mx.xn--bcher-resolve-wob.test servername=hostname".into(),
            format!("OK secure match=mx.xn--bcher-resolve-wob.test servername=hostname policy_type=sts policy_domain=xn--bcher-resolve-wob.test mx_host_pattern=mx.xn--bcher-resolve-wob.test{}", lines("version: STSv1\nmode: enforce\nmx: mx.xn--bcher-resolve-wob.test\nmax_age: 604800")),
            "IDN key in U-labels",
        ),
        ("resolve-dane.test", "OK dane-only".into(), "OK dane-only".into(), "RFC 8461 §2 DANE first"),
    ];
    for (key, want_plain, want_tlsrpt, why) in &table {
        let got = plain.lookup("postfix", key).await.wire();
        assert_eq!(&got, want_plain, "{why}: {key}");
        let got = tlsrpt.lookup("postfix", key).await.wire();
        assert_eq!(&got, want_tlsrpt, "{why} (TLSRPT attributes): {key}");
    }
    // RFC 8461 §3.4: a smart host is the Policy Domain; its policy's patterns are sent.
    assert_eq!(
        plain
            .lookup("postfix", "[resolve-enforce.test]:2525")
            .await
            .wire(),
        "OK secure match=mx.resolve-enforce.test servername=hostname"
    );
    let m = plain.metrics();
    assert!(m.fetch_failures.contains_key("sts.policy.syntax"), "{m:?}");
    assert!(
        m.fetch_failures.contains_key("sts.policy.unreachable"),
        "{m:?}"
    );
    w.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8461_3_3_unreachable_policy_host_with_a_cached_policy_keeps_it() {
    let w = world().await;
    let persist = Arc::new(MemoryPersist::default());
    let t = now();
    persist
        .resolver_policy_put(&CachedPolicy {
            domain: "resolve-unreachable.test".into(),
            sts_id: "older".into(),
            policy:
                "version: STSv1\nmode: enforce\nmx: mx.resolve-unreachable.test\nmax_age: 604800\n"
                    .into(),
            fetched_at: t - 3600,
            expires_at: t - 3600 + 604_800,
            txt_checked_at: t - 3600,
        })
        .await
        .expect("put");
    let e = engine(&w, settings(false), persist.clone());
    let got = e.lookup("postfix", "resolve-unreachable.test").await.wire();
    assert_eq!(
        got,
        "OK secure match=mx.resolve-unreachable.test servername=hostname"
    );
    e.idle().await;
    // The id changed, the fetch failed: the cached policy stays, and stays stored.
    assert_eq!(
        e.metrics().fetch_failures.get("sts.policy.unreachable"),
        Some(&1)
    );
    assert_eq!(
        e.lookup("postfix", "resolve-unreachable.test").await.wire(),
        "OK secure match=mx.resolve-unreachable.test servername=hostname"
    );
    let row = persist
        .resolver_policy_get("resolve-unreachable.test")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(row.sts_id, "older");
    w.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8461_3_1_changed_id_serves_the_new_policy_after_the_txt_recheck() {
    let w = world().await;
    let persist = Arc::new(MemoryPersist::default());
    let t = now();
    persist
        .resolver_policy_put(&CachedPolicy {
            domain: "resolve-enforce.test".into(),
            sts_id: "previous".into(),
            policy:
                "version: STSv1\nmode: enforce\nmx: old-mx.resolve-enforce.test\nmax_age: 604800\n"
                    .into(),
            fetched_at: t - 7200,
            expires_at: t - 7200 + 604_800,
            txt_checked_at: t - 7200,
        })
        .await
        .expect("put");
    // DANE first off, so that the stored policy answers at once (no DANE check to wait for).
    let mut s = settings(false);
    s.dane_first = false;
    let e = engine(&w, s, persist.clone());
    assert_eq!(e.warm().await.expect("warm"), 1);
    assert_eq!(
        e.lookup("postfix", "resolve-enforce.test").await.wire(),
        "OK secure match=old-mx.resolve-enforce.test servername=hostname",
        "served from the store while the TXT re-check runs in the background"
    );
    e.idle().await;
    assert_eq!(
        e.lookup("postfix", "resolve-enforce.test").await.wire(),
        "OK secure match=mx.resolve-enforce.test servername=hostname",
        "the id changed: the new policy is served"
    );
    let row = persist
        .resolver_policy_get("resolve-enforce.test")
        .await
        .expect("get")
        .expect("row");
    assert_ne!(row.sts_id, "previous");
    assert!(row.policy.contains("mx: mx.resolve-enforce.test"));
    w.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_test_explains_the_dane_answer() {
    let w = world().await;
    let e = engine(&w, settings(true), Arc::default());
    let x = e.test("resolve-dane.test").await;
    assert_eq!(x.wire, "OK dane-only");
    assert!(
        x.steps
            .iter()
            .any(|s| s.contains("mx.resolve-dane.test: secure TLSA")),
        "{:?}",
        x.steps
    );
    assert_eq!(e.cached(), 0, "test leaves the cache alone");
    w.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7672_2_1_1_without_dnssec_from_the_resolver_dane_does_not_apply() {
    // The resolver passes no DNSSEC records: every answer is "indeterminate", no TLSA record
    // can be "secure", and the MTA-STS answer stands (docs/resolver.md, DANE first).
    let w = world_with(true).await;
    let e = engine(&w, settings(false), Arc::default());
    assert_eq!(
        e.lookup("postfix", "resolve-dane.test").await.wire(),
        "OK secure match=mx.resolve-dane.test servername=hostname"
    );
    w.lab.shutdown().await;
}
