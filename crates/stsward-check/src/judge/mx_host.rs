//! RFC 8461 §4.2 and RFC 3207 — judging each MX host's STARTTLS, TLS and certificate
//!
//! ```text
//! RFC 8461 §4.2: The certificate presented by the receiving MTA MUST not be expired
//! and MUST chain to a root CA that is trusted by the Sending MTA.  The
//! certificate MUST have a subject alternative name (SAN) [RFC5280] with
//! a DNS-ID [RFC6125] matching the hostname, per the rules given in
//! [RFC6125].
//! ```
//!
//! Every failure finding is built through [`stsward_proto::Failure`], the one mapping from a
//! failure to its code and its RFC 8460 §4.3 result type (the message names the result type
//! senders report). Whether the certificate is expired or not yet valid is not decided here:
//! `stsward-net` decided it at the check's `now` ([`CertFacts::validity`]); only the "expires
//! within 14 days" warning is a judgement of this file.
//!
//! Each fact is judged on its own, so that one fault gives one finding with its own remedy:
//! an expired certificate behind a working STARTTLS is `mx.cert.expired`, never
//! `mx.starttls.missing`. Findings are per host (the subject); when the addresses of a host
//! disagree, each message names the addresses it is about.

use std::net::IpAddr;

use stsward_proto::{Code, Failure, Finding, Severity};
use time::OffsetDateTime;

use super::sts_txt::kind_words;
use super::{EXPIRY_WARNING, date, relative_days};
use crate::observe::{
    AddressLookup, CertFacts, CertValidity, Handshake, MxHostObservation, Probe, SmtpStep,
    TlsVersion, Trust, UntrustedReason,
};

/// Judges one MX host from its address probes. A null MX (empty host) gives nothing.
pub fn judge(mx: &MxHostObservation, now: OffsetDateTime) -> Vec<Finding> {
    let host = mx.host.as_str();
    if host.is_empty() {
        return Vec::new();
    }
    let addresses = match &mx.addresses {
        AddressLookup::Failed(err) => {
            return vec![Failure::MxNoAddress.finding(
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
            return vec![Failure::MxNoAddress.finding(
                Severity::Error,
                host,
                format!("MX host {host} has no A or AAAA record"),
            )];
        }
        AddressLookup::Answer { addresses } => addresses,
    };

    let mut unreachable: Vec<(IpAddr, String)> = Vec::new();
    let mut refused: Vec<Finding> = Vec::new();
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
                    vec![Verdict::failure(
                        Failure::TlsHandshake,
                        step_failure(*step, *timed_out, detail),
                    )],
                )),
            },
            Probe::Refused { detail } => refused.push(Finding::new(
                Code::NetAddressRefused,
                Severity::Error,
                host,
                format!(
                    "{} was not probed: {detail}; senders on the Internet cannot reach such an \
                     address either",
                    addr.ip
                ),
            )),
            Probe::NoStarttls { ehlo_keywords, .. } => per_address.push((
                addr.ip,
                vec![Verdict::failure(
                    Failure::StarttlsNotSupported,
                    format!(
                        "EHLO does not offer STARTTLS (offered: {})",
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

    // Refused addresses were not probed: the rest is judged on the addresses that were.
    let probed = addresses.len() - refused.len();
    let mut findings = refused;
    if !unreachable.is_empty() {
        let all = unreachable.len() == probed;
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
                    probed
                ),
            )
        };
        findings.push(Failure::MxUnreachable.finding(severity, host, message));
    }
    findings.extend(merge(host, &per_address, probed));
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

    /// An error verdict for `failure`: its one code, and the message followed by the result
    /// type senders report (`stsward_proto::failure`).
    fn failure(failure: Failure, message: String) -> Self {
        let message = format!("{message}{}", failure.senders_report());
        Verdict::new(failure.code(), Severity::Error, message)
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
        v.push(Verdict::failure(
            Failure::TlsVersion,
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
        v.push(Verdict::failure(
            Failure::TlsVersion,
            format!(
                "the best TLS version offered is {best}; a TLS 1.2/1.3 handshake fails ({detail})"
            ),
        ));
    } else {
        v.push(Verdict::failure(
            Failure::TlsHandshake,
            step_failure(SmtpStep::Handshake, timed_out, detail),
        ));
    }
}

fn judge_certificate(host: &str, cert: &CertFacts, now: OffsetDateTime, v: &mut Vec<Verdict>) {
    let mut problem = false;
    // Decided once, by `stsward-net` at this check's `now`; the dates only word the message.
    match cert.validity {
        CertValidity::Valid => {}
        CertValidity::Expired => {
            problem = true;
            v.push(Verdict::failure(
                Failure::CertificateExpired {
                    not_after: cert.not_after,
                },
                format!(
                    "the certificate expired {} ({})",
                    date(cert.not_after),
                    relative_days(cert.not_after, now)
                ),
            ));
        }
        CertValidity::NotYetValid => {
            problem = true;
            v.push(Verdict::failure(
                Failure::CertificateNotYetValid {
                    not_before: cert.not_before,
                },
                format!(
                    "the certificate is not valid before {}",
                    date(cert.not_before)
                ),
            ));
        }
    }
    if let Trust::Untrusted { reason, detail } = &cert.trust {
        problem = true;
        let verdict = match reason {
            UntrustedReason::ChainExpired => Verdict::failure(
                Failure::ChainCertificateExpired,
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
        v.push(Verdict::failure(
            Failure::CertificateHostMismatch,
            format!(
                "the certificate names {} but not {host}",
                if cert.dns_names.is_empty() {
                    cert.subject.clone()
                } else {
                    cert.dns_names.join(", ")
                }
            ),
        ));
    }
    // `spec/findings.md`: "expires within 14 days" is a warning, and a judgement of the
    // checker, not a failure of delivery.
    if cert.validity == CertValidity::Valid && cert.not_after - now <= EXPIRY_WARNING {
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
    Verdict::failure(Failure::CertificateNotTrusted, message)
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

#[cfg(test)]
mod tests {
    use stsward_proto::tlsrpt::ResultType;
    use time::Duration;

    use super::*;
    use crate::judge::fixtures::{address, cert, ip, mx, now, tls};
    use crate::observe::TlsObservation;

    const HOST: &str = "mx.example.test";

    fn judged(probe: Probe) -> Vec<Finding> {
        judge(&mx(HOST, 10, vec![address(ip(7), probe)]), now())
    }

    fn with_cert(f: impl FnOnce(&mut CertFacts)) -> Vec<Finding> {
        let mut c = cert(HOST);
        f(&mut c);
        judged(tls(c))
    }

    fn codes(findings: &[Finding]) -> Vec<Code> {
        findings.iter().map(|f| f.code).collect()
    }

    /// An address the tenant check's filter refused was not probed: `net.address.refused`
    /// names it, and the host is judged on its other addresses only (issue 9, SSRF).
    #[test]
    fn refused_addresses_are_named_and_the_rest_judged_alone() {
        let refused = || Probe::Refused {
            detail: "127.0.0.7 is loopback (RFC 1122)".into(),
        };
        let findings = judged(refused());
        assert_eq!(codes(&findings), [Code::NetAddressRefused], "{findings:#?}");
        assert_eq!(findings[0].severity, Severity::Error);
        assert!(findings[0].message.contains("loopback"), "{findings:#?}");

        // One refused, one working address: the working one is judged as the whole host.
        let host = mx(
            HOST,
            10,
            vec![address(ip(7), refused()), address(ip(8), tls(cert(HOST)))],
        );
        let findings = judge(&host, now());
        let got = codes(&findings);
        assert!(got.contains(&Code::NetAddressRefused), "{findings:#?}");
        assert!(got.contains(&Code::MxCertOk), "{findings:#?}");
        assert!(!got.contains(&Code::MxUnreachable), "{findings:#?}");
        let ok = findings.iter().find(|f| f.code == Code::MxCertOk);
        assert!(
            ok.is_some_and(|f| !f.message.contains("127.0.0.8:")),
            "a verdict on every probed address names none: {findings:#?}"
        );
    }

    /// Certificate expiry is decided once, by `stsward-net` at the check's `now`
    /// (`CertFacts::validity`); the judge takes that verdict and never compares the dates
    /// itself, so the two can never disagree.
    #[test]
    fn rfc8461_4_2_expiry_is_the_net_verdict_not_a_second_date_comparison() {
        // (why, validity from net, not_before/not_after offsets in days, expected code)
        let table: &[(&str, CertValidity, i64, i64, Code)] = &[
            (
                "net says expired: expired, whatever the dates say",
                CertValidity::Expired,
                -30,
                60,
                Code::MxCertExpired,
            ),
            (
                "net says not yet valid",
                CertValidity::NotYetValid,
                -30,
                60,
                Code::MxCertExpired,
            ),
            (
                "net says valid: the judge does not re-decide expiry from the dates, which \
                 only feed the 14-day warning",
                CertValidity::Valid,
                -90,
                -1,
                Code::MxCertExpiring,
            ),
            (
                "valid and ending in 10 days: the judge's own 14-day warning",
                CertValidity::Valid,
                -30,
                10,
                Code::MxCertExpiring,
            ),
        ];
        for (why, validity, start, end, want) in table {
            let findings = with_cert(|c| {
                c.validity = *validity;
                c.not_before = now() + Duration::days(*start);
                c.not_after = now() + Duration::days(*end);
            });
            let cert_codes: Vec<Code> = codes(&findings)
                .into_iter()
                .filter(|c| c.as_str().starts_with("mx.cert."))
                .collect();
            assert_eq!(cert_codes, [*want], "{why}: {findings:#?}");
        }
    }

    /// Every failure finding of this judge is built through `stsward_proto::Failure`: its
    /// code, and the RFC 8460 §4.3 result type its message says senders report.
    #[test]
    fn rfc8460_4_3_mx_failures_name_the_result_type_senders_report() {
        let established = |certificate| {
            tls_probe(Handshake::Established {
                version: TlsVersion::Tls13,
                cipher: "TLS13_AES_128_GCM_SHA256".into(),
                certificate,
            })
        };
        // (why, findings, expected code, expected result type)
        let table: Vec<(&str, Vec<Finding>, Code, Option<ResultType>)> = vec![
            (
                "no STARTTLS",
                judged(Probe::NoStarttls {
                    banner: "220 mx".into(),
                    ehlo_keywords: vec!["PIPELINING".into()],
                }),
                Code::MxStarttlsMissing,
                Some(ResultType::StarttlsNotSupported),
            ),
            (
                "expired",
                with_cert(|c| c.validity = CertValidity::Expired),
                Code::MxCertExpired,
                Some(ResultType::CertificateExpired),
            ),
            (
                "not yet valid: not \"expired\" in RFC 8460's words",
                with_cert(|c| c.validity = CertValidity::NotYetValid),
                Code::MxCertExpired,
                Some(ResultType::CertificateNotTrusted),
            ),
            (
                "another name",
                with_cert(|c| c.name_matches = false),
                Code::MxCertName,
                Some(ResultType::CertificateHostMismatch),
            ),
            (
                "self-signed",
                with_cert(|c| {
                    c.trust = Trust::Untrusted {
                        reason: UntrustedReason::SelfSigned,
                        detail: "x".into(),
                    }
                }),
                Code::MxCertUntrusted,
                Some(ResultType::CertificateNotTrusted),
            ),
            (
                "no certificate",
                judged(established(None)),
                Code::MxCertUntrusted,
                Some(ResultType::CertificateNotTrusted),
            ),
            (
                "TLS 1.0 only",
                judged(established_version(TlsVersion::Tls10)),
                Code::MxTlsVersion,
                Some(ResultType::ValidationFailure),
            ),
            (
                "handshake fails",
                judged(tls_probe(Handshake::Failed {
                    detail: "alert".into(),
                    timed_out: false,
                })),
                Code::MxTlsHandshake,
                Some(ResultType::ValidationFailure),
            ),
            (
                "connection refused: no TLS-RPT result type (RFC 8460 §4.3.4)",
                judged(Probe::Failed {
                    step: SmtpStep::Connect,
                    timed_out: false,
                    detail: "refused".into(),
                    banner: None,
                }),
                Code::MxUnreachable,
                None,
            ),
        ];
        for (why, findings, code, rt) in table {
            let f = findings
                .iter()
                .find(|f| f.code == code)
                .unwrap_or_else(|| panic!("{why}: no {code} in {findings:#?}"));
            assert_eq!(f.severity, Severity::Error, "{why}");
            match rt {
                Some(rt) => assert!(
                    f.message.ends_with(&format!("; senders report {rt}")),
                    "{why}: {}",
                    f.message
                ),
                None => assert!(!f.message.contains("senders report"), "{why}"),
            }
        }
    }

    fn tls_probe(handshake: Handshake) -> Probe {
        Probe::Tls {
            banner: "220 mx".into(),
            ehlo_keywords: vec!["STARTTLS".into()],
            tls: Box::new(TlsObservation {
                handshake,
                legacy_accepted: Some(Vec::new()),
            }),
        }
    }

    fn established_version(version: TlsVersion) -> Probe {
        tls_probe(Handshake::Established {
            version,
            cipher: "TLS_RSA_WITH_AES_128_CBC_SHA".into(),
            certificate: Some(cert(HOST)),
        })
    }
}
