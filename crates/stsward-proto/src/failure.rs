//! One failure, one name — an observed failure, its finding code, and its RFC 8460 §4.3
//! result type (STYLE.md rule 9, DESIGN.md "One failure, one name")
//!
//! A [`Failure`] is what went wrong when something tried to deliver mail securely: no
//! STARTTLS, an expired certificate, a policy that could not be fetched. It maps, here and
//! nowhere else, to
//! - exactly one finding [`Code`] (`spec/findings.md`), what `stsward check` reports, and
//! - at most one TLS-RPT [`ResultType`] (RFC 8460 §4.3), what a sender puts in its report.
//!
//! The checker builds its failure findings through this table; the resolver and the report
//! generator are to use it too, so that a person reads the same words in `check`, in a
//! received report and on the dashboard.
//!
//! Each pairing with a result type follows the RFC's own words (RFC 8460 §4.3, quoted on
//! each variant). Where the RFC has no category, the choice is explained:
//! - a TLS version below 1.2 and any other handshake failure are `validation-failure`,
//!   because RFC 8460 §4.3.3 says: "When a negotiation failure cannot be categorized into one
//!   of the "Negotiation Failures" stated above, the reporter SHOULD use the
//!   "validation-failure" category."
//! - a certificate that is not valid *yet* has not "expired"; it is one of the
//!   "certificate-related failures" that `certificate-not-trusted` covers;
//! - no TCP connection, no greeting, or no EHLO answer has no result type: no TLS
//!   negotiation was attempted, and RFC 8460 §4.3.4 says "Transient errors due to too-busy
//!   networks, TCP timeouts, etc., are not required to be reported."
//!
//! Nothing here does I/O; times are values the caller observed.

use time::OffsetDateTime;

use crate::finding::{Code, Finding, Severity};
use crate::tlsrpt::ResultType;

/// An observed failure of secure delivery, as precise as the checker can tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    // ---- the MX host (RFC 8461 §4.2, RFC 3207) ----
    /// The MX host name has no address (no A or AAAA record, or the lookup failed).
    MxNoAddress,
    /// No SMTP session: the TCP connection, the greeting or the EHLO answer failed.
    MxUnreachable,
    /// RFC 8460 §4.3.1 `starttls-not-supported`: "This indicates that the recipient MX did
    /// not support STARTTLS."
    StarttlsNotSupported,
    /// STARTTLS was offered, but the command or the TLS handshake failed
    /// (`validation-failure`, RFC 8460 §4.3.3).
    TlsHandshake,
    /// The best TLS version the server speaks is below 1.2 (RFC 8461 §7.2: "MTAs supporting
    /// MTA-STS MUST have support for TLS 1.2 \[RFC5246\] or TLS 1.3 \[RFC8446\] or higher.");
    /// `validation-failure`, RFC 8460 §4.3.3.
    TlsVersion,
    /// RFC 8460 §4.3.1 `certificate-expired`: "This indicates that the certificate has
    /// expired."
    CertificateExpired {
        /// The end of the leaf's validity period.
        not_after: OffsetDateTime,
    },
    /// A certificate of the chain other than the leaf has expired (`certificate-expired`).
    ChainCertificateExpired,
    /// The leaf's validity period has not begun. Not "expired", so RFC 8460 §4.3.1's
    /// `certificate-not-trusted`, "a label that covers multiple certificate-related failures".
    CertificateNotYetValid {
        /// The start of the leaf's validity period.
        not_before: OffsetDateTime,
    },
    /// RFC 8460 §4.3.1 `certificate-host-mismatch`: "the MX hostname does not match any
    /// identities listed in the subject alternative name (SAN) \[RFC5280\]" (an example the
    /// RFC gives).
    CertificateHostMismatch,
    /// RFC 8460 §4.3.1 `certificate-not-trusted`: "errors such as untrusted/unknown
    /// certification authorities (CAs), certificate name constraints, certificate chain
    /// errors, etc." Also a server that presented no readable certificate.
    CertificateNotTrusted,

    // ---- DANE (RFC 7672) ----
    /// RFC 8460 §4.3.2.1 `tlsa-invalid`: "None of the records in the RRset were found to be
    /// valid."
    TlsaInvalid,
    /// RFC 8460 §4.3.2.1 `dnssec-invalid`: "This indicates that no valid records were
    /// returned from the recursive resolver."
    DnssecInvalid,
    /// RFC 8460 §4.3.2.1 `dane-required`: "no DNSSEC-validated TLSA records were present for
    /// the MX host that is the subject of the report".
    DaneRequired,

    // ---- the MTA-STS policy (RFC 8461 §3.3) ----
    /// `mta-sts.<domain>` has no address (`sts-policy-fetch-error`).
    StsPolicyHostNoAddress,
    /// No TCP or TLS connection to port 443. RFC 8460 §4.3.2.2 `sts-policy-fetch-error`:
    /// "a failure to retrieve an MTA-STS policy, for example, because the policy host is
    /// unreachable."
    StsPolicyUnreachable,
    /// A 3xx answer; RFC 8461 §3.3: "HTTP 3xx redirects MUST NOT be followed"
    /// (`sts-policy-fetch-error`).
    StsPolicyRedirect,
    /// Any other non-200 answer; RFC 8461 §3.3: "Policies fetched via HTTPS are only valid if
    /// the HTTP response code is 200 (OK)." (`sts-policy-fetch-error`).
    StsPolicyStatus,
    /// The media type is not `text/plain`; RFC 8461 §3.2: "senders SHOULD validate that the
    /// media type is "text/plain"" (`sts-policy-fetch-error`: the fetch is refused before the
    /// body is read as a policy).
    StsPolicyContentType,
    /// The body is larger than the 64 KiB that RFC 8461 §3.3 suggests as a limit
    /// (`sts-policy-fetch-error`).
    StsPolicyTooLarge,
    /// No complete answer within the fetch timeout (`sts-policy-fetch-error`).
    StsPolicyTimeout,
    /// RFC 8460 §4.3.2.2 `sts-webpki-invalid`: "This indicates that the MTA-STS Policy could
    /// not be authenticated using PKIX validation."
    StsWebpkiInvalid,
    /// RFC 8460 §4.3.2.2 `sts-policy-invalid`: "This indicates a validation error for the
    /// overall MTA-STS Policy." The policy linter reports the finer cause line by line.
    StsPolicyInvalid,
}

impl Failure {
    /// The finding code the checker reports for this failure (`spec/findings.md`).
    pub fn code(&self) -> Code {
        match self {
            Failure::MxNoAddress => Code::MxAddress,
            Failure::MxUnreachable => Code::MxUnreachable,
            Failure::StarttlsNotSupported => Code::MxStarttlsMissing,
            Failure::TlsHandshake => Code::MxTlsHandshake,
            Failure::TlsVersion => Code::MxTlsVersion,
            Failure::CertificateExpired { .. }
            | Failure::ChainCertificateExpired
            | Failure::CertificateNotYetValid { .. } => Code::MxCertExpired,
            Failure::CertificateHostMismatch => Code::MxCertName,
            Failure::CertificateNotTrusted => Code::MxCertUntrusted,
            Failure::TlsaInvalid => Code::DaneTlsaMismatch,
            Failure::DnssecInvalid => Code::DaneDnssecBogus,
            Failure::DaneRequired => Code::DaneTlsaMissing,
            Failure::StsPolicyHostNoAddress => Code::StsPolicyHost,
            Failure::StsPolicyUnreachable => Code::StsPolicyUnreachable,
            Failure::StsPolicyRedirect => Code::StsPolicyRedirect,
            Failure::StsPolicyStatus => Code::StsPolicyStatus,
            Failure::StsPolicyContentType => Code::StsPolicyContentType,
            Failure::StsPolicyTooLarge => Code::StsPolicySize,
            Failure::StsPolicyTimeout => Code::StsPolicyTimeout,
            Failure::StsWebpkiInvalid => Code::StsPolicyWebpki,
            Failure::StsPolicyInvalid => Code::StsPolicySyntax,
        }
    }

    /// The RFC 8460 §4.3 result type a sender reports for this failure, when there is one.
    pub fn result_type(&self) -> Option<ResultType> {
        Some(match self {
            Failure::MxNoAddress | Failure::MxUnreachable => return None,
            Failure::StarttlsNotSupported => ResultType::StarttlsNotSupported,
            Failure::TlsHandshake | Failure::TlsVersion => ResultType::ValidationFailure,
            Failure::CertificateExpired { .. } | Failure::ChainCertificateExpired => {
                ResultType::CertificateExpired
            }
            Failure::CertificateNotYetValid { .. } | Failure::CertificateNotTrusted => {
                ResultType::CertificateNotTrusted
            }
            Failure::CertificateHostMismatch => ResultType::CertificateHostMismatch,
            Failure::TlsaInvalid => ResultType::TlsaInvalid,
            Failure::DnssecInvalid => ResultType::DnssecInvalid,
            Failure::DaneRequired => ResultType::DaneRequired,
            Failure::StsPolicyHostNoAddress
            | Failure::StsPolicyUnreachable
            | Failure::StsPolicyRedirect
            | Failure::StsPolicyStatus
            | Failure::StsPolicyContentType
            | Failure::StsPolicyTooLarge
            | Failure::StsPolicyTimeout => ResultType::StsPolicyFetchError,
            Failure::StsWebpkiInvalid => ResultType::StsWebpkiInvalid,
            Failure::StsPolicyInvalid => ResultType::StsPolicyInvalid,
        })
    }

    /// The failure that stands for a result type when only the result type is known (a
    /// received report): the most general failure of that family. `None` for
    /// [`ResultType::Other`].
    pub fn for_result_type(rt: &ResultType) -> Option<Failure> {
        Some(match rt {
            ResultType::StarttlsNotSupported => Failure::StarttlsNotSupported,
            ResultType::CertificateHostMismatch => Failure::CertificateHostMismatch,
            // A report carries no date, so the failure without one stands for it.
            ResultType::CertificateExpired => Failure::ChainCertificateExpired,
            ResultType::CertificateNotTrusted => Failure::CertificateNotTrusted,
            ResultType::ValidationFailure => Failure::TlsHandshake,
            ResultType::TlsaInvalid => Failure::TlsaInvalid,
            ResultType::DnssecInvalid => Failure::DnssecInvalid,
            ResultType::DaneRequired => Failure::DaneRequired,
            ResultType::StsPolicyFetchError => Failure::StsPolicyUnreachable,
            ResultType::StsPolicyInvalid => Failure::StsPolicyInvalid,
            ResultType::StsWebpkiInvalid => Failure::StsWebpkiInvalid,
            ResultType::Other(_) => return None,
        })
    }

    /// The failure that stands for a finding code when only the code is known (a stored
    /// check run): the most general failure with that code. `None` for codes that are not
    /// failures of delivery (a missing record, a warning, an `ok`).
    pub fn for_code(code: Code) -> Option<Failure> {
        Some(match code {
            Code::MxAddress => Failure::MxNoAddress,
            Code::MxUnreachable => Failure::MxUnreachable,
            Code::MxStarttlsMissing => Failure::StarttlsNotSupported,
            Code::MxTlsHandshake => Failure::TlsHandshake,
            Code::MxTlsVersion => Failure::TlsVersion,
            // The stored code carries no date, so the failure without one stands for it.
            Code::MxCertExpired => Failure::ChainCertificateExpired,
            Code::MxCertName => Failure::CertificateHostMismatch,
            Code::MxCertUntrusted => Failure::CertificateNotTrusted,
            Code::DaneTlsaMismatch => Failure::TlsaInvalid,
            Code::DaneDnssecBogus => Failure::DnssecInvalid,
            Code::DaneTlsaMissing => Failure::DaneRequired,
            Code::StsPolicyHost => Failure::StsPolicyHostNoAddress,
            Code::StsPolicyUnreachable => Failure::StsPolicyUnreachable,
            Code::StsPolicyRedirect => Failure::StsPolicyRedirect,
            Code::StsPolicyStatus => Failure::StsPolicyStatus,
            Code::StsPolicyContentType => Failure::StsPolicyContentType,
            Code::StsPolicySize => Failure::StsPolicyTooLarge,
            Code::StsPolicyTimeout => Failure::StsPolicyTimeout,
            Code::StsPolicyWebpki => Failure::StsWebpkiInvalid,
            Code::StsPolicySyntax => Failure::StsPolicyInvalid,
            _ => return None,
        })
    }

    /// `"; senders report certificate-expired"`, or empty when there is no result type: the
    /// tail the checker appends to a message so that it names the word a report will use.
    pub fn senders_report(&self) -> String {
        match self.result_type() {
            Some(rt) => format!("; senders report {rt}"),
            None => String::new(),
        }
    }

    /// A finding for this failure, with its code's standard remedy and reference.
    pub fn finding(
        &self,
        severity: Severity,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding::new(self.code(), severity, subject, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).expect("in range")
    }

    /// Every variant with its code, its result type, and the RFC 8460 §4.3 words (or the
    /// reason there is none) that justify the pairing. The words are checked against the
    /// reference text in `rfc8460_4_3_pairings_quote_the_rfc`.
    const TABLE: &[(&str, &str, Option<&str>, &str)] = &[
        (
            "MxNoAddress",
            "mx.address",
            None,
            "Transient errors due to too-busy networks, TCP timeouts, etc., are not required to be reported.",
        ),
        (
            "MxUnreachable",
            "mx.unreachable",
            None,
            "Transient errors due to too-busy networks, TCP timeouts, etc., are not required to be reported.",
        ),
        (
            "StarttlsNotSupported",
            "mx.starttls.missing",
            Some("starttls-not-supported"),
            "This indicates that the recipient MX did not support STARTTLS.",
        ),
        (
            "TlsHandshake",
            "mx.tls.handshake",
            Some("validation-failure"),
            "This indicates a general failure for a reason not matching a category above.",
        ),
        (
            "TlsVersion",
            "mx.tls.version",
            Some("validation-failure"),
            "When a negotiation failure cannot be categorized into one of the \"Negotiation Failures\" stated above, the reporter SHOULD use the \"validation-failure\" category.",
        ),
        (
            "CertificateExpired",
            "mx.cert.expired",
            Some("certificate-expired"),
            "This indicates that the certificate has expired.",
        ),
        (
            "ChainCertificateExpired",
            "mx.cert.expired",
            Some("certificate-expired"),
            "This indicates that the certificate has expired.",
        ),
        (
            "CertificateNotYetValid",
            "mx.cert.expired",
            Some("certificate-not-trusted"),
            "This is a label that covers multiple certificate-related failures",
        ),
        (
            "CertificateHostMismatch",
            "mx.cert.name",
            Some("certificate-host-mismatch"),
            "if the MX hostname does not match any identities listed in the subject alternative name (SAN)",
        ),
        (
            "CertificateNotTrusted",
            "mx.cert.untrusted",
            Some("certificate-not-trusted"),
            "errors such as untrusted/unknown certification authorities (CAs), certificate name constraints, certificate chain errors, etc.",
        ),
        (
            "TlsaInvalid",
            "dane.tlsa.mismatch",
            Some("tlsa-invalid"),
            "None of the records in the RRset were found to be valid.",
        ),
        (
            "DnssecInvalid",
            "dane.dnssec.bogus",
            Some("dnssec-invalid"),
            "This indicates that no valid records were returned from the recursive resolver.",
        ),
        (
            "DaneRequired",
            "dane.tlsa.missing",
            Some("dane-required"),
            "no DNSSEC-validated TLSA records were present for the MX host that is the subject of the report.",
        ),
        (
            "StsPolicyHostNoAddress",
            "sts.policy.host",
            Some("sts-policy-fetch-error"),
            "This indicates a failure to retrieve an MTA-STS policy",
        ),
        (
            "StsPolicyUnreachable",
            "sts.policy.unreachable",
            Some("sts-policy-fetch-error"),
            "for example, because the policy host is unreachable.",
        ),
        (
            "StsPolicyRedirect",
            "sts.policy.redirect",
            Some("sts-policy-fetch-error"),
            "This indicates a failure to retrieve an MTA-STS policy",
        ),
        (
            "StsPolicyStatus",
            "sts.policy.status",
            Some("sts-policy-fetch-error"),
            "This indicates a failure to retrieve an MTA-STS policy",
        ),
        (
            "StsPolicyContentType",
            "sts.policy.content-type",
            Some("sts-policy-fetch-error"),
            "This indicates a failure to retrieve an MTA-STS policy",
        ),
        (
            "StsPolicyTooLarge",
            "sts.policy.size",
            Some("sts-policy-fetch-error"),
            "This indicates a failure to retrieve an MTA-STS policy",
        ),
        (
            "StsPolicyTimeout",
            "sts.policy.timeout",
            Some("sts-policy-fetch-error"),
            "This indicates a failure to retrieve an MTA-STS policy",
        ),
        (
            "StsWebpkiInvalid",
            "sts.policy.webpki",
            Some("sts-webpki-invalid"),
            "This indicates that the MTA-STS Policy could not be authenticated using PKIX validation.",
        ),
        (
            "StsPolicyInvalid",
            "sts.policy.syntax",
            Some("sts-policy-invalid"),
            "This indicates a validation error for the overall MTA-STS Policy.",
        ),
    ];

    fn every_variant() -> Vec<Failure> {
        vec![
            Failure::MxNoAddress,
            Failure::MxUnreachable,
            Failure::StarttlsNotSupported,
            Failure::TlsHandshake,
            Failure::TlsVersion,
            Failure::CertificateExpired { not_after: t(0) },
            Failure::ChainCertificateExpired,
            Failure::CertificateNotYetValid { not_before: t(0) },
            Failure::CertificateHostMismatch,
            Failure::CertificateNotTrusted,
            Failure::TlsaInvalid,
            Failure::DnssecInvalid,
            Failure::DaneRequired,
            Failure::StsPolicyHostNoAddress,
            Failure::StsPolicyUnreachable,
            Failure::StsPolicyRedirect,
            Failure::StsPolicyStatus,
            Failure::StsPolicyContentType,
            Failure::StsPolicyTooLarge,
            Failure::StsPolicyTimeout,
            Failure::StsWebpkiInvalid,
            Failure::StsPolicyInvalid,
        ]
    }

    /// Compares RFC text with the line breaks and page breaks of the `.txt` form removed.
    fn flat(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn rfc8460_4_3_every_failure_maps_to_one_code_and_its_result_type() {
        let all = every_variant();
        assert_eq!(all.len(), TABLE.len(), "every variant is in the table");
        for (failure, (name, code, rt, _)) in all.iter().zip(TABLE) {
            let debug = format!("{failure:?}");
            assert!(debug.starts_with(name), "{debug} vs {name}");
            assert_eq!(failure.code().as_str(), *code, "{name}");
            assert_eq!(
                failure.result_type().map(|r| r.to_string()).as_deref(),
                *rt,
                "{name}"
            );
            let f = failure.finding(Severity::Error, "mx.example.com", "m");
            assert_eq!(f.code.as_str(), *code);
            assert_eq!(f.reference, failure.code().reference());
            match rt {
                Some(rt) => assert_eq!(failure.senders_report(), format!("; senders report {rt}")),
                None => assert!(failure.senders_report().is_empty()),
            }
        }
    }

    /// The words each pairing rests on appear in RFC 8460 as written (checked against
    /// `shared/reference/rfc8460.txt` when it is there).
    #[test]
    fn every_failure_code_maps_back_to_a_failure_of_that_code_and_result_type() {
        for failure in every_variant() {
            let back = Failure::for_code(failure.code()).expect("a failure's code maps back");
            assert_eq!(back.code(), failure.code(), "{failure:?}");
            // `mx.cert.expired` also stands for a leaf not valid yet (certificate-not-trusted);
            // the code alone stands for the expired one, whose result type is among them.
            let types: Vec<_> = every_variant()
                .iter()
                .filter(|f| f.code() == failure.code())
                .map(Failure::result_type)
                .collect();
            assert!(types.contains(&back.result_type()), "{failure:?}");
        }
        let codes: Vec<Code> = every_variant().iter().map(Failure::code).collect();
        for code in Code::ALL {
            assert_eq!(
                Failure::for_code(*code).is_some(),
                codes.contains(code),
                "{code:?}: only failure codes map to a failure"
            );
        }
    }

    #[test]
    fn rfc8460_4_3_pairings_quote_the_rfc() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/reference/rfc8460.txt"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "RFC 8460 text missing at {path}"
            );
            return;
        };
        let rfc = flat(&text);
        for (name, _, rt, words) in TABLE {
            assert!(
                rfc.contains(&flat(words)),
                "{name}: {words:?} not in RFC 8460"
            );
            if let Some(rt) = rt {
                assert!(rfc.contains(&format!("\"{rt}\":")), "{rt}");
            }
        }
    }

    #[test]
    fn rfc8460_4_3_every_known_result_type_has_a_failure_that_maps_back() {
        for rt in ResultType::KNOWN {
            let f = Failure::for_result_type(&rt).expect("known result type");
            assert_eq!(f.result_type(), Some(rt.clone()), "{rt}");
            assert_eq!(rt.finding_code(), Some(f.code()), "{rt}");
        }
        assert_eq!(
            Failure::for_result_type(&ResultType::Other("x".into())),
            None
        );
    }
}
