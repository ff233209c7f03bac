//! Hand-built observations for the judge tests: a healthy domain to start from, and small
//! constructors to break one thing at a time.

use std::net::{IpAddr, Ipv4Addr};

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::observe::*;

/// The fixed "now" of every judge test.
pub fn now() -> OffsetDateTime {
    datetime!(2025-06-01 12:00 UTC)
}

pub fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

pub fn cert(host: &str) -> CertFacts {
    CertFacts {
        subject: format!("CN={host}"),
        issuer: "CN=Lab CA".to_owned(),
        dns_names: vec![host.to_owned()],
        not_before: now() - Duration::days(30),
        not_after: now() + Duration::days(60),
        validity: CertValidity::Valid,
        trust: Trust::Trusted,
        name_matches: true,
        chain_len: 2,
    }
}

pub fn tls(cert: CertFacts) -> Probe {
    Probe::Tls {
        banner: "220 mx ESMTP".to_owned(),
        ehlo_keywords: vec!["PIPELINING".to_owned(), "STARTTLS".to_owned()],
        tls: Box::new(TlsObservation {
            handshake: Handshake::Established {
                version: TlsVersion::Tls13,
                cipher: "TLS13_AES_256_GCM_SHA384".to_owned(),
                certificate: Some(cert),
            },
            legacy_accepted: Some(Vec::new()),
        }),
    }
}

pub fn address(ip: IpAddr, probe: Probe) -> AddressObservation {
    AddressObservation {
        ip,
        probe,
        dane: None,
    }
}

pub fn no_tlsa(host: &str) -> TlsaObservation {
    TlsaObservation {
        name: format!("_25._tcp.{host}"),
        host_dnssec: Some(DnssecStatus::Insecure),
        lookup: TlsaLookup::Answer {
            records: Vec::new(),
            dnssec: DnssecStatus::Insecure,
        },
    }
}

pub fn mx(host: &str, preference: u16, addresses: Vec<AddressObservation>) -> MxHostObservation {
    MxHostObservation {
        host: host.to_owned(),
        preference,
        addresses: AddressLookup::Answer { addresses },
        tlsa: no_tlsa(host),
    }
}

pub fn healthy_mx(host: &str, preference: u16, last: u8) -> MxHostObservation {
    mx(host, preference, vec![address(ip(last), tls(cert(host)))])
}

pub fn txt(name: &str, records: &[&str]) -> TxtObservation {
    TxtObservation {
        name: name.to_owned(),
        lookup: TxtLookup::Answer {
            records: records.iter().map(|r| (*r).to_owned()).collect(),
            cname_chain: Vec::new(),
            dnssec: DnssecStatus::Insecure,
        },
    }
}

pub fn policy_body(mode: &str, mx: &[&str]) -> Vec<u8> {
    let mut s = format!("version: STSv1\r\nmode: {mode}\r\n");
    for m in mx {
        s.push_str(&format!("mx: {m}\r\n"));
    }
    s.push_str("max_age: 1209600\r\n");
    s.into_bytes()
}

pub fn fetched(domain: &str, body: Vec<u8>) -> PolicyObservation {
    policy(
        domain,
        PolicyFetch::Fetched {
            content_type: "text/plain".to_owned(),
            body,
            cert_not_after: Some(now() + Duration::days(60)),
        },
    )
}

pub fn policy(domain: &str, outcome: PolicyFetch) -> PolicyObservation {
    PolicyObservation {
        host: format!("mta-sts.{domain}"),
        url: format!("https://mta-sts.{domain}/.well-known/mta-sts.txt"),
        outcome,
    }
}

/// `example.test`: enforce, two MX hosts both covered by `*.example.test`, one TLS-RPT
/// record — every check passes.
pub fn healthy() -> Observation {
    let d = "example.test";
    Observation {
        domain: d.to_owned(),
        sts_txt: txt("_mta-sts.example.test", &["v=STSv1; id=20250601;"]),
        policy: fetched(d, policy_body("enforce", &["*.example.test"])),
        mx: MxLookup::Answer {
            hosts: vec![
                healthy_mx("mx1.example.test", 10, 11),
                healthy_mx("mx2.example.test", 20, 12),
            ],
        },
        tlsrpt_txt: txt(
            "_smtp._tls.example.test",
            &["v=TLSRPTv1; rua=mailto:tlsrpt@example.test"],
        ),
        resolver: ResolverObservation {
            server: RESOLVER.to_owned(),
            dnssec: DnssecValidation::Validated,
        },
    }
}

/// The resolver of every fixture.
pub const RESOLVER: &str = "127.0.0.1:53";

/// The first MX host of an observation built from [`healthy`].
pub fn mx1(obs: &mut Observation) -> &mut MxHostObservation {
    match &mut obs.mx {
        MxLookup::Answer { hosts } => hosts.first_mut().unwrap(),
        MxLookup::Failed(_) => panic!("fixture has an MX answer"),
    }
}

/// The first address probe of the first MX host.
pub fn mx1_probe(obs: &mut Observation) -> &mut AddressObservation {
    match &mut mx1(obs).addresses {
        AddressLookup::Answer { addresses } => addresses.first_mut().unwrap(),
        AddressLookup::Failed(_) => panic!("fixture has addresses"),
    }
}

/// The certificate of the first address of the first MX host.
pub fn mx1_cert(obs: &mut Observation) -> &mut CertFacts {
    match &mut mx1_probe(obs).probe {
        Probe::Tls { tls, .. } => match &mut tls.handshake {
            Handshake::Established {
                certificate: Some(certificate),
                ..
            } => certificate,
            Handshake::Established { .. } => panic!("fixture has a certificate"),
            Handshake::Failed { .. } => panic!("fixture has an established handshake"),
        },
        _ => panic!("fixture has a TLS probe"),
    }
}

pub fn lookup_error(kind: LookupErrorKind) -> LookupError {
    LookupError {
        kind,
        detail: "test".to_owned(),
    }
}
