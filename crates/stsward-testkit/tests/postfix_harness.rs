//! The Postfix harness against the lab, with a static TLS policy table standing in for the
//! resolver (issue 10, "Real delivery"): Postfix resolves the lab's MX hosts through the
//! lab's DNS (the smtp client's chroot, see `stsward_testkit::postfix`), and a policy
//! `secure match=<mx> servername=hostname` for an `enforce` domain
//!
//! - delivers to a good MX over verified TLS, and the lab host counts the message;
//! - defers mail to an MX whose certificate has the wrong name, and the log says why.
//!
//! The resolver's own test swaps the table for `socketmap_map(addr, "postfix")`.
//!
//! Needs root and Postfix (`scripts/install-test-deps`); skipped otherwise, visibly (and a
//! failure when `CI` is set).

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stsward_lab::{Lab, LabError, LabOptions, RunningLab, Scenario};
use stsward_testkit::postfix::{self, Postfix, PostfixOptions};

const GROUP: &str = "stsward-testkit/postfix_harness";
const WAIT: Duration = Duration::from_secs(30);

const SCENARIO: &str = r#"
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

# No policy, same MX as wrong-name.test: the control case (Postfix's `may` delivers).
[[domain]]
name = "no-policy.test"
mx = [{ host = "mx.wrong-name.test", preference = 10 }]
"#;

/// The policy a resolver gives an `enforce` domain whose MX is `mx.<domain>`.
const POLICY_TABLE: &str = "\
good.test secure match=mx.good.test servername=hostname
wrong-name.test secure match=mx.wrong-name.test servername=hostname
";

/// A lab and the Postfix instance that resolves through it; the runtime serves the lab
/// while the test thread drives Postfix.
struct World {
    postfix: Postfix,
    lab: RunningLab,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// Starts the lab with its DNS on port 53 of an address the smtp client's `resolv.conf` can
/// name, trying the next candidate when a lab running in parallel holds one.
async fn start_lab(scenario: &Scenario, dir: &std::path::Path) -> RunningLab {
    let now = time::OffsetDateTime::now_utc();
    let mut last = None;
    for addr in postfix::lab_dns_candidates(16) {
        let mut options = LabOptions::new(dir, now);
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

fn world(policy_maps: impl FnOnce(&tempfile::TempDir) -> String) -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let scenario: Scenario = SCENARIO.parse().expect("scenario");
    let lab = runtime.block_on(start_lab(&scenario, dir.path()));
    let IpAddr::V4(nameserver) = lab.resolver_addr().ip() else {
        panic!("the lab DNS was given an IPv4 address")
    };
    let postfix = Postfix::start(&PostfixOptions {
        smtp_tls_security_level: "may".into(),
        smtp_tls_policy_maps: Some(policy_maps(&dir)),
        smtp_tls_ca_file: Some(lab.ca_file().to_path_buf()),
        nameserver: Some(nameserver),
        smtp_port: lab.smtp_port(),
        extra_main_cf: Vec::new(),
    })
    .expect("Postfix starts");
    World {
        postfix,
        lab,
        _runtime: runtime,
        _dir: dir,
    }
}

fn texthash_policy(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("tls_policy");
    std::fs::write(&path, POLICY_TABLE).expect("policy table");
    format!("texthash:{}", path.display())
}

#[test]
fn postmap_q_inline_map_self_test() {
    if !postfix::available(GROUP) {
        return;
    }
    let map = "inline:{ {good.test = secure match=mx.good.test servername=hostname} }";
    // (key, expected value or None for not found, why)
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            "good.test",
            Some("secure match=mx.good.test servername=hostname"),
            "a key of the map",
        ),
        ("other.test", None, "a key not in the map"),
    ];
    for (key, expected, why) in cases {
        let answer = postfix::postmap_q(map, key).expect("postmap runs");
        match expected {
            Some(value) => assert_eq!(answer.found(), Some(*value), "{why}: {answer:?}"),
            None => assert!(answer.not_found(), "{why}: {answer:?}"),
        }
    }
    // A table that fails is neither found nor "not found": a socketmap nobody serves.
    let dead = postfix::socketmap_map("127.0.0.1:1".parse().expect("addr"), "postfix");
    let answer = postfix::postmap_q(&dead, "good.test").expect("postmap runs");
    assert!(
        answer.found().is_none() && !answer.not_found(),
        "{answer:?}"
    );
    assert!(answer.stderr.contains("query error"), "{answer:?}");
}

#[test]
fn real_delivery_enforce_good_mx_is_delivered_over_verified_tls() {
    if !postfix::available(GROUP) {
        return;
    }
    let w = world(texthash_policy);
    // The policy table is what the smtp client will consult.
    let answer = w
        .postfix
        .postmap_q(&texthash_policy(&w._dir), "good.test")
        .expect("postmap");
    assert_eq!(
        answer.found(),
        Some("secure match=mx.good.test servername=hostname")
    );
    assert_eq!(w.lab.smtp_messages_accepted("mx.good.test"), Some(0));
    w.postfix
        .send("sender@harness.invalid", "someone@good.test")
        .expect("sendmail");
    let verified = w
        .postfix
        .wait_for_log_containing("Verified TLS connection established to mx.good.test[", WAIT)
        .expect("verified TLS to the good MX");
    assert!(verified.contains("smtp["), "{verified}");
    let sent = w
        .postfix
        .wait_for_log(
            |l| l.contains("to=<someone@good.test>") && l.contains("status="),
            WAIT,
        )
        .expect("a delivery status");
    assert!(sent.contains("status=sent"), "{sent}\n{}", w.postfix.log());
    assert!(sent.contains("relay=mx.good.test["), "{sent}");
    assert_eq!(w.lab.smtp_messages_accepted("mx.good.test"), Some(1));
    assert!(w.postfix.queue().expect("postqueue").is_empty());
}

#[test]
fn real_delivery_enforce_wrong_name_mx_is_deferred_with_the_tls_failure_logged() {
    if !postfix::available(GROUP) {
        return;
    }
    let w = world(texthash_policy);
    w.postfix
        .send("sender@harness.invalid", "someone@wrong-name.test")
        .expect("sendmail");
    let reason = w
        .postfix
        .wait_for_deferred("someone@wrong-name.test", WAIT)
        .expect("the message is deferred");
    assert!(
        reason.contains("Server certificate not verified"),
        "deferred for another reason: {reason}\n{}",
        w.postfix.log()
    );
    let log = w.postfix.log();
    let status = log
        .lines()
        .find(|l| l.contains("to=<someone@wrong-name.test>") && l.contains("status="))
        .unwrap_or_default();
    assert!(status.contains("status=deferred"), "{log}");
    // Postfix 3.7 at smtp_tls_loglevel 1: "server certificate verification failed for
    // mx.wrong-name.test[127.S.0.2]:PORT: num=62:hostname mismatch".
    let failure = log
        .lines()
        .find(|l| l.contains("server certificate verification failed for mx.wrong-name.test["))
        .unwrap_or_default();
    assert!(
        failure.contains("hostname mismatch"),
        "the log names the TLS failure:\n{log}"
    );
    assert!(
        !log.contains("Verified TLS connection established"),
        "{log}"
    );
    assert_eq!(w.lab.smtp_messages_accepted("mx.wrong-name.test"), Some(0));
}

/// A socketmap server (socketmap_table(5), netstring framing) answering from
/// [`POLICY_TABLE`], one thread per connection, counting the lookups: the stand-in for
/// stsward's resolver, to show that Postfix's chrooted smtp client consults a socketmap
/// policy over TCP. Requests are `<len>:postfix <domain>,`; replies `OK <policy>` or
/// `NOTFOUND `.
fn policy_socketmap_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let lookups = Arc::new(AtomicUsize::new(0));
    let counter = lookups.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || serve_socketmap(stream, &counter));
        }
    });
    (addr, lookups)
}

fn serve_socketmap(mut stream: std::net::TcpStream, lookups: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(WAIT));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        // One complete netstring in `buf`?
        if let Some(colon) = buf.iter().position(|b| *b == b':') {
            let Some(len) = std::str::from_utf8(&buf[..colon])
                .ok()
                .and_then(|l| l.parse::<usize>().ok())
            else {
                return;
            };
            if buf.len() > colon + len + 1 {
                let request =
                    String::from_utf8_lossy(&buf[colon + 1..colon + 1 + len]).into_owned();
                buf.drain(..colon + len + 2);
                lookups.fetch_add(1, Ordering::Relaxed);
                let domain = request.strip_prefix("postfix ").unwrap_or_default();
                let reply = POLICY_TABLE
                    .lines()
                    .find_map(|l| l.strip_prefix(domain)?.strip_prefix(' '))
                    .map_or_else(|| "NOTFOUND ".to_owned(), |p| format!("OK {p}"));
                let framed = format!("{}:{reply},", reply.len());
                if stream.write_all(framed.as_bytes()).is_err() {
                    return;
                }
                continue;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn real_delivery_policy_from_a_socketmap_server() {
    if !postfix::available(GROUP) {
        return;
    }
    let (addr, lookups) = policy_socketmap_server();
    let map = postfix::socketmap_map(addr, "postfix");
    // (recipient, delivered?, why)
    let cases: &[(&str, bool, &str)] = &[
        ("someone@good.test", true, "good MX, policy secure"),
        (
            "someone@wrong-name.test",
            false,
            "wrong-name MX, policy secure",
        ),
        (
            "someone@no-policy.test",
            true,
            "the same wrong-name MX, NOTFOUND: opportunistic TLS delivers",
        ),
    ];
    // The table answers through postmap as through Postfix.
    let answer = postfix::postmap_q(&map, "good.test").expect("postmap");
    assert_eq!(
        answer.found(),
        Some("secure match=mx.good.test servername=hostname")
    );
    assert!(
        postfix::postmap_q(&map, "nowhere.test")
            .expect("postmap")
            .not_found()
    );
    let before = lookups.load(Ordering::Relaxed);
    let w = world(|_| map.clone());
    for (rcpt, _, _) in cases {
        w.postfix
            .send("sender@harness.invalid", rcpt)
            .expect("sendmail");
    }
    for (rcpt, delivered, why) in cases {
        let status = w
            .postfix
            .wait_for_log(
                |l| l.contains(&format!("to=<{rcpt}>")) && l.contains("status="),
                WAIT,
            )
            .expect("a delivery status");
        let expected = if *delivered {
            "status=sent"
        } else {
            "status=deferred (Server certificate not verified)"
        };
        assert!(
            status.contains(expected),
            "{why}: {status}\n{}",
            w.postfix.log()
        );
    }
    assert_eq!(w.lab.smtp_messages_accepted("mx.good.test"), Some(1));
    // Only the no-policy message reached the wrong-name MX.
    assert_eq!(w.lab.smtp_messages_accepted("mx.wrong-name.test"), Some(1));
    assert!(
        lookups.load(Ordering::Relaxed) >= before + cases.len(),
        "Postfix asked the socketmap server once per destination at least"
    );
}
