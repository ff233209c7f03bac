//! RFC 8460 §3 — the `_smtp._tls` TXT record
//!
//! The grammar, exactly as RFC 8460 §3 prints it:
//!
//! ```text
//! tlsrpt-record     = tlsrpt-version 1*(field-delim tlsrpt-field)
//!                     [field-delim]
//!
//! field-delim       = *WSP ";" *WSP
//!
//! tlsrpt-field      = tlsrpt-rua /        ; Note that the
//!                     tlsrpt-extension    ; tlsrpt-rua record is
//!                                         ; required.
//!
//! tlsrpt-version    = %s"v=TLSRPTv1"
//!
//! tlsrpt-rua        = %s"rua="
//!                     tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//!
//! tlsrpt-uri        = URI
//!                     ; "URI" is imported from [RFC3986];
//!                     ; commas (ASCII 0x2C), exclamation
//!                     ; points (ASCII 0x21), and semicolons
//!                     ; (ASCII 0x3B) MUST be encoded
//!
//! tlsrpt-extension  = tlsrpt-ext-name "=" tlsrpt-ext-value
//!
//! tlsrpt-ext-name   = (ALPHA / DIGIT) *31(ALPHA /
//!                     DIGIT / "_" / "-" / ".")
//!
//! tlsrpt-ext-value  = 1*(%x21-3A / %x3C / %x3E-7E)
//!                     ; chars excluding "=", ";", SP, and control
//!                     ; chars
//! ```
//!
//! Of the TXT records at `_smtp._tls.<domain>`, those not beginning with `v=TLSRPTv1` are
//! discarded and exactly one must remain ([`crate::txt::select`]). Unknown fields are kept as
//! extensions (senders ignore them). URIs are `mailto:` or `https:` (RFC 8460 §3: "Two URI
//! schemes are supported: "mailto" and "https"").
//!
//! The grammar lets `rua` appear more than once (`1*(field-delim tlsrpt-field)`), and unlike
//! RFC 8461 §3.2, RFC 8460 has no rule that ignores repeats. So a record with two `rua` fields
//! is valid; the record keeps the URIs of all of them, in order, and the evaluator warns
//! (`tlsrpt.rua.duplicate`), because senders differ in which field they use.

use std::fmt;
use std::str::FromStr;

use super::uri::{RuaError, RuaUri};
use crate::finding::{Code, Finding, Severity};
use crate::txt::{self, Selection};

/// The version tag value (RFC 8460 §3).
pub const VERSION: &str = "TLSRPTv1";

/// RFC 8460 §3: `tlsrpt-ext-name` is one letter or digit plus at most 31 more characters.
pub const MAX_EXT_NAME_LEN: usize = 32;

/// A valid `_smtp._tls` TXT record (RFC 8460 §3). `Display` writes the canonical form,
/// `v=TLSRPTv1; rua=<uri>[,<uri>...][; <name>=<value>...]`, and parses back to an equal value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsRptRecord {
    /// Where reports go, in the published order; never empty.
    pub rua: Vec<RuaUri>,
    /// Extension fields in the published order (RFC 8460 §3: ignored by senders).
    pub extensions: Vec<(String, String)>,
}

/// Why a TXT string is not a valid TLS-RPT record (RFC 8460 §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record does not begin with a `v=` field.
    #[error("the record does not begin with v=TLSRPTv1")]
    MissingVersion,
    /// `v=` is present but not exactly `TLSRPTv1`.
    #[error("the version is {found:?}, not \"TLSRPTv1\"")]
    Version {
        /// The version text found.
        found: String,
    },
    /// Two delimiters with no field between them (`;;`).
    #[error("empty field {index} (two \";\" in a row)")]
    EmptyField {
        /// The 1-based position of the field after the version.
        index: usize,
    },
    /// A field without `=`.
    #[error("field {field:?} is not name=value")]
    MalformedField {
        /// The field text.
        field: String,
    },
    /// A field name outside the `tlsrpt-ext-name` grammar.
    #[error(
        "field name {name:?} is not 1-32 letters, digits, '_', '-' or '.' starting with a letter or digit"
    )]
    FieldName {
        /// The name found.
        name: String,
    },
    /// An extension value outside the `tlsrpt-ext-value` grammar.
    #[error(
        "the value of {name:?} is {value:?}: empty, or contains a space, '=' or control character"
    )]
    ExtensionValue {
        /// The field name.
        name: String,
        /// The value found.
        value: String,
    },
    /// A second `v=` field.
    #[error("the field {name:?} appears more than once")]
    DuplicateField {
        /// The repeated field name.
        name: String,
    },
    /// No `rua` field.
    #[error("the record has no rua field")]
    MissingRua,
    /// `rua=` with nothing after it (or only commas).
    #[error("rua= is empty")]
    EmptyRua,
    /// A `rua` URI that is not a valid `mailto:` or `https:` URI.
    #[error("rua URI {uri:?} is invalid: {source}")]
    InvalidRua {
        /// The URI as published.
        uri: String,
        /// What is wrong with it.
        source: RuaError,
    },
}

/// The fields of a record, split but with URIs not yet validated.
struct Fields<'a> {
    /// The URIs of every `rua` field, in order.
    rua: Option<Vec<&'a str>>,
    /// How many `rua` fields there were (RFC 8460 §3 allows more than one).
    rua_fields: usize,
    extensions: Vec<(&'a str, &'a str)>,
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn valid_ext_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= MAX_EXT_NAME_LEN
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn valid_ext_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| matches!(b, 0x21..=0x3A | 0x3C | 0x3E..=0x7E))
}

fn split_fields(s: &str) -> Result<Fields<'_>, RecordError> {
    let mut parts = s.split(';');
    let version = parts.next().unwrap_or_default().trim_end_matches(is_wsp);
    let Some(found) = version.strip_prefix("v=") else {
        return Err(RecordError::MissingVersion);
    };
    if found != VERSION {
        return Err(RecordError::Version {
            found: found.to_owned(),
        });
    }
    let mut fields = Fields {
        rua: None,
        rua_fields: 0,
        extensions: Vec::new(),
    };
    let parts: Vec<&str> = parts.map(|p| p.trim_matches(is_wsp)).collect();
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            // The grammar allows one trailing delimiter, nothing else empty.
            if i == last {
                continue;
            }
            return Err(RecordError::EmptyField { index: i + 1 });
        }
        let Some((name, value)) = part.split_once('=') else {
            return Err(RecordError::MalformedField {
                field: (*part).to_owned(),
            });
        };
        match name {
            "v" => {
                return Err(RecordError::DuplicateField { name: "v".into() });
            }
            "rua" => {
                let uris: Vec<&str> = value
                    .split(',')
                    .map(|u| u.trim_matches(is_wsp))
                    .filter(|u| !u.is_empty())
                    .collect();
                if uris.is_empty() {
                    return Err(RecordError::EmptyRua);
                }
                fields.rua_fields += 1;
                fields.rua.get_or_insert_with(Vec::new).extend(uris);
            }
            _ => {
                if !valid_ext_name(name) {
                    return Err(RecordError::FieldName {
                        name: name.to_owned(),
                    });
                }
                if !valid_ext_value(value) {
                    return Err(RecordError::ExtensionValue {
                        name: name.to_owned(),
                        value: value.to_owned(),
                    });
                }
                fields.extensions.push((name, value));
            }
        }
    }
    Ok(fields)
}

impl FromStr for TlsRptRecord {
    type Err = RecordError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fields = split_fields(s)?;
        let rua = fields
            .rua
            .ok_or(RecordError::MissingRua)?
            .into_iter()
            .map(|u| {
                u.parse::<RuaUri>()
                    .map_err(|source| RecordError::InvalidRua {
                        uri: u.to_owned(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TlsRptRecord {
            rua,
            extensions: owned(fields.extensions),
        })
    }
}

fn owned(ext: Vec<(&str, &str)>) -> Vec<(String, String)> {
    ext.into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

impl fmt::Display for TlsRptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v={VERSION}; rua=")?;
        for (i, uri) in self.rua.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{uri}")?;
        }
        for (name, value) in &self.extensions {
            write!(f, "; {name}={value}")?;
        }
        Ok(())
    }
}

/// The outcome of checking the TXT records at `_smtp._tls.<domain>` (RFC 8460 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEvaluation {
    /// The record senders would use, if any. When some `rua` URIs are invalid it holds only
    /// the valid ones (and there are `tlsrpt.rua.invalid` findings).
    pub record: Option<TlsRptRecord>,
    /// What was found, good and bad.
    pub findings: Vec<Finding>,
}

/// Checks all TXT strings found at `_smtp._tls.<domain>` (RFC 8460 §3), as the checker does.
///
/// Findings: `tlsrpt.txt.missing`, `tlsrpt.txt.multiple`, `tlsrpt.txt.syntax`,
/// `tlsrpt.txt.extension`, `tlsrpt.rua.missing`, `tlsrpt.rua.invalid` (one per bad URI, naming
/// it) or, when all is well, `tlsrpt.txt.ok`.
pub fn evaluate_txt<S: AsRef<str>>(domain: &str, txt_records: &[S]) -> RecordEvaluation {
    let subject = format!("_smtp._tls.{}", domain.trim_end_matches('.'));
    let mut findings = Vec::new();
    let record = match txt::select(txt_records, VERSION) {
        Selection::None { unrelated } => {
            // A record that tries to be TLS-RPT but misspells the version is a syntax error,
            // not an absence: the owner believes reporting is on.
            let near_misses: Vec<&str> = unrelated
                .into_iter()
                .filter(|r| {
                    r.get(..8)
                        .is_some_and(|p| p.eq_ignore_ascii_case("v=tlsrpt"))
                })
                .collect();
            if near_misses.is_empty() {
                findings.push(Finding::new(
                    Code::TlsrptTxtMissing,
                    Severity::Warning,
                    &subject,
                    "no TXT record beginning with v=TLSRPTv1: TLS failures of mail sent to this domain are not reported",
                ));
            }
            for r in near_misses {
                let why = split_fields(r)
                    .err()
                    .map_or_else(|| "it is not v=TLSRPTv1".to_owned(), |e| e.to_string());
                findings.push(Finding::new(
                    Code::TlsrptTxtSyntax,
                    Severity::Error,
                    &subject,
                    format!("{r:?} looks like a TLS-RPT record, but senders ignore it: {why}"),
                ));
            }
            None
        }
        Selection::Multiple { records, .. } => {
            findings.push(Finding::new(
                Code::TlsrptTxtMultiple,
                Severity::Error,
                &subject,
                format!(
                    "{} records begin with v=TLSRPTv1 ({}); senders then send no reports",
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
        Selection::One { record, .. } => evaluate_one(&subject, record, &mut findings),
    };
    if findings.iter().all(|f| f.severity <= Severity::Info)
        && let Some(r) = &record
    {
        findings.push(Finding::new(
            Code::TlsrptTxtOk,
            Severity::Ok,
            &subject,
            format!("one valid TLS-RPT record: {r}"),
        ));
    }
    RecordEvaluation { record, findings }
}

fn evaluate_one(subject: &str, text: &str, findings: &mut Vec<Finding>) -> Option<TlsRptRecord> {
    let fields = match split_fields(text) {
        Ok(f) => f,
        Err(RecordError::EmptyRua) => {
            findings.push(Finding::new(
                Code::TlsrptRuaMissing,
                Severity::Error,
                subject,
                format!("{text:?} has an empty rua=: reports have nowhere to go"),
            ));
            return None;
        }
        Err(e) => {
            findings.push(Finding::new(
                Code::TlsrptTxtSyntax,
                Severity::Error,
                subject,
                format!("{text:?} does not parse: {e}"),
            ));
            return None;
        }
    };
    if fields.rua_fields > 1 {
        findings.push(Finding::new(
            Code::TlsrptRuaDuplicate,
            Severity::Warning,
            subject,
            format!(
                "{text:?} has {} rua fields; the record is valid (RFC 8460 §3), but senders differ in which one they use, so some reports may go to only one of the addresses",
                fields.rua_fields
            ),
        ));
    }
    for (name, value) in &fields.extensions {
        findings.push(Finding::new(
            Code::TlsrptTxtExtension,
            Severity::Info,
            subject,
            format!("extension field {name}={value} (ignored by senders)"),
        ));
    }
    let Some(uris) = fields.rua else {
        findings.push(Finding::new(
            Code::TlsrptRuaMissing,
            Severity::Error,
            subject,
            format!("{text:?} has no rua= field: reports have nowhere to go"),
        ));
        return None;
    };
    let mut rua = Vec::new();
    for uri in uris {
        match uri.parse::<RuaUri>() {
            Ok(u) => rua.push(u),
            Err(e) => findings.push(Finding::new(
                Code::TlsrptRuaInvalid,
                Severity::Error,
                subject,
                format!("rua URI {uri:?} is invalid: {e}"),
            )),
        }
    }
    if rua.is_empty() {
        return None;
    }
    Some(TlsRptRecord {
        rua,
        extensions: owned(fields.extensions),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8460_3_good_records_and_their_canonical_form() {
        // (published, canonical Display)
        let good: &[(&str, &str)] = &[
            (
                "v=TLSRPTv1;rua=mailto:reports@example.com",
                "v=TLSRPTv1; rua=mailto:reports@example.com",
            ),
            (
                "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
                "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
            ),
            (
                "v=TLSRPTv1 ; rua=mailto:a@example.com , https://r.example.net/x ;",
                "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example.net/x",
            ),
            (
                "v=TLSRPTv1;\trua=mailto:a@example.com; \t",
                "v=TLSRPTv1; rua=mailto:a@example.com",
            ),
            (
                "v=TLSRPTv1; ext.1=x:y; rua=mailto:a@example.com",
                "v=TLSRPTv1; rua=mailto:a@example.com; ext.1=x:y",
            ),
        ];
        for (input, canonical) in good {
            let r: TlsRptRecord = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *canonical);
            assert_eq!(canonical.parse::<TlsRptRecord>(), Ok(r));
        }
    }

    #[test]
    fn rfc8460_3_bad_records() {
        let bad: &[(&str, &str)] = &[
            ("rua=mailto:a@example.com", "no version"),
            ("v=TLSRPTv2; rua=mailto:a@example.com", "another version"),
            (
                "v=tlsrptv1; rua=mailto:a@example.com",
                "version is case-sensitive",
            ),
            ("v=TLSRPTv1", "no rua"),
            ("v=TLSRPTv1;", "no rua, trailing delimiter only"),
            ("v=TLSRPTv1;; rua=mailto:a@example.com", "empty field"),
            ("v=TLSRPTv1; rua", "field without ="),
            ("v=TLSRPTv1; rua=", "empty rua"),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com; _x=1",
                "name starts with _",
            ),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com; x=a b",
                "space in extension value",
            ),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com; x=a=b",
                "= in extension value",
            ),
            ("v=TLSRPTv1; rua=http://example.com/r", "plain http"),
            ("v=TLSRPTv1; rua=reports@example.com", "no scheme"),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com!10m",
                "DMARC size suffix",
            ),
            (" v=TLSRPTv1; rua=mailto:a@example.com", "leading space"),
        ];
        for (input, why) in bad {
            assert!(input.parse::<TlsRptRecord>().is_err(), "{input:?}: {why}");
        }
    }

    /// RFC 8460 §3 allows repeated fields: `tlsrpt-record = tlsrpt-version
    /// 1*(field-delim tlsrpt-field) [field-delim]` with `tlsrpt-field = tlsrpt-rua /
    /// tlsrpt-extension`, and it has no counterpart of RFC 8461 §3.2's "If any non-repeated
    /// field -- i.e., all fields excepting "mx" -- is duplicated, all entries except for the
    /// first SHALL be ignored." So two `rua` fields make a valid record, with a warning.
    #[test]
    fn rfc8460_3_two_rua_fields_are_valid_with_a_warning() {
        let text = "v=TLSRPTv1; rua=mailto:a@example.com; rua=https://r.example.net/x,mailto:b@example.com";
        let r: TlsRptRecord = text.parse().expect("valid");
        let uris: Vec<String> = r.rua.iter().map(ToString::to_string).collect();
        assert_eq!(
            uris,
            [
                "mailto:a@example.com",
                "https://r.example.net/x",
                "mailto:b@example.com"
            ]
        );
        assert_eq!(r.to_string().parse::<TlsRptRecord>(), Ok(r.clone()));
        let ev = evaluate_txt("example.com", &[text]);
        let codes: Vec<(&str, Severity)> = ev
            .findings
            .iter()
            .map(|f| (f.code.as_str(), f.severity))
            .collect();
        assert_eq!(codes, [("tlsrpt.rua.duplicate", Severity::Warning)]);
        assert_eq!(ev.record, Some(r));
        // A repeated rua whose second value is empty is still an empty rua.
        assert!(
            "v=TLSRPTv1; rua=mailto:a@example.com; rua="
                .parse::<TlsRptRecord>()
                .is_err()
        );
    }

    #[test]
    fn rfc8460_3_evaluator_names_every_bad_uri() {
        let txt = ["v=TLSRPTv1; rua=mailto:ok@example.com,http://a.example/x,nope; foo=bar"];
        let ev = evaluate_txt("example.com", &txt);
        let codes: Vec<&str> = ev.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "tlsrpt.txt.extension",
                "tlsrpt.rua.invalid",
                "tlsrpt.rua.invalid"
            ]
        );
        assert!(ev.findings[1].message.contains("http://a.example/x"));
        assert!(ev.findings[2].message.contains("\"nope\""));
        assert_eq!(ev.record.map(|r| r.rua.len()), Some(1));
    }

    #[test]
    fn rfc8460_3_evaluator_outcomes() {
        let table: &[(&[&str], &[&str])] = &[
            (&[], &["tlsrpt.txt.missing"]),
            (&["v=spf1 -all"], &["tlsrpt.txt.missing"]),
            (
                &["v=TLSRPTv1; rua=mailto:a@example.com"],
                &["tlsrpt.txt.ok"],
            ),
            (
                &["v=TLSRPTv1; rua=mailto:a@example.com; x=1"],
                &["tlsrpt.txt.extension", "tlsrpt.txt.ok"],
            ),
            (
                &[
                    "v=TLSRPTv1; rua=mailto:a@example.com",
                    "v=TLSRPTv1; rua=mailto:b@example.com",
                ],
                &["tlsrpt.txt.multiple"],
            ),
            (
                &["v=TLSRPTv1; x=1"],
                &["tlsrpt.txt.extension", "tlsrpt.rua.missing"],
            ),
            (&["v=TLSRPTv1; rua="], &["tlsrpt.rua.missing"]),
            (
                &["v=TLSRPTv1;; rua=mailto:a@example.com"],
                &["tlsrpt.txt.syntax"],
            ),
            (
                &["v=TLSRPT1; rua=mailto:a@example.com"],
                &["tlsrpt.txt.syntax"],
            ),
        ];
        for (txt, want) in table {
            let ev = evaluate_txt("example.com.", txt);
            let codes: Vec<&str> = ev.findings.iter().map(|f| f.code.as_str()).collect();
            assert_eq!(&codes, want, "{txt:?}");
            assert!(
                ev.findings
                    .iter()
                    .all(|f| f.subject == "_smtp._tls.example.com")
            );
        }
    }
}
