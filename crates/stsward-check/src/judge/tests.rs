//! Table tests for the judge: start from a healthy domain, break one thing, and check the
//! finding (code, severity, subject) that must appear and the ones that must not.

use stsward_proto::{Code, Finding, Severity};
use time::Duration;

use super::fixtures::*;
use super::judge;
use crate::observe::*;

type Mutate = fn(&mut Observation);

/// (what breaks — the reason, mutation, expected findings, codes that must be absent)
type Case = (
    &'static str,
    Mutate,
    &'static [(Code, Severity, &'static str)],
    &'static [Code],
);

const MX1: &str = "mx1.example.test";
const MX2: &str = "mx2.example.test";
const POLICY_HOST: &str = "mta-sts.example.test";
const STS_NAME: &str = "_mta-sts.example.test";
const RPT_NAME: &str = "_smtp._tls.example.test";
const DOMAIN: &str = "example.test";

fn run(obs: &Observation) -> Vec<Finding> {
    judge(obs, now()).findings
}

fn assert_case(name: &str, findings: &[Finding], want: &[(Code, Severity, &str)], absent: &[Code]) {
    for (code, severity, subject) in want {
        assert!(
            findings
                .iter()
                .any(|f| f.code == *code && f.severity == *severity && f.subject == *subject),
            "{name}: expected {code} {severity} on {subject}, got:\n{}",
            dump(findings)
        );
    }
    // mx2 stays healthy in every case, so its passing checks do not count against absence.
    for code in absent {
        assert!(
            !findings.iter().any(|f| f.code == *code && f.subject != MX2),
            "{name}: {code} must not fire, got:\n{}",
            dump(findings)
        );
    }
}

fn dump(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("  {} {} [{}] {}", f.severity, f.code, f.subject, f.message))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn healthy_domain_passes_every_check() {
    let findings = run(&healthy());
    assert_case(
        "healthy",
        &findings,
        &[
            (Code::StsTxtOk, Severity::Ok, STS_NAME),
            (Code::StsPolicyFetched, Severity::Ok, POLICY_HOST),
            (Code::StsPolicyValid, Severity::Ok, POLICY_HOST),
            (Code::StsMxCovered, Severity::Ok, DOMAIN),
            (Code::MxStarttlsOk, Severity::Ok, MX1),
            (Code::MxTlsOk, Severity::Ok, MX1),
            (Code::MxCertOk, Severity::Ok, MX1),
            (Code::MxCertOk, Severity::Ok, MX2),
            (Code::DaneTlsaMissing, Severity::Info, MX1),
            (Code::TlsrptTxtOk, Severity::Ok, RPT_NAME),
        ],
        &[],
    );
    let worst = findings.iter().map(|f| f.severity).max();
    assert_eq!(worst, Some(Severity::Info), "{}", dump(&findings));
    for f in &findings {
        assert_eq!(
            f.remedy.is_empty(),
            f.severity == Severity::Ok,
            "{}",
            f.code
        );
        assert_eq!(f.reference, f.code.reference());
    }
}

fn policy_outcome(obs: &mut Observation, outcome: PolicyFetch) {
    obs.policy = policy(DOMAIN, outcome);
}

fn set_policy(obs: &mut Observation, mode: &str, mx: &[&str]) {
    obs.policy = fetched(DOMAIN, policy_body(mode, mx));
}

fn set_probe(obs: &mut Observation, probe: Probe) {
    mx1_probe(obs).probe = probe;
}

fn set_handshake(obs: &mut Observation, handshake: Handshake, legacy: Option<Vec<TlsVersion>>) {
    set_probe(
        obs,
        Probe::Tls {
            banner: "220 mx".to_owned(),
            ehlo_keywords: vec!["STARTTLS".to_owned()],
            tls: Box::new(TlsObservation {
                handshake,
                legacy_accepted: legacy,
            }),
        },
    );
}

fn established(version: TlsVersion) -> Handshake {
    Handshake::Established {
        version,
        cipher: "ECDHE-RSA-AES128-SHA".to_owned(),
        certificate: Some(cert(MX1)),
    }
}

fn tlsa(obs: &mut Observation, records: Vec<TlsaRecord>, dnssec: DnssecStatus) {
    mx1(obs).tlsa.lookup = TlsaLookup::Answer { records, dnssec };
}

fn dane_ee() -> TlsaRecord {
    TlsaRecord {
        usage: 3,
        selector: 1,
        matching_type: 1,
        data: "ab".repeat(32),
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // ---- RFC 8461 §3.1: the _mta-sts record ----
    ("rfc8461_3_1_missing_record_with_policy_host_is_half_a_deployment",
        |o| o.sts_txt = txt(STS_NAME, &[]),
        &[(Code::StsTxtMissing, Severity::Error, STS_NAME)], &[Code::StsTxtOk]),
    ("rfc8461_3_1_missing_record_without_policy_host_is_info",
        |o| { o.sts_txt = txt(STS_NAME, &[]); policy_outcome(o, PolicyFetch::NoAddress { error: None }); },
        &[(Code::StsTxtMissing, Severity::Info, STS_NAME)],
        &[Code::StsPolicyHost, Code::StsPolicyFetched, Code::StsMxCovered, Code::StsMxUncovered]),
    ("rfc8461_3_1_two_records_mean_no_policy",
        |o| o.sts_txt = txt(STS_NAME, &["v=STSv1; id=1;", "v=STSv1; id=2;"]),
        &[(Code::StsTxtMultiple, Severity::Error, STS_NAME)], &[Code::StsTxtOk]),
    ("rfc8461_3_1_unrelated_records_are_ignored_but_noted",
        |o| o.sts_txt = txt(STS_NAME, &["v=spf1 -all", "v=STSv1; id=1;"]),
        &[(Code::StsTxtUnrelated, Severity::Info, STS_NAME), (Code::StsTxtOk, Severity::Ok, STS_NAME)], &[]),
    ("rfc8461_3_1_servfail_is_a_lookup_error",
        |o| o.sts_txt.lookup = TxtLookup::Failed(lookup_error(LookupErrorKind::ServFail)),
        &[(Code::StsTxtLookup, Severity::Error, STS_NAME)], &[Code::StsTxtMissing]),
    ("rfc8461_3_1_id_with_punctuation_is_invalid",
        |o| o.sts_txt = txt(STS_NAME, &["v=STSv1; id=2025-06-01;"]),
        &[(Code::StsTxtId, Severity::Error, STS_NAME)], &[Code::StsTxtOk]),

    // ---- RFC 8461 §3.3: the fetch ----
    ("rfc8461_3_3_policy_host_without_address",
        |o| policy_outcome(o, PolicyFetch::NoAddress { error: None }),
        &[(Code::StsPolicyHost, Severity::Error, POLICY_HOST)], &[Code::StsPolicyFetched, Code::StsTxtMissing]),
    ("rfc8461_3_3_no_https_connection",
        |o| policy_outcome(o, PolicyFetch::Unreachable { detail: "connection refused".into() }),
        &[(Code::StsPolicyUnreachable, Severity::Error, POLICY_HOST)], &[Code::StsPolicyFetched]),
    ("rfc8461_3_3_expired_policy_certificate",
        |o| policy_outcome(o, PolicyFetch::Webpki { problem: CertProblem::Expired, detail: "expired".into() }),
        &[(Code::StsPolicyWebpki, Severity::Error, POLICY_HOST)], &[Code::StsPolicyFetched]),
    ("rfc8461_3_3_redirect_is_never_followed",
        |o| policy_outcome(o, PolicyFetch::Redirect { status: 301, location: Some("https://www.example.test/p".into()) }),
        &[(Code::StsPolicyRedirect, Severity::Error, POLICY_HOST)],
        &[Code::StsPolicyFetched, Code::StsPolicyStatus, Code::StsMxCovered]),
    ("rfc8461_3_3_non_200_status",
        |o| policy_outcome(o, PolicyFetch::Status { status: 404 }),
        &[(Code::StsPolicyStatus, Severity::Error, POLICY_HOST)], &[Code::StsPolicyFetched]),
    ("rfc8461_3_3_media_type_must_be_text_plain",
        |o| policy_outcome(o, PolicyFetch::ContentType { content_type: Some("text/html".into()) }),
        &[(Code::StsPolicyContentType, Severity::Error, POLICY_HOST)], &[]),
    ("rfc8461_3_3_body_over_64k",
        |o| policy_outcome(o, PolicyFetch::TooLarge { limit: 65536 }),
        &[(Code::StsPolicySize, Severity::Error, POLICY_HOST)], &[]),
    ("rfc8461_3_3_fetch_timeout",
        |o| policy_outcome(o, PolicyFetch::Timeout { after_ms: 10_000 }),
        &[(Code::StsPolicyTimeout, Severity::Error, POLICY_HOST)], &[]),
    ("policy_certificate_expiring_within_14_days_warns",
        |o| if let PolicyFetch::Fetched { cert_not_after, .. } = &mut o.policy.outcome {
            *cert_not_after = Some(now() + Duration::days(5));
        },
        &[(Code::StsPolicyCertExpiring, Severity::Warning, POLICY_HOST), (Code::StsPolicyFetched, Severity::Ok, POLICY_HOST)], &[]),
    ("policy_certificate_expiring_in_20_days_is_fine",
        |o| if let PolicyFetch::Fetched { cert_not_after, .. } = &mut o.policy.outcome {
            *cert_not_after = Some(now() + Duration::days(20));
        },
        &[], &[Code::StsPolicyCertExpiring]),
    ("rfc8461_5_testing_mode_is_info",
        |o| set_policy(o, "testing", &["*.example.test"]),
        &[(Code::StsPolicyModeTesting, Severity::Info, "line 2"), (Code::StsPolicyValid, Severity::Ok, POLICY_HOST)], &[]),

    // ---- RFC 8461 §4.1: policy versus MX ----
    ("rfc8461_4_1_uncovered_mx_in_enforce_is_an_error",
        |o| set_policy(o, "enforce", &[MX1]),
        &[(Code::StsMxUncovered, Severity::Error, MX2)], &[Code::StsMxCovered]),
    ("rfc8461_4_1_uncovered_mx_in_testing_is_a_warning",
        |o| set_policy(o, "testing", &[MX1]),
        &[(Code::StsMxUncovered, Severity::Warning, MX2)], &[Code::StsMxCovered]),
    ("rfc8461_4_1_wildcard_matches_exactly_one_label",
        |o| { set_policy(o, "enforce", &["*.test"]); },
        &[(Code::StsMxUncovered, Severity::Error, MX1), (Code::StsMxUncovered, Severity::Error, MX2),
          (Code::StsMxStale, Severity::Warning, "mx: *.test")], &[]),
    ("rfc8461_4_1_pattern_matching_no_mx_is_stale",
        |o| set_policy(o, "enforce", &["*.example.test", "old.example.net"]),
        &[(Code::StsMxStale, Severity::Warning, "mx: old.example.net"), (Code::StsMxCovered, Severity::Ok, DOMAIN)], &[]),
    ("rfc5321_5_1_no_mx_records",
        |o| o.mx = MxLookup::Answer { hosts: Vec::new() },
        &[(Code::StsMxNone, Severity::Warning, DOMAIN)], &[Code::StsMxCovered]),
    ("mx_lookup_failure",
        |o| o.mx = MxLookup::Failed(lookup_error(LookupErrorKind::Timeout)),
        &[(Code::StsMxLookup, Severity::Error, DOMAIN)], &[]),

    // ---- RFC 8461 §4.2 / RFC 3207: each MX host ----
    ("mx_refusing_connections_is_unreachable",
        |o| set_probe(o, Probe::Failed { step: SmtpStep::Connect, timed_out: false, detail: "connection refused".into(), banner: None }),
        &[(Code::MxUnreachable, Severity::Error, MX1)], &[Code::MxStarttlsMissing]),
    ("mx_one_of_two_addresses_unreachable_is_a_warning",
        |o| if let AddressLookup::Answer { addresses } = &mut mx1(o).addresses {
            addresses.push(address(ip(99), Probe::Failed { step: SmtpStep::Banner, timed_out: true, detail: "10s".into(), banner: None }));
        },
        &[(Code::MxUnreachable, Severity::Warning, MX1), (Code::MxCertOk, Severity::Ok, MX1)], &[]),
    ("rfc3207_no_starttls_in_ehlo",
        |o| set_probe(o, Probe::NoStarttls { banner: "220 mx".into(), ehlo_keywords: vec!["PIPELINING".into()] }),
        &[(Code::MxStarttlsMissing, Severity::Error, MX1)], &[Code::MxStarttlsOk]),
    ("rfc8461_4_2_expired_cert_is_expired_not_missing_starttls",
        |o| { let c = mx1_cert(o); c.not_before = now() - Duration::days(100); c.not_after = now() - Duration::days(2); c.validity = CertValidity::Expired; },
        &[(Code::MxCertExpired, Severity::Error, MX1), (Code::MxStarttlsOk, Severity::Ok, MX1)],
        &[Code::MxStarttlsMissing, Code::MxCertExpiring]),
    ("rfc8461_4_2_not_yet_valid_cert",
        |o| { let c = mx1_cert(o); c.not_before = now() + Duration::days(1); c.validity = CertValidity::NotYetValid; },
        &[(Code::MxCertExpired, Severity::Error, MX1)], &[]),
    ("mx_cert_expiring_within_14_days_warns",
        |o| mx1_cert(o).not_after = now() + Duration::days(10),
        &[(Code::MxCertExpiring, Severity::Warning, MX1)], &[Code::MxCertExpired]),
    ("mx_cert_expiring_in_20_days_is_ok",
        |o| mx1_cert(o).not_after = now() + Duration::days(20),
        &[(Code::MxCertOk, Severity::Ok, MX1)], &[Code::MxCertExpiring]),
    ("rfc8461_4_2_cert_for_another_name",
        |o| { let c = mx1_cert(o); c.name_matches = false; c.dns_names = vec!["other.test".into()]; },
        &[(Code::MxCertName, Severity::Error, MX1)], &[Code::MxStarttlsMissing]),
    ("rfc8461_4_2_self_signed_cert",
        |o| mx1_cert(o).trust = Trust::Untrusted { reason: UntrustedReason::SelfSigned, detail: "self-signed".into() },
        &[(Code::MxCertUntrusted, Severity::Error, MX1)], &[Code::MxCertOk]),
    ("rfc8461_4_2_expired_intermediate_is_expired",
        |o| mx1_cert(o).trust = Trust::Untrusted { reason: UntrustedReason::ChainExpired, detail: "intermediate".into() },
        &[(Code::MxCertExpired, Severity::Error, MX1)], &[Code::MxCertUntrusted]),
    ("rfc8996_server_speaking_only_tls1_0",
        |o| set_handshake(o, Handshake::Failed { detail: "protocol version".into(), timed_out: false }, Some(vec![TlsVersion::Tls10])),
        &[(Code::MxTlsVersion, Severity::Error, MX1)], &[Code::MxTlsHandshake, Code::MxTlsOk]),
    ("rfc8996_best_version_below_1_2",
        |o| set_handshake(o, established(TlsVersion::Tls11), None),
        &[(Code::MxTlsVersion, Severity::Error, MX1)], &[Code::MxTlsOk]),
    ("rfc8996_legacy_versions_alongside_1_3",
        |o| set_handshake(o, established(TlsVersion::Tls13), Some(vec![TlsVersion::Tls10, TlsVersion::Tls11])),
        &[(Code::MxTlsLegacy, Severity::Info, MX1), (Code::MxTlsOk, Severity::Ok, MX1)], &[Code::MxTlsVersion]),
    ("rfc8461_4_2_failed_handshake",
        |o| set_handshake(o, Handshake::Failed { detail: "handshake failure alert".into(), timed_out: false }, Some(Vec::new())),
        &[(Code::MxTlsHandshake, Severity::Error, MX1), (Code::MxStarttlsOk, Severity::Ok, MX1)], &[Code::MxStarttlsMissing]),
    ("rfc3207_starttls_command_refused",
        |o| set_probe(o, Probe::Failed { step: SmtpStep::Starttls, timed_out: false, detail: "454 TLS not available".into(), banner: Some("220 mx".into()) }),
        &[(Code::MxTlsHandshake, Severity::Error, MX1)], &[Code::MxUnreachable]),
    ("mx_host_without_address",
        |o| mx1(o).addresses = AddressLookup::Answer { addresses: Vec::new() },
        &[(Code::MxAddress, Severity::Error, MX1)], &[Code::MxUnreachable]),

    // ---- RFC 7672: DANE ----
    ("rfc7672_3_1_matching_tlsa_is_ok",
        |o| { tlsa(o, vec![dane_ee()], DnssecStatus::Secure); mx1_probe(o).dane = Some(DaneMatch { matched: Some(dane_ee()) }); },
        &[(Code::DaneTlsaOk, Severity::Ok, MX1)], &[Code::DaneTlsaMissing]),
    ("rfc7672_3_1_no_record_matches_the_chain",
        |o| { tlsa(o, vec![dane_ee()], DnssecStatus::Secure); mx1_probe(o).dane = Some(DaneMatch { matched: None }); },
        &[(Code::DaneTlsaMismatch, Severity::Error, MX1)], &[Code::DaneTlsaOk]),
    ("rfc7672_2_2_unsigned_tlsa_is_ignored_by_senders",
        |o| tlsa(o, vec![dane_ee()], DnssecStatus::Insecure),
        &[(Code::DaneTlsaInsecure, Severity::Warning, MX1)], &[Code::DaneTlsaMismatch]),
    ("rfc7672_3_1_3_pkix_usages_are_unusable",
        |o| tlsa(o, vec![TlsaRecord { usage: 1, ..dane_ee() }], DnssecStatus::Secure),
        &[(Code::DaneTlsaUsage, Severity::Warning, MX1)], &[Code::DaneTlsaMismatch]),
    ("rfc7672_2_2_secure_all_unusable_rrset_is_reported",
        |o| tlsa(o, vec![TlsaRecord { usage: 0, ..dane_ee() }, TlsaRecord { matching_type: 7, ..dane_ee() }], DnssecStatus::Secure),
        &[(Code::DaneTlsaUsage, Severity::Warning, MX1)], &[Code::DaneTlsaMissing, Code::DaneTlsaOk]),
    ("rfc7672_2_1_2_tlsa_servfail_for_a_signed_host_is_an_error",
        |o| { mx1(o).tlsa.host_dnssec = Some(DnssecStatus::Secure); mx1(o).tlsa.lookup = TlsaLookup::Failed(lookup_error(LookupErrorKind::ServFail)); },
        &[(Code::DaneTlsaLookup, Severity::Error, MX1)], &[Code::DaneDnssecBogus]),
    ("rfc7672_2_2_2_tlsa_timeout_for_an_unsigned_host_is_a_warning",
        |o| mx1(o).tlsa.lookup = TlsaLookup::Failed(lookup_error(LookupErrorKind::Timeout)),
        &[(Code::DaneTlsaLookup, Severity::Warning, MX1)], &[Code::DaneDnssecBogus]),
    ("rfc4035_4_3_indeterminate_tlsa_is_unknown_not_wrong",
        |o| { tlsa(o, vec![dane_ee()], DnssecStatus::Indeterminate); o.resolver.dnssec = DnssecValidation::NoDnssecRecords; },
        &[(Code::DnsDnssecUnavailable, Severity::Info, "resolver 127.0.0.1:53")],
        &[Code::DaneTlsaInsecure, Code::DaneTlsaMismatch, Code::DaneDnssecBogus, Code::DaneTlsaMissing]),
    ("dnssec_validation_off_is_said_once",
        |o| { tlsa(o, Vec::new(), DnssecStatus::Indeterminate); o.resolver.dnssec = DnssecValidation::Off; },
        &[(Code::DnsDnssecUnavailable, Severity::Info, "resolver 127.0.0.1:53")],
        &[Code::DaneTlsaMissing, Code::DaneDnssecBogus]),

    // ---- RFC 8460 §3: the _smtp._tls record ----
    ("rfc8460_3_missing_record_hides_failures",
        |o| o.tlsrpt_txt = txt(RPT_NAME, &["v=spf1 -all"]),
        &[(Code::TlsrptTxtMissing, Severity::Warning, RPT_NAME)], &[Code::TlsrptTxtOk]),
    ("rfc8460_3_two_records_mean_none",
        |o| o.tlsrpt_txt = txt(RPT_NAME, &["v=TLSRPTv1; rua=mailto:a@example.test", "v=TLSRPTv1; rua=mailto:b@example.test"]),
        &[(Code::TlsrptTxtMultiple, Severity::Error, RPT_NAME)], &[]),
    ("rfc8460_3_record_without_rua",
        |o| o.tlsrpt_txt = txt(RPT_NAME, &["v=TLSRPTv1;"]),
        &[(Code::TlsrptRuaMissing, Severity::Error, RPT_NAME)], &[Code::TlsrptTxtOk]),
    ("rfc8460_3_rua_with_unknown_scheme",
        |o| o.tlsrpt_txt = txt(RPT_NAME, &["v=TLSRPTv1; rua=ftp://example.test/r"]),
        &[(Code::TlsrptRuaInvalid, Severity::Error, RPT_NAME)], &[]),
    ("rfc8460_3_lookup_failure",
        |o| o.tlsrpt_txt.lookup = TxtLookup::Failed(lookup_error(LookupErrorKind::Timeout)),
        &[(Code::TlsrptTxtLookup, Severity::Error, RPT_NAME)], &[]),
];

#[test]
fn judge_table() {
    for (name, mutate, want, absent) in CASES {
        let mut obs = healthy();
        mutate(&mut obs);
        assert_case(name, &run(&obs), want, absent);
    }
}

#[test]
fn identical_faults_on_several_addresses_merge_into_one_finding() {
    let mut obs = healthy();
    let mut expired = cert(MX1);
    expired.not_after = now() - Duration::days(1);
    expired.validity = CertValidity::Expired;
    mx1(&mut obs).addresses = AddressLookup::Answer {
        addresses: vec![
            address(ip(11), tls(expired.clone())),
            address(ip(21), tls(expired)),
        ],
    };
    let findings = run(&obs);
    let expired: Vec<_> = findings
        .iter()
        .filter(|f| f.code == Code::MxCertExpired)
        .collect();
    assert_eq!(expired.len(), 1, "{}", dump(&findings));
    assert!(
        !expired[0].message.contains("127.0.0."),
        "every address has the fault, so none is singled out: {}",
        expired[0].message
    );
}

#[test]
fn addresses_that_disagree_stay_distinguishable() {
    let mut obs = healthy();
    let mut expired = cert(MX1);
    expired.not_after = now() - Duration::days(1);
    expired.validity = CertValidity::Expired;
    mx1(&mut obs).addresses = AddressLookup::Answer {
        addresses: vec![
            address(ip(11), tls(cert(MX1))),
            address(ip(21), tls(expired)),
        ],
    };
    let findings = run(&obs);
    let expired = findings
        .iter()
        .find(|f| f.code == Code::MxCertExpired)
        .unwrap();
    assert!(
        expired.message.starts_with("127.0.0.21: "),
        "{}",
        expired.message
    );
    assert!(!expired.message.contains("127.0.0.11"));
}

#[test]
fn messages_carry_the_values_seen() {
    let mut obs = healthy();
    policy_outcome(
        &mut obs,
        PolicyFetch::Redirect {
            status: 301,
            location: Some("https://www.example.test/policy".into()),
        },
    );
    let findings = run(&obs);
    let f = findings
        .iter()
        .find(|f| f.code == Code::StsPolicyRedirect)
        .unwrap();
    assert!(f.message.contains("301"), "{}", f.message);
    assert!(f.message.contains("https://www.example.test/policy"));

    let mut obs = healthy();
    mx1_cert(&mut obs).not_after = now() + Duration::days(3);
    let findings = run(&obs);
    let f = findings
        .iter()
        .find(|f| f.code == Code::MxCertExpiring)
        .unwrap();
    assert!(f.message.contains("2025-06-04"), "{}", f.message);
    assert!(f.message.contains("in 3 days"), "{}", f.message);
}

/// RFC 7672 §2.2: "A "secure" non-empty TLSA RRset where all the records are unusable:  Any
/// connection to the MTA MUST be made via TLS, but authentication is not required." It was
/// read as "DANE does not apply".
#[test]
fn rfc7672_2_2_all_unusable_secure_tlsa_still_requires_tls() {
    let mut obs = healthy();
    tlsa(
        &mut obs,
        vec![TlsaRecord {
            usage: 1,
            ..dane_ee()
        }],
        DnssecStatus::Secure,
    );
    let findings = run(&obs);
    let usage = findings
        .iter()
        .find(|f| f.code == Code::DaneTlsaUsage)
        .unwrap();
    assert!(
        usage.message.contains("still require TLS"),
        "{}",
        usage.message
    );

    // With a usable record beside it, authentication applies and nothing is said of TLS-only.
    let mut obs = healthy();
    tlsa(
        &mut obs,
        vec![
            TlsaRecord {
                usage: 1,
                ..dane_ee()
            },
            dane_ee(),
        ],
        DnssecStatus::Secure,
    );
    let findings = run(&obs);
    let usage = findings
        .iter()
        .find(|f| f.code == Code::DaneTlsaUsage)
        .unwrap();
    assert!(
        !usage.message.contains("still require TLS"),
        "{}",
        usage.message
    );
}

#[test]
fn rfc4035_4_3_unavailable_dnssec_is_one_finding_for_every_host() {
    let mut obs = healthy();
    obs.resolver.dnssec = DnssecValidation::NoDnssecRecords;
    for host in match &mut obs.mx {
        MxLookup::Answer { hosts } => hosts,
        MxLookup::Failed(_) => unreachable!(),
    } {
        host.tlsa.lookup = TlsaLookup::Answer {
            records: vec![dane_ee()],
            dnssec: DnssecStatus::Indeterminate,
        };
    }
    let findings = run(&obs);
    let about_dnssec: Vec<_> = findings
        .iter()
        .filter(|f| f.code.as_str().starts_with("dane.") || f.code.as_str().starts_with("dns."))
        .collect();
    assert_eq!(about_dnssec.len(), 1, "{}", dump(&findings));
    assert_eq!(about_dnssec[0].code, Code::DnsDnssecUnavailable);
    assert!(
        about_dnssec[0].message.contains(MX1),
        "{}",
        about_dnssec[0].message
    );
    assert_eq!(
        findings.iter().map(|f| f.severity).max(),
        Some(Severity::Info)
    );
}

#[test]
fn null_mx_gives_no_host_findings() {
    let mut obs = healthy();
    obs.mx = MxLookup::Answer {
        hosts: vec![mx("", 0, Vec::new())],
    };
    let findings = run(&obs);
    assert_case(
        "null MX",
        &findings,
        &[(Code::StsMxNone, Severity::Warning, DOMAIN)],
        &[Code::MxAddress, Code::MxUnreachable],
    );
}
