//! RFC 8461 §3.1 — judging every TXT string found at `_mta-sts.<domain>`
//!
//! ```text
//! RFC 8461 §3.1: If multiple TXT records for
//! "_mta-sts" are returned by the resolver, records that do not begin
//! with "v=STSv1;" are discarded.  If the number of resulting records is
//! not one, or if the resulting record is syntactically invalid, senders
//! MUST assume the recipient domain does not have an available MTA-STS
//! Policy and skip the remaining steps of policy discovery.
//! ```
//!
//! Discarded strings are split in two: those that look like a failed attempt at an MTA-STS
//! record (`v=stsv1`, `v=STSv12`, `id=…; v=STSv1`) are errors, because their author believes
//! MTA-STS is on; the rest (SPF, site verification…) are merely noted.

use crate::finding::{Code, Finding, Severity};
use crate::mta_sts::error::{Error, RecordReason};
use crate::txt::{self, Selection};

use super::{STS_VERSION, StsRecord};

/// What senders make of the TXT strings at `_mta-sts.<domain>` (RFC 8461 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsTxtOutcome {
    /// The record senders use: `Some` exactly when one valid `v=STSv1` record exists. `None`
    /// means senders see no MTA-STS policy at all.
    pub record: Option<StsRecord>,
    /// What was seen, worst cases included.
    pub findings: Vec<Finding>,
}

/// Applies the RFC 8461 §3.1 one-record rule to `records` (each TXT record's strings already
/// concatenated) and reports on it; `subject` names the record in findings, e.g.
/// `_mta-sts.example.com`.
///
/// `sts.txt.missing` is reported here as `info`: on its own, a domain without MTA-STS is a
/// choice. The checker raises it to `error` when `mta-sts.<domain>` serves a policy, because
/// then the deployment is half done and senders never look at the policy.
pub fn evaluate<S: AsRef<str>>(records: &[S], subject: &str) -> StsTxtOutcome {
    let mut findings = Vec::new();
    let finding = |code, severity, message: String| Finding::new(code, severity, subject, message);
    let selection = txt::select(records, STS_VERSION);
    let unrelated = match &selection {
        Selection::None { unrelated }
        | Selection::One { unrelated, .. }
        | Selection::Multiple { unrelated, .. } => unrelated.clone(),
    };
    let mut lookalikes = 0;
    for other in &unrelated {
        if looks_like_sts(other) {
            lookalikes += 1;
            findings.push(finding(
                Code::StsTxtVersion,
                Severity::Error,
                format!(
                    "TXT record {other:?} is discarded by senders: it does not begin with exactly \"v=STSv1\" (case-sensitive)"
                ),
            ));
        } else {
            findings.push(finding(
                Code::StsTxtUnrelated,
                Severity::Info,
                format!("TXT record {other:?} is not an MTA-STS record and is ignored"),
            ));
        }
    }
    let record = match selection {
        Selection::None { .. } => {
            if lookalikes == 0 {
                findings.push(finding(
                    Code::StsTxtMissing,
                    Severity::Info,
                    "no TXT record beginning with \"v=STSv1\"".to_owned(),
                ));
            }
            None
        }
        Selection::Multiple { records, .. } => {
            findings.push(finding(
                Code::StsTxtMultiple,
                Severity::Error,
                format!(
                    "{} records begin with \"v=STSv1\" ({}); senders treat this as no policy",
                    records.len(),
                    records
                        .iter()
                        .map(|r| format!("{r:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
            None
        }
        Selection::One { record, .. } => match StsRecord::parse_noting_repeats(record) {
            Ok((parsed, repeats)) => {
                // RFC 8461 §3.2: "If any non-repeated field -- i.e., all fields excepting
                // "mx" -- is duplicated, all entries except for the first SHALL be ignored."
                for r in &repeats {
                    findings.push(finding(
                        Code::StsTxtDuplicate,
                        Severity::Warning,
                        format!(
                            "field {} {}={} repeats an earlier {}= and is ignored; senders use the first",
                            r.position, r.name, r.value, r.name
                        ),
                    ));
                }
                for ext in &parsed.extensions {
                    findings.push(finding(
                        Code::StsTxtExtension,
                        Severity::Info,
                        format!(
                            "extension field {}={} is kept but ignored by senders",
                            ext.name(),
                            ext.value()
                        ),
                    ));
                }
                findings.push(finding(
                    Code::StsTxtOk,
                    Severity::Ok,
                    format!("one valid record {record:?} with id {}", parsed.id),
                ));
                Some(parsed)
            }
            Err(err) => {
                findings.push(finding(code_for(&err), Severity::Error, err.to_string()));
                None
            }
        },
    };
    StsTxtOutcome { record, findings }
}

/// A discarded string whose author evidently meant an MTA-STS record.
fn looks_like_sts(record: &str) -> bool {
    let lower = record.trim_start().to_ascii_lowercase();
    lower.starts_with("v=sts") || lower.contains("v=stsv")
}

fn code_for(err: &Error) -> Code {
    match err {
        Error::Record { reason, .. } => match reason {
            RecordReason::VersionNotFirst => Code::StsTxtVersion,
            RecordReason::MissingId | RecordReason::InvalidId(_) => Code::StsTxtId,
            _ => Code::StsTxtSyntax,
        },
        _ => Code::StsTxtSyntax,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(outcome: &StsTxtOutcome) -> Vec<(Code, Severity)> {
        outcome
            .findings
            .iter()
            .map(|f| (f.code, f.severity))
            .collect()
    }

    #[test]
    fn rfc8461_3_1_one_valid_record_is_used() {
        let out = evaluate(&["v=STSv1; id=20160831085700Z;"], "_mta-sts.example.com");
        assert_eq!(
            out.record.as_ref().map(|r| r.id.to_string()),
            Some("20160831085700Z".to_owned())
        );
        assert_eq!(codes(&out), [(Code::StsTxtOk, Severity::Ok)]);
        assert_eq!(out.findings[0].subject, "_mta-sts.example.com");
    }

    /// RFC 8461 §3.2: "If any non-repeated field -- i.e., all fields excepting "mx" -- is
    /// duplicated, all entries except for the first SHALL be ignored."
    #[test]
    fn rfc8461_3_2_duplicate_txt_field_is_a_warning_and_the_first_is_used() {
        let out = evaluate(
            &["v=STSv1; id=20240101; id=20230101; v=STSv1;"],
            "_mta-sts.example.com",
        );
        assert_eq!(
            out.record.as_ref().map(|r| r.id.as_str()),
            Some("20240101"),
            "the first id is the one senders compare"
        );
        assert_eq!(
            codes(&out),
            [
                (Code::StsTxtDuplicate, Severity::Warning),
                (Code::StsTxtDuplicate, Severity::Warning),
                (Code::StsTxtOk, Severity::Ok),
            ]
        );
        assert!(out.findings[0].message.contains("id=20230101"));
        assert!(out.findings[1].message.contains("v=STSv1"));
        assert_eq!(out.findings[0].reference, "RFC 8461 §3.2");
    }

    #[test]
    fn rfc8461_3_1_findings_for_every_txt_code() {
        use Code::*;
        use Severity::*;
        // (records, record used?, expected findings, why)
        type Case<'a> = (&'a [&'a str], bool, &'a [(Code, Severity)], &'a str);
        let table: &[Case<'_>] = &[
            (&[], false, &[(StsTxtMissing, Info)], "nothing published"),
            (
                &["v=spf1 -all"],
                false,
                &[(StsTxtUnrelated, Info), (StsTxtMissing, Info)],
                "only unrelated data",
            ),
            (
                &["v=STSv1; id=1;", "v=STSv1; id=2;"],
                false,
                &[(StsTxtMultiple, Error)],
                "two records: senders use neither",
            ),
            (
                &["v=STSv1; id=1;", "google-site-verification=x"],
                true,
                &[(StsTxtUnrelated, Info), (StsTxtOk, Ok)],
                "unrelated data beside a good record",
            ),
            (
                &["id=1; v=STSv1;"],
                false,
                &[(StsTxtVersion, Error)],
                "version not first",
            ),
            (
                &["v=STSv12; id=1"],
                false,
                &[(StsTxtVersion, Error)],
                "longer version",
            ),
            (
                &["v=stsv1; id=1"],
                false,
                &[(StsTxtVersion, Error)],
                "wrong case",
            ),
            (
                &["v=STSv1; v=STSv1; id=1"],
                true,
                &[(StsTxtDuplicate, Warning), (StsTxtOk, Ok)],
                "version twice: RFC 8461 §3.2, the first counts",
            ),
            (
                &["v=STSv1; id=1; id=2"],
                true,
                &[(StsTxtDuplicate, Warning), (StsTxtOk, Ok)],
                "id twice: RFC 8461 §3.2, the first counts",
            ),
            (&["v=STSv1;"], false, &[(StsTxtId, Error)], "no id"),
            (
                &["v=STSv1; id=a-b"],
                false,
                &[(StsTxtId, Error)],
                "id with a hyphen",
            ),
            (
                &["v=STSv1;; id=1"],
                false,
                &[(StsTxtSyntax, Error)],
                "empty field",
            ),
            (
                &["v=STSv1 id=1"],
                false,
                &[(StsTxtSyntax, Error)],
                "missing ;",
            ),
            (
                &["v=STSv1; id=1; rua=x"],
                true,
                &[(StsTxtExtension, Info), (StsTxtOk, Ok)],
                "an extension",
            ),
        ];
        for (records, used, want, why) in table {
            let out = evaluate(records, "_mta-sts.example.com");
            assert_eq!(out.record.is_some(), *used, "{why}");
            assert_eq!(codes(&out), *want, "{why}");
        }
    }
}
