//! RFC 1034 §3.6.2 / RFC 8461 §3.1 lookups against a local authoritative responder.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::dns_server::{self, Zone, name};
use stsward_net::dns::{Answer, Dns, DnsConfig, DnsError, DnssecStatus, Mx};

fn client(addr: std::net::SocketAddr) -> Dns {
    Dns::new(&DnsConfig {
        server: Some(addr),
        timeout: Duration::from_millis(300),
        attempts: 1,
        lookup_timeout: Duration::from_secs(3),
        dnssec: false,
        trust_anchors: None,
    })
    .unwrap()
}

fn zone() -> Zone {
    let mut z = Zone::default();
    z.txt("_mta-sts.split.test.", &[b"v=STSv1; ", b"id=20240101"])
        .txt("_mta-sts.two.test.", &[b"v=STSv1; id=a"])
        .txt("_mta-sts.two.test.", &[b"v=STSv1; id=b"])
        .cname("_mta-sts.hosted.test.", "_mta-sts.provider.test.")
        .txt("_mta-sts.provider.test.", &[b"v=STSv1; id=prov1"])
        .cname("_mta-sts.loop.test.", "_mta-sts.loop2.test.")
        .cname("_mta-sts.loop2.test.", "_mta-sts.loop.test.")
        .cname("_mta-sts.dangling.test.", "_mta-sts.gone.test.")
        .a("nodata.test.", "127.0.0.9")
        .mx("example.test.", 20, "mx2.example.test.")
        .mx("example.test.", 10, "mx1.example.test.")
        .a("mx1.example.test.", "127.0.0.10")
        .aaaa("mx1.example.test.", "::1");
    for i in 0..12 {
        z.cname(
            &format!("c{i}.long.test."),
            &format!("c{}.long.test.", i + 1),
        );
    }
    z.servfail.push(name("_mta-sts.broken.test."));
    z.refused.push(name("_mta-sts.refused.test."));
    z.silent.push(name("_mta-sts.silent.test."));
    z
}

#[tokio::test]
async fn rfc8461_3_1_txt_concatenates_character_strings() {
    let dns = client(dns_server::spawn(zone()).await);
    let l = dns.txt("_mta-sts.split.test").await.unwrap();
    let recs = l.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].as_str(), Some("v=STSv1; id=20240101"));
    assert_eq!(recs[0].strings, 2);
    assert!(l.cname_chain.is_empty());
    assert_eq!(l.dnssec, DnssecStatus::Indeterminate, "validation is off");

    let two = dns.txt("_mta-sts.two.test").await.unwrap();
    assert_eq!(two.records().len(), 2, "all TXT records are returned");
}

#[tokio::test]
async fn rfc1034_3_6_2_txt_follows_cname_one_hop_per_response_and_chased() {
    for chase in [false, true] {
        let mut z = zone();
        z.chase = chase;
        let dns = client(dns_server::spawn(z).await);
        let l = dns.txt("_mta-sts.hosted.test").await.unwrap();
        assert_eq!(l.cname_chain, ["_mta-sts.provider.test"], "chase={chase}");
        assert_eq!(l.records()[0].as_str(), Some("v=STSv1; id=prov1"));
        assert_eq!(l.name, "_mta-sts.hosted.test");
    }
}

#[tokio::test]
async fn rfc1034_3_6_2_cname_loop_is_a_typed_error() {
    for chase in [false, true] {
        let mut z = zone();
        z.chase = chase;
        let dns = client(dns_server::spawn(z).await);
        let err = dns.txt("_mta-sts.loop.test").await.unwrap_err();
        match err {
            DnsError::CnameLoop { chain } => assert_eq!(
                chain,
                [
                    "_mta-sts.loop.test",
                    "_mta-sts.loop2.test",
                    "_mta-sts.loop.test"
                ]
            ),
            other => panic!("chase={chase}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn overlong_cname_chain_is_a_typed_error() {
    let dns = client(dns_server::spawn(zone()).await);
    let err = dns.txt("c0.long.test").await.unwrap_err();
    assert!(
        matches!(err, DnsError::CnameChainTooLong { limit: 8, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn negative_answers_and_failures_are_told_apart() {
    let dns = client(dns_server::spawn(zone()).await);
    // (name, expected, why)
    let nx = dns.txt("_mta-sts.nowhere.test").await.unwrap();
    assert_eq!(nx.answer, Answer::NxDomain, "no such name");
    let nodata = dns.txt("nodata.test").await.unwrap();
    assert_eq!(nodata.answer, Answer::NoData, "name exists, no TXT");
    let dangling = dns.txt("_mta-sts.dangling.test").await.unwrap();
    assert_eq!(dangling.answer, Answer::NxDomain, "CNAME to a missing name");
    assert_eq!(dangling.cname_chain, ["_mta-sts.gone.test"]);

    let e = dns.txt("_mta-sts.broken.test").await.unwrap_err();
    assert!(matches!(e, DnsError::ServFail { .. }), "{e:?}");
    let e = dns.txt("_mta-sts.refused.test").await.unwrap_err();
    assert!(matches!(e, DnsError::Refused { .. }), "{e:?}");
    let started = std::time::Instant::now();
    let e = dns.txt("_mta-sts.silent.test").await.unwrap_err();
    assert!(matches!(e, DnsError::Timeout { .. }), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "bounded by lookup_timeout"
    );
}

#[tokio::test]
async fn rfc5321_5_1_mx_sorted_and_addresses_merged() {
    let dns = client(dns_server::spawn(zone()).await);
    let mx = dns.mx("example.test").await.unwrap();
    assert_eq!(
        mx.records(),
        [
            Mx {
                preference: 10,
                exchange: "mx1.example.test".into()
            },
            Mx {
                preference: 20,
                exchange: "mx2.example.test".into()
            },
        ]
    );
    let a = dns.addrs("mx1.example.test").await.unwrap();
    let want: Vec<IpAddr> = vec!["127.0.0.10".parse().unwrap(), "::1".parse().unwrap()];
    assert_eq!(a.records(), want.as_slice());
    let none = dns.addrs("mx2.example.test").await.unwrap();
    assert_eq!(none.answer, Answer::NxDomain);
}

/// Issue 6: a server that knows nothing of DNSSEC (it ignores the DO bit and returns no RRSIG
/// or DNSKEY, like a plain forwarder or a home router) leaves the validator without a chain
/// from the root anchor. RFC 4035 §4.3 calls that "indeterminate" ("the resolver is not able
/// to obtain the necessary DNSSEC RRs", quoted in RFC 7672 §2.1.1); it was reported "bogus".
#[tokio::test]
async fn rfc4035_4_3_resolver_without_dnssec_is_indeterminate_not_bogus() {
    let dns = Dns::new(&DnsConfig {
        server: Some(dns_server::spawn(zone()).await),
        timeout: Duration::from_millis(300),
        attempts: 1,
        lookup_timeout: Duration::from_secs(5),
        dnssec: true,
        trust_anchors: None,
    })
    .unwrap();
    assert_eq!(dns.resolver_supplies_dnssec(), None, "nothing asked yet");

    let txt = dns.txt("_mta-sts.split.test").await.unwrap();
    assert_eq!(txt.records().len(), 1, "the record is still returned");
    assert_eq!(txt.dnssec, DnssecStatus::Indeterminate, "records");
    let nodata = dns.txt("nodata.test").await.unwrap();
    assert_eq!(
        nodata.answer,
        Answer::NoData,
        "an unsigned NODATA is not an error"
    );
    assert_eq!(nodata.dnssec, DnssecStatus::Indeterminate, "NODATA");
    let nx = dns.txt("_mta-sts.nowhere.test").await.unwrap();
    assert_eq!(nx.answer, Answer::NxDomain);
    assert_eq!(nx.dnssec, DnssecStatus::Indeterminate, "NXDOMAIN");
    let mx = dns.mx("example.test").await.unwrap();
    assert_eq!(mx.dnssec, DnssecStatus::Indeterminate, "MX");
    let chained = dns.txt("_mta-sts.hosted.test").await.unwrap();
    assert_eq!(
        chained.dnssec,
        DnssecStatus::Indeterminate,
        "through a CNAME"
    );

    assert_eq!(
        dns.resolver_supplies_dnssec(),
        Some(false),
        "the client learned, once, that the resolver passes no DNSSEC records"
    );
    let e = dns.txt("_mta-sts.broken.test").await.unwrap_err();
    assert!(
        matches!(e, DnsError::ServFail { .. }),
        "a real SERVFAIL stays a SERVFAIL: {e:?}"
    );
}
