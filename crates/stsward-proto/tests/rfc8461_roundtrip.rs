//! RFC 8461 §3.1, §3.2, §4.1: `x.to_string().parse() == Ok(x)` for every MTA-STS type, and
//! no parser panics or drifts on arbitrary input.

use proptest::prelude::*;
use stsward_proto::mta_sts::{
    MAX_AGE_LIMIT, MaxAge, Mode, MxPattern, Policy, PolicyExtension, PolicyId, RecordExtension,
    StsRecord, evaluate, lint,
};

fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,10}[a-zA-Z0-9_])?"
        .prop_filter("xn-- labels must be valid punycode", |l| {
            l.get(2..4).is_none_or(|s| s != "--")
        })
}

fn mx_pattern() -> impl Strategy<Value = MxPattern> {
    (
        any::<bool>(),
        // A name whose last label is all digits ("0.3.2.1") reads as an IP address, which
        // the linter rightly refuses as an MX pattern: not a host name to generate here.
        prop::collection::vec(label(), 1..5).prop_filter(
            "the last label is not all digits",
            |labels| {
                !labels
                    .last()
                    .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
            },
        ),
        any::<bool>(),
    )
        .prop_map(|(wildcard, labels, dot)| {
            let text = format!(
                "{}{}{}",
                if wildcard { "*." } else { "" },
                labels.join("."),
                if dot { "." } else { "" }
            );
            text.parse::<MxPattern>()
                .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        })
}

fn record_extension() -> impl Strategy<Value = RecordExtension> {
    ("[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", "[!-:<>-~]{1,20}")
        .prop_filter("v and id are not extensions", |(n, _)| {
            n != "v" && n != "id"
        })
        .prop_map(|(n, v)| RecordExtension::new(&n, &v).unwrap())
}

fn sts_record() -> impl Strategy<Value = StsRecord> {
    (
        "[A-Za-z0-9]{1,32}",
        // Field names are unique: of a duplicated field RFC 8461 §3.2 keeps only the first,
        // so a record with two `8=` fields does not evaluate to itself (by design).
        prop::collection::vec(record_extension(), 0..4).prop_filter(
            "extension names are unique",
            |exts| {
                let mut names: Vec<String> =
                    exts.iter().map(|e| e.name().to_ascii_lowercase()).collect();
                names.sort();
                names.windows(2).all(|w| w[0] != w[1])
            },
        ),
    )
        .prop_map(|(id, extensions)| StsRecord {
            id: id.parse::<PolicyId>().unwrap(),
            extensions,
        })
}

fn policy() -> impl Strategy<Value = Policy> {
    let mode = prop_oneof![Just(Mode::Enforce), Just(Mode::Testing), Just(Mode::None)];
    let ext_value = "[!-~é]([ !-~ü]{0,20}[!-~ß])?";
    (
        mode,
        0..=MAX_AGE_LIMIT,
        prop::collection::vec(mx_pattern(), 0..5),
        prop::collection::vec(("[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", ext_value), 0..4),
    )
        .prop_filter_map("enforce/testing need an mx", |(mode, age, mx, exts)| {
            let mut p = Policy::new(mode, MaxAge::new(u64::from(age)).ok()?, mx).ok()?;
            for (name, value) in exts {
                if let Ok(ext) = PolicyExtension::new(&name, &value) {
                    p = p.clone().with_extension(ext).unwrap_or(p);
                }
            }
            Some(p)
        })
}

/// Lines built from the pieces a policy is made of, so that random input reaches deep states.
fn policy_like_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("version: STSv1".to_owned()),
        Just("mode: enforce".to_owned()),
        Just("mode: none".to_owned()),
        Just("mode: testing".to_owned()),
        Just("max_age: 86400".to_owned()),
        Just("max_age: 31557601".to_owned()),
        Just("mx: *.example.com".to_owned()),
        Just("mx: mx.example.com".to_owned()),
        Just("  mx: x".to_owned()),
        Just("# c".to_owned()),
        Just("".to_owned()),
        Just("---".to_owned()),
        "[a-z_]{1,8}[:=][ \t]{0,2}[ -~]{0,12}",
        "[\\PC]{0,10}",
    ];
    let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("\r"), Just("")];
    prop::collection::vec((piece, ending), 0..10).prop_map(|v| {
        v.into_iter()
            .map(|(p, e)| format!("{p}{e}"))
            .collect::<String>()
    })
}

proptest! {
    #[test]
    fn rfc8461_4_1_mx_pattern_round_trips(p in mx_pattern()) {
        prop_assert_eq!(p.to_string().parse::<MxPattern>(), Ok(p.clone()));
        // A pattern matches the host it names (or, for a wildcard, one label under it).
        let host = if p.is_wildcard() { format!("mx1.{}", p.domain()) } else { p.domain().to_owned() };
        prop_assert!(p.matches(&host));
        let shouted = format!("{}.", host.to_uppercase());
        prop_assert!(p.matches(&shouted));
    }

    #[test]
    fn rfc8461_3_1_sts_record_round_trips(r in sts_record()) {
        prop_assert_eq!(r.to_string().parse::<StsRecord>(), Ok(r.clone()));
        let out = evaluate(&[r.to_string()], "_mta-sts.example");
        prop_assert_eq!(out.record, Some(r));
    }

    #[test]
    fn rfc8461_3_2_policy_round_trips(p in policy()) {
        let text = p.to_string();
        prop_assert_eq!(text.parse::<Policy>(), Ok(p.clone()));
        let l = lint(text.as_bytes());
        prop_assert_eq!(l.policy, Some(p));
        // The canonical form draws no error or warning (mode none and short max_age aside).
        for f in &l.findings {
            prop_assert!(
                f.severity <= stsward_proto::Severity::Info
                    || matches!(f.code.as_str(), "sts.policy.mode-none" | "sts.policy.max-age-short"),
                "{:?}", f
            );
        }
        let lf = text.replace("\r\n", "\n");
        prop_assert_eq!(lf.parse::<Policy>().ok(), lint(text.as_bytes()).policy);
    }

    #[test]
    fn parsers_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let l = lint(&bytes);
        for f in &l.findings {
            prop_assert!(f.subject == "policy" || f.subject.starts_with("line "));
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = text.parse::<MxPattern>();
        let _ = text.parse::<StsRecord>();
        let _ = evaluate(&[text.as_ref()], "_mta-sts.example");
    }

    #[test]
    fn policy_parse_is_stable(text in policy_like_text()) {
        let l = lint(text.as_bytes());
        prop_assert_eq!(text.parse::<Policy>().ok(), l.policy.clone());
        if let Some(p) = l.policy {
            // Whatever a sender accepted re-serialises to the same policy.
            prop_assert_eq!(p.to_string().parse::<Policy>(), Ok(p));
        }
    }

    #[test]
    fn record_parse_is_stable(text in "v=STSv1[ ;]{0,3}(id=[A-Za-z0-9]{0,3}|[a-z]{1,3}=[!-~]{0,4}|;| )*") {
        if let Ok(r) = text.parse::<StsRecord>() {
            prop_assert_eq!(r.to_string().parse::<StsRecord>(), Ok(r));
        }
    }
}
