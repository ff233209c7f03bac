//! RFC 8460 §4 — the TLS-RPT report model and its RFC-conformant JSON form
//!
//! The shape of RFC 8460 §4.4's JSON schema (a sketch, not the RFC's text):
//!
//! ```text
//! report          = { organization-name, date-range { start-datetime, end-datetime },
//!                     contact-info, report-id, policies [ policy-result ] }   ; §4.4
//! policy-result   = { policy { policy-type, policy-string [], policy-domain, mx-host [] },
//!                     summary { total-successful-session-count,
//!                               total-failure-session-count },
//!                     failure-details [ failure-detail ] }
//! failure-detail  = { result-type, sending-mta-ip, receiving-mx-hostname,
//!                     receiving-mx-helo, receiving-ip, failed-session-count,
//!                     additional-information, failure-reason-code }
//! ```
//!
//! `mx-host` is an array, as the schema has it and as erratum 6241 asks of the RFC's
//! Appendix B example (which shows a string). Members this model does
//! not know are kept in `extensions` at every level and written back, so nothing a sender
//! sent is lost. Reading a report is [`super::parse_report`]; writing one is
//! [`Report::to_rfc_json`].

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::datetime::ReportDateTime;
use super::result_type::{PolicyType, ResultType};

/// Unknown JSON members (RFC 8460 §4.4 extensions), kept in the order received.
pub type Extensions = Map<String, Value>;

/// One TLS-RPT report (RFC 8460 §4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `organization-name`: who sent the report.
    pub organization_name: String,
    /// `date-range`: the period the report covers (RFC 8460 §4.1).
    pub date_range: DateRange,
    /// `contact-info`: whom to ask about it, when given.
    pub contact_info: Option<String>,
    /// `report-id`: the sender's unique identifier for this report.
    pub report_id: String,
    /// `policies`: one result per policy applied.
    pub policies: Vec<PolicyResult>,
    /// Unknown top-level members.
    pub extensions: Extensions,
}

/// `date-range` (RFC 8460 §4.1, §4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct DateRange {
    /// `start-datetime`.
    pub start: ReportDateTime,
    /// `end-datetime`.
    pub end: ReportDateTime,
    /// Unknown members.
    pub extensions: Extensions,
}

/// One element of `policies` (RFC 8460 §4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyResult {
    /// `policy`: what was applied.
    pub policy: Policy,
    /// `summary`: how many sessions succeeded and failed (RFC 8460 §4.2).
    pub summary: Summary,
    /// `failure-details`: the failures, grouped (empty when there were none).
    pub failure_details: Vec<FailureDetail>,
    /// Unknown members.
    pub extensions: Extensions,
}

/// `policy` (RFC 8460 §4.4, §4.5).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `policy-type`.
    pub policy_type: PolicyType,
    /// `policy-string`: the policy as the sender saw it, one element per line (MTA-STS) or per
    /// TLSA record (RFC 8460 §4.5). Empty when the sender gave none.
    pub policy_string: Vec<String>,
    /// `policy-domain`; `None` when the sender left it out (a deviation).
    pub policy_domain: Option<String>,
    /// `mx-host`: the MX patterns of an MTA-STS policy. Empty when the sender gave none.
    pub mx_host: Vec<String>,
    /// Unknown members.
    pub extensions: Extensions,
}

/// `summary` (RFC 8460 §4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// `total-successful-session-count` (RFC 8460 §4.2.1).
    pub total_successful_session_count: u64,
    /// `total-failure-session-count` (RFC 8460 §4.2.2); `None` when the sender left it out
    /// (a deviation). Never filled in from the failure details, whose counts may overlap
    /// (RFC 8460 §4); [`Summary::failure_count`] offers their sum, marked as an estimate.
    pub total_failure_session_count: Option<u64>,
    /// Unknown members.
    pub extensions: Extensions,
}

/// One element of `failure-details` (RFC 8460 §4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct FailureDetail {
    /// `result-type` (RFC 8460 §4.3).
    pub result_type: ResultType,
    /// `sending-mta-ip`, exactly as sent (it may not be an address; see
    /// [`FailureDetail::sending_mta_ip_addr`]).
    pub sending_mta_ip: Option<String>,
    /// `receiving-mx-hostname`.
    pub receiving_mx_hostname: Option<String>,
    /// `receiving-mx-helo`.
    pub receiving_mx_helo: Option<String>,
    /// `receiving-ip`, exactly as sent.
    pub receiving_ip: Option<String>,
    /// `failed-session-count`.
    pub failed_session_count: u64,
    /// `additional-information`: a URI with more detail.
    pub additional_information: Option<String>,
    /// `failure-reason-code`: free text, e.g. an OpenSSL error name.
    pub failure_reason_code: Option<String>,
    /// Unknown members.
    pub extensions: Extensions,
}

impl FailureDetail {
    /// `sending-mta-ip` as an address, when it is one (RFC 8460 §4.4).
    pub fn sending_mta_ip_addr(&self) -> Option<IpAddr> {
        self.sending_mta_ip.as_deref().and_then(|s| s.parse().ok())
    }

    /// `receiving-ip` as an address, when it is one (RFC 8460 §4.4).
    pub fn receiving_ip_addr(&self) -> Option<IpAddr> {
        self.receiving_ip.as_deref().and_then(|s| s.parse().ok())
    }
}

/// A number of failed sessions, and whether the sender stated it or it is an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FailureCount {
    /// The number of failed sessions.
    pub sessions: u64,
    /// `true` when the sender gave no `total-failure-session-count` and this is the sum of the
    /// failure details instead. That sum can exceed the real total, because RFC 8460 §4 says
    /// "the failure types are non-exclusive; an aggregate report may contain overlapping
    /// "counts" of failure types when a single send attempt encountered multiple errors."
    pub estimated: bool,
}

impl Summary {
    /// The failure count of this policy for summaries: the sender's
    /// `total-failure-session-count` (RFC 8460 §4.2.2) when given, otherwise the sum of
    /// `details` marked as an estimate. The model itself keeps a missing total absent.
    pub fn failure_count(&self, details: &[FailureDetail]) -> FailureCount {
        match self.total_failure_session_count {
            Some(sessions) => FailureCount {
                sessions,
                estimated: false,
            },
            None => FailureCount {
                sessions: sum_failed(details),
                estimated: true,
            },
        }
    }
}

/// The sum of `failed-session-count` over `details`, saturating. Failure types may overlap
/// (RFC 8460 §4), so this may count one failed session more than once.
pub fn sum_failed(details: &[FailureDetail]) -> u64 {
    details
        .iter()
        .fold(0u64, |acc, d| acc.saturating_add(d.failed_session_count))
}

/// Session counts summed over all policies of a report (RFC 8460 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Totals {
    /// Successful sessions, as the summaries state them.
    pub successful: u64,
    /// Failed sessions; `estimated` when some policy's summary had no failure total.
    pub failed: FailureCount,
}

impl Totals {
    /// `(successful, failed)` as plain numbers, for when the estimate flag does not matter.
    pub fn counts(&self) -> (u64, u64) {
        (self.successful, self.failed.sessions)
    }
}

impl Report {
    /// Session counts summed over all policies (RFC 8460 §4.2), saturating. A policy without
    /// a failure total contributes the sum of its failure details, and the result is then
    /// marked as an estimate ([`Summary::failure_count`]).
    pub fn totals(&self) -> Totals {
        self.policies.iter().fold(
            Totals {
                successful: 0,
                failed: FailureCount {
                    sessions: 0,
                    estimated: false,
                },
            },
            |t, p| {
                let f = p.summary.failure_count(&p.failure_details);
                Totals {
                    successful: t
                        .successful
                        .saturating_add(p.summary.total_successful_session_count),
                    failed: FailureCount {
                        sessions: t.failed.sessions.saturating_add(f.sessions),
                        estimated: t.failed.estimated || f.estimated,
                    },
                }
            },
        )
    }

    /// Every failure detail of every policy, with its policy (RFC 8460 §4.4).
    pub fn failure_details(&self) -> impl Iterator<Item = (&PolicyResult, &FailureDetail)> {
        self.policies
            .iter()
            .flat_map(|p| p.failure_details.iter().map(move |d| (p, d)))
    }

    /// The report as RFC 8460 §4.4 JSON: schema key names in schema order, `mx-host` as an
    /// array (errata 6241), date-times in UTC with `Z`, optional members omitted when absent,
    /// extensions after the known members. A missing `total-failure-session-count` stays
    /// missing: the sum of the failure details is not the total (RFC 8460 §4 lets failure
    /// counts overlap), and writing it would invent a value the sender never stated.
    pub fn to_rfc_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "organization-name".into(),
            self.organization_name.clone().into(),
        );
        let mut dr = Map::new();
        dr.insert(
            "start-datetime".into(),
            self.date_range.start.to_string().into(),
        );
        dr.insert(
            "end-datetime".into(),
            self.date_range.end.to_string().into(),
        );
        extend(&mut dr, &self.date_range.extensions);
        m.insert("date-range".into(), Value::Object(dr));
        if let Some(c) = &self.contact_info {
            m.insert("contact-info".into(), c.clone().into());
        }
        m.insert("report-id".into(), self.report_id.clone().into());
        let policies = self.policies.iter().map(PolicyResult::to_json).collect();
        m.insert("policies".into(), Value::Array(policies));
        extend(&mut m, &self.extensions);
        Value::Object(m)
    }

    /// [`Report::to_rfc_json`] as compact text.
    pub fn to_json_string(&self) -> String {
        self.to_rfc_json().to_string()
    }
}

impl PolicyResult {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        let p = &self.policy;
        let mut pm = Map::new();
        pm.insert("policy-type".into(), p.policy_type.as_str().into());
        if !p.policy_string.is_empty() {
            pm.insert("policy-string".into(), strings(&p.policy_string));
        }
        if let Some(d) = &p.policy_domain {
            pm.insert("policy-domain".into(), d.clone().into());
        }
        if !p.mx_host.is_empty() {
            pm.insert("mx-host".into(), strings(&p.mx_host));
        }
        extend(&mut pm, &p.extensions);
        m.insert("policy".into(), Value::Object(pm));

        let s = &self.summary;
        let mut sm = Map::new();
        sm.insert(
            "total-successful-session-count".into(),
            s.total_successful_session_count.into(),
        );
        if let Some(failed) = s.total_failure_session_count {
            sm.insert("total-failure-session-count".into(), failed.into());
        }
        extend(&mut sm, &s.extensions);
        m.insert("summary".into(), Value::Object(sm));

        if !self.failure_details.is_empty() {
            let details = self
                .failure_details
                .iter()
                .map(FailureDetail::to_json)
                .collect();
            m.insert("failure-details".into(), Value::Array(details));
        }
        extend(&mut m, &self.extensions);
        Value::Object(m)
    }
}

impl FailureDetail {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("result-type".into(), self.result_type.as_str().into());
        let opt = |m: &mut Map<String, Value>, key: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(key.into(), v.clone().into());
            }
        };
        opt(&mut m, "sending-mta-ip", &self.sending_mta_ip);
        opt(&mut m, "receiving-mx-hostname", &self.receiving_mx_hostname);
        opt(&mut m, "receiving-mx-helo", &self.receiving_mx_helo);
        opt(&mut m, "receiving-ip", &self.receiving_ip);
        m.insert(
            "failed-session-count".into(),
            self.failed_session_count.into(),
        );
        opt(
            &mut m,
            "additional-information",
            &self.additional_information,
        );
        opt(&mut m, "failure-reason-code", &self.failure_reason_code);
        extend(&mut m, &self.extensions);
        Value::Object(m)
    }
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

/// Appends extensions without ever overwriting a member the model wrote.
fn extend(m: &mut Map<String, Value>, ext: &Extensions) {
    for (k, v) in ext {
        if !m.contains_key(k) {
            m.insert(k.clone(), v.clone());
        }
    }
}
