//! Issue 6, "one deadline per job": against lab MX hosts that stall at each step of the SMTP
//! conversation, one domain's check returns within its budget (+1 s) and a finding names
//! the step that did not finish.

use std::time::{Duration, Instant};

use stsward_check::{CheckConfig, Checker};
use stsward_lab::{Lab, LabOptions, RunningLab, Scenario};
use time::OffsetDateTime;

/// The budget of each check: short, to keep the suite fast.
const BUDGET: Duration = Duration::from_secs(3);

const SCENARIO: &str = r#"
[[mx_host]]
name = "mx.stall-connect.test"
behaviour = "stall-connect"

[[mx_host]]
name = "mx.stall-after-connect.test"
behaviour = "stall-after-connect"

[[mx_host]]
name = "mx.stall-after-banner.test"
behaviour = "stall-after-banner"

[[mx_host]]
name = "mx.stall-after-ehlo.test"
behaviour = "stall-after-ehlo"

[[mx_host]]
name = "mx.stall-at-quit.test"
behaviour = "stall-at-quit"

[[mx_host]]
name = "mx.stall-handshake.test"
behaviour = "stall-handshake"

[[mx_host]]
name = "mx.trickle-banner.test"
behaviour = "trickle-banner"

[[mx_host]]
name = "mx.good.test"
behaviour = "good"

[[domain]]
name = "stall-connect.test"
mx = [{ host = "mx.stall-connect.test" }]

[[domain]]
name = "stall-after-connect.test"
mx = [{ host = "mx.stall-after-connect.test" }]

[[domain]]
name = "stall-after-banner.test"
mx = [{ host = "mx.stall-after-banner.test" }]

[[domain]]
name = "stall-after-ehlo.test"
mx = [{ host = "mx.stall-after-ehlo.test" }]

[[domain]]
name = "stall-at-quit.test"
mx = [{ host = "mx.stall-at-quit.test" }]

[[domain]]
name = "stall-handshake.test"
mx = [{ host = "mx.stall-handshake.test" }]

[[domain]]
name = "trickle-banner.test"
mx = [{ host = "mx.trickle-banner.test" }]

[[domain]]
name = "slow-policy.test"
mx = [{ host = "mx.good.test" }]
sts_txt = "good"
policy = { behaviour = "slow" }

[[domain]]
name = "one-stalls.test"
mx = [{ host = "mx.good.test" }, { host = "mx.stall-after-connect.test", preference = 20 }]
"#;

struct World {
    _dir: tempfile::TempDir,
    _lab: RunningLab,
    checker: Checker,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario: Scenario = SCENARIO.parse().expect("scenario");
    let lab = Lab::start(
        &scenario,
        &LabOptions::new(dir.path(), OffsetDateTime::now_utc()),
    )
    .await
    .expect("lab starts");
    let pem = std::fs::read(lab.ca_file()).expect("CA file");
    let checker = Checker::new(CheckConfig {
        resolver: Some(lab.resolver_addr()),
        extra_roots: CheckConfig::roots_from_pem(&pem).expect("PEM"),
        use_webpki_roots: false,
        validate_dnssec: false,
        smtp_port: lab.smtp_port(),
        https_port: lab.https_port(),
        budget: BUDGET,
        helo_name: "checker.test".to_owned(),
        ..CheckConfig::default()
    })
    .expect("checker");
    World {
        _dir: dir,
        _lab: lab,
        checker,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalling_mx_hosts_check_returns_within_budget_and_names_the_step() {
    let w = world().await;
    // (domain, code expected, words of the step in its message)
    let cases: &[(&str, &str, &str)] = &[
        ("stall-connect.test", "mx.unreachable", "connect timed out"),
        (
            "stall-after-connect.test",
            "mx.unreachable",
            "greeting timed out",
        ),
        (
            "stall-after-banner.test",
            "mx.unreachable",
            "EHLO timed out",
        ),
        (
            "stall-after-ehlo.test",
            "mx.tls.handshake",
            "STARTTLS command timed out",
        ),
        (
            "stall-handshake.test",
            "mx.tls.handshake",
            "TLS handshake timed out",
        ),
        (
            "trickle-banner.test",
            "mx.unreachable",
            "greeting timed out",
        ),
        // Never answering QUIT is no fault of delivery: the check returns, and says what it
        // learned before QUIT.
        (
            "stall-at-quit.test",
            "mx.starttls.missing",
            "does not offer STARTTLS",
        ),
        // The policy host answers after 70 s: the fetch is cut off within the budget.
        (
            "slow-policy.test",
            "sts.policy.timeout",
            "no complete answer within",
        ),
    ];
    let checks = cases.iter().map(|(domain, code, words)| {
        let checker = &w.checker;
        async move {
            let started = Instant::now();
            let report = checker
                .check_domain(domain, OffsetDateTime::now_utc())
                .await
                .expect("the check runs");
            let took = started.elapsed();
            assert!(
                took <= BUDGET + Duration::from_secs(1),
                "{domain}: took {took:?}, budget {BUDGET:?}"
            );
            let hit = report
                .findings
                .iter()
                .find(|f| f.code.as_str() == *code)
                .unwrap_or_else(|| panic!("{domain}: no {code} in {:#?}", report.findings));
            assert!(
                hit.message.contains(words),
                "{domain}: {code} should name the step ({words:?}): {}",
                hit.message
            );
        }
    });
    // Concurrently, as a bulk run would: the budgets do not add up.
    let started = Instant::now();
    futures::future::join_all(checks).await;
    assert!(started.elapsed() <= BUDGET + Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_connect_timing_out_says_once_that_port_25_looks_blocked() {
    let w = world().await;
    let report = w
        .checker
        .check_domain("stall-connect.test", OffsetDateTime::now_utc())
        .await
        .expect("the check runs");
    let blocked: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.code.as_str() == "mx.port25.blocked")
        .collect();
    assert_eq!(blocked.len(), 1, "{:#?}", report.findings);
    // One MX accepting TCP is enough to show port 25 is open: no such finding then.
    let report = w
        .checker
        .check_domain("one-stalls.test", OffsetDateTime::now_utc())
        .await
        .expect("the check runs");
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.code.as_str() != "mx.port25.blocked"),
        "{:#?}",
        report.findings
    );
}
