//! The delegated zone served over UDP and TCP on 127.0.0.1 and ::1, asked by a plain DNS
//! client that shows every header bit: the records of RFC 8461 §3.1 and RFC 8460 §3, the
//! apex, the negative answers, updates, truncation and hostile clients.

mod dns_support;

use std::time::{Duration, Instant};

use dns_support::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use stsward_proto::mta_sts::{PolicyId, StsRecord};
use stsward_proto::tlsrpt::TlsRptRecord;
use stsward_server::dns::{DnsLimits, Zone};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn id(text: &str) -> PolicyId {
    text.parse().expect("test id parses")
}

fn sts_name(domain: &str) -> String {
    format!("_mta-sts.{domain}.{APEX}.")
}

fn tlsrpt_name(domain: &str) -> String {
    format!("_smtp._tls.{domain}.{APEX}.")
}

/// A zone with `example.com` (default rua) and `other.example` (its own rua).
async fn provider() -> Running {
    let zone = Zone::new(settings(None)).expect("zone builds");
    zone.upsert("example.com", &id("20261203a"), None)
        .expect("upsert");
    zone.upsert(
        "other.example",
        &id("x1"),
        Some(&[rua("https://reports.other.example/tlsrpt")]),
    )
    .expect("upsert");
    start(zone, DnsLimits::default()).await
}

fn assert_authoritative(msg: &Message, rcode: ResponseCode, what: &str) {
    assert_eq!(msg.metadata.response_code, rcode, "{what}: {msg}");
    assert!(msg.metadata.authoritative, "{what}: AA must be set: {msg}");
    assert!(!msg.metadata.truncation, "{what}: not truncated: {msg}");
}

/// RFC 2308 §3 and §5 (paraphrase): a negative answer carries the zone's SOA in the
/// authority section, with a TTL no larger than the SOA MINIMUM field.
fn assert_negative(msg: &Message, rcode: ResponseCode, what: &str) {
    assert_authoritative(msg, rcode, what);
    assert!(msg.answers.is_empty(), "{what}: no answer: {msg}");
    let soa: Vec<_> = msg
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .collect();
    assert_eq!(soa.len(), 1, "{what}: one SOA in authority: {msg}");
    assert_eq!(soa[0].name.to_string(), format!("{APEX}."), "{what}");
    assert_eq!(soa[0].ttl, SOA_MINIMUM, "{what}: negative TTL");
}

#[tokio::test]
async fn rfc8461_3_1_and_rfc8460_3_txt_records_over_udp_and_tcp_v4_and_v6() {
    let dns = provider().await;
    for (addr, how) in [
        (dns.udp4, UDP),
        (dns.udp6, UDP),
        (dns.tcp4, TCP),
        (dns.tcp6, TCP),
    ] {
        let what = format!("{addr} tcp={}", how.tcp);
        let msg = ask(addr, &sts_name("example.com"), RecordType::TXT, how).await;
        assert_authoritative(&msg, ResponseCode::NoError, &what);
        let texts = txts(&msg);
        assert_eq!(texts.len(), 1, "{what}: one record: {msg}");
        let record: StsRecord = texts[0].parse().expect("served record parses");
        assert_eq!(record, StsRecord::new(id("20261203a")), "{what}");
        assert_eq!(msg.answers[0].ttl, TXT_TTL, "{what}");

        let msg = ask(addr, &tlsrpt_name("example.com"), RecordType::TXT, how).await;
        assert_authoritative(&msg, ResponseCode::NoError, &what);
        let record: TlsRptRecord = txts(&msg)[0].parse().expect("TLS-RPT record parses");
        assert_eq!(
            record.rua,
            vec![rua(DEFAULT_RUA)],
            "{what}: the default rua"
        );

        let msg = ask(addr, &tlsrpt_name("other.example"), RecordType::TXT, how).await;
        let record: TlsRptRecord = txts(&msg)[0].parse().expect("TLS-RPT record parses");
        assert_eq!(
            record.rua,
            vec![rua("https://reports.other.example/tlsrpt")],
            "{what}: the domain's own rua"
        );
    }
}

#[tokio::test]
async fn names_match_case_insensitively_and_answers_keep_the_question() {
    let dns = provider().await;
    let asked = "_MTA-STS.Example.COM.Sts.Provider.TEST.";
    let msg = ask(dns.udp4, asked, RecordType::TXT, UDP).await;
    assert_authoritative(&msg, ResponseCode::NoError, asked);
    assert_eq!(txts(&msg).len(), 1, "{msg}");
    assert_eq!(msg.queries[0].name().to_string(), asked, "question echoed");
}

#[tokio::test]
async fn policy_host_and_apex_records() {
    let dns = provider().await;
    let a = ask(dns.udp4, &format!("{POLICY_HOST}."), RecordType::A, UDP).await;
    assert_authoritative(&a, ResponseCode::NoError, "A");
    let addrs: Vec<_> = a.answers.iter().map(|r| r.data.clone()).collect();
    assert_eq!(addrs, vec![RData::A(POLICY_V4.into())]);
    let aaaa = ask(dns.tcp6, &format!("{POLICY_HOST}."), RecordType::AAAA, TCP).await;
    assert_authoritative(&aaaa, ResponseCode::NoError, "AAAA");
    let addrs: Vec<_> = aaaa.answers.iter().map(|r| r.data.clone()).collect();
    assert_eq!(addrs, vec![RData::AAAA(POLICY_V6.into())]);

    let soa = ask(dns.udp4, &format!("{APEX}."), RecordType::SOA, UDP).await;
    assert_authoritative(&soa, ResponseCode::NoError, "SOA");
    let RData::SOA(fields) = &soa.answers[0].data else {
        panic!("not an SOA: {soa}");
    };
    assert_eq!(fields.mname.to_string(), format!("{NS1}."));
    assert_eq!(fields.minimum, SOA_MINIMUM);
    assert_eq!(soa.answers[0].ttl, SOA_TTL);

    let ns = ask(dns.udp4, &format!("{APEX}."), RecordType::NS, UDP).await;
    assert_authoritative(&ns, ResponseCode::NoError, "NS");
    let mut names: Vec<String> = ns
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.to_string()),
            _ => None,
        })
        .collect();
    names.sort();
    assert_eq!(names, vec![format!("{NS2}."), format!("{NS1}.")]);
    // Glue: the in-zone name server's address, and only that one.
    let glue: Vec<_> = ns
        .additionals
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| (r.name.to_string(), r.data.clone()))
        .collect();
    assert_eq!(glue, vec![(format!("{NS1}."), RData::A(NS1_V4.into()))]);

    let ns1 = ask(dns.udp4, &format!("{NS1}."), RecordType::A, UDP).await;
    assert_authoritative(&ns1, ResponseCode::NoError, "in-zone NS address");
}

#[tokio::test]
async fn rfc2308_nxdomain_nodata_and_empty_non_terminals() {
    let dns = provider().await;
    let cases: &[(String, RecordType, ResponseCode, &str)] = &[
        (
            sts_name("unknown.example"),
            RecordType::TXT,
            ResponseCode::NXDomain,
            "a domain that is not hosted",
        ),
        (
            format!("www.{APEX}."),
            RecordType::A,
            ResponseCode::NXDomain,
            "a name nobody created",
        ),
        (
            format!("_mta-sts.com.{APEX}."),
            RecordType::TXT,
            ResponseCode::NXDomain,
            "a parent of a hosted domain is not hosted itself",
        ),
        (
            sts_name("example.com"),
            RecordType::A,
            ResponseCode::NoError,
            "NODATA: the name holds TXT only",
        ),
        (
            format!("{POLICY_HOST}."),
            RecordType::TXT,
            ResponseCode::NoError,
            "NODATA: the policy host holds addresses only",
        ),
        (
            format!("{APEX}."),
            RecordType::TXT,
            ResponseCode::NoError,
            "NODATA at the apex",
        ),
        (
            format!("example.com.{APEX}."),
            RecordType::TXT,
            ResponseCode::NoError,
            "empty non-terminal: the hosted domain's own node",
        ),
        (
            format!("com.{APEX}."),
            RecordType::A,
            ResponseCode::NoError,
            "empty non-terminal: a parent of a hosted domain",
        ),
        (
            format!("_tls.example.com.{APEX}."),
            RecordType::TXT,
            ResponseCode::NoError,
            "empty non-terminal between _smtp and the domain",
        ),
    ];
    for (name, rtype, rcode, why) in cases {
        let msg = ask(dns.udp4, name, *rtype, UDP).await;
        assert_negative(&msg, *rcode, &format!("{why} ({name} {rtype})"));
        let msg = ask(dns.tcp6, name, *rtype, TCP).await;
        assert_negative(&msg, *rcode, &format!("{why} ({name} {rtype}, TCP)"));
    }
}

#[tokio::test]
async fn questions_outside_the_zone_or_not_queries_are_refused() {
    let dns = provider().await;
    for name in [
        "example.com.",
        "provider.test.",
        "test.",
        ".",
        "xsts.provider.test.",
    ] {
        let msg = ask(dns.udp4, name, RecordType::A, UDP).await;
        assert_eq!(msg.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(!msg.metadata.authoritative, "{name}: not authoritative");
        assert!(
            msg.answers.is_empty() && msg.authorities.is_empty(),
            "{name}"
        );
    }
    let msg = ask(dns.tcp4, &format!("{APEX}."), RecordType::AXFR, TCP).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::Refused, "AXFR");
}

/// Questions the zone does not answer, each with the code RFC 1035 §4.1.1 (and RFC 6891
/// §6.1.3 for BADVERS) gives it.
#[tokio::test]
async fn odd_questions_get_their_error_codes() {
    let dns = provider().await;
    let apex = Name::from_ascii(format!("{APEX}.")).expect("name");
    let base = || {
        let mut msg = Message::new(7, MessageType::Query, OpCode::Query);
        msg.add_query(Query::query(apex.clone(), RecordType::SOA));
        msg
    };
    let mut chaos = base();
    chaos.queries[0].set_query_class(DNSClass::CH);
    let mut status = base();
    status.metadata.op_code = OpCode::Status;
    let mut two = base();
    two.add_query(Query::query(apex.clone(), RecordType::NS));
    let mut none = Message::new(7, MessageType::Query, OpCode::Query);
    let mut edns1 = base();
    let mut edns = Edns::new();
    edns.set_version(1);
    edns1.set_edns(edns);
    none.set_edns(Edns::new());
    let cases = [
        (chaos, ResponseCode::Refused, "class CH"),
        (status, ResponseCode::NotImp, "opcode STATUS"),
        (two, ResponseCode::FormErr, "two questions"),
        (none, ResponseCode::FormErr, "no question"),
        (edns1, ResponseCode::BADVERS, "EDNS version 1"),
    ];
    for (question, rcode, why) in cases {
        let bytes = question.to_vec().expect("encodes");
        for tcp in [false, true] {
            let raw = if tcp {
                exchange_tcp(dns.tcp4, &bytes).await
            } else {
                exchange_udp(dns.udp4, &bytes).await
            }
            .unwrap_or_else(|| panic!("{why}: answered (tcp={tcp})"));
            let msg = Message::from_vec(&raw).expect("decodes");
            // Compared as numbers: BADVERS and BADSIG share the value 16, and the decoder
            // names it BADSIG.
            assert_eq!(
                u16::from(msg.metadata.response_code),
                u16::from(rcode),
                "{why} (tcp={tcp}): {msg}"
            );
            assert!(msg.answers.is_empty(), "{why}: {msg}");
            assert!(!msg.metadata.authoritative, "{why}: {msg}");
        }
    }
}

#[tokio::test]
async fn an_update_is_in_the_next_answer_with_a_higher_serial() {
    let dns = provider().await;
    let before = ask(dns.udp4, &format!("{APEX}."), RecordType::SOA, UDP).await;
    let first = soa_serial(&before).expect("SOA");
    assert_eq!(first, dns.zone.serial());

    let serial = dns
        .zone
        .upsert("example.com", &id("20261203b"), None)
        .expect("upsert");
    assert!(serial > first);
    let msg = ask(dns.udp4, &sts_name("example.com"), RecordType::TXT, UDP).await;
    let record: StsRecord = txts(&msg)[0].parse().expect("parses");
    assert_eq!(record.id, id("20261203b"), "the new id is served at once");
    let after = ask(dns.tcp4, &format!("{APEX}."), RecordType::SOA, TCP).await;
    assert_eq!(soa_serial(&after), Some(serial));

    // The same policy again changes nothing, not even the serial.
    let same = dns
        .zone
        .upsert("example.com", &id("20261203b"), None)
        .expect("upsert");
    assert_eq!(same, serial);

    // A new domain appears; its removal takes its empty non-terminals with it.
    dns.zone
        .upsert("new.example.net", &id("n1"), None)
        .expect("upsert");
    let msg = ask(
        dns.udp4,
        &format!("example.net.{APEX}."),
        RecordType::A,
        UDP,
    )
    .await;
    assert_negative(&msg, ResponseCode::NoError, "ENT of the new domain");
    let removed = dns
        .zone
        .remove("New.Example.Net.")
        .expect("remove")
        .expect("was hosted");
    assert!(removed > serial);
    for name in [sts_name("new.example.net"), format!("example.net.{APEX}.")] {
        let msg = ask(dns.udp4, &name, RecordType::TXT, UDP).await;
        assert_negative(&msg, ResponseCode::NXDomain, &name);
        assert_eq!(soa_serial(&msg), Some(removed), "{name}: the new serial");
    }
    assert_eq!(dns.zone.remove("new.example.net").expect("remove"), None);
    // A shared parent stays while another domain still needs it.
    let msg = ask(dns.udp4, &format!("com.{APEX}."), RecordType::A, UDP).await;
    assert_negative(
        &msg,
        ResponseCode::NoError,
        "com is still a parent of example.com",
    );
}

/// A domain whose TLS-RPT record is larger than a UDP answer may be.
async fn with_large_record() -> (Running, String) {
    let zone = Zone::new(settings(None)).expect("zone builds");
    let many: Vec<_> = (0..40)
        .map(|i| {
            rua(&format!(
                "https://reports-{i:02}.large.example/tls-reporting/v1/submit"
            ))
        })
        .collect();
    zone.upsert("large.example", &id("big"), Some(&many))
        .expect("upsert");
    (
        start(zone, DnsLimits::default()).await,
        tlsrpt_name("large.example"),
    )
}

#[tokio::test]
async fn rfc1035_4_2_1_udp_answers_too_large_are_truncated_and_tcp_gets_them_whole() {
    let (dns, name) = with_large_record().await;
    let whole = ask(dns.tcp4, &name, RecordType::TXT, TCP).await;
    assert_authoritative(&whole, ResponseCode::NoError, "TCP");
    let text = &txts(&whole)[0];
    assert!(text.len() > 2000, "the record is large: {}", text.len());
    let record: TlsRptRecord = text.parse().expect("split strings join back");
    assert_eq!(record.rua.len(), 40);

    for (payload, limit) in [(None, 512), (Some(4096), 1232), (Some(1232), 1232)] {
        let how = Ask {
            tcp: false,
            edns: payload,
            dnssec_ok: false,
        };
        let raw = exchange_udp(dns.udp4, &question(&name, RecordType::TXT, how))
            .await
            .expect("answer");
        assert!(raw.len() <= limit, "{payload:?}: {} > {limit}", raw.len());
        let msg = Message::from_vec(&raw).expect("decodes");
        assert!(msg.metadata.truncation, "{payload:?}: TC set: {msg}");
        assert!(msg.answers.is_empty(), "{payload:?}: no partial RRset");
    }
}

#[tokio::test]
async fn malformed_packets_get_formerr_or_nothing_and_the_server_keeps_answering() {
    let dns = provider().await;
    let good = question(&sts_name("example.com"), RecordType::TXT, UDP);
    let mut bad: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "empty"),
        (vec![0x12], "one byte"),
        (vec![0xff; 11], "shorter than a header"),
        (vec![0xff; 512], "all ones"),
        (good[..good.len() - 3].to_vec(), "cut in the middle of EDNS"),
    ];
    // A header announcing five questions and carrying none.
    let mut five = good[..12].to_vec();
    five[4..6].copy_from_slice(&5u16.to_be_bytes());
    bad.push((five, "question count larger than the message"));
    // A name whose compression pointer points at itself.
    let mut looped = good[..12].to_vec();
    looped[4..6].copy_from_slice(&1u16.to_be_bytes());
    looped[6..12].fill(0);
    looped.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1]);
    bad.push((looped, "compression pointer loop"));
    // Pseudo-random bytes after a valid header.
    let mut seed = 0x2545_f491_u32;
    let mut noise = good[..12].to_vec();
    for _ in 0..300 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        noise.push(seed.to_be_bytes()[0]);
    }
    bad.push((noise, "random body"));

    for (bytes, why) in &bad {
        if let Some(raw) = exchange_udp_within(dns.udp4, bytes, Duration::from_millis(300)).await {
            let msg = Message::from_vec(&raw).expect("an answer is a valid message");
            assert_ne!(
                msg.metadata.response_code,
                ResponseCode::NoError,
                "{why}: {msg}"
            );
            assert!(msg.answers.is_empty(), "{why}: {msg}");
        }
        // Over TCP too: framed correctly, garbage inside.
        let mut stream = TcpStream::connect(dns.tcp4).await.expect("connect");
        let len = u16::try_from(bytes.len()).expect("short");
        stream.write_all(&len.to_be_bytes()).await.expect("write");
        stream.write_all(bytes).await.expect("write");
        let _ = read_framed(&mut stream).await;
        // Still answering, on both transports.
        let msg = ask(dns.udp4, &sts_name("example.com"), RecordType::TXT, UDP).await;
        assert_eq!(txts(&msg).len(), 1, "after {why}");
        let msg = ask(dns.tcp4, &sts_name("example.com"), RecordType::TXT, TCP).await;
        assert_eq!(txts(&msg).len(), 1, "after {why} (TCP)");
    }
}

#[tokio::test]
async fn rfc7766_idle_and_trickling_tcp_clients_are_cut_off() {
    let limits = DnsLimits {
        tcp_idle_timeout: Duration::from_millis(400),
        ..DnsLimits::default()
    };
    let zone = Zone::new(settings(None)).expect("zone builds");
    let dns = start(zone, limits).await;

    // Connects and sends nothing.
    let started = Instant::now();
    let mut idle = TcpStream::connect(dns.tcp4).await.expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, idle.read(&mut buf))
        .await
        .expect("the server closes the connection before the test gives up");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, nothing sent: {read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Sends a question one byte every 150 ms: never a whole message within the timeout.
    let started = Instant::now();
    let bytes = question(&format!("{APEX}."), RecordType::SOA, TCP);
    let mut framed = u16::try_from(bytes.len())
        .expect("short")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&bytes);
    let mut slow = TcpStream::connect(dns.tcp6).await.expect("connect");
    let mut closed = false;
    for byte in framed {
        if slow.write_all(&[byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    if !closed {
        let read = tokio::time::timeout(WAIT, slow.read(&mut buf)).await;
        closed = matches!(read, Ok(Ok(0) | Err(_)));
    }
    assert!(closed, "the trickling client was cut off");

    // A well-behaved client is still answered, twice on one connection.
    let mut stream = TcpStream::connect(dns.tcp4).await.expect("connect");
    for _ in 0..2 {
        let bytes = question(&format!("{APEX}."), RecordType::SOA, TCP);
        let len = u16::try_from(bytes.len()).expect("short");
        stream.write_all(&len.to_be_bytes()).await.expect("write");
        stream.write_all(&bytes).await.expect("write");
        let raw = read_framed(&mut stream).await.expect("answer");
        let msg = Message::from_vec(&raw).expect("decodes");
        assert_eq!(soa_serial(&msg), Some(FIRST_SERIAL));
    }
}

#[tokio::test]
async fn tcp_connections_beyond_the_limit_are_closed_at_once() {
    let limits = DnsLimits {
        max_tcp_connections: 2,
        tcp_idle_timeout: Duration::from_secs(5),
        ..DnsLimits::default()
    };
    let dns = start(Zone::new(settings(None)).expect("zone builds"), limits).await;
    let soa = question(&format!("{APEX}."), RecordType::SOA, TCP);
    let mut held = Vec::new();
    for addr in [dns.tcp4, dns.tcp6] {
        // Each connection is proven accepted by one answer, then left open.
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let len = u16::try_from(soa.len()).expect("short");
        stream.write_all(&len.to_be_bytes()).await.expect("write");
        stream.write_all(&soa).await.expect("write");
        assert!(read_framed(&mut stream).await.is_some(), "{addr}: answered");
        held.push(stream);
    }
    let started = Instant::now();
    let mut third = TcpStream::connect(dns.tcp4)
        .await
        .expect("the kernel accepts");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, third.read(&mut buf))
        .await
        .expect("closed before the test gives up");
    assert!(matches!(read, Ok(0) | Err(_)), "closed: {read:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed at once, not after the idle timeout: {:?}",
        started.elapsed()
    );
    // A freed slot is taken by the next client.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let raw = exchange_tcp(dns.tcp6, &soa)
        .await
        .expect("answered once a slot is free");
    let msg = Message::from_vec(&raw).expect("decodes");
    assert_eq!(soa_serial(&msg), Some(FIRST_SERIAL));
}

#[tokio::test]
async fn shutdown_closes_the_sockets() {
    let dns = provider().await;
    let (udp, tcp) = (dns.udp4, dns.tcp4);
    let mut open = TcpStream::connect(tcp).await.expect("connect");
    dns.server.shutdown().await.expect("clean shutdown");
    let raw = exchange_udp(udp, &question(&format!("{APEX}."), RecordType::SOA, UDP)).await;
    assert!(raw.is_none(), "no answer after shutdown");
    assert!(
        TcpStream::connect(tcp).await.is_err(),
        "the listener is closed"
    );
    let mut buf = [0u8; 4];
    let read = tokio::time::timeout(WAIT, open.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "open connections are closed: {read:?}"
    );
}
