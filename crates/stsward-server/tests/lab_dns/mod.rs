//! The lab's authoritative DNS (stsward-lab) as the scheduler tests use it: restartable on
//! the same loopback address with other records, so that MX and TXT answers change between
//! rounds, or stopped, so that lookups fail.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;
use std::time::Duration;

use stsward_lab::dns::{DnsServer, DnsServerOptions, LabRecord, Zone};
use stsward_lab::scenario::Dnssec;
use stsward_net::dns::{Dns, DnsConfig};
use tokio::net::{TcpListener, UdpSocket};

/// The lab DNS, restartable on the same address with other zones.
pub struct LabDns {
    pub addr: SocketAddr,
    server: Option<DnsServer>,
}

impl LabDns {
    pub async fn start(zones: &[Zone]) -> LabDns {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
        let addr = udp.local_addr().expect("addr");
        let tcp = TcpListener::bind(addr).await.expect("tcp");
        let server = DnsServer::start(udp, tcp, zones, options()).expect("lab dns");
        LabDns {
            addr,
            server: Some(server),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// The same address, other records.
    pub async fn restart(&mut self, zones: &[Zone]) {
        self.stop().await;
        let udp = UdpSocket::bind(self.addr).await.expect("udp again");
        let tcp = TcpListener::bind(self.addr).await.expect("tcp again");
        self.server = Some(DnsServer::start(udp, tcp, zones, options()).expect("lab dns"));
    }

    pub fn client(&self) -> Dns {
        Dns::new(&DnsConfig {
            server: Some(self.addr),
            timeout: Duration::from_millis(500),
            attempts: 1,
            lookup_timeout: Duration::from_secs(2),
            dnssec: false,
            trust_anchors: None,
        })
        .expect("dns client")
    }
}

fn options() -> DnsServerOptions {
    DnsServerOptions {
        now: time::OffsetDateTime::now_utc(),
        plain: true,
    }
}

pub fn zone(origin: &str, mx: &[&str], txt: Option<&str>) -> Zone {
    let mut records: Vec<LabRecord> = mx
        .iter()
        .enumerate()
        .map(|(i, host)| LabRecord::Mx {
            name: origin.into(),
            preference: u16::try_from(10 * (i + 1)).expect("small"),
            exchange: (*host).into(),
        })
        .collect();
    records.push(LabRecord::A {
        name: origin.into(),
        addr: std::net::Ipv4Addr::LOCALHOST,
    });
    if let Some(text) = txt {
        records.push(LabRecord::Txt {
            name: format!("_mta-sts.{origin}"),
            text: text.into(),
        });
    }
    Zone {
        origin: origin.into(),
        records,
        dnssec: Dnssec::Off,
    }
}
