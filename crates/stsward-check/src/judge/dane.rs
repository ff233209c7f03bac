//! RFC 7672 — judging DANE for SMTP: TLSA records of each MX host
//!
//! ```text
//! RFC 7672 §2.2: if the DNS lookup for a TLSA record returns:
//!   A "secure" TLSA RRset with at least one usable record:  Any connection to the MTA
//!     MUST employ TLS encryption and MUST authenticate the SMTP server ...
//!   A "secure" non-empty TLSA RRset where all the records are unusable:  Any connection
//!     to the MTA MUST be made via TLS, but authentication is not required. ...
//!   An "insecure" TLSA RRset or DNSSEC-authenticated denial of existence of the TLSA
//!   records:  A connection to the MTA SHOULD be made using (pre-DANE) opportunistic TLS ...
//!   Any lookup error:  Lookup errors, including "bogus" and "indeterminate" as explained
//!     in Section 2.1.1, MUST result in falling back to the next SMTP server or delayed
//!     delivery.
//! RFC 7672 §3.1.3: SMTP clients MAY treat such records [PKIX-TA(0), PKIX-EE(1)] as
//!   "unusable".
//! RFC 7672 §3.2: Messages MUST NOT be delivered via the SMTP server if authentication
//!   fails
//! ```
//!
//! DANE is optional, so a host without TLSA records is `info`. Records that exist but do
//! not protect anything (unsigned, unusable usages) are warnings; records that make senders
//! refuse delivery (mismatch, bogus DNSSEC, a TLSA lookup that fails for a signed host) are
//! errors.
//!
//! Whether an answer is signed can only be known through a resolver that passes DNSSEC
//! records. When it does not, every answer is "indeterminate" (RFC 4035 §4.3): that is about
//! the resolver, not the domain, so it is said once ([`resolver`], `dns.dnssec.unavailable`)
//! and DANE is left unjudged rather than guessed.

use stsward_proto::{Code, Finding, Severity};

use super::sts_txt::kind_words;
use crate::observe::{
    AddressLookup, DnssecStatus, DnssecValidation, LookupErrorKind, MxHostObservation, MxLookup,
    Observation, TlsaLookup, TlsaRecord,
};

/// One finding about the resolver when the check's answers could not be validated.
pub fn resolver(obs: &Observation) -> Vec<Finding> {
    let server = match obs.resolver.server.as_str() {
        "" | "system" => "the system resolver".to_owned(),
        other => format!("resolver {other}"),
    };
    let why = match obs.resolver.dnssec {
        DnssecValidation::Validated => return Vec::new(),
        DnssecValidation::NoDnssecRecords => "the resolver passes no DNSSEC records (asked with the DO bit set, it returned no signed DNSKEY for the trust anchor's zone), so no answer could be validated: their DNSSEC status is indeterminate (RFC 4035 §4.3), which says nothing about the domain".to_owned(),
        DnssecValidation::Off => "DNSSEC validation is switched off".to_owned(),
    };
    let with_tlsa: Vec<&str> = match &obs.mx {
        MxLookup::Answer { hosts } => hosts
            .iter()
            .filter(|h| matches!(&h.tlsa.lookup, TlsaLookup::Answer { records, .. } if !records.is_empty()))
            .map(|h| h.host.as_str())
            .collect(),
        MxLookup::Failed(_) => Vec::new(),
    };
    let tlsa_note = if with_tlsa.is_empty() {
        String::new()
    } else {
        format!("; TLSA records were seen for {}", with_tlsa.join(", "))
    };
    vec![Finding::new(
        Code::DnsDnssecUnavailable,
        Severity::Info,
        server.clone(),
        format!("{why}; DANE could not be judged for this domain{tlsa_note}"),
    )]
}

/// Judges the TLSA records of one MX host and the DANE match at each of its addresses.
pub fn judge(mx: &MxHostObservation) -> Vec<Finding> {
    let host = mx.host.as_str();
    let name = mx.tlsa.name.as_str();
    let (records, dnssec) = match &mx.tlsa.lookup {
        TlsaLookup::NotChecked => return Vec::new(),
        TlsaLookup::Failed(err) if err.kind == LookupErrorKind::Bogus => {
            return vec![bogus(
                host,
                name,
                "bogus: expired or missing signatures, or keys that do not chain to the parent's DS",
            )];
        }
        TlsaLookup::Failed(err) => return vec![lookup_failed(mx, err)],
        TlsaLookup::Answer { records, dnssec } => (records, *dnssec),
    };

    match dnssec {
        DnssecStatus::Bogus => {
            return vec![bogus(host, name, "the TLSA answer failed validation")];
        }
        // Unknown, not wrong: the resolver finding says why, once per check.
        DnssecStatus::Indeterminate => return Vec::new(),
        DnssecStatus::Secure | DnssecStatus::Insecure => {}
    }
    if records.is_empty() {
        return vec![Finding::new(
            Code::DaneTlsaMissing,
            Severity::Info,
            host,
            format!("no TLSA record at {name}; DANE senders use opportunistic TLS"),
        )];
    }
    if dnssec == DnssecStatus::Insecure {
        return vec![Finding::new(
            Code::DaneTlsaInsecure,
            Severity::Warning,
            host,
            format!(
                "{} TLSA record(s) at {name} but the answer is insecure (the zone is not DNSSEC-signed); senders ignore them",
                records.len(),
            ),
        )];
    }

    let mut findings = Vec::new();
    let unusable: Vec<&TlsaRecord> = records.iter().filter(|r| !r.is_usable_for_smtp()).collect();
    let usable = records.len() - unusable.len();
    if !unusable.is_empty() {
        let consequence = if usable == 0 {
            // RFC 7672 §2.2: a secure, non-empty, all-unusable RRset still commits the host
            // to TLS; it only drops authentication.
            "; with no usable record left, DANE senders still require TLS to this host but cannot authenticate it"
        } else {
            ""
        };
        findings.push(Finding::new(
            Code::DaneTlsaUsage,
            Severity::Warning,
            host,
            format!(
                "TLSA record(s) at {name} that SMTP senders cannot use: {}{consequence}",
                record_list(&unusable)
            ),
        ));
    }
    if usable == 0 {
        return findings;
    }

    let AddressLookup::Answer { addresses } = &mx.addresses else {
        return findings;
    };
    let mut matched = Vec::new();
    let mut mismatched = Vec::new();
    for addr in addresses {
        if let Some(m) = &addr.dane {
            match &m.matched {
                Some(record) => matched.push((addr.ip, record)),
                None => mismatched.push(addr.ip),
            }
        }
    }
    if !mismatched.is_empty() {
        findings.push(Finding::new(
            Code::DaneTlsaMismatch,
            Severity::Error,
            host,
            format!(
                "the certificate chain at {} matches none of the {usable} usable TLSA record(s) at {name}; senders report tlsa-invalid",
                ips(&mismatched)
            ),
        ));
    } else if let Some((_, record)) = matched.first() {
        let at: Vec<_> = matched.iter().map(|(ip, _)| *ip).collect();
        findings.push(Finding::new(
            Code::DaneTlsaOk,
            Severity::Ok,
            host,
            format!(
                "the chain at {} matches TLSA {record} (DNSSEC secure)",
                ips(&at)
            ),
        ));
    }
    findings
}

/// A TLSA lookup that failed without being bogus (SERVFAIL, timeout, REFUSED).
///
/// RFC 7672 §2.2 "Any lookup error: ... MUST result in falling back to the next SMTP server
/// or delayed delivery", and §2.1.2: "the SMTP client MUST treat that server as unreachable".
/// Senders only look for TLSA records when the host's address answer is "secure" (§2.2.2:
/// otherwise "the SMTP client SHOULD NOT proceed to search for any associated TLSA
/// records"). So the failure is an error for a signed host, and a warning otherwise: it
/// breaks nothing today, but would the day the zone is signed.
fn lookup_failed(mx: &MxHostObservation, err: &crate::observe::LookupError) -> Finding {
    let host = mx.host.as_str();
    let name = mx.tlsa.name.as_str();
    let (severity, consequence) = match mx.tlsa.host_dnssec {
        Some(DnssecStatus::Secure) => (
            Severity::Error,
            format!("{host}'s address records are DNSSEC-secure, so DANE senders treat it as unreachable"),
        ),
        Some(DnssecStatus::Insecure) => (
            Severity::Warning,
            "the host's zone is unsigned, so DANE senders do not look for TLSA records today; once it is signed they will treat the host as unreachable".to_owned(),
        ),
        _ => (
            Severity::Warning,
            "DANE senders treat the host as unreachable if its zone is signed".to_owned(),
        ),
    };
    Finding::new(
        Code::DaneTlsaLookup,
        severity,
        host,
        format!(
            "TLSA lookup for {name} failed ({}): {}; {consequence}",
            kind_words(err),
            err.detail
        ),
    )
}

fn bogus(host: &str, name: &str, detail: &str) -> Finding {
    Finding::new(
        Code::DaneDnssecBogus,
        Severity::Error,
        host,
        format!(
            "DNSSEC validation of {name} fails ({detail}); validating senders cannot deliver to {host}"
        ),
    )
}

fn record_list(records: &[&TlsaRecord]) -> String {
    records
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ips(ips: &[std::net::IpAddr]) -> String {
    ips.iter()
        .map(|ip| ip.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
