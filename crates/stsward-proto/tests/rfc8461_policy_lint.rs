//! RFC 8461 §3.2 (and the §3.3 size limit): the policy linter, one case per finding code.
//!
//! Several bad cases take their idea from the policies served by the test suite of
//! postfix-mta-sts-resolver (garbage, `max_age: xxx`, `31557601`, `mode: doubt`, `none`
//! without mx, `max_age: 1`); the fixtures here are written afresh.

use stsward_proto::Severity::{self, Error, Info, Ok as Pass, Warning};
use stsward_proto::mta_sts::{Lint, MAX_POLICY_BYTES, Mode, Policy, lint};

type Expected<'a> = &'a [(&'a str, &'a str, Severity)];

fn summary(l: &Lint) -> Vec<(String, &'static str, Severity)> {
    l.findings
        .iter()
        .map(|f| (f.subject.clone(), f.code.as_str(), f.severity))
        .collect()
}

fn check(name: &str, input: &[u8], accepted: bool, want: Expected<'_>) -> Lint {
    let l = lint(input);
    let got = summary(&l);
    let want: Vec<(String, &str, Severity)> = want
        .iter()
        .map(|(s, c, v)| ((*s).to_owned(), *c, *v))
        .collect();
    assert_eq!(got, want, "{name}: findings\n{:#?}", l.findings);
    assert_eq!(l.policy.is_some(), accepted, "{name}: accepted");
    let errors = l.findings.iter().any(|f| f.severity == Error);
    let valid = l
        .findings
        .iter()
        .any(|f| f.code.as_str() == "sts.policy.valid");
    assert_eq!(valid, !errors, "{name}: sts.policy.valid iff no error");
    l
}

const LE: (&str, &str, Severity) = ("policy", "sts.policy.line-endings", Info);
const VALID: (&str, &str, Severity) = ("policy", "sts.policy.valid", Pass);

#[test]
fn rfc8461_3_2_example_policy_is_valid() {
    // RFC 8461 §3.2, exactly as printed (LF).
    let rfc = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";
    let l = check("rfc example", rfc.as_bytes(), true, &[LE, VALID]);
    let canonical = l.policy.unwrap().to_string();
    check("canonical", canonical.as_bytes(), true, &[VALID]);
}

#[test]
fn rfc8461_3_2_accepted_variations_of_whitespace() {
    // (name, input): all accepted, none reported beyond the LF note.
    let table: &[(&str, &str)] = &[
        (
            "no space after colon",
            "version:STSv1\nmode:enforce\nmx:mx.example\nmax_age:86400\n",
        ),
        (
            "tab after colon",
            "version: STSv1\nmode:\tenforce\nmx:\t\tmx.example\nmax_age: 86400\n",
        ),
        (
            "many spaces after colon",
            "version: STSv1\nmode:     enforce\nmx:      mx.example\nmax_age: 86400",
        ),
        (
            "trailing whitespace (sts-policy-field *WSP)",
            "version: STSv1 \nmode: enforce\t\nmx: mx.example  \nmax_age: 86400 \n",
        ),
        (
            "fields in another order",
            "mx: mx.example\nmax_age: 86400\nmode: enforce\nversion: STSv1\n",
        ),
        (
            "no final line end",
            "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 86400",
        ),
        (
            "uppercase mx host",
            "version: STSv1\nmode: enforce\nmx: MX.EXAMPLE.COM\nmax_age: 31557600\n",
        ),
    ];
    for (name, input) in table {
        let want: &[_] = if name.starts_with("fields in") {
            &[("line 4", "sts.policy.version", Info), LE, VALID]
        } else {
            &[LE, VALID]
        };
        check(name, input.as_bytes(), true, want);
    }
}

#[test]
fn rfc8461_3_2_every_content_code() {
    // (name, input, accepted, expected findings); each bad case names its reason.
    let table: &[(&str, &str, bool, Expected<'_>)] = &[
        (
            "garbage: not key: value at all",
            "garbage",
            false,
            &[
                ("line 1", "sts.policy.syntax", Error),
                ("policy", "sts.policy.version", Error),
                ("policy", "sts.policy.mode", Error),
                ("policy", "sts.policy.max-age", Error),
                ("policy", "sts.policy.mx-missing", Error),
            ],
        ),
        (
            "max_age xxx: not a number",
            "version: STSv1\r\nmode: enforce\r\nmx: mail.loc\r\nmax_age: xxx",
            false,
            &[("line 4", "sts.policy.max-age", Error)],
        ),
        (
            "max_age 31557601: one above the limit",
            "version: STSv1\r\nmode: enforce\r\nmx: mail.loc\r\nmax_age: 31557601",
            false,
            &[("line 4", "sts.policy.max-age", Error)],
        ),
        (
            "max_age 31557600: the limit itself is fine",
            "version: STSv1\r\nmode: enforce\r\nmx: mail.loc\r\nmax_age: 31557600",
            true,
            &[VALID],
        ),
        (
            "max_age 1: accepted but short",
            "version: STSv1\r\nmode: enforce\r\nmax_age: 1\r\nmx: mail.loc\r\n",
            true,
            &[("line 3", "sts.policy.max-age-short", Warning), VALID],
        ),
        (
            "max_age missing",
            "version: STSv1\r\nmode: enforce\r\nmx: mail.loc\r\n",
            false,
            &[("policy", "sts.policy.max-age", Error)],
        ),
        (
            "max_age twice: the first counts",
            "version: STSv1\r\nmode: enforce\r\nmx: mail.loc\r\nmax_age: 86400\r\nmax_age: 5\r\n",
            true,
            &[("line 5", "sts.policy.duplicate", Warning), VALID],
        ),
        (
            "mode doubt: not a mode",
            "version: STSv1\r\nmode: doubt\r\nmx: mail.loc\r\nmax_age: 86400\r\n",
            false,
            &[("line 2", "sts.policy.mode", Error)],
        ),
        (
            "mode Enforce: values are case-sensitive",
            "version: STSv1\r\nmode: Enforce\r\nmx: mail.loc\r\nmax_age: 86400\r\n",
            false,
            &[("line 2", "sts.policy.mode", Error)],
        ),
        (
            "mode missing",
            "version: STSv1\r\nmx: mail.loc\r\nmax_age: 86400\r\n",
            false,
            &[("policy", "sts.policy.mode", Error)],
        ),
        (
            "Mode: a key in the wrong case is an extension, and mode is missing",
            "version: STSv1\r\nMode: enforce\r\nmx: mail.loc\r\nmax_age: 86400\r\n",
            false,
            &[
                ("line 2", "sts.policy.unknown-key", Info),
                ("policy", "sts.policy.mode", Error),
            ],
        ),
        (
            "mode testing",
            "version: STSv1\r\nmode: testing\r\nmx: mail.loc\r\nmax_age: 86400\r\n",
            true,
            &[("line 2", "sts.policy.mode-testing", Info), VALID],
        ),
        (
            "mode none without mx is fine",
            "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n",
            true,
            &[("line 2", "sts.policy.mode-none", Warning), VALID],
        ),
        (
            "mode twice",
            "version: STSv1\r\nmode: testing\r\nmode: enforce\r\nmx: mail.loc\r\nmax_age: 86400\r\n",
            true,
            &[
                ("line 2", "sts.policy.mode-testing", Info),
                ("line 3", "sts.policy.duplicate", Warning),
                VALID,
            ],
        ),
        (
            "enforce without mx",
            "version: STSv1\r\nmode: enforce\r\nmax_age: 86400\r\n",
            false,
            &[("policy", "sts.policy.mx-missing", Error)],
        ),
        (
            "version STLS1",
            "version: STLS1\r\nmode: enforce\r\nmx: mail.loc\r\nmax_age: 86400\r\n",
            false,
            &[("line 1", "sts.policy.version", Error)],
        ),
        (
            "version stsv1: case-sensitive",
            "version: stsv1\r\nmode: enforce\r\nmx: mail.loc\r\nmax_age: 86400\r\n",
            false,
            &[("line 1", "sts.policy.version", Error)],
        ),
        (
            "version missing",
            "mode: enforce\r\nmx: mail.loc\r\nmax_age: 86400\r\n",
            false,
            &[("policy", "sts.policy.version", Error)],
        ),
        (
            "version twice",
            "version: STSv1\r\nversion: STSv1\r\nmode: enforce\r\nmx: mail.loc\r\nmax_age: 86400\r\n",
            true,
            &[("line 2", "sts.policy.duplicate", Warning), VALID],
        ),
        (
            "mx IP literal, mx with port, and one good mx",
            "version: STSv1\r\nmode: enforce\r\nmx: 192.0.2.1\r\nmx: mx.example:25\r\nmx: mx.example\r\nmax_age: 86400\r\n",
            true,
            &[
                ("line 3", "sts.policy.mx-invalid", Error),
                ("line 4", "sts.policy.mx-invalid", Error),
            ],
        ),
        (
            "mx placeholder with spaces, nothing usable",
            "version: STSv1\r\nmode: enforce\r\nmx: your mail server\r\nmax_age: 86400\r\n",
            false,
            &[
                ("line 3", "sts.policy.mx-invalid", Error),
                ("policy", "sts.policy.mx-missing", Error),
            ],
        ),
        (
            "mx duplicate, case-insensitively",
            "version: STSv1\r\nmode: enforce\r\nmx: mx.example\r\nmx: MX.example.\r\nmax_age: 86400\r\n",
            true,
            &[("line 4", "sts.policy.mx-duplicate", Info), VALID],
        ),
        (
            "mx written with U-labels: an error, and then no usable mx is left",
            "version: STSv1\r\nmode: enforce\r\nmx: *.bücher.example\r\nmax_age: 86400\r\n",
            false,
            &[
                ("line 3", "sts.policy.mx-invalid", Error),
                ("policy", "sts.policy.mx-missing", Error),
            ],
        ),
        (
            "mx written with U-labels beside an A-label line: only the A-label line counts",
            "version: STSv1\r\nmode: enforce\r\nmx: *.bücher.example\r\nmx: *.xn--bcher-kva.example\r\nmax_age: 86400\r\n",
            true,
            &[("line 3", "sts.policy.mx-invalid", Error)],
        ),
        (
            "unknown key",
            "version: STSv1\r\nmode: enforce\r\nmx: mx.example\r\nmax_age: 86400\r\nfoo: bar\r\n",
            true,
            &[("line 5", "sts.policy.unknown-key", Info), VALID],
        ),
        (
            "unknown key twice",
            "version: STSv1\r\nmode: enforce\r\nmx: mx.example\r\nmax_age: 86400\r\nfoo: a\r\nfoo: b\r\n",
            true,
            &[
                ("line 5", "sts.policy.unknown-key", Info),
                ("line 6", "sts.policy.duplicate", Warning),
                VALID,
            ],
        ),
        (
            "extension value with a control character",
            "version: STSv1\r\nmode: enforce\r\nmx: mx.example\r\nmax_age: 86400\r\nfoo: a\u{7}b\r\n",
            true,
            &[("line 5", "sts.policy.syntax", Error)],
        ),
        (
            "comment line",
            "# policy\r\nversion: STSv1\r\nmode: enforce\r\nmx: mx.example\r\nmax_age: 86400\r\n",
            true,
            &[
                ("line 1", "sts.policy.syntax", Error),
                ("line 2", "sts.policy.version", Info),
            ],
        ),
        (
            "max_age=604800 with an equals sign",
            "version: STSv1\r\nmode: enforce\r\nmx: mx.example\r\nmax_age=604800\r\n",
            false,
            &[
                ("line 4", "sts.policy.syntax", Error),
                ("policy", "sts.policy.max-age", Error),
            ],
        ),
        (
            "whitespace before the colon",
            "version: STSv1\r\nmode : enforce\r\nmx: mx.example\r\nmax_age: 86400\r\n",
            false,
            &[
                ("line 2", "sts.policy.syntax", Error),
                ("policy", "sts.policy.mode", Error),
            ],
        ),
        (
            "YAML front matter",
            "---\r\nlayout: none\r\n---\r\nversion: STSv1\r\nmode: enforce\r\nmx: mx.example\r\nmax_age: 86400\r\n",
            true,
            &[
                ("line 1", "sts.policy.syntax", Error),
                ("line 2", "sts.policy.unknown-key", Info),
                ("line 3", "sts.policy.syntax", Error),
                ("line 4", "sts.policy.version", Info),
            ],
        ),
        (
            "indented line is not read",
            "version: STSv1\r\n  mode: enforce\r\nmx: mx.example\r\nmax_age: 86400\r\n",
            false,
            &[
                ("line 2", "sts.policy.syntax", Error),
                ("policy", "sts.policy.mode", Error),
            ],
        ),
        (
            "inline comment after a value",
            "version: STSv1\r\nmode: enforce # for real\r\nmx: mx.example\r\nmax_age: 86400\r\n",
            false,
            &[("line 2", "sts.policy.mode", Error)],
        ),
        (
            "leading empty line",
            "\r\nversion: STSv1\r\nmode: enforce\r\nmx: mx.example\r\nmax_age: 86400\r\n",
            true,
            &[("line 1", "sts.policy.blank-line", Warning), VALID],
        ),
        (
            "empty line between fields",
            "version: STSv1\r\nmode: enforce\r\n\r\nmx: mx.example\r\nmax_age: 86400\r\n",
            true,
            &[("line 3", "sts.policy.blank-line", Warning), VALID],
        ),
        (
            "two trailing empty lines make one finding",
            "version: STSv1\r\nmode: enforce\r\nmx: mx.example\r\nmax_age: 86400\r\n\r\n \r\n",
            true,
            &[("line 5", "sts.policy.blank-line", Info), VALID],
        ),
        (
            "mixed line endings",
            "version: STSv1\r\nmode: enforce\nmx: mx.example\r\nmax_age: 86400\r\n",
            true,
            &[LE, VALID],
        ),
        (
            "bare CR inside a line",
            "version: STSv1\rmode: enforce\r\nmx: mx.example\r\nmax_age: 86400\r\n",
            false,
            &[
                ("line 1", "sts.policy.syntax", Error),
                ("policy", "sts.policy.version", Error),
                ("policy", "sts.policy.mode", Error),
            ],
        ),
        (
            "empty file",
            "",
            false,
            &[("policy", "sts.policy.syntax", Error)],
        ),
        (
            "whitespace-only file",
            "\n",
            false,
            &[("policy", "sts.policy.syntax", Error)],
        ),
    ];
    for (name, input, accepted, want) in table {
        check(name, input.as_bytes(), *accepted, want);
    }
}

#[test]
fn rfc8461_3_2_finding_messages_carry_the_values() {
    let l = lint(
        b"version: STLS1\nmode: enforced\nmx: alt*.google.com\nmx: a.example\nmax_age: 31557601\n",
    );
    let messages: Vec<&str> = l.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(messages[0].contains("\"STLS1\""), "{messages:?}");
    assert!(messages[1].contains("\"enforced\""), "{messages:?}");
    assert!(messages[2].contains("alt*.google.com"), "{messages:?}");
    assert!(messages[3].contains("31557601"), "{messages:?}");
    assert!(
        l.findings
            .iter()
            .all(|f| !f.remedy.is_empty() && f.reference.starts_with("RFC "))
    );
}

#[test]
fn rfc8461_3_2_byte_order_marks_and_encodings() {
    let body = "version: STSv1\r\nmode: enforce\r\nmx: mx.example\r\nmax_age: 86400\r\n";
    let utf8_bom = [b"\xEF\xBB\xBF".as_slice(), body.as_bytes()].concat();
    check(
        "UTF-8 BOM",
        &utf8_bom,
        false,
        &[("line 1", "sts.policy.bom", Error)],
    );
    let utf16le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(body.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    check(
        "UTF-16LE",
        &utf16le,
        false,
        &[("line 1", "sts.policy.bom", Error)],
    );
    let utf16be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(
            "version: STSv1\nmode: bad\n"
                .encode_utf16()
                .flat_map(u16::to_be_bytes),
        )
        .collect();
    // The decoded rest is still linted.
    check(
        "UTF-16BE with a bad mode",
        &utf16be,
        false,
        &[
            ("line 1", "sts.policy.bom", Error),
            ("line 2", "sts.policy.mode", Error),
            LE,
            ("policy", "sts.policy.max-age", Error),
            ("policy", "sts.policy.mx-missing", Error),
        ],
    );
    let latin1 = b"version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 86400\nnote: caf\xE9\n";
    let l = check(
        "non-UTF-8 byte",
        latin1,
        true,
        &[("line 5", "sts.policy.syntax", Error), LE],
    );
    assert!(l.findings[0].message.contains("0xE9"));
}

#[test]
fn rfc8461_3_3_policies_over_64_kib_are_refused() {
    let mut big = String::from("version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 86400\n");
    big.push_str(&"x: y\n".repeat(MAX_POLICY_BYTES / 5));
    assert!(big.len() > MAX_POLICY_BYTES);
    let l = lint(big.as_bytes());
    assert!(l.policy.is_none());
    assert_eq!(l.findings[0].code.as_str(), "sts.policy.size");
    assert!(l.findings[0].message.contains(&big.len().to_string()));
    let prefix = "version: STSv1\nmode: none\nmax_age: 86400\nx: ";
    let exactly = format!("{prefix}{}", "y".repeat(MAX_POLICY_BYTES - prefix.len()));
    assert_eq!(exactly.len(), MAX_POLICY_BYTES);
    assert!(lint(exactly.as_bytes()).policy.is_some());
}

#[test]
fn rfc8461_3_2_from_str_agrees_with_the_linter() {
    let good = "version: STSv1\nmode: testing\nmx: mx.example\nmax_age: 86400\n# note\n";
    let policy: Policy = good.parse().unwrap();
    assert_eq!(policy.mode(), Mode::Testing);
    assert_eq!(lint(good.as_bytes()).policy, Some(policy));
    let err = "version: STSv1\nmode: doubt\nmx: mx.example\nmax_age: 86400\n"
        .parse::<Policy>()
        .unwrap_err();
    assert!(err.to_string().contains("doubt"), "{err}");
}

/// RFC 8461 §3.2: "If any non-repeated field -- i.e., all fields excepting "mx" -- is
/// duplicated, all entries except for the first SHALL be ignored."
///
/// The policy is accepted with the first value of each repeated field, and every repeat is an
/// `sts.policy.duplicate` warning (`spec/findings.md`), never an error.
#[test]
fn rfc8461_3_2_duplicate_key_first_wins() {
    // (why, policy, expected mode, expected max_age, lines that repeat a key)
    type Case<'a> = (&'a str, &'a str, Mode, u32, &'a [&'a str]);
    let table: &[Case<'_>] = &[
        (
            "mode twice: the first (testing) counts, not the stricter second",
            "version: STSv1\nmode: testing\nmode: enforce\nmx: mx.example\nmax_age: 86400\n",
            Mode::Testing,
            86_400,
            &["line 3"],
        ),
        (
            "max_age twice: the first counts",
            "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 604800\nmax_age: 60\n",
            Mode::Enforce,
            604_800,
            &["line 5"],
        ),
        (
            "a repeat with an invalid value is ignored, not an error",
            "version: STSv1\nversion: STSv2\nmode: enforce\nmode: Enforce\nmx: mx.example\nmax_age: 86400\nmax_age: forever\n",
            Mode::Enforce,
            86_400,
            &["line 2", "line 4", "line 7"],
        ),
        (
            "an extension key twice: the first value is kept",
            "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 86400\nx: 1\nx: 2\n",
            Mode::Enforce,
            86_400,
            &["line 6"],
        ),
    ];
    for (why, text, mode, max_age, repeats) in table {
        let l = lint(text.as_bytes());
        let policy = l
            .policy
            .as_ref()
            .unwrap_or_else(|| panic!("{why}: refused {:#?}", l.findings));
        assert_eq!(policy.mode(), *mode, "{why}");
        assert_eq!(policy.max_age().as_secs(), *max_age, "{why}");
        let dups: Vec<(&str, Severity)> = l
            .findings
            .iter()
            .filter(|f| f.code.as_str() == "sts.policy.duplicate")
            .map(|f| (f.subject.as_str(), f.severity))
            .collect();
        let want: Vec<(&str, Severity)> = repeats.iter().map(|r| (*r, Warning)).collect();
        assert_eq!(dups, want, "{why}");
        assert!(
            l.findings.iter().all(|f| f.severity < Error),
            "{why}: {:#?}",
            l.findings
        );
        assert_eq!(text.parse::<Policy>().as_ref(), Ok(policy), "{why}");
    }
    let ext = lint(table[3].1.as_bytes()).policy.expect("accepted");
    assert_eq!(ext.extensions()[0].value(), "1");
}
