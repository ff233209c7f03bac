//! Real-world TLS-RPT reports (RFC 8460 §4.4) from `shared/corpus/tlsrpt`, read in place.
//!
//! Every one of the 34 JSON files is a report, including the negative and synthetic ones, so
//! every one must parse, and each file's deviations are pinned exactly. In particular
//! `mail-auth__rpt03.json` (stalwart's negative test: no `policy-domain`, no
//! `total-failure-session-count`, `policy-type: invalid-policy-type`) parses leniently: it
//! still has an organisation, a report id, a date range and real session counts, and each of
//! its defects can be represented honestly (`None`, `PolicyType::Other`) and recorded as a
//! deviation, so rejecting it would throw away data a dashboard can show.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use stsward_proto::tlsrpt::deviation::codes;
use stsward_proto::tlsrpt::{ParsedReport, PolicyType, ResultType, parse_report};

fn corpus() -> Option<PathBuf> {
    stsward_testkit::corpus("stsward-proto/corpus_reports")
}

fn parse_file(path: &Path) -> ParsedReport {
    let bytes = std::fs::read(path).unwrap();
    parse_report(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn report(name: &str) -> Option<ParsedReport> {
    corpus().map(|c| parse_file(&c.join("tlsrpt/json").join(name)))
}

fn deviation_codes(p: &ParsedReport) -> Vec<&'static str> {
    p.deviations.iter().map(|d| d.code).collect()
}

/// Every file, with the exact deviations it must produce, in document order.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "dmarc-report-viewer__full-example.json",
        &[codes::MX_HOST_STRING],
    ),
    ("dmarc-report-viewer__google-2025-04-12.json", &[]),
    ("dmarc-report-viewer__google.json", &[]),
    (
        "dmarc-report-viewer__microsoft.json",
        &[codes::TLSA_POLICY_STRING_JSON],
    ),
    ("dmarc-report-viewer__no-contact.json", &[codes::NULL_VALUE]),
    ("dmarc-report-viewer__no-policy.json", &[]),
    (
        "dmarc-report-viewer__no_ip_and_mx.json",
        &[codes::POLICY_STRING_MISSING, codes::SENDING_MTA_IP_MISSING],
    ),
    ("dmarc-report-viewer__rfc-example.json", &[]),
    (
        "email-report-processor__google.com_example.com_1667520000_1667606399_001.json",
        &[],
    ),
    ("mail-auth__rpt01.json", &[]),
    ("mail-auth__rpt02.json", &[]),
    (
        "mail-auth__rpt03.json",
        &[
            codes::POLICY_DOMAIN_MISSING,
            codes::TOTAL_FAILURE_MISSING,
            codes::POLICY_TYPE_UNKNOWN,
            codes::POLICY_DOMAIN_MISSING,
            codes::TOTAL_FAILURE_MISSING,
        ],
    ),
    ("mail-tls-rpt__expected.json", &[codes::MX_HOST_EMPTY]),
    ("mail-tls-rpt__report.json", &[]),
    ("mta-sts-exporter__google.json", &[]),
    (
        "mta-sts-exporter__microsoft-2.json",
        &[codes::DATETIME_NO_OFFSET, codes::DATETIME_NO_OFFSET],
    ),
    ("mta-sts-exporter__microsoft.json", &[]),
    ("mta-sts-exporter__rfc-errata-6241.json", &[]),
    ("mta-sts-exporter__rfc.json", &[codes::MX_HOST_STRING]),
    (
        "nixis-tls-rpt-monitor__tls-rpt.json",
        &[codes::MX_HOST_STRING],
    ),
    (
        "parsedmarc__mail.ru.json",
        &[
            codes::POLICY_STRING_MISSING,
            codes::SENDING_MTA_IP_MISSING,
            codes::SENDING_MTA_IP_MISSING,
            // Its two failure details (1 + 1) exceed the total of 1: RFC 8460 §4 lets failure
            // counts overlap, so that is no longer a deviation.
        ],
    ),
    ("parsedmarc__rfc8460.json", &[codes::MX_HOST_STRING]),
    ("parsedmarc__smtp_tls.json", &[]),
    ("sebastka-tlsrpt__google-sts.json", &[]),
    (
        "sebastka-tlsrpt__microsoft-tlsa-sts.json",
        &[codes::TLSA_POLICY_STRING_JSON],
    ),
    ("sebastka-tlsrpt__synthetic-failures.json", &[]),
    (
        "tls-rpt-monitor__microsoft-report.json",
        &[
            codes::RESULT_TYPE_UNKNOWN,
            codes::SENDING_MTA_IP_INVALID,
            codes::ADDITIONAL_INFO_URI_KEY,
            // Details (3) above the total (2) are no deviation: RFC 8460 §4, overlapping counts.
        ],
    ),
    ("tlsrpt-be__report-2.json", &[]),
    ("tlsrpt-be__report.json", &[]),
    ("tlsrpt-be__testing.json", &[codes::MX_HOST_STRING]),
    (
        "tlsrpt-rs__mail.ru.json",
        &[codes::POLICY_STRING_MISSING, codes::SENDING_MTA_IP_MISSING],
    ),
    ("tlsrpt-rs__rfc8460.json", &[]),
    (
        "tlsrpt_processor-danmarg__sample.json",
        &[codes::MX_HOST_STRING, codes::FAILURE_ERROR_CODE_KEY],
    ),
    (
        "tlsrpt_processor-hardtmad__rfc_sample.json",
        &[codes::MX_HOST_STRING],
    ),
];

/// Deviations about the form of the JSON, which re-serialising repairs. The others are
/// about content (a missing domain, an unknown type, a missing failure total) and stay: a
/// missing total is written back as missing, never as an invented sum.
const FORM_DEVIATIONS: &[&str] = &[
    codes::BOM,
    codes::NULL_VALUE,
    codes::DATETIME_NO_OFFSET,
    codes::DATETIME_SEPARATOR,
    codes::MX_HOST_STRING,
    codes::MX_HOST_EMPTY,
    codes::MX_HOST_PATTERN_KEY,
    codes::POLICY_STRING_STRING,
    codes::TLSA_POLICY_STRING_JSON,
    codes::COUNT_STRING,
    codes::COUNT_FLOAT,
    codes::SENDING_MTA_IP_EMPTY,
    codes::ADDITIONAL_INFO_URI_KEY,
    codes::FAILURE_ERROR_CODE_KEY,
];

#[test]
fn corpus_every_json_report_parses_with_exactly_the_expected_deviations() {
    let Some(c) = corpus() else { return };
    let dir = c.join("tlsrpt/json");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let expected: BTreeMap<&str, &[&str]> = EXPECTED.iter().copied().collect();
    assert_eq!(on_disk.len(), 34, "the corpus README lists 34 JSON reports");
    assert_eq!(
        on_disk,
        expected.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
        "every corpus file has an expectation"
    );
    for (name, want) in EXPECTED {
        let parsed = parse_file(&dir.join(name));
        assert_eq!(
            &deviation_codes(&parsed),
            want,
            "{name}: {:#?}",
            parsed.deviations
        );
        for d in &parsed.deviations {
            assert!(d.path.starts_with('/'), "{name}: {d}");
            assert!(!d.message.is_empty(), "{name}: {d}");
        }
    }
}

#[test]
fn corpus_reserialised_reports_are_stable_and_lose_only_form_deviations() {
    let Some(c) = corpus() else { return };
    for (name, _) in EXPECTED {
        let first = parse_file(&c.join("tlsrpt/json").join(name));
        let json = first.report.to_json_string();
        let second = parse_report(json.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            second.report.to_rfc_json(),
            first.report.to_rfc_json(),
            "{name}: serialisation is a fixed point"
        );
        let kept: Vec<&str> = deviation_codes(&first)
            .into_iter()
            .filter(|c| !FORM_DEVIATIONS.contains(c))
            .collect();
        assert_eq!(deviation_codes(&second), kept, "{name}");
        assert_eq!(second.report, first.report, "{name}");
    }
}

#[test]
fn corpus_google_no_policy_found_343_sessions() {
    let Some(p) = report("mail-tls-rpt__report.json") else {
        return;
    };
    let r = &p.report;
    assert!(p.deviations.is_empty());
    assert_eq!(r.organization_name, "Google Inc.");
    assert_eq!(r.report_id, "2020-03-02T00:00:00Z_fastmaildmarc.com");
    assert_eq!(
        r.contact_info.as_deref(),
        Some("smtp-tls-reporting@google.com")
    );
    assert_eq!(r.date_range.start.to_string(), "2020-03-02T00:00:00Z");
    assert_eq!(r.date_range.end.to_string(), "2020-03-02T23:59:59Z");
    assert_eq!(r.policies.len(), 1);
    assert_eq!(r.policies[0].policy.policy_type, PolicyType::NoPolicyFound);
    assert_eq!(
        r.policies[0].policy.policy_domain.as_deref(),
        Some("fastmaildmarc.com")
    );
    assert_eq!(r.totals().counts(), (343, 0));
}

#[test]
fn corpus_mail_ru_failure_details_exceed_the_total() {
    let Some(p) = report("parsedmarc__mail.ru.json") else {
        return;
    };
    let r = &p.report;
    assert_eq!(r.organization_name, "Mail.ru");
    assert_eq!(r.report_id, "b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru");
    assert_eq!(r.policies.len(), 1);
    let pol = &r.policies[0];
    assert_eq!(pol.summary.total_failure_session_count, Some(1));
    let details: Vec<(&ResultType, Option<&str>, u64)> = pol
        .failure_details
        .iter()
        .map(|d| {
            (
                &d.result_type,
                d.failure_reason_code.as_deref(),
                d.failed_session_count,
            )
        })
        .collect();
    assert_eq!(
        details,
        [
            (
                &ResultType::StsPolicyFetchError,
                Some("bad https response code: 404"),
                1
            ),
            (
                &ResultType::StsPolicyFetchError,
                Some("bad https response code: 500"),
                1
            ),
        ]
    );
    // The summary is what the sender stated. The details add up to 2, more than the total
    // of 1, which RFC 8460 §4 allows ("an aggregate report may contain overlapping "counts"
    // of failure types"): no deviation, no fix.
    assert_eq!(r.totals().counts(), (0, 1));
    assert!(!r.totals().failed.estimated);
    assert!(
        p.deviations
            .iter()
            .all(|d| !d.path.starts_with("/policies/0/summary")),
        "{:?}",
        p.deviations
    );
    // The end is next-day midnight: a 24-hour range, not a deviation.
    assert_eq!(
        r.date_range.end.unix_timestamp() - r.date_range.start.unix_timestamp(),
        86_400
    );
}

#[test]
fn corpus_microsoft_hand_edited_testing_result_type() {
    let Some(p) = report("tls-rpt-monitor__microsoft-report.json") else {
        return;
    };
    let r = &p.report;
    assert_eq!(r.organization_name, "Microsoft Corporation");
    assert_eq!(r.report_id, "133988091029006454+josh.scot");
    assert_eq!(r.policies.len(), 1);
    let d = &r.policies[0].failure_details[0];
    assert_eq!(d.result_type, ResultType::Other("Testing".into()));
    assert_eq!(d.result_type.finding_code(), None);
    assert_eq!(d.sending_mta_ip.as_deref(), Some("x.x.x.x"));
    assert_eq!(d.sending_mta_ip_addr(), None);
    assert_eq!(
        d.additional_information.as_deref(),
        Some("testing.josh.scot")
    );
    assert_eq!(d.failure_reason_code.as_deref(), Some("123"));
    assert_eq!(d.failed_session_count, 3);
    assert_eq!(r.totals().counts(), (2, 2));
    let ip = p
        .deviations
        .iter()
        .find(|d| d.code == codes::SENDING_MTA_IP_INVALID)
        .unwrap();
    assert_eq!(ip.path, "/policies/0/failure-details/0/sending-mta-ip");
}

#[test]
fn corpus_microsoft_tlsa_policy_string_is_unpacked() {
    let Some(p) = report("dmarc-report-viewer__microsoft.json") else {
        return;
    };
    let r = &p.report;
    assert_eq!(r.report_id, "133925885310113267+random.net");
    assert_eq!(r.policies.len(), 2);
    let sts = &r.policies[0].policy;
    assert_eq!(sts.policy_type, PolicyType::Sts);
    assert!(sts.mx_host.is_empty());
    let tlsa = &r.policies[1].policy;
    assert_eq!(tlsa.policy_type, PolicyType::Tlsa);
    assert_eq!(
        tlsa.policy_string,
        [
            "3 1 1 6007EEE553E85D8DF007A845D19EC343283D4E416E9A33F9EF3040C8B7C285BC",
            "3 1 1 837C773D54C2E2BD71871A3FC352BE8214D5646CBAE5E3091401A7274717998B",
        ]
    );
    assert_eq!(r.totals().counts(), (4, 0));
}

#[test]
fn corpus_microsoft_datetimes_without_z_are_utc() {
    let Some(p) = report("mta-sts-exporter__microsoft-2.json") else {
        return;
    };
    let r = &p.report;
    assert_eq!(r.report_id, "133561180919336230+example.com");
    assert_eq!(r.date_range.start.to_string(), "2024-03-26T00:00:00Z");
    assert_eq!(r.date_range.end.to_string(), "2024-03-26T23:59:59Z");
    let paths: Vec<&str> = p.deviations.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/date-range/start-datetime", "/date-range/end-datetime"]
    );
    assert_eq!(r.totals().counts(), (7, 0));
    assert_eq!(r.policies.len(), 1);
}

#[test]
fn corpus_draft_era_failure_error_code() {
    let Some(p) = report("tlsrpt_processor-danmarg__sample.json") else {
        return;
    };
    let r = &p.report;
    assert_eq!(r.organization_name, "Company-X");
    assert_eq!(r.report_id, "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
    assert_eq!(r.totals().counts(), (5326, 303));
    let details = &r.policies[0].failure_details;
    assert_eq!(details.len(), 3);
    assert_eq!(details[2].result_type, ResultType::ValidationFailure);
    assert_eq!(
        details[2].failure_reason_code.as_deref(),
        Some("X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED")
    );
    assert!(details[2].extensions.is_empty());
    let d = p
        .deviations
        .iter()
        .find(|d| d.code == codes::FAILURE_ERROR_CODE_KEY)
        .unwrap();
    assert_eq!(d.path, "/policies/0/failure-details/2/failure-error-code");
}

#[test]
fn corpus_null_contact_info() {
    let Some(p) = report("dmarc-report-viewer__no-contact.json") else {
        return;
    };
    let r = &p.report;
    assert_eq!(r.organization_name, "server.com");
    assert_eq!(r.report_id, "123_456");
    assert_eq!(r.contact_info, None);
    assert_eq!(p.deviations[0].path, "/contact-info");
    assert_eq!(r.policies.len(), 1);
    assert!(r.policies[0].failure_details.is_empty());
    assert_eq!(r.totals().counts(), (1, 0));
}

#[test]
fn corpus_rfc_example_with_errata_array_is_conformant() {
    let Some(p) = report("dmarc-report-viewer__rfc-example.json") else {
        return;
    };
    let r = &p.report;
    assert!(p.deviations.is_empty(), "{:?}", p.deviations);
    assert_eq!(r.organization_name, "Company-X");
    assert_eq!(r.report_id, "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
    assert_eq!(r.policies.len(), 1);
    assert_eq!(r.policies[0].policy.mx_host, ["*.mail.company-y.example"]);
    assert_eq!(r.totals().counts(), (5326, 303));
    let kinds: Vec<&ResultType> = r.policies[0]
        .failure_details
        .iter()
        .map(|d| &d.result_type)
        .collect();
    assert_eq!(
        kinds,
        [
            &ResultType::CertificateExpired,
            &ResultType::StarttlsNotSupported,
            &ResultType::ValidationFailure
        ]
    );
}

#[test]
fn corpus_stalwart_negative_report_is_read_leniently() {
    let Some(p) = report("mail-auth__rpt03.json") else {
        return;
    };
    let r = &p.report;
    assert_eq!(r.report_id, "2019-04-14T00:00:00Z_example.org");
    assert_eq!(r.policies.len(), 2);
    assert_eq!(
        r.policies[1].policy.policy_type,
        PolicyType::Other("invalid-policy-type".into())
    );
    assert!(r.policies.iter().all(|p| p.policy.policy_domain.is_none()));
    assert!(
        r.policies
            .iter()
            .all(|p| p.summary.total_failure_session_count.is_none())
    );
    assert_eq!(r.totals().counts(), (2, 0));
    // Both failure totals are missing, so the failed count is only an estimate.
    assert!(r.totals().failed.estimated);
}

#[test]
fn corpus_gzip_payloads_hold_parseable_reports() {
    let Some(c) = corpus() else { return };
    let gz = c.join("tlsrpt/gz");
    let mut names: Vec<_> = std::fs::read_dir(&gz)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2);
    for path in names {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_end(&mut json)
            .unwrap();
        let p = parse_report(&json).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            p.deviations.is_empty(),
            "{}: {:?}",
            path.display(),
            p.deviations
        );
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "mail-tls-rpt__report.json.gz" {
            let plain = std::fs::read(c.join("tlsrpt/json/mail-tls-rpt__report.json")).unwrap();
            assert_eq!(
                json, plain,
                "decompresses byte-for-byte to the JSON sibling"
            );
            assert_eq!(p.report.totals().counts(), (343, 0));
        } else {
            assert_eq!(p.report.organization_name, "Microsoft Corporation");
            assert!(
                p.report
                    .policies
                    .iter()
                    .all(|p| p.failure_details.is_empty())
            );
        }
    }
}
