//! A fresh checkout, as a new user meets stsward: `git clone` of this repository into a clean
//! temporary directory, the README's run command exactly as the README writes it (it builds
//! stsward with its lab and starts `stsward demo`), the dashboard answering within 30 seconds
//! of the demo's start (build time aside), Ctrl-C, and then `stsward demo --headless --json`
//! from that build, whose every domain must get the verdict and readiness its story implies,
//! with report totals that add up.
//!
//! The README's other command, `scripts/test`, is the one that runs this test: running it
//! here would recurse. What is checked instead is that `.ci/run` runs exactly it, so that the
//! command the README names is the one CI proves on a fresh clone.
//!
//! Built only with the `package-tests` feature: `scripts/test` runs it as a step of its own,
//! after the parallel test run, because it builds a release binary and takes the demo's
//! default port. The clone builds into this build's target directory (its release
//! dependencies are shared; the clone's own crates are compiled afresh).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The demo's dashboard must answer within this long of its start.
const DASHBOARD_WITHIN: Duration = Duration::from_secs(30);
/// Installing packages and a release build from the clone, at most.
const BUILD_DEADLINE: Duration = Duration::from_secs(40 * 60);
/// The README's run command serves the dashboard here.
const DEMO_ADDR: &str = "127.0.0.1:8480";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The commands of the README's "The two commands" section: its indented lines.
fn readme_commands(readme: &str) -> Vec<String> {
    let section = readme
        .split("## The two commands")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README.md has a section \"The two commands\"");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Lines of a child's pipe, each with the moment it arrived.
fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// The status of `GET /login` on the demo's dashboard, if it answers within 2 s.
fn dashboard_status(addr: &str) -> Option<u16> {
    let answer = exchange(
        addr,
        "GET /login HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n",
    )?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`): the whole answer, or
/// `None` when the dashboard does not answer within 2 s.
fn exchange(addr: &str, request: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = addr.parse().ok()?;
    let mut sock = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    sock.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    sock.take(4 * 1024 * 1024).read_to_end(&mut answer).ok()?;
    Some(String::from_utf8_lossy(&answer).into_owned())
}

/// Logs in as the demo's user with `password` and returns the overview page.
fn overview(addr: &str, password: &str) -> Option<String> {
    let form = format!("user=demo&password={password}");
    let login = exchange(
        addr,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    )?;
    let cookie = login.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("set-cookie")
            .then(|| value.trim().split(';').next().unwrap_or("").to_owned())
    })?;
    exchange(
        addr,
        &format!("GET / HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
}

/// Sends `signal` to the child's process group (it was started as the group's leader).
fn signal_group(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{}", child.id())])
        .status();
}

/// Stops the README command's process group however the test ends.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            signal_group(&self.0, "-KILL");
            let _ = self.0.wait();
        }
    }
}

fn git(args: &[&str], dir: &Path) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed");
}

#[test]
fn a_fresh_clone_runs_the_readme_command_and_the_demo_holds_its_stories() {
    let root = repo_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let tmp = tempfile::Builder::new()
        .prefix("stsward-fresh-")
        .tempdir()
        .expect("tempdir");
    let clone = tmp.path().join("stsward");
    git(
        &[
            "clone",
            "--quiet",
            &root.display().to_string(),
            &clone.display().to_string(),
        ],
        tmp.path(),
    );

    // The README names the two commands; the second is what CI runs.
    let readme = std::fs::read_to_string(clone.join("README.md")).expect("README.md");
    let commands = readme_commands(&readme);
    assert_eq!(
        commands,
        vec!["scripts/run".to_owned(), "scripts/test".to_owned()],
        "the README's two commands"
    );
    let ci = std::fs::read_to_string(clone.join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines().map(str::trim).any(|l| matches!(
            l,
            "exec bash scripts/test" | "exec scripts/test" | "bash scripts/test"
        )),
        ".ci/run runs the README's test command:\n{ci}"
    );

    // The run command, exactly as written, in the clone.
    let mut child = Command::new("bash")
        .args(["-c", &commands[0]])
        .current_dir(&clone)
        .env("CARGO_TARGET_DIR", &target)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("the README's run command starts");
    let out = lines(child.stdout.take().expect("stdout"));
    let err = lines(child.stderr.take().expect("stderr"));
    let mut group = Group(child);
    let begun = Instant::now();
    let mut stderr_seen = Vec::new();
    let demo_start = loop {
        match err.recv_timeout(Duration::from_secs(5)) {
            Ok((at, line)) => {
                let started = line.starts_with("stsward demo: starting");
                stderr_seen.push(line);
                if started {
                    break at;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = group.0.wait().expect("wait");
                panic!(
                    "the run command ended ({status}) before the demo started:\n{}",
                    stderr_seen.join("\n")
                );
            }
        }
        assert!(
            begun.elapsed() < BUILD_DEADLINE,
            "no demo after {BUILD_DEADLINE:?}:\n{}",
            stderr_seen.join("\n")
        );
    };
    // The dashboard, populated: log in with the password the demo printed, and the overview
    // lists every demo domain, within 30 s of the demo's start.
    let mut printed: Vec<String> = Vec::new();
    let populated = loop {
        while let Ok((_, line)) = out.try_recv() {
            printed.push(line);
        }
        let password = printed
            .iter()
            .find_map(|l| l.strip_prefix("Password:"))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_owned);
        if let Some(overview) = password.and_then(|p| overview(DEMO_ADDR, &p)) {
            let domains = [
                "perfect.test",
                "expiring.test",
                "moved.test",
                "noreport.test",
                "ready.test",
            ];
            if domains.iter().all(|d| overview.contains(d)) {
                break demo_start.elapsed();
            }
        }
        assert!(
            demo_start.elapsed() < DASHBOARD_WITHIN,
            "no populated dashboard within {DASHBOARD_WITHIN:?} of the demo's start; it printed {printed:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("the dashboard showed every demo domain {populated:?} after the demo started");
    let deadline = Instant::now() + DASHBOARD_WITHIN;
    while !printed
        .iter()
        .any(|l: &String| l.starts_with("Press Ctrl-C"))
    {
        assert!(Instant::now() < deadline, "no Ctrl-C hint: {printed:?}");
        if let Ok((_, line)) = out.recv_timeout(Duration::from_secs(1)) {
            printed.push(line);
        }
    }
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with(&format!("Dashboard: http://{DEMO_ADDR}/"))),
        "{printed:?}"
    );
    // Ctrl-C stops it cleanly and frees the port.
    signal_group(&group.0, "-INT");
    let stop_deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = group.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < stop_deadline, "the demo ignored Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "the demo after Ctrl-C: {status}");
    assert_eq!(dashboard_status(DEMO_ADDR), None, "the dashboard stopped");

    // The same build, headless.
    let bin = target.join("release/stsward");
    let listen = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("addr")
    };
    let output = Command::new(&bin)
        .args([
            "demo",
            "--headless",
            "--json",
            "--listen",
            &listen.to_string(),
        ])
        .current_dir(&clone)
        .output()
        .expect("stsward demo --headless --json runs");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    assert!(output.status.success(), "{}", output.status);
    check_summary(&summary);
}

/// (domain, check verdict, readiness, reports expected, failures expected, alerts open)
type Story = (
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    &'static [&'static str],
);

/// Each demo domain's verdict and readiness as its story implies them (the test's own
/// table, not the demo's), and report totals that agree with the generated traffic.
fn check_summary(summary: &Value) {
    // (domain, check verdict, readiness, reports expected, failures expected, alerts open)
    let expected: [Story; 5] = [
        ("perfect.test", "info", "enforcing", true, false, &[]),
        (
            "expiring.test",
            "warning",
            "not-ready",
            true,
            false,
            &["cert-expiring"],
        ),
        (
            "moved.test",
            "warning",
            "not-ready",
            true,
            true,
            &["mx-drift", "success-rate"],
        ),
        ("noreport.test", "warning", "not-ready", false, false, &[]),
        ("ready.test", "info", "ready", true, false, &[]),
    ];
    let domains = summary["domains"].as_array().expect("domains");
    assert_eq!(domains.len(), expected.len());
    let answered = summary["dashboard"]["answered_after_ms"]
        .as_u64()
        .expect("the dashboard answered");
    assert!(answered < 30_000, "{answered} ms");
    let mut generated_reports = 0;
    for (d, (name, verdict, readiness, has_reports, fails, alerts)) in domains.iter().zip(expected)
    {
        assert_eq!(d["domain"], name);
        for rule in alerts {
            assert!(
                d["alerts"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == rule)),
                "{name}: alert {rule} open: {d}"
            );
        }
        if alerts.is_empty() {
            assert!(
                d["alerts"]
                    .as_array()
                    .is_some_and(|a| !a.iter().any(|x| x == "cert-expiring" || x == "mx-drift")),
                "{name}: no certificate or MX alert: {d}"
            );
        }
        assert_eq!(d["check"]["verdict"], verdict, "{name}: {d}");
        assert_eq!(d["readiness"]["verdict"], readiness, "{name}: {d}");
        let r = &d["reports"];
        let n = r["generated"].as_u64().expect("generated");
        generated_reports += n;
        let (ok, failed) = (
            r["generated_successful"].as_u64().expect("successful"),
            r["generated_failed"].as_u64().expect("failed"),
        );
        assert_eq!(r["stored_successful"].as_u64(), Some(ok), "{name}: {r}");
        assert_eq!(r["stored_failed"].as_u64(), Some(failed), "{name}: {r}");
        if has_reports {
            // Four organisations report every day since the domain was added (30 at most).
            assert!(n >= 4 * 10 && n % 4 == 0, "{name}: {n} reports");
            assert!(ok > 0, "{name}: {r}");
        } else {
            assert_eq!(
                (n, ok, failed),
                (0, 0, 0),
                "{name}: no TLS-RPT record, no reports"
            );
        }
        if fails {
            // Six days of every session to the uncovered MX fail: far more than the
            // handful of broken handshakes the clean domains see.
            assert!(failed * 100 > (ok + failed) * 5, "{name}: {r}");
        } else {
            assert!(failed * 1000 < (ok + failed).max(1) * 5, "{name}: {r}");
        }
    }
    assert_eq!(
        summary["reports"]["stored"].as_u64(),
        Some(generated_reports)
    );
    assert_eq!(summary["reports"]["totals_match"], true);
    assert_eq!(summary["as_expected"], true);
    // ready.test is ready because every criterion holds; the others name what fails.
    let moved = &domains[2]["readiness"]["failing"];
    assert!(
        moved
            .as_array()
            .is_some_and(|f| f.iter().any(|c| c == "mx-coverage")),
        "{moved}"
    );
    let noreport = &domains[3]["readiness"]["failing"];
    assert!(
        noreport
            .as_array()
            .is_some_and(|f| f.iter().any(|c| c == "tlsrpt-record")),
        "{noreport}"
    );
}
