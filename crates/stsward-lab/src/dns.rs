//! Authoritative DNS for the lab's zones (RFC 1034/1035; TXT per RFC 1035 §3.3.14; TLSA per
//! RFC 6698 §2; DNSSEC signing per RFC 4035 §2)
//!
//! Each lab domain is its own zone, and a catch-all `test.` zone holds every other lab name
//! (MX hosts of providers, the name server). The server answers over UDP and TCP on one
//! loopback address. A zone marked for DNSSEC is signed with a fresh ECDSA P-256 key
//! (algorithm 13) whose DNSKEY, in presentation form, is returned as a trust anchor: the lab
//! has no signed root, so validators must be given these keys directly.
//!
//! Two ways of breaking DNSSEC on purpose (RFC 4035 §4.3 "bogus"): `Bogus` signs with one
//! key and announces another; `Expired` signs with the announced key, but with an inception
//! and expiration in the past, as a zone whose re-signing stopped. And one way of having no
//! DNSSEC at all: a [`DnsServerOptions::plain`] server serves every zone unsigned, ignores
//! the DO bit and has no DNSKEY or RRSIG to give, as a plain forwarder or home router.
//!
//! ```text
//! <zone>.            SOA  ns.test. hostmaster.test. 1 3600 600 86400 300
//! <zone>.            NS   ns.test.
//! <owner>            A | MX | TXT | CNAME | TLSA | NS   (from the world; an NS below the
//!                                                      apex is a delegation, RFC 1034 §4.2.1)
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, RRSIG};
use hickory_proto::dnssec::{Algorithm, DnssecSigner, SigningKey};
use hickory_proto::rr::rdata::{A, CNAME, MX, NS, SOA, TLSA, TXT};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record};
use hickory_server::Server;
use hickory_server::dnssec::NxProofKind;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use rustls_pki_types::PrivatePkcs8KeyDer;
use time::OffsetDateTime;
use tokio::net::{TcpListener, UdpSocket};

use crate::scenario::{Dnssec, TlsaRecord};

/// RFC 1035 §3.3: a `<character-string>` holds at most 255 octets, so longer TXT data is
/// split into several strings of one record.
pub const MAX_CHARACTER_STRING: usize = 255;

/// The TTL of every lab record: short, the lab is rebuilt often.
const TTL: u32 = 300;
/// The lab name server's own name.
pub const NS_NAME: &str = "ns.test";
/// How long a TCP client may stay idle before the server closes the connection.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-connection buffer for TCP responses.
const TCP_RESPONSE_BUFFER: usize = 16;
/// How long RRSIGs made at start-up stay valid.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(30 * 86_400);

/// A DNS server that could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// A lab name is not a valid DNS name.
    #[error("{name:?} is not a DNS name: {source}")]
    Name {
        /// The name.
        name: String,
        /// The underlying error.
        #[source]
        source: hickory_proto::ProtoError,
    },
    /// hickory refused to build a zone.
    #[error("zone {zone}: {reason}")]
    Zone {
        /// The zone origin.
        zone: String,
        /// What hickory said.
        reason: String,
    },
    /// A record could not be added to its zone.
    #[error("zone {zone}: cannot add {record}")]
    Record {
        /// The zone origin.
        zone: String,
        /// The record in presentation form.
        record: String,
    },
    /// Signing a zone failed.
    #[error("signing zone {zone}: {source}")]
    Dnssec {
        /// The zone origin.
        zone: String,
        /// The underlying error.
        #[source]
        source: hickory_proto::dnssec::DnsSecError,
    },
}

/// One record of a lab zone, in the lab's own plain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabRecord {
    /// An IPv4 address.
    A {
        /// Owner name.
        name: String,
        /// The address.
        addr: Ipv4Addr,
    },
    /// A mail exchanger.
    Mx {
        /// Owner name.
        name: String,
        /// Preference.
        preference: u16,
        /// The exchange host.
        exchange: String,
    },
    /// One TXT record; text over 255 octets is split into several character-strings.
    Txt {
        /// Owner name.
        name: String,
        /// The record's text.
        text: String,
    },
    /// An alias.
    Cname {
        /// Owner name.
        name: String,
        /// Canonical name.
        target: String,
    },
    /// A TLSA record.
    Tlsa {
        /// Owner name, e.g. `_25._tcp.mx.example.test`.
        name: String,
        /// The record data.
        record: TlsaRecord,
    },
    /// A name server record; below the zone's apex, a delegation of that name to `host`
    /// (its address, the glue, is an [`LabRecord::A`] of the same zone).
    Ns {
        /// Owner name: the delegated zone, e.g. `sts.provider.test`.
        name: String,
        /// The name server.
        host: String,
    },
}

impl LabRecord {
    fn owner(&self) -> &str {
        match self {
            LabRecord::A { name, .. }
            | LabRecord::Mx { name, .. }
            | LabRecord::Txt { name, .. }
            | LabRecord::Cname { name, .. }
            | LabRecord::Tlsa { name, .. }
            | LabRecord::Ns { name, .. } => name,
        }
    }
}

/// A lab zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The origin, without trailing dot (`perfect.test`).
    pub origin: String,
    /// The records (SOA and NS are added by the server).
    pub records: Vec<LabRecord>,
    /// Whether and how to sign the zone.
    pub dnssec: Dnssec,
}

/// How the server runs.
#[derive(Debug, Clone, Copy)]
pub struct DnsServerOptions {
    /// The lab's "now": `Dnssec::Expired` zones are signed for a window that ended before it.
    pub now: OffsetDateTime,
    /// Serve every zone unsigned, whatever the scenario says, like a DNS server without
    /// DNSSEC support: no RRSIG, no DNSKEY, no trust anchors.
    pub plain: bool,
}

/// A running authoritative server.
pub struct DnsServer {
    server: Server<Catalog>,
    addr: SocketAddr,
    trust_anchors: String,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Builds the zones and serves them on the given, already bound, sockets.
    pub fn start(
        udp: UdpSocket,
        tcp: TcpListener,
        zones: &[Zone],
        opts: DnsServerOptions,
    ) -> Result<Self, DnsError> {
        let addr = udp.local_addr().unwrap_or_else(|_| {
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)) // only for Debug output
        });
        let mut catalog = Catalog::new();
        let mut trust_anchors = String::new();
        for zone in zones {
            let (handler, anchor) = if opts.plain {
                let unsigned = Zone {
                    dnssec: Dnssec::Off,
                    ..zone.clone()
                };
                build_zone(&unsigned, opts.now)?
            } else {
                build_zone(zone, opts.now)?
            };
            if let Some(anchor) = anchor {
                trust_anchors.push_str(&anchor);
                trust_anchors.push('\n');
            }
            let origin = dns_name(&zone.origin)?;
            let handler: Arc<dyn ZoneHandler> = Arc::new(handler);
            catalog.upsert(LowerName::new(&origin), vec![handler]);
        }
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, TCP_RESPONSE_BUFFER);
        Ok(DnsServer {
            server,
            addr,
            trust_anchors,
        })
    }

    /// The DNSKEY records of the signed zones, one per line in presentation form (empty when
    /// no zone is signed).
    pub fn trust_anchors(&self) -> &str {
        &self.trust_anchors
    }

    /// Stops serving and waits until the sockets are closed.
    pub async fn shutdown(mut self) {
        if let Err(error) = self.server.shutdown_gracefully().await {
            tracing::debug!(%error, "lab DNS server stopped with an error");
        }
    }
}

/// `name` as an absolute DNS name.
fn dns_name(name: &str) -> Result<Name, DnsError> {
    Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).map_err(|source| DnsError::Name {
        name: name.to_owned(),
        source,
    })
}

fn build_zone(
    zone: &Zone,
    now: OffsetDateTime,
) -> Result<(InMemoryZoneHandler, Option<String>), DnsError> {
    let origin = dns_name(&zone.origin)?;
    let ns = dns_name(NS_NAME)?;
    let mut handler = InMemoryZoneHandler::empty(
        origin.clone(),
        ZoneType::Primary,
        AxfrPolicy::Deny,
        (zone.dnssec != Dnssec::Off).then_some(NxProofKind::Nsec),
    );
    let serial = 1;
    let soa = SOA::new(
        ns.clone(),
        dns_name(&format!("hostmaster.{}", crate::scenario::LAB_TLD))?,
        serial,
        3600,
        600,
        86_400,
        TTL,
    );
    let mut insert = |record: Record| -> Result<(), DnsError> {
        let shown = record.to_string();
        if handler.upsert_mut(record, serial) {
            Ok(())
        } else {
            Err(DnsError::Record {
                zone: zone.origin.clone(),
                record: shown,
            })
        }
    };
    insert(Record::from_rdata(origin.clone(), TTL, RData::SOA(soa)))?;
    insert(Record::from_rdata(origin.clone(), TTL, RData::NS(NS(ns))))?;
    for record in &zone.records {
        let owner = dns_name(record.owner())?;
        let rdata = match record {
            LabRecord::A { addr, .. } => RData::A(A(*addr)),
            LabRecord::Mx {
                preference,
                exchange,
                ..
            } => RData::MX(MX::new(*preference, dns_name(exchange)?)),
            LabRecord::Txt { text, .. } => RData::TXT(TXT::from_bytes(split_txt(text))),
            LabRecord::Cname { target, .. } => RData::CNAME(CNAME(dns_name(target)?)),
            LabRecord::Tlsa { record, .. } => RData::TLSA(TLSA::new(
                record.usage.into(),
                record.selector.into(),
                record.matching.into(),
                record.data.clone(),
            )),
            LabRecord::Ns { host, .. } => RData::NS(NS(dns_name(host)?)),
        };
        insert(Record::from_rdata(owner, TTL, rdata))?;
    }
    let anchor = match zone.dnssec {
        Dnssec::Off => None,
        Dnssec::Signed => Some(sign(&mut handler, &origin, &zone.origin)?.0),
        Dnssec::Bogus => {
            sign(&mut handler, &origin, &zone.origin)?;
            // Announce a key that signed nothing: validators holding it must call the zone
            // bogus (RFC 4035 §4.3), which is the fault this zone exists to show.
            Some(fresh_key(&origin, &zone.origin)?.2)
        }
        Dnssec::Expired => {
            let (anchor, pkcs8) = sign(&mut handler, &origin, &zone.origin)?;
            resign_expired(&mut handler, &origin, &zone.origin, &pkcs8, now)?;
            Some(anchor)
        }
    };
    Ok((handler, anchor))
}

/// Replaces every RRSIG of the zone with one by the same key whose validity window
/// (the RRSIG inception and expiration of RFC 4034) ended a whole signature lifetime before `now`: the announced key is
/// right, the signatures have expired.
fn resign_expired(
    handler: &mut InMemoryZoneHandler,
    origin: &Name,
    zone: &str,
    pkcs8: &PrivatePkcs8KeyDer<'static>,
    now: OffsetDateTime,
) -> Result<(), DnsError> {
    let dnssec_err = |source| DnsError::Dnssec {
        zone: zone.to_owned(),
        source,
    };
    let algorithm = Algorithm::ECDSAP256SHA256;
    let key = EcdsaSigningKey::from_pkcs8(pkcs8, algorithm).map_err(dnssec_err)?;
    let dnskey = DNSKEY::new(true, true, false, key.to_public_key().map_err(dnssec_err)?);
    let signer = DnssecSigner::new(dnskey, Box::new(key), origin.clone(), SIGNATURE_LIFETIME);
    let inception = now - SIGNATURE_LIFETIME * 2;
    for rrset in handler.records_get_mut().values_mut() {
        let rrset = Arc::make_mut(rrset);
        rrset.clear_rrsigs();
        let rrsig = RRSIG::from_rrset(rrset, DNSClass::IN, inception, &signer)
            .map_err(|e| dnssec_err(hickory_proto::dnssec::DnsSecError::from(e.to_string())))?;
        let record = Record::from_rdata(
            rrset.name().clone(),
            rrset.ttl(),
            RData::DNSSEC(DNSSECRData::RRSIG(rrsig)),
        );
        rrset.insert_rrsig(record);
    }
    Ok(())
}

/// A fresh ECDSA P-256 zone key, its DNSKEY, and that DNSKEY as a presentation-form record.
fn fresh_key(origin: &Name, zone: &str) -> Result<(EcdsaSigningKey, DNSKEY, String), DnsError> {
    let (key, dnskey, anchor, _) = fresh_key_with_der(origin, zone)?;
    Ok((key, dnskey, anchor))
}

/// [`fresh_key`], plus the key's PKCS#8 form so that it can sign again later.
fn fresh_key_with_der(
    origin: &Name,
    zone: &str,
) -> Result<(EcdsaSigningKey, DNSKEY, String, PrivatePkcs8KeyDer<'static>), DnsError> {
    let dnssec_err = |source| DnsError::Dnssec {
        zone: zone.to_owned(),
        source,
    };
    let algorithm = Algorithm::ECDSAP256SHA256;
    let pkcs8 = EcdsaSigningKey::generate_pkcs8(algorithm).map_err(dnssec_err)?;
    let key = EcdsaSigningKey::from_pkcs8(&pkcs8, algorithm).map_err(dnssec_err)?;
    let public = key.to_public_key().map_err(dnssec_err)?;
    // One combined signing key (flags 257): the lab has no key rollover to model.
    let dnskey = DNSKEY::new(true, true, false, public);
    let anchor = Record::from_rdata(origin.clone(), TTL, dnskey.clone()).to_string();
    Ok((key, dnskey, anchor, pkcs8))
}

/// Signs the zone with a fresh key and returns its DNSKEY record in presentation form, and
/// the key.
fn sign(
    handler: &mut InMemoryZoneHandler,
    origin: &Name,
    zone: &str,
) -> Result<(String, PrivatePkcs8KeyDer<'static>), DnsError> {
    let dnssec_err = |source| DnsError::Dnssec {
        zone: zone.to_owned(),
        source,
    };
    let (key, dnskey, anchor, pkcs8) = fresh_key_with_der(origin, zone)?;
    let signer = DnssecSigner::new(dnskey, Box::new(key), origin.clone(), SIGNATURE_LIFETIME);
    handler
        .add_zone_signing_key_mut(signer)
        .map_err(dnssec_err)?;
    handler.secure_zone_mut().map_err(dnssec_err)?;
    Ok((anchor, pkcs8))
}

/// Splits TXT data into character-strings of at most [`MAX_CHARACTER_STRING`] octets.
/// Splitting at any octet is correct: readers concatenate the strings (RFC 7208 §3.3 style).
pub fn split_txt(text: &str) -> Vec<&[u8]> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return vec![bytes];
    }
    bytes.chunks(MAX_CHARACTER_STRING).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1035_3_3_14_long_txt_is_split_into_255_octet_strings() {
        let cases: &[(usize, &[usize])] = &[
            (0, &[0]),
            (10, &[10]),
            (255, &[255]),
            (256, &[255, 1]),
            (600, &[255, 255, 90]),
        ];
        for (len, expected) in cases {
            let text = "x".repeat(*len);
            let sizes: Vec<usize> = split_txt(&text).iter().map(|s| s.len()).collect();
            assert_eq!(&sizes, expected, "length {len}");
        }
    }

    #[test]
    fn signed_zone_yields_a_parsable_trust_anchor() {
        let zone = Zone {
            origin: "signed.test".into(),
            records: vec![LabRecord::A {
                name: "mx.signed.test".into(),
                addr: Ipv4Addr::new(127, 77, 0, 9),
            }],
            dnssec: Dnssec::Signed,
        };
        let (mut handler, anchor) = build_zone(&zone, OffsetDateTime::now_utc()).unwrap();
        let anchor = anchor.unwrap();
        assert!(
            anchor.starts_with("signed.test. 300 IN DNSKEY 257 3 13 "),
            "{anchor}"
        );
        let anchors: hickory_proto::dnssec::TrustAnchors = anchor.parse().unwrap();
        let origin = LowerName::new(&dns_name("signed.test").unwrap());
        let served: Vec<_> = handler
            .records_get_mut()
            .values()
            .flat_map(|set| set.records_without_rrsigs())
            .filter_map(|record| match &record.data {
                RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::DNSKEY(key)) => {
                    Some(key.public_key().clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(served.len(), 1, "the zone publishes its DNSKEY");
        assert!(anchors.contains_with_name(&served[0], &origin));
        let signatures = handler
            .records_get_mut()
            .values()
            .filter(|set| !set.rrsigs().is_empty())
            .count();
        assert!(signatures >= 3, "SOA, NS, A and DNSKEY sets are signed");
    }

    #[test]
    fn rfc4035_5_5_bogus_zone_announces_a_key_it_does_not_use() {
        let zone = Zone {
            origin: "bogus.test".into(),
            records: Vec::new(),
            dnssec: Dnssec::Bogus,
        };
        let (mut handler, anchor) = build_zone(&zone, OffsetDateTime::now_utc()).unwrap();
        let anchors: hickory_proto::dnssec::TrustAnchors = anchor.unwrap().parse().unwrap();
        let origin = LowerName::new(&dns_name("bogus.test").unwrap());
        let served: Vec<_> = handler
            .records_get_mut()
            .values()
            .flat_map(|set| set.records_without_rrsigs())
            .filter_map(|record| match &record.data {
                RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::DNSKEY(key)) => {
                    Some(key.public_key().clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(served.len(), 1);
        assert!(!anchors.contains_with_name(&served[0], &origin));
    }

    #[test]
    fn expired_zone_is_signed_by_its_anchor_before_now() {
        let now = OffsetDateTime::now_utc();
        let zone = Zone {
            origin: "expired.test".into(),
            records: vec![LabRecord::Txt {
                name: "_mta-sts.expired.test".into(),
                text: "v=STSv1; id=1".into(),
            }],
            dnssec: Dnssec::Expired,
        };
        let (mut handler, anchor) = build_zone(&zone, now).unwrap();
        let anchors: hickory_proto::dnssec::TrustAnchors = anchor.unwrap().parse().unwrap();
        let origin = LowerName::new(&dns_name("expired.test").unwrap());
        let mut signatures = 0;
        let now_secs = u32::try_from(now.unix_timestamp()).unwrap();
        for set in handler.records_get_mut().values() {
            for rrsig in set.rrsigs() {
                let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &rrsig.data else {
                    panic!("not an RRSIG: {rrsig}");
                };
                signatures += 1;
                assert!(
                    sig.input().sig_expiration.get() < now_secs,
                    "{rrsig} must have expired"
                );
            }
            for record in set.records_without_rrsigs() {
                if let RData::DNSSEC(DNSSECRData::DNSKEY(key)) = &record.data {
                    assert!(
                        anchors.contains_with_name(key.public_key(), &origin),
                        "the anchor is the key that signed"
                    );
                }
            }
        }
        assert!(
            signatures >= 4,
            "SOA, NS, TXT, DNSKEY and NSEC sets are signed"
        );
    }
}
