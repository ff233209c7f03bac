//! `stsward-net` results → the plain [`crate::observe`] model
//!
//! One function per network result. This is the only place that names `stsward-net` types
//! next to observation types, so that the judge never depends on the transport and the
//! transport never learns about severities (DESIGN.md: `net` observes, `check` judges).

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use stsward_net::cert::{
    CertProblem as NetCertProblem, CertVerdict, UntrustedReason as NetUntrusted, Validity,
};
use stsward_net::dane::{DaneVerdict, RecordOutcome, Tlsa, match_tlsa};
use stsward_net::dns::{Dns, DnsError, DnssecStatus as NetDnssec, Lookup, Txt};
use stsward_net::policy_fetch::{FetchError, FetchedPolicy};
use stsward_net::starttls::{AddrProbe, ProbeError, ProbeStep};
use stsward_net::tls::TlsVersion as NetTlsVersion;
use time::OffsetDateTime;

use crate::observe::*;

pub(crate) fn dnssec(s: NetDnssec) -> DnssecStatus {
    match s {
        NetDnssec::Secure => DnssecStatus::Secure,
        NetDnssec::Insecure => DnssecStatus::Insecure,
        NetDnssec::Bogus => DnssecStatus::Bogus,
        NetDnssec::Indeterminate => DnssecStatus::Indeterminate,
    }
}

pub(crate) fn lookup_error(e: &DnsError) -> LookupError {
    let kind = match e {
        DnsError::ServFail { .. } => LookupErrorKind::ServFail,
        DnsError::Refused { .. } => LookupErrorKind::Refused,
        DnsError::Timeout { .. } => LookupErrorKind::Timeout,
        DnsError::CnameLoop { .. } => LookupErrorKind::CnameLoop,
        DnsError::CnameChainTooLong { .. } => LookupErrorKind::CnameTooLong,
        DnsError::Transport { .. } => LookupErrorKind::Resolver,
        DnsError::DnssecBogus { .. } => LookupErrorKind::Bogus,
        _ => LookupErrorKind::Other,
    };
    LookupError {
        kind,
        detail: e.to_string(),
    }
}

pub(crate) fn txt(name: &str, result: &Result<Lookup<Txt>, DnsError>) -> TxtObservation {
    let lookup = match result {
        Ok(l) => TxtLookup::Answer {
            // TXT data are octets; a record that is not UTF-8 is shown with replacement
            // characters, which the record evaluators then refuse as a syntax error.
            records: l
                .records()
                .iter()
                .map(|t| String::from_utf8_lossy(&t.data).into_owned())
                .collect(),
            cname_chain: l.cname_chain.clone(),
            dnssec: dnssec(l.dnssec),
        },
        Err(e) => TxtLookup::Failed(lookup_error(e)),
    };
    TxtObservation {
        name: name.to_owned(),
        lookup,
    }
}

pub(crate) fn tlsa_record(t: &Tlsa) -> TlsaRecord {
    TlsaRecord {
        usage: t.usage.into(),
        selector: t.selector.into(),
        matching_type: t.matching.into(),
        data: hex(&t.data),
    }
}

/// The TLSA lookup, with the DNSSEC status of the host's address answer (`None` when the
/// address lookup failed).
pub(crate) fn tlsa(
    name: &str,
    result: &Result<Lookup<Tlsa>, DnsError>,
    host_dnssec: Option<NetDnssec>,
) -> TlsaObservation {
    let lookup = match result {
        Ok(l) => TlsaLookup::Answer {
            records: l.records().iter().map(tlsa_record).collect(),
            dnssec: dnssec(l.dnssec),
        },
        Err(e) => TlsaLookup::Failed(lookup_error(e)),
    };
    TlsaObservation {
        name: name.to_owned(),
        host_dnssec: host_dnssec.map(dnssec),
        lookup,
    }
}

/// Whether the check's answers could be validated. Validation is on and yet unavailable when
/// the client learned that the resolver passes no DNSSEC records, or when any answer of this
/// domain came back indeterminate (which, with validation on, only that causes).
pub(crate) fn resolver(server: &str, dns: &Dns, obs: &Observation) -> ResolverObservation {
    let dnssec = if !dns.is_validating() {
        DnssecValidation::Off
    } else if dns.resolver_supplies_dnssec() == Some(false) || any_indeterminate(obs) {
        DnssecValidation::NoDnssecRecords
    } else {
        DnssecValidation::Validated
    };
    ResolverObservation {
        server: server.to_owned(),
        dnssec,
    }
}

fn any_indeterminate(obs: &Observation) -> bool {
    let txt = |t: &TxtObservation| {
        matches!(
            t.lookup,
            TxtLookup::Answer {
                dnssec: DnssecStatus::Indeterminate,
                ..
            }
        )
    };
    let hosts = match &obs.mx {
        MxLookup::Answer { hosts } => hosts.as_slice(),
        MxLookup::Failed(_) => &[],
    };
    let tlsa = |h: &MxHostObservation| {
        h.tlsa.host_dnssec == Some(DnssecStatus::Indeterminate)
            || matches!(
                h.tlsa.lookup,
                TlsaLookup::Answer {
                    dnssec: DnssecStatus::Indeterminate,
                    ..
                }
            )
    };
    txt(&obs.sts_txt) || txt(&obs.tlsrpt_txt) || hosts.iter().any(tlsa)
}

/// The DANE match of one presented chain, when there is something to match.
pub(crate) fn dane(records: &[Tlsa], chain: &[CertificateDer<'_>]) -> Option<DaneMatch> {
    if records.is_empty() || chain.is_empty() {
        return None;
    }
    let outcome = match_tlsa(records, chain);
    match outcome.verdict {
        DaneVerdict::Matched => {
            let matched = records
                .iter()
                .zip(&outcome.records)
                .find(|(_, o)| matches!(o, RecordOutcome::Matched { .. }))
                .map(|(r, _)| tlsa_record(r));
            Some(DaneMatch { matched })
        }
        DaneVerdict::NoMatch => Some(DaneMatch { matched: None }),
        DaneVerdict::NoUsableRecords | DaneVerdict::EmptyChain => None,
    }
}

fn version(v: NetTlsVersion) -> TlsVersion {
    match v {
        NetTlsVersion::Ssl3 => TlsVersion::Ssl3,
        NetTlsVersion::Tls1_0 => TlsVersion::Tls10,
        NetTlsVersion::Tls1_1 => TlsVersion::Tls11,
        NetTlsVersion::Tls1_2 => TlsVersion::Tls12,
        NetTlsVersion::Tls1_3 => TlsVersion::Tls13,
        NetTlsVersion::Other(w) => TlsVersion::Other(w),
    }
}

/// A time from the network layer; `None` when it is outside what `time` can represent
/// (a certificate dated beyond year 9999), rather than a made-up date.
pub(crate) fn datetime(t: SystemTime) -> Option<OffsetDateTime> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).ok()?,
        Err(before) => i64::try_from(before.duration().as_secs())
            .ok()?
            .checked_neg()?,
    };
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// The certificate facts of a probe. The validity verdict is the one `stsward-net` reached
/// at the check's `now` (`cert::judge`): expiry is decided once, there, and carried here.
/// `None` when the leaf did not parse (no facts, and no validity period to speak of).
pub(crate) fn cert_facts(verdict: &CertVerdict, chain_len: usize) -> Option<CertFacts> {
    let leaf = verdict.leaf.as_ref()?;
    let validity = match verdict.validity {
        Validity::Valid { .. } => CertValidity::Valid,
        Validity::Expired { .. } => CertValidity::Expired,
        Validity::NotYetValid { .. } => CertValidity::NotYetValid,
        Validity::Unreadable => return None,
    };
    let trust = match &verdict.trusted {
        Ok(()) => Trust::Trusted,
        Err(u) => {
            let reason = match u.reason {
                NetUntrusted::SelfSigned => UntrustedReason::SelfSigned,
                NetUntrusted::UnknownIssuer => UntrustedReason::UnknownIssuer,
                NetUntrusted::IntermediateValidity => UntrustedReason::ChainExpired,
                _ => UntrustedReason::Other,
            };
            Trust::Untrusted {
                reason,
                detail: format!("{:?}", u.reason),
            }
        }
    };
    Some(CertFacts {
        subject: leaf.subject.clone(),
        issuer: leaf.issuer.clone(),
        dns_names: leaf.subject_alt_names.clone(),
        not_before: datetime(leaf.not_before)?,
        not_after: datetime(leaf.not_after)?,
        validity,
        trust,
        name_matches: verdict.name_ok,
        chain_len,
    })
}

fn step(s: ProbeStep) -> SmtpStep {
    match s {
        ProbeStep::Connect => SmtpStep::Connect,
        ProbeStep::Banner => SmtpStep::Banner,
        ProbeStep::Ehlo => SmtpStep::Ehlo,
        ProbeStep::Starttls => SmtpStep::Starttls,
        ProbeStep::Handshake => SmtpStep::Handshake,
    }
}

/// One address's probe, with the DANE match of its chain against `tlsa`.
pub(crate) fn address(ip: IpAddr, p: &AddrProbe, tlsa: &[Tlsa]) -> AddressObservation {
    let banner = p
        .banner
        .as_ref()
        .map(|r| format!("{} {}", r.code, r.lines.join(" ")));
    let keywords: Vec<String> = p
        .ehlo_extensions
        .iter()
        .map(|e| e.keyword.clone())
        .collect();
    let legacy_accepted = p
        .legacy
        .as_ref()
        .and_then(|l| match (l.best_version, &l.failure) {
            (Some(v), _) => Some(vec![version(v)]),
            // The legacy probe ran to the handshake and the server refused 1.0/1.1.
            (None, None) => Some(Vec::new()),
            // It could not tell: leave it unknown rather than claim "refused".
            (None, Some(_)) => None,
        });
    let tls_probe = |handshake: Handshake| Probe::Tls {
        banner: banner.clone().unwrap_or_default(),
        ehlo_keywords: keywords.clone(),
        tls: Box::new(TlsObservation {
            handshake,
            legacy_accepted: legacy_accepted.clone(),
        }),
    };
    let failed = |s: ProbeStep, timed_out: bool, detail: String| Probe::Failed {
        step: step(s),
        timed_out,
        detail,
        banner: banner.clone(),
    };

    let mut dane_match = None;
    let probe = match (&p.error, &p.tls) {
        (Some(ProbeError::Handshake(e)), _) => tls_probe(Handshake::Failed {
            detail: e.to_string(),
            timed_out: false,
        }),
        (
            Some(ProbeError::Timeout {
                step: ProbeStep::Handshake,
                after,
            }),
            _,
        ) => tls_probe(Handshake::Failed {
            detail: format!("no handshake within {after:?}"),
            timed_out: true,
        }),
        (Some(ProbeError::Timeout { step: s, after }), _) => {
            failed(*s, true, format!("no answer within {after:?}"))
        }
        (Some(ProbeError::Connect(e)), _) => failed(ProbeStep::Connect, false, e.to_string()),
        (Some(ProbeError::Refused(r)), _) => Probe::Refused {
            detail: r.to_string(),
        },
        (Some(ProbeError::Banner(e)), _) => failed(ProbeStep::Banner, false, e.to_string()),
        (Some(ProbeError::Ehlo(e)), _) => failed(ProbeStep::Ehlo, false, e.to_string()),
        (Some(ProbeError::StarttlsRefused(code)), _) => failed(
            ProbeStep::Starttls,
            false,
            format!("the server answered {code} to STARTTLS"),
        ),
        (Some(e), _) => failed(ProbeStep::Starttls, false, e.to_string()),
        (None, Some(tls)) => {
            dane_match = dane(tlsa, &tls.chain);
            tls_probe(Handshake::Established {
                version: version(tls.version),
                cipher: tls.cipher.clone(),
                certificate: cert_facts(&tls.verdict, tls.chain.len()),
            })
        }
        (None, None) if !p.starttls_offered => Probe::NoStarttls {
            banner: banner.clone().unwrap_or_default(),
            ehlo_keywords: keywords.clone(),
        },
        (None, None) => tls_probe(Handshake::Failed {
            detail: "no TLS session".to_owned(),
            timed_out: false,
        }),
    };
    AddressObservation {
        ip,
        probe,
        dane: dane_match,
    }
}

fn cert_problem(p: &NetCertProblem) -> CertProblem {
    match p {
        NetCertProblem::Expired { .. } => CertProblem::Expired,
        NetCertProblem::NotYetValid { .. } => CertProblem::NotYetValid,
        NetCertProblem::NameMismatch { .. } => CertProblem::Name,
        _ => CertProblem::Untrusted,
    }
}

/// The policy fetch outcome.
pub(crate) fn policy_fetch(result: Result<FetchedPolicy, FetchError>) -> PolicyFetch {
    match result {
        Ok(f) => PolicyFetch::Fetched {
            content_type: f.content_type,
            body: f.body,
            cert_not_after: datetime(f.cert.not_after),
        },
        Err(e) => match e {
            FetchError::NoAddress => PolicyFetch::NoAddress { error: None },
            FetchError::Dns(d) => PolicyFetch::NoAddress {
                error: Some(lookup_error(&d)),
            },
            FetchError::Tls(p) => PolicyFetch::Webpki {
                problem: cert_problem(&p),
                detail: p.to_string(),
            },
            FetchError::Redirect { status, location } => PolicyFetch::Redirect { status, location },
            FetchError::Status(status) => PolicyFetch::Status { status },
            FetchError::ContentType(ct) => PolicyFetch::ContentType {
                content_type: (!ct.is_empty()).then_some(ct),
            },
            FetchError::TooLarge { limit } => PolicyFetch::TooLarge {
                limit: u64::try_from(limit).unwrap_or(u64::MAX),
            },
            FetchError::Timeout { after } => PolicyFetch::Timeout {
                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            },
            // The address filter of a tenant's check: no connection was made.
            refused @ FetchError::Refused { .. } => PolicyFetch::Refused {
                detail: refused.to_string(),
            },
            // Connect and handshake failures, and an HTTP exchange that broke down, all
            // leave a sender without an answer from port 443.
            other => PolicyFetch::Unreachable {
                detail: other.to_string(),
            },
        },
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stsward_net::cert::CertInfo;

    use super::*;

    fn verdict(validity: Validity) -> CertVerdict {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        CertVerdict {
            trusted: Ok(()),
            name_ok: true,
            validity,
            leaf: Some(CertInfo {
                subject: "CN=mx.example.test".into(),
                issuer: "CN=Lab CA".into(),
                not_before: start,
                not_after: start + Duration::from_secs(90 * 86_400),
                subject_alt_names: vec!["mx.example.test".into()],
            }),
        }
    }

    /// Certificate expiry is decided once, in `stsward-net` (`cert::judge` at the check's
    /// `now`), and carried into the observation instead of being dropped and decided again.
    #[test]
    fn rfc8461_4_2_net_validity_verdict_reaches_the_observation() {
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // (net verdict, observed validity)
        let table = [
            (Validity::Valid { not_after: at }, Some(CertValidity::Valid)),
            (
                Validity::Expired {
                    not_after: at,
                    checked_at: at,
                },
                Some(CertValidity::Expired),
            ),
            (
                Validity::NotYetValid {
                    not_before: at,
                    checked_at: at,
                },
                Some(CertValidity::NotYetValid),
            ),
            (Validity::Unreadable, None),
        ];
        for (net, want) in table {
            let facts = cert_facts(&verdict(net), 2);
            assert_eq!(facts.as_ref().map(|f| f.validity), want, "{net:?}");
        }
    }
}
