//! RFC 8460 Appendix B — the example JSON report, as printed in the RFC.
//!
//! The RFC's text wraps the `additional-information` URL onto a second line, inside the
//! string, and the RFC editor's line-wrapping added spaces into it. A raw line break inside a
//! JSON string is not JSON (RFC 8259 §7), so the example exactly as printed is rejected with
//! the line and column; joined onto one line (which is how every copy in the corpus carries
//! it) it is a report whose only departure is `mx-host` as a string (fixed by errata 6241).

use stsward_proto::tlsrpt::deviation::codes;
use stsward_proto::tlsrpt::{PolicyType, ReportError, ResultType, parse_report};

/// RFC 8460 Appendix B, copied from the RFC text (page indentation kept).
const RFC8460_APPENDIX_B: &str = r#"   {
     "organization-name": "Company-X",
     "date-range": {
       "start-datetime": "2016-04-01T00:00:00Z",
       "end-datetime": "2016-04-01T23:59:59Z"
     },
     "contact-info": "sts-reporting@company-x.example",
     "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
     "policies": [{
       "policy": {
         "policy-type": "sts",
         "policy-string": ["version: STSv1","mode: testing",
               "mx: *.mail.company-y.example","max_age: 86400"],
         "policy-domain": "company-y.example",
         "mx-host": "*.mail.company-y.example"
       },
       "summary": {
         "total-successful-session-count": 5326,
         "total-failure-session-count": 303
       },
       "failure-details": [{
         "result-type": "certificate-expired",
         "sending-mta-ip": "2001:db8:abcd:0012::1",
         "receiving-mx-hostname": "mx1.mail.company-y.example",
         "failed-session-count": 100
       }, {
         "result-type": "starttls-not-supported",
         "sending-mta-ip": "2001:db8:abcd:0013::1",
         "receiving-mx-hostname": "mx2.mail.company-y.example",
         "receiving-ip": "203.0.113.56",
         "failed-session-count": 200,
         "additional-information": "https://reports.company-x.example/
           report_info ? id = 5065427 c - 23 d3# StarttlsNotSupported "
       }, {
         "result-type": "validation-failure",
         "sending-mta-ip": "198.51.100.62",
         "receiving-ip": "203.0.113.58",
         "receiving-mx-hostname": "mx-backup.mail.company-y.example",
         "failed-session-count": 3,
         "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
       }]
     }]
   }
"#;

#[test]
fn rfc8460_appendix_b_as_printed_is_not_json_and_says_where() {
    let err = parse_report(RFC8460_APPENDIX_B.as_bytes()).unwrap_err();
    let ReportError::NotJson { line, column, .. } = &err else {
        panic!("expected NotJson, got {err:?}");
    };
    // The raw line break after "company-x.example/" ends line 32; the parser reports it
    // where it stands, at the start of line 33.
    assert_eq!(*line, 33, "{err}");
    assert_eq!(*column, 0, "{err}");
    assert!(err.to_string().contains("control character"), "{err}");
}

#[test]
fn rfc8460_appendix_b_joined_parses_with_only_the_errata_deviation() {
    let joined =
        RFC8460_APPENDIX_B.replace("example/\n           report_info", "example/report_info");
    let parsed = parse_report(joined.as_bytes()).unwrap();
    let codes_seen: Vec<&str> = parsed.deviations.iter().map(|d| d.code).collect();
    assert_eq!(codes_seen, [codes::MX_HOST_STRING]);
    assert_eq!(parsed.deviations[0].path, "/policies/0/policy/mx-host");

    let r = &parsed.report;
    assert_eq!(r.organization_name, "Company-X");
    assert_eq!(r.date_range.start.to_string(), "2016-04-01T00:00:00Z");
    assert_eq!(r.date_range.end.to_string(), "2016-04-01T23:59:59Z");
    assert_eq!(
        r.contact_info.as_deref(),
        Some("sts-reporting@company-x.example")
    );
    assert_eq!(r.report_id, "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
    assert_eq!(r.policies.len(), 1);

    let p = &r.policies[0];
    assert_eq!(p.policy.policy_type, PolicyType::Sts);
    assert_eq!(
        p.policy.policy_string,
        [
            "version: STSv1",
            "mode: testing",
            "mx: *.mail.company-y.example",
            "max_age: 86400"
        ]
    );
    assert_eq!(p.policy.policy_domain.as_deref(), Some("company-y.example"));
    assert_eq!(p.policy.mx_host, ["*.mail.company-y.example"]);
    assert_eq!(p.summary.total_successful_session_count, 5326);
    assert_eq!(p.summary.total_failure_session_count, Some(303));
    assert_eq!(r.totals().counts(), (5326, 303));

    let d = &p.failure_details;
    assert_eq!(d.len(), 3);
    assert_eq!(d[0].result_type, ResultType::CertificateExpired);
    assert_eq!(
        d[0].sending_mta_ip.as_deref(),
        Some("2001:db8:abcd:0012::1")
    );
    assert_eq!(
        d[0].sending_mta_ip_addr(),
        "2001:db8:abcd:12::1".parse().ok()
    );
    assert_eq!(
        d[0].receiving_mx_hostname.as_deref(),
        Some("mx1.mail.company-y.example")
    );
    assert_eq!(d[0].receiving_ip, None);
    assert_eq!(d[0].failed_session_count, 100);
    assert_eq!(d[1].result_type, ResultType::StarttlsNotSupported);
    assert_eq!(d[1].receiving_ip_addr(), "203.0.113.56".parse().ok());
    assert_eq!(d[1].failed_session_count, 200);
    assert_eq!(
        d[1].additional_information.as_deref(),
        Some(
            "https://reports.company-x.example/report_info ? id = 5065427 c - 23 d3# StarttlsNotSupported "
        )
    );
    assert_eq!(d[2].result_type, ResultType::ValidationFailure);
    assert_eq!(
        d[2].failure_reason_code.as_deref(),
        Some("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED")
    );
    assert_eq!(d[2].failed_session_count, 3);
    assert!(d.iter().all(|d| d.extensions.is_empty()));
}

#[test]
fn rfc8460_appendix_b_serialises_to_the_errata_form() {
    let joined =
        RFC8460_APPENDIX_B.replace("example/\n           report_info", "example/report_info");
    let parsed = parse_report(joined.as_bytes()).unwrap();
    let json = parsed.report.to_rfc_json();
    assert_eq!(
        json["policies"][0]["policy"]["mx-host"],
        serde_json::json!(["*.mail.company-y.example"])
    );
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "organization-name",
            "date-range",
            "contact-info",
            "report-id",
            "policies"
        ]
    );
    let again = parse_report(parsed.report.to_json_string().as_bytes()).unwrap();
    assert!(again.deviations.is_empty());
    assert_eq!(again.report, parsed.report);
}
