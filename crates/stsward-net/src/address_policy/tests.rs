//! Table tests of the address filter: every special range of both families, their IPv4
//! embeddings, the globally reachable exceptions, and the operator's allowed ranges.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect(s)
}

fn refused(range: Special) -> Verdict {
    Verdict::Refused(Refusal { range, via: None })
}

fn carried(range: Special, form: Embedding, v4: &str) -> Verdict {
    Verdict::Refused(Refusal {
        range,
        via: Some((form, v4.parse().expect(v4))),
    })
}

#[test]
fn ipv4_special_ranges_are_refused() {
    use Special::*;
    let table: &[(&str, Special, &str)] = &[
        ("0.0.0.0", Unspecified, "RFC 1122 unspecified"),
        ("0.1.2.3", ThisNetwork, "0.0.0.0/8"),
        ("10.0.0.1", Private, "RFC 1918"),
        ("10.255.255.255", Private, "top of 10/8"),
        ("100.64.0.1", SharedAddressSpace, "RFC 6598 bottom"),
        ("100.127.255.254", SharedAddressSpace, "RFC 6598 top"),
        ("127.0.0.1", Loopback, "loopback"),
        ("127.255.255.254", Loopback, "all of 127/8"),
        ("169.254.169.254", LinkLocal, "the cloud metadata address"),
        ("172.16.0.1", Private, "172.16/12 bottom"),
        ("172.31.255.255", Private, "172.16/12 top"),
        ("192.0.0.1", ProtocolAssignments, "192.0.0.0/24"),
        (
            "192.0.0.170",
            ProtocolAssignments,
            "NAT64 discovery, inside 192.0.0.0/24",
        ),
        ("192.0.2.10", Documentation, "TEST-NET-1"),
        ("192.88.99.1", Deprecated6to4Relay, "RFC 7526"),
        ("192.168.1.1", Private, "192.168/16"),
        ("198.18.0.1", Benchmarking, "198.18/15 bottom"),
        ("198.19.255.255", Benchmarking, "198.18/15 top"),
        ("198.51.100.7", Documentation, "TEST-NET-2"),
        ("203.0.113.9", Documentation, "TEST-NET-3"),
        ("224.0.0.1", Multicast, "all hosts"),
        ("239.255.255.250", Multicast, "SSDP"),
        ("240.0.0.1", Reserved, "class E"),
        ("254.255.255.255", Reserved, "top of class E"),
        ("255.255.255.255", Broadcast, "limited broadcast"),
    ];
    for (addr, range, why) in table {
        assert_eq!(check(ip(addr), &[]), refused(*range), "{addr}: {why}");
    }
}

#[test]
fn ipv4_global_addresses_are_allowed() {
    let table: &[(&str, &str)] = &[
        ("1.1.1.1", "public resolver"),
        ("8.8.8.8", "public resolver"),
        ("9.255.255.255", "just below 10/8"),
        ("11.0.0.0", "just above 10/8"),
        ("100.63.255.255", "just below 100.64/10"),
        ("100.128.0.0", "just above 100.64/10"),
        ("126.255.255.255", "just below 127/8"),
        ("128.0.0.0", "just above 127/8"),
        ("169.253.255.255", "just below link-local"),
        ("172.15.255.255", "just below 172.16/12"),
        ("172.32.0.0", "just above 172.16/12"),
        ("192.0.0.9", "PCP anycast, globally reachable (RFC 7723)"),
        ("192.0.0.10", "TURN anycast, globally reachable (RFC 8155)"),
        ("192.0.1.1", "between 192.0.0/24 and 192.0.2/24"),
        ("192.31.196.1", "AS112-v4, globally reachable"),
        ("192.52.193.1", "AMT, globally reachable"),
        (
            "192.175.48.1",
            "AS112 direct delegation, globally reachable",
        ),
        ("192.167.255.255", "just below 192.168/16"),
        ("198.17.255.255", "just below 198.18/15"),
        ("198.20.0.0", "just above 198.18/15"),
        ("223.255.255.255", "just below multicast"),
    ];
    for (addr, why) in table {
        assert_eq!(check(ip(addr), &[]), Verdict::Allowed, "{addr}: {why}");
    }
}

#[test]
fn ipv6_special_ranges_are_refused() {
    use Special::*;
    let table: &[(&str, Special, &str)] = &[
        ("::", Unspecified, "RFC 4291 §2.5.2"),
        ("::1", Loopback, "RFC 4291 §2.5.3"),
        ("64:ff9b:1::1", LocalTranslation, "RFC 8215"),
        ("100::1", DiscardOnly, "RFC 6666"),
        ("2001:2::1", Benchmarking, "RFC 5180"),
        ("2001:10::1", Orchid, "deprecated ORCHID"),
        ("2001:20::1", Orchid, "ORCHIDv2"),
        (
            "2001:100::1",
            ProtocolAssignments,
            "inside 2001::/23, no exception",
        ),
        (
            "2001:1::3",
            ProtocolAssignments,
            "next to the PCP and TURN anycasts",
        ),
        ("2001:db8::1", Documentation, "RFC 3849"),
        ("3fff::1", Documentation, "RFC 9637"),
        ("3fff:fff::1", Documentation, "top of 3fff::/20"),
        ("fc00::1", UniqueLocal, "RFC 4193, L=0"),
        ("fd12:3456::1", UniqueLocal, "RFC 4193, L=1"),
        ("fe80::1", LinkLocal, "RFC 4291 §2.5.6"),
        ("febf::1", LinkLocal, "top of fe80::/10"),
        ("fec0::1", SiteLocal, "RFC 3879"),
        ("ff02::1", Multicast, "all nodes"),
        ("ff05::2", Multicast, "site-local all routers"),
        (
            "::2",
            Ipv4Compatible,
            "IPv4-compatible form of 0.0.0.2 falls to 0.0.0.0/8",
        ),
        ("1::1", NotGlobalUnicast, "outside 2000::/3"),
        ("4000::1", NotGlobalUnicast, "above 2000::/3"),
        ("5f00::1", NotGlobalUnicast, "SRv6 SIDs, outside 2000::/3"),
    ];
    for (addr, range, why) in table {
        let got = check(ip(addr), &[]);
        match got {
            Verdict::Refused(r) if *range == Ipv4Compatible => {
                // ::2 carries 0.0.0.2: refused for what it carries.
                assert_eq!(r.range, ThisNetwork, "{addr}: {why}");
                assert_eq!(
                    r.via.map(|v| v.0),
                    Some(Embedding::Ipv4Compatible),
                    "{addr}"
                );
            }
            _ => assert_eq!(got, refused(*range), "{addr}: {why}"),
        }
    }
}

#[test]
fn ipv6_global_addresses_are_allowed() {
    let table: &[(&str, &str)] = &[
        ("2606:4700:4700::1111", "public resolver"),
        ("2a00:1450:4001:80b::200e", "global unicast"),
        ("2001:200::1", "just above 2001::/23"),
        ("2001:1::1", "PCP anycast, globally reachable"),
        ("2001:1::2", "TURN anycast, globally reachable"),
        ("2001:3::1", "AMT, globally reachable"),
        ("2001:4:112::1", "AS112-v6, globally reachable"),
        ("2001:db7:ffff::1", "just below documentation"),
        ("2001:db9::1", "just above documentation"),
        ("3ffe:ffff::1", "below 3fff::/20"),
        ("3fff:1000::1", "just above 3fff::/20"),
        (
            "2620:4f:8000::1",
            "AS112 direct delegation, globally reachable",
        ),
    ];
    for (addr, why) in table {
        assert_eq!(check(ip(addr), &[]), Verdict::Allowed, "{addr}: {why}");
    }
}

#[test]
fn embedded_ipv4_is_judged() {
    use Embedding::{Ipv4Mapped, Nat64, SixToFour, Teredo};
    use Special::*;
    let refused_table: &[(&str, Special, Embedding, &str, &str)] = &[
        (
            "::ffff:127.0.0.1",
            Loopback,
            Ipv4Mapped,
            "127.0.0.1",
            "mapped loopback",
        ),
        (
            "::ffff:10.1.2.3",
            Private,
            Ipv4Mapped,
            "10.1.2.3",
            "mapped private",
        ),
        (
            "::ffff:169.254.169.254",
            LinkLocal,
            Ipv4Mapped,
            "169.254.169.254",
            "mapped metadata",
        ),
        (
            "::ffff:0.0.0.0",
            Unspecified,
            Ipv4Mapped,
            "0.0.0.0",
            "mapped unspecified",
        ),
        (
            "::ffff:255.255.255.255",
            Broadcast,
            Ipv4Mapped,
            "255.255.255.255",
            "mapped broadcast",
        ),
        (
            "::ffff:100.64.0.1",
            SharedAddressSpace,
            Ipv4Mapped,
            "100.64.0.1",
            "mapped CGN",
        ),
        (
            "::127.0.0.1",
            Loopback,
            Embedding::Ipv4Compatible,
            "127.0.0.1",
            "compatible loopback",
        ),
        (
            "::192.168.0.1",
            Private,
            Embedding::Ipv4Compatible,
            "192.168.0.1",
            "compatible private",
        ),
        (
            "64:ff9b::127.0.0.1",
            Loopback,
            Nat64,
            "127.0.0.1",
            "NAT64 to loopback",
        ),
        (
            "64:ff9b::a00:1",
            Private,
            Nat64,
            "10.0.0.1",
            "NAT64 to private",
        ),
        (
            "2002:7f00:1::",
            Loopback,
            SixToFour,
            "127.0.0.1",
            "6to4 of loopback",
        ),
        (
            "2002:c0a8:101::1",
            Private,
            SixToFour,
            "192.168.1.1",
            "6to4 of private",
        ),
        (
            "2002:e000:1::",
            Multicast,
            SixToFour,
            "224.0.0.1",
            "6to4 of multicast",
        ),
        // Teredo: server 65.54.227.120 (global), client 127.0.0.1 inverted = 80ff:fffe.
        (
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            Loopback,
            Teredo,
            "127.0.0.1",
            "Teredo client",
        ),
        // Teredo: server 10.0.0.1.
        (
            "2001:0:a00:1::1",
            Private,
            Teredo,
            "10.0.0.1",
            "Teredo server",
        ),
    ];
    for (addr, range, form, v4, why) in refused_table {
        let got = check(ip(addr), &[]);
        assert_eq!(got, carried(*range, *form, v4), "{addr}: {why}");
        let Verdict::Refused(r) = got else {
            continue;
        };
        assert!(r.to_string().contains(v4), "{addr}: {r}");
    }
    let allowed_table: &[(&str, &str)] = &[
        ("::ffff:8.8.8.8", "mapped global"),
        ("64:ff9b::808:808", "NAT64 to 8.8.8.8"),
        ("2002:808:808::1", "6to4 of 8.8.8.8"),
        // Teredo: server 65.54.227.120, client 8.8.8.8 inverted = f7f7:f7f7.
        (
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
            "Teredo, both global",
        ),
    ];
    for (addr, why) in allowed_table {
        assert_eq!(check(ip(addr), &[]), Verdict::Allowed, "{addr}: {why}");
    }
    assert_eq!(
        check(ip("::8.8.8.8"), &[]),
        refused(Special::Ipv4Compatible),
        "the deprecated compatible form is refused even around a global address"
    );
}

#[test]
fn allowed_ranges_open_exactly_what_they_name() {
    let allow: Vec<Cidr> = ["127.0.0.0/8", "fd00:1::/64"]
        .iter()
        .map(|c| c.parse().expect(c))
        .collect();
    let lab = allow[0];
    let ula = allow[1];
    let table: &[(&str, Verdict, &str)] = &[
        (
            "127.0.0.1",
            Verdict::AllowedByConfig(lab),
            "the lab's loopback",
        ),
        ("127.0.0.53", Verdict::AllowedByConfig(lab), "all of 127/8"),
        (
            "::ffff:127.0.0.1",
            Verdict::AllowedByConfig(lab),
            "mapped: the same socket",
        ),
        (
            "fd00:1::5",
            Verdict::AllowedByConfig(ula),
            "the allowed ULA /64",
        ),
        ("10.0.0.1", refused(Special::Private), "still private"),
        (
            "::1",
            refused(Special::Loopback),
            "IPv6 loopback was not allowed",
        ),
        (
            "fd00:2::5",
            refused(Special::UniqueLocal),
            "another ULA /64",
        ),
        (
            "8.8.8.8",
            Verdict::Allowed,
            "global stays allowed, not by config",
        ),
    ];
    for (addr, verdict, why) in table {
        assert_eq!(check(ip(addr), &allow), *verdict, "{addr}: {why}");
    }
    assert!(check(ip("127.0.0.1"), &allow).is_allowed());
    assert!(!check(ip("10.0.0.1"), &allow).is_allowed());
}

#[test]
fn cidr_parse_display_and_contains() {
    let good: &[(&str, &str)] = &[
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("127.0.0.1", "127.0.0.1/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("fd00::/8", "fd00::/8"),
        ("::1", "::1/128"),
        ("::/0", "::/0"),
    ];
    for (text, shown) in good {
        let c: Cidr = text.parse().expect(text);
        assert_eq!(c.to_string(), *shown, "{text}");
        assert_eq!(c.to_string().parse::<Cidr>(), Ok(c), "round trip {text}");
    }
    let bad: &[(&str, &str)] = &[
        ("10.0.0.1/8", "host bits set"),
        ("10.0.0.0/33", "prefix too long for IPv4"),
        ("::/129", "prefix too long for IPv6"),
        ("10.0.0.0/", "empty prefix"),
        ("10.0.0.0/+8", "a sign"),
        ("10.0.0/8", "not an address"),
        ("example.com/8", "a name"),
        ("", "empty"),
    ];
    for (text, why) in bad {
        assert!(text.parse::<Cidr>().is_err(), "{why}: {text}");
    }
    assert_eq!(
        "10.0.0.1/8".parse::<Cidr>(),
        Err(CidrError::HostBits(
            "10.0.0.1/8".into(),
            "10.0.0.0/8".into()
        ))
    );
    let all4: Cidr = "0.0.0.0/0".parse().expect("all");
    assert!(all4.contains(ip("203.0.113.1")));
    assert!(!all4.contains(ip("::1")), "families do not mix");
    let net: Cidr = "192.168.0.0/16".parse().expect("net");
    assert!(net.contains(ip("192.168.255.255")) && !net.contains(ip("192.169.0.0")));
    assert_eq!(Cidr::new(ip("10.0.0.1"), 8), None);
    assert_eq!(Cidr::new(ip("10.0.0.0"), 33), None);
    assert!(Cidr::new(ip("10.0.0.0"), 8).is_some());
}

#[test]
fn every_refusal_has_a_distinct_code() {
    let all = [
        Special::Unspecified,
        Special::ThisNetwork,
        Special::Loopback,
        Special::Private,
        Special::SharedAddressSpace,
        Special::LinkLocal,
        Special::ProtocolAssignments,
        Special::Documentation,
        Special::Benchmarking,
        Special::Multicast,
        Special::Broadcast,
        Special::Reserved,
        Special::Deprecated6to4Relay,
        Special::UniqueLocal,
        Special::SiteLocal,
        Special::DiscardOnly,
        Special::LocalTranslation,
        Special::Orchid,
        Special::Ipv4Compatible,
        Special::NotGlobalUnicast,
    ];
    let mut codes: Vec<&str> = all.iter().map(|s| s.code()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
}
