//! The throwaway unbound against two real authoritative servers (the lab's DNS server, run
//! twice): a CNAME in one zone leads into a zone served by the other, and unbound follows it
//! as a sending MTA's resolver would (RFC 8461 §8.2 policy delegation). Names outside the
//! stubs get an empty answer at once, without the internet; so does a DS question for the
//! stubs' top-level domain; the process is gone after drop.
//!
//! unbound missing: the group `stsward-testkit/unbound` is skipped and recorded (a failure
//! in CI).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use stsward_lab::dns::{DnsServer, DnsServerOptions, LabRecord, Zone};
use stsward_lab::scenario::Dnssec;
use stsward_testkit::unbound::{Stub, Unbound, UnboundOptions};
use tokio::net::{TcpListener, UdpSocket};

const GROUP: &str = "stsward-testkit/unbound";

async fn serve(zone: Zone) -> (DnsServer, SocketAddr) {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind UDP");
        let addr = udp.local_addr().expect("UDP address");
        let Ok(tcp) = TcpListener::bind(addr).await else {
            continue;
        };
        let opts = DnsServerOptions {
            now: time::OffsetDateTime::now_utc(),
            plain: true,
        };
        let server = DnsServer::start(udp, tcp, &[zone], opts).expect("lab DNS starts");
        return (server, addr);
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// One recursive question over UDP; `None` when no answer came within 5 s.
async fn ask(server: SocketAddr, name: &str, rtype: RecordType) -> Option<Message> {
    let mut msg = Message::new(0x2a2a, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(
        Name::from_ascii(name).expect("test name"),
        rtype,
    ));
    let socket = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    socket
        .send_to(&msg.to_vec().expect("encode"), server)
        .await
        .ok()?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_follows_a_cname_from_one_stub_into_another_and_answers_nothing_else() {
    let (_customer, customer_addr) = serve(Zone {
        origin: "customer.test".into(),
        records: vec![LabRecord::Cname {
            name: "_mta-sts.customer.test".into(),
            target: "_mta-sts.customer.test.sts.provider.test".into(),
        }],
        dnssec: Dnssec::Off,
    })
    .await;
    let (_provider, provider_addr) = serve(Zone {
        origin: "sts.provider.test".into(),
        records: vec![LabRecord::Txt {
            name: "_mta-sts.customer.test.sts.provider.test".into(),
            text: "v=STSv1; id=20261203abc".into(),
        }],
        dnssec: Dnssec::Off,
    })
    .await;
    let opts = UnboundOptions {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        stubs: vec![
            Stub {
                zone: "test".into(),
                servers: vec![customer_addr],
            },
            Stub {
                zone: "sts.provider.test".into(),
                servers: vec![provider_addr],
            },
        ],
        trust_anchors: None,
    };
    let Some(unbound) = tokio::task::spawn_blocking(move || Unbound::start(GROUP, &opts))
        .await
        .expect("start task")
    else {
        return;
    };
    let addr = unbound.addr();

    let answer = ask(addr, "_mta-sts.customer.test.", RecordType::TXT)
        .await
        .unwrap_or_else(|| panic!("no answer from unbound\n{}", unbound.log()));
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    let cname = answer.answers.iter().find_map(|r| match &r.data {
        RData::CNAME(c) => Some(c.0.to_ascii()),
        _ => None,
    });
    assert_eq!(
        cname.as_deref(),
        Some("_mta-sts.customer.test.sts.provider.test.")
    );
    let txt: Vec<String> = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(txt, ["v=STSv1; id=20261203abc"], "{answer:?}");

    // Outside the stubs: an empty answer at once, never a lookup on the internet.
    let started = Instant::now();
    let outside = ask(addr, "example.com.", RecordType::A)
        .await
        .expect("an answer for a name outside the stubs");
    assert_eq!(outside.metadata.response_code, ResponseCode::NoError);
    assert!(outside.answers.is_empty(), "{outside:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The stubs' TLD is an unsigned delegation of the local root: no DS, no error.
    let ds = ask(addr, "test.", RecordType::DS)
        .await
        .expect("an answer for the DS of the stubs' TLD");
    assert_eq!(ds.metadata.response_code, ResponseCode::NoError);
    assert!(ds.answers.is_empty(), "{ds:?}");

    drop(unbound);
    assert!(
        ask(addr, "_mta-sts.customer.test.", RecordType::TXT)
            .await
            .is_none(),
        "nothing answers once the resolver is dropped"
    );
}
