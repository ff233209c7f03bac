//! RFC 3207 / RFC 8461 §4.2 end to end: a loopback MX with chosen TLS faults, fixed `now`.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::smtp_server::{self, Tls};
use common::test_pki::{TestCa, Window, now, self_signed};
use stsward_net::cert::{Roots, UntrustedReason, Validity};
use stsward_net::legacy::LegacyMode;
use stsward_net::limit::PerIpLimit;
use stsward_net::starttls::{
    AddrProbe, ProbeConfig, ProbeError, ProbeStep, probe_address, probe_mx,
};
use stsward_net::tls::TlsVersion;

const MX: &str = "mx.example.test";

fn cfg(ca: &TestCa, port: u16) -> ProbeConfig {
    let mut c = ProbeConfig::new(
        "probe.stsward.test",
        Roots::new(false, std::slice::from_ref(&ca.cert)).unwrap(),
    );
    c.smtp_port = port;
    c.connect_timeout = Duration::from_secs(2);
    c.banner_timeout = Duration::from_millis(500);
    c.ehlo_timeout = Duration::from_secs(2);
    c.starttls_timeout = Duration::from_secs(2);
    c.handshake_timeout = Duration::from_secs(2);
    c.legacy = LegacyMode::Never;
    c
}

async fn probe(ca: &TestCa, tls: Tls) -> AddrProbe {
    let addr = smtp_server::spawn(tls).await;
    let ip: IpAddr = addr.ip();
    let mut v = probe_mx(MX, &[ip], &cfg(ca, addr.port()), now()).await;
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn cert(ca: &TestCa, names: &[&str], w: Window) -> Tls {
    let l = ca.leaf(names, w);
    let k = l.key_clone();
    smtp_server::cert(vec![l.cert], k)
}

#[tokio::test]
async fn rfc3207_good_mx_reports_banner_extensions_and_tls_facts() {
    let ca = TestCa::new("MX CA");
    let p = probe(&ca, cert(&ca, &[MX], Window::Current)).await;
    assert!(p.error.is_none(), "{:?}", p.error);
    let banner = p.banner.as_ref().unwrap();
    assert_eq!(banner.code, 220);
    assert_eq!(banner.lines.len(), 2, "multi-line 220- banner");
    let kw: Vec<&str> = p
        .ehlo_extensions
        .iter()
        .map(|e| e.keyword.as_str())
        .collect();
    assert_eq!(kw, ["PIPELINING", "STARTTLS", "SIZE"]);
    assert!(p.starttls_offered);
    let tls = p.tls.as_ref().unwrap();
    assert_eq!(tls.version, TlsVersion::Tls1_3);
    assert!(tls.cipher.starts_with("TLS13_"), "{}", tls.cipher);
    assert_eq!(tls.chain.len(), 1);
    assert!(tls.verdict.is_ok(), "{:?}", tls.verdict);
    assert_eq!(p.best_version(), Some(TlsVersion::Tls1_3));
}

#[tokio::test]
async fn rfc8461_4_2_expired_cert_is_expired_not_missing_starttls() {
    let ca = TestCa::new("MX CA");
    let p = probe(&ca, cert(&ca, &[MX], Window::Expired)).await;
    assert!(p.starttls_offered, "STARTTLS was offered");
    assert!(p.error.is_none(), "the handshake completes: {:?}", p.error);
    let v = &p.tls.as_ref().unwrap().verdict;
    assert!(matches!(v.validity, Validity::Expired { checked_at, .. } if checked_at == now()));
    assert_eq!(v.trusted, Ok(()), "trust is judged apart from expiry");
    assert!(v.name_ok);
}

#[tokio::test]
async fn rfc8461_4_2_wrong_name_still_judges_trust_and_validity() {
    let ca = TestCa::new("MX CA");
    let p = probe(&ca, cert(&ca, &["other.example.test"], Window::Current)).await;
    let v = &p.tls.as_ref().unwrap().verdict;
    assert!(!v.name_ok);
    assert_eq!(v.trusted, Ok(()));
    assert!(matches!(v.validity, Validity::Valid { .. }));
}

#[tokio::test]
async fn rfc8461_4_2_self_signed_is_untrusted_with_name_and_validity() {
    let ca = TestCa::new("MX CA");
    let l = self_signed(&[MX], Window::Current);
    let k = l.key_clone();
    let p = probe(&ca, smtp_server::cert(vec![l.cert], k)).await;
    let v = &p.tls.as_ref().unwrap().verdict;
    assert_eq!(
        v.trusted.as_ref().unwrap_err().reason,
        UntrustedReason::SelfSigned
    );
    assert!(v.name_ok);
    assert!(matches!(v.validity, Validity::Valid { .. }));
}

#[tokio::test]
async fn rfc3207_steps_fail_with_their_own_errors() {
    let ca = TestCa::new("MX CA");

    let p = probe(&ca, Tls::NotOffered).await;
    assert!(
        !p.starttls_offered && p.tls.is_none() && p.error.is_none(),
        "no STARTTLS: {p:?}"
    );

    let p = probe(&ca, Tls::Refuse(454)).await;
    assert!(p.starttls_offered);
    assert!(
        matches!(p.error, Some(ProbeError::StarttlsRefused(454))),
        "{:?}",
        p.error
    );

    let p = probe(&ca, Tls::Garbage).await;
    assert!(p.starttls_offered, "offered, yet the handshake fails");
    assert!(
        matches!(p.error, Some(ProbeError::Handshake(_))),
        "{:?}",
        p.error
    );

    let started = Instant::now();
    let p = probe(&ca, Tls::Mute).await;
    assert!(
        matches!(
            p.error,
            Some(ProbeError::Timeout {
                step: ProbeStep::Banner,
                ..
            })
        ),
        "{:?}",
        p.error
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    // nothing listens: bind a port, then free it
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let v = probe_mx(MX, &["127.0.0.1".parse().unwrap()], &cfg(&ca, port), now()).await;
    assert!(
        matches!(v[0].error, Some(ProbeError::Connect(_))),
        "{:?}",
        v[0].error
    );
}

/// Regression (issue 6): an MX that offers no STARTTLS and then never answers QUIT hung the
/// probe, and with it `stsward check`, forever: QUIT had no timeout.
#[tokio::test]
async fn regression_no_starttls_mx_that_never_answers_quit_returns() {
    let ca = TestCa::new("MX CA");
    let addr = smtp_server::spawn(Tls::MuteQuit).await;
    let mut c = cfg(&ca, addr.port());
    c.quit_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let v = tokio::time::timeout(
        Duration::from_secs(5),
        probe_mx(MX, &[addr.ip()], &c, now()),
    )
    .await
    .expect("the probe returns although QUIT is never answered");
    let p = &v[0];
    assert!(!p.starttls_offered && p.error.is_none(), "{p:?}");
    assert!(p.quit_timed_out, "the unanswered QUIT is recorded");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// The job's deadline cuts every step short, and the error still names the step.
#[tokio::test]
async fn deadline_cuts_each_step_short_and_names_it() {
    let ca = TestCa::new("MX CA");
    let cases = [
        (Tls::Mute, ProbeStep::Banner, "accepts, never greets"),
        (Tls::Trickle, ProbeStep::Banner, "a byte a second"),
    ];
    for (tls, step, why) in cases {
        let addr = smtp_server::spawn(tls).await;
        let mut c = cfg(&ca, addr.port());
        // Step timeouts far beyond the deadline: only the deadline can stop the probe.
        c = c.with_step_timeout(Duration::from_secs(30));
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        let p = probe_address(MX, addr.ip(), &c, now(), deadline).await;
        let took = started.elapsed();
        assert!(took < Duration::from_millis(2500), "{why}: took {took:?}");
        assert!(
            matches!(&p.error, Some(ProbeError::Timeout { step: s, .. }) if *s == step),
            "{why}: {:?}",
            p.error
        );
    }
}

/// Issue 6: at most N concurrent connections per MX address, however many probes run.
#[tokio::test]
async fn per_ip_limit_bounds_concurrent_connections_to_one_address() {
    let ca = TestCa::new("MX CA");
    let (addr, conns) = smtp_server::spawn_counting(cert(&ca, &[MX], Window::Current)).await;
    let mut c = cfg(&ca, addr.port());
    c.limit = PerIpLimit::new(2);
    c = c.with_step_timeout(Duration::from_secs(10));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let all = futures::future::join_all(
        (0..12).map(|_| probe_address(MX, addr.ip(), &c, now(), deadline)),
    )
    .await;
    for p in &all {
        assert!(p.error.is_none(), "{:?}", p.error);
    }
    let peak = conns.peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!(peak <= 2, "peak {peak} concurrent connections, limit 2");
    assert!(peak >= 1);
}

/// Waiting for a per-address slot is not a network timeout: a probe that never got a slot
/// fails at Connect with its own words, so nothing reads it as "port 25 is blocked".
#[tokio::test]
async fn per_ip_limit_slot_wait_is_not_a_connect_timeout() {
    let ca = TestCa::new("MX CA");
    let addr = smtp_server::spawn(Tls::Mute).await;
    let mut c = cfg(&ca, addr.port());
    c.limit = PerIpLimit::new(1);
    c = c.with_step_timeout(Duration::from_millis(800));
    // The first probe holds the slot for its whole banner wait (800 ms); the second may wait
    // for a slot only as long as its connect step (300 ms).
    c.connect_timeout = Duration::from_millis(300);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let (first, second) = tokio::join!(probe_address(MX, addr.ip(), &c, now(), deadline), async {
        // Let the first probe take the only slot.
        tokio::time::sleep(Duration::from_millis(100)).await;
        probe_address(MX, addr.ip(), &c, now(), deadline).await
    });
    assert!(
        matches!(
            first.error,
            Some(ProbeError::Timeout {
                step: ProbeStep::Banner,
                ..
            })
        ),
        "{:?}",
        first.error
    );
    match &second.error {
        Some(ProbeError::Connect(e)) => {
            assert!(e.to_string().contains("no free connection slot"), "{e}");
        }
        other => panic!("the second probe waited for the slot: {other:?}"),
    }
}
