//! The RRsets the zone serves, built from settings and from a hosted domain's policy id and
//! `rua` (RFC 1035 §3.3 record formats; RFC 8461 §3.1 and RFC 8460 §3 TXT contents).

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType};
use stsward_proto::tlsrpt::{RuaUri, TlsRptRecord};

use super::DnsError;
use super::sign::Signed;

/// RFC 1035 §3.3: a `<character-string>` holds at most 255 octets; longer TXT data is split
/// into several strings of one record, which readers concatenate (RFC 8461 §3.1, RFC 8460 §3).
const MAX_CHARACTER_STRING: usize = 255;

pub(crate) struct SoaFields {
    pub(crate) mname: Name,
    pub(crate) rname: Name,
    pub(crate) refresh: i32,
    pub(crate) retry: i32,
    pub(crate) expire: i32,
    pub(crate) minimum: u32,
}

pub(crate) fn address_sets(name: &Name, addrs: &[IpAddr], ttl: u32) -> Vec<Arc<Signed>> {
    let mut v4 = RecordSet::with_ttl(name.clone(), RecordType::A, ttl);
    let mut v6 = RecordSet::with_ttl(name.clone(), RecordType::AAAA, ttl);
    for addr in addrs {
        match addr {
            IpAddr::V4(a) => v4.insert(Record::from_rdata(name.clone(), ttl, RData::A(A(*a))), 0),
            IpAddr::V6(a) => v6.insert(
                Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(*a))),
                0,
            ),
        };
    }
    [v4, v6]
        .into_iter()
        .filter(|set| !set.is_empty())
        .map(|set| Arc::new(Signed::new(set)))
        .collect()
}

pub(crate) fn soa_sets(
    apex: &LowerName,
    fields: &SoaFields,
    serial: u32,
    ttl: u32,
    negative_ttl: u32,
) -> (Arc<Signed>, Arc<Signed>) {
    let apex = Name::clone(apex);
    let rdata = RData::SOA(SOA::new(
        fields.mname.clone(),
        fields.rname.clone(),
        serial,
        fields.refresh,
        fields.retry,
        fields.expire,
        fields.minimum,
    ));
    let set = |ttl| {
        let mut set = RecordSet::with_ttl(apex.clone(), RecordType::SOA, ttl);
        set.insert(Record::from_rdata(apex.clone(), ttl, rdata.clone()), serial);
        Arc::new(Signed::new(set))
    };
    (set(ttl), set(negative_ttl))
}

/// The `_smtp._tls` record text for `rua`, checked by parsing it back (RFC 8460 §3).
pub(crate) fn tlsrpt_text(field: &'static str, rua: &[RuaUri]) -> Result<String, DnsError> {
    if rua.is_empty() {
        return Err(DnsError::Setting {
            field,
            value: String::new(),
            reason: "a TLS-RPT record needs at least one rua URI (RFC 8460 §3)",
        });
    }
    let record = TlsRptRecord {
        rua: rua.to_vec(),
        extensions: Vec::new(),
    };
    let text = record.to_string();
    text.parse::<TlsRptRecord>()
        .map_err(|source| DnsError::TlsRpt { field, source })?;
    Ok(text)
}

pub(crate) fn txt_set(name: &Name, text: &str, ttl: u32) -> RecordSet {
    let strings: Vec<&[u8]> = text.as_bytes().chunks(MAX_CHARACTER_STRING).collect();
    let mut set = RecordSet::with_ttl(name.clone(), RecordType::TXT, ttl);
    set.insert(
        Record::from_rdata(name.clone(), ttl, RData::TXT(TXT::from_bytes(strings))),
        0,
    );
    set
}
