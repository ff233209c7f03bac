//! RFC 8460 §4.4 — reading a TLS-RPT report, leniently
//!
//! Real senders deviate from RFC 8460 §4.4 (see `shared/corpus/README.md`): `mx-host` as a
//! string (the RFC's own example) or an array (errata 6241); the prose's key names
//! `mx-host-pattern` and `additional-info-uri` next to the schema's; the draft-era
//! `failure-error-code`; date-times without an offset; a `sending-mta-ip` of `x.x.x.x`;
//! failure counts that do not add up. This parser accepts all of that, records each departure
//! as a [`Deviation`], and never turns a bad value into a silent default. What is not a report
//! at all gets a specific [`ReportError`].
//!
//! The input is parsed once into a tree and then walked, moving values out, so the cost
//! stays close to that of the JSON parse itself. The common case, well-formed JSON with
//! plain integer counts, is read by a small parser into a borrowed tree without hashing
//! (`fast`); anything it does not accept, and every input that turns out not to be a
//! report, goes through `serde_json::Value`, the reference, so that results, deviations and
//! errors are the reference's in every case. Both trees are walked by the same code.

use serde_json::Value;

use super::datetime::{DateTimeError, DateTimeLeniency, ReportDateTime};
use super::deviation::{Deviation, codes};
use super::report::{DateRange, Extensions, FailureDetail, Policy, PolicyResult, Report, Summary};
use super::result_type::{PolicyType, ResultType};

mod access;
mod fast;

use access::{
    CountForm, ID, Node, ORG, POLICIES, Ptr, RANGE, ROOT, count, object, required, string,
    string_array, wrong,
};

/// A report together with every way it departed from RFC 8460 §4.4.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReport {
    /// The report.
    pub report: Report,
    /// The departures, in document order; empty for a conformant report.
    pub deviations: Vec<Deviation>,
}

/// Why bytes are not a readable TLS-RPT report (RFC 8460 §4.4).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Nothing but whitespace (or a byte-order mark).
    #[error("the input is empty")]
    Empty,
    /// Not JSON (RFC 8259).
    #[error("the input is not JSON: {source}")]
    NotJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The JSON parser's error.
        source: serde_json::Error,
    },
    /// JSON, but not an object.
    #[error("the JSON is {found}, not an object, so it is not a TLS-RPT report")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// A JSON object without the members that make a TLS-RPT report.
    #[error("the JSON object is not a TLS-RPT report: it has no {missing}")]
    NotAReport {
        /// What is missing.
        missing: &'static str,
    },
    /// A member of the wrong JSON type.
    #[error("field {field} has type {found}, expected {expected}")]
    FieldType {
        /// JSON pointer to the member.
        field: String,
        /// The type RFC 8460 §4.4 requires.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A required member is missing and no default would be honest.
    #[error("required field {field} is missing")]
    MissingField {
        /// JSON pointer to the member.
        field: String,
    },
    /// A session count that is not a non-negative whole number, even read leniently
    /// (`5.5`, `-1`, `"five"`, or more than `u64` holds). Whole numbers written as a float
    /// (`5.0`) or a string (`"5"`) are accepted with a deviation instead.
    #[error("field {field} is {value:?}, not a count of sessions: {reason}")]
    Count {
        /// JSON pointer to the member.
        field: String,
        /// The number or string as sent.
        value: String,
        /// Why it is not a count.
        reason: CountReason,
    },
    /// A date-time that cannot be read, even leniently.
    #[error("field {field} is not a date-time: {source}")]
    DateTime {
        /// JSON pointer to the member.
        field: String,
        /// What is wrong with it.
        source: DateTimeError,
    },
}

/// Why a session count was refused (RFC 8460 §4.4 counts are non-negative integers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CountReason {
    /// Below zero.
    #[error("it is negative")]
    Negative,
    /// Not a whole number (`5.5`).
    #[error("it has a fractional part")]
    Fraction,
    /// Larger than 18446744073709551615.
    #[error("it is too large")]
    TooLarge,
    /// A string (or number text) that is not a number at all.
    #[error("it is not a number")]
    NotANumber,
}

/// The UTF-8 byte-order mark, which RFC 8259 §8.1 forbids at the start of JSON text.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses a TLS-RPT report (RFC 8460 §4.4) from its JSON bytes, leniently.
pub fn parse_report(bytes: &[u8]) -> Result<ParsedReport, ReportError> {
    // Leading whitespace is valid JSON and stays, so that error lines match the input.
    let (bom, bytes) = match bytes.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    if let Some(tree) = fast::parse(bytes) {
        let mut w = Walker::new(bom);
        // A tree the walker cannot read, or an extension the fast tree cannot render
        // exactly, goes to the reference below, which then also names the error.
        if let Ok(report) = w.report(tree)
            && !w.bailed
        {
            return Ok(ParsedReport {
                report,
                deviations: w.deviations,
            });
        }
    }
    parse_reference(bom, bytes)
}

/// [`parse_report`] through `serde_json::Value` only: the reference the fast path must
/// agree with. `bom` says whether a byte-order mark was stripped from `bytes`.
fn parse_reference(bom: bool, bytes: &[u8]) -> Result<ParsedReport, ReportError> {
    let mut w = Walker::new(bom);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ReportError::Empty);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|source| ReportError::NotJson {
        line: source.line(),
        column: source.column(),
        source,
    })?;
    let report = w.report(value)?;
    Ok(ParsedReport {
        report,
        deviations: w.deviations,
    })
}

struct Walker {
    deviations: Vec<Deviation>,
    /// Set when an extension could not be kept exactly (fast tree only): the result must
    /// then come from the reference.
    bailed: bool,
}

impl Walker {
    fn new(bom: bool) -> Self {
        let mut w = Walker {
            deviations: Vec::new(),
            bailed: false,
        };
        if bom {
            w.deviate(
                codes::BOM,
                &ROOT,
                "the report begins with a UTF-8 byte-order mark",
            );
        }
        w
    }

    /// Keeps an unknown member as an extension (RFC 8460 §4.4 members are open-ended).
    fn extend<N: Node>(&mut self, extensions: &mut Extensions, k: N::Key, v: N) {
        match v.into_value() {
            Some(v) => {
                extensions.insert(k.into(), v);
            }
            None => self.bailed = true,
        }
    }

    fn deviate(&mut self, code: &'static str, path: &Ptr<'_>, msg: impl Into<String>) {
        self.deviations
            .push(Deviation::new(code, path.to_string(), msg));
    }

    /// A session count (RFC 8460 §4.4). A whole number written as a float or a string is
    /// read, with a deviation; anything else that is not a count is an error.
    fn count<N: Node>(&mut self, v: N, field: &Ptr<'_>) -> Result<u64, ReportError> {
        let (n, form, shown) = count(v, field)?;
        match form {
            CountForm::Integer => {}
            CountForm::Float => self.deviate(
                codes::COUNT_FLOAT,
                field,
                format!("the count is written {shown}, not as an integer; read as {n}"),
            ),
            CountForm::String => self.deviate(
                codes::COUNT_STRING,
                field,
                format!("the count is the string {shown}, not a number; read as {n}"),
            ),
        }
        Ok(n)
    }

    /// An optional string member: `null` is read as absent, with a deviation.
    fn opt_string<N: Node>(
        &mut self,
        v: Option<N>,
        field: &Ptr<'_>,
    ) -> Result<Option<String>, ReportError> {
        match v {
            None => Ok(None),
            Some(v) if v.is_null() => {
                self.deviate(
                    codes::NULL_VALUE,
                    field,
                    "the member is null; read as absent",
                );
                Ok(None)
            }
            Some(v) => string(v, field).map(Some),
        }
    }

    fn report<N: Node>(&mut self, value: N) -> Result<Report, ReportError> {
        let obj = match value.into_object() {
            Ok(m) => m,
            Err(other) => {
                return Err(ReportError::NotAnObject {
                    found: other.type_name(),
                });
            }
        };
        let (mut org, mut range, mut contact, mut id, mut policies) =
            (None, None, None, None, None);
        let mut extensions = Extensions::new();
        for (k, v) in obj {
            match k.as_ref() {
                "organization-name" => org = Some(v),
                "date-range" => range = Some(v),
                "contact-info" => contact = Some(v),
                "report-id" => id = Some(v),
                "policies" => policies = Some(v),
                _ => self.extend(&mut extensions, k, v),
            }
        }
        match (&policies, &org, &id) {
            (None, None, None) => {
                return Err(ReportError::NotAReport {
                    missing: "policies, report-id or organization-name",
                });
            }
            (None, _, _) => {
                return Err(ReportError::NotAReport {
                    missing: "policies",
                });
            }
            (Some(_), None, None) => {
                return Err(ReportError::NotAReport {
                    missing: "report-id and no organization-name",
                });
            }
            _ => {}
        }
        let organization_name = string(required(org, &ORG)?, &ORG)?;
        let report_id = string(required(id, &ID)?, &ID)?;
        let date_range = self.date_range(required(range, &RANGE)?)?;
        let contact_info = self.opt_string(contact, &ROOT.key("contact-info"))?;
        let policies = match policies.map(N::into_array) {
            Some(Ok(items)) => items,
            Some(Err(other)) => return Err(wrong(&POLICIES, "array", &other)),
            None => Vec::new(),
        };
        if policies.is_empty() {
            self.deviate(
                codes::POLICIES_EMPTY,
                &POLICIES,
                "the report lists no policies",
            );
        }
        let policies = policies
            .into_iter()
            .enumerate()
            .map(|(i, p)| self.policy_result(p, &POLICIES.index(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Report {
            organization_name,
            date_range,
            contact_info,
            report_id,
            policies,
            extensions,
        })
    }

    fn datetime<N: Node>(&mut self, v: N, field: &Ptr<'_>) -> Result<ReportDateTime, ReportError> {
        let s = string(v, field)?;
        let (dt, leniency) =
            ReportDateTime::parse_lenient(&s).map_err(|source| ReportError::DateTime {
                field: field.to_string(),
                source,
            })?;
        for l in leniency {
            match l {
                DateTimeLeniency::NoOffset => self.deviate(
                    codes::DATETIME_NO_OFFSET,
                    field,
                    format!("{s:?} has no Z or offset; read as UTC"),
                ),
                DateTimeLeniency::SpaceSeparator => self.deviate(
                    codes::DATETIME_SEPARATOR,
                    field,
                    format!("{s:?} separates date and time with a space instead of T"),
                ),
            }
        }
        Ok(dt)
    }

    fn date_range<N: Node>(&mut self, v: N) -> Result<DateRange, ReportError> {
        let obj = object(v, &RANGE)?;
        let (mut start, mut end) = (None, None);
        let mut extensions = Extensions::new();
        for (k, v) in obj {
            match k.as_ref() {
                "start-datetime" => start = Some(v),
                "end-datetime" => end = Some(v),
                _ => self.extend(&mut extensions, k, v),
            }
        }
        let (start_ptr, end_ptr) = (RANGE.key("start-datetime"), RANGE.key("end-datetime"));
        let start = self.datetime(required(start, &start_ptr)?, &start_ptr)?;
        let end = self.datetime(required(end, &end_ptr)?, &end_ptr)?;
        if end < start {
            self.deviate(
                codes::DATE_RANGE_INVERTED,
                &RANGE,
                format!("the range ends ({end}) before it starts ({start})"),
            );
        }
        Ok(DateRange {
            start,
            end,
            extensions,
        })
    }

    fn policy_result<N: Node>(
        &mut self,
        v: N,
        path: &Ptr<'_>,
    ) -> Result<PolicyResult, ReportError> {
        let obj = object(v, path)?;
        let (mut policy, mut summary, mut details) = (None, None, None);
        let mut extensions = Extensions::new();
        for (k, v) in obj {
            match k.as_ref() {
                "policy" => policy = Some(v),
                "summary" => summary = Some(v),
                "failure-details" => details = Some(v),
                _ => self.extend(&mut extensions, k, v),
            }
        }
        let policy_path = path.key("policy");
        let policy = self.policy(required(policy, &policy_path)?, &policy_path)?;
        let summary_path = path.key("summary");
        let summary = self.summary(required(summary, &summary_path)?, &summary_path)?;
        let details_path = path.key("failure-details");
        let details = match details {
            None => Vec::new(),
            Some(v) if v.is_null() => {
                self.deviate(
                    codes::NULL_VALUE,
                    &details_path,
                    "failure-details is null; read as none",
                );
                Vec::new()
            }
            Some(v) => match v.into_array() {
                Ok(items) => items,
                Err(other) => return Err(wrong(&details_path, "array", &other)),
            },
        };
        let failure_details = details
            .into_iter()
            .enumerate()
            .map(|(i, d)| self.failure_detail(d, &details_path.index(i)))
            .collect::<Result<Vec<_>, _>>()?;
        // Failure details that add up to more than the total are no deviation. RFC 8460 §4:
        // "Note that the failure types are non-exclusive; an aggregate report may contain
        // overlapping "counts" of failure types when a single send attempt encountered
        // multiple errors."
        Ok(PolicyResult {
            policy,
            summary,
            failure_details,
            extensions,
        })
    }

    /// `mx-host` (or its alias): an array of strings, or one string (a deviation).
    fn mx_hosts<N: Node>(&mut self, v: N, field: &Ptr<'_>) -> Result<Vec<String>, ReportError> {
        match v.into_string() {
            Ok(s) if s.is_empty() => {
                self.deviate(
                    codes::MX_HOST_EMPTY,
                    field,
                    "mx-host is an empty string; read as no patterns",
                );
                Ok(Vec::new())
            }
            Ok(s) => {
                self.deviate(
                    codes::MX_HOST_STRING,
                    field,
                    format!("mx-host is the string {s:?}, not an array (RFC 8460 errata 6241)"),
                );
                Ok(vec![s])
            }
            Err(other) => string_array(other, field),
        }
    }

    fn policy<N: Node>(&mut self, v: N, path: &Ptr<'_>) -> Result<Policy, ReportError> {
        let obj = object(v, path)?;
        let (mut ptype, mut pstring, mut domain, mut mx, mut mx_alias) =
            (None, None, None, None, None);
        let mut extensions = Extensions::new();
        for (k, v) in obj {
            match k.as_ref() {
                "policy-type" => ptype = Some(v),
                "policy-string" => pstring = Some(v),
                "policy-domain" => domain = Some(v),
                "mx-host" => mx = Some(v),
                "mx-host-pattern" => mx_alias = Some((k, v)),
                _ => self.extend(&mut extensions, k, v),
            }
        }
        let type_path = path.key("policy-type");
        let policy_type: PolicyType =
            match string(required(ptype, &type_path)?, &type_path)?.parse() {
                Ok(t) => t,
                Err(never) => match never {},
            };
        if let PolicyType::Other(t) = &policy_type {
            self.deviate(
                codes::POLICY_TYPE_UNKNOWN,
                &type_path,
                format!("policy-type {t:?} is not sts, tlsa or no-policy-found; kept as is"),
            );
        }

        let ps_path = path.key("policy-string");
        let mut policy_string = match pstring.map(N::into_string) {
            None => Vec::new(),
            Some(Ok(s)) => {
                self.deviate(
                    codes::POLICY_STRING_STRING,
                    &ps_path,
                    "policy-string is a string, not an array",
                );
                vec![s]
            }
            Some(Err(other)) => string_array(other, &ps_path)?,
        };
        if matches!(policy_type, PolicyType::Sts | PolicyType::Tlsa) && policy_string.is_empty() {
            self.deviate(
                codes::POLICY_STRING_MISSING,
                &ps_path,
                format!("the {policy_type} policy has no policy-string"),
            );
        }
        // Microsoft sends the TLSA records as one string holding a JSON array; RFC 8460 §4.5
        // wants one array element per record.
        if policy_type == PolicyType::Tlsa
            && let [only] = policy_string.as_slice()
            && only.trim_start().starts_with('[')
            && let Ok(records) = serde_json::from_str::<Vec<String>>(only)
        {
            self.deviate(
                codes::TLSA_POLICY_STRING_JSON,
                &ps_path,
                format!(
                    "policy-string holds {} TLSA records as one JSON-encoded string; unpacked",
                    records.len()
                ),
            );
            policy_string = records;
        }

        let domain_path = path.key("policy-domain");
        let policy_domain = self.opt_string(domain, &domain_path)?;
        if policy_domain.is_none() {
            self.deviate(
                codes::POLICY_DOMAIN_MISSING,
                &domain_path,
                "the policy has no policy-domain",
            );
        }

        let mx_path = path.key("mx-host");
        let mx_host = match (mx, mx_alias) {
            (Some(v), None) => self.mx_hosts(v, &mx_path)?,
            (None, Some((_, v))) => {
                let alias_path = path.key("mx-host-pattern");
                self.deviate(
                    codes::MX_HOST_PATTERN_KEY,
                    &alias_path,
                    "the prose key mx-host-pattern is used instead of the schema key mx-host",
                );
                self.mx_hosts(v, &alias_path)?
            }
            (Some(v), Some((k, alias))) => {
                self.deviate(
                    codes::DUPLICATE_ALIAS,
                    &path.key("mx-host-pattern"),
                    "both mx-host and mx-host-pattern are present; mx-host used, the other kept as an extension",
                );
                self.extend(&mut extensions, k, alias);
                self.mx_hosts(v, &mx_path)?
            }
            (None, None) => Vec::new(),
        };
        Ok(Policy {
            policy_type,
            policy_string,
            policy_domain,
            mx_host,
            extensions,
        })
    }

    fn summary<N: Node>(&mut self, v: N, path: &Ptr<'_>) -> Result<Summary, ReportError> {
        let obj = object(v, path)?;
        let (mut ok, mut failed) = (None, None);
        let mut extensions = Extensions::new();
        for (k, v) in obj {
            match k.as_ref() {
                "total-successful-session-count" => ok = Some(v),
                "total-failure-session-count" => failed = Some(v),
                _ => self.extend(&mut extensions, k, v),
            }
        }
        let ok_path = path.key("total-successful-session-count");
        let total_successful_session_count = self.count(required(ok, &ok_path)?, &ok_path)?;
        let failed_path = path.key("total-failure-session-count");
        let total_failure_session_count = match failed {
            Some(v) => Some(self.count(v, &failed_path)?),
            // Kept absent, not replaced by the sum of the failure details: RFC 8460 §4 lets
            // failure counts overlap, so the sum is only an estimate of the total
            // (`Summary::failure_count` offers it, marked as such).
            None => {
                self.deviate(
                    codes::TOTAL_FAILURE_MISSING,
                    &failed_path,
                    "the summary has no total-failure-session-count; it stays unknown",
                );
                None
            }
        };
        Ok(Summary {
            total_successful_session_count,
            total_failure_session_count,
            extensions,
        })
    }

    fn failure_detail<N: Node>(
        &mut self,
        v: N,
        path: &Ptr<'_>,
    ) -> Result<FailureDetail, ReportError> {
        let obj = object(v, path)?;
        let mut slots: [Option<N>; 8] = [None, None, None, None, None, None, None, None];
        let (mut info_alias, mut code_alias) = (None, None);
        let mut extensions = Extensions::new();
        for (k, v) in obj {
            let slot = match k.as_ref() {
                "result-type" => 0,
                "sending-mta-ip" => 1,
                "receiving-mx-hostname" => 2,
                "receiving-mx-helo" => 3,
                "receiving-ip" => 4,
                "failed-session-count" => 5,
                "additional-information" => 6,
                "failure-reason-code" => 7,
                "additional-info-uri" => {
                    info_alias = Some((k, v));
                    continue;
                }
                "failure-error-code" => {
                    code_alias = Some((k, v));
                    continue;
                }
                _ => {
                    self.extend(&mut extensions, k, v);
                    continue;
                }
            };
            if let Some(s) = slots.get_mut(slot) {
                *s = Some(v);
            }
        }
        let [rt, ip, mx, helo, rip, n, info, code] = slots;
        let f = |name: &'static str| path.key(name);

        let rt_path = f("result-type");
        let result_type: ResultType = match string(required(rt, &rt_path)?, &rt_path)?.parse() {
            Ok(t) => t,
            Err(never) => match never {},
        };
        if let ResultType::Other(t) = &result_type {
            self.deviate(
                codes::RESULT_TYPE_UNKNOWN,
                &rt_path,
                format!("result-type {t:?} is not one RFC 8460 §4.3 defines; kept as is"),
            );
        }

        let ip_path = f("sending-mta-ip");
        let sending_mta_ip = match self.opt_string(ip, &ip_path)? {
            None => {
                self.deviate(
                    codes::SENDING_MTA_IP_MISSING,
                    &ip_path,
                    "the failure detail has no sending-mta-ip",
                );
                None
            }
            Some(s) if s.is_empty() => {
                self.deviate(
                    codes::SENDING_MTA_IP_EMPTY,
                    &ip_path,
                    "sending-mta-ip is an empty string; read as absent",
                );
                None
            }
            Some(s) => {
                if s.parse::<std::net::IpAddr>().is_err() {
                    self.deviate(
                        codes::SENDING_MTA_IP_INVALID,
                        &ip_path,
                        format!("sending-mta-ip {s:?} is not an IP address; kept as text"),
                    );
                }
                Some(s)
            }
        };
        let receiving_mx_hostname = self.opt_string(mx, &f("receiving-mx-hostname"))?;
        let receiving_mx_helo = self.opt_string(helo, &f("receiving-mx-helo"))?;
        let rip_path = f("receiving-ip");
        let receiving_ip = self.opt_string(rip, &rip_path)?;
        if let Some(s) = &receiving_ip
            && s.parse::<std::net::IpAddr>().is_err()
        {
            self.deviate(
                codes::RECEIVING_IP_INVALID,
                &rip_path,
                format!("receiving-ip {s:?} is not an IP address; kept as text"),
            );
        }
        let n_path = f("failed-session-count");
        let failed_session_count = self.count(required(n, &n_path)?, &n_path)?;

        let additional_information = self.aliased(
            info,
            info_alias,
            &mut extensions,
            path,
            "additional-information",
            codes::ADDITIONAL_INFO_URI_KEY,
        )?;
        let failure_reason_code = self.aliased(
            code,
            code_alias,
            &mut extensions,
            path,
            "failure-reason-code",
            codes::FAILURE_ERROR_CODE_KEY,
        )?;
        Ok(FailureDetail {
            result_type,
            sending_mta_ip,
            receiving_mx_hostname,
            receiving_mx_helo,
            receiving_ip,
            failed_session_count,
            additional_information,
            failure_reason_code,
            extensions,
        })
    }

    /// An optional string member that senders also write under another key.
    fn aliased<N: Node>(
        &mut self,
        value: Option<N>,
        alias: Option<(N::Key, N)>,
        extensions: &mut Extensions,
        path: &Ptr<'_>,
        key: &str,
        alias_code: &'static str,
    ) -> Result<Option<String>, ReportError> {
        let key_path = path.key(key);
        match (value, alias) {
            (v, None) => self.opt_string(v, &key_path),
            (None, Some((k, v))) => {
                let alias_path = path.key(k.as_ref());
                self.deviate(
                    alias_code,
                    &alias_path,
                    format!("the key {k} is used instead of the schema key {key}"),
                );
                self.opt_string(Some(v), &alias_path)
            }
            (Some(v), Some((k, alias))) => {
                self.deviate(
                    codes::DUPLICATE_ALIAS,
                    &path.key(k.as_ref()),
                    format!("both {key} and {k} are present; {key} used, {k} kept as an extension"),
                );
                self.extend(extensions, k, alias);
                self.opt_string(Some(v), &key_path)
            }
        }
    }
}

#[cfg(test)]
mod agreement_tests;
