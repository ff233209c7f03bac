//! RFC 8460 §4.3 — result types, and RFC 8460 §4.4 — policy types
//!
//! The result types are registered in IANA's "STARTTLS Validation Result Types" registry
//! (RFC 8460 §6.6). The mapping between an observed failure, its result type and its finding
//! code lives in [`crate::failure`]; [`ResultType::finding_code`] reads it.
//!
//! ```text
//! §4.3.1    negotiation failures:  starttls-not-supported, certificate-host-mismatch,
//!                                  certificate-expired, certificate-not-trusted,
//!                                  validation-failure
//! §4.3.2.1  DANE policy failures:  tlsa-invalid, dnssec-invalid, dane-required
//! §4.3.2.2  MTA-STS policy failures: sts-policy-fetch-error, sts-policy-invalid,
//!                                  sts-webpki-invalid
//! §4.3.3    general failures:      validation-failure (when nothing above fits)
//! ```

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use crate::failure::Failure;
use crate::finding::Code;

/// A TLS-RPT result type (RFC 8460 §4.3). Unknown strings are kept in [`ResultType::Other`]
/// exactly as received, so that re-serialising reproduces them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResultType {
    /// `starttls-not-supported` (RFC 8460 §4.3.1).
    StarttlsNotSupported,
    /// `certificate-host-mismatch` (RFC 8460 §4.3.1).
    CertificateHostMismatch,
    /// `certificate-expired` (RFC 8460 §4.3.1).
    CertificateExpired,
    /// `certificate-not-trusted` (RFC 8460 §4.3.1).
    CertificateNotTrusted,
    /// `validation-failure` (RFC 8460 §4.3.1, §4.3.3).
    ValidationFailure,
    /// `tlsa-invalid` (RFC 8460 §4.3.2.1).
    TlsaInvalid,
    /// `dnssec-invalid` (RFC 8460 §4.3.2.1).
    DnssecInvalid,
    /// `dane-required` (RFC 8460 §4.3.2.1).
    DaneRequired,
    /// `sts-policy-fetch-error` (RFC 8460 §4.3.2.2).
    StsPolicyFetchError,
    /// `sts-policy-invalid` (RFC 8460 §4.3.2.2).
    StsPolicyInvalid,
    /// `sts-webpki-invalid` (RFC 8460 §4.3.2.2).
    StsWebpkiInvalid,
    /// Any other string, kept verbatim (RFC 8460 §6.6 lets the registry grow).
    Other(String),
}

impl ResultType {
    /// The eleven result types RFC 8460 §4.3 defines, in the RFC's order.
    pub const KNOWN: [ResultType; 11] = [
        ResultType::StarttlsNotSupported,
        ResultType::CertificateHostMismatch,
        ResultType::CertificateExpired,
        ResultType::CertificateNotTrusted,
        ResultType::ValidationFailure,
        ResultType::TlsaInvalid,
        ResultType::DnssecInvalid,
        ResultType::DaneRequired,
        ResultType::StsPolicyFetchError,
        ResultType::StsPolicyInvalid,
        ResultType::StsWebpkiInvalid,
    ];

    /// The string as it appears in a report (RFC 8460 §4.3).
    pub fn as_str(&self) -> &str {
        match self {
            ResultType::StarttlsNotSupported => "starttls-not-supported",
            ResultType::CertificateHostMismatch => "certificate-host-mismatch",
            ResultType::CertificateExpired => "certificate-expired",
            ResultType::CertificateNotTrusted => "certificate-not-trusted",
            ResultType::ValidationFailure => "validation-failure",
            ResultType::TlsaInvalid => "tlsa-invalid",
            ResultType::DnssecInvalid => "dnssec-invalid",
            ResultType::DaneRequired => "dane-required",
            ResultType::StsPolicyFetchError => "sts-policy-fetch-error",
            ResultType::StsPolicyInvalid => "sts-policy-invalid",
            ResultType::StsWebpkiInvalid => "sts-webpki-invalid",
            ResultType::Other(s) => s,
        }
    }

    /// Whether RFC 8460 §4.3 defines this result type.
    pub fn is_known(&self) -> bool {
        !matches!(self, ResultType::Other(_))
    }

    /// The RFC 8460 section that defines this result type (empty for [`ResultType::Other`]).
    pub fn section(&self) -> &'static str {
        match self {
            ResultType::StarttlsNotSupported
            | ResultType::CertificateHostMismatch
            | ResultType::CertificateExpired
            | ResultType::CertificateNotTrusted
            | ResultType::ValidationFailure => "RFC 8460 §4.3.1",
            ResultType::TlsaInvalid | ResultType::DnssecInvalid | ResultType::DaneRequired => {
                "RFC 8460 §4.3.2.1"
            }
            ResultType::StsPolicyFetchError
            | ResultType::StsPolicyInvalid
            | ResultType::StsWebpkiInvalid => "RFC 8460 §4.3.2.2",
            ResultType::Other(_) => "",
        }
    }

    /// What the failure means, in one plain sentence for a mail administrator.
    pub fn meaning(&self) -> &'static str {
        match self {
            ResultType::StarttlsNotSupported => {
                "Your mail server did not offer STARTTLS, so the sender could not encrypt the connection."
            }
            ResultType::CertificateHostMismatch => {
                "Your mail server's certificate does not name the MX host the sender connected to."
            }
            ResultType::CertificateExpired => {
                "Your mail server presented a certificate that had expired (or was not yet valid)."
            }
            ResultType::CertificateNotTrusted => {
                "The sender could not build a trusted chain for your mail server's certificate: self-signed, unknown CA, or missing intermediates."
            }
            ResultType::ValidationFailure => {
                "The TLS connection to your mail server failed for a reason that fits no more specific category; the failure reason code says more."
            }
            ResultType::TlsaInvalid => {
                "None of your TLSA records matched the certificate chain your mail server presented."
            }
            ResultType::DnssecInvalid => {
                "The sender's resolver could not validate DNSSEC for your MX or TLSA records, so it got no usable answer."
            }
            ResultType::DaneRequired => {
                "The sender insists on DANE for your domain, but found no DNSSEC-validated TLSA records for this MX host."
            }
            ResultType::StsPolicyFetchError => {
                "The sender could not download your MTA-STS policy from https://mta-sts.<domain>/.well-known/mta-sts.txt."
            }
            ResultType::StsPolicyInvalid => {
                "The sender downloaded your MTA-STS policy but could not parse or accept it."
            }
            ResultType::StsWebpkiInvalid => {
                "The HTTPS certificate of your policy host mta-sts.<domain> failed validation, so the sender could not trust the policy."
            }
            ResultType::Other(_) => {
                "A failure type that RFC 8460 does not define; read the failure reason code and ask the sending organisation what it means."
            }
        }
    }

    /// What to do about it, concretely.
    pub fn remedy(&self) -> &'static str {
        match self {
            ResultType::StarttlsNotSupported => {
                "Enable STARTTLS on every MX host with a certificate from a public CA (Postfix: smtpd_tls_security_level = may, plus smtpd_tls_chain_files), and make sure no firewall or proxy strips STARTTLS from the EHLO reply."
            }
            ResultType::CertificateHostMismatch => {
                "Reissue the certificate so its subjectAltName lists every MX host name exactly as published in your MX records (or a wildcard covering them), and check that each MX name is covered by an mx: line in your policy."
            }
            ResultType::CertificateExpired => {
                "Renew the mail server's certificate now, reload the mail server so it serves the new one, and automate renewal (for example with ACME) with an expiry alert."
            }
            ResultType::CertificateNotTrusted => {
                "Use a certificate from a publicly trusted CA and configure the full chain (leaf followed by intermediates) on the mail server; self-signed certificates fail MTA-STS."
            }
            ResultType::ValidationFailure => {
                "Read the failure reason code in the report, then test the MX with an SMTP TLS checker: TLS 1.2 or later, modern ciphers, matching key and certificate, and a complete chain."
            }
            ResultType::TlsaInvalid => {
                "Publish TLSA records at _25._tcp.<mx host> that match the certificate or key in use (\"3 1 1\" over the public key is the usual choice), and publish the next key's record before every rollover."
            }
            ResultType::DnssecInvalid => {
                "Repair the DNSSEC chain of the zone: DS record at the parent matching your DNSKEY, signatures not expired, and every authoritative server serving the signed zone."
            }
            ResultType::DaneRequired => {
                "Sign the MX host's zone with DNSSEC and publish TLSA records at _25._tcp.<mx host>, or agree with this sender to stop requiring DANE for your domain."
            }
            ResultType::StsPolicyFetchError => {
                "Make https://mta-sts.<domain>/.well-known/mta-sts.txt answer 200 with text/plain from the public Internet, without redirects, within a few seconds; check DNS for mta-sts.<domain> and port 443."
            }
            ResultType::StsPolicyInvalid => {
                "Lint the policy file: \"version: STSv1\" first, a valid mode and max_age, one \"mx:\" line per MX host, \"key: value\" lines only, plain UTF-8 without a byte-order mark; then change the id in the _mta-sts TXT record."
            }
            ResultType::StsWebpkiInvalid => {
                "Install a certificate from a public CA that is valid now and names mta-sts.<domain>, with its full chain, on the policy host, and automate its renewal."
            }
            ResultType::Other(_) => {
                "No standard remedy: look at the failure reason code and additional information in the report, and contact the reporting organisation if it stays unclear."
            }
        }
    }

    /// The finding code the checker reports for the same failure (`spec/findings.md`), read
    /// from stsward's one failure mapping ([`crate::failure::Failure`]) through the most
    /// general failure of this result type. `None` for [`ResultType::Other`].
    pub fn finding_code(&self) -> Option<Code> {
        Failure::for_result_type(self).map(|f| f.code())
    }
}

impl FromStr for ResultType {
    type Err = Infallible;

    /// Exact, case-sensitive match; anything else becomes [`ResultType::Other`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ResultType::KNOWN
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or_else(|| ResultType::Other(s.to_owned())))
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of policy a report section is about (RFC 8460 §4.4 `policy-type`). Unknown strings
/// are kept in [`PolicyType::Other`] exactly as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyType {
    /// `sts`: an MTA-STS policy (RFC 8461).
    Sts,
    /// `tlsa`: a DANE TLSA policy (RFC 7672).
    Tlsa,
    /// `no-policy-found`: neither applied; the sessions used opportunistic TLS.
    NoPolicyFound,
    /// Any other string, kept verbatim.
    Other(String),
}

impl PolicyType {
    /// The string as it appears in a report.
    pub fn as_str(&self) -> &str {
        match self {
            PolicyType::Sts => "sts",
            PolicyType::Tlsa => "tlsa",
            PolicyType::NoPolicyFound => "no-policy-found",
            PolicyType::Other(s) => s,
        }
    }

    /// Whether RFC 8460 §4.4 defines this policy type.
    pub fn is_known(&self) -> bool {
        !matches!(self, PolicyType::Other(_))
    }
}

impl FromStr for PolicyType {
    type Err = Infallible;

    /// Exact, case-sensitive match; anything else becomes [`PolicyType::Other`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "sts" => PolicyType::Sts,
            "tlsa" => PolicyType::Tlsa,
            "no-policy-found" => PolicyType::NoPolicyFound,
            other => PolicyType::Other(other.to_owned()),
        })
    }
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8460_4_3_every_known_result_type_round_trips() {
        for rt in ResultType::KNOWN {
            let s = rt.to_string();
            assert_eq!(s.parse::<ResultType>(), Ok(rt.clone()));
            assert!(rt.is_known());
            assert!(rt.section().starts_with("RFC 8460 §4.3"), "{s}");
            assert!(rt.finding_code().is_some(), "{s}");
            assert!(!rt.meaning().is_empty() && !rt.remedy().is_empty(), "{s}");
        }
    }

    #[test]
    fn rfc8460_4_3_unknown_result_types_keep_their_text() {
        for s in ["Testing", "Certificate-Expired", "", "sts-invalid"] {
            let rt: ResultType = s.parse().unwrap();
            assert_eq!(rt, ResultType::Other(s.to_owned()));
            assert_eq!(rt.to_string(), s);
            assert_eq!(rt.finding_code(), None);
        }
    }

    #[test]
    fn rfc8460_4_3_maps_to_the_checkers_finding_codes() {
        let table = [
            ("starttls-not-supported", "mx.starttls.missing"),
            ("certificate-host-mismatch", "mx.cert.name"),
            ("certificate-expired", "mx.cert.expired"),
            ("certificate-not-trusted", "mx.cert.untrusted"),
            ("validation-failure", "mx.tls.handshake"),
            ("tlsa-invalid", "dane.tlsa.mismatch"),
            ("dnssec-invalid", "dane.dnssec.bogus"),
            ("dane-required", "dane.tlsa.missing"),
            ("sts-policy-fetch-error", "sts.policy.unreachable"),
            ("sts-policy-invalid", "sts.policy.syntax"),
            ("sts-webpki-invalid", "sts.policy.webpki"),
        ];
        for (rt, code) in table {
            let rt: ResultType = rt.parse().unwrap();
            assert_eq!(rt.finding_code().map(Code::as_str), Some(code), "{rt}");
        }
    }

    #[test]
    fn rfc8460_4_4_policy_types_round_trip() {
        for (s, want) in [
            ("sts", PolicyType::Sts),
            ("tlsa", PolicyType::Tlsa),
            ("no-policy-found", PolicyType::NoPolicyFound),
            (
                "invalid-policy-type",
                PolicyType::Other("invalid-policy-type".into()),
            ),
            ("STS", PolicyType::Other("STS".into())),
        ] {
            let got: PolicyType = s.parse().unwrap();
            assert_eq!(got, want);
            assert_eq!(got.to_string(), s);
        }
    }
}
