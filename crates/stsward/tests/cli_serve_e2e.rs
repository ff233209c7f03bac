//! `stsward serve` end to end as a customer and a sending MTA see it (issue 7, "How it is
//! verified": steps 2 and 5 of the end-to-end test, and "A real sending-side client reads
//! the hosted policy"). Every part is real and on loopback:
//!
//! ```text
//! stsward domain add/records  -> the records the customer is told to publish
//! lab DNS (customer.test)     -> publishes them as CNAMEs (RFC 8461 §8.2), MX to a lab MX
//!                                host with a lab-CA certificate; provider.test delegates
//!                                sts.provider.test (NS + glue) to stsward's DNS
//! unbound                     -> the recursive resolver: stubs test. (lab) and
//!                                sts.provider.test. (stsward serve), with their ports
//! Pebble                      -> the ACME CA; validates HTTP-01 through unbound
//! stsward serve (the binary)  -> its own DNS, HTTP and HTTPS on 127.x addresses
//! ```
//!
//! Then `stsward domain verify` through unbound finds every record in place, `stsward check`
//! through unbound (trusting Pebble's root for the policy host and the lab's CA for the MX,
//! one PEM bundle for `--ca-file`) reports no error, and postfix-mta-sts-resolver's
//! `mta-sts-query` returns the policy the host serves.
//!
//! The peer has no DNS or port options: it reads `/etc/resolv.conf` and fetches from port
//! 443. So, as `bench/resolve` does, it runs in a private mount namespace (`unshare
//! --mount`) whose `/etc/resolv.conf` is a bind mount naming unbound on port 53, and that
//! world's `stsward serve` listens on port 443. That needs root: otherwise the group
//! `stsward/serve-e2e-peer` is skipped and recorded. A missing Pebble, unbound, `unshare` or
//! peers' virtualenv is skipped and recorded too, and is a failure under `CI`.

#[path = "../../stsward-server/tests/serve_support/mod.rs"]
mod serve_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serve_support::{Fetched, fetch};
use stsward_lab::{Lab, LabOptions, RunningLab, Scenario};
use stsward_testkit::pebble::Pebble;
use stsward_testkit::unbound::{Stub, Unbound, UnboundOptions};

const CUSTOMER: &str = "customer.test";
const MX_HOST: &str = "mx.customer.test";
const ZONE: &str = "sts.provider.test";
const POLICY_HOST: &str = "mta-sts.sts.provider.test";
const NS_HOST: &str = "ns1.sts.provider.test";
const MAX_AGE: u32 = 86_400;
/// How long the service may take to obtain its certificate and serve the policy.
const SERVE_DEADLINE: Duration = Duration::from_secs(90);
/// How long one run of a CLI command (check, verify, the peer) may take.
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// Second octets of the 127.x.0.0/16 each world uses: outside the lab's (64–191) and
/// 127.0.0.x, one per world so that worlds in parallel tests share no address.
fn subnet() -> u8 {
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let seed = std::process::id()
        ^ std::time::UNIX_EPOCH
            .elapsed()
            .map_or(0, |d| d.subsec_nanos());
    // 192..=253, a different one for each world of this process.
    192 + u8::try_from((seed % 31 * 2 + u32::from(n)) % 62).unwrap_or(0)
}

/// A port on `ip` that was free for TCP and UDP a moment ago.
fn free_port(ip: IpAddr) -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((ip, 0)).expect("bind UDP");
        let port = udp.local_addr().expect("address").port();
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip}");
}

/// Kills `stsward serve` when the world goes.
struct Serve {
    child: Child,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything one test runs. Fields drop in order: the service first, the runtime that
/// carries the lab last.
struct World {
    _serve: Serve,
    pebble: Pebble,
    unbound: Unbound,
    lab: RunningLab,
    _rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    config: PathBuf,
    /// Pebble's issuing root and the lab's CA, one PEM file.
    trust: PathBuf,
    pebble_root: CertificateDer<'static>,
    https: SocketAddr,
}

/// Ports for a world: `privileged` puts the policy host on 443 and unbound on 53 (what a
/// peer that reads `/etc/resolv.conf` needs); otherwise every port is a free one.
fn start_world(group: &str, privileged: bool) -> Option<World> {
    let octet = subnet();
    let policy_ip = IpAddr::V4(Ipv4Addr::new(127, octet, 0, 10));
    let ns_ip = IpAddr::V4(Ipv4Addr::new(127, octet, 0, 53));
    let resolver_ip = IpAddr::V4(Ipv4Addr::new(127, octet, 0, 2));
    let https_port = if privileged {
        443
    } else {
        free_port(policy_ip)
    };
    let http_port = free_port(policy_ip);
    let dns = SocketAddr::new(ns_ip, free_port(ns_ip));
    let https = SocketAddr::new(policy_ip, https_port);

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("stsward.toml");
    let url = format!("sqlite://{}", dir.path().join("stsward.db").display());
    std::fs::write(
        dir.path().join("secret.key"),
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    )
    .expect("secret");
    let base = format!(
        r#"[listen]
https = ["{https}"]
http = ["{policy_ip}:{http_port}"]
dns = ["{dns}"]
[hosting]
zone = "{ZONE}"
policy_host = "{POLICY_HOST}"
policy_host_addrs = ["{policy_ip}"]
txt_ttl = 5
tlsrpt_rua = "mailto:tlsrpt@provider.test"
[[hosting.nameservers]]
name = "{NS_HOST}"
addrs = ["{ns_ip}"]
[keys]
secret_file = {secret:?}
[store]
url = {url:?}
[api]
listen = ["127.0.0.1:0"]
token = "e2e-token"
[replicas]
poll_interval_ms = 100
"#,
        secret = dir.path().join("secret.key").display().to_string(),
    );
    std::fs::write(&config, &base).expect("config");

    // The customer signs up: the domain is hosted, and stsward says what to publish.
    let added = stsward(
        &config,
        &[
            "domain",
            "add",
            CUSTOMER,
            "--mode",
            "enforce",
            "--mx",
            MX_HOST,
            "--max-age",
            &MAX_AGE.to_string(),
        ],
    );
    assert_eq!(added.status.code(), Some(0), "domain add: {added:?}");
    let records = json(&stsward(
        &config,
        &["domain", "records", CUSTOMER, "--json"],
    ));
    let cnames: Vec<(String, String)> = ["policy_host", "sts", "tlsrpt"]
        .iter()
        .map(|key| {
            let r = &records[key];
            assert_eq!(r["type"], "CNAME", "{key}: {records}");
            (
                r["name"].as_str().expect("name").to_owned(),
                r["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        cnames,
        [
            (format!("mta-sts.{CUSTOMER}."), format!("{POLICY_HOST}.")),
            (
                format!("_mta-sts.{CUSTOMER}."),
                format!("_mta-sts.{CUSTOMER}.{ZONE}.")
            ),
            (
                format!("_smtp._tls.{CUSTOMER}."),
                format!("_smtp._tls.{CUSTOMER}.{ZONE}.")
            ),
        ],
        "the records point into the delegated zone"
    );

    // ...and publishes exactly those in its zone (the lab), beside an MX to a lab MX host;
    // the provider's parent zone delegates the hosting zone to stsward's DNS.
    let published: Vec<String> = cnames
        .iter()
        .map(|(name, target)| format!("{{ name = {name:?}, target = {target:?} }}"))
        .collect();
    let scenario = format!(
        r#"[lab]
dns = "plain"
[[domain]]
name = "{CUSTOMER}"
mx = [{{ host = "{MX_HOST}" }}]
cname = [{published}]
[[domain]]
name = "provider.test"
delegation = [{{ zone = "{ZONE}", ns = "{NS_HOST}", glue = ["{ns_ip}"] }}]
"#,
        published = published.join(", "),
    );
    let scenario: Scenario = scenario.parse().expect("scenario");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut opts = LabOptions::new(dir.path().join("lab"), time::OffsetDateTime::now_utc());
    opts.plain_dns = true;
    let lab = rt
        .block_on(Lab::start(&scenario, &opts))
        .expect("lab starts");
    let delegation = rt
        .block_on(ask(lab.resolver_addr(), ZONE, RecordType::NS, false))
        .expect("the lab answers");
    let ns_names: Vec<String> = delegation
        .answers
        .iter()
        .chain(&delegation.authorities)
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.to_ascii()),
            _ => None,
        })
        .collect();
    assert_eq!(
        ns_names,
        [format!("{NS_HOST}.")],
        "the lab delegates {ZONE}"
    );

    let unbound_opts = UnboundOptions {
        listen: SocketAddr::new(resolver_ip, if privileged { 53 } else { 0 }),
        stubs: vec![
            Stub {
                zone: "test".into(),
                servers: vec![lab.resolver_addr()],
            },
            Stub {
                zone: ZONE.into(),
                servers: vec![dns],
            },
        ],
        trust_anchors: None,
    };
    let unbound = Unbound::start(group, &unbound_opts)?;
    let pebble = Pebble::start(group, unbound.addr(), http_port, https_port)?;

    // The certificate comes from Pebble, which validates through the recursive resolver.
    let wfe_ca = dir.path().join("pebble-wfe.pem");
    std::fs::write(&wfe_ca, pebble.wfe_ca_pem()).expect("Pebble's CA");
    let acme = format!(
        "[acme]\ndirectory = {:?}\ncontact = [\"mailto:ops@provider.test\"]\nchallenge = \"http-01\"\nca_file = {:?}\n",
        pebble.directory_url(),
        wfe_ca.display().to_string(),
    );
    std::fs::write(&config, format!("{base}{acme}")).expect("config with [acme]");
    let trust = dir.path().join("trust.pem");
    let lab_ca = std::fs::read_to_string(lab.ca_file()).expect("the lab's CA");
    std::fs::write(
        &trust,
        format!("{}\n{lab_ca}", pebble.issuing_root_pem().trim_end()),
    )
    .expect("trust bundle");
    let pebble_root = CertificateDer::from_pem_slice(pebble.issuing_root_pem().as_bytes())
        .expect("Pebble's root");

    let log = std::fs::File::create(dir.path().join("serve.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_stsward"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--resolver", &unbound.addr().to_string()])
        .env_remove("STSWARD_STORE")
        .env_remove("STSWARD_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn stsward serve");
    let world = World {
        _serve: Serve { child },
        pebble,
        unbound,
        lab,
        _rt: rt,
        dir,
        config,
        trust,
        pebble_root,
        https,
    };
    world.wait_until_served();
    Some(world)
}

impl World {
    fn serve_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    fn diagnostics(&self) -> String {
        format!(
            "--- serve log\n{}\n--- unbound log\n{}\n--- pebble log\n{}",
            self.serve_log(),
            self.unbound.log(),
            self.pebble.log()
        )
    }

    /// What the policy host serves for the customer, trusting Pebble's root only.
    fn served(&self) -> Fetched {
        self._rt
            .block_on(fetch(self.https, CUSTOMER, &self.pebble_root))
    }

    /// The `_mta-sts` TXT of the customer as a recursive resolver returns it (through the
    /// customer's CNAME into stsward's zone).
    fn sts_txt(&self) -> Vec<String> {
        let name = format!("_mta-sts.{CUSTOMER}.");
        let Some(msg) = self
            ._rt
            .block_on(ask(self.unbound.addr(), &name, RecordType::TXT, true))
        else {
            return Vec::new();
        };
        msg.answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    /// The current policy id, as `domain show` reports it.
    fn current_id(&self) -> String {
        let shown = json(&stsward(
            &self.config,
            &["domain", "show", CUSTOMER, "--json"],
        ));
        shown["current"]["sts_id"]
            .as_str()
            .expect("current id")
            .to_owned()
    }

    /// Waits until the service holds Pebble's certificate, serves the policy, and the id
    /// of the current version is what the resolver returns.
    fn wait_until_served(&self) {
        let start = Instant::now();
        while start.elapsed() < SERVE_DEADLINE {
            if self.served().mode().as_deref() == Some("enforce") {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let served = self.served();
        assert_eq!(
            served.mode().as_deref(),
            Some("enforce"),
            "the policy is served with Pebble's certificate within {SERVE_DEADLINE:?}: \
             {served:?}\n{}",
            self.diagnostics()
        );
        let want = format!("v=STSv1; id={};", self.current_id());
        while start.elapsed() < SERVE_DEADLINE {
            if self
                .sts_txt()
                .iter()
                .any(|t| t.trim_end_matches(';') == want.trim_end_matches(';'))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "the resolver never returned {want:?} (last: {:?})\n{}",
            self.sts_txt(),
            self.diagnostics()
        );
    }
}

/// Runs `stsward ARGS --config CONFIG` to completion (bounded by [`COMMAND_DEADLINE`]).
fn stsward(config: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stsward"));
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("STSWARD_STORE")
        .env_remove("STSWARD_CONFIG");
    run_bounded(command, COMMAND_DEADLINE)
}

/// Runs `command` with its output captured; killed (and the test fails) past `limit`.
fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    // Read both pipes on threads, so that a full pipe cannot stall the child.
    let mut stdout = child.stdout.take().expect("stdout pipe");
    let mut stderr = child.stderr.take().expect("stderr pipe");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One question over UDP (recursion desired or not); `None` when nothing came within 5 s.
async fn ask(server: SocketAddr, name: &str, rtype: RecordType, recurse: bool) -> Option<Message> {
    let mut msg = Message::new(0x7e57, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = recurse;
    msg.add_query(Query::query(
        Name::from_ascii(name).expect("test name"),
        rtype,
    ));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
    socket
        .send_to(&msg.to_vec().expect("encode"), server)
        .await
        .ok()?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}

/// Issue 7, end-to-end steps 2 and 5: the customer's delegating records, resolved by a
/// recursive resolver, are all in place, and `stsward check` on the domain gives no error.
#[test]
fn a_hosted_domain_is_verified_and_checks_without_error_through_a_recursive_resolver() {
    let Some(w) = start_world("stsward/serve-e2e", false) else {
        return;
    };
    let resolver = w.unbound.addr().to_string();

    let verify = stsward(
        &w.config,
        &["domain", "verify", CUSTOMER, "--resolver", &resolver],
    );
    let out = text(&verify);
    assert_eq!(verify.status.code(), Some(0), "{out}\n{}", w.diagnostics());
    for line in [
        format!("in place  mta-sts.{CUSTOMER}.  (CNAME to {POLICY_HOST})"),
        format!("in place  _mta-sts.{CUSTOMER}.  (CNAME to _mta-sts.{CUSTOMER}.{ZONE})"),
        format!("in place  _smtp._tls.{CUSTOMER}.  (CNAME to _smtp._tls.{CUSTOMER}.{ZONE})"),
        format!("{CUSTOMER}: every record is in place"),
    ] {
        assert!(out.contains(&line), "{line:?} missing from:\n{out}");
    }

    // Without DNSSEC validation: nothing here is signed and the resolver holds no DNSSEC
    // records, so DANE could not be judged either way (dns.dnssec.unavailable); with
    // validation, see the ignored test below.
    let checked = run_bounded(
        check_command(&w, &resolver, &["--no-dnssec"]),
        COMMAND_DEADLINE,
    );
    let report: serde_json::Value = serde_json::from_slice(&checked.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&checked)));
    let findings = report["findings"].as_array().expect("findings");
    let errors: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(
        errors.is_empty(),
        "check found errors: {errors:#?}\n{report:#}\n{}",
        w.diagnostics()
    );
    assert_eq!(checked.status.code(), Some(0), "{report:#}");
    // The check really read what is hosted: the served policy and its id.
    let report_text = report.to_string();
    for seen in [w.current_id(), MX_HOST.to_owned(), "enforce".to_owned()] {
        assert!(report_text.contains(&seen), "{seen} not in {report:#}");
    }
}

/// `stsward check CUSTOMER --json` through `resolver`, trusting both test CAs (one PEM
/// bundle), with the lab's SMTP port and the policy host's HTTPS port.
fn check_command(w: &World, resolver: &str, extra: &[&str]) -> Command {
    let mut check = Command::new(env!("CARGO_BIN_EXE_stsward"));
    check
        .args(["check", CUSTOMER, "--json", "--resolver", resolver])
        .arg("--ca-file")
        .arg(&w.trust)
        .args(["--smtp-port", &w.lab.smtp_port().to_string()])
        .args(["--https-port", &w.https.port().to_string()])
        .args(["--timeout", "15"])
        .args(extra);
    check
}

/// Known failure, kept as a reproduction: with DNSSEC validation on (the default), through a
/// recursive resolver that passes no DNSSEC records and answers the root's DNSKEY with an
/// empty answer, most lookups of the unsigned domain (the `_mta-sts` or policy host
/// address, the MX address, `_smtp._tls`) run into the lookup timeout while hickory's
/// validator repeats DS and NS questions (unbound's log, at verbosity 2, shows the storm). Straight against the lab's authoritative server, which refuses the root, the same
/// check passes (cli_check_lab.rs). Run with `--ignored` to see it.
#[test]
#[ignore = "known: check with validation times out through a non-DNSSEC recursive resolver"]
fn check_with_validation_through_a_recursive_resolver_without_dnssec_gives_no_error() {
    let Some(w) = start_world("stsward/serve-e2e-validating", false) else {
        return;
    };
    let resolver = w.unbound.addr().to_string();
    let checked = run_bounded(check_command(&w, &resolver, &[]), COMMAND_DEADLINE);
    let report: serde_json::Value = serde_json::from_slice(&checked.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&checked)));
    let errors: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(
        errors.is_empty(),
        "check found errors: {errors:#?}\n{}",
        w.unbound.log()
    );
}

/// What `mta-sts-query` printed: `(<STSFetchResult.VALID: 1>, ('<id>', {<policy>}))`.
#[derive(Debug, PartialEq, Eq)]
struct PeerPolicy {
    id: String,
    mode: String,
    mx: Vec<String>,
    max_age: u32,
}

/// Reads the peer's Python repr of its result; `None` unless it is `VALID` with a policy.
fn parse_peer(out: &str) -> Option<PeerPolicy> {
    let line = out.lines().find(|l| l.contains("STSFetchResult."))?;
    if !line.contains("STSFetchResult.VALID") {
        return None;
    }
    let quoted = |s: &str| -> Vec<String> {
        s.split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let (_, rest) = line.split_once("('")?;
    let (id, policy) = rest.split_once('\'')?;
    let field = |key: &str| -> Option<&str> {
        let (_, after) = policy.split_once(&format!("'{key}': "))?;
        Some(after)
    };
    let mode = quoted(field("mode")?).into_iter().next()?;
    let mx_list = field("mx")?.split_once(']')?.0;
    let max_age = field("max_age")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some(PeerPolicy {
        id: id.to_owned(),
        mode,
        mx: quoted(mx_list),
        max_age,
    })
}

/// The policy fields of a served body (RFC 8461 §3.2).
fn parse_served(body: &str) -> PeerPolicy {
    let values = |key: &str| -> Vec<String> {
        body.lines()
            .filter_map(|l| l.trim_end_matches('\r').strip_prefix(key))
            .map(|v| v.trim().to_owned())
            .collect()
    };
    PeerPolicy {
        id: String::new(),
        mode: values("mode:").into_iter().next().unwrap_or_default(),
        mx: values("mx:"),
        max_age: values("max_age:")
            .first()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default(),
    }
}

#[test]
fn peer_output_parses() {
    let out = "(<STSFetchResult.VALID: 1>, ('0abc1', {'version': 'STSv1', 'mode': 'enforce', \
               'mx': ['mx.customer.test', '*.b.test'], 'max_age': 86400}))\n";
    assert_eq!(
        parse_peer(out),
        Some(PeerPolicy {
            id: "0abc1".into(),
            mode: "enforce".into(),
            mx: vec!["mx.customer.test".into(), "*.b.test".into()],
            max_age: 86_400,
        })
    );
    assert_eq!(parse_peer("(<STSFetchResult.NONE: 0>, None)\n"), None);
    assert_eq!(
        parse_peer("(<STSFetchResult.FETCH_ERROR: 2>, None)\n"),
        None
    );
    let served = parse_served(
        "version: STSv1\r\nmode: testing\r\nmx: a.test\r\nmx: b.test\r\nmax_age: 60\r\n",
    );
    assert_eq!(served.mode, "testing");
    assert_eq!(served.mx, ["a.test", "b.test"]);
    assert_eq!(served.max_age, 60);
}

/// Issue 7, "A real sending-side client reads the hosted policy": postfix-mta-sts-resolver's
/// query tool, resolving through the recursive resolver and trusting the test CAs, returns
/// the policy the host serves under the id the DNS publishes.
#[test]
fn postfix_mta_sts_resolver_reads_the_hosted_policy() {
    const GROUP: &str = "stsward/serve-e2e-peer";
    // Root: the effective uid of this process, from procfs (no unsafe libc call).
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false);
    if !root {
        stsward_testkit::skip(
            GROUP,
            "needs root: the peer reads /etc/resolv.conf (bind-mounted in a private mount \
             namespace) and fetches from port 443",
        );
        return;
    }
    let unshare_ok = Command::new("unshare")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !unshare_ok {
        stsward_testkit::missing(GROUP, "unshare (util-linux) is not runnable");
        return;
    }
    let Some(query) = stsward_testkit::peer_tool(GROUP, "mta-sts-query") else {
        return;
    };
    let Some(w) = start_world(GROUP, true) else {
        return;
    };

    let resolv = w.dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!(
            "nameserver {}\noptions timeout:2 attempts:2\n",
            w.unbound.addr().ip()
        ),
    )
    .expect("resolv.conf");
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "--"])
        .args([
            "sh",
            "-c",
            "mount --bind \"$1\" /etc/resolv.conf && exec \"$2\" \"$3\"",
            "sh",
        ])
        .arg(&resolv)
        .arg(&query)
        .arg(CUSTOMER)
        .env("SSL_CERT_FILE", &w.trust)
        .env_remove("SSL_CERT_DIR")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY");
    let out = run_bounded(command, COMMAND_DEADLINE);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}\n{}", w.diagnostics());
    let got = parse_peer(&printed).unwrap_or_else(|| {
        panic!(
            "the peer found no valid policy:\n{printed}\n{}",
            w.diagnostics()
        )
    });

    let Fetched::Http(200, body) = w.served() else {
        panic!("the host stopped serving: {:?}", w.served());
    };
    let mut want = parse_served(&body);
    want.id = w.current_id();
    assert_eq!(got, want, "the peer's policy is the served one");
    assert_eq!(want.mode, "enforce");
    assert_eq!(want.mx, [MX_HOST]);
    assert_eq!(want.max_age, MAX_AGE);
}
