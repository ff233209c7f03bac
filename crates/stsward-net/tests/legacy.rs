//! RFC 8996 — an MX that only speaks TLS 1.0: rustls fails, the OpenSSL probe finds TLS 1.0.
#![cfg(feature = "legacy-tls")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::test_pki::{TestCa, Window, now};
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod, SslVersion};
use openssl::x509::X509;
use stsward_net::cert::Roots;
use stsward_net::legacy::LegacyMode;
use stsward_net::starttls::{ProbeConfig, ProbeError, probe_mx};
use stsward_net::tls::TlsVersion;

fn tls10_only_mx(ca: &TestCa) -> u16 {
    let leaf = ca.leaf(&["mx.old.test"], Window::Current);
    let mut b = SslAcceptor::mozilla_intermediate(SslMethod::tls_server()).unwrap();
    b.set_cipher_list("DEFAULT:@SECLEVEL=0").unwrap();
    b.set_min_proto_version(Some(SslVersion::TLS1)).unwrap();
    b.set_max_proto_version(Some(SslVersion::TLS1)).unwrap();
    b.set_certificate(&X509::from_der(leaf.cert.as_ref()).unwrap())
        .unwrap();
    b.set_private_key(&PKey::private_key_from_der(leaf.key.secret_der()).unwrap())
        .unwrap();
    let acceptor = b.build();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let Ok(mut s) = stream else { return };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"220 mx.old.test ESMTP\r\n").unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let mut go = false;
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let cmd = line.trim_end().to_ascii_uppercase();
                line.clear();
                if cmd.starts_with("EHLO") {
                    s.write_all(b"250-mx.old.test\r\n250 STARTTLS\r\n").unwrap();
                } else if cmd == "STARTTLS" {
                    s.write_all(b"220 go ahead\r\n").unwrap();
                    go = true;
                    break;
                }
            }
            if go {
                let _ = acceptor.accept(s);
            }
        }
    });
    port
}

#[tokio::test]
async fn rfc8996_tls10_only_mx_is_found_by_the_legacy_probe() {
    let ca = TestCa::new("old CA");
    let port = tls10_only_mx(&ca);
    let mut cfg = ProbeConfig::new(
        "probe.stsward.test",
        Roots::new(false, std::slice::from_ref(&ca.cert)).unwrap(),
    );
    cfg.smtp_port = port;
    cfg.banner_timeout = Duration::from_secs(3);
    cfg.handshake_timeout = Duration::from_secs(3);
    cfg.legacy = LegacyMode::OnFailure;
    let v = probe_mx("mx.old.test", &["127.0.0.1".parse().unwrap()], &cfg, now()).await;
    let p = &v[0];
    assert!(p.starttls_offered);
    assert!(
        matches!(p.error, Some(ProbeError::Handshake(_))),
        "rustls cannot speak TLS 1.0: {:?}",
        p.error
    );
    let legacy = p.legacy.as_ref().expect("legacy probe ran");
    assert!(legacy.failure.is_none(), "{:?}", legacy.failure);
    assert_eq!(legacy.best_version, Some(TlsVersion::Tls1_0));
    assert_eq!(
        p.best_version(),
        Some(TlsVersion::Tls1_0),
        "so a checker can say: only TLS 1.0"
    );
}

/// Regression (issue 6): the TLS 1.0/1.1 probe ran on a blocking thread that outlived its
/// timeout and kept its socket open. Now the job's deadline ends it: the probe returns by
/// the deadline and the server sees its socket closed by then.
#[tokio::test]
async fn regression_legacy_probe_that_stalls_in_the_handshake_ends_at_the_deadline() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                let mut io = tokio::io::BufReader::new(tcp);
                io.write_all(b"220 mx.stall.test ESMTP\r\n").await.unwrap();
                let mut line = String::new();
                while io.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let cmd = line.trim_end().to_ascii_uppercase();
                    line.clear();
                    if cmd.starts_with("EHLO") {
                        io.write_all(b"250-mx.stall.test\r\n250 STARTTLS\r\n")
                            .await
                            .unwrap();
                    } else if cmd == "STARTTLS" {
                        io.write_all(b"220 go ahead\r\n").await.unwrap();
                        break;
                    }
                }
                // Read the ClientHello and answer nothing, until the client hangs up.
                let mut sink = [0u8; 4096];
                while io.read(&mut sink).await.unwrap_or(0) > 0 {}
                let _ = closed_tx.send(std::time::Instant::now());
            });
        }
    });

    let ca = TestCa::new("stall CA");
    let cfg = ProbeConfig::new(
        "probe.stsward.test",
        Roots::new(false, std::slice::from_ref(&ca.cert)).unwrap(),
    )
    .with_step_timeout(Duration::from_secs(30));
    let cfg = ProbeConfig {
        smtp_port: port,
        legacy: LegacyMode::OnFailure,
        ..cfg
    };
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    let p = stsward_net::starttls::probe_address(
        "mx.stall.test",
        "127.0.0.1".parse().unwrap(),
        &cfg,
        now(),
        deadline,
    )
    .await;
    let returned = started.elapsed();
    assert!(returned < Duration::from_millis(2500), "took {returned:?}");
    assert!(
        matches!(
            p.error,
            Some(ProbeError::Timeout {
                step: stsward_net::starttls::ProbeStep::Handshake,
                ..
            })
        ),
        "{:?}",
        p.error
    );
    // Every connection the probe opened is closed by now (give the server a moment to see
    // the FIN); before, the blocking thread held the legacy socket for its own timeout.
    let grace = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(grace);
    let mut closed = 0;
    loop {
        tokio::select! {
            Some(at) = closed_rx.recv() => {
                assert!(at.duration_since(started) < Duration::from_millis(2500));
                closed += 1;
            }
            () = &mut grace => break,
        }
    }
    assert!(closed >= 1, "the server saw its connection(s) closed");
}
