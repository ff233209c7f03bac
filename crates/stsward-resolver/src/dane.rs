//! DANE first (RFC 8461 §2, RFC 7672 §2.2) — what the TLSA records of a destination's MX
//! hosts mean for the answer (pure).
//!
//! RFC 8461 §2: "senders who implement MTA-STS validation MUST NOT allow MTA-STS Policy
//! validation to override a failing DANE validation." Postfix does DANE itself at the levels
//! `dane` and `dane-only`, and does no DANE at `secure`. So whenever an MX host of the
//! destination has DNSSEC-validated TLSA records, the answer is a DANE level and never
//! `secure`: at `secure`, a host whose TLSA records do not match but whose certificate passes
//! PKIX checks would be accepted, which is MTA-STS overriding a failing DANE validation.
//!
//! ```text
//! observation                                  enforce policy          testing policy
//! no MX host with "secure" TLSA, no error      MTA-STS answer          MTA-STS answer
//! some or all MX hosts with "secure" TLSA,     dane-only (configured)  dane
//!   or a TLSA lookup error on a host whose       when the MX RRset is
//!   addresses are "secure"                       secure, else dane
//! MX lookup failed                             MTA-STS answer (Postfix's own MX lookup
//!                                              fails the same way and defers)
//! resolver without DNSSEC (indeterminate)      MTA-STS answer: no TLSA record can be
//!                                              "secure", and RFC 7672 §2.1.1: "A
//!                                              security-aware resolver MUST be used for
//!                                              this specification" (the same section
//!                                              treats a signalled "indeterminate" as an
//!                                              error: see docs/resolver.md); a Postfix
//!                                              on the same resolver cannot do DANE
//! ```
//!
//! Why these choices:
//! - `dane-only` for an `enforce` domain: the domain asked for authenticated TLS (MTA-STS
//!   `enforce`), and RFC 7672 §2.2 lets a client "be configured to mandate DANE-verified
//!   delivery for some destinations". With `dane`, Postfix falls back to `encrypt` or `may`
//!   (postfix-tls-policy.txt: "If no TLSA records are found, the effective security level used
//!   is may"), weaker than what the domain's MTA-STS policy demands.
//! - Only when some MX hosts have TLSA: still a DANE level. `secure` is ruled out by RFC 8461
//!   §2 as above. With `dane-only`, Postfix skips the MX hosts without TLSA (mail goes only
//!   to DANE-authenticated hosts, or waits); with `dane`, it uses opportunistic TLS to them.
//!   The default (`dane-only`) keeps delivery never weaker than either policy; an operator
//!   who prefers delivery over strictness configures `dane`.
//! - `dane-only` needs a "secure" MX RRset: Postfix's `dane_init()` (smtp_tls_policy.c,
//!   3.10) treats a `dane-only` destination whose MX record is not DNSSEC-valid as a
//!   "non DNSSEC destination" and defers (Postfix source; not in shared/reference, not
//!   checked here). With an insecure MX RRset the answer is `dane`, and Postfix applies
//!   `smtp_tls_dane_insecure_mx_policy` (default `dane`: "The TLSA records will be used just
//!   as with "secure" MX records").
//! - `testing` asks for no enforcement, but DANE is enforced on its own terms (RFC 7672
//!   §2.2: "Any connection to the MTA MUST employ TLS encryption and MUST authenticate the
//!   SMTP server"), which `dane` gives.
//! - A TLSA lookup error on a host with "secure" addresses: RFC 7672 §2.1.2, "the SMTP client
//!   MUST treat that server as unreachable". Only Postfix's DANE levels do that, so it counts
//!   as a DANE host.

use serde::Serialize;
use stsward_proto::mta_sts::Mode;

/// The DANE level the configuration picks for `enforce` domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DaneLevel {
    /// Mandatory DANE (the default).
    DaneOnly,
    /// Opportunistic DANE.
    Dane,
}

impl DaneLevel {
    /// The Postfix level word.
    pub fn as_str(self) -> &'static str {
        match self {
            DaneLevel::DaneOnly => "dane-only",
            DaneLevel::Dane => "dane",
        }
    }
}

/// What DNS said about one MX host (RFC 7672 §2.2.2, §2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostTlsa {
    /// A "secure" non-empty TLSA RRset.
    Secure,
    /// No TLSA, "insecure" TLSA, or "insecure" addresses (TLSA then not looked up,
    /// RFC 7672 §2.2.2: "the SMTP client SHOULD NOT proceed to search for any associated
    /// TLSA records").
    None,
    /// The TLSA lookup failed for a host with "secure" addresses.
    Error,
}

/// The DANE observation of a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum DaneObservation {
    /// DANE first is switched off, or not looked at yet.
    NotChecked,
    /// The MX lookup failed.
    MxError {
        /// Why.
        reason: String,
    },
    /// Each MX host (or the implicit MX, or the `[host]`) with its TLSA state.
    Hosts {
        /// Whether the MX RRset was DNSSEC "secure" (true for `[host]` destinations, which
        /// have no MX lookup).
        mx_secure: bool,
        /// (host, state).
        hosts: Vec<(String, HostTlsa)>,
    },
}

/// What the observation means for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaneVerdict {
    /// No DANE: the MTA-STS answer stands.
    NotApplicable,
    /// Answer this DANE level and never `secure`.
    Use(DaneLevel),
}

/// What the cache keeps of an observation: a few bits, not the host list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DaneSummary {
    /// Not looked at (DANE first off, or not yet).
    NotChecked,
    /// No MX host with "secure" TLSA (or an MX lookup error).
    NoTlsa,
    /// Some MX host has "secure" TLSA records (or a TLSA lookup error on a secure host).
    Tlsa {
        /// Whether the MX RRset was "secure".
        mx_secure: bool,
    },
}

impl DaneObservation {
    /// The summary the cache keeps.
    pub fn summary(&self) -> DaneSummary {
        match self {
            DaneObservation::NotChecked => DaneSummary::NotChecked,
            DaneObservation::MxError { .. } => DaneSummary::NoTlsa,
            DaneObservation::Hosts { mx_secure, hosts } => {
                if hosts.iter().any(|(_, t)| *t != HostTlsa::None) {
                    DaneSummary::Tlsa {
                        mx_secure: *mx_secure,
                    }
                } else {
                    DaneSummary::NoTlsa
                }
            }
        }
    }
}

impl DaneSummary {
    /// The table in the module docs.
    pub fn verdict(self, mode: Mode, configured: DaneLevel) -> DaneVerdict {
        let DaneSummary::Tlsa { mx_secure } = self else {
            return DaneVerdict::NotApplicable;
        };
        let level = match (mode, configured, mx_secure) {
            (Mode::Enforce, DaneLevel::DaneOnly, true) => DaneLevel::DaneOnly,
            _ => DaneLevel::Dane,
        };
        DaneVerdict::Use(level)
    }
}

/// The table in the module docs, from a full observation.
pub fn verdict(obs: &DaneObservation, mode: Mode, configured: DaneLevel) -> DaneVerdict {
    obs.summary().verdict(mode, configured)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(mx_secure: bool, states: &[HostTlsa]) -> DaneObservation {
        DaneObservation::Hosts {
            mx_secure,
            hosts: states
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("mx{i}.example"), *s))
                .collect(),
        }
    }

    #[test]
    fn rfc8461_2_dane_first_table() {
        use DaneLevel::*;
        use HostTlsa as H;
        let na = DaneVerdict::NotApplicable;
        // (observation, mode, configured, expected, why)
        let table = [
            (
                hosts(true, &[H::Secure]),
                Mode::Enforce,
                DaneOnly,
                DaneVerdict::Use(DaneOnly),
                "all MX with TLSA, enforce: mandatory DANE",
            ),
            (
                hosts(true, &[H::Secure, H::Secure]),
                Mode::Enforce,
                Dane,
                DaneVerdict::Use(Dane),
                "configured dane",
            ),
            (
                hosts(true, &[H::Secure, H::None]),
                Mode::Enforce,
                DaneOnly,
                DaneVerdict::Use(DaneOnly),
                "RFC 8461 §2: partial TLSA still never secure",
            ),
            (
                hosts(false, &[H::Secure]),
                Mode::Enforce,
                DaneOnly,
                DaneVerdict::Use(Dane),
                "insecure MX RRset: Postfix defers dane-only, so dane",
            ),
            (
                hosts(true, &[H::Secure]),
                Mode::Testing,
                DaneOnly,
                DaneVerdict::Use(Dane),
                "testing: DANE on its own terms (RFC 7672 §2.2)",
            ),
            (
                hosts(true, &[H::None, H::Error]),
                Mode::Enforce,
                DaneOnly,
                DaneVerdict::Use(DaneOnly),
                "RFC 7672 §2.1.2: a TLSA lookup error is for Postfix's DANE to handle",
            ),
            (
                hosts(true, &[H::None, H::None]),
                Mode::Enforce,
                DaneOnly,
                na,
                "no TLSA anywhere: MTA-STS",
            ),
            (
                hosts(true, &[]),
                Mode::Enforce,
                DaneOnly,
                na,
                "null MX: no hosts",
            ),
            (
                DaneObservation::MxError {
                    reason: "SERVFAIL".into(),
                },
                Mode::Enforce,
                DaneOnly,
                na,
                "MX lookup failed: Postfix fails the same way",
            ),
            (
                DaneObservation::NotChecked,
                Mode::Enforce,
                DaneOnly,
                na,
                "DANE first off",
            ),
        ];
        for (obs, mode, cfg, want, why) in table {
            assert_eq!(verdict(&obs, mode, cfg), want, "{why}");
        }
    }
}
