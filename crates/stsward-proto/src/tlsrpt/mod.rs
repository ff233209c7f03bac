//! RFC 8460 — SMTP TLS Reporting (TLS-RPT)
//!
//! - [`record`]: the `_smtp._tls` TXT record (RFC 8460 §3) and its checker findings;
//!   [`uri`]: its `rua` reporting URIs.
//! - [`result_type`]: result types (RFC 8460 §4.3) and policy types (§4.4), with the one
//!   mapping from result types to finding codes.
//! - [`report`]: the report model (RFC 8460 §4.4) and its RFC-conformant JSON;
//!   [`parse`]: the lenient report parser; [`deviation`]: how a report strayed from the
//!   schema; [`datetime`]: report date-times.
//!
//! Nothing here does I/O: reports come in as bytes, records as strings.

pub mod datetime;
pub mod deviation;
pub mod parse;
pub mod record;
pub mod report;
pub mod result_type;
pub mod rfc_json;
pub mod uri;

pub use datetime::{DateTimeError, ReportDateTime};
pub use deviation::Deviation;
pub use parse::{CountReason, ParsedReport, ReportError, parse_report};
pub use record::{RecordError, RecordEvaluation, TlsRptRecord, evaluate_txt};
pub use report::{
    DateRange, Extensions, FailureCount, FailureDetail, Policy, PolicyResult, Report, Summary,
    Totals,
};
pub use result_type::{PolicyType, ResultType};
pub use rfc_json::RfcJson;
pub use uri::{HttpsUri, MailtoUri, RuaError, RuaUri};
