//! The zone signed with DNSSEC (RFC 4033-4035): answers and denials validate through the
//! zone's key as trust anchor in two independent validators, stsward's own client
//! (hickory-resolver, as `stsward check` uses it) and BIND's `delv`, and fail to validate
//! under the wrong anchor.

mod dns_support;

use dns_support::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use stsward_net::dns::{Answer, Dns, DnsConfig, DnssecStatus, TrustAnchors};
use stsward_proto::mta_sts::{PolicyId, StsRecord};
use stsward_server::dns::{DnsLimits, Zone, ZoneKey};

fn id(text: &str) -> PolicyId {
    text.parse().expect("test id parses")
}

async fn signed() -> Running {
    let key = ZoneKey::generate().expect("key");
    let zone = Zone::new(settings(Some(key))).expect("zone builds");
    zone.upsert("example.com", &id("s1"), None).expect("upsert");
    start(zone, DnsLimits::default()).await
}

fn validating(dns: &Running, anchor: &str) -> Dns {
    Dns::new(&DnsConfig {
        server: Some(dns.udp4),
        dnssec: true,
        trust_anchors: Some(TrustAnchors::from_zone_text(anchor).expect("anchor parses")),
        ..DnsConfig::default()
    })
    .expect("client")
}

#[tokio::test]
async fn rfc4035_answers_validate_through_the_trust_anchor() {
    let dns = signed().await;
    let anchor = dns.zone.dnskey_record().expect("signed zone has a DNSKEY");
    assert!(
        anchor.starts_with(&format!("{APEX}. {SOA_TTL} IN DNSKEY 257 3 13 ")),
        "{anchor}"
    );
    let client = validating(&dns, &anchor);
    let name = format!("_mta-sts.example.com.{APEX}");
    let lookup = client.txt(&name).await.expect("lookup");
    assert_eq!(lookup.dnssec, DnssecStatus::Secure, "{lookup:?}");
    let text = String::from_utf8_lossy(&lookup.records()[0].data).into_owned();
    assert_eq!(text.parse::<StsRecord>(), Ok(StsRecord::new(id("s1"))));

    // A changed policy is signed too.
    dns.zone
        .upsert("example.com", &id("s2"), None)
        .expect("upsert");
    let lookup = client.txt(&name).await.expect("lookup");
    assert_eq!(lookup.dnssec, DnssecStatus::Secure, "{lookup:?}");
    let text = String::from_utf8_lossy(&lookup.records()[0].data).into_owned();
    assert_eq!(text.parse::<StsRecord>(), Ok(StsRecord::new(id("s2"))));

    let lookup = client.addrs(POLICY_HOST).await.expect("lookup");
    assert_eq!(lookup.dnssec, DnssecStatus::Secure, "{lookup:?}");
    assert_eq!(lookup.records().len(), 2);
}

#[tokio::test]
async fn rfc4035_negative_answers_are_proven() {
    let dns = signed().await;
    let anchor = dns.zone.dnskey_record().expect("DNSKEY");
    let client = validating(&dns, &anchor);
    for (name, why) in [
        (POLICY_HOST.to_owned(), "NODATA: the policy host has no TXT"),
        (format!("example.com.{APEX}"), "NODATA: empty non-terminal"),
        (
            format!("_mta-sts.gone.example.{APEX}"),
            "a name that does not exist",
        ),
    ] {
        let lookup = client.txt(&name).await.expect("lookup");
        assert!(
            matches!(lookup.answer, Answer::NoData | Answer::NxDomain),
            "{why}: {lookup:?}"
        );
        assert_eq!(lookup.dnssec, DnssecStatus::Secure, "{why}: {lookup:?}");
    }
}

#[tokio::test]
async fn rfc4035_5_5_the_wrong_anchor_makes_answers_bogus() {
    let dns = signed().await;
    let other = Zone::new(settings(Some(ZoneKey::generate().expect("key")))).expect("zone builds");
    let wrong = other.dnskey_record().expect("DNSKEY");
    let client = validating(&dns, &wrong);
    // stsward-net reports a bogus answer as an error: the records must not be used.
    match client.txt(&format!("_mta-sts.example.com.{APEX}")).await {
        Ok(lookup) => assert_eq!(lookup.dnssec, DnssecStatus::Bogus, "{lookup:?}"),
        Err(error) => assert!(
            error
                .to_string()
                .contains("fails DNSSEC validation (bogus)"),
            "a validation failure: {error}"
        ),
    }
}

#[tokio::test]
async fn signatures_only_for_clients_that_ask_and_dnskey_at_the_apex() {
    let dns = signed().await;
    let name = format!("_mta-sts.example.com.{APEX}.");
    let plain = ask(dns.udp4, &name, RecordType::TXT, UDP).await;
    assert!(
        plain
            .answers
            .iter()
            .all(|r| r.record_type() == RecordType::TXT),
        "no RRSIG without the DO bit: {plain}"
    );
    let secure = Ask {
        dnssec_ok: true,
        ..UDP
    };
    let with_do = ask(dns.udp4, &name, RecordType::TXT, secure).await;
    assert!(
        with_do
            .answers
            .iter()
            .any(|r| r.record_type() == RecordType::RRSIG),
        "RRSIG with the DO bit: {with_do}"
    );
    let keys = ask(
        dns.tcp4,
        &format!("{APEX}."),
        RecordType::DNSKEY,
        Ask {
            tcp: true,
            ..secure
        },
    )
    .await;
    assert_eq!(keys.metadata.response_code, ResponseCode::NoError);
    assert!(
        keys.answers
            .iter()
            .any(|r| matches!(&r.data, RData::DNSSEC(_)) && r.record_type() == RecordType::DNSKEY),
        "{keys}"
    );
    // Without DO a missing name is NXDOMAIN; with DO it is proven by an NSEC at the name
    // itself (compact denial), so the answer is NOERROR with the proof.
    let gone = format!("_mta-sts.gone.example.{APEX}.");
    let msg = ask(dns.udp4, &gone, RecordType::TXT, UDP).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain, "{msg}");
    let msg = ask(dns.udp4, &gone, RecordType::TXT, secure).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError, "{msg}");
    assert!(
        msg.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::NSEC),
        "{msg}"
    );
}

/// `delv` (BIND's validating lookup tool) with the zone's key as its only trust anchor, or
/// `None` when it is missing outside CI (it comes with dig, `scripts/install-test-deps`).
fn delv(dns: &Running, anchor: &str, args: &[&str]) -> Option<String> {
    let fields: Vec<&str> = anchor.split_whitespace().collect();
    let (owner, flags, protocol, algorithm, key) = (
        fields[0],
        fields[4],
        fields[5],
        fields[6],
        fields[7..].concat(),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("anchors.conf");
    std::fs::write(
        &file,
        format!(
            "trust-anchors {{ {owner} static-key {flags} {protocol} {algorithm} \"{key}\"; }};\n"
        ),
    )
    .expect("write anchors");
    let out = std::process::Command::new("delv")
        .arg(format!("@{}", dns.udp4.ip()))
        .args(["-p", &dns.udp4.port().to_string()])
        .arg("-a")
        .arg(&file)
        .arg(format!("+root={}", owner.trim_end_matches('.')))
        .arg("+vtrace")
        .args(args)
        .output();
    match out {
        Ok(out) => Some(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(error) => {
            tool_missing(
                "stsward-server/dns_dnssec/delv",
                &format!("delv not runnable ({error}); run scripts/install-test-deps"),
            );
            None
        }
    }
}

// delv blocks its thread; the server needs another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_delv_validates_answers_and_denials_through_the_zone_key() {
    let dns = signed().await;
    let anchor = dns.zone.dnskey_record().expect("DNSKEY");
    let name = format!("_mta-sts.example.com.{APEX}");
    let Some(out) = delv(&dns, &anchor, &["TXT", &name]) else {
        return;
    };
    assert!(out.contains("; fully validated"), "{out}");
    assert!(out.contains("\"v=STSv1; id=s1;\""), "{out}");

    // NXDOMAIN (as compact denial), an empty non-terminal, and NODATA.
    for (name, why) in [
        (format!("_mta-sts.gone.example.{APEX}"), "no such name"),
        (format!("example.com.{APEX}"), "empty non-terminal"),
        (POLICY_HOST.to_owned(), "the policy host has no TXT"),
    ] {
        let out = delv(&dns, &anchor, &["TXT", &name]).expect("delv ran before");
        assert!(
            out.contains("; negative response, fully validated"),
            "{why}: {out}"
        );
    }

    let other = Zone::new(settings(Some(ZoneKey::generate().expect("key")))).expect("zone");
    let wrong = other.dnskey_record().expect("DNSKEY");
    let out = delv(&dns, &wrong, &["TXT", &name]).expect("delv ran before");
    assert!(!out.contains("fully validated"), "{out}");
    assert!(
        out.contains("resolution failed: broken trust chain"),
        "{out}"
    );
}
