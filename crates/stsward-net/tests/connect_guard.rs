//! The last gate of the SSRF filter (issue 9): whatever DNS said before, the exact address of
//! each connection is judged again. Here the address reaches the prober directly, as after a
//! DNS rebinding, and no connection is made (a listener of this test counts its accepts);
//! the operator's allowance lets the same probe connect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use stsward_net::address_policy::Cidr;
use stsward_net::cert::Roots;
use stsward_net::connect_guard::ConnectGuard;
use stsward_net::legacy::LegacyMode;
use stsward_net::starttls::{ProbeConfig, ProbeError, probe_address};

async fn counting_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((_sock, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, count)
}

fn cfg(port: u16, guard: ConnectGuard) -> ProbeConfig {
    let mut c = ProbeConfig::new("probe.test", Roots::new(false, &[]).expect("roots"))
        .with_step_timeout(Duration::from_millis(500));
    c.smtp_port = port;
    c.legacy = LegacyMode::Always;
    c.guard = Some(guard);
    c
}

#[tokio::test]
async fn the_probe_refuses_a_loopback_address_without_connecting() {
    let (addr, accepts) = counting_listener().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let p = probe_address(
        "mx.rebound.test",
        addr.ip(),
        &cfg(addr.port(), ConnectGuard::default()),
        SystemTime::now(),
        deadline,
    )
    .await;
    match &p.error {
        Some(ProbeError::Refused(r)) => assert_eq!(r.addr, addr.ip()),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        p.legacy.is_none(),
        "no second (legacy TLS) connection either"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        accepts.load(Ordering::SeqCst),
        0,
        "a refused address was connected to"
    );

    // Allowed by the operator: the same probe connects (and then waits for a banner).
    let allow = ConnectGuard::new(vec!["127.0.0.0/8".parse::<Cidr>().expect("cidr")]);
    let p = probe_address(
        "mx.rebound.test",
        addr.ip(),
        &cfg(addr.port(), allow),
        SystemTime::now(),
        tokio::time::Instant::now() + Duration::from_secs(5),
    )
    .await;
    assert!(
        !matches!(p.error, Some(ProbeError::Refused(_))),
        "{:?}",
        p.error
    );
    assert!(
        accepts.load(Ordering::SeqCst) >= 1,
        "the allowed address was connected to"
    );
}
