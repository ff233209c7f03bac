//! `stsward serve` run as a real process: a temporary SQLite store, a static certificate
//! (`[tls]`), listeners on loopback; `stsward domain add` from another process makes the
//! policy fetchable and the `_mta-sts` TXT appear; SIGTERM stops it with status 0; a bad
//! configuration exits 2 naming the key.

#[path = "../../stsward-server/tests/serve_support/mod.rs"]
mod serve_support;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serve_support::{Pki, fetch, pki, sts_id, within};

/// A loopback port free for TCP and UDP at the time of asking.
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

fn write_config(dir: &Path, pki: &Pki, extra: &str) -> std::path::PathBuf {
    let url = format!("sqlite://{}", dir.join("stsward.db").display());
    let text = format!("{}{extra}", serve_support::config_text(pki, &url, false));
    let path = dir.join("stsward.toml");
    std::fs::write(&path, text).expect("config");
    path
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn serve_hosts_what_domain_add_writes_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path(), &["mta-sts.cli.test"]);
    let config = write_config(dir.path(), &pki, "");
    let (https, http, dns) = (free_port(), free_port(), free_port());
    let https_addr: SocketAddr = ([127, 0, 0, 1], https).into();
    let dns_addr: SocketAddr = ([127, 0, 0, 1], dns).into();
    let log = std::fs::File::create(dir.path().join("serve.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_stsward"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--https", &https_addr.to_string()])
        .args(["--http", &format!("127.0.0.1:{http}")])
        .args(["--dns", &dns_addr.to_string()])
        .env_remove("STSWARD_STORE")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn stsward serve");
    let mut server = Server { child };
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    // Up: the zone answers, and does not know the domain yet.
    let up = rt.block_on(within(Duration::from_secs(20), || async {
        tokio::time::timeout(Duration::from_millis(500), sts_id(dns_addr, "cli.test"))
            .await
            .is_ok_and(|r| r == Err(hickory_proto::op::ResponseCode::NXDomain))
    }));
    let log_text = || std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    assert!(up.is_some(), "serve did not come up: {}", log_text());

    let add = Command::new(env!("CARGO_BIN_EXE_stsward"))
        .args(["domain", "add", "cli.test", "--mx", "mx.cli.test", "--json"])
        .arg("--config")
        .arg(&config)
        .env_remove("STSWARD_STORE")
        .output()
        .expect("stsward domain add");
    assert_eq!(
        add.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let added: serde_json::Value = serde_json::from_slice(&add.stdout).expect("JSON");
    let id = added
        .pointer("/version/sts_id")
        .and_then(|v| v.as_str())
        .expect("the new id in the output")
        .to_owned();

    let served = rt.block_on(within(Duration::from_secs(3), || async {
        fetch(https_addr, "cli.test", &pki.ca)
            .await
            .mode()
            .as_deref()
            == Some("testing")
            && sts_id(dns_addr, "cli.test").await.as_deref() == Ok(id.as_str())
    }));
    assert!(served.is_some(), "policy and id not served: {}", log_text());
    assert!(
        log_text().contains("stsward serve: started"),
        "{}",
        log_text()
    );

    let kill = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let code = wait_exit(&mut server.child, Duration::from_secs(15));
    assert_eq!(code, Some(0), "exit after SIGTERM: {}", log_text());
}

#[test]
fn a_bad_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki(dir.path(), &["mta-sts.cli.test"]);
    for (extra, key) in [("[keys]\nbogus = 1\n", "bogus"), ("", "hosting.txt_ttl")] {
        let config = if key == "hosting.txt_ttl" {
            let path = dir.path().join("ttl.toml");
            let text = std::fs::read_to_string(write_config(dir.path(), &pki, ""))
                .expect("config")
                .replace("txt_ttl = 60", "txt_ttl = 0");
            std::fs::write(&path, text).expect("write");
            path
        } else {
            write_config(dir.path(), &pki, extra)
        };
        let out = Command::new(env!("CARGO_BIN_EXE_stsward"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env_remove("STSWARD_STORE")
            .output()
            .expect("stsward serve");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {err}");
        assert!(err.contains(key), "{key}: {err}");
    }
    // A config that parses but cannot serve: no zone.
    let path = dir.path().join("nozone.toml");
    let text = std::fs::read_to_string(write_config(dir.path(), &pki, ""))
        .expect("config")
        .replace("zone = \"sts.provider.test\"\n", "");
    std::fs::write(&path, text).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_stsward"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("stsward serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("hosting.zone"), "{err}");
}
