//! `stsward resolve serve` as a real process against the lab on loopback: it answers
//! socketmap lookups, re-reads its configuration on SIGHUP (keeping the running one when the
//! file is broken), `stsward resolve show|purge` reach it through the admin endpoint, and
//! SIGTERM stops it with exit status 0.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stsward_lab::{Lab, LabOptions, RunningLab, Scenario};
use stsward_proto::socketmap::{Reply, ReplyParser, Request};

const SCENARIO: &str = include_str!("../../stsward-lab/scenarios/resolver.toml");
const WAIT: Duration = Duration::from_secs(20);

/// Fields drop in order: the daemon is killed, then the lab's servers stop before their
/// runtime goes.
struct World {
    daemon: Daemon,
    _lab: RunningLab,
    _rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

/// The daemon process; killed on drop if a test failed before stopping it.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn start(config: &str) -> (World, SocketAddr, SocketAddr) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario: Scenario = SCENARIO.parse().expect("scenario");
    let opts = LabOptions::new(dir.path(), time::OffsetDateTime::now_utc());
    let lab = rt
        .block_on(Lab::start(&scenario, &opts))
        .expect("lab starts");
    let config_path = dir.path().join("resolve.toml");
    std::fs::write(&config_path, config).expect("config");
    let (socketmap, admin) = (free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stsward"));
    cmd.args(["resolve", "serve", "--config"])
        .arg(&config_path)
        .args(["--listen", &socketmap.to_string()])
        .args(["--admin", &admin.to_string()])
        .args(["--resolver", &lab.resolver_addr().to_string()])
        .arg("--ca-file")
        .arg(lab.ca_file())
        .args(["--https-port", &lab.https_port().to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr file"));
    if let Some(a) = lab.trust_anchor_file() {
        cmd.arg("--trust-anchors").arg(a);
    }
    let daemon = Daemon(cmd.spawn().expect("spawn stsward"));
    let world = World {
        daemon,
        _lab: lab,
        _rt: rt,
        dir,
    };
    let started = Instant::now();
    while TcpStream::connect(socketmap).is_err() {
        assert!(
            started.elapsed() < WAIT,
            "the daemon did not listen on {socketmap}:\n{}",
            world.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (world, socketmap, admin)
}

impl World {
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("resolve.toml")
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.daemon.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name}");
    }
}

/// One socketmap lookup on a fresh connection.
fn lookup(addr: SocketAddr, key: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    let request = Request {
        name: "postfix".into(),
        key: key.into(),
    };
    s.write_all(&request.encode()).expect("write");
    let mut parser = ReplyParser::new(100_000);
    let mut buf = [0u8; 4096];
    loop {
        if let Some(reply) = parser.next_reply().expect("a well-formed reply") {
            return reply;
        }
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "connection closed before a reply");
        parser.push(&buf[..n]);
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stsward"))
        .args(args)
        .output()
        .expect("run stsward");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("rewrite config");
}

#[test]
fn serve_answers_reloads_on_sighup_and_stops_on_sigterm() {
    let (mut w, socketmap, admin) = start("[answer]\ntlsrpt_attributes = false\n");

    assert_eq!(
        lookup(socketmap, "resolve-enforce.test"),
        Reply::Ok("secure match=mx.resolve-enforce.test servername=hostname".into())
    );
    assert_eq!(lookup(socketmap, "resolve-testing.test"), Reply::NotFound);

    // SIGHUP with TLSRPT attributes turned on: the testing domain is now reported as sts.
    write(&w.config_path(), "[answer]\ntlsrpt_attributes = true\n");
    w.signal("HUP");
    wait_for("the reloaded configuration answers", || {
        matches!(lookup(socketmap, "resolve-testing.test"),
            Reply::Ok(data) if data.starts_with("may policy_type=sts policy_domain=resolve-testing.test"))
    });

    // A broken file: the reload is refused, the running configuration stays.
    write(&w.config_path(), "[answer]\nno_such_key = 1\n");
    w.signal("HUP");
    wait_for("the refused reload is logged", || {
        w.stderr().contains("reload refused")
    });
    assert!(
        w.stderr().contains("no_such_key"),
        "the log names the key: {}",
        w.stderr()
    );
    assert!(matches!(
        lookup(socketmap, "resolve-testing.test"),
        Reply::Ok(data) if data.starts_with("may policy_type=sts")
    ));

    // show and purge through the admin endpoint.
    let admin_arg = admin.to_string();
    let (code, out, err) = run(&[
        "resolve",
        "show",
        "resolve-testing.test",
        "--admin",
        &admin_arg,
    ]);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("show prints JSON");
    assert_eq!(shown["domain"], "resolve-testing.test", "{out}");
    let (code, out, err) = run(&[
        "resolve",
        "purge",
        "RESOLVE-TESTING.test.",
        "--admin",
        &admin_arg,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"purged\":true"), "{out}");
    let (code, _, err) = run(&["resolve", "show", "x.test", "--admin", "127.0.0.1:1"]);
    assert_eq!(code, 2, "an unreachable daemon is exit 2");
    assert!(err.contains("127.0.0.1:1"), "{err}");

    // SIGTERM: a clean stop, exit 0.
    w.signal("TERM");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = w.daemon.0.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < WAIT, "SIGTERM did not stop the daemon");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", w.stderr());
}

#[test]
fn serve_refuses_a_bad_configuration_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("resolve.toml");
    std::fs::write(&path, "[cache]\nfetch_retry_secs = 10\n").expect("config");
    let (code, _, err) = run(&[
        "resolve",
        "serve",
        "--config",
        path.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cache.fetch_retry_secs"), "{err}");
}
