//! The findings vocabulary — `shared/spec/findings.md`
//!
//! Every problem, and every passed check, that stsward reports is a [`Finding`] with a stable
//! [`Code`]. Codes are public API: once released a code keeps its meaning. Each code has one
//! reference (the RFC section it enforces) and one standard remedy, kept here so that the
//! linter, the checker, the resolver and the dashboard all say the same thing.
//!
//! ```text
//! finding  = code severity subject message remedy reference
//! severity = "ok" / "info" / "warning" / "error"      ; ordered, worst last
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad a finding is (`spec/findings.md`). Ordered: `Ok < Info < Warning < Error`, so the
/// verdict of a set of findings is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A check that passed.
    Ok,
    /// Worth knowing, nothing to fix.
    Info,
    /// Works today, but fragile or about to break.
    Warning,
    /// Mail can fail, or the protection does not work as the owner thinks.
    Error,
}

impl Severity {
    /// The lowercase name used in JSON and text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a string names no known severity or code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    /// What kind of name was expected (`"severity"`, `"finding code"`).
    pub what: &'static str,
    /// The string that was given.
    pub value: String,
}

impl FromStr for Severity {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ok" => Severity::Ok,
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "error" => Severity::Error,
            _ => {
                return Err(UnknownName {
                    what: "severity",
                    value: s.to_owned(),
                });
            }
        })
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $reference:literal, $remedy:literal; )*) => {
        /// A stable finding code (`spec/findings.md`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in the order of the spec.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The dotted name, e.g. `sts.policy.max-age`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $name, )* }
            }

            /// The RFC section this code enforces, e.g. `RFC 8461 §3.2`.
            pub fn reference(self) -> &'static str {
                match self { $( Code::$variant => $reference, )* }
            }

            /// The standard remedy: what to do, concretely. Empty for `ok` codes.
            pub fn remedy(self) -> &'static str {
                match self { $( Code::$variant => $remedy, )* }
            }
        }

        impl FromStr for Code {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $name => Ok(Code::$variant), )*
                    _ => Err(UnknownName { what: "finding code", value: s.to_owned() }),
                }
            }
        }
    };
}

codes! {
    // ---- `_mta-sts` TXT record (RFC 8461 §3.1) ----
    /// Exactly one valid `v=STSv1` record.
    StsTxtOk = "sts.txt.ok", "RFC 8461 §3.1", "";
    /// No `v=STSv1` record.
    StsTxtMissing = "sts.txt.missing", "RFC 8461 §3.1",
        "Publish one TXT record at _mta-sts.<domain>: \"v=STSv1; id=<1-32 letters or digits>;\".";
    /// More than one `v=STSv1` record.
    StsTxtMultiple = "sts.txt.multiple", "RFC 8461 §3.1",
        "Delete all but one v=STSv1 TXT record at _mta-sts.<domain>; senders ignore the policy while there are several.";
    /// The record does not parse.
    StsTxtSyntax = "sts.txt.syntax", "RFC 8461 §3.1",
        "Rewrite the record as \"v=STSv1; id=<id>;\": fields are name=value pairs separated by \";\".";
    /// A field (`v`, `id`, an extension) given twice in the record: senders use the first.
    StsTxtDuplicate = "sts.txt.duplicate", "RFC 8461 §3.2",
        "Remove the repeated field so that the record reads \"v=STSv1; id=<id>;\"; senders use only the first of each field and ignore the rest.";
    /// `v=` not exactly `STSv1`, or not the first field.
    StsTxtVersion = "sts.txt.version", "RFC 8461 §3.1",
        "Make \"v=STSv1\" the very first field of the record, spelled exactly so.";
    /// `id` missing or not 1–32 alphanumerics.
    StsTxtId = "sts.txt.id", "RFC 8461 §3.1",
        "Set id= to 1-32 letters and digits only (for example a timestamp like 20240131T120000), and change it whenever the policy changes.";
    /// An extension field in the record (kept, ignored by senders).
    StsTxtExtension = "sts.txt.extension", "RFC 8461 §3.1",
        "Nothing to fix; senders ignore fields they do not know. Remove it if it is a typo of v or id.";
    /// Other TXT strings at the same name.
    StsTxtUnrelated = "sts.txt.unrelated", "RFC 8461 §3.1",
        "Nothing to fix; senders ignore TXT records that do not begin with v=STSv1. Consider removing stray records.";
    /// SERVFAIL, timeout, a CNAME loop/over-long chain, or a DNSSEC-bogus answer.
    StsTxtLookup = "sts.txt.lookup", "RFC 8461 §3.1",
        "Make _mta-sts.<domain> resolve reliably: fix the authoritative servers, DNSSEC, or the CNAME chain.";

    // ---- Policy fetch (RFC 8461 §3.3) ----
    /// The policy was fetched over HTTPS as RFC 8461 §3.3 requires.
    StsPolicyFetched = "sts.policy.fetched", "RFC 8461 §3.3", "";
    /// `mta-sts.<domain>` has no address.
    StsPolicyHost = "sts.policy.host", "RFC 8461 §3.3",
        "Publish an A and/or AAAA record (or a CNAME to your policy host) for mta-sts.<domain>.";
    /// No TCP/TLS connection to port 443.
    StsPolicyUnreachable = "sts.policy.unreachable", "RFC 8461 §3.3",
        "Make the policy host answer HTTPS on port 443 from the Internet (firewall, web server, load balancer).";
    /// The policy host's certificate is untrusted, expired, or for another name.
    StsPolicyWebpki = "sts.policy.webpki", "RFC 8461 §3.3",
        "Install a certificate from a public CA that is valid now and names mta-sts.<domain>, with the full chain.";
    /// The policy host's certificate expires within 14 days.
    StsPolicyCertExpiring = "sts.policy.cert-expiring", "RFC 8461 §3.3",
        "Renew the certificate of mta-sts.<domain> now, and automate renewal (ACME).";
    /// A 3xx answer.
    StsPolicyRedirect = "sts.policy.redirect", "RFC 8461 §3.3",
        "Serve the policy directly at https://mta-sts.<domain>/.well-known/mta-sts.txt with status 200; senders do not follow redirects.";
    /// Any non-200 answer.
    StsPolicyStatus = "sts.policy.status", "RFC 8461 §3.3",
        "Serve the policy at /.well-known/mta-sts.txt with HTTP status 200.";
    /// Media type is not `text/plain`.
    StsPolicyContentType = "sts.policy.content-type", "RFC 8461 §3.2",
        "Serve the policy file with \"Content-Type: text/plain\".";
    /// Body larger than 64 KiB.
    StsPolicySize = "sts.policy.size", "RFC 8461 §3.3",
        "Shrink the policy file below 64 KiB; it needs only version, mode, max_age and mx lines.";
    /// No complete answer within the fetch timeout.
    StsPolicyTimeout = "sts.policy.timeout", "RFC 8461 §3.3",
        "Make the policy host answer within a few seconds; senders give up after about a minute at most.";

    // ---- Policy content (RFC 8461 §3.2) ----
    /// The policy content is valid.
    StsPolicyValid = "sts.policy.valid", "RFC 8461 §3.2", "";
    /// A line is not `key: value`.
    StsPolicySyntax = "sts.policy.syntax", "RFC 8461 §3.2",
        "Write every line as \"key: value\" (for example \"mode: enforce\"); remove comments and other text.";
    /// `version` missing or not `STSv1`.
    StsPolicyVersion = "sts.policy.version", "RFC 8461 §3.2",
        "Make the first line exactly \"version: STSv1\".";
    /// `mode` missing or not one of the three modes.
    StsPolicyMode = "sts.policy.mode", "RFC 8461 §3.2",
        "Set \"mode: testing\" while you watch TLS reports, then \"mode: enforce\"; \"mode: none\" withdraws the policy.";
    /// Mode is `testing`.
    StsPolicyModeTesting = "sts.policy.mode-testing", "RFC 8461 §5",
        "Watch TLS-RPT reports; when they show no failures, switch to \"mode: enforce\" and change the TXT id.";
    /// Mode is `none`.
    StsPolicyModeNone = "sts.policy.mode-none", "RFC 8461 §8.3",
        "If you did not mean to withdraw MTA-STS, set \"mode: testing\" or \"mode: enforce\" and change the TXT id.";
    /// `max_age` missing, not an integer, or too large.
    StsPolicyMaxAge = "sts.policy.max-age", "RFC 8461 §3.2",
        "Set max_age to a whole number of seconds no larger than 31557600, for example \"max_age: 1209600\" (two weeks).";
    /// `max_age` below one day.
    StsPolicyMaxAgeShort = "sts.policy.max-age-short", "RFC 8461 §3.2",
        "Raise max_age to at least 86400, better several weeks (1209600 or more), so that senders keep the policy.";
    /// No `mx` line while mode is not `none`.
    StsPolicyMxMissing = "sts.policy.mx-missing", "RFC 8461 §3.2",
        "Add one \"mx: <host>\" line for every MX host (or a \"*.example.com\" wildcard covering them).";
    /// An `mx` value that no MX host can match.
    StsPolicyMxInvalid = "sts.policy.mx-invalid", "RFC 8461 §3.2",
        "Use a plain host name, or \"*.\" followed by a domain as the leftmost label only; no IP addresses, ports or spaces.";
    /// The same `mx` pattern listed twice.
    StsPolicyMxDuplicate = "sts.policy.mx-duplicate", "RFC 8461 §3.2",
        "Remove the repeated mx line; it does no harm but suggests a copy-paste slip.";
    /// A key other than `mx` given twice.
    StsPolicyDuplicate = "sts.policy.duplicate", "RFC 8461 §3.2",
        "Keep exactly one line for version, mode and max_age.";
    /// An extension key.
    StsPolicyUnknownKey = "sts.policy.unknown-key", "RFC 8461 §3.2",
        "Nothing to fix if intended; senders ignore unknown keys. Check it is not a misspelled version, mode, max_age or mx.";
    /// LF instead of CRLF.
    StsPolicyLineEndings = "sts.policy.line-endings", "RFC 8461 §3.2",
        "Nothing to fix; senders accept LF. CRLF is the canonical form.";
    /// Blank lines inside or around the policy.
    StsPolicyBlankLine = "sts.policy.blank-line", "RFC 8461 §3.2",
        "Remove empty lines from the policy file; strict senders reject lines that are not key: value.";
    /// A byte-order mark or other bytes before `version`.
    StsPolicyBom = "sts.policy.bom", "RFC 8461 §3.2",
        "Save the file as plain UTF-8 without a byte-order mark, starting directly with \"version: STSv1\".";

    // ---- Policy versus MX records (RFC 8461 §4.1) ----
    /// Every MX host matches an `mx` pattern.
    StsMxCovered = "sts.mx.covered", "RFC 8461 §4.1", "";
    /// An MX host matches no `mx` pattern.
    StsMxUncovered = "sts.mx.uncovered", "RFC 8461 §4.1",
        "Add an \"mx:\" line for this host to the policy (and change the TXT id), or remove the host from the MX records.";
    /// An `mx` pattern matches no current MX host.
    StsMxStale = "sts.mx.stale", "RFC 8461 §4.1",
        "Remove the pattern from the policy if the host is gone (and change the TXT id), or restore the MX record.";
    /// The domain has no MX records.
    StsMxNone = "sts.mx.none", "RFC 5321 §5.1",
        "Publish MX records for the domain; without them senders fall back to the domain's own address.";
    /// The MX lookup failed.
    StsMxLookup = "sts.mx.lookup", "RFC 5321 §5.1",
        "Make the MX records of the domain resolve reliably (authoritative servers, DNSSEC).";
    /// The policy changed but the TXT `id` did not.
    StsIdNotRotated = "sts.id.not-rotated", "RFC 8461 §3.1",
        "Change the id in the _mta-sts TXT record every time the policy file changes, or senders keep the old policy.";

    // ---- Each MX host (RFC 8461 §4.2, RFC 3207) ----
    /// The MX host has no address.
    MxAddress = "mx.address", "RFC 5321 §5.1",
        "Publish A and/or AAAA records for the MX host, or remove the MX record.";
    /// No SMTP connection to any address of the host.
    MxUnreachable = "mx.unreachable", "RFC 5321 §5.1",
        "Make the host accept SMTP on port 25 from the Internet (firewall, service running).";
    /// Every SMTP connection of the check timed out at TCP connect: outbound port 25 looks
    /// blocked from the machine running the check, so the MX verdicts say little.
    MxPort25Blocked = "mx.port25.blocked", "RFC 5321 §5.1",
        "Run the check from a machine that may connect out to port 25 (many cloud providers and ISPs block it; ask them to lift the block, or use another host).";
    /// Every IPv6 connection of the check failed at connect while IPv4 worked: this machine
    /// has no working IPv6 route, so the IPv6 verdicts say little.
    MxIpv6Unreachable = "mx.ipv6.unreachable", "RFC 5321 §5.1",
        "Run the check from a machine with working IPv6 to verify the MX hosts' IPv6 addresses.";
    /// A tenant's check did not connect to an address of the policy host or an MX host:
    /// it is loopback, private, link-local, shared, multicast or otherwise not globally
    /// reachable (the special-purpose registries of RFC 6890), which senders on the
    /// Internet cannot reach either.
    NetAddressRefused = "net.address.refused", "RFC 6890",
        "Point the record at a globally reachable address; senders on the Internet cannot connect to this one. (An operator can allow the range for a lab with [checks] allow_ranges.)";
    /// EHLO offers STARTTLS.
    MxStarttlsOk = "mx.starttls.ok", "RFC 3207", "";
    /// EHLO does not offer STARTTLS.
    MxStarttlsMissing = "mx.starttls.missing", "RFC 3207",
        "Enable STARTTLS on the mail server with a valid certificate (Postfix: smtpd_tls_security_level = may).";
    /// The TLS handshake succeeded with TLS 1.2 or later.
    MxTlsOk = "mx.tls.ok", "RFC 8461 §7.2", "";
    /// STARTTLS offered but the handshake fails.
    MxTlsHandshake = "mx.tls.handshake", "RFC 8461 §4",
        "Fix the server's TLS configuration: certificate and key must match, and TLS 1.2 or 1.3 with modern ciphers must be enabled.";
    /// The best TLS version offered is below 1.2.
    MxTlsVersion = "mx.tls.version", "RFC 8461 §7.2",
        "Enable TLS 1.2 and TLS 1.3 on the mail server; MTA-STS senders refuse older versions.";
    /// TLS 1.0/1.1 accepted alongside 1.2+.
    MxTlsLegacy = "mx.tls.legacy", "RFC 8996",
        "Consider disabling TLS 1.0 and 1.1; they are deprecated.";
    /// The certificate is trusted, valid now and names the host.
    MxCertOk = "mx.cert.ok", "RFC 8461 §4.2", "";
    /// Certificate outside its validity period.
    MxCertExpired = "mx.cert.expired", "RFC 8461 §4.2",
        "Renew the mail server's certificate now and reload the server; automate renewal.";
    /// Certificate expires within 14 days.
    MxCertExpiring = "mx.cert.expiring", "RFC 8461 §4.2",
        "Renew the mail server's certificate before it expires and reload the server.";
    /// Certificate not valid for the MX host name.
    MxCertName = "mx.cert.name", "RFC 8461 §4.2",
        "Use a certificate whose subjectAltName includes the MX host name exactly as published in DNS.";
    /// Self-signed, unknown CA, or incomplete chain.
    MxCertUntrusted = "mx.cert.untrusted", "RFC 8461 §4.2",
        "Use a certificate from a public CA and configure the full chain (leaf plus intermediates).";

    // ---- DANE (RFC 7672) ----
    /// A usable TLSA record matches the presented chain.
    DaneTlsaOk = "dane.tlsa.ok", "RFC 7672 §3.2", "";
    /// No TLSA record.
    DaneTlsaMissing = "dane.tlsa.missing", "RFC 7672 §2.2",
        "Optional: with DNSSEC-signed zones, publish \"3 1 1\" TLSA records at _25._tcp.<mx host>.";
    /// TLSA present but not DNSSEC-validated.
    DaneTlsaInsecure = "dane.tlsa.insecure", "RFC 7672 §2.2",
        "Sign the zone of the MX host with DNSSEC, or remove the TLSA records; senders ignore them unsigned.";
    /// No usable TLSA record matches (RFC 7672 §3.2: "Messages MUST NOT be delivered via the
    /// SMTP server if authentication fails").
    DaneTlsaMismatch = "dane.tlsa.mismatch", "RFC 7672 §3.2",
        "Publish TLSA records that match the certificate now in use (and the next one before rolling it over).";
    /// Records SMTP senders cannot use: PKIX-TA/PKIX-EE usages (RFC 7672 §3.1.3: "SMTP
    /// clients MAY treat such records as "unusable""), or unknown parameters.
    DaneTlsaUsage = "dane.tlsa.usage", "RFC 7672 §3.1.3",
        "Use usage 3 (DANE-EE) or 2 (DANE-TA); RFC 7672 says SMTP servers SHOULD NOT publish usages 0 and 1, and senders MAY treat them as unusable.";
    /// DNSSEC validation fails.
    DaneDnssecBogus = "dane.dnssec.bogus", "RFC 7672 §2.1.1",
        "Fix the DNSSEC chain of the zone (DS at the parent, valid signatures, not expired).";
    /// The TLSA lookup failed without being bogus (SERVFAIL, timeout, REFUSED, a CNAME loop;
    /// RFC 7672 §2.1.3: an error at any stage of CNAME expansion fails the lookup). RFC 7672
    /// §2.2: "Any lookup error: ... MUST result in falling back to the next SMTP server or
    /// delayed delivery".
    DaneTlsaLookup = "dane.tlsa.lookup", "RFC 7672 §2.2",
        "Make the MX host's name servers answer TLSA queries for _25._tcp.<mx host>, with an empty (NODATA) answer when there is no record.";

    // ---- The resolver (RFC 4035 §4.3 states, as RFC 7672 §2.1.1 uses them) ----
    /// DNSSEC validation was not possible: the resolver passes no DNSSEC records (or
    /// validation is switched off), so every answer is "indeterminate" and DANE is unknown.
    DnsDnssecUnavailable = "dns.dnssec.unavailable", "RFC 7672 §2.1.1",
        "Nothing to fix in the domain. To get DANE results, check through a DNSSEC-validating resolver, or one that passes DNSSEC records through (for example a local unbound), with --resolver.";

    // ---- `_smtp._tls` TXT record (RFC 8460 §3) ----
    /// Exactly one valid `v=TLSRPTv1` record.
    TlsrptTxtOk = "tlsrpt.txt.ok", "RFC 8460 §3", "";
    /// No `v=TLSRPTv1` record.
    TlsrptTxtMissing = "tlsrpt.txt.missing", "RFC 8460 §3",
        "Publish a TXT record at _smtp._tls.<domain>: \"v=TLSRPTv1; rua=mailto:tls-reports@<domain>\".";
    /// More than one `v=TLSRPTv1` record.
    TlsrptTxtMultiple = "tlsrpt.txt.multiple", "RFC 8460 §3",
        "Merge into one v=TLSRPTv1 record; several rua URIs go in one rua= separated by commas.";
    /// The record does not parse, or `v=` is not `TLSRPTv1`.
    TlsrptTxtSyntax = "tlsrpt.txt.syntax", "RFC 8460 §3",
        "Rewrite the record as \"v=TLSRPTv1; rua=mailto:<address>\".";
    /// An extension field in the record.
    TlsrptTxtExtension = "tlsrpt.txt.extension", "RFC 8460 §3",
        "Nothing to fix; senders ignore fields they do not know. Check it is not a misspelled rua.";
    /// The lookup failed.
    TlsrptTxtLookup = "tlsrpt.txt.lookup", "RFC 8460 §3",
        "Make _smtp._tls.<domain> resolve reliably: fix the authoritative servers, DNSSEC, or the CNAME chain.";
    /// No `rua`.
    TlsrptRuaMissing = "tlsrpt.rua.missing", "RFC 8460 §3",
        "Add rua=mailto:<address> (or rua=https://<url>) to the record.";
    /// `rua` given more than once in one record.
    TlsrptRuaDuplicate = "tlsrpt.rua.duplicate", "RFC 8460 §3",
        "Put every URI in one rua= field, separated by commas (rua=mailto:a@example.com,https://r.example.com/x); senders differ in which of several rua fields they use.";
    /// An rua URI that is not a valid `mailto:` or `https:` URI.
    TlsrptRuaInvalid = "tlsrpt.rua.invalid", "RFC 8460 §3",
        "Use rua=mailto:user@host or rua=https://host/path; separate several URIs with commas.";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One finding: what was seen, how bad it is, and what to do (`spec/findings.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The stable code.
    pub code: Code,
    /// How bad it is.
    pub severity: Severity,
    /// What it is about: a domain, MX host, record, or `line N`.
    pub subject: String,
    /// What was seen, with the actual values.
    pub message: String,
    /// What to do, concretely (empty for `ok`).
    pub remedy: String,
    /// The RFC section.
    pub reference: String,
}

impl Finding {
    /// A finding with the code's standard remedy and reference.
    pub fn new(
        code: Code,
        severity: Severity,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            code,
            severity,
            subject: subject.into(),
            message: message.into(),
            remedy: code.remedy().to_owned(),
            reference: code.reference().to_owned(),
        }
    }

    /// Replaces the standard remedy with a more specific one.
    pub fn with_remedy(mut self, remedy: impl Into<String>) -> Self {
        self.remedy = remedy.into();
        self
    }
}

/// The worst severity among `findings` (`ok` for none): the verdict.
pub fn verdict<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Severity {
    findings
        .into_iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name() {
        for code in Code::ALL {
            assert_eq!(code.as_str().parse::<Code>(), Ok(*code));
            assert!(code.reference().starts_with("RFC "), "{code}");
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut names: Vec<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        let len = names.len();
        names.dedup();
        assert_eq!(names.len(), len);
    }

    #[test]
    fn problem_codes_carry_a_remedy_and_ok_codes_do_not() {
        for code in Code::ALL {
            let is_ok_code = code.remedy().is_empty();
            let name = code.as_str();
            let looks_ok = name.ends_with(".ok")
                || matches!(
                    name,
                    "sts.policy.fetched" | "sts.policy.valid" | "sts.mx.covered"
                );
            assert_eq!(is_ok_code, looks_ok, "{name}");
        }
    }

    #[test]
    fn verdict_is_worst_severity() {
        let f = |s| Finding::new(Code::StsTxtOk, s, "example.com", "x");
        assert_eq!(verdict(&[]), Severity::Ok);
        assert_eq!(
            verdict(&[f(Severity::Ok), f(Severity::Warning), f(Severity::Info)]),
            Severity::Warning
        );
        assert_eq!("warning".parse::<Severity>(), Ok(Severity::Warning));
        assert!("fatal".parse::<Severity>().is_err());
    }
}
