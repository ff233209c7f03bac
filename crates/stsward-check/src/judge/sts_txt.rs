//! RFC 8461 §3.1 — judging the `_mta-sts` TXT record
//!
//! ```text
//! RFC 8461 §3.1: If multiple TXT records for "_mta-sts" are returned by the resolver, records
//! that do not begin with "v=STSv1;" are discarded.  If the number of resulting records is
//! not one, or if the resulting record is syntactically invalid, senders MUST assume the
//! recipient domain does not have an available MTA-STS policy.
//! ```
//!
//! The one-record rule and the record grammar are `stsward-proto`'s
//! ([`stsward_proto::mta_sts::evaluate`]). The checker adds what needs the rest of the
//! domain: a missing record is only `info` on its own, but an `error` when a policy host
//! exists, because that is half a deployment and senders never fetch the policy.

use stsward_proto::mta_sts;
use stsward_proto::{Code, Finding, Severity};

use crate::observe::{LookupError, LookupErrorKind, TxtLookup, TxtObservation};

/// The findings about the `_mta-sts` record, and whether the owner meant to deploy MTA-STS.
#[derive(Debug)]
pub struct TxtJudgement {
    /// The findings.
    pub findings: Vec<Finding>,
    /// Whether something at the name tries to be an MTA-STS record (even a broken one): the
    /// owner believes MTA-STS is on, so the policy is worth judging.
    pub deployed: bool,
}

/// Judges the `_mta-sts` TXT answer. `policy_host_exists` makes a missing record an error.
pub fn judge(domain: &str, txt: &TxtObservation, policy_host_exists: bool) -> TxtJudgement {
    let records = match &txt.lookup {
        TxtLookup::Answer { records, .. } => records,
        TxtLookup::Failed(err) => {
            return TxtJudgement {
                findings: vec![lookup_failed(Code::StsTxtLookup, &txt.name, err)],
                // Signed data that fails validation is not an absent record (issue 6: an
                // expired zone read as "does not use MTA-STS"); judge the policy host too.
                deployed: err.kind == LookupErrorKind::Bogus,
            };
        }
    };
    let mut findings = mta_sts::evaluate(records, &txt.name).findings;
    let deployed = !findings.iter().any(|f| f.code == Code::StsTxtMissing);
    for f in &mut findings {
        if f.code != Code::StsTxtMissing {
            continue;
        }
        if policy_host_exists {
            f.severity = Severity::Error;
            f.message = format!(
                "no v=STSv1 TXT record at {}, but mta-sts.{domain} exists: senders never fetch its policy without the record",
                txt.name
            );
        } else {
            f.message = format!(
                "no v=STSv1 TXT record at {} and no policy host mta-sts.{domain}: {domain} does not use MTA-STS",
                txt.name
            );
        }
    }
    TxtJudgement { findings, deployed }
}

/// A failed TXT lookup, shared with the `_smtp._tls` judge.
pub(crate) fn lookup_failed(code: Code, name: &str, err: &LookupError) -> Finding {
    let message = if err.kind == LookupErrorKind::Bogus {
        // RFC 7672 §2.1.1 equates "bogus" with lookup failure; a validating resolver answers
        // SERVFAIL, so senders behind one cannot read the record at all.
        format!(
            "the TXT answer for {name} fails DNSSEC validation (bogus: expired or missing signatures, or keys that do not chain to the parent's DS); senders behind a validating resolver get SERVFAIL and cannot read it"
        )
    } else {
        format!(
            "TXT lookup for {name} failed ({}): {}",
            kind_words(err),
            err.detail
        )
    };
    Finding::new(code, Severity::Error, name, message)
}

pub(crate) fn kind_words(err: &LookupError) -> &'static str {
    use crate::observe::LookupErrorKind as K;
    match err.kind {
        K::ServFail => "SERVFAIL",
        K::Timeout => "timeout",
        K::CnameLoop => "CNAME loop",
        K::CnameTooLong => "CNAME chain too long",
        K::Bogus => "DNSSEC bogus",
        K::Refused => "REFUSED",
        K::Resolver => "resolver unusable",
        K::Other => "error",
    }
}
