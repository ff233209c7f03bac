//! A tiny authoritative DNS responder on 127.0.0.1 (UDP), answering from a table. It answers
//! one CNAME hop per response unless `chase` is set, and can be told to SERVFAIL, REFUSE or
//! stay silent for chosen names, which a real server cannot be made to do on demand.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

#[derive(Default, Clone)]
pub struct Zone {
    pub records: Vec<Record>,
    pub servfail: Vec<Name>,
    pub refused: Vec<Name>,
    pub silent: Vec<Name>,
    /// Follow CNAMEs inside the zone in one response, as a recursive resolver does.
    pub chase: bool,
}

pub fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

impl Zone {
    pub fn add(&mut self, owner: &str, data: RData) -> &mut Self {
        self.records
            .push(Record::from_rdata(name(owner), 300, data));
        self
    }
    pub fn txt(&mut self, owner: &str, strings: &[&[u8]]) -> &mut Self {
        self.add(owner, RData::TXT(TXT::from_bytes(strings.to_vec())))
    }
    pub fn cname(&mut self, owner: &str, target: &str) -> &mut Self {
        self.add(owner, RData::CNAME(CNAME(name(target))))
    }
    pub fn a(&mut self, owner: &str, ip: &str) -> &mut Self {
        self.add(owner, RData::A(A::from_str(ip).unwrap()))
    }
    pub fn aaaa(&mut self, owner: &str, ip: &str) -> &mut Self {
        self.add(owner, RData::AAAA(AAAA::from_str(ip).unwrap()))
    }
    pub fn mx(&mut self, owner: &str, pref: u16, exchange: &str) -> &mut Self {
        self.add(owner, RData::MX(MX::new(pref, name(exchange))))
    }

    fn answer(&self, query: &Message) -> Option<Message> {
        let q = query.queries.first()?;
        let mut resp = Message::response(query.metadata.id, OpCode::Query);
        resp.add_query(q.clone());
        resp.metadata.authoritative = true;
        resp.metadata.recursion_available = true;
        let mut current = q.name().clone();
        if self.silent.contains(&current) {
            return None;
        }
        if self.servfail.contains(&current) {
            resp.metadata.response_code = ResponseCode::ServFail;
            return Some(resp);
        }
        if self.refused.contains(&current) {
            resp.metadata.response_code = ResponseCode::Refused;
            return Some(resp);
        }
        for _ in 0..16 {
            let at: Vec<&Record> = self.records.iter().filter(|r| r.name == current).collect();
            let wanted: Vec<Record> = at
                .iter()
                .filter(|r| r.record_type() == q.query_type())
                .map(|r| (*r).clone())
                .collect();
            if !wanted.is_empty() {
                resp.add_answers(wanted);
                return Some(resp);
            }
            let cname = at.iter().find(|r| r.record_type() == RecordType::CNAME);
            match cname {
                Some(c) => {
                    resp.add_answer((*c).clone());
                    let RData::CNAME(t) = &c.data else {
                        unreachable!()
                    };
                    current = t.0.clone();
                    if !self.chase {
                        return Some(resp);
                    }
                }
                None if at.is_empty() => {
                    resp.metadata.response_code = ResponseCode::NXDomain;
                    return Some(resp);
                }
                None => return Some(resp),
            }
        }
        Some(resp)
    }
}

/// Serves `zone` on a fresh UDP port of 127.0.0.1 until the runtime ends.
pub async fn spawn(zone: Zone) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let zone = Arc::new(zone);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if let Some(resp) = zone.answer(&query) {
                let bytes = resp.to_vec().unwrap();
                let _ = sock.send_to(&bytes, peer).await;
            }
        }
    });
    addr
}
