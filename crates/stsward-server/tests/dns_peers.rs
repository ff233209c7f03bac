//! The delegated zone as other software sees it: `dig` (BIND's client, from Debian), the
//! lab's authoritative server holding a customer's CNAMEs (RFC 8461 §8.2 policy
//! delegation), and stsward's own DNS client.

mod dns_support;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use dns_support::*;
use hickory_proto::rr::{RData, RecordType};
use stsward_lab::dns::{DnsServer as LabDns, DnsServerOptions, LabRecord, Zone as LabZone};
use stsward_lab::scenario::Dnssec;
use stsward_net::dns::{Answer, Dns, DnsConfig};
use stsward_proto::mta_sts::{PolicyId, StsRecord};
use stsward_proto::tlsrpt::TlsRptRecord;
use stsward_server::dns::{DnsLimits, Zone};
use time::OffsetDateTime;
use tokio::net::{TcpListener, UdpSocket};

fn id(text: &str) -> PolicyId {
    text.parse().expect("test id parses")
}

async fn provider() -> Running {
    let zone = Zone::new(settings(None)).expect("zone builds");
    zone.upsert("user.test", &id("20261203u"), None)
        .expect("upsert");
    start(zone, DnsLimits::default()).await
}

/// `dig`'s output, or `None` (the test is skipped and recorded) when dig is missing outside
/// CI. `scripts/install-test-deps` installs it (Debian's bind9-dnsutils).
fn dig(server: SocketAddr, args: &[&str]) -> Option<String> {
    let mut command = Command::new("dig");
    command
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(["+norecurse", "+time=2", "+tries=1"])
        .args(args);
    match command.output() {
        Ok(out) => {
            assert!(out.status.success(), "dig {args:?}: {out:?}");
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Err(error) => {
            tool_missing(
                "stsward-server/dns_peers/dig",
                &format!("dig not runnable ({error}); run scripts/install-test-deps"),
            );
            None
        }
    }
}

/// The `flags:` of dig's header line, e.g. `["qr", "aa"]`.
fn dig_flags(out: &str) -> Vec<String> {
    out.lines()
        .find_map(|line| line.strip_prefix(";; flags: "))
        .and_then(|rest| rest.split(';').next())
        .map(|flags| flags.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn dig_status(out: &str) -> Option<&str> {
    out.lines()
        .find_map(|line| line.split("status: ").nth(1))
        .and_then(|rest| rest.split(',').next())
}

// dig blocks its thread; the server needs another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_sees_an_authoritative_zone_over_udp_and_tcp_v4_and_v6() {
    let dns = provider().await;
    let sts = format!("_mta-sts.user.test.{APEX}.");
    for (server, transport) in [
        (dns.udp4, "+notcp"),
        (dns.udp6, "+notcp"),
        (dns.tcp4, "+tcp"),
        (dns.tcp6, "+tcp"),
    ] {
        let what = format!("{server} {transport}");
        let Some(out) = dig(server, &[transport, "TXT", &sts]) else {
            return;
        };
        assert_eq!(dig_status(&out), Some("NOERROR"), "{what}: {out}");
        assert!(dig_flags(&out).contains(&"aa".to_owned()), "{what}: {out}");
        assert!(
            out.contains("\"v=STSv1; id=20261203u;\""),
            "{what}: the record as published: {out}"
        );
        let Some(out) = dig(server, &[transport, "TXT", &format!("nope.{APEX}.")]) else {
            return;
        };
        assert_eq!(dig_status(&out), Some("NXDOMAIN"), "{what}: {out}");
        assert!(out.contains("IN\tSOA\t"), "{what}: SOA in authority: {out}");
    }
    let Some(out) = dig(dns.udp4, &["A", "example.org."]) else {
        return;
    };
    assert_eq!(dig_status(&out), Some("REFUSED"), "{out}");
}

// dig blocks its thread; the server needs another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_sees_truncation_without_edns_and_retries_over_tcp() {
    let zone = Zone::new(settings(None)).expect("zone builds");
    let many: Vec<_> = (0..20)
        .map(|i| {
            rua(&format!(
                "mailto:tls-reports-{i:02}@collector.large.example"
            ))
        })
        .collect();
    zone.upsert("large.example", &id("big"), Some(&many))
        .expect("upsert");
    let dns = start(zone, DnsLimits::default()).await;
    let name = format!("_smtp._tls.large.example.{APEX}.");
    let Some(out) = dig(dns.udp4, &["+noedns", "+ignore", "TXT", &name]) else {
        return;
    };
    assert!(dig_flags(&out).contains(&"tc".to_owned()), "TC: {out}");
    // Without +ignore dig retries over TCP on TC, as resolvers do; the TCP listener shares
    // the port number only by chance, so it is asked directly.
    let Some(out) = dig(dns.tcp4, &["+tcp", "TXT", &name]) else {
        return;
    };
    assert_eq!(dig_status(&out), Some("NOERROR"), "{out}");
    assert!(!dig_flags(&out).contains(&"tc".to_owned()), "{out}");
    assert!(out.contains("collector.large.example"), "{out}");
}

/// RFC 8461 §8.2: the customer's zone (here served by the lab) holds
/// `_mta-sts.user.test. CNAME _mta-sts.user.test.<apex>.`, and the target is answered by
/// stsward. A resolver follows the alias from one server to the other; this test does the
/// same, one hop at a time.
#[tokio::test]
async fn rfc8461_8_2_a_customer_cname_leads_to_the_served_records() {
    let dns = provider().await;
    let names = dns.zone.delegated_names("user.test").expect("names");
    let customer = LabZone {
        origin: "user.test".into(),
        records: vec![
            LabRecord::Cname {
                name: "_mta-sts.user.test".into(),
                target: names.mta_sts.clone(),
            },
            LabRecord::Cname {
                name: "_smtp._tls.user.test".into(),
                target: names.tlsrpt.clone(),
            },
            LabRecord::Cname {
                name: "mta-sts.user.test".into(),
                target: names.policy_host.clone(),
            },
        ],
        dnssec: Dnssec::Off,
    };
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let lab_addr = udp.local_addr().expect("addr");
    let lab = LabDns::start(
        udp,
        tcp,
        &[customer],
        DnsServerOptions {
            now: OffsetDateTime::now_utc(),
            plain: true,
        },
    )
    .expect("lab DNS starts");

    let stsward = Dns::new(&DnsConfig {
        server: Some(dns.udp4),
        dnssec: false,
        ..DnsConfig::default()
    })
    .expect("client");
    for (alias, rtype) in [
        ("_mta-sts.user.test.", RecordType::TXT),
        ("_smtp._tls.user.test.", RecordType::TXT),
        ("mta-sts.user.test.", RecordType::A),
    ] {
        let hop = ask(lab_addr, alias, rtype, UDP).await;
        let target = hop
            .answers
            .iter()
            .find_map(|r| match &r.data {
                RData::CNAME(cname) => Some(cname.0.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{alias}: the lab answers a CNAME: {hop}"));
        let served = ask(dns.udp4, &target, rtype, UDP).await;
        assert!(served.metadata.authoritative, "{target}: {served}");
        assert!(!served.answers.is_empty(), "{alias} -> {target}: {served}");
        match rtype {
            RecordType::TXT if alias.starts_with("_mta-sts") => {
                let lookup = stsward.txt(&target).await.expect("TXT lookup");
                let Answer::Records(txts) = &lookup.answer else {
                    panic!("{target}: {:?}", lookup.answer);
                };
                let text = String::from_utf8_lossy(&txts[0].data);
                let record: StsRecord = text.parse().expect("parses");
                assert_eq!(record.id, id("20261203u"));
            }
            RecordType::TXT => {
                let record: TlsRptRecord = txts(&served)[0].parse().expect("parses");
                assert_eq!(record.rua, vec![rua(DEFAULT_RUA)]);
            }
            _ => {
                let lookup = stsward.addrs(&target).await.expect("address lookup");
                let mut addrs = lookup.records().to_vec();
                addrs.sort();
                assert_eq!(addrs, vec![IpAddr::V4(POLICY_V4), IpAddr::V6(POLICY_V6)]);
            }
        }
    }
    lab.shutdown().await;
}

#[tokio::test]
async fn stsward_net_sees_nxdomain_and_nodata() {
    let dns = provider().await;
    let client = Dns::new(&DnsConfig {
        server: Some(dns.udp6),
        dnssec: false,
        ..DnsConfig::default()
    })
    .expect("client");
    let gone = client
        .txt(&format!("_mta-sts.gone.test.{APEX}"))
        .await
        .expect("lookup");
    assert!(matches!(gone.answer, Answer::NxDomain), "{:?}", gone.answer);
    let ent = client
        .txt(&format!("user.test.{APEX}"))
        .await
        .expect("lookup");
    assert!(matches!(ent.answer, Answer::NoData), "{:?}", ent.answer);
}
