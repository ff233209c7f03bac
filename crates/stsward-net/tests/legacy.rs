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
