//! Shared by the DNS test binaries: a zone like a provider's, a server on loopback, and a
//! plain DNS client that shows every header bit and section as sent.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use stsward_proto::tlsrpt::RuaUri;
use stsward_server::dns::{
    DnsLimits, DnsServer, NameServer, SoaSettings, Zone, ZoneKey, ZoneSettings,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

pub const APEX: &str = "sts.provider.test";
pub const POLICY_HOST: &str = "mta-sts.sts.provider.test";
pub const POLICY_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
pub const POLICY_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
pub const NS1: &str = "ns1.sts.provider.test";
pub const NS1_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
pub const NS2: &str = "ns.elsewhere.test";
pub const FIRST_SERIAL: u32 = 2026120301;
pub const SOA_TTL: u32 = 3600;
pub const SOA_MINIMUM: u32 = 60;
pub const TXT_TTL: u32 = 120;
pub const DEFAULT_RUA: &str = "mailto:tlsrpt@provider.test";

/// How long the tests wait for any one answer.
pub const WAIT: Duration = Duration::from_secs(3);

pub fn rua(uri: &str) -> RuaUri {
    uri.parse().expect("test rua parses")
}

pub fn settings(signing_key: Option<ZoneKey>) -> ZoneSettings {
    ZoneSettings {
        apex: APEX.into(),
        soa: SoaSettings {
            mname: NS1.into(),
            rname: "hostmaster.provider.test".into(),
            serial: FIRST_SERIAL,
            refresh: 7200,
            retry: 900,
            expire: 1_209_600,
            minimum: SOA_MINIMUM,
        },
        name_servers: vec![
            NameServer {
                name: NS1.into(),
                addrs: vec![IpAddr::V4(NS1_V4)],
            },
            NameServer {
                name: NS2.into(),
                addrs: vec![IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1))],
            },
        ],
        policy_host: NameServer {
            name: POLICY_HOST.into(),
            addrs: vec![IpAddr::V4(POLICY_V4), IpAddr::V6(POLICY_V6)],
        },
        ttl: SOA_TTL,
        txt_ttl: TXT_TTL,
        default_rua: Some(vec![rua(DEFAULT_RUA)]),
        signing_key,
    }
}

/// A running server on 127.0.0.1 and ::1, UDP and TCP, all on port 0.
pub struct Running {
    pub zone: Arc<Zone>,
    pub server: DnsServer,
    pub udp4: SocketAddr,
    pub udp6: SocketAddr,
    pub tcp4: SocketAddr,
    pub tcp6: SocketAddr,
}

pub async fn start(zone: Zone, limits: DnsLimits) -> Running {
    let zone = Arc::new(zone);
    let udp4 = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp v4");
    let udp6 = UdpSocket::bind("[::1]:0").await.expect("bind udp v6");
    let tcp4 = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp v4");
    let tcp6 = TcpListener::bind("[::1]:0").await.expect("bind tcp v6");
    let server = DnsServer::start(zone.clone(), vec![udp4, udp6], vec![tcp4, tcp6], limits)
        .expect("server starts");
    let addrs = server.local_addrs().to_vec();
    Running {
        zone,
        udp4: addrs[0],
        udp6: addrs[1],
        tcp4: addrs[2],
        tcp6: addrs[3],
        server,
    }
}

/// How a question is sent.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub tcp: bool,
    /// EDNS with this UDP payload size, or no EDNS.
    pub edns: Option<u16>,
    pub dnssec_ok: bool,
}

pub const UDP: Ask = Ask {
    tcp: false,
    edns: Some(1232),
    dnssec_ok: false,
};
pub const TCP: Ask = Ask {
    tcp: true,
    edns: Some(1232),
    dnssec_ok: false,
};

pub fn question(name: &str, rtype: RecordType, how: Ask) -> Vec<u8> {
    let mut msg = Message::new(0x5a5a, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(
        Name::from_ascii(name).expect("test name parses"),
        rtype,
    ));
    if let Some(payload) = how.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        edns.set_dnssec_ok(how.dnssec_ok);
        msg.set_edns(edns);
    }
    msg.to_vec().expect("question encodes")
}

/// Sends `name`/`rtype` and returns the decoded answer.
pub async fn ask(addr: SocketAddr, name: &str, rtype: RecordType, how: Ask) -> Message {
    let bytes = question(name, rtype, how);
    let raw = if how.tcp {
        exchange_tcp(addr, &bytes).await.expect("TCP answer")
    } else {
        exchange_udp(addr, &bytes).await.expect("UDP answer")
    };
    Message::from_vec(&raw).expect("answer decodes")
}

/// One UDP datagram out, the first one back (or `None` after [`WAIT`]).
pub async fn exchange_udp(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    exchange_udp_within(addr, bytes, WAIT).await
}

/// [`exchange_udp`], giving up after `wait`.
pub async fn exchange_udp_within(
    addr: SocketAddr,
    bytes: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    let local = if addr.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let socket = UdpSocket::bind(local).await.expect("client socket");
    socket.send_to(bytes, addr).await.expect("send");
    let mut buf = vec![0u8; 65_535];
    let (len, _) = tokio::time::timeout(wait, socket.recv_from(&mut buf))
        .await
        .ok()?
        .expect("recv");
    buf.truncate(len);
    Some(buf)
}

/// One length-prefixed message out on a new connection, one back (RFC 1035 §4.2.2 framing).
pub async fn exchange_tcp(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let len = u16::try_from(bytes.len()).expect("short question");
    stream.write_all(&len.to_be_bytes()).await.expect("write");
    stream.write_all(bytes).await.expect("write");
    read_framed(&mut stream).await
}

pub async fn read_framed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    tokio::time::timeout(WAIT, stream.read_exact(&mut len))
        .await
        .ok()?
        .ok()?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tokio::time::timeout(WAIT, stream.read_exact(&mut body))
        .await
        .ok()?
        .ok()?;
    Some(body)
}

/// The TXT data of every answer record, each record's strings concatenated.
pub fn txts(msg: &Message) -> Vec<String> {
    msg.answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect()
}

/// The serial of the SOA in the answer or authority section.
pub fn soa_serial(msg: &Message) -> Option<u32> {
    msg.answers
        .iter()
        .chain(&msg.authorities)
        .find_map(|record| match &record.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
}

/// A peer tool (dig, delv) could not be run: a failure under `CI`, else a skip recorded the
/// way stsward-testkit records its own (`<target>/corpus-skipped/<group>`).
pub fn tool_missing(group: &str, why: &str) {
    let ci = std::env::var("CI").unwrap_or_default();
    let ci = !(ci.trim().is_empty() || ci.trim() == "0" || ci.trim().eq_ignore_ascii_case("false"));
    assert!(!ci, "{group}: {why}; CI is set, so this is a failure");
    let line = format!("skipped {group}: {why}\n");
    eprint!("{line}");
    let dir = stsward_testkit::target_dir().join(stsward_testkit::SKIP_DIR_NAME);
    // A marker that cannot be written must not fail the test that skipped; stderr has it.
    let _ = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(group.replace('/', "__")), line));
}
