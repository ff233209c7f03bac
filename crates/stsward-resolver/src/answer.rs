//! What Postfix is told (pure): a policy state and the configuration → an [`Answer`].
//!
//! # `enforce` → `secure match=… servername=hostname`
//!
//! postfix-tls-policy.txt, level `secure`: "the default name verified in the server
//! certificate is obtained directly from the next-hop, or is explicitly specified via the
//! optional "match" attribute which overrides the main.cf smtp_tls_secure_cert_match
//! parameter." and "In the policy table, multiple match patterns and strategies must be
//! separated by colons." A `*.example.net` pattern becomes `.example.net`, the form of the
//! doc's own example (`.example.net            secure match=.example.net:example.net`).
//! Postfix's `.example.net` accepts any depth of sub-domain, wider than RFC 8461 §4.1's one
//! label; Postfix ≥ 3.10.5 with the TLSRPT attributes below is exact instead
//! (`smtp_tls_enforce_sts_mx_patterns`: "connect to an MX host only if its name matches any
//! STS policy MX host pattern, and match the server certificate against the MX hostname").
//!
//! `servername=hostname`: RFC 8461 §7.1, "When connecting to an SMTP server, the SNI
//! extension MUST contain the MX hostname."; postfix-tls-policy.txt (`smtp_tls_servername`):
//! "the special values hostname or nexthop, which select either the remote hostname or the
//! nexthop domain respectively".
//!
//! # TLSRPT attributes (Postfix ≥ 3.10, off by default)
//!
//! postfix-tlsrpt.txt: `policy_type=sts policy_domain=… mx_host_pattern=…` and one
//! `{ policy_string = … }` per policy line ("Specify one policy_string instance for each
//! MTA-STS policy feature, enclosed inside "{" and "}" to protect whitespace"). Never
//! `policy_ttl` ("This attribute is deprecated"). Older Postfix "will report a policy error
//! with "invalid attribute name"", hence off by default. A policy line holding `{`, `}` or a
//! control character (possible only in an extension line, which senders ignore) is left out:
//! it would break Postfix's brace parsing.
//!
//! # `testing` → NOTFOUND, or `may` + TLSRPT attributes
//!
//! RFC 8461 §5: in `testing`, "messages may be delivered as though there were no MTA-STS
//! validation failure", while senders that implement TLSRPT "send a report indicating policy
//! application failures". Postfix reports an STS policy only when the answer carries
//! `policy_type=sts`, and postfix-tlsrpt.txt says "It is an error to specify these attributes
//! for a non-STS policy" — but the level may be any TLS level: Postfix 3.10's
//! `tls_policy_lookup_one()` parses the attributes at every level from `may` up (below `may`
//! they are ignored with a warning), and `smtp_tlsrpt_set_tls_policy()` reports the external
//! policy for every level that is not DANE-based (Postfix source, paraphrase; not in
//! shared/reference, not checked here). So:
//! - with TLSRPT attributes on: `may policy_type=sts …` — opportunistic TLS (`may`: "When
//!   opportunistic TLS handshakes fail, Postfix retries the connection with TLS disabled"),
//!   and the report names the domain's STS policy, not `no-policy-found`;
//! - with them off: NOTFOUND. `may` alone would report nothing more and would override a
//!   stricter main.cf `smtp_tls_security_level` (e.g. `dane`); NOTFOUND leaves Postfix's own
//!   default in charge, as for a domain without MTA-STS.
//!
//! # `policy_failure` — exactly where it applies
//!
//! postfix-tlsrpt.txt: `policy_failure` "forces MTA-STS policy enforcement to fail with the
//! indicated error, even if a server certificate would satisfy conventional PKI constraints".
//! RFC 8461 §3.3: "if no "live" policy can be discovered via DNS or fetched via HTTPS, but a
//! valid (non-expired) policy exists in the sender's cache, the sender MUST apply that cached
//! policy." So for an `enforce` policy kept from the cache after a failed refresh it is
//! never sent: it would defer mail the cached policy allows. It is sent for a cached
//! `testing` policy whose last refresh failed (RFC 8461 §6: "Policy fetch failures of any kind
//! when a valid policy exists in the policy cache, except if that policy's mode is "none""
//! are reportable), at `may`, where it fails nothing but the report. Its value is the
//! failure's RFC 8460 result type from `stsward_proto::Failure` (one of the three
//! `sts-*` types Postfix accepts, else `validation-failure`). Without a cached policy there is
//! no STS policy to describe (RFC 8461 §3.3: continue "as though the domain has not
//! implemented MTA-STS"), so no attributes.
//!
//! # Failures
//!
//! A DNS or fetch failure with no cached policy answers NOTFOUND (default: RFC 8461 §3.3,
//! "senders MUST continue with delivery as though the domain has not implemented MTA-STS")
//! or TEMP, as configured. A lookup that outlives its deadline answers TEMP: Postfix defers
//! and asks again, by then from a warm cache.

use std::fmt::Write as _;

use serde::Serialize;
use stsward_proto::Failure;
use stsward_proto::mta_sts::Mode;
use stsward_proto::tlsrpt::ResultType;

use crate::dane::DaneVerdict;
use crate::key::KeyRejection;
use crate::policy::ActivePolicy;

/// The socketmap reply kinds (postfix-socketmap_table.txt "REPLY FORMAT").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "data", rename_all = "UPPERCASE")]
pub enum AnswerKind {
    /// `OK <data>`: a TLS policy.
    Ok(String),
    /// `NOTFOUND `: no policy; Postfix's own defaults apply.
    NotFound,
    /// `TEMP <reason>`: Postfix defers and retries.
    Temp(String),
    /// `PERM <reason>`.
    Perm(String),
}

/// An answer with the reason it was given (for logs and `stsward resolve test`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// What goes on the wire.
    #[serde(flatten)]
    pub kind: AnswerKind,
    /// Why, in words.
    pub why: String,
}

impl Answer {
    fn new(kind: AnswerKind, why: impl Into<String>) -> Answer {
        Answer {
            kind,
            why: why.into(),
        }
    }

    /// The socketmap reply (before netstring framing): `OK data`, `NOTFOUND `, `TEMP reason`.
    pub fn wire(&self) -> String {
        match &self.kind {
            AnswerKind::Ok(data) => format!("OK {data}"),
            AnswerKind::NotFound => "NOTFOUND ".to_owned(),
            AnswerKind::Temp(r) => format!("TEMP {r}"),
            AnswerKind::Perm(r) => format!("PERM {r}"),
        }
    }

    /// The metrics label: the TLS level for OK, else the reply kind.
    pub fn label(&self) -> &'static str {
        match &self.kind {
            AnswerKind::Ok(data) => match data.split_whitespace().next() {
                Some("secure") => "secure",
                Some("dane-only") => "dane-only",
                Some("dane") => "dane",
                Some("may") => "may",
                _ => "other",
            },
            AnswerKind::NotFound => "notfound",
            AnswerKind::Temp(_) => "temp",
            AnswerKind::Perm(_) => "perm",
        }
    }
}

/// What to answer for a DNS or fetch failure with no cached policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAnswer {
    /// NOTFOUND (RFC 8461 §3.3; the default).
    NotFound,
    /// TEMP: Postfix defers and retries.
    Temp,
}

/// The answer knobs of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerConfig {
    /// Send the TLSRPT attributes (Postfix ≥ 3.10).
    pub tlsrpt_attributes: bool,
    /// What a failure without a cached policy answers.
    pub on_failure: FailureAnswer,
}

/// The state a lookup found.
#[derive(Debug, Clone, Copy)]
pub enum Situation<'a> {
    /// The key names no domain.
    Rejected(&'a KeyRejection),
    /// The domain has no MTA-STS policy (no valid TXT record, RFC 8461 §3.1).
    NoPolicy {
        /// Why, in words.
        why: &'a str,
    },
    /// Discovery or fetch failed and nothing is cached.
    Failed {
        /// Why, in words.
        why: &'a str,
    },
    /// The lookup's deadline passed before the first resolution finished.
    Pending,
    /// A policy is in force.
    Policy {
        /// The Policy Domain.
        domain: &'a str,
        /// The policy.
        policy: &'a ActivePolicy,
        /// What DANE says.
        dane: DaneVerdict,
        /// The failure of the last refresh, while this cached policy stays in force.
        refresh_failure: Option<&'a Failure>,
    },
}

/// The answer for a situation (the module docs give the rules).
pub fn render(s: Situation<'_>, cfg: &AnswerConfig) -> Answer {
    match s {
        Situation::Rejected(r) => Answer::new(
            AnswerKind::NotFound,
            format!("not an MTA-STS destination: {r}"),
        ),
        Situation::NoPolicy { why } => Answer::new(AnswerKind::NotFound, why),
        Situation::Failed { why } => match cfg.on_failure {
            FailureAnswer::NotFound => Answer::new(
                AnswerKind::NotFound,
                format!(
                    "{why}; no cached policy, so delivery continues as though the domain had no MTA-STS (RFC 8461 §3.3)"
                ),
            ),
            FailureAnswer::Temp => Answer::new(
                AnswerKind::Temp("MTA-STS policy discovery failed".into()),
                format!("{why}; no cached policy, and on_failure = \"temp\""),
            ),
        },
        Situation::Pending => Answer::new(
            AnswerKind::Temp("MTA-STS policy lookup in progress".into()),
            "the first resolution of this destination did not finish within the lookup deadline",
        ),
        Situation::Policy {
            domain,
            policy,
            dane,
            refresh_failure,
        } => render_policy(domain, policy, dane, refresh_failure, cfg),
    }
}

fn render_policy(
    domain: &str,
    policy: &ActivePolicy,
    dane: DaneVerdict,
    refresh_failure: Option<&Failure>,
    cfg: &AnswerConfig,
) -> Answer {
    let stale = match refresh_failure {
        Some(f) => format!(" (cached: the last refresh failed, {})", failure_word(f)),
        None => String::new(),
    };
    match policy.mode {
        Mode::None => {
            return Answer::new(
                AnswerKind::NotFound,
                "policy mode is none: treated as though the domain has no active policy (RFC 8461 §5)",
            );
        }
        Mode::Enforce | Mode::Testing => {}
    }
    if let DaneVerdict::Use(level) = dane {
        return Answer::new(
            AnswerKind::Ok(level.as_str().to_owned()),
            format!(
                "MX hosts publish DNSSEC-validated TLSA records: Postfix does DANE ({}), never secure (RFC 8461 §2){stale}",
                level.as_str()
            ),
        );
    }
    match policy.mode {
        Mode::Enforce => {
            let mut data = String::from("secure match=");
            for (i, p) in policy.patterns().enumerate() {
                if i > 0 {
                    data.push(':');
                }
                // `*.example.net` → `.example.net` (module docs).
                data.push_str(p.strip_prefix('*').unwrap_or(p));
            }
            data.push_str(" servername=hostname");
            if cfg.tlsrpt_attributes {
                let plain = data.len();
                push_tlsrpt(&mut data, domain, policy, None);
                if data.len() > MAX_REPLY_DATA {
                    // Enforcement needs only the level and match=; the report loses the
                    // policy, the mail keeps its protection.
                    data.truncate(plain);
                }
            }
            Answer::new(
                AnswerKind::Ok(data),
                format!(
                    "policy mode is enforce: verified TLS to MX hosts matching the policy (RFC 8461 §5){stale}"
                ),
            )
        }
        Mode::Testing if cfg.tlsrpt_attributes => {
            let mut data = String::from("may");
            push_tlsrpt(&mut data, domain, policy, refresh_failure);
            if data.len() > MAX_REPLY_DATA {
                return Answer::new(
                    AnswerKind::NotFound,
                    "policy mode is testing; the TLSRPT attributes would exceed Postfix's socketmap reply limit",
                );
            }
            Answer::new(
                AnswerKind::Ok(data),
                format!(
                    "policy mode is testing: opportunistic delivery, the STS policy reported through TLSRPT (RFC 8461 §5){stale}"
                ),
            )
        }
        Mode::Testing | Mode::None => Answer::new(
            AnswerKind::NotFound,
            format!(
                "policy mode is testing: deliver as though there were no MTA-STS (RFC 8461 §5); TLSRPT attributes are off{stale}"
            ),
        ),
    }
}

/// postfix-socketmap_table.txt: "The Postfix socketmap client requires that replies are no
/// longer than 100000 bytes (not including the netstring encapsulation)." Kept below it with
/// room for `OK `.
pub const MAX_REPLY_DATA: usize = 99_000;

/// The TLSRPT attributes of postfix-tlsrpt.txt.
fn push_tlsrpt(data: &mut String, domain: &str, policy: &ActivePolicy, failure: Option<&Failure>) {
    let _ = write!(data, " policy_type=sts policy_domain={domain}");
    for p in policy.patterns() {
        let _ = write!(data, " mx_host_pattern={p}");
    }
    for line in policy.lines() {
        if line.contains(['{', '}']) || line.chars().any(char::is_control) {
            continue;
        }
        let _ = write!(data, " {{ policy_string = {line} }}");
    }
    if let Some(f) = failure {
        let _ = write!(data, " policy_failure={}", policy_failure_value(f));
    }
}

/// postfix-tlsrpt.txt: "Valid errors are sts-policy-fetch-error, sts-policy-invalid,
/// sts-webpki-invalid, or the less informative validation-failure."
pub fn policy_failure_value(f: &Failure) -> &'static str {
    match f.result_type() {
        Some(ResultType::StsPolicyFetchError) => "sts-policy-fetch-error",
        Some(ResultType::StsPolicyInvalid) => "sts-policy-invalid",
        Some(ResultType::StsWebpkiInvalid) => "sts-webpki-invalid",
        _ => "validation-failure",
    }
}

/// The result type of a failure, for logs.
pub fn failure_word(f: &Failure) -> String {
    match f.result_type() {
        Some(rt) => format!("{} ({rt})", f.code()),
        None => f.code().to_string(),
    }
}

#[cfg(test)]
mod tests;
