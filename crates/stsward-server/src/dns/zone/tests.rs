use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hickory_proto::dnssec::rdata::DNSSECRData;

use super::*;
use crate::dns::settings::{NameServer, SoaSettings};
use crate::dns::sign::{RESIGN_AFTER, ZoneKey};

fn settings(key: Option<ZoneKey>) -> ZoneSettings {
    ZoneSettings {
        apex: "STS.Provider.Example.".into(),
        soa: SoaSettings {
            mname: "ns1.sts.provider.example".into(),
            rname: "hostmaster.provider.example".into(),
            serial: 7,
            refresh: 3600,
            retry: 600,
            expire: 86_400,
            minimum: 30,
        },
        name_servers: vec![NameServer {
            name: "ns1.sts.provider.example".into(),
            addrs: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))],
        }],
        policy_host: NameServer {
            name: "policy.hosts.sts.provider.example".into(),
            addrs: vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))],
        },
        ttl: 3600,
        txt_ttl: 60,
        default_rua: None,
        signing_key: key,
    }
}

fn id(text: &str) -> PolicyId {
    text.parse().expect("test id")
}

fn lower(name: &str) -> LowerName {
    LowerName::new(&Name::from_ascii(name).expect("test name"))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("fixed time")
}

fn rcode(zone: &Zone, name: &str, qtype: RecordType) -> (ResponseCode, usize) {
    let answer = zone
        .answer(&lower(name), qtype, false, now())
        .expect("answer");
    (answer.rcode, answer.answers.len())
}

#[test]
fn hosted_domain_names_are_normalised_or_refused() {
    let good: &[(&str, &str)] = &[
        ("example.com", "example.com"),
        ("Example.COM.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("a-b.c1.example", "a-b.c1.example"),
    ];
    for (input, key) in good {
        assert_eq!(domain_key(input).expect(input), *key, "{input}");
    }
    let bad: &[(&str, &str)] = &[
        ("", "empty"),
        (
            "_mta-sts.example.com",
            "underscore: would collide with the served labels",
        ),
        ("*.example.com", "wildcards are not domains"),
        ("a..example", "empty label"),
        (
            "192.0.2.1.example/x",
            "a slash is not a host name character",
        ),
    ];
    for (input, why) in bad {
        assert!(domain_key(input).is_err(), "{input}: {why}");
    }
}

#[test]
fn empty_non_terminals_of_a_hosted_domain() {
    assert_eq!(
        domain_ents("a.example.com", true),
        vec!["_tls.a.example.com", "a.example.com", "example.com", "com"]
    );
    assert_eq!(domain_ents("example", false), vec!["example"]);
    assert_eq!(ancestors("x.y"), vec!["y".to_owned(), String::new()]);
    assert!(ancestors("").is_empty());
}

#[test]
fn settings_that_cannot_work_are_refused_with_the_field_named() {
    let cases: Vec<(ZoneSettings, &str)> = vec![
        (
            ZoneSettings {
                policy_host: NameServer {
                    name: "mta-sts.elsewhere.example".into(),
                    addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                },
                ..settings(None)
            },
            "policy_host.name",
        ),
        (
            ZoneSettings {
                name_servers: Vec::new(),
                ..settings(None)
            },
            "name_servers",
        ),
        (
            ZoneSettings {
                name_servers: vec![NameServer {
                    name: "ns9.sts.provider.example".into(),
                    addrs: Vec::new(),
                }],
                ..settings(None)
            },
            "name_servers.addrs",
        ),
        (
            ZoneSettings {
                apex: ".".into(),
                ..settings(None)
            },
            "apex",
        ),
        (
            ZoneSettings {
                default_rua: Some(Vec::new()),
                ..settings(None)
            },
            "default_rua",
        ),
    ];
    for (bad, field) in cases {
        let error = Zone::new(bad).expect_err(field).to_string();
        assert!(error.starts_with(field), "{field}: {error}");
    }
}

#[test]
fn shared_parents_live_as_long_as_a_domain_below_them() {
    let zone = Zone::new(settings(None)).expect("zone");
    let apex = "sts.provider.example.";
    zone.upsert("a.example.com", &id("1"), None)
        .expect("upsert");
    zone.upsert("b.example.com", &id("1"), None)
        .expect("upsert");
    let parent = format!("example.com.{apex}");
    assert_eq!(
        rcode(&zone, &parent, RecordType::A),
        (ResponseCode::NoError, 0)
    );
    zone.remove("a.example.com").expect("remove");
    assert_eq!(
        rcode(&zone, &parent, RecordType::A),
        (ResponseCode::NoError, 0)
    );
    assert_eq!(
        rcode(&zone, &format!("a.example.com.{apex}"), RecordType::A),
        (ResponseCode::NXDomain, 0)
    );
    zone.remove("b.example.com").expect("remove");
    assert_eq!(
        rcode(&zone, &parent, RecordType::A),
        (ResponseCode::NXDomain, 0)
    );
    // The policy host's parent is an empty non-terminal of its own.
    assert_eq!(
        rcode(&zone, &format!("hosts.{apex}"), RecordType::A),
        (ResponseCode::NoError, 0)
    );
    // Without a default rua and without the domain's own, no _smtp._tls record.
    zone.upsert("c.example", &id("1"), None).expect("upsert");
    assert_eq!(
        rcode(
            &zone,
            &format!("_smtp._tls.c.example.{apex}"),
            RecordType::TXT
        ),
        (ResponseCode::NXDomain, 0)
    );
    assert_eq!(
        rcode(&zone, &format!("_tls.c.example.{apex}"), RecordType::TXT),
        (ResponseCode::NXDomain, 0)
    );
}

#[test]
fn serial_counts_changes_and_wraps() {
    let zone = Zone::new(ZoneSettings {
        soa: SoaSettings {
            serial: u32::MAX,
            ..settings(None).soa
        },
        ..settings(None)
    })
    .expect("zone");
    assert_eq!(zone.serial(), u32::MAX);
    assert_eq!(zone.upsert("x.example", &id("1"), None).expect("upsert"), 0);
    assert_eq!(zone.upsert("x.example", &id("2"), None).expect("upsert"), 1);
    assert_eq!(zone.remove("x.example").expect("remove"), Some(2));
    assert_eq!(zone.remove("x.example").expect("remove"), None);
    assert!(zone.is_empty());
}

#[test]
fn any_returns_every_rrset_at_the_apex() {
    let zone = Zone::new(settings(Some(ZoneKey::generate().expect("key")))).expect("zone");
    let answer = zone
        .answer(
            &lower("sts.provider.example."),
            RecordType::ANY,
            false,
            now(),
        )
        .expect("answer");
    let mut types: Vec<RecordType> = answer.answers.iter().map(|s| s.record_type()).collect();
    types.sort();
    assert_eq!(
        types,
        vec![RecordType::NS, RecordType::SOA, RecordType::DNSKEY]
    );
}

fn rrsig_inception(zone: &Zone, at: OffsetDateTime) -> u32 {
    let answer = zone
        .answer(
            &lower("_mta-sts.example.com.sts.provider.example."),
            RecordType::TXT,
            true,
            at,
        )
        .expect("answer");
    let rrsigs = answer.answers[0].rrsigs();
    assert_eq!(rrsigs.len(), 1, "one RRSIG");
    match &rrsigs[0].data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => sig.input().sig_inception.get(),
        other => panic!("not an RRSIG: {other:?}"),
    }
}

#[test]
fn signatures_are_reused_then_renewed_before_they_expire() {
    let zone = Zone::new(settings(Some(ZoneKey::generate().expect("key")))).expect("zone");
    zone.upsert("example.com", &id("1"), None).expect("upsert");
    let first = rrsig_inception(&zone, now());
    let later = now() + Duration::from_secs(3600);
    assert_eq!(rrsig_inception(&zone, later), first, "cached");
    let much_later = now() + RESIGN_AFTER + Duration::from_secs(1);
    let renewed = rrsig_inception(&zone, much_later);
    assert!(renewed > first, "renewed: {renewed} > {first}");
}

#[test]
fn signing_keys_round_trip_through_pkcs8() {
    let key = ZoneKey::generate().expect("key");
    let again = ZoneKey::from_pkcs8_der(key.pkcs8_der().to_vec()).expect("parses");
    let a = Zone::new(settings(Some(key))).expect("zone");
    let b = Zone::new(settings(Some(again))).expect("zone");
    assert_eq!(a.dnskey_record(), b.dnskey_record());
    assert!(ZoneKey::from_pkcs8_der(vec![0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
}

#[test]
fn rfc4034_5_ds_names_the_key_that_signs() {
    let zone = Zone::new(settings(Some(ZoneKey::generate().expect("key")))).expect("zone");
    let ds = zone.ds_record().expect("DS").expect("signed");
    let fields: Vec<&str> = ds.split_whitespace().collect();
    assert_eq!(
        &fields[..4],
        &["sts.provider.example.", "3600", "IN", "DS"],
        "{ds}"
    );
    assert_eq!(&fields[5..7], &["13", "2"], "ECDSA P-256, SHA-256: {ds}");
    assert_eq!(fields[7].len(), 64, "a SHA-256 digest in hex: {ds}");
    let answer = zone
        .answer(
            &lower("sts.provider.example."),
            RecordType::SOA,
            true,
            now(),
        )
        .expect("answer");
    let tag = match &answer.answers[0].rrsigs()[0].data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => sig.input().key_tag,
        other => panic!("not an RRSIG: {other:?}"),
    };
    assert_eq!(
        fields[4],
        tag.to_string(),
        "DS and RRSIG name the same key: {ds}"
    );
    let unsigned = Zone::new(settings(None)).expect("zone");
    assert_eq!(unsigned.ds_record().expect("no DS"), None);
}

#[test]
fn fifty_thousand_domains_load_at_once_and_change_one_at_a_time() {
    let zone = Zone::new(settings(None)).expect("zone");
    let ids: Vec<PolicyId> = (0..50_000).map(|i| id(&format!("v{i}"))).collect();
    let domains: Vec<String> = (0..50_000).map(|i| format!("d{i}.example")).collect();
    let serial = zone
        .upsert_all(
            domains
                .iter()
                .zip(&ids)
                .map(|(domain, id)| (domain.as_str(), id, None)),
        )
        .expect("load");
    assert_eq!(serial, 8, "one serial increase for the whole load");
    assert_eq!(zone.len(), 50_000);
    let txt = |domain: &str| {
        let answer = zone
            .answer(
                &lower(&format!("_mta-sts.{domain}.sts.provider.example.")),
                RecordType::TXT,
                false,
                now(),
            )
            .expect("answer");
        answer.answers[0]
            .records_without_rrsigs()
            .map(|r| r.data.to_string())
            .collect::<String>()
    };
    assert!(txt("d0.example").contains("id=v0;"));
    assert!(txt("d49999.example").contains("id=v49999;"));
    assert_eq!(
        zone.upsert("d777.example", &id("changed"), None)
            .expect("upsert"),
        9
    );
    assert!(txt("d777.example").contains("id=changed;"));
    assert!(
        txt("d778.example").contains("id=v778;"),
        "neighbours untouched"
    );
    // "example" is the parent of all of them: it stays until the last one goes.
    assert_eq!(
        rcode(&zone, "example.sts.provider.example.", RecordType::A),
        (ResponseCode::NoError, 0)
    );
    // A bad name anywhere in a batch changes nothing.
    let bad = [
        ("ok.example", &ids[0], None),
        ("bad_name.example", &ids[1], None),
    ];
    assert!(zone.upsert_all(bad).is_err());
    assert_eq!(zone.len(), 50_000);
    assert_eq!(zone.serial(), 9);
}
