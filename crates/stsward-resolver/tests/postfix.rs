//! `stsward resolve serve` (the daemon, in-process) asked by real Postfix (issue 10, "How it
//! is verified"):
//!
//! - `postmap -q DOMAIN socketmap:inet:127.0.0.1:PORT:postfix` gives the expected answer for
//!   every case of the lab's resolver scenario, through the daemon's SQLite store (seeded
//!   before start: a cached policy for an unreachable policy host, an old id for a domain
//!   whose id has changed since);
//! - Postfix with `smtp_tls_policy_maps = socketmap:…` pointed at the daemon delivers to an
//!   `enforce` domain's good MX over verified TLS, and defers mail to an MX whose
//!   certificate has the wrong name, with the TLS failure in its log.
//!
//! Needs Postfix (`scripts/install-test-deps`) and, for delivery, root (the lab's DNS on port
//! 53, see `stsward_testkit::postfix`); skipped visibly otherwise, a failure under `CI`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stsward_lab::{Lab, LabError, LabOptions, RunningLab, Scenario};
use stsward_resolver::daemon::{ConfigSource, Daemon};
use stsward_resolver::server::Endpoint;
use stsward_resolver::{Engine, ResolverConfig};
use stsward_store::{CachedPolicy, Store};
use stsward_testkit::postfix::{self, Postfix, PostfixOptions};
use time::OffsetDateTime;

const GROUP: &str = "stsward-resolver/postfix";
const WAIT: Duration = Duration::from_secs(30);
const RESOLVER_SCENARIO: &str = include_str!("../../stsward-lab/scenarios/resolver.toml");

/// A running daemon: its socketmap address, its engine, and the signal that stops it.
struct RunningDaemon {
    socketmap: SocketAddr,
    admin: SocketAddr,
    engine: Engine,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningDaemon {
    fn map(&self) -> String {
        postfix::socketmap_map(self.socketmap, "postfix")
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(WAIT, &mut self.task).await;
    }
}

/// Starts the daemon as `stsward resolve serve` would, with the lab's DNS, CA and ports and
/// the given store, on free loopback ports.
async fn start_daemon(lab: &RunningLab, store: Option<String>, dir: &Path) -> RunningDaemon {
    let resolver = lab.resolver_addr();
    let https_port = lab.https_port();
    let ca_file = lab.ca_file().to_path_buf();
    let anchors: Option<PathBuf> = lab.trust_anchor_file().map(Path::to_path_buf);
    let overrides = move |cfg: &mut ResolverConfig| {
        cfg.listen.tcp = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
        cfg.admin.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        cfg.cache.store.clone_from(&store);
        cfg.dns.resolver = Some(resolver);
        cfg.dns.timeout_ms = 2000;
        cfg.dns.trust_anchors.clone_from(&anchors);
        cfg.fetch.https_port = https_port;
        cfg.fetch.ca_file = Some(ca_file.clone());
        cfg.fetch.webpki_roots = false;
        cfg.fetch.timeout_secs = 10;
        cfg.answer.lookup_deadline_ms = 20_000;
    };
    // An empty configuration file: what `--config` reads, with the flags above on top.
    let path = dir.join("resolve.toml");
    std::fs::write(&path, "# defaults\n").expect("config file");
    let daemon = Daemon::bind(ConfigSource {
        path: Some(path),
        overrides: Arc::new(overrides),
        env: Vec::new(),
    })
    .await
    .expect("the daemon starts");
    let socketmap = daemon
        .endpoints()
        .into_iter()
        .find_map(|e| match e {
            Endpoint::Tcp(addr) => Some(addr),
            Endpoint::Unix(_) => None,
        })
        .expect("a TCP endpoint");
    let admin = daemon.admin_addr().expect("admin endpoint");
    let engine = daemon.engine().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run(async move {
        let _ = stopped.await;
    }));
    RunningDaemon {
        socketmap,
        admin,
        engine,
        stop: Some(stop),
        task,
    }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `postmap -q` on a blocking thread (it is a child process), so the lab keeps serving.
async fn postmap(map: &str, key: &str) -> postfix::PostmapAnswer {
    let (map, key) = (map.to_owned(), key.to_owned());
    tokio::task::spawn_blocking(move || postfix::postmap_q(&map, &key))
        .await
        .expect("postmap thread")
        .expect("postmap runs")
}

/// The daemon's answer in postmap's terms: `Some(value)` for OK, `None` for NOTFOUND.
async fn answer(map: &str, key: &str) -> Option<String> {
    let a = postmap(map, key).await;
    assert!(
        a.found().is_some() || a.not_found(),
        "{key}: neither found nor not found (a TEMP or a broken table): {a:?}"
    );
    a.found().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postmap_q_through_the_daemon_answers_every_lab_case() {
    if !postfix::available(GROUP) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario: Scenario = RESOLVER_SCENARIO.parse().expect("scenario");
    let lab = Lab::start(
        &scenario,
        &LabOptions::new(dir.path(), OffsetDateTime::now_utc()),
    )
    .await
    .expect("lab starts");

    // The store the daemon warms from: what a previous run left behind.
    let url = format!("sqlite://{}", dir.path().join("resolve.db").display());
    let store = Store::open(&url).await.expect("store");
    let t = now();
    let seeded = [
        // RFC 8461 §3.3: the policy host is unreachable now, the cached policy stays in force.
        CachedPolicy {
            domain: "resolve-unreachable.test".into(),
            sts_id: "older".into(),
            policy:
                "version: STSv1\nmode: enforce\nmx: mx.resolve-unreachable.test\nmax_age: 604800\n"
                    .into(),
            fetched_at: t - 3600,
            expires_at: t - 3600 + 604_800,
            txt_checked_at: t - 3600,
        },
        // RFC 8461 §3.1: the TXT id is no longer "previous"; the re-check fetches anew.
        CachedPolicy {
            domain: "resolve-enforce.test".into(),
            sts_id: "previous".into(),
            policy:
                "version: STSv1\nmode: enforce\nmx: old-mx.resolve-enforce.test\nmax_age: 604800\n"
                    .into(),
            fetched_at: t - 7200,
            expires_at: t - 7200 + 604_800,
            txt_checked_at: t - 7200,
        },
    ];
    for row in &seeded {
        store.resolver_policy_put(row).await.expect("seed");
    }
    store.close().await;

    let daemon = start_daemon(&lab, Some(url.clone()), dir.path()).await;
    let map = daemon.map();

    // (key, expected answer (None: NOTFOUND), why)
    let table: &[(&str, Option<&str>, &str)] = &[
        (
            "resolve-testing.test",
            None,
            "testing without TLSRPT attributes: Postfix's own default applies",
        ),
        ("resolve-none.test", None, "RFC 8461 §5 mode none"),
        ("resolve-nopolicy.test", None, "no _mta-sts record"),
        (
            "resolve-wildcard.test.",
            Some(
                "secure match=.resolve-wildcard.test:backup.resolve-enforce.test servername=hostname",
            ),
            "a *. pattern in Postfix's .domain form, and a trailing dot on the key",
        ),
        (
            "resolve-broken.test",
            None,
            "an invalid policy and nothing cached: as if no MTA-STS (RFC 8461 §3.3)",
        ),
        (
            "resolve-unreachable.test",
            Some("secure match=mx.resolve-unreachable.test servername=hostname"),
            "policy host unreachable, cached policy from the store still applies (RFC 8461 §3.3)",
        ),
        (
            "bücher-resolve.test",
            Some("secure match=mx.xn--bcher-resolve-wob.test servername=hostname"),
            "an IDN key in U-labels; patterns in A-labels",
        ),
        (
            "resolve-dane.test",
            Some("dane-only"),
            "RFC 8461 §2: DNSSEC-validated TLSA records, DANE first",
        ),
    ];
    for (key, want, why) in table {
        let got = answer(&map, key).await;
        assert_eq!(got.as_deref(), *want, "{key}: {why}");
    }

    // The changed id: the daemon serves the stored (old) policy or, once the background TXT
    // re-check has fetched the new one, the new; within the wait it must be the new one.
    let new = "secure match=mx.resolve-enforce.test servername=hostname";
    let old = "secure match=old-mx.resolve-enforce.test servername=hostname";
    let started = Instant::now();
    loop {
        let got = answer(&map, "resolve-enforce.test").await;
        if got.as_deref() == Some(new) {
            break;
        }
        assert_eq!(
            got.as_deref(),
            Some(old),
            "neither the old nor the new policy"
        );
        assert!(
            started.elapsed() < WAIT,
            "the changed id was not picked up within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    daemon.engine.idle().await;

    // The admin endpoint shows and purges (what `stsward resolve show|purge` call).
    let shown = admin_http(daemon.admin, "GET", "resolve-enforce.test").await;
    assert!(shown.starts_with("HTTP/1.0 200"), "{shown}");
    assert!(
        shown.contains("\"domain\": \"resolve-enforce.test\""),
        "{shown}"
    );
    let metrics = admin_http_path(daemon.admin, "GET", "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.0 200"), "{metrics}");
    assert!(metrics.contains("lookups"), "{metrics}");
    let purged = admin_http(daemon.admin, "DELETE", "resolve-enforce.test").await;
    assert!(purged.contains("\"purged\":true"), "{purged}");

    daemon.shutdown().await;
    // The store holds the new policy for the next start, and nothing for the purged domain.
    let store = Store::open(&url).await.expect("reopen");
    assert_eq!(
        store
            .resolver_policy_get("resolve-enforce.test")
            .await
            .expect("get"),
        None,
        "purged"
    );
    let kept = store
        .resolver_policy_get("resolve-unreachable.test")
        .await
        .expect("get")
        .expect("the cached policy survives the failed refresh");
    assert_eq!(kept.sts_id, "older");
    store.close().await;
    lab.shutdown().await;
}

async fn admin_http(addr: SocketAddr, method: &str, domain: &str) -> String {
    admin_http_path(addr, method, &format!("/domains/{domain}")).await
}

async fn admin_http_path(addr: SocketAddr, method: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("{method} {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    out
}

const DELIVERY_SCENARIO: &str = r#"
[lab]
dns = "plain"

[[domain]]
name = "good.test"
mx = [{ host = "mx.good.test", preference = 10 }]
sts_txt = "good"
tlsrpt_txt = "good"
policy = { behaviour = "good" }

[[domain]]
name = "wrong-name.test"
mx = [{ host = "mx.wrong-name.test", preference = 10 }]
sts_txt = "good"
tlsrpt_txt = "good"
policy = { behaviour = "good" }
[[mx_host]]
name = "mx.wrong-name.test"
behaviour = "cert-wrong-name"
"#;

/// The lab with its DNS on port 53 of an address the smtp client's `resolv.conf` can name.
async fn start_lab_on_port_53(scenario: &Scenario, dir: &Path) -> RunningLab {
    let mut last = None;
    for addr in postfix::lab_dns_candidates(16) {
        let mut options = LabOptions::new(dir, OffsetDateTime::now_utc());
        options.dns_addr = Some(addr.ip());
        options.dns_port = Some(addr.port());
        match Lab::start(scenario, &options).await {
            Ok(lab) => return lab,
            Err(error @ LabError::Bind { .. }) => last = Some(error),
            Err(error) => panic!("starting the lab: {error}"),
        }
    }
    panic!("no free port 53 for the lab's DNS: {last:?}");
}

#[test]
fn real_delivery_with_smtp_tls_policy_maps_pointing_at_the_daemon() {
    if !postfix::available(GROUP) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let scenario: Scenario = DELIVERY_SCENARIO.parse().expect("scenario");
    let lab = runtime.block_on(start_lab_on_port_53(&scenario, dir.path()));
    let daemon = runtime.block_on(start_daemon(&lab, None, dir.path()));
    let IpAddr::V4(nameserver) = lab.resolver_addr().ip() else {
        panic!("the lab DNS has an IPv4 address")
    };
    let pf = Postfix::start(&PostfixOptions {
        smtp_tls_security_level: "may".into(),
        smtp_tls_policy_maps: Some(daemon.map()),
        smtp_tls_ca_file: Some(lab.ca_file().to_path_buf()),
        nameserver: Some(nameserver),
        smtp_port: lab.smtp_port(),
        extra_main_cf: Vec::new(),
    })
    .expect("Postfix starts");

    // What the smtp client will be told.
    let told = postfix::postmap_q(&daemon.map(), "good.test").expect("postmap");
    assert_eq!(
        told.found(),
        Some("secure match=mx.good.test servername=hostname"),
        "{told:?}"
    );

    // The good MX: delivered over verified TLS.
    pf.send("sender@resolver.invalid", "someone@good.test")
        .expect("sendmail");
    pf.wait_for_log_containing("Verified TLS connection established to mx.good.test[", WAIT)
        .expect("verified TLS to the good MX");
    let sent = pf
        .wait_for_log(
            |l| l.contains("to=<someone@good.test>") && l.contains("status="),
            WAIT,
        )
        .expect("a delivery status");
    assert!(sent.contains("status=sent"), "{sent}\n{}", pf.log());
    assert_eq!(lab.smtp_messages_accepted("mx.good.test"), Some(1));

    // The MX whose certificate names another host: deferred, and the log says why.
    pf.send("sender@resolver.invalid", "someone@wrong-name.test")
        .expect("sendmail");
    let reason = pf
        .wait_for_deferred("someone@wrong-name.test", WAIT)
        .expect("the message is deferred");
    assert!(
        reason.contains("Server certificate not verified"),
        "deferred for another reason: {reason}\n{}",
        pf.log()
    );
    let log = pf.log();
    assert!(
        log.lines().any(|l| l
            .contains("server certificate verification failed for mx.wrong-name.test[")
            && l.contains("hostname mismatch")),
        "the log names the TLS failure:\n{log}"
    );
    assert_eq!(lab.smtp_messages_accepted("mx.wrong-name.test"), Some(0));
    // Both answers came from the daemon.
    let lookups: u64 = daemon.engine.metrics().lookups.values().sum();
    assert!(lookups >= 2, "Postfix asked the daemon: {lookups} lookups");

    drop(pf);
    runtime.block_on(async {
        daemon.shutdown().await;
        lab.shutdown().await;
    });
}
