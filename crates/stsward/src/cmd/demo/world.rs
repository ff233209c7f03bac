//! The demo's world: five `.test` domains hosted by stsward, each in a state a mail admin
//! meets in practice, the lab scenario that publishes their DNS and runs their MX hosts, and
//! the `stsward.toml` of the `stsward serve` that hosts their policies (RFC 8461 §3.3).
//!
//! The customers publish their own `_mta-sts` TXT (RFC 8461 §3.1) with the id stsward serves,
//! and point `mta-sts.<domain>` at stsward's policy host; stsward watches that TXT. Nothing
//! here does I/O.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use super::traffic::DAY;

/// The provider's names: the zone delegated to stsward, its policy host, and the address
/// TLS-RPT reports go to.
pub const ZONE: &str = "sts.demo-provider.test";
/// The policy host's name.
pub const POLICY_HOST: &str = "mta-sts.sts.demo-provider.test";
/// Where a domain's `_smtp._tls` record sends reports (RFC 8460 §3): stsward's HTTPS intake
/// on the domain's policy host (`[intake_https] path`, default `/tlsrpt`).
pub fn rua(domain: &str) -> String {
    format!("https://mta-sts.{domain}/tlsrpt")
}

/// What the demo's check and readiness verdict must say about a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// The check's verdict (`ok`, `info`, `warning`, `error`): a good domain gets `info`,
    /// since the lab's zones are unsigned and a `testing` policy is worth a note.
    pub verdict: &'static str,
    /// The readiness verdict (`ready`, `not-ready`, `enforcing`).
    pub readiness: &'static str,
    /// Alert rules that must open (docs/alerts.md).
    pub alerts: &'static [&'static str],
}

/// The MX host a domain's mail goes to, and its fault in the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MxHost {
    /// Its name.
    pub host: &'static str,
    /// The lab behaviour (`good`, `cert-expiring`, …).
    pub behaviour: &'static str,
}

/// One demo domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoDomain {
    /// The domain.
    pub name: &'static str,
    /// What it shows, in words.
    pub story: &'static str,
    /// Days since it was added (in `testing`).
    pub added_days_ago: i64,
    /// Days since it moved to `enforce`, if it did.
    pub enforce_days_ago: Option<i64>,
    /// The `mx` patterns of its policy.
    pub policy_mx: &'static str,
    /// The MX senders used before `mx_moved_days_ago`, if the MX moved.
    pub old_mx: Option<MxHost>,
    /// Days since the MX record changed to `mx`.
    pub mx_moved_days_ago: Option<i64>,
    /// The MX record now.
    pub mx: MxHost,
    /// Whether it publishes a TLS-RPT record (without one, no reports arrive).
    pub tlsrpt: bool,
    /// Sessions on an ordinary weekday.
    pub daily_sessions: u64,
    /// What the demo must find.
    pub expected: Expected,
}

/// The domains, in the order they are shown.
pub const DOMAINS: [DemoDomain; 5] = [
    DemoDomain {
        name: "perfect.test",
        story: "in enforce for three weeks after six weeks of clean reports",
        added_days_ago: 64,
        enforce_days_ago: Some(21),
        policy_mx: "mx1.perfect.test",
        old_mx: None,
        mx_moved_days_ago: None,
        mx: MxHost {
            host: "mx1.perfect.test",
            behaviour: "good",
        },
        tlsrpt: true,
        daily_sessions: 2400,
        expected: Expected {
            verdict: "info",
            readiness: "enforcing",
            alerts: &[],
        },
    },
    DemoDomain {
        name: "expiring.test",
        story: "in testing; its MX certificate expires in 5 days",
        added_days_ago: 12,
        enforce_days_ago: None,
        policy_mx: "mx1.expiring.test",
        old_mx: None,
        mx_moved_days_ago: None,
        mx: MxHost {
            host: "mx1.expiring.test",
            behaviour: "cert-expiring",
        },
        tlsrpt: true,
        daily_sessions: 900,
        expected: Expected {
            verdict: "warning",
            readiness: "not-ready",
            alerts: &["cert-expiring"],
        },
    },
    DemoDomain {
        name: "moved.test",
        story: "in testing; its MX moved to a host the policy does not list 6 days ago",
        added_days_ago: 45,
        enforce_days_ago: None,
        policy_mx: "mx1.moved.test",
        old_mx: Some(MxHost {
            host: "mx1.moved.test",
            behaviour: "good",
        }),
        mx_moved_days_ago: Some(6),
        mx: MxHost {
            host: "mx.new-provider.moved.test",
            behaviour: "good",
        },
        tlsrpt: true,
        daily_sessions: 1500,
        // In `testing` an uncovered MX is a warning: mail still goes, and reports show it.
        expected: Expected {
            verdict: "warning",
            readiness: "not-ready",
            alerts: &["mx-drift", "success-rate"],
        },
    },
    DemoDomain {
        name: "noreport.test",
        story: "in testing with no TLS-RPT record, so no sender can report on it",
        added_days_ago: 35,
        enforce_days_ago: None,
        policy_mx: "mx1.noreport.test",
        old_mx: None,
        mx_moved_days_ago: None,
        mx: MxHost {
            host: "mx1.noreport.test",
            behaviour: "good",
        },
        tlsrpt: false,
        daily_sessions: 600,
        expected: Expected {
            verdict: "warning",
            readiness: "not-ready",
            alerts: &[],
        },
    },
    DemoDomain {
        name: "ready.test",
        story: "in testing for 40 days with clean reports from four senders: ready for enforce",
        added_days_ago: 40,
        enforce_days_ago: None,
        policy_mx: "mx1.ready.test",
        old_mx: None,
        mx_moved_days_ago: None,
        mx: MxHost {
            host: "mx1.ready.test",
            behaviour: "good",
        },
        tlsrpt: true,
        daily_sessions: 1800,
        expected: Expected {
            verdict: "info",
            readiness: "ready",
            alerts: &[],
        },
    },
];

impl DemoDomain {
    /// When it was added, `now` minus whole days, at the same time of day.
    pub fn added_at(&self, now: i64) -> i64 {
        now - self.added_days_ago * DAY
    }
}

/// The lab scenario: each domain's MX, its own `_mta-sts` TXT with `ids[i]` (the id
/// stsward serves), its `_smtp._tls` TXT when it has one, and `mta-sts.<domain>` pointing
/// at `policy_ip`, where stsward serves the policy.
pub fn scenario(ids: &[String], policy_ip: std::net::Ipv4Addr) -> String {
    // Plain DNS: the customers' zones are unsigned, as most are; the check says so (info).
    let mut s = String::from("[lab]\ndns = \"plain\"\n");
    for (d, id) in DOMAINS.iter().zip(ids) {
        let _ = write!(
            s,
            "\n[[domain]]\nname = \"{name}\"\nmx = [{{ host = \"{mx}\", preference = 10 }}]\n\
             sts_txt = [\"v=STSv1; id={id}\"]\n\
             address = [{{ name = \"mta-sts.{name}\", addrs = [\"{policy_ip}\"] }}]\n",
            name = d.name,
            mx = d.mx.host,
        );
        if d.tlsrpt {
            let _ = writeln!(s, "tlsrpt_txt = [\"v=TLSRPTv1; rua={}\"]", rua(d.name));
        }
    }
    for d in &DOMAINS {
        let _ = write!(
            s,
            "\n[[mx_host]]\nname = \"{}\"\nbehaviour = \"{}\"\n",
            d.mx.host, d.mx.behaviour
        );
    }
    s
}

/// Where the lab is, for the configuration.
#[derive(Debug, Clone)]
pub struct LabPoints<'a> {
    /// The lab's DNS server.
    pub resolver: SocketAddr,
    /// The lab's root CA (PEM).
    pub ca_file: &'a Path,
    /// The port of every lab MX host.
    pub smtp_port: u16,
    /// The port of every policy host, stsward's included.
    pub https_port: u16,
}

/// Paths and addresses of this run.
#[derive(Debug, Clone)]
pub struct ServePoints<'a> {
    /// The policy host's address (HTTPS on the lab's HTTPS port, and the zone's DNS).
    pub policy_ip: std::net::Ipv4Addr,
    /// The dashboard's and API's listener.
    pub api: SocketAddr,
    /// The API token.
    pub token: &'a str,
    /// The `[tls]` certificate and key.
    pub cert_file: &'a Path,
    /// The key.
    pub key_file: &'a Path,
    /// The SQLite database file.
    pub db: &'a Path,
}

/// The `stsward.toml` of the demo's `stsward serve`: loopback only, the static certificate
/// from the lab's CA, checks that reach the lab, plain cookies on loopback.
pub fn config(lab: &LabPoints<'_>, serve: &ServePoints<'_>) -> String {
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let db = format!("{:?}", format!("sqlite://{}", serve.db.display()));
    format!(
        r#"[listen]
https = ["{ip}:{https}"]
http = []
dns = ["{ip}:0"]

[hosting]
zone = "{ZONE}"
policy_host = "{POLICY_HOST}"
policy_host_addrs = ["{ip}"]
[[hosting.nameservers]]
name = "ns1.{ZONE}"
addrs = ["{ip}"]

[tls]
cert_file = {cert}
key_file = {key}

[store]
url = {db}

[api]
listen = ["{api}"]
token = "{token}"

[checks]
allow_ranges = ["127.0.0.0/8"]
resolver = "{resolver}"
ca_file = {ca}
smtp_port = {smtp}
https_port = {https}
timeout = 15
max_per_tenant = 8

[web]
secure_cookies = false

[intake_https]
enabled = true

[alerts]
evaluate_interval = 5
"#,
        ip = serve.policy_ip,
        https = lab.https_port,
        cert = q(serve.cert_file),
        key = q(serve.key_file),
        api = serve.api,
        token = serve.token,
        resolver = lab.resolver,
        ca = q(lab.ca_file),
        smtp = lab.smtp_port,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenario_parses_and_publishes_each_domains_records() {
        let ids: Vec<String> = (0..DOMAINS.len()).map(|i| format!("2026{i}")).collect();
        let text = scenario(&ids, std::net::Ipv4Addr::new(127, 0, 0, 2));
        let s: stsward_lab::Scenario = text.parse().expect("the demo scenario parses");
        for (d, id) in DOMAINS.iter().zip(&ids) {
            let lab = s.domain(d.name).expect("domain");
            assert_eq!(lab.sts_txt, vec![format!("v=STSv1; id={id}")]);
            assert_eq!(lab.tlsrpt_txt.is_empty(), !d.tlsrpt, "{}", d.name);
            assert_eq!(lab.mx[0].host, d.mx.host);
            assert_eq!(lab.addresses[0].name, format!("mta-sts.{}", d.name));
        }
    }

    #[test]
    fn the_configuration_is_one_stsward_serve_accepts() {
        let dir = Path::new("/nonexistent");
        let lab = LabPoints {
            resolver: "127.9.0.1:5353".parse().expect("addr"),
            ca_file: &dir.join("ca.pem"),
            smtp_port: 2525,
            https_port: 8443,
        };
        let serve = ServePoints {
            policy_ip: std::net::Ipv4Addr::new(127, 0, 0, 2),
            api: "127.0.0.1:8480".parse().expect("addr"),
            token: "stsw_demo",
            cert_file: &dir.join("cert.pem"),
            key_file: &dir.join("key.pem"),
            db: &dir.join("demo.db"),
        };
        let cfg: stsward_server::config::ServeConfig =
            config(&lab, &serve).parse().expect("a valid stsward.toml");
        cfg.validate_for_serving()
            .expect("complete enough to serve");
        assert_eq!(cfg.checks.https_port, 8443);
        assert_eq!(cfg.listen.https[0].port(), 8443);
        assert!(!cfg.web.secure_cookies);
        // The senders POST to the intake on the policy host (RFC 8460 §5.4).
        assert!(cfg.intake_https.enabled);
        assert_eq!(
            rua("a.test"),
            format!("https://mta-sts.a.test{}", cfg.intake_https.path)
        );
    }

    #[test]
    fn every_story_has_its_own_expectation() {
        let readiness: Vec<&str> = DOMAINS.iter().map(|d| d.expected.readiness).collect();
        for want in ["ready", "not-ready", "enforcing"] {
            assert!(readiness.contains(&want), "{want}");
        }
        assert!(DOMAINS.iter().any(|d| !d.tlsrpt));
        assert!(DOMAINS.iter().any(|d| d.mx.behaviour == "cert-expiring"));
        assert!(DOMAINS.iter().any(|d| d.old_mx.is_some()));
    }
}
