//! RFC 8461 §4.2 and RFC 3207 — judging each MX host's STARTTLS, TLS and certificate
//!
//! ```text
//! RFC 8461 §4.2: When a sending MTA ... it MUST ... validate the server certificate: the
//! certificate presented must ... chain to a trusted root, be valid (not expired), and its
//! subjectAltName must match the MX host name.
//! ```
//!
//! Each fact is judged on its own, so that one fault gives one finding with its own remedy:
//! an expired certificate behind a working STARTTLS is `mx.cert.expired`, never
//! `mx.starttls.missing`. Findings are per host (the subject); when the addresses of a host
//! disagree, each message names the addresses it is about.

use std::net::IpAddr;

use stsward_proto::{Code, Finding, Severity};
use time::OffsetDateTime;

use super::sts_txt::kind_words;
use super::{EXPIRY_WARNING, date, relative_days};
use crate::observe::{
    AddressLookup, CertFacts, Handshake, MxHostObservation, Probe, SmtpStep, TlsVersion, Trust,
    UntrustedReason,
};

/// Judges one MX host from its address probes. A null MX (empty host) gives nothing.
pub fn judge(mx: &MxHostObservation, now: OffsetDateTime) -> Vec<Finding> {
    let host = mx.host.as_str();
    if host.is_empty() {
        return Vec::new();
    }
    let addresses = match &mx.addresses {
        AddressLookup::Failed(err) => {
            return vec![Finding::new(
                Code::MxAddress,
                Severity::Error,
                host,
                format!(
                    "address lookup for MX host {host} failed ({}): {}",
                    kind_words(err),
                    err.detail
                ),
            )];
        }
        AddressLookup::Answer { addresses } if addresses.is_empty() => {
            return vec![Finding::new(
                Code::MxAddress,
                Severity::Error,
                host,
                format!("MX host {host} has no A or AAAA record"),
            )];
        }
        AddressLookup::Answer { addresses } => addresses,
    };

    let mut unreachable: Vec<(IpAddr, String)> = Vec::new();
    let mut per_address: Vec<(IpAddr, Vec<Verdict>)> = Vec::new();
    for addr in addresses {
        match &addr.probe {
            Probe::Failed {
                step,
                timed_out,
                detail,
                ..
            } => match step {
                SmtpStep::Connect | SmtpStep::Banner | SmtpStep::Ehlo => {
                    unreachable.push((addr.ip, step_failure(*step, *timed_out, detail)));
                }
                SmtpStep::Starttls | SmtpStep::Handshake => per_address.push((
                    addr.ip,
                    vec![Verdict::new(
                        Code::MxTlsHandshake,
                        Severity::Error,
                        step_failure(*step, *timed_out, detail),
                    )],
                )),
            },
            Probe::NoStarttls { ehlo_keywords, .. } => per_address.push((
                addr.ip,
                vec![Verdict::new(
                    Code::MxStarttlsMissing,
                    Severity::Error,
                    format!(
                        "EHLO does not offer STARTTLS (offered: {}); senders report starttls-not-supported",
                        if ehlo_keywords.is_empty() {
                            "nothing".to_owned()
                        } else {
                            ehlo_keywords.join(" ")
                        }
                    ),
                )],
            )),
            Probe::Tls { tls, .. } => {
                let mut v = vec![Verdict::new(
                    Code::MxStarttlsOk,
                    Severity::Ok,
                    "EHLO offers STARTTLS".to_owned(),
                )];
                let legacy = tls.legacy_accepted.as_deref().unwrap_or(&[]);
                match &tls.handshake {
                    Handshake::Established {
                        version,
                        cipher,
                        certificate,
                    } => {
                        judge_version(*version, cipher, legacy, &mut v);
                        match certificate {
                            Some(cert) => judge_certificate(host, cert, now, &mut v),
                            None => v.push(untrusted(
                                "the server presented no readable certificate".to_owned(),
                            )),
                        }
                    }
                    Handshake::Failed { detail, timed_out } => {
                        judge_failed_handshake(detail, *timed_out, legacy, &mut v);
                    }
                }
                per_address.push((addr.ip, v));
            }
        }
    }

    let mut findings = Vec::new();
    if !unreachable.is_empty() {
        let all = unreachable.len() == addresses.len();
        let detail = unreachable
            .iter()
            .map(|(ip, why)| format!("{ip}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        // One unreachable address among working ones still delivers (senders try the next
        // address), so it is fragile rather than broken.
        let (severity, message) = if all {
            (
                Severity::Error,
                format!("no SMTP session with {host} on any address ({detail})"),
            )
        } else {
            (
                Severity::Warning,
                format!(
                    "{} of {} addresses of {host} give no SMTP session ({detail})",
                    unreachable.len(),
                    addresses.len()
                ),
            )
        };
        findings.push(Finding::new(Code::MxUnreachable, severity, host, message));
    }
    findings.extend(merge(host, &per_address, addresses.len()));
    findings
}

/// One per-address result before merging across the host's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    code: Code,
    severity: Severity,
    message: String,
}

impl Verdict {
    fn new(code: Code, severity: Severity, message: String) -> Self {
        Verdict {
            code,
            severity,
            message,
        }
    }
}

fn step_failure(step: SmtpStep, timed_out: bool, detail: &str) -> String {
    let what = match step {
        SmtpStep::Connect => "connect",
        SmtpStep::Banner => "greeting",
        SmtpStep::Ehlo => "EHLO",
        SmtpStep::Starttls => "STARTTLS command",
        SmtpStep::Handshake => "TLS handshake",
    };
    if timed_out {
        format!("{what} timed out ({detail})")
    } else {
        format!("{what} failed: {detail}")
    }
}

fn judge_version(version: TlsVersion, cipher: &str, legacy: &[TlsVersion], v: &mut Vec<Verdict>) {
    if version.is_deprecated() {
        v.push(Verdict::new(
            Code::MxTlsVersion,
            Severity::Error,
            format!("the best TLS version offered is {version}; senders need TLS 1.2 or later"),
        ));
        return;
    }
    v.push(Verdict::new(
        Code::MxTlsOk,
        Severity::Ok,
        format!("{version}, {cipher}"),
    ));
    let old: Vec<String> = legacy
        .iter()
        .filter(|l| l.is_deprecated())
        .map(|l| l.to_string())
        .collect();
    if !old.is_empty() {
        v.push(Verdict::new(
            Code::MxTlsLegacy,
            Severity::Info,
            format!("also accepts {} alongside {version}", old.join(", ")),
        ));
    }
}

fn judge_failed_handshake(
    detail: &str,
    timed_out: bool,
    legacy: &[TlsVersion],
    v: &mut Vec<Verdict>,
) {
    // A modern client failing while a legacy probe succeeds means the server speaks only
    // deprecated versions: the version is the fault, not the handshake as such.
    if let Some(best) = legacy.iter().max() {
        v.push(Verdict::new(
            Code::MxTlsVersion,
            Severity::Error,
            format!(
                "the best TLS version offered is {best}; a TLS 1.2/1.3 handshake fails ({detail})"
            ),
        ));
    } else {
        v.push(Verdict::new(
            Code::MxTlsHandshake,
            Severity::Error,
            step_failure(SmtpStep::Handshake, timed_out, detail),
        ));
    }
}

fn judge_certificate(host: &str, cert: &CertFacts, now: OffsetDateTime, v: &mut Vec<Verdict>) {
    let mut problem = false;
    if now > cert.not_after {
        problem = true;
        v.push(Verdict::new(
            Code::MxCertExpired,
            Severity::Error,
            format!(
                "the certificate expired {} ({}); senders report certificate-expired",
                date(cert.not_after),
                relative_days(cert.not_after, now)
            ),
        ));
    } else if now < cert.not_before {
        problem = true;
        v.push(Verdict::new(
            Code::MxCertExpired,
            Severity::Error,
            format!(
                "the certificate is not valid before {}; senders report certificate-expired",
                date(cert.not_before)
            ),
        ));
    }
    if let Trust::Untrusted { reason, detail } = &cert.trust {
        problem = true;
        let verdict = match reason {
            UntrustedReason::ChainExpired => Verdict::new(
                Code::MxCertExpired,
                Severity::Error,
                format!("a certificate in the chain has expired ({detail})"),
            ),
            UntrustedReason::SelfSigned => untrusted(format!(
                "the certificate is self-signed (issuer {})",
                cert.issuer
            )),
            UntrustedReason::UnknownIssuer => untrusted(format!(
                "the issuer {} is not a trusted CA, or the chain is incomplete ({} certificate(s) sent): {detail}",
                cert.issuer, cert.chain_len
            )),
            UntrustedReason::Other => untrusted(format!("the chain is not trusted: {detail}")),
        };
        v.push(verdict);
    }
    if !cert.name_matches {
        problem = true;
        v.push(Verdict::new(
            Code::MxCertName,
            Severity::Error,
            format!(
                "the certificate names {} but not {host}; senders report certificate-host-mismatch",
                if cert.dns_names.is_empty() {
                    cert.subject.clone()
                } else {
                    cert.dns_names.join(", ")
                }
            ),
        ));
    }
    let valid_now = cert.not_before <= now && now <= cert.not_after;
    if valid_now && cert.not_after - now <= EXPIRY_WARNING {
        v.push(Verdict::new(
            Code::MxCertExpiring,
            Severity::Warning,
            format!(
                "the certificate expires {} ({})",
                date(cert.not_after),
                relative_days(cert.not_after, now)
            ),
        ));
    } else if !problem {
        v.push(Verdict::new(
            Code::MxCertOk,
            Severity::Ok,
            format!(
                "trusted, valid for {host}, expires {} (issuer {})",
                date(cert.not_after),
                cert.issuer
            ),
        ));
    }
}

fn untrusted(message: String) -> Verdict {
    Verdict::new(
        Code::MxCertUntrusted,
        Severity::Error,
        format!("{message}; senders report certificate-not-trusted"),
    )
}

/// Merges per-address verdicts into per-host findings: identical verdicts on several
/// addresses become one finding, so a host with two healthy addresses reads as one healthy
/// host. Only when the addresses disagree does a message name the addresses it is about.
fn merge(host: &str, per_address: &[(IpAddr, Vec<Verdict>)], total: usize) -> Vec<Finding> {
    let mut groups: Vec<(&Verdict, Vec<IpAddr>)> = Vec::new();
    for (ip, verdicts) in per_address {
        for verdict in verdicts {
            match groups.iter_mut().find(|(v, _)| *v == verdict) {
                Some((_, ips)) => ips.push(*ip),
                None => groups.push((verdict, vec![*ip])),
            }
        }
    }
    groups
        .into_iter()
        .map(|(verdict, ips)| {
            let message = if ips.len() == total {
                verdict.message.clone()
            } else {
                let at = ips
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{at}: {}", verdict.message)
            };
            Finding::new(verdict.code, verdict.severity, host, message)
        })
        .collect()
}
