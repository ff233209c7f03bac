//! The address filter against server-side request forgery (issue 9), on the real lab on
//! loopback: with the filter on, a domain whose policy host and MX resolve to 127.x is
//! refused without a single connection (proved by listeners of this test that count their
//! accepts), including when the policy host is reached through a CNAME; with 127.0.0.0/8
//! allowed, the same domain is checked for real.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use stsward_check::{CheckConfig, CheckReport, Checker};
use stsward_lab::{Lab, LabOptions, RunningLab, Scenario};
use stsward_net::address_policy::Cidr;
use stsward_proto::{Code, Severity};
use time::OffsetDateTime;

const SCENARIO: &str = r#"
[lab]
dns = "plain"

[[domain]]
name = "inside.test"
mx = [{ host = "mx.inside.test", preference = 10 }]
sts_txt = "good"
tlsrpt_txt = "good"
policy = { behaviour = "good" }

# No policy host of its own: mta-sts.chained.test is a CNAME to inside.test's.
[[domain]]
name = "chained.test"
mx = [{ host = "mx.inside.test", preference = 10 }]
sts_txt = "good"
tlsrpt_txt = "good"
cname = [{ name = "mta-sts.chained.test", target = "mta-sts.inside.test" }]
"#;

async fn lab(dir: &std::path::Path) -> RunningLab {
    let scenario: Scenario = SCENARIO.parse().expect("scenario");
    Lab::start(&scenario, &LabOptions::new(dir, OffsetDateTime::now_utc()))
        .await
        .expect("lab")
}

fn config(
    lab: &RunningLab,
    smtp_port: u16,
    https_port: u16,
    filter: Option<Vec<Cidr>>,
) -> CheckConfig {
    let pem = std::fs::read(lab.ca_file()).expect("ca file");
    CheckConfig {
        resolver: Some(lab.resolver_addr()),
        extra_roots: CheckConfig::roots_from_pem(&pem).expect("ca"),
        use_webpki_roots: false,
        validate_dnssec: false,
        smtp_port,
        https_port,
        dns_timeout: Duration::from_secs(2),
        fetch_timeout: Duration::from_secs(5),
        smtp_step_timeout: Duration::from_secs(3),
        probe_legacy_tls: false,
        probe_cache: false,
        helo_name: "checker.test".to_owned(),
        address_filter: filter,
        ..CheckConfig::default()
    }
}

/// A listener on `ip` that counts the connections it accepts.
async fn counting_listener(ip: IpAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
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

async fn check(cfg: CheckConfig, domain: &str) -> CheckReport {
    let checker = Checker::new(cfg).expect("checker");
    checker
        .check_domain(domain, OffsetDateTime::now_utc())
        .await
        .expect("the check runs")
}

/// The `net.address.refused` finding whose subject starts with `subject`.
fn refused<'a>(r: &'a CheckReport, subject: &str) -> &'a stsward_proto::Finding {
    r.findings
        .iter()
        .find(|f| f.code == Code::NetAddressRefused && f.subject.starts_with(subject))
        .unwrap_or_else(|| panic!("no net.address.refused for {subject} in {:#?}", r.findings))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_without_a_connection_unless_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = lab(dir.path()).await;
    let mx_ip = IpAddr::V4(lab.host_addr("mx.inside.test").expect("mx address"));
    let policy_ip = IpAddr::V4(
        lab.host_addr("mta-sts.inside.test")
            .expect("policy address"),
    );
    assert!(mx_ip.is_loopback() && policy_ip.is_loopback());

    // Listeners of our own on the very addresses DNS gives, on fresh ports the checker is
    // pointed at: any connection the check makes lands here and is counted.
    let (smtp, smtp_accepts) = counting_listener(mx_ip).await;
    let (https, https_accepts) = if policy_ip == mx_ip {
        (smtp, smtp_accepts.clone())
    } else {
        counting_listener(policy_ip).await
    };
    for domain in ["inside.test", "chained.test"] {
        let r = check(
            config(&lab, smtp.port(), https.port(), Some(Vec::new())),
            domain,
        )
        .await;
        // Not probed, so neither unreachable: refused, by name.
        let codes: Vec<Code> = r.findings.iter().map(|f| f.code).collect();
        assert!(
            !codes.contains(&Code::StsPolicyUnreachable),
            "{domain}: {codes:?}"
        );
        assert!(!codes.contains(&Code::MxUnreachable), "{domain}: {codes:?}");
        let policy = refused(&r, "mta-sts.");
        assert_eq!(policy.severity, Severity::Error);
        assert!(
            policy.message.contains(&policy_ip.to_string()) && policy.message.contains("loopback"),
            "{domain}: {}",
            policy.message
        );
        let mx = refused(&r, "mx.inside.test");
        assert!(
            mx.message.contains(&mx_ip.to_string()) && mx.message.contains("loopback"),
            "{domain}: {}",
            mx.message
        );
        if domain == "chained.test" {
            assert!(
                policy.message.contains("mta-sts.inside.test"),
                "the refusal names the CNAME target: {}",
                policy.message
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        smtp_accepts.load(Ordering::SeqCst),
        0,
        "an SMTP connection was made"
    );
    assert_eq!(
        https_accepts.load(Ordering::SeqCst),
        0,
        "an HTTPS connection was made"
    );

    // Control: the same listeners do count a check without the filter.
    let _ = check(config(&lab, smtp.port(), https.port(), None), "inside.test").await;
    assert!(
        smtp_accepts.load(Ordering::SeqCst) >= 1,
        "the listener counts connections"
    );

    // With 127.0.0.0/8 allowed, the real lab servers are checked for real.
    let allow = vec!["127.0.0.0/8".parse::<Cidr>().expect("cidr")];
    for domain in ["inside.test", "chained.test"] {
        let r = check(
            config(&lab, lab.smtp_port(), lab.https_port(), Some(allow.clone())),
            domain,
        )
        .await;
        let codes: Vec<Code> = r.findings.iter().map(|f| f.code).collect();
        // chained.test's policy host serves inside.test's certificate: reached, then judged.
        let policy = if domain == "chained.test" {
            Code::StsPolicyWebpki
        } else {
            Code::StsPolicyFetched
        };
        assert!(codes.contains(&policy), "{domain}: {codes:?}");
        assert!(
            !codes.contains(&Code::StsPolicyUnreachable),
            "{domain}: {codes:?}"
        );
        assert!(codes.contains(&Code::MxStarttlsOk), "{domain}: {codes:?}");
        assert!(!codes.contains(&Code::MxUnreachable), "{domain}: {codes:?}");
    }
    lab.shutdown().await;
}
