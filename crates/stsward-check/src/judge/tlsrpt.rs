//! RFC 8460 §3 — judging the `_smtp._tls` TXT record
//!
//! ```text
//! RFC 8460 §3: ... If multiple TXT records for "_smtp._tls" are returned by the resolver,
//! records that do not begin with "v=TLSRPTv1;" are discarded.  If the number of resulting
//! records is not one, senders MUST assume the recipient domain does not implement TLSRPT.
//! ```
//!
//! Without reporting, failures stay invisible to the domain owner, so a missing record is a
//! warning even though mail flows. The record's own grammar (`rua` and its URIs) is checked
//! by `stsward-proto` through [`super::proto_bridge`].

use stsward_proto::txt::{Selection, select};
use stsward_proto::{Code, Finding, Severity};

use super::proto_bridge;
use super::sts_txt::{lookup_failed, quoted_list};
use crate::observe::{TxtLookup, TxtObservation};

/// Judges the `_smtp._tls` TXT answer.
pub fn judge(txt: &TxtObservation) -> Vec<Finding> {
    let records = match &txt.lookup {
        TxtLookup::Answer { records, .. } => records,
        TxtLookup::Failed(err) => {
            return vec![lookup_failed(Code::TlsrptTxtLookup, &txt.name, err)];
        }
    };
    match select(records, "TLSRPTv1") {
        Selection::None { .. } => vec![Finding::new(
            Code::TlsrptTxtMissing,
            Severity::Warning,
            &txt.name,
            format!(
                "no v=TLSRPTv1 TXT record at {}: senders cannot report TLS failures to you",
                txt.name
            ),
        )],
        Selection::Multiple { records, .. } => vec![Finding::new(
            Code::TlsrptTxtMultiple,
            Severity::Error,
            &txt.name,
            format!(
                "{} v=TLSRPTv1 records at {}: {}; senders use none of them",
                records.len(),
                txt.name,
                quoted_list(&records)
            ),
        )],
        Selection::One { record, .. } => {
            let problems = proto_bridge::evaluate_tlsrpt_record(&txt.name, record);
            let mut findings = Vec::new();
            if !problems.iter().any(|f| f.severity >= Severity::Warning) {
                findings.push(Finding::new(
                    Code::TlsrptTxtOk,
                    Severity::Ok,
                    &txt.name,
                    format!("one v=TLSRPTv1 record: \"{record}\""),
                ));
            }
            findings.extend(problems);
            findings
        }
    }
}
