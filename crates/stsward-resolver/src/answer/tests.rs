use stsward_proto::mta_sts::Policy;

use super::*;
use crate::dane::DaneLevel;

const RFC_EXAMPLE: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";

fn active(text: &str) -> ActivePolicy {
    let p: Policy = text.parse().expect("policy parses");
    ActivePolicy::new(&p, "20160831085700Z", 0)
}

fn testing() -> ActivePolicy {
    active(&RFC_EXAMPLE.replace("enforce", "testing"))
}

const OFF: AnswerConfig = AnswerConfig {
    tlsrpt_attributes: false,
    on_failure: FailureAnswer::NotFound,
};
const ON: AnswerConfig = AnswerConfig {
    tlsrpt_attributes: true,
    on_failure: FailureAnswer::NotFound,
};

fn ok(s: &str) -> AnswerKind {
    AnswerKind::Ok(s.to_owned())
}

const TLSRPT_EXAMPLE: &str = " policy_type=sts policy_domain=example.com mx_host_pattern=mail.example.com mx_host_pattern=*.example.net mx_host_pattern=backupmx.example.com { policy_string = version: STSv1 } { policy_string = mode: enforce } { policy_string = mx: mail.example.com } { policy_string = mx: *.example.net } { policy_string = mx: backupmx.example.com } { policy_string = max_age: 604800 }";

fn policy(p: &ActivePolicy, dane: DaneVerdict, failure: Option<&Failure>) -> Situation<'static> {
    // The tests keep `p` alive for the duration of the call; leak a copy for 'static.
    let p: &'static ActivePolicy = Box::leak(Box::new(p.clone()));
    let failure: Option<&'static Failure> = failure.map(|f| &*Box::leak(Box::new(f.clone())));
    Situation::Policy {
        domain: "example.com",
        policy: p,
        dane,
        refresh_failure: failure,
    }
}

#[test]
fn postfix_tls_policy_secure_match_and_rfc8461_5_answers() {
    let enforce = active(RFC_EXAMPLE);
    let none = active("version: STSv1\nmode: none\nmax_age: 86400\n");
    let na = DaneVerdict::NotApplicable;
    let fetch = Failure::StsPolicyUnreachable;
    let rejection = KeyRejection::AddressLiteral("192.0.2.1".into());
    let secure =
        "secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname";
    let testing = testing();
    let testing_tlsrpt = format!(
        "may{}",
        TLSRPT_EXAMPLE.replace("mode: enforce", "mode: testing")
    );
    // (situation, config, expected wire kind, why)
    let table: Vec<(Situation<'_>, AnswerConfig, AnswerKind, &str)> = vec![
        (
            policy(&enforce, na, None),
            OFF,
            ok(secure),
            "RFC 8461 §5 enforce; `*.` becomes `.` (TLS_README example)",
        ),
        (
            policy(&enforce, na, None),
            ON,
            ok(&format!("{secure}{TLSRPT_EXAMPLE}")),
            "postfix-tlsrpt.txt attributes, no policy_ttl",
        ),
        (
            policy(&enforce, na, Some(&fetch)),
            ON,
            ok(&format!("{secure}{TLSRPT_EXAMPLE}")),
            "RFC 8461 §3.3: a cached enforce policy applies; no policy_failure",
        ),
        (
            policy(&testing, na, None),
            OFF,
            AnswerKind::NotFound,
            "testing without TLSRPT: Postfix's own default",
        ),
        (
            policy(&testing, na, None),
            ON,
            ok(&testing_tlsrpt),
            "testing: may + sts attributes, reported as sts",
        ),
        (
            policy(&testing, na, Some(&fetch)),
            ON,
            ok(&format!(
                "{testing_tlsrpt} policy_failure=sts-policy-fetch-error"
            )),
            "RFC 8461 §6: refresh failure of a cached testing policy is reported",
        ),
        (
            policy(&testing, na, Some(&Failure::StsWebpkiInvalid)),
            ON,
            ok(&format!(
                "{testing_tlsrpt} policy_failure=sts-webpki-invalid"
            )),
            "RFC 8460 §4.3.2.2 sts-webpki-invalid",
        ),
        (
            policy(&testing, na, Some(&Failure::StsPolicyInvalid)),
            ON,
            ok(&format!(
                "{testing_tlsrpt} policy_failure=sts-policy-invalid"
            )),
            "RFC 8460 §4.3.2.2 sts-policy-invalid",
        ),
        (
            policy(&none, na, None),
            ON,
            AnswerKind::NotFound,
            "RFC 8461 §5 mode none",
        ),
        (
            policy(&enforce, DaneVerdict::Use(DaneLevel::DaneOnly), None),
            ON,
            ok("dane-only"),
            "RFC 8461 §2 DANE first, no STS attributes on a non-STS policy",
        ),
        (
            policy(&enforce, DaneVerdict::Use(DaneLevel::Dane), Some(&fetch)),
            OFF,
            ok("dane"),
            "DANE wins over a cached policy too",
        ),
        (
            policy(&testing, DaneVerdict::Use(DaneLevel::Dane), None),
            ON,
            ok("dane"),
            "testing with DANE",
        ),
        (
            policy(&none, DaneVerdict::Use(DaneLevel::Dane), None),
            ON,
            AnswerKind::NotFound,
            "mode none: no policy, DANE left to Postfix's default",
        ),
        (
            Situation::NoPolicy {
                why: "no _mta-sts record",
            },
            ON,
            AnswerKind::NotFound,
            "no policy",
        ),
        (
            Situation::Failed {
                why: "fetch failed",
            },
            ON,
            AnswerKind::NotFound,
            "RFC 8461 §3.3 failure without cache: as though no MTA-STS",
        ),
        (
            Situation::Failed {
                why: "fetch failed",
            },
            AnswerConfig {
                on_failure: FailureAnswer::Temp,
                ..ON
            },
            AnswerKind::Temp("MTA-STS policy discovery failed".into()),
            "on_failure = temp",
        ),
        (
            Situation::Pending,
            ON,
            AnswerKind::Temp("MTA-STS policy lookup in progress".into()),
            "deadline passed",
        ),
        (
            Situation::Rejected(&rejection),
            ON,
            AnswerKind::NotFound,
            "RFC 8461 §3.4 address literal",
        ),
    ];
    for (s, cfg, want, why) in table {
        let got = render(s, &cfg);
        assert_eq!(got.kind, want, "{why}");
        assert!(!got.why.is_empty(), "{why}: a reason is given");
        assert!(
            !got.wire().contains("policy_ttl"),
            "{why}: policy_ttl is deprecated"
        );
    }
}

#[test]
fn postfix_tlsrpt_brace_breaking_lines_are_left_out() {
    let p = active("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 86400\nnote: a } b\n");
    let got = render(policy(&p, DaneVerdict::NotApplicable, None), &ON);
    let AnswerKind::Ok(data) = got.kind else {
        panic!("OK expected");
    };
    assert!(!data.contains("note"), "{data}");
    assert_eq!(data.matches('{').count(), data.matches('}').count());
    assert!(data.contains("{ policy_string = max_age: 86400 }"));
}

#[test]
fn socketmap_reply_format() {
    let a = Answer::new(AnswerKind::NotFound, "x");
    assert_eq!(a.wire(), "NOTFOUND ");
    assert_eq!(a.label(), "notfound");
    let a = Answer::new(ok("secure match=a"), "x");
    assert_eq!(a.wire(), "OK secure match=a");
    assert_eq!(a.label(), "secure");
    assert_eq!(
        Answer::new(AnswerKind::Temp("t".into()), "x").wire(),
        "TEMP t"
    );
    assert_eq!(
        Answer::new(AnswerKind::Perm("p".into()), "x").wire(),
        "PERM p"
    );
}

#[test]
fn rfc8460_4_3_policy_failure_values_postfix_accepts() {
    let table = [
        (Failure::StsPolicyTimeout, "sts-policy-fetch-error"),
        (Failure::StsPolicyHostNoAddress, "sts-policy-fetch-error"),
        (Failure::StsPolicyRedirect, "sts-policy-fetch-error"),
        (Failure::StsWebpkiInvalid, "sts-webpki-invalid"),
        (Failure::StsPolicyInvalid, "sts-policy-invalid"),
        (Failure::TlsHandshake, "validation-failure"),
        (Failure::MxUnreachable, "validation-failure"),
    ];
    for (f, want) in table {
        assert_eq!(policy_failure_value(&f), want, "{f:?}");
    }
}

#[test]
fn postfix_socketmap_reply_limit_drops_tlsrpt_attributes_not_enforcement() {
    let mut text = String::from("version: STSv1\nmode: enforce\n");
    for i in 0..1300 {
        text.push_str(&format!("mx: mx{i}.a-rather-long-provider-name.example\n"));
    }
    text.push_str("max_age: 86400\n");
    let p = active(&text);
    let got = render(policy(&p, DaneVerdict::NotApplicable, None), &ON);
    let AnswerKind::Ok(data) = got.kind else {
        panic!("OK expected");
    };
    assert!(data.len() <= MAX_REPLY_DATA, "{}", data.len());
    assert!(data.starts_with("secure match=mx0."));
    assert!(!data.contains("policy_type"));
}
