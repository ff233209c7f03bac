//! RFC 8460 §4.4 — what the lenient report parser accepts (each with its deviation code) and
//! what it rejects (each with its specific error).

use serde_json::{Value, json};
use stsward_proto::tlsrpt::deviation::codes;
use stsward_proto::tlsrpt::{CountReason, ReportError, ResultType, parse_report};

/// A conformant report with one policy and one failure detail.
fn base() -> Value {
    json!({
        "organization-name": "Example Sender",
        "date-range": {
            "start-datetime": "2024-05-01T00:00:00Z",
            "end-datetime": "2024-05-01T23:59:59Z"
        },
        "contact-info": "tlsrpt@sender.example",
        "report-id": "2024-05-01_example.com",
        "policies": [{
            "policy": {
                "policy-type": "sts",
                "policy-string": ["version: STSv1", "mode: testing", "mx: mx.example.com", "max_age: 86400"],
                "policy-domain": "example.com",
                "mx-host": ["mx.example.com"]
            },
            "summary": {
                "total-successful-session-count": 90,
                "total-failure-session-count": 10
            },
            "failure-details": [{
                "result-type": "certificate-expired",
                "sending-mta-ip": "192.0.2.1",
                "receiving-mx-hostname": "mx.example.com",
                "receiving-ip": "198.51.100.7",
                "failed-session-count": 10
            }]
        }]
    })
}

const POLICY: &str = "/policies/0/policy";
const SUMMARY: &str = "/policies/0/summary";
const DETAIL: &str = "/policies/0/failure-details/0";

fn set(v: &mut Value, parent: &str, key: &str, value: Value) {
    v.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(key.into(), value);
}

fn remove(v: &mut Value, parent: &str, key: &str) {
    v.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .shift_remove(key);
}

fn rename(v: &mut Value, parent: &str, from: &str, to: &str) {
    let obj = v.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    let value = obj.shift_remove(from).unwrap();
    obj.insert(to.into(), value);
}

#[test]
fn rfc8460_4_4_conformant_report_has_no_deviations() {
    let parsed = parse_report(base().to_string().as_bytes()).unwrap();
    assert!(parsed.deviations.is_empty(), "{:?}", parsed.deviations);
    assert_eq!(parsed.report.totals().counts(), (90, 10));
}

type Mutation = fn(&mut Value);
/// (what real senders do, the change, the deviations as (code, path))
type Leniency = (
    &'static str,
    Mutation,
    &'static [(&'static str, &'static str)],
);

#[test]
fn rfc8460_4_4_each_leniency_is_accepted_and_recorded() {
    let table: &[Leniency] = &[
        (
            "mx-host as a string (RFC text, before errata 6241)",
            |v| set(v, POLICY, "mx-host", json!("mx.example.com")),
            &[(codes::MX_HOST_STRING, "/policies/0/policy/mx-host")],
        ),
        (
            "mx-host as an empty string",
            |v| set(v, POLICY, "mx-host", json!("")),
            &[(codes::MX_HOST_EMPTY, "/policies/0/policy/mx-host")],
        ),
        (
            "prose key mx-host-pattern",
            |v| rename(v, POLICY, "mx-host", "mx-host-pattern"),
            &[(
                codes::MX_HOST_PATTERN_KEY,
                "/policies/0/policy/mx-host-pattern",
            )],
        ),
        (
            "both mx-host and mx-host-pattern",
            |v| set(v, POLICY, "mx-host-pattern", json!(["*.example.com"])),
            &[(codes::DUPLICATE_ALIAS, "/policies/0/policy/mx-host-pattern")],
        ),
        (
            "prose key additional-info-uri",
            |v| {
                set(
                    v,
                    DETAIL,
                    "additional-info-uri",
                    json!("https://sender.example/why"),
                )
            },
            &[(
                codes::ADDITIONAL_INFO_URI_KEY,
                "/policies/0/failure-details/0/additional-info-uri",
            )],
        ),
        (
            "draft-era failure-error-code",
            |v| {
                set(
                    v,
                    DETAIL,
                    "failure-error-code",
                    json!("X509_V_ERR_CERT_HAS_EXPIRED"),
                )
            },
            &[(
                codes::FAILURE_ERROR_CODE_KEY,
                "/policies/0/failure-details/0/failure-error-code",
            )],
        ),
        (
            "sending-mta-ip missing",
            |v| remove(v, DETAIL, "sending-mta-ip"),
            &[(
                codes::SENDING_MTA_IP_MISSING,
                "/policies/0/failure-details/0/sending-mta-ip",
            )],
        ),
        (
            "sending-mta-ip empty",
            |v| set(v, DETAIL, "sending-mta-ip", json!("")),
            &[(
                codes::SENDING_MTA_IP_EMPTY,
                "/policies/0/failure-details/0/sending-mta-ip",
            )],
        ),
        (
            "sending-mta-ip not an address",
            |v| set(v, DETAIL, "sending-mta-ip", json!("x.x.x.x")),
            &[(
                codes::SENDING_MTA_IP_INVALID,
                "/policies/0/failure-details/0/sending-mta-ip",
            )],
        ),
        (
            "receiving-ip not an address",
            |v| set(v, DETAIL, "receiving-ip", json!("mx.example.com")),
            &[(
                codes::RECEIVING_IP_INVALID,
                "/policies/0/failure-details/0/receiving-ip",
            )],
        ),
        (
            "datetime without Z",
            |v| {
                set(
                    v,
                    "/date-range",
                    "start-datetime",
                    json!("2024-05-01T00:00:00"),
                )
            },
            &[(codes::DATETIME_NO_OFFSET, "/date-range/start-datetime")],
        ),
        (
            "datetime with a space separator",
            |v| {
                set(
                    v,
                    "/date-range",
                    "end-datetime",
                    json!("2024-05-01 23:59:59Z"),
                )
            },
            &[(codes::DATETIME_SEPARATOR, "/date-range/end-datetime")],
        ),
        (
            "date range backwards",
            |v| {
                set(
                    v,
                    "/date-range",
                    "end-datetime",
                    json!("2024-04-30T00:00:00Z"),
                )
            },
            &[(codes::DATE_RANGE_INVERTED, "/date-range")],
        ),
        (
            "contact-info null",
            |v| set(v, "", "contact-info", Value::Null),
            &[(codes::NULL_VALUE, "/contact-info")],
        ),
        (
            "policy-domain missing",
            |v| remove(v, POLICY, "policy-domain"),
            &[(
                codes::POLICY_DOMAIN_MISSING,
                "/policies/0/policy/policy-domain",
            )],
        ),
        (
            "unknown policy-type",
            |v| set(v, POLICY, "policy-type", json!("invalid-policy-type")),
            &[(codes::POLICY_TYPE_UNKNOWN, "/policies/0/policy/policy-type")],
        ),
        (
            "unknown result-type",
            |v| set(v, DETAIL, "result-type", json!("Testing")),
            &[(
                codes::RESULT_TYPE_UNKNOWN,
                "/policies/0/failure-details/0/result-type",
            )],
        ),
        (
            "failure details exceed the total: RFC 8460 §4 lets counts overlap, no deviation",
            |v| set(v, DETAIL, "failed-session-count", json!(11)),
            &[],
        ),
        (
            "a count written as a string",
            |v| set(v, DETAIL, "failed-session-count", json!("10")),
            &[(
                codes::COUNT_STRING,
                "/policies/0/failure-details/0/failed-session-count",
            )],
        ),
        (
            "a count written as a float",
            |v| set(v, SUMMARY, "total-successful-session-count", json!(90.0)),
            &[(
                codes::COUNT_FLOAT,
                "/policies/0/summary/total-successful-session-count",
            )],
        ),
        (
            "total-failure-session-count missing",
            |v| remove(v, SUMMARY, "total-failure-session-count"),
            &[(
                codes::TOTAL_FAILURE_MISSING,
                "/policies/0/summary/total-failure-session-count",
            )],
        ),
        (
            "policy-string as one string",
            |v| set(v, POLICY, "policy-string", json!("version: STSv1")),
            &[(
                codes::POLICY_STRING_STRING,
                "/policies/0/policy/policy-string",
            )],
        ),
        (
            "sts policy without policy-string (Mail.ru)",
            |v| remove(v, POLICY, "policy-string"),
            &[(
                codes::POLICY_STRING_MISSING,
                "/policies/0/policy/policy-string",
            )],
        ),
        (
            "Microsoft's TLSA records as one JSON-encoded string",
            |v| {
                set(v, POLICY, "policy-type", json!("tlsa"));
                set(
                    v,
                    POLICY,
                    "policy-string",
                    json!(["[\"3 1 1 AB\",\"2 1 1 CD\"]"]),
                );
            },
            &[(
                codes::TLSA_POLICY_STRING_JSON,
                "/policies/0/policy/policy-string",
            )],
        ),
        (
            "no policies at all",
            |v| set(v, "", "policies", json!([])),
            &[(codes::POLICIES_EMPTY, "/policies")],
        ),
        (
            "failure-details null",
            |v| set(v, "/policies/0", "failure-details", Value::Null),
            &[(codes::NULL_VALUE, "/policies/0/failure-details")],
        ),
    ];
    for (why, mutate, want) in table {
        let mut v = base();
        mutate(&mut v);
        let parsed =
            parse_report(v.to_string().as_bytes()).unwrap_or_else(|e| panic!("{why}: {e}"));
        let got: Vec<(&str, &str)> = parsed
            .deviations
            .iter()
            .map(|d| (d.code, d.path.as_str()))
            .collect();
        assert_eq!(&got, want, "{why}");
        assert!(
            parsed.deviations.iter().all(|d| !d.message.is_empty()),
            "{why}"
        );
    }
}

#[test]
fn rfc8460_4_4_lenient_values_are_kept_not_defaulted() {
    let mut v = base();
    set(&mut v, DETAIL, "sending-mta-ip", json!("x.x.x.x"));
    set(&mut v, DETAIL, "result-type", json!("Testing"));
    rename(&mut v, POLICY, "mx-host", "mx-host-pattern");
    set(&mut v, DETAIL, "failure-error-code", json!("E1"));
    remove(&mut v, SUMMARY, "total-failure-session-count");
    let r = parse_report(v.to_string().as_bytes()).unwrap().report;
    assert!(
        !r.to_json_string().contains("total-failure-session-count"),
        "a missing total is not written back as an invented sum"
    );
    let d = &r.policies[0].failure_details[0];
    assert_eq!(d.sending_mta_ip.as_deref(), Some("x.x.x.x"));
    assert_eq!(d.sending_mta_ip_addr(), None);
    assert_eq!(d.result_type, ResultType::Other("Testing".into()));
    assert_eq!(d.failure_reason_code.as_deref(), Some("E1"));
    assert_eq!(r.policies[0].policy.mx_host, ["mx.example.com"]);
    assert_eq!(r.policies[0].summary.total_failure_session_count, None);
    // With no stated total, the failure details stand in, marked as an estimate.
    assert_eq!(r.totals().counts(), (90, 10));
    assert!(r.totals().failed.estimated);
}

#[test]
fn rfc8460_4_4_bom_and_leading_whitespace() {
    let text = base().to_string();
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(text.as_bytes());
    let parsed = parse_report(&with_bom).unwrap();
    assert_eq!(
        parsed.deviations.iter().map(|d| d.code).collect::<Vec<_>>(),
        [codes::BOM]
    );
    let spaced = format!(" \r\n\t{text}\n");
    assert!(
        parse_report(spaced.as_bytes())
            .unwrap()
            .deviations
            .is_empty()
    );
}

#[test]
fn rfc8460_4_4_extensions_are_kept_in_order_and_written_back() {
    let mut v = base();
    set(&mut v, "", "x-sender-build", json!({"id": 7}));
    set(&mut v, "", "a-later-key", json!(true));
    set(
        &mut v,
        DETAIL,
        "receiving-mx-host-name",
        json!("mx.example.com"),
    );
    set(&mut v, "/date-range", "time-zone", json!("UTC"));
    let parsed = parse_report(v.to_string().as_bytes()).unwrap();
    assert!(parsed.deviations.is_empty());
    let r = &parsed.report;
    let keys: Vec<&str> = r.extensions.keys().map(String::as_str).collect();
    assert_eq!(keys, ["x-sender-build", "a-later-key"]);
    let out = r.to_rfc_json();
    assert_eq!(out["x-sender-build"], json!({"id": 7}));
    assert_eq!(
        out["policies"][0]["failure-details"][0]["receiving-mx-host-name"],
        json!("mx.example.com")
    );
    assert_eq!(out["date-range"]["time-zone"], json!("UTC"));
}

#[test]
fn rfc8460_4_4_what_is_not_a_report_gets_a_specific_error() {
    type Check = fn(&ReportError) -> bool;
    let mut wrong_count = base();
    set(
        &mut wrong_count,
        SUMMARY,
        "total-successful-session-count",
        json!("ninety"),
    );
    let mut huge = base();
    set(
        &mut huge,
        SUMMARY,
        "total-failure-session-count",
        json!(1e30),
    );
    let mut bool_count = base();
    set(&mut bool_count, DETAIL, "failed-session-count", json!(true));
    let mut negative = base();
    set(&mut negative, DETAIL, "failed-session-count", json!(-1));
    let mut fraction = base();
    set(&mut fraction, DETAIL, "failed-session-count", json!(1.5));
    let mut no_type = base();
    remove(&mut no_type, POLICY, "policy-type");
    let mut bad_date = base();
    set(
        &mut bad_date,
        "/date-range",
        "start-datetime",
        json!("yesterday"),
    );
    let mut no_summary = base();
    remove(&mut no_summary, "/policies/0", "summary");
    let mut no_id = base();
    remove(&mut no_id, "", "report-id");
    let mut no_identity = base();
    remove(&mut no_identity, "", "report-id");
    remove(&mut no_identity, "", "organization-name");
    let mut no_policies = base();
    remove(&mut no_policies, "", "policies");
    let mut mx_number = base();
    set(&mut mx_number, POLICY, "mx-host", json!(25));

    let table: Vec<(&str, Vec<u8>, Check)> = vec![
        ("empty input", b"".to_vec(), |e| {
            matches!(e, ReportError::Empty)
        }),
        (
            "only whitespace and a BOM",
            b"\xEF\xBB\xBF \n".to_vec(),
            |e| matches!(e, ReportError::Empty),
        ),
        (
            "truncated JSON",
            b"{\n  \"report-id\": \"x\",\n  \"pol".to_vec(),
            |e| matches!(e, ReportError::NotJson { line: 3, .. }),
        ),
        ("an HTML error page", b"<html>502</html>".to_vec(), |e| {
            matches!(
                e,
                ReportError::NotJson {
                    line: 1,
                    column: 1,
                    ..
                }
            )
        }),
        (
            "invalid UTF-8",
            b"{\"report-id\": \"\xFF\"}".to_vec(),
            |e| matches!(e, ReportError::NotJson { .. }),
        ),
        ("a JSON array", b"[1, 2]".to_vec(), |e| {
            matches!(e, ReportError::NotAnObject { found: "array" })
        }),
        ("a JSON string", b"\"report\"".to_vec(), |e| {
            matches!(e, ReportError::NotAnObject { found: "string" })
        }),
        (
            "a DMARC-like object",
            br#"{"feedback": {}}"#.to_vec(),
            |e| matches!(e, ReportError::NotAReport { missing } if missing.contains("policies")),
        ),
        ("no policies", no_policies.to_string().into_bytes(), |e| {
            matches!(
                e,
                ReportError::NotAReport {
                    missing: "policies"
                }
            )
        }),
        (
            "no report-id and no organization-name",
            no_identity.to_string().into_bytes(),
            |e| matches!(e, ReportError::NotAReport { missing } if missing.contains("report-id") && missing.contains("organization-name")),
        ),
        (
            "no report-id",
            no_id.to_string().into_bytes(),
            |e| matches!(e, ReportError::MissingField { field } if field == "/report-id"),
        ),
        (
            "count as a string that is no number",
            wrong_count.to_string().into_bytes(),
            |e| {
                e.to_string()
                    == "field /policies/0/summary/total-successful-session-count is \"ninety\", not a count of sessions: it is not a number"
            },
        ),
        ("negative count", negative.to_string().into_bytes(), |e| {
            matches!(e, ReportError::Count { field, reason: CountReason::Negative, .. }
                if field == "/policies/0/failure-details/0/failed-session-count")
        }),
        ("fractional count", fraction.to_string().into_bytes(), |e| {
            matches!(e, ReportError::Count { field, value, reason: CountReason::Fraction }
                if field == "/policies/0/failure-details/0/failed-session-count" && value == "1.5")
        }),
        (
            "a count too large for u64",
            huge.to_string().into_bytes(),
            |e| {
                matches!(e, ReportError::Count { field, reason: CountReason::TooLarge, .. }
                if field == "/policies/0/summary/total-failure-session-count")
            },
        ),
        (
            "a count that is a boolean",
            bool_count.to_string().into_bytes(),
            |e| {
                matches!(e, ReportError::FieldType { field, found: "boolean", .. }
                if field == "/policies/0/failure-details/0/failed-session-count")
            },
        ),
        (
            "mx-host as a number",
            mx_number.to_string().into_bytes(),
            |e| matches!(e, ReportError::FieldType { field, found: "integer", .. } if field == "/policies/0/policy/mx-host"),
        ),
        (
            "no policy-type",
            no_type.to_string().into_bytes(),
            |e| matches!(e, ReportError::MissingField { field } if field == "/policies/0/policy/policy-type"),
        ),
        (
            "no summary",
            no_summary.to_string().into_bytes(),
            |e| matches!(e, ReportError::MissingField { field } if field == "/policies/0/summary"),
        ),
        (
            "a date that is not a date (never epoch 0)",
            bad_date.to_string().into_bytes(),
            |e| matches!(e, ReportError::DateTime { field, .. } if field == "/date-range/start-datetime"),
        ),
    ];
    for (why, bytes, check) in table {
        match parse_report(&bytes) {
            Ok(p) => panic!("{why}: parsed as {:?}", p.report),
            Err(e) => assert!(check(&e), "{why}: got {e:?} ({e})"),
        }
    }
}

/// RFC 8460 §4: "Note that the failure types are non-exclusive; an aggregate report may
/// contain overlapping "counts" of failure types when a single send attempt encountered
/// multiple errors." Details that add up to more than the total are normal.
#[test]
fn rfc8460_4_overlapping_failure_counts_are_no_deviation() {
    let mut v = base();
    set(&mut v, DETAIL, "failed-session-count", json!(10));
    let details = v
        .pointer_mut("/policies/0/failure-details")
        .unwrap()
        .as_array_mut()
        .unwrap();
    let mut second = details[0].clone();
    second["result-type"] = json!("certificate-not-trusted");
    details.push(second);
    let parsed = parse_report(v.to_string().as_bytes()).unwrap();
    assert!(parsed.deviations.is_empty(), "{:?}", parsed.deviations);
    let totals = parsed.report.totals();
    assert_eq!(
        totals.counts(),
        (90, 10),
        "the stated total, not the sum 20"
    );
    assert!(!totals.failed.estimated);
}

/// RFC 8460 §4 (overlapping counts) means a missing `total-failure-session-count` is not "the
/// sum of the details": the model keeps it absent and records a deviation, and only
/// `failure_count` offers the sum, marked as an estimate.
#[test]
fn rfc8460_4_missing_failure_total_stays_absent_and_the_sum_is_an_estimate() {
    let mut v = base();
    remove(&mut v, SUMMARY, "total-failure-session-count");
    let parsed = parse_report(v.to_string().as_bytes()).unwrap();
    let codes: Vec<&str> = parsed.deviations.iter().map(|d| d.code).collect();
    assert_eq!(codes, [codes::TOTAL_FAILURE_MISSING]);
    let p = &parsed.report.policies[0];
    assert_eq!(p.summary.total_failure_session_count, None);
    let count = p.summary.failure_count(&p.failure_details);
    assert_eq!((count.sessions, count.estimated), (10, true));
    // Written back, it is still missing, so reading it again finds the same deviation.
    let again = parse_report(parsed.report.to_json_string().as_bytes()).unwrap();
    assert_eq!(again.report, parsed.report);
    assert_eq!(again.deviations.len(), 1);
}

/// RFC 8460 §4.4: the counts are integers. A whole number written as a string (`"5"`) or a
/// float (`5.0`) is still that count: accepted, with a deviation naming the member. What is
/// no whole number (`5.5`, `-1`, too large) stays an error naming the member.
#[test]
fn rfc8460_4_4_counts_as_strings_or_floats_are_accepted_with_a_deviation() {
    // (value, expected count or None for an error, expected deviation)
    let table: &[(Value, Option<u64>, Option<&str>)] = &[
        (json!(10), Some(10), None),
        (json!("10"), Some(10), Some(codes::COUNT_STRING)),
        (json!(10.0), Some(10), Some(codes::COUNT_FLOAT)),
        (json!("10.0"), Some(10), Some(codes::COUNT_STRING)),
        (json!(1e3), Some(1000), Some(codes::COUNT_FLOAT)),
        (json!(5.5), None, None),
        (json!(-1), None, None),
        (json!(-1.0), None, None),
        (json!("-1"), None, None),
        (json!(""), None, None),
        (json!(1e20), None, None),
        (json!(null), None, None),
    ];
    for (value, want, deviation) in table {
        let mut v = base();
        set(&mut v, DETAIL, "failed-session-count", value.clone());
        match (parse_report(v.to_string().as_bytes()), want) {
            (Ok(p), Some(n)) => {
                assert_eq!(
                    p.report.policies[0].failure_details[0].failed_session_count, *n,
                    "{value}"
                );
                let got: Vec<(&str, &str)> = p
                    .deviations
                    .iter()
                    .map(|d| (d.code, d.path.as_str()))
                    .collect();
                let want: Vec<(&str, &str)> = deviation
                    .iter()
                    .map(|c| (*c, "/policies/0/failure-details/0/failed-session-count"))
                    .collect();
                assert_eq!(got, want, "{value}");
                // Written back, the count is a plain integer and the deviation is gone.
                let again = parse_report(p.report.to_json_string().as_bytes()).unwrap();
                assert!(again.deviations.is_empty(), "{value}");
            }
            (Err(e), None) => assert!(
                e.to_string()
                    .contains("/policies/0/failure-details/0/failed-session-count"),
                "{value}: {e}"
            ),
            (got, want) => panic!("{value}: got {got:?}, want {want:?}"),
        }
    }
}
