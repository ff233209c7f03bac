//! RFC 8461 §3.3 end to end: DNS responder + HTTPS server on loopback, fixed `now`.

mod common;

use std::time::{Duration, Instant};

use common::dns_server::{self, Zone};
use common::https_server::{self, POLICY, Reply};
use common::test_pki::{TestCa, Window, now, self_signed};
use stsward_net::cert::{CertProblem, UntrustedReason};
use stsward_net::dns::{Dns, DnsConfig};
use stsward_net::policy_fetch::{FetchConfig, FetchError, MAX_POLICY_BYTES, fetch_policy};

const HOSTS: &[&str] = &[
    "mta-sts.good.test",
    "mta-sts.redirect.test",
    "mta-sts.missing.test",
    "mta-sts.html.test",
    "mta-sts.big.test",
    "mta-sts.chunked.test",
    "mta-sts.slow.test",
    "mta-sts.twoaddr.test",
];

/// The first address of `mta-sts.twoaddr.test`: accepts TCP, then never speaks TLS.
const STALLING_ADDR: &str = "127.0.0.5";

fn route(host: &str) -> Reply {
    match host {
        "mta-sts.good.test" | "mta-sts.twoaddr.test" => Reply::Policy,
        "mta-sts.missing.test" => Reply::Status(404),
        "mta-sts.html.test" => Reply::ContentType("text/html; charset=utf-8"),
        "mta-sts.big.test" => Reply::Oversize(MAX_POLICY_BYTES + 1),
        "mta-sts.chunked.test" => Reply::OversizeChunked(10 * MAX_POLICY_BYTES),
        "mta-sts.slow.test" => Reply::Slow(Duration::from_secs(20)),
        // The redirect target is a host that serves a valid policy.
        _ => Reply::Redirect("https://mta-sts.good.test/.well-known/mta-sts.txt".into()),
    }
}

struct World {
    dns: Dns,
    cfg: FetchConfig,
}

async fn world(
    chain_for: impl FnOnce(
        &TestCa,
    ) -> (
        Vec<rustls_pki_types::CertificateDer<'static>>,
        rustls_pki_types::PrivateKeyDer<'static>,
    ),
) -> World {
    let ca = TestCa::new("fetch test CA");
    let (chain, key) = chain_for(&ca);
    let https = https_server::spawn("127.0.0.1", chain, key, route).await;
    let mut z = Zone::default();
    for h in HOSTS.iter().filter(|h| **h != "mta-sts.twoaddr.test") {
        z.a(&format!("{h}."), "127.0.0.1");
    }
    // A blackholed first address (it accepts, then says nothing), a working second one.
    let stall = tokio::net::TcpListener::bind((STALLING_ADDR, https.port()))
        .await
        .unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = stall.accept().await {
            held.push(tcp);
        }
    });
    z.a("mta-sts.twoaddr.test.", STALLING_ADDR);
    z.a("mta-sts.twoaddr.test.", "127.0.0.1");
    z.a("mta-sts.closed.test.", "127.0.0.3");
    let dns_addr = dns_server::spawn(z).await;
    let dns = Dns::new(&DnsConfig {
        server: Some(dns_addr),
        timeout: Duration::from_millis(500),
        attempts: 1,
        lookup_timeout: Duration::from_secs(3),
        dnssec: false,
        trust_anchors: None,
    })
    .unwrap();
    World {
        dns,
        cfg: FetchConfig {
            https_port: https.port(),
            roots: stsward_net::cert::Roots::new(false, std::slice::from_ref(&ca.cert)).unwrap(),
            timeout: Duration::from_secs(3),
            max_body: MAX_POLICY_BYTES,
        },
    }
}

async fn good_world() -> World {
    world(|ca| {
        let leaf = ca.leaf(HOSTS, Window::Current);
        let key = leaf.key_clone();
        (vec![leaf.cert], key)
    })
    .await
}

#[tokio::test]
async fn rfc8461_3_3_valid_policy_is_fetched_with_cert_facts() {
    let w = good_world().await;
    let p = fetch_policy(&w.dns, "good.test", &w.cfg, now())
        .await
        .unwrap();
    assert_eq!(p.body, POLICY.as_bytes());
    assert_eq!(p.content_type, "text/plain; charset=utf-8");
    assert_eq!(p.addr.ip().to_string(), "127.0.0.1");
    assert!(
        p.cert
            .subject_alt_names
            .iter()
            .any(|n| n == "mta-sts.good.test")
    );
    assert!(p.cert.not_after > now());
}

#[tokio::test]
async fn rfc8461_3_3_redirect_is_refused_even_to_a_valid_policy() {
    let w = good_world().await;
    // the target is fine on its own…
    assert!(
        fetch_policy(&w.dns, "good.test", &w.cfg, now())
            .await
            .is_ok()
    );
    // …but a 3xx must not be followed
    let e = fetch_policy(&w.dns, "redirect.test", &w.cfg, now())
        .await
        .unwrap_err();
    match e {
        FetchError::Redirect { status, location } => {
            assert_eq!(status, 301);
            assert_eq!(
                location.as_deref(),
                Some("https://mta-sts.good.test/.well-known/mta-sts.txt")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rfc8461_3_3_refusals_table() {
    let w = good_world().await;
    // (domain, check, why)
    type Check = fn(&FetchError) -> bool;
    let cases: Vec<(&str, Check, &str)> = vec![
        (
            "missing.test",
            |e| matches!(e, FetchError::Status(404)),
            "only 200 is a policy",
        ),
        (
            "html.test",
            |e| matches!(e, FetchError::ContentType(ct) if ct == "text/html; charset=utf-8"),
            "media type must be text/plain",
        ),
        (
            "big.test",
            |e| matches!(e, FetchError::TooLarge { limit } if *limit == MAX_POLICY_BYTES),
            "64 KiB + 1 with Content-Length",
        ),
        (
            "chunked.test",
            |e| matches!(e, FetchError::TooLarge { limit } if *limit == MAX_POLICY_BYTES),
            "oversize chunked body, capped while streaming",
        ),
        (
            "nowhere.test",
            |e| matches!(e, FetchError::NoAddress),
            "policy host has no address",
        ),
        (
            "closed.test",
            |e| matches!(e, FetchError::Connect { .. }),
            "nothing listens on the policy host",
        ),
    ];
    for (domain, check, why) in cases {
        let e = fetch_policy(&w.dns, domain, &w.cfg, now())
            .await
            .unwrap_err();
        assert!(check(&e), "{why}: got {e:?}");
    }
}

#[tokio::test]
async fn rfc8461_3_3_slow_server_times_out_within_the_bound() {
    let mut w = good_world().await;
    w.cfg.timeout = Duration::from_millis(800);
    let started = Instant::now();
    let e = fetch_policy(&w.dns, "slow.test", &w.cfg, now())
        .await
        .unwrap_err();
    assert!(
        matches!(e, FetchError::Timeout { after } if after == Duration::from_millis(800)),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn rfc8461_3_3_certificate_refusals() {
    // (certificate, check, why)
    let wrong = world(|ca| {
        let l = ca.leaf(&["www.good.test"], Window::Current);
        let k = l.key_clone();
        (vec![l.cert], k)
    })
    .await;
    let e = fetch_policy(&wrong.dns, "good.test", &wrong.cfg, now())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, FetchError::Tls(CertProblem::NameMismatch { presented_names }) if presented_names == &["www.good.test"]),
        "wrong name: {e:?}"
    );

    let expired = world(|ca| {
        let l = ca.leaf(HOSTS, Window::Expired);
        let k = l.key_clone();
        (vec![l.cert], k)
    })
    .await;
    let e = fetch_policy(&expired.dns, "good.test", &expired.cfg, now())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, FetchError::Tls(CertProblem::Expired { checked_at, .. }) if *checked_at == now()),
        "expired: {e:?}"
    );

    let selfs = world(|_| {
        let l = self_signed(HOSTS, Window::Current);
        let k = l.key_clone();
        (vec![l.cert], k)
    })
    .await;
    let e = fetch_policy(&selfs.dns, "good.test", &selfs.cfg, now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            FetchError::Tls(CertProblem::Untrusted {
                reason: UntrustedReason::SelfSigned
            })
        ),
        "self-signed: {e:?}"
    );
}

/// Issue 6: each address of the policy host gets its own share of the fetch budget, so a
/// blackholed first address does not keep the second one from being tried.
#[tokio::test]
async fn rfc8461_3_3_blackholed_first_address_leaves_time_for_the_next() {
    let w = good_world().await;
    let started = Instant::now();
    let p = fetch_policy(&w.dns, "twoaddr.test", &w.cfg, now())
        .await
        .expect("the second address answers");
    assert_eq!(p.addr.ip().to_string(), "127.0.0.1");
    assert!(started.elapsed() < w.cfg.timeout + Duration::from_millis(500));
}
