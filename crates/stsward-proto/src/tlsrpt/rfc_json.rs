//! RFC 8460 §4.4 — writing a [`Report`] as RFC-conformant JSON straight to a serializer
//!
//! [`RfcJson`] serialises the same document as [`Report::to_rfc_json`] (schema key names in
//! schema order, `mx-host` as an array, date-times in UTC with `Z`, optional members omitted
//! when absent, extensions after the known members, never overwriting one), but without
//! building an intermediate `serde_json::Value` tree, so that printing many reports costs
//! little more than the output bytes themselves.

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::report::{Extensions, FailureDetail, PolicyResult, Report};

/// A borrowed report that serialises as its RFC 8460 §4.4 JSON form.
#[derive(Debug, Clone, Copy)]
pub struct RfcJson<'a>(pub &'a Report);

impl Serialize for RfcJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("organization-name", &r.organization_name)?;
        m.serialize_entry("date-range", &DateRangeJson(r))?;
        if let Some(c) = &r.contact_info {
            m.serialize_entry("contact-info", c)?;
        }
        m.serialize_entry("report-id", &r.report_id)?;
        m.serialize_entry("policies", &PoliciesJson(&r.policies))?;
        let written: &[&str] = if r.contact_info.is_some() {
            &[
                "organization-name",
                "date-range",
                "contact-info",
                "report-id",
                "policies",
            ]
        } else {
            &["organization-name", "date-range", "report-id", "policies"]
        };
        extend(&mut m, &r.extensions, written)?;
        m.end()
    }
}

struct DateRangeJson<'a>(&'a Report);

impl Serialize for DateRangeJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = &self.0.date_range;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("start-datetime", &Shown(&d.start))?;
        m.serialize_entry("end-datetime", &Shown(&d.end))?;
        extend(&mut m, &d.extensions, &["start-datetime", "end-datetime"])?;
        m.end()
    }
}

/// A value written as the JSON string of its `Display` form, without an intermediate
/// `String`.
struct Shown<'a, T>(&'a T);

impl<T: std::fmt::Display> Serialize for Shown<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

struct PoliciesJson<'a>(&'a [PolicyResult]);

impl Serialize for PoliciesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(PolicyResultJson))
    }
}

struct PolicyResultJson<'a>(&'a PolicyResult);

impl Serialize for PolicyResultJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pr = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("policy", &PolicyJson(pr))?;
        m.serialize_entry("summary", &SummaryJson(pr))?;
        let written: &[&str] = if pr.failure_details.is_empty() {
            &["policy", "summary"]
        } else {
            m.serialize_entry(
                "failure-details",
                &DetailsJson(pr.failure_details.as_slice()),
            )?;
            &["policy", "summary", "failure-details"]
        };
        extend(&mut m, &pr.extensions, written)?;
        m.end()
    }
}

struct PolicyJson<'a>(&'a PolicyResult);

impl Serialize for PolicyJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = &self.0.policy;
        let mut m = s.serialize_map(None)?;
        let mut written: [&str; 4] = ["policy-type", "", "", ""];
        m.serialize_entry("policy-type", p.policy_type.as_str())?;
        if !p.policy_string.is_empty() {
            m.serialize_entry("policy-string", &p.policy_string)?;
            written[1] = "policy-string";
        }
        if let Some(d) = &p.policy_domain {
            m.serialize_entry("policy-domain", d)?;
            written[2] = "policy-domain";
        }
        if !p.mx_host.is_empty() {
            m.serialize_entry("mx-host", &p.mx_host)?;
            written[3] = "mx-host";
        }
        extend(&mut m, &p.extensions, &written)?;
        m.end()
    }
}

struct SummaryJson<'a>(&'a PolicyResult);

impl Serialize for SummaryJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sm = &self.0.summary;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(
            "total-successful-session-count",
            &sm.total_successful_session_count,
        )?;
        let written: &[&str] = if let Some(failed) = sm.total_failure_session_count {
            m.serialize_entry("total-failure-session-count", &failed)?;
            &[
                "total-successful-session-count",
                "total-failure-session-count",
            ]
        } else {
            &["total-successful-session-count"]
        };
        extend(&mut m, &sm.extensions, written)?;
        m.end()
    }
}

struct DetailsJson<'a>(&'a [FailureDetail]);

impl Serialize for DetailsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(DetailJson))
    }
}

struct DetailJson<'a>(&'a FailureDetail);

impl Serialize for DetailJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut m = s.serialize_map(None)?;
        let mut written: [&str; 8] = [""; 8];
        let mut n = 0;
        let mut put = |m: &mut S::SerializeMap,
                       key: &'static str,
                       v: Option<&String>|
         -> Result<(), S::Error> {
            if let Some(v) = v {
                m.serialize_entry(key, v)?;
                if let Some(slot) = written.get_mut(n) {
                    *slot = key;
                }
                n += 1;
            }
            Ok(())
        };
        m.serialize_entry("result-type", d.result_type.as_str())?;
        put(&mut m, "sending-mta-ip", d.sending_mta_ip.as_ref())?;
        put(
            &mut m,
            "receiving-mx-hostname",
            d.receiving_mx_hostname.as_ref(),
        )?;
        put(&mut m, "receiving-mx-helo", d.receiving_mx_helo.as_ref())?;
        put(&mut m, "receiving-ip", d.receiving_ip.as_ref())?;
        m.serialize_entry("failed-session-count", &d.failed_session_count)?;
        put(
            &mut m,
            "additional-information",
            d.additional_information.as_ref(),
        )?;
        put(
            &mut m,
            "failure-reason-code",
            d.failure_reason_code.as_ref(),
        )?;
        let mut known = [
            "result-type",
            "failed-session-count",
            "",
            "",
            "",
            "",
            "",
            "",
        ];
        for (slot, key) in known.iter_mut().skip(2).zip(written.iter().take(6)) {
            *slot = key;
        }
        extend(&mut m, &d.extensions, &known)?;
        m.end()
    }
}

/// Appends extensions, skipping any whose key is one the model already wrote.
fn extend<M: SerializeMap>(m: &mut M, ext: &Extensions, written: &[&str]) -> Result<(), M::Error> {
    for (k, v) in ext {
        if !written.contains(&k.as_str()) {
            m.serialize_entry(k, v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::RfcJson;
    use crate::tlsrpt::parse_report;

    /// The direct serialiser writes byte for byte what `to_rfc_json` writes, extensions,
    /// aliases and absent members included.
    #[test]
    fn same_text_as_to_rfc_json() {
        let inputs: [&str; 3] = [
            r#"{"organization-name":"Org","date-range":{"start-datetime":"2024-01-01T00:00:00Z","end-datetime":"2024-01-02T00:00:00","x-r":1},
               "contact-info":"a@b","report-id":"r1","x-top":[1,2.50],
               "policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1"],"policy-domain":"d.example","mx-host":"mx.d.example","mx-host-pattern":["*.d"],"x-p":null},
                            "summary":{"total-successful-session-count":5,"total-failure-session-count":"2","x-s":true},
                            "failure-details":[{"result-type":"starttls-not-supported","sending-mta-ip":"192.0.2.1","receiving-ip":"x","failed-session-count":2.0,"additional-info-uri":"https://e","failure-error-code":"c","failure-reason-code":"d","x-d":{"a":1}}],"x-pr":"v"}]}"#,
            r#"{"organization-name":"Org","date-range":{"start-datetime":"2024-01-01T00:00:00Z","end-datetime":"2024-01-02T00:00:00Z"},
               "report-id":"r2","policies":[{"policy":{"policy-type":"no-policy-found"},"summary":{"total-successful-session-count":0}}]}"#,
            r#"{"report-id":"r3","organization-name":"O","policies":[],"date-range":{"end-datetime":"2024-01-02T00:00:00+02:00","start-datetime":"2024-01-01 00:00:00Z"}}"#,
        ];
        for input in inputs {
            let parsed = parse_report(input.as_bytes()).expect("fixture parses");
            let direct = serde_json::to_string(&RfcJson(&parsed.report)).expect("serialises");
            assert_eq!(direct, parsed.report.to_rfc_json().to_string(), "{input}");
            let pretty_direct =
                serde_json::to_string_pretty(&RfcJson(&parsed.report)).expect("serialises");
            let pretty_value =
                serde_json::to_string_pretty(&parsed.report.to_rfc_json()).expect("serialises");
            assert_eq!(pretty_direct, pretty_value);
        }
    }

    /// An extension whose key collides with a member the model writes is skipped, as
    /// `to_rfc_json` skips it.
    #[test]
    fn colliding_extension_is_not_written_twice() {
        let input = br#"{"organization-name":"O","date-range":{"start-datetime":"2024-01-01T00:00:00Z","end-datetime":"2024-01-02T00:00:00Z"},"report-id":"r","policies":[]}"#;
        let mut report = parse_report(input).expect("fixture parses").report;
        report
            .extensions
            .insert("report-id".into(), serde_json::Value::from("other"));
        report
            .extensions
            .insert("contact-info".into(), serde_json::Value::from("kept"));
        let direct = serde_json::to_string(&RfcJson(&report)).expect("serialises");
        assert_eq!(direct, report.to_rfc_json().to_string());
        assert_eq!(direct.matches("report-id").count(), 1);
        assert!(direct.contains(r#""contact-info":"kept""#));
    }
}
