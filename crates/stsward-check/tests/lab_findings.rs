//! The checker against the real lab on loopback: every finding code the shipped scenario can
//! provoke fires on the right subject with the right severity (`spec/findings.md`), and the
//! perfect domain passes clean.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use stsward_check::{CheckConfig, CheckReport, Checker};
use stsward_lab::{FINDINGS_SCENARIO, Lab, LabOptions, RunningLab, Scenario};
use stsward_proto::{Code, Severity};
use time::OffsetDateTime;

/// The whole run finishes within this, or fails.
const LIMIT: Duration = Duration::from_secs(120);

struct World {
    _dir: tempfile::TempDir,
    lab: RunningLab,
    checker: Checker,
}

async fn world() -> World {
    world_with(true, false).await
}

/// `plain_dns`: the lab's DNS server has no DNSSEC support (no RRSIG, no DNSKEY, DO ignored)
/// and writes no trust anchors, like a plain forwarder.
async fn world_with(validate_dnssec: bool, plain_dns: bool) -> World {
    world_opts(FINDINGS_SCENARIO, validate_dnssec, plain_dns).await
}

async fn world_from(scenario: &str, validate_dnssec: bool) -> World {
    world_opts(scenario, validate_dnssec, false).await
}

async fn world_opts(scenario: &str, validate_dnssec: bool, plain_dns: bool) -> World {
    let dir = tempfile::tempdir().unwrap();
    let scenario: Scenario = scenario.parse().unwrap();
    let mut opts = LabOptions::new(dir.path(), OffsetDateTime::now_utc());
    opts.plain_dns = plain_dns;
    let lab = Lab::start(&scenario, &opts).await.unwrap();
    let pem = std::fs::read(lab.ca_file()).unwrap();
    let anchors = lab
        .trust_anchor_file()
        .map(|p| std::fs::read_to_string(p).unwrap());
    let checker = Checker::new(CheckConfig {
        resolver: Some(lab.resolver_addr()),
        extra_roots: CheckConfig::roots_from_pem(&pem).unwrap(),
        use_webpki_roots: false,
        validate_dnssec,
        trust_anchors: anchors,
        smtp_port: lab.smtp_port(),
        https_port: lab.https_port(),
        dns_timeout: Duration::from_secs(2),
        // The lab's slow policy host answers after 70 s; a short bound keeps the test quick.
        fetch_timeout: Duration::from_secs(10),
        smtp_step_timeout: Duration::from_secs(3),
        concurrency: 64,
        helo_name: "checker.test".to_owned(),
        probe_legacy_tls: true,
        ..CheckConfig::default()
    })
    .unwrap();
    World {
        _dir: dir,
        lab,
        checker,
    }
}

async fn check_all(w: &World, domains: Vec<String>) -> BTreeMap<String, CheckReport> {
    let now = OffsetDateTime::now_utc();
    let results = tokio::time::timeout(LIMIT, w.checker.check_many(domains, 16, || now, |_| {}))
        .await
        .expect("bulk check within the limit");
    results
        .into_iter()
        .map(|r| {
            let r = r.unwrap();
            (r.domain.clone(), r)
        })
        .collect()
}

fn dump(r: &CheckReport) -> String {
    r.findings
        .iter()
        .map(|f| format!("  {} {} [{}] {}", f.severity, f.code, f.subject, f.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// (domain, code, severity, subject): what each lab domain must raise. Subjects follow the
/// spec: the TXT name for records, the policy host for the fetch, `line N` for policy lines,
/// the MX host for MX and DANE findings, `mx: <pattern>` for a stale pattern.
#[rustfmt::skip]
const EXPECTED: &[(&str, Code, Severity, &str)] = &[
    // `_mta-sts` TXT (RFC 8461 §3.1)
    ("sts-txt-missing.test", Code::StsTxtMissing, Severity::Error, "_mta-sts.sts-txt-missing.test"),
    ("sts-txt-multiple.test", Code::StsTxtMultiple, Severity::Error, "_mta-sts.sts-txt-multiple.test"),
    ("sts-txt-duplicate.test", Code::StsTxtDuplicate, Severity::Warning, "_mta-sts.sts-txt-duplicate.test"),
    ("sts-txt-duplicate.test", Code::StsTxtOk, Severity::Ok, "_mta-sts.sts-txt-duplicate.test"),
    ("sts-txt-syntax.test", Code::StsTxtSyntax, Severity::Error, "_mta-sts.sts-txt-syntax.test"),
    ("sts-txt-version.test", Code::StsTxtVersion, Severity::Error, "_mta-sts.sts-txt-version.test"),
    ("sts-txt-version-order.test", Code::StsTxtVersion, Severity::Error, "_mta-sts.sts-txt-version-order.test"),
    ("sts-txt-id.test", Code::StsTxtId, Severity::Error, "_mta-sts.sts-txt-id.test"),
    ("sts-txt-id-long.test", Code::StsTxtId, Severity::Error, "_mta-sts.sts-txt-id-long.test"),
    ("sts-txt-extension.test", Code::StsTxtExtension, Severity::Info, "_mta-sts.sts-txt-extension.test"),
    ("sts-txt-unrelated.test", Code::StsTxtUnrelated, Severity::Info, "_mta-sts.sts-txt-unrelated.test"),
    ("sts-txt-unrelated.test", Code::StsTxtOk, Severity::Ok, "_mta-sts.sts-txt-unrelated.test"),
    ("sts-txt-split.test", Code::StsTxtOk, Severity::Ok, "_mta-sts.sts-txt-split.test"),
    ("sts-txt-lookup.test", Code::StsTxtLookup, Severity::Error, "_mta-sts.sts-txt-lookup.test"),
    ("sts-txt-cname.test", Code::StsTxtOk, Severity::Ok, "_mta-sts.sts-txt-cname.test"),
    // Policy fetch (RFC 8461 §3.3)
    ("sts-policy-host.test", Code::StsPolicyHost, Severity::Error, "mta-sts.sts-policy-host.test"),
    ("sts-policy-unreachable.test", Code::StsPolicyUnreachable, Severity::Error, "mta-sts.sts-policy-unreachable.test"),
    ("sts-policy-webpki-expired.test", Code::StsPolicyWebpki, Severity::Error, "mta-sts.sts-policy-webpki-expired.test"),
    ("sts-policy-webpki-name.test", Code::StsPolicyWebpki, Severity::Error, "mta-sts.sts-policy-webpki-name.test"),
    ("sts-policy-webpki-self-signed.test", Code::StsPolicyWebpki, Severity::Error, "mta-sts.sts-policy-webpki-self-signed.test"),
    ("sts-policy-webpki-untrusted.test", Code::StsPolicyWebpki, Severity::Error, "mta-sts.sts-policy-webpki-untrusted.test"),
    ("sts-policy-cert-expiring.test", Code::StsPolicyCertExpiring, Severity::Warning, "mta-sts.sts-policy-cert-expiring.test"),
    ("sts-policy-redirect.test", Code::StsPolicyRedirect, Severity::Error, "mta-sts.sts-policy-redirect.test"),
    ("sts-policy-status.test", Code::StsPolicyStatus, Severity::Error, "mta-sts.sts-policy-status.test"),
    ("sts-policy-status-500.test", Code::StsPolicyStatus, Severity::Error, "mta-sts.sts-policy-status-500.test"),
    ("sts-policy-content-type.test", Code::StsPolicyContentType, Severity::Error, "mta-sts.sts-policy-content-type.test"),
    ("sts-policy-size.test", Code::StsPolicySize, Severity::Error, "mta-sts.sts-policy-size.test"),
    ("sts-policy-timeout.test", Code::StsPolicyTimeout, Severity::Error, "mta-sts.sts-policy-timeout.test"),
    // Policy content (RFC 8461 §3.2)
    ("sts-policy-syntax.test", Code::StsPolicySyntax, Severity::Error, "line 3"),
    ("sts-policy-version.test", Code::StsPolicyVersion, Severity::Error, "line 1"),
    ("sts-policy-mode.test", Code::StsPolicyMode, Severity::Error, "line 2"),
    ("sts-policy-mode-testing.test", Code::StsPolicyModeTesting, Severity::Info, "line 2"),
    ("sts-policy-mode-none.test", Code::StsPolicyModeNone, Severity::Warning, "line 2"),
    ("sts-policy-max-age.test", Code::StsPolicyMaxAge, Severity::Error, "line 4"),
    ("sts-policy-max-age-short.test", Code::StsPolicyMaxAgeShort, Severity::Warning, "line 4"),
    ("sts-policy-mx-missing.test", Code::StsPolicyMxMissing, Severity::Error, "mta-sts.sts-policy-mx-missing.test"),
    ("sts-policy-mx-invalid.test", Code::StsPolicyMxInvalid, Severity::Error, "line 4"),
    ("sts-policy-mx-duplicate.test", Code::StsPolicyMxDuplicate, Severity::Info, "line 4"),
    ("sts-policy-duplicate.test", Code::StsPolicyDuplicate, Severity::Warning, "line 3"),
    ("sts-policy-unknown-key.test", Code::StsPolicyUnknownKey, Severity::Info, "line 5"),
    ("sts-policy-line-endings.test", Code::StsPolicyLineEndings, Severity::Info, "mta-sts.sts-policy-line-endings.test"),
    ("sts-policy-blank-line.test", Code::StsPolicyBlankLine, Severity::Warning, "line 3"),
    ("sts-policy-bom.test", Code::StsPolicyBom, Severity::Error, "line 1"),
    // Policy versus MX (RFC 8461 §4.1)
    ("sts-mx-uncovered.test", Code::StsMxUncovered, Severity::Error, "mx2.sts-mx-uncovered.test"),
    ("sts-mx-stale.test", Code::StsMxStale, Severity::Warning, "mx: old-mx.sts-mx-stale.test"),
    ("sts-mx-stale.test", Code::StsMxCovered, Severity::Ok, "sts-mx-stale.test"),
    ("sts-mx-none.test", Code::StsMxNone, Severity::Warning, "sts-mx-none.test"),
    ("sts-mx-wildcard.test", Code::StsMxCovered, Severity::Ok, "sts-mx-wildcard.test"),
    // Each MX host (RFC 8461 §4.2, RFC 3207)
    ("mx-address.test", Code::MxAddress, Severity::Error, "mx.mx-address.test"),
    ("mx-unreachable.test", Code::MxUnreachable, Severity::Error, "mx.mx-unreachable.test"),
    ("mx-starttls-missing.test", Code::MxStarttlsMissing, Severity::Error, "mx.mx-starttls-missing.test"),
    ("mx-tls-handshake.test", Code::MxTlsHandshake, Severity::Error, "mx.mx-tls-handshake.test"),
    ("mx-tls-handshake.test", Code::MxStarttlsOk, Severity::Ok, "mx.mx-tls-handshake.test"),
    ("mx-tls-version.test", Code::MxTlsVersion, Severity::Error, "mx.mx-tls-version.test"),
    ("mx-tls-legacy.test", Code::MxTlsLegacy, Severity::Info, "mx.mx-tls-legacy.test"),
    ("mx-tls-legacy.test", Code::MxTlsOk, Severity::Ok, "mx.mx-tls-legacy.test"),
    ("mx-cert-expired.test", Code::MxCertExpired, Severity::Error, "mx.mx-cert-expired.test"),
    ("mx-cert-expired.test", Code::MxStarttlsOk, Severity::Ok, "mx.mx-cert-expired.test"),
    ("mx-cert-expiring.test", Code::MxCertExpiring, Severity::Warning, "mx.mx-cert-expiring.test"),
    ("mx-cert-name.test", Code::MxCertName, Severity::Error, "mx.mx-cert-name.test"),
    ("mx-cert-untrusted.test", Code::MxCertUntrusted, Severity::Error, "mx.mx-cert-untrusted.test"),
    ("mx-cert-self-signed.test", Code::MxCertUntrusted, Severity::Error, "mx.mx-cert-self-signed.test"),
    // DANE (RFC 7672)
    ("perfect.test", Code::DaneTlsaOk, Severity::Ok, "mx.perfect.test"),
    ("dane-tlsa-missing.test", Code::DaneTlsaMissing, Severity::Info, "mx.dane-tlsa-missing.test"),
    ("dane-tlsa-insecure.test", Code::DaneTlsaInsecure, Severity::Warning, "mx.dane-tlsa-insecure.test"),
    ("dane-tlsa-mismatch.test", Code::DaneTlsaMismatch, Severity::Error, "mx.dane-tlsa-mismatch.test"),
    ("dane-tlsa-usage.test", Code::DaneTlsaUsage, Severity::Warning, "mx.dane-tlsa-usage.test"),
    ("dane-dnssec-bogus.test", Code::DaneDnssecBogus, Severity::Error, "mx.dane-dnssec-bogus-mx.test"),
    ("dane-dnssec-bogus.test", Code::MxAddress, Severity::Error, "mx.dane-dnssec-bogus-mx.test"),
    ("dane-tlsa-lookup.test", Code::DaneTlsaLookup, Severity::Error, "mx.dane-tlsa-lookup.test"),
    ("dane-tlsa-lookup.test", Code::MxCertOk, Severity::Ok, "mx.dane-tlsa-lookup.test"),
    // DNSSEC: a zone whose signatures expired is bogus (RFC 4035 §4.3) on each record
    ("dnssec-expired.test", Code::StsTxtLookup, Severity::Error, "_mta-sts.dnssec-expired.test"),
    ("dnssec-expired.test", Code::StsMxLookup, Severity::Error, "dnssec-expired.test"),
    ("dnssec-expired.test", Code::StsPolicyHost, Severity::Error, "mta-sts.dnssec-expired.test"),
    ("dnssec-expired.test", Code::TlsrptTxtLookup, Severity::Error, "_smtp._tls.dnssec-expired.test"),
    ("dane-dnssec-bogus-mx.test", Code::StsTxtLookup, Severity::Error, "_mta-sts.dane-dnssec-bogus-mx.test"),
    ("dane-dnssec-bogus-mx.test", Code::StsMxLookup, Severity::Error, "dane-dnssec-bogus-mx.test"),
    // `_smtp._tls` TXT (RFC 8460 §3)
    ("tlsrpt-txt-missing.test", Code::TlsrptTxtMissing, Severity::Warning, "_smtp._tls.tlsrpt-txt-missing.test"),
    ("tlsrpt-txt-multiple.test", Code::TlsrptTxtMultiple, Severity::Error, "_smtp._tls.tlsrpt-txt-multiple.test"),
    ("tlsrpt-txt-syntax.test", Code::TlsrptTxtSyntax, Severity::Error, "_smtp._tls.tlsrpt-txt-syntax.test"),
    ("tlsrpt-txt-extension.test", Code::TlsrptTxtExtension, Severity::Info, "_smtp._tls.tlsrpt-txt-extension.test"),
    ("tlsrpt-txt-lookup.test", Code::TlsrptTxtLookup, Severity::Error, "_smtp._tls.tlsrpt-txt-lookup.test"),
    ("tlsrpt-rua-missing.test", Code::TlsrptRuaMissing, Severity::Error, "_smtp._tls.tlsrpt-rua-missing.test"),
    ("tlsrpt-rua-duplicate.test", Code::TlsrptRuaDuplicate, Severity::Warning, "_smtp._tls.tlsrpt-rua-duplicate.test"),
    ("tlsrpt-rua-invalid.test", Code::TlsrptRuaInvalid, Severity::Error, "_smtp._tls.tlsrpt-rua-invalid.test"),
];

/// (domain, code that must NOT fire anywhere in its report, why).
#[rustfmt::skip]
const ABSENT: &[(&str, Code, &str)] = &[
    ("mx-cert-expired.test", Code::MxStarttlsMissing, "STARTTLS works; only the certificate is bad"),
    ("mx-tls-version.test", Code::MxTlsHandshake, "the fault is the version, not the handshake as such"),
    ("mx-tls-handshake.test", Code::MxStarttlsMissing, "STARTTLS is offered"),
    ("sts-policy-redirect.test", Code::StsPolicyFetched, "the redirect target serves a valid policy, but senders do not follow it"),
    ("sts-policy-redirect.test", Code::StsPolicyValid, "no policy was accepted"),
    ("sts-txt-missing.test", Code::StsTxtOk, "there is no record"),
    ("mx-cert-expired.test", Code::DaneDnssecBogus, "an unsigned zone outside the trust anchors is insecure, not bogus"),
    ("four-mx.test", Code::DaneDnssecBogus, "an unsigned zone outside the trust anchors is insecure, not bogus"),
    ("dnssec-expired.test", Code::StsTxtMissing, "an expired signed zone is bogus, not a domain without MTA-STS"),
    ("dnssec-expired.test", Code::StsTxtOk, "a record that fails validation is not read"),
    ("dnssec-expired.test", Code::DnsDnssecUnavailable, "the lab's server passes DNSSEC records"),
    ("perfect.test", Code::DnsDnssecUnavailable, "the lab's server passes DNSSEC records"),
    ("dane-dnssec-bogus.test", Code::StsTxtLookup, "only the MX host's zone is bogus"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_lab_fault_raises_its_code_on_its_subject() {
    // One validating pass, as a DANE-aware sender runs: the lab's trust anchors make its
    // signed zones islands of security, and its unsigned zones are reported insecure.
    let w = world().await;
    let all = check_all(&w, w.lab.domains().to_vec()).await;
    let mut failures = Vec::new();
    for (domain, code, severity, subject) in EXPECTED {
        let Some(r) = all.get(*domain) else {
            failures.push(format!("{domain}: not checked"));
            continue;
        };
        let hit = r
            .findings
            .iter()
            .any(|f| f.code == *code && f.severity == *severity && f.subject == *subject);
        if !hit {
            failures.push(format!(
                "{domain}: expected {code} {severity} on {subject:?}, got:\n{}",
                dump(r)
            ));
        }
    }
    for (domain, code, why) in ABSENT {
        let Some(r) = all.get(*domain) else {
            failures.push(format!("{domain}: not checked"));
            continue;
        };
        if r.has(*code) {
            failures.push(format!(
                "{domain}: {code} must not fire ({why}):\n{}",
                dump(r)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn perfect_domain_is_ok_with_no_warnings() {
    let w = world().await;
    let r = w
        .checker
        .check_domain("perfect.test", OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(r.verdict, Severity::Ok, "{}", dump(&r));
    assert_eq!((r.counts.warning, r.counts.error, r.counts.info), (0, 0, 0));
    assert_eq!(r.exit_status(), stsward_check::EXIT_OK);
    for code in [
        Code::StsTxtOk,
        Code::StsPolicyFetched,
        Code::StsPolicyValid,
        Code::StsMxCovered,
        Code::MxStarttlsOk,
        Code::MxTlsOk,
        Code::MxCertOk,
        Code::DaneTlsaOk,
        Code::TlsrptTxtOk,
    ] {
        assert!(r.has(code), "{code} missing:\n{}", dump(&r));
    }
}

/// Issue 6, acceptance: a signed zone whose signatures expired gets bogus errors on its TXT
/// and its MX lookup. It used to read as "no record" ("does not use MTA-STS"), or as a valid
/// record, while validating senders get SERVFAIL and defer its mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rfc7672_2_1_1_expired_signatures_are_bogus_not_missing() {
    let w = world().await;
    let r = w
        .checker
        .check_domain("dnssec-expired.test", OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(r.exit_status(), stsward_check::EXIT_ERRORS, "{}", dump(&r));
    for (code, subject) in [
        (Code::StsTxtLookup, "_mta-sts.dnssec-expired.test"),
        (Code::StsMxLookup, "dnssec-expired.test"),
        (Code::StsPolicyHost, "mta-sts.dnssec-expired.test"),
    ] {
        let f = r
            .findings
            .iter()
            .find(|f| f.code == code && f.subject == subject)
            .unwrap_or_else(|| panic!("{code} on {subject}:\n{}", dump(&r)));
        assert_eq!(f.severity, Severity::Error);
        assert!(f.message.contains("bogus"), "{code}: {}", f.message);
    }
    assert!(!r.has(Code::StsTxtMissing), "{}", dump(&r));
}

/// Issue 6, acceptance: unsigned zones through a DNS server with no DNSSEC support, checked
/// the way a user does (validation on, the default; no trust anchors). Every MX host used
/// to get `dane.dnssec.bogus` (error, exit 1). Now a healthy domain gets no warning and no
/// error, and the resolver's lack of DNSSEC is said once, at info.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rfc4035_4_3_healthy_unsigned_domain_through_a_resolver_without_dnssec_is_ok() {
    let w = world_with(true, true).await;
    assert!(
        w.lab.trust_anchor_file().is_none(),
        "a plain server has no keys to anchor"
    );
    for domain in ["perfect.test", "four-mx.test", "dane-tlsa-usage.test"] {
        let r = w
            .checker
            .check_domain(domain, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert!(r.verdict <= Severity::Info, "{domain}:\n{}", dump(&r));
        assert_eq!(r.exit_status(), stsward_check::EXIT_OK, "{domain}");
        let unavailable: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.code == Code::DnsDnssecUnavailable)
            .collect();
        assert_eq!(unavailable.len(), 1, "{domain}: said once:\n{}", dump(&r));
        assert_eq!(unavailable[0].severity, Severity::Info);
        assert_eq!(
            unavailable[0].subject,
            format!("resolver {}", w.lab.resolver_addr())
        );
        for code in [
            Code::DaneDnssecBogus,
            Code::DaneTlsaInsecure,
            Code::DaneTlsaMissing,
        ] {
            assert!(!r.has(code), "{domain}: DANE is unknown, not {code}");
        }
        for code in [
            Code::StsTxtOk,
            Code::StsPolicyValid,
            Code::MxCertOk,
            Code::TlsrptTxtOk,
        ] {
            assert!(r.has(code), "{domain}: {code} missing:\n{}", dump(&r));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_of_a_lab_check_carries_observed_mx_details() {
    let w = world().await;
    let r = w
        .checker
        .check_domain("mx-cert-expired.test", OffsetDateTime::now_utc())
        .await
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&stsward_check::render::json::render(&r)).unwrap();
    assert_eq!(v["verdict"], "error");
    assert_eq!(r.exit_status(), stsward_check::EXIT_ERRORS);
    let host = &v["observed"]["mx"]["hosts"][0];
    assert_eq!(host["host"], "mx.mx-cert-expired.test");
    let hs = &host["addresses"]["addresses"][0]["probe"]["tls"]["handshake"];
    assert_eq!(hs["outcome"], "established");
    assert!(hs["certificate"]["not_after"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unusable_resolver_means_the_check_did_not_run() {
    // A port on loopback where nothing answers DNS.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = socket.local_addr().unwrap();
    drop(socket);
    let checker = Checker::new(CheckConfig {
        resolver: Some(dead),
        dns_timeout: Duration::from_millis(200),
        fetch_timeout: Duration::from_secs(2),
        smtp_step_timeout: Duration::from_secs(1),
        ..CheckConfig::default()
    })
    .unwrap();
    let result = tokio::time::timeout(
        LIMIT,
        checker.check_domain("example.test", OffsetDateTime::now_utc()),
    )
    .await
    .unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(
            err.error,
            stsward_check::CheckError::ResolverUnusable { .. }
        ),
        "{err}"
    );
    assert_eq!(
        stsward_check::exit_status(&[Err(err)]),
        stsward_check::EXIT_NOT_RUN
    );
}

/// Four MX hosts, each waiting [`BANNER_DELAY`] before its banner (the lab's
/// `delayed-banner`). Probed one after another the check takes at least 4 × D (8 × D with the
/// legacy-TLS probe's second connection); probed concurrently about D (2 × D with it). The
/// bound of 3 × D tells the two apart with a margin for a loaded machine.
const FOUR_SLOW_MX: &str = r#"
[[domain]]
name = "four-slow-mx.test"
mx = [
  { host = "mx1.four-slow-mx.test", preference = 10 },
  { host = "mx2.four-slow-mx.test", preference = 20 },
  { host = "mx3.four-slow-mx.test", preference = 30 },
  { host = "mx4.four-slow-mx.test", preference = 40 },
]
sts_txt = "good"
tlsrpt_txt = "good"
policy = { behaviour = "good" }
[[mx_host]]
name = "mx1.four-slow-mx.test"
behaviour = "delayed-banner"
banner_delay_ms = 2000
[[mx_host]]
name = "mx2.four-slow-mx.test"
behaviour = "delayed-banner"
banner_delay_ms = 2000
[[mx_host]]
name = "mx3.four-slow-mx.test"
behaviour = "delayed-banner"
banner_delay_ms = 2000
[[mx_host]]
name = "mx4.four-slow-mx.test"
behaviour = "delayed-banner"
banner_delay_ms = 2000
"#;

/// The banner delay of [`FOUR_SLOW_MX`].
const BANNER_DELAY: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_mx_hosts_are_probed_concurrently() {
    let w = world_from(FOUR_SLOW_MX, false).await;
    let started = Instant::now();
    let r = w
        .checker
        .check_domain("four-slow-mx.test", OffsetDateTime::now_utc())
        .await
        .unwrap();
    let took = started.elapsed();
    eprintln!("four-slow-mx.test checked in {took:?}");
    let hosts: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.code == Code::MxCertOk)
        .map(|f| f.subject.as_str())
        .collect();
    assert_eq!(
        hosts,
        [
            "mx1.four-slow-mx.test",
            "mx2.four-slow-mx.test",
            "mx3.four-slow-mx.test",
            "mx4.four-slow-mx.test"
        ],
        "every host answered despite its delay:\n{}",
        dump(&r)
    );
    assert!(
        took >= BANNER_DELAY,
        "the injected delay was waited for: {took:?}"
    );
    assert!(
        took < 3 * BANNER_DELAY,
        "four hosts delaying their banner by {BANNER_DELAY:?} each took {took:?}: not probed \
         concurrently (sequential probing takes at least {:?})",
        4 * BANNER_DELAY
    );
}

/// Codes the findings scenario cannot provoke, each with the reason.
#[rustfmt::skip]
const NOT_PROVOKED: &[(Code, &str)] = &[
    (Code::StsIdNotRotated, "needs policy history (the previous policy and id), which only hosted domains have; a one-shot check sees one policy"),
    (Code::MxPort25Blocked, "needs every SMTP connection of a check to time out at connect; tests/deadline.rs provokes it with the lab's stall-connect host, which findings.toml cannot hold without blaming every domain"),
    (Code::MxIpv6Unreachable, "the lab has IPv4 loopback addresses only; judged by the table test in judge/reachability.rs"),
    (Code::NetAddressRefused, "only a tenant's check filters addresses, and these runs are the operator's; crates/stsward-server/tests/api_checks.rs provokes it over the API"),
];

/// The lab's coverage: every code in `Code::ALL` is actually produced by checking the
/// findings scenario (the validating pass, and the non-validating pass for the codes that
/// only appear without DNSSEC), except those listed in [`NOT_PROVOKED`], which must indeed
/// not be produced (so the list cannot go stale).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_code_is_provoked_by_a_findings_scenario_run() {
    let mut produced = std::collections::BTreeSet::new();
    for validate in [true, false] {
        let w = world_with(validate, false).await;
        let all = check_all(&w, w.lab.domains().to_vec()).await;
        produced.extend(all.values().flat_map(|r| r.findings.iter().map(|f| f.code)));
    }
    let mut missing = Vec::new();
    for code in Code::ALL {
        let excused = NOT_PROVOKED.iter().find(|(c, _)| c == code);
        match (produced.contains(code), excused) {
            (true, None) | (false, Some(_)) => {}
            (false, None) => missing.push(format!("{code}: no lab domain provokes it")),
            (true, Some((_, why))) => missing.push(format!(
                "{code}: listed as not provokable ({why}) but the lab produced it; drop it from NOT_PROVOKED"
            )),
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
