//! RFC 8460 §3 — judging the `_smtp._tls` TXT record
//!
//! ```text
//! RFC 8460 §3: If multiple TXT records for "_smtp._tls" are returned by the
//! resolver, records that do not begin with "v=TLSRPTv1;" are discarded.
//! If the number of resulting records is not one, senders MUST assume
//! the recipient domain does not implement TLSRPT.
//! ```
//!
//! The record rules live in `stsward-proto` ([`stsward_proto::tlsrpt::evaluate_txt`]); this
//! file adds only what the network saw: a lookup that failed.

use stsward_proto::tlsrpt::evaluate_txt;
use stsward_proto::{Code, Finding};

use super::sts_txt::lookup_failed;
use crate::observe::{TxtLookup, TxtObservation};

/// Judges the `_smtp._tls` TXT answer for `domain`.
pub fn judge(domain: &str, txt: &TxtObservation) -> Vec<Finding> {
    match &txt.lookup {
        TxtLookup::Answer { records, .. } => evaluate_txt(domain, records).findings,
        TxtLookup::Failed(err) => vec![lookup_failed(Code::TlsrptTxtLookup, &txt.name, err)],
    }
}
