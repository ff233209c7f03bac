//! A throwaway recursive resolver for one test: Debian's `unbound`, a temporary config,
//! loopback only, in the foreground (`-d`, no daemon fork), killed when dropped.
//!
//! ```text
//! unbound installed            -> Some(server) on the given loopback address and port
//! not installed, CI set        -> panic: CI must never pass without unbound
//! not installed, CI not set    -> None, and one line in <target>/corpus-skipped/<group>
//! installed but fails to start -> panic with its output: that is a failure, not a skip
//! ```
//!
//! The lab's DNS and `stsward serve`'s DNS are authoritative-only (RFC 1034 §4.3.1: they
//! answer from their zones and never recurse), while a sending MTA or `stsward check` asks a
//! recursive resolver that follows CNAMEs and delegations across zones. This resolver plays
//! that part: each [`Stub`] sends the names of one zone to the given authoritative servers
//! (with ports, which a delegation's glue cannot carry). Every other name gets an empty
//! answer from a local, unsigned root, so a test never waits for, or reaches, the
//! internet's root servers; a DS question for a top-level stub gets the same empty answer
//! (no DS: an insecure delegation, as from the real root for an unsigned top-level domain).
//!
//! Everything lives in a temporary directory owned by the test (config, log, pid file); the
//! server keeps the test's user (`username: ""`), so nothing root-owned is left behind.
//! DNSSEC validation is off unless trust anchors are given (a validator needs a trust
//! anchor for the zones it validates). Caching is capped at a few seconds so a test
//! that changes records sees the change soon.
//!
//! The binary is `$STSWARD_UNBOUND`, else `unbound` on the `PATH` or in `/usr/sbin`
//! (`scripts/install-test-deps` installs the Debian package).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Overrides the unbound binary.
pub const UNBOUND_BIN_ENV: &str = "STSWARD_UNBOUND";

/// How long unbound may take to answer its first query after start.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one readiness probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// Longest time an answer stays cached (seconds).
const CACHE_MAX_TTL: u32 = 5;

/// One zone whose names unbound asks of the given authoritative servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stub {
    /// The zone, e.g. `test` or `sts.provider.test` (a trailing dot is optional).
    pub zone: String,
    /// The authoritative servers, with their ports.
    pub servers: Vec<SocketAddr>,
}

/// How to run the resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnboundOptions {
    /// Where it listens, UDP and TCP. Port 0 picks a free port; a fixed port (e.g. 53 for a
    /// peer that reads `/etc/resolv.conf`) is used as given.
    pub listen: SocketAddr,
    /// The zones it resolves; every other name gets an empty answer from the local root.
    pub stubs: Vec<Stub>,
    /// DNSSEC trust anchors (DNSKEY or DS records in zone-file form); `None`: no validation.
    pub trust_anchors: Option<String>,
}

/// A running throwaway unbound; killed on drop.
#[derive(Debug)]
pub struct Unbound {
    child: Child,
    /// Holds the config, the pid file and unbound's output; removed on drop.
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Unbound {
    /// Starts unbound for the test group `group` (e.g. `stsward/serve-e2e`); `None` when
    /// unbound is not installed and the group is skipped (see the module docs).
    ///
    /// # Panics
    ///
    /// When unbound is absent and `CI` is set, and when an installed unbound fails to start
    /// (with its output in the message).
    pub fn start(group: &str, opts: &UnboundOptions) -> Option<Unbound> {
        let Some(bin) = find_binary() else {
            let why = match std::env::var_os(UNBOUND_BIN_ENV) {
                Some(bin) => format!(
                    "unbound not found: {UNBOUND_BIN_ENV}={} is not a file",
                    Path::new(&bin).display()
                ),
                None => format!(
                    "unbound not installed (no unbound on PATH or in /usr/sbin; set \
                     {UNBOUND_BIN_ENV} or run scripts/install-test-deps)"
                ),
            };
            if crate::in_ci(std::env::var("CI").ok().as_deref()) {
                panic!("{group}: {why}; CI is set, so a missing unbound is a failure");
            }
            crate::record_skip(group, &why);
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("stsward-unbound-")
            .tempdir()
            .unwrap_or_else(|e| panic!("{group}: temporary directory: {e}"));
        let anchors = opts.trust_anchors.as_ref().map(|text| {
            let path = dir.path().join("trust-anchors.txt");
            std::fs::write(&path, text)
                .unwrap_or_else(|e| panic!("{group}: {}: {e}", path.display()));
            path
        });

        let mut last = String::new();
        // A probed port may be taken before unbound binds it: try a few times. A fixed port
        // gets one try.
        let tries = if opts.listen.port() == 0 { 5 } else { 1 };
        for _ in 0..tries {
            let addr = if opts.listen.port() == 0 {
                SocketAddr::new(opts.listen.ip(), free_port(opts.listen.ip()))
            } else {
                opts.listen
            };
            let config_file = dir.path().join("unbound.conf");
            let config = config_text(dir.path(), addr, &opts.stubs, anchors.as_deref());
            std::fs::write(&config_file, config)
                .unwrap_or_else(|e| panic!("{group}: {}: {e}", config_file.display()));
            let log_file = dir.path().join("unbound.log");
            let log = std::fs::File::create(&log_file)
                .unwrap_or_else(|e| panic!("{group}: {}: {e}", log_file.display()));
            let log_err = log
                .try_clone()
                .unwrap_or_else(|e| panic!("{group}: {}: {e}", log_file.display()));
            let mut child = Command::new(&bin)
                .arg("-d")
                .arg("-c")
                .arg(&config_file)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .unwrap_or_else(|e| panic!("{group}: cannot run {}: {e}", bin.display()));
            match wait_ready(&mut child, addr) {
                Ok(()) => return Some(Unbound { child, dir, addr }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = format!(
                        "{e}\nunbound output:\n{}",
                        std::fs::read_to_string(&log_file).unwrap_or_default()
                    );
                }
            }
        }
        panic!("{group}: unbound did not start: {last}");
    }

    /// Where it answers (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// unbound's output so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default()
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        // A cache is all it holds: a kill is a clean stop.
        if let Err(e) = self.child.kill() {
            eprintln!("stopping the test unbound at {}: {e}", self.addr);
        }
        let _ = self.child.wait();
    }
}

/// The configuration: foreground-friendly, loopback only, the stubs, the local root.
fn config_text(dir: &Path, listen: SocketAddr, stubs: &[Stub], anchors: Option<&Path>) -> String {
    let quoted = |p: &Path| format!("{:?}", p.display().to_string());
    let mut text = String::from("server:\n");
    let mut line = |s: String| {
        text.push_str("  ");
        text.push_str(&s);
        text.push('\n');
    };
    line(format!("directory: {}", quoted(dir)));
    line("chroot: \"\"".into());
    line("username: \"\"".into());
    line(format!("pidfile: {}", quoted(&dir.join("unbound.pid"))));
    line("use-syslog: no".into());
    line("logfile: \"\"".into());
    line("log-servfail: yes".into());
    line("verbosity: 1".into());
    line(format!("interface: {}@{}", listen.ip(), listen.port()));
    line(format!("port: {}", listen.port()));
    line("interface-automatic: no".into());
    line(format!("do-ip6: {}", yes_no(listen.is_ipv6())));
    line("do-ip4: yes".into());
    line("do-udp: yes".into());
    line("do-tcp: yes".into());
    line("num-threads: 1".into());
    line("so-reuseport: no".into());
    line("outgoing-range: 64".into());
    line("num-queries-per-thread: 32".into());
    line("outgoing-port-permit: 32768-60999".into());
    line("access-control: 127.0.0.0/8 allow".into());
    line("access-control: ::1/128 allow".into());
    // The stubs are on loopback addresses, which unbound does not query by default.
    line("do-not-query-localhost: no".into());
    line("qname-minimisation: no".into());
    line("harden-referral-path: no".into());
    line(format!("cache-max-ttl: {CACHE_MAX_TTL}"));
    line("cache-max-negative-ttl: 1".into());
    line("infra-host-ttl: 5".into());
    match anchors {
        Some(path) => {
            line("module-config: \"validator iterator\"".into());
            line(format!("trust-anchor-file: {}", quoted(path)));
        }
        None => line("module-config: \"iterator\"".into()),
    }
    // Every name outside the stubs gets an empty answer here, never a lookup on the
    // internet. A DS question for a stub's apex is answered from the parent's side, so for
    // a top-level stub it is this empty answer too: no DS, an insecure delegation, as the
    // real root says for an unsigned top-level domain.
    line("local-zone: \".\" always_nodata".into());
    line(
        "local-data: \". 300 IN SOA a.root.invalid. hostmaster.invalid. 1 3600 600 86400 300\""
            .into(),
    );
    for stub in stubs {
        line(format!("local-zone: \"{}\" transparent", fqdn(&stub.zone)));
    }
    text.push_str("remote-control:\n  control-enable: no\n");
    for stub in stubs {
        text.push_str("stub-zone:\n");
        text.push_str(&format!("  name: \"{}\"\n", fqdn(&stub.zone)));
        for server in &stub.servers {
            text.push_str(&format!("  stub-addr: {}@{}\n", server.ip(), server.port()));
        }
    }
    text
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `zone` with exactly one trailing dot.
fn fqdn(zone: &str) -> String {
    format!("{}.", zone.trim_end_matches('.'))
}

/// Polls with a `CH TXT id.server` question (answered by unbound itself, without any
/// lookup) until an answer comes.
fn wait_ready(child: &mut Child, addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut last = String::from("no answer yet");
    let mut id: u16 = 0x5e11;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("unbound exited with {status}"));
        }
        id = id.wrapping_add(1);
        match probe(addr, id) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "no answer on {addr} within {START_TIMEOUT:?}: {last}"
    ))
}

/// One `id.server. CH TXT` question over UDP; `Ok` when a response with the same id came.
fn probe(addr: SocketAddr, id: u16) -> Result<(), String> {
    let local: SocketAddr = match addr.ip() {
        IpAddr::V4(_) => (Ipv4Addr::LOCALHOST, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
    };
    let socket = UdpSocket::bind(local).map_err(|e| format!("bind: {e}"))?;
    socket
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .map_err(|e| format!("socket timeout: {e}"))?;
    let mut query = Vec::with_capacity(32);
    query.extend_from_slice(&id.to_be_bytes());
    // RD set; one question.
    query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    query.extend_from_slice(b"\x02id\x06server\x00");
    // QTYPE TXT (16), QCLASS CH (3).
    query.extend_from_slice(&[0, 16, 0, 3]);
    socket
        .send_to(&query, addr)
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 512];
    let (n, from) = socket
        .recv_from(&mut buf)
        .map_err(|e| format!("recv: {e}"))?;
    let answered = from == addr && n >= 12 && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0;
    if answered {
        Ok(())
    } else {
        Err(format!("unexpected reply of {n} bytes from {from}"))
    }
}

/// `$STSWARD_UNBOUND`, else `unbound` in a `PATH` directory or `/usr/sbin`.
fn find_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(UNBOUND_BIN_ENV) {
        let bin = PathBuf::from(bin);
        return bin.is_file().then_some(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("unbound"))
        .find(|bin| bin.is_file())
}

/// A port on `ip` that was free for UDP and TCP a moment ago.
fn free_port(ip: IpAddr) -> u16 {
    for _ in 0..50 {
        let Ok(udp) = UdpSocket::bind((ip, 0)) else {
            continue;
        };
        let Ok(port) = udp.local_addr().map(|a| a.port()) else {
            continue;
        };
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for UDP and TCP on {ip}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_stubs_and_the_local_root() {
        let stubs = [
            Stub {
                zone: "test".into(),
                servers: vec!["127.64.0.1:5300".parse().unwrap()],
            },
            Stub {
                zone: "sts.provider.test.".into(),
                servers: vec!["127.200.0.53:5353".parse().unwrap()],
            },
        ];
        let text = config_text(
            Path::new("/tmp/x"),
            "127.0.0.9:5301".parse().unwrap(),
            &stubs,
            None,
        );
        for line in [
            "  interface: 127.0.0.9@5301\n",
            "  do-not-query-localhost: no\n",
            "  module-config: \"iterator\"\n",
            "  local-zone: \".\" always_nodata\n",
            "  local-zone: \"test.\" transparent\n",
            "  local-zone: \"sts.provider.test.\" transparent\n",
            "stub-zone:\n  name: \"test.\"\n  stub-addr: 127.64.0.1@5300\n",
            "stub-zone:\n  name: \"sts.provider.test.\"\n  stub-addr: 127.200.0.53@5353\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
        let signed = config_text(
            Path::new("/tmp/x"),
            "127.0.0.9:53".parse().unwrap(),
            &stubs,
            Some(Path::new("/tmp/x/ta.txt")),
        );
        assert!(signed.contains("module-config: \"validator iterator\"\n"));
        assert!(signed.contains("trust-anchor-file: \"/tmp/x/ta.txt\"\n"));
    }
}
