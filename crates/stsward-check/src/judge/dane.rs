//! RFC 7672 — judging DANE for SMTP: TLSA records of each MX host
//!
//! ```text
//! RFC 7672 §2.2: TLSA records ... at _25._tcp.<mx host> ... are only usable when the
//!   response is DNSSEC-validated ("secure").
//! RFC 7672 §3.1.3: SMTP clients ... treat TLSA records with certificate usage PKIX-TA(0)
//!   or PKIX-EE(1) as unusable.
//! RFC 7672 §3.1: if usable TLSA records exist, the server's certificate chain must match
//!   at least one of them, or the client MUST NOT deliver ("tlsa-invalid").
//! ```
//!
//! DANE is optional, so a host without TLSA records is `info`. Records that exist but do
//! not protect anything (unsigned, unusable usages) are warnings; records that make senders
//! refuse delivery (mismatch, bogus DNSSEC) are errors.

use stsward_proto::{Code, Finding, Severity};

use super::sts_txt::kind_words;
use crate::observe::{
    AddressLookup, DnssecStatus, LookupErrorKind, MxHostObservation, TlsaLookup, TlsaRecord,
};

/// Judges the TLSA records of one MX host and the DANE match at each of its addresses.
pub fn judge(mx: &MxHostObservation) -> Vec<Finding> {
    let host = mx.host.as_str();
    let name = mx.tlsa.name.as_str();
    let (records, dnssec) = match &mx.tlsa.lookup {
        TlsaLookup::NotChecked => return Vec::new(),
        TlsaLookup::Failed(err) if err.kind == LookupErrorKind::Bogus => {
            return vec![bogus(host, name, &err.detail)];
        }
        TlsaLookup::Failed(err) => {
            // A failed TLSA lookup is not a denial of existence: validating senders must
            // defer mail to a signed MX whose TLSA lookup fails (RFC 7672 §2.2). Without a
            // dedicated code it is reported under the DNSSEC code, as a warning, because
            // for an unsigned zone the failure is harmless.
            return vec![Finding::new(
                Code::DaneDnssecBogus,
                Severity::Warning,
                host,
                format!(
                    "TLSA lookup for {name} failed ({}): {}; DANE senders defer mail if the zone is signed",
                    kind_words(err),
                    err.detail
                ),
            )];
        }
        TlsaLookup::Answer { records, dnssec } => (records, *dnssec),
    };

    if dnssec == DnssecStatus::Bogus {
        return vec![bogus(host, name, "the TLSA answer failed validation")];
    }
    if records.is_empty() {
        return vec![Finding::new(
            Code::DaneTlsaMissing,
            Severity::Info,
            host,
            format!("no TLSA record at {name}; DANE senders use opportunistic TLS"),
        )];
    }
    if dnssec != DnssecStatus::Secure {
        return vec![Finding::new(
            Code::DaneTlsaInsecure,
            Severity::Warning,
            host,
            format!(
                "{} TLSA record(s) at {name} but the answer is not DNSSEC-validated ({}); senders ignore them",
                records.len(),
                match dnssec {
                    DnssecStatus::Insecure => "insecure",
                    _ => "not validated",
                }
            ),
        )];
    }

    let mut findings = Vec::new();
    let unusable: Vec<&TlsaRecord> = records.iter().filter(|r| !r.is_usable_for_smtp()).collect();
    if !unusable.is_empty() {
        findings.push(Finding::new(
            Code::DaneTlsaUsage,
            Severity::Warning,
            host,
            format!(
                "TLSA record(s) at {name} that SMTP senders cannot use: {}",
                record_list(&unusable)
            ),
        ));
    }
    let usable = records.len() - unusable.len();
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
