//! RFC 8460 §3 and §4.4 — round trips: a record's `Display` parses back to the same record,
//! and a report's RFC JSON parses back to the same report with no deviations. Neither parser
//! panics on arbitrary input.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use stsward_proto::tlsrpt::deviation::codes;
use stsward_proto::tlsrpt::{
    DateRange, FailureDetail, Policy, PolicyResult, PolicyType, Report, ReportDateTime, ResultType,
    RuaUri, Summary, TlsRptRecord, evaluate_txt, parse_report,
};
use time::OffsetDateTime;

fn mailto() -> impl Strategy<Value = String> {
    "mailto:[a-z0-9._+-]{1,10}@[a-z0-9]{1,10}\\.(com|example|test)(\\?subject=[a-z]{1,5})?"
}

fn https() -> impl Strategy<Value = String> {
    "https://[a-z0-9]{1,10}\\.example(:[1-9][0-9]{0,3})?(/[a-zA-Z0-9._~-]{0,10}){0,3}(\\?[a-z]=[0-9]{1,3})?"
}

fn record() -> impl Strategy<Value = TlsRptRecord> {
    let rua = prop::collection::vec(prop_oneof![mailto(), https()], 1..4);
    let ext = prop::collection::vec(
        (
            "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,31}"
                .prop_filter("not rua or v", |n| n != "rua" && n != "v"),
            "[\\x21-\\x3A\\x3C\\x3E-\\x7E]{1,20}",
        ),
        0..3,
    );
    (rua, ext).prop_map(|(rua, extensions)| TlsRptRecord {
        rua: rua.iter().map(|u| u.parse::<RuaUri>().unwrap()).collect(),
        extensions,
    })
}

proptest! {
    #[test]
    fn rfc8460_3_record_display_parses_back(r in record()) {
        let text = r.to_string();
        prop_assert_eq!(text.parse::<TlsRptRecord>(), Ok(r.clone()));
        let ev = evaluate_txt("example.com", &[text]);
        prop_assert_eq!(ev.record, Some(r));
    }

    #[test]
    fn rfc8460_3_record_parser_never_panics(s in "\\PC{0,60}", t in "v=TLSRPTv1[ ;]{0,2}[a-z=:/@.,!; %]{0,40}") {
        let _ = s.parse::<TlsRptRecord>();
        let _ = t.parse::<TlsRptRecord>();
        let _ = evaluate_txt("example.com", &[s, t]);
    }
}

fn datetime() -> impl Strategy<Value = ReportDateTime> {
    (
        0i64..4_102_444_800,
        prop_oneof![Just(0u32), 0u32..1_000_000_000],
    )
        .prop_map(|(t, nanos)| {
            let dt = OffsetDateTime::from_unix_timestamp(t)
                .unwrap()
                .replace_nanosecond(nanos)
                .unwrap();
            ReportDateTime::new(dt).unwrap()
        })
}

fn extensions() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(
        (
            "x-[a-z]{1,8}",
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                "\\PC{0,8}".prop_map(Value::from)
            ],
        ),
        0..2,
    )
    .prop_map(|kv| kv.into_iter().collect())
}

fn ip() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|a| a.to_string()),
    ]
}

fn result_type() -> impl Strategy<Value = ResultType> {
    prop_oneof![
        4 => prop::sample::select(ResultType::KNOWN.to_vec()),
        1 => "x-[a-z]{1,8}".prop_map(ResultType::Other),
    ]
}

fn detail() -> impl Strategy<Value = FailureDetail> {
    (
        result_type(),
        ip(),
        prop::option::of("[a-z]{1,8}\\.example"),
        prop::option::of("[a-z]{1,8}\\.example"),
        prop::option::of(ip()),
        0u64..1000,
        prop::option::of("https://[a-z]{1,8}\\.example/\\PC{0,8}"),
        prop::option::of("\\PC{0,20}"),
        extensions(),
    )
        .prop_map(
            |(result_type, ip, mx, helo, rip, n, info, code, extensions)| FailureDetail {
                result_type,
                sending_mta_ip: Some(ip),
                receiving_mx_hostname: mx,
                receiving_mx_helo: helo,
                receiving_ip: rip,
                failed_session_count: n,
                additional_information: info,
                failure_reason_code: code,
                extensions,
            },
        )
}

fn policy_result() -> impl Strategy<Value = PolicyResult> {
    let ptype = prop_oneof![
        Just(PolicyType::Sts),
        Just(PolicyType::Tlsa),
        Just(PolicyType::NoPolicyFound),
        "x-[a-z]{1,8}".prop_map(PolicyType::Other),
    ];
    (
        ptype,
        prop::collection::vec("[a-z0-9:. *_]{1,24}", 1..5),
        "[a-z]{1,10}\\.example",
        prop::collection::vec("(\\*\\.)?[a-z]{1,8}\\.example", 0..3),
        extensions(),
        0u64..1_000_000_000,
        0u64..1000,
        prop::collection::vec(detail(), 0..3),
        extensions(),
    )
        .prop_map(
            |(policy_type, policy_string, domain, mx_host, pext, ok, extra, details, ext)| {
                let failed: u64 = details.iter().map(|d| d.failed_session_count).sum();
                PolicyResult {
                    policy: Policy {
                        policy_type,
                        policy_string,
                        policy_domain: Some(domain),
                        mx_host,
                        extensions: pext,
                    },
                    summary: Summary {
                        total_successful_session_count: ok,
                        total_failure_session_count: Some(failed + extra),
                        extensions: Map::new(),
                    },
                    failure_details: details,
                    extensions: ext,
                }
            },
        )
}

fn report() -> impl Strategy<Value = Report> {
    (
        "\\PC{1,20}",
        datetime(),
        0i64..864_000,
        prop::option::of("[a-z]{1,8}@[a-z]{1,8}\\.example"),
        "\\PC{1,30}",
        prop::collection::vec(policy_result(), 1..4),
        extensions(),
    )
        .prop_map(|(org, start, len, contact, id, policies, extensions)| {
            let end =
                ReportDateTime::new(start.as_offset_date_time() + time::Duration::seconds(len))
                    .unwrap();
            Report {
                organization_name: org,
                date_range: DateRange {
                    start,
                    end,
                    extensions: Map::new(),
                },
                contact_info: contact,
                report_id: id,
                policies,
                extensions,
            }
        })
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("sts".to_owned()),
            Just("2024-01-01T00:00:00Z".to_owned()),
            "\\PC{0,8}".prop_map(String::from)
        ]
        .prop_map(Value::from),
    ];
    let keys = prop::sample::select(vec![
        "organization-name",
        "date-range",
        "start-datetime",
        "end-datetime",
        "contact-info",
        "report-id",
        "policies",
        "policy",
        "policy-type",
        "policy-string",
        "policy-domain",
        "mx-host",
        "mx-host-pattern",
        "summary",
        "total-successful-session-count",
        "total-failure-session-count",
        "failure-details",
        "result-type",
        "sending-mta-ip",
        "failed-session-count",
        "failure-error-code",
        "additional-info-uri",
        "x",
    ]);
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..8).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn rfc8460_4_4_report_json_parses_back_to_the_same_report(r in report()) {
        let parsed = parse_report(r.to_json_string().as_bytes()).unwrap();
        prop_assert_eq!(&parsed.report, &r);
        let all_known = r.policies.iter().all(|p| {
            p.policy.policy_type.is_known() && p.failure_details.iter().all(|d| d.result_type.is_known())
        });
        for d in &parsed.deviations {
            prop_assert!(
                d.code == codes::POLICY_TYPE_UNKNOWN || d.code == codes::RESULT_TYPE_UNKNOWN,
                "unexpected deviation {}", d
            );
        }
        prop_assert_eq!(parsed.deviations.is_empty(), all_known);
        // Pretty-printed JSON is the same report.
        let pretty = serde_json::to_vec_pretty(&r.to_rfc_json()).unwrap();
        prop_assert_eq!(parse_report(&pretty).unwrap().report, r);
    }

    #[test]
    fn rfc8460_4_4_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_report(&bytes);
    }

    #[test]
    fn rfc8460_4_4_parser_never_panics_on_report_shaped_json(v in arbitrary_json()) {
        let _ = parse_report(v.to_string().as_bytes());
    }
}
