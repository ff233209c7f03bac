//! Issue 6: `stsward check --from FILE --json` prints each domain's line as soon as that
//! domain is done, so one slow domain holds up no one's output.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stsward_lab::{Lab, LabOptions, Scenario};

const SCENARIO: &str = r#"
[[mx_host]]
name = "mx.fast.test"
behaviour = "good"

[[mx_host]]
name = "mx.slow.test"
behaviour = "stall-after-connect"

[[domain]]
name = "slow.test"
mx = [{ host = "mx.slow.test" }]

[[domain]]
name = "fast.test"
mx = [{ host = "mx.fast.test" }]
"#;

#[test]
fn bulk_json_lines_are_streamed_as_each_domain_finishes() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario: Scenario = SCENARIO.parse().expect("scenario");
    let lab = rt
        .block_on(Lab::start(
            &scenario,
            &LabOptions::new(dir.path(), time::OffsetDateTime::now_utc()),
        ))
        .expect("lab starts");
    let list = dir.path().join("domains.txt");
    std::fs::write(&list, "slow.test\nfast.test\n").expect("write list");
    // A budget of 12 s: each SMTP step gets 3 s, so the stalled MX holds its domain ~3 s.
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stsward"))
        .arg("check")
        .arg("--from")
        .arg(&list)
        .args(["--json", "--no-dnssec", "--timeout", "12"])
        .arg("--resolver")
        .arg(lab.resolver_addr().to_string())
        .arg("--ca-file")
        .arg(lab.ca_file())
        .arg("--smtp-port")
        .arg(lab.smtp_port().to_string())
        .arg("--https-port")
        .arg(lab.https_port().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run stsward");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("read");
    let first_at = started.elapsed();
    let v: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    assert_eq!(
        v["domain"], "fast.test",
        "the fast domain comes first: {first}"
    );
    let rest: Vec<String> = lines.map(|l| l.expect("read")).collect();
    let all_at = started.elapsed();
    let _ = child.wait();
    assert_eq!(rest.len(), 2, "the slow domain and the summary: {rest:?}");
    assert!(
        first_at + Duration::from_millis(1500) < all_at,
        "the first line ({first_at:?}) came well before the end ({all_at:?})"
    );
    drop(lab);
}
