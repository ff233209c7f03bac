//! RFC 8461 §3.1 — judging the `_mta-sts` TXT record
//!
//! ```text
//! RFC 8461 §3.1: If multiple TXT records for _mta-sts are returned by the resolver, records
//! that do not begin with "v=STSv1;" are discarded.  If the number of resulting records is
//! not one, or if the resulting record is syntactically invalid, senders MUST assume the
//! recipient domain does not have an available MTA-STS policy.
//! ```
//!
//! The record's own grammar is checked by `stsward-proto` (through [`super::proto_bridge`]);
//! this file applies the one-record rule and decides how bad a missing record is.

use stsward_proto::txt::{Selection, select};
use stsward_proto::{Code, Finding, Severity};

use super::proto_bridge;
use crate::observe::{LookupError, TxtLookup, TxtObservation};

/// The findings about the `_mta-sts` record, and whether the domain publishes one at all.
#[derive(Debug)]
pub struct TxtJudgement {
    /// The findings.
    pub findings: Vec<Finding>,
    /// Whether at least one `v=STSv1` record exists (even a broken one): the owner meant to
    /// deploy MTA-STS, so the policy is worth judging.
    pub deployed: bool,
}

/// Judges the `_mta-sts` TXT answer. `policy_host_exists` makes a missing record an error:
/// a policy host without a record is half a deployment, and senders never fetch its policy.
pub fn judge(domain: &str, txt: &TxtObservation, policy_host_exists: bool) -> TxtJudgement {
    let mut findings = Vec::new();
    let records = match &txt.lookup {
        TxtLookup::Answer { records, .. } => records,
        TxtLookup::Failed(err) => {
            findings.push(lookup_failed(Code::StsTxtLookup, &txt.name, err));
            return TxtJudgement {
                findings,
                deployed: false,
            };
        }
    };

    let selection = select(records, "STSv1");
    let (Selection::None { unrelated }
    | Selection::One { unrelated, .. }
    | Selection::Multiple { unrelated, .. }) = &selection;
    let deployed = !matches!(selection, Selection::None { .. });

    match &selection {
        Selection::None { .. } if policy_host_exists => findings.push(Finding::new(
            Code::StsTxtMissing,
            Severity::Error,
            &txt.name,
            format!(
                "no v=STSv1 TXT record at {}, but mta-sts.{domain} exists: senders never fetch the policy without the record",
                txt.name
            ),
        )),
        Selection::None { .. } => findings.push(Finding::new(
            Code::StsTxtMissing,
            Severity::Info,
            &txt.name,
            format!(
                "no v=STSv1 TXT record at {} and no policy host: {domain} does not use MTA-STS",
                txt.name
            ),
        )),
        Selection::Multiple { records, .. } => findings.push(Finding::new(
            Code::StsTxtMultiple,
            Severity::Error,
            &txt.name,
            format!(
                "{} v=STSv1 records at {}: {}",
                records.len(),
                txt.name,
                quoted_list(records)
            ),
        )),
        Selection::One { record, .. } => {
            let problems = proto_bridge::evaluate_sts_record(&txt.name, record);
            if !problems.iter().any(|f| f.severity >= Severity::Warning) {
                findings.push(Finding::new(
                    Code::StsTxtOk,
                    Severity::Ok,
                    &txt.name,
                    format!("one v=STSv1 record: \"{record}\""),
                ));
            }
            findings.extend(problems);
        }
    }

    if !unrelated.is_empty() {
        findings.push(Finding::new(
            Code::StsTxtUnrelated,
            Severity::Info,
            &txt.name,
            format!(
                "{} other TXT record(s) at {}, ignored by senders: {}",
                unrelated.len(),
                txt.name,
                quoted_list(unrelated)
            ),
        ));
    }

    TxtJudgement { findings, deployed }
}

/// A failed TXT lookup, shared with the `_smtp._tls` judge.
pub(crate) fn lookup_failed(code: Code, name: &str, err: &LookupError) -> Finding {
    Finding::new(
        code,
        Severity::Error,
        name,
        format!(
            "TXT lookup for {name} failed ({}): {}",
            kind_words(err),
            err.detail
        ),
    )
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

pub(crate) fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
