//! RFC 8461 §3.2: the linter over every real-world policy in the corpus
//! (`mta-sts/policies/`, read in place; see the corpus README's quirk index).

use std::path::PathBuf;

use stsward_proto::Severity::{self, Error, Info, Ok as Pass, Warning};
use stsward_proto::mta_sts::{Lint, Mode, Policy, lint};

fn policies_dir() -> Option<PathBuf> {
    stsward_testkit::corpus("stsward-proto/corpus_policies")
        .map(|root| root.join("mta-sts/policies"))
}

fn lint_file(dir: &std::path::Path, name: &str) -> Lint {
    let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    lint(&bytes)
}

fn summary(l: &Lint) -> Vec<(String, &'static str, Severity)> {
    l.findings
        .iter()
        .map(|f| (f.subject.clone(), f.code.as_str(), f.severity))
        .collect()
}

/// 218 files in the corpus; 200 of them are policies a conforming sender uses. The other 18:
/// - invalid mode (5): `Securenetology__mta-sts.txt` (`enforced`), `…@7d1ca4257a` (`test`),
///   `cyberfear-com__frontEnd.txt` (`live`), `Argia-Github…@0be1dfaba5` (`[testing]`),
///   `co-cddo__mta-sts-template@ed625252b2` (bracketed placeholders);
/// - template placeholders and inline comments (2): `jpawlowski__mta-sts.template*.txt`;
/// - invalid version (1): `willjasen__brandonb.tech-website.txt` (`STLS1`);
/// - `max_age=604800` (1): `rajayoga8__mta-sts-rajayoga8@0ed1fe06bb.txt`;
/// - every line indented (3): `4D5YqUngUAma35o`, `duboischemicals`, `AlertasTI@e9ced76f0c`;
/// - no usable mx (2): `co-cddo__mta-sts-template.txt` (`mx: .`), `jpmahinay__tools.txt`
///   (a YAML list under an empty `mx:`);
/// - byte-order mark / UTF-16 (2): `apothiq__MTA@4eb5a36cb1`, `apothiq__MTA@850d6834e5`;
/// - empty (2): `AlertasTI__mta-sts@0bda50ed04`, `HBland-Web-Design…@c83fd86eb6`.
const CORPUS_FILES: usize = 218;
const ACCEPTED_BY_SENDERS: usize = 200;

#[test]
fn rfc8461_3_2_every_corpus_policy_lints_without_panic() {
    let Some(dir) = policies_dir() else { return };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("policies directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txt"))
        .collect();
    names.sort();
    assert_eq!(names.len(), CORPUS_FILES);
    let mut accepted = Vec::new();
    for name in &names {
        let l = lint_file(&dir, name);
        let has_error = l.findings.iter().any(|f| f.severity == Error);
        let has_valid = l
            .findings
            .iter()
            .any(|f| f.code.as_str() == "sts.policy.valid");
        assert_eq!(has_valid, !has_error, "{name}: valid iff no error");
        for f in &l.findings {
            assert!(
                f.subject == "policy" || f.subject.starts_with("line "),
                "{name}: subject {:?}",
                f.subject
            );
            assert!(
                f.code.as_str().starts_with("sts.policy."),
                "{name}: {}",
                f.code
            );
        }
        if let Some(policy) = &l.policy {
            accepted.push(name.as_str());
            // What we would serve instead is accepted as the same policy, with no complaint.
            let canonical = policy.to_string();
            assert_eq!(canonical.parse::<Policy>().as_ref(), Ok(policy), "{name}");
            let again = lint(canonical.as_bytes());
            assert!(
                again.findings.iter().all(|f| f.severity < Error),
                "{name}: canonical form draws an error: {:?}",
                again.findings
            );
        }
    }
    assert_eq!(
        accepted.len(),
        ACCEPTED_BY_SENDERS,
        "accepted: {accepted:?}"
    );
}

type Expected = &'static [(&'static str, &'static str, Severity)];

const LE: (&str, &str, Severity) = ("policy", "sts.policy.line-endings", Info);
const VALID: (&str, &str, Severity) = ("policy", "sts.policy.valid", Pass);
const TESTING: (&str, &str, Severity) = ("line 2", "sts.policy.mode-testing", Info);

/// (file, accepted by senders, exact findings, why)
const NOTABLE: &[(&str, bool, Expected, &str)] = &[
    (
        "Securenetology__mta-sts.txt",
        false,
        &[("line 2", "sts.policy.mode", Error), LE],
        "mode `enforced` is not a mode",
    ),
    (
        "rajayoga8__mta-sts-rajayoga8@0ed1fe06bb.txt",
        false,
        &[
            ("line 4", "sts.policy.syntax", Error),
            LE,
            ("policy", "sts.policy.max-age", Error),
        ],
        "`max_age=604800` is not read, so max_age is missing",
    ),
    (
        "matthewaynelson__mta-sts-policy.txt",
        true,
        &[
            ("line 5", "sts.policy.mx-invalid", Error),
            ("line 7", "sts.policy.syntax", Error),
        ],
        "alt*.google.com never matches; the comment line is skipped; CRLF so no LF note",
    ),
    (
        "apothiq__MTA@850d6834e5.txt",
        false,
        &[("line 1", "sts.policy.bom", Error)],
        "UTF-16LE with BOM: senders see NUL bytes; the decoded rest is clean CRLF",
    ),
    (
        "apothiq__MTA@4eb5a36cb1.txt",
        false,
        &[("line 1", "sts.policy.bom", Error)],
        "UTF-8 BOM glued to the first key",
    ),
    (
        "co-cddo__mta-sts-template.txt",
        false,
        &[
            TESTING,
            ("line 4", "sts.policy.mx-invalid", Error),
            ("policy", "sts.policy.mx-missing", Error),
        ],
        "`mx: .` is the root, no host; testing mode needs an mx",
    ),
    (
        "co-cddo__mta-sts-template@ed625252b2.txt",
        false,
        &[
            ("line 2", "sts.policy.mode", Error),
            ("line 3", "sts.policy.mx-invalid", Error),
            ("line 4", "sts.policy.max-age", Error),
            LE,
            ("policy", "sts.policy.mx-missing", Error),
        ],
        "bracketed template placeholders everywhere",
    ),
    (
        "emeraldsci-modern__mta-sts.txt",
        true,
        &[("line 2", "sts.policy.mode-none", Warning), LE, VALID],
        "mode none may omit mx",
    ),
    (
        "willjasen__brandonb.tech-website.txt",
        false,
        &[("line 1", "sts.policy.version", Error), TESTING, LE],
        "version STLS1",
    ),
    (
        "jpmahinay__tools.txt",
        false,
        &[
            TESTING,
            ("line 3", "sts.policy.mx-invalid", Error),
            ("line 4", "sts.policy.syntax", Error),
            ("line 5", "sts.policy.syntax", Error),
            ("line 6", "sts.policy.syntax", Error),
            ("line 7", "sts.policy.syntax", Error),
            ("line 8", "sts.policy.syntax", Error),
            LE,
            ("policy", "sts.policy.mx-missing", Error),
        ],
        "empty `mx:` followed by an indented YAML list",
    ),
    (
        "ExpertsInside__mta-sts.txt",
        true,
        &[
            ("line 1", "sts.policy.syntax", Error),
            ("line 2", "sts.policy.unknown-key", Info),
            ("line 3", "sts.policy.syntax", Error),
            ("line 4", "sts.policy.blank-line", Warning),
            ("line 5", "sts.policy.version", Info),
            LE,
        ],
        "Jekyll front matter served before the policy",
    ),
    (
        "301guru__mta-sts.txt",
        true,
        &[
            ("line 2", "sts.policy.mode-none", Warning),
            ("line 5", "sts.policy.max-age-short", Warning),
            LE,
            VALID,
        ],
        "mode none with max_age 600",
    ),
    (
        // The two `mx: mail.tutanota.de` lines are indented like the rest, so senders read
        // neither and no mx-duplicate is reported: the missing fields are the real problem.
        "4D5YqUngUAma35o__mta-sts.txt",
        false,
        &[
            ("line 1", "sts.policy.syntax", Error),
            ("line 2", "sts.policy.syntax", Error),
            ("line 3", "sts.policy.syntax", Error),
            ("line 4", "sts.policy.syntax", Error),
            ("line 5", "sts.policy.syntax", Error),
            LE,
            ("policy", "sts.policy.version", Error),
            ("policy", "sts.policy.mode", Error),
            ("policy", "sts.policy.max-age", Error),
            ("policy", "sts.policy.mx-missing", Error),
        ],
        "every line indented by six spaces",
    ),
    (
        "Ajax910__MTS-STS-Policy.txt",
        true,
        &[LE, VALID],
        "uppercase MX names and max_age exactly 31557600 are fine",
    ),
    (
        "AlertasTI__mta-sts@0bda50ed04.txt",
        false,
        &[("policy", "sts.policy.syntax", Error)],
        "a single LF: no policy at all",
    ),
    (
        "HBland-Web-Design__template-mta-sts@c83fd86eb6.txt",
        false,
        &[("policy", "sts.policy.syntax", Error)],
        "zero bytes",
    ),
    (
        "fishheadtackle__mta-sts.txt",
        true,
        &[TESTING, LE, VALID],
        "TAB after `mx:` is *WSP in the field delimiter",
    ),
    (
        "SincereK-3D-Prints__backend.txt",
        true,
        &[LE, VALID],
        "an underscore label names a real MX host and matches it",
    ),
    (
        "GamerFishToken__mta-sts.webstays.com.txt",
        true,
        &[
            TESTING,
            ("line 5", "sts.policy.blank-line", Info),
            LE,
            VALID,
        ],
        "several spaces after the colon; one trailing empty line",
    ),
    (
        "rix-fr__rix.txt",
        true,
        &[("line 1", "sts.policy.blank-line", Warning), LE, VALID],
        "a leading empty line: a warning, since strict parsers stop there",
    ),
    (
        "thomasdstewart__tomsweb2.txt",
        true,
        &[TESTING, LE, VALID],
        "trailing space after `mode: testing` is allowed by the grammar",
    ),
    (
        "SWEITSupport__mta-sts-swep.txt",
        true,
        &[TESTING, ("line 5", "sts.policy.blank-line", Info), VALID],
        "CRLF with two trailing empty lines (one finding)",
    ),
    (
        "elvisimprsntr__mta-sts-policy@909eecb261.txt",
        true,
        &[
            TESTING,
            ("line 4", "sts.policy.unknown-key", Info),
            LE,
            VALID,
        ],
        "`ms:` typo is an unknown key",
    ),
    (
        "deptofdefense__dds.mil.txt",
        true,
        &[
            TESTING,
            ("line 3", "sts.policy.max-age-short", Warning),
            LE,
            VALID,
        ],
        "max_age 3600",
    ),
];

#[test]
fn rfc8461_3_2_notable_corpus_policies() {
    let Some(dir) = policies_dir() else { return };
    for (name, accepted, want, why) in NOTABLE {
        let l = lint_file(&dir, name);
        let want: Vec<(String, &str, Severity)> = want
            .iter()
            .map(|(s, c, v)| ((*s).to_owned(), *c, *v))
            .collect();
        assert_eq!(summary(&l), want, "{name}: {why}\n{:#?}", l.findings);
        assert_eq!(l.policy.is_some(), *accepted, "{name}: {why}");
    }
}

#[test]
fn rfc8461_3_2_notable_corpus_values() {
    let Some(dir) = policies_dir() else { return };
    let message = |l: &Lint, code: &str| {
        l.findings
            .iter()
            .find(|f| f.code.as_str() == code)
            .map(|f| f.message.clone())
            .unwrap_or_default()
    };
    let l = lint_file(&dir, "Securenetology__mta-sts.txt");
    assert!(message(&l, "sts.policy.mode").contains("\"enforced\""));

    let l = lint_file(&dir, "matthewaynelson__mta-sts-policy.txt");
    assert!(message(&l, "sts.policy.mx-invalid").contains("alt*.google.com"));
    let p = l.policy.expect("accepted");
    assert_eq!(p.mx().len(), 2);
    assert!(p.matches_mx("contoso-com.mail.protection.outlook.com"));
    assert!(!p.matches_mx("alt1.google.com"));

    let l = lint_file(&dir, "apothiq__MTA@850d6834e5.txt");
    assert!(message(&l, "sts.policy.bom").contains("UTF-16LE"));

    let l = lint_file(&dir, "willjasen__brandonb.tech-website.txt");
    assert!(message(&l, "sts.policy.version").contains("\"STLS1\""));

    let l = lint_file(&dir, "rajayoga8__mta-sts-rajayoga8@0ed1fe06bb.txt");
    assert!(message(&l, "sts.policy.max-age").contains("line 4"));

    let p = lint_file(&dir, "Ajax910__MTS-STS-Policy.txt")
        .policy
        .expect("accepted");
    assert_eq!(p.max_age().as_secs(), 31_557_600);
    assert!(
        p.mx()
            .iter()
            .all(|m| m.domain() == m.domain().to_lowercase())
    );
    assert!(p.matches_mx("alt1.aspmx.l.google.com."));

    let p = lint_file(&dir, "fishheadtackle__mta-sts.txt")
        .policy
        .expect("accepted");
    assert_eq!(p.mx().len(), 5);
    assert!(p.matches_mx("alt4.aspmx.l.google.com"));

    let p = lint_file(&dir, "SincereK-3D-Prints__backend.txt")
        .policy
        .expect("accepted");
    assert!(p.matches_mx("_dc-mx.7448e41c9abd.sincerek3dprints.shop."));

    let p = lint_file(&dir, "emeraldsci-modern__mta-sts.txt")
        .policy
        .expect("accepted");
    assert_eq!((p.mode(), p.mx().len()), (Mode::None, 0));

    let p = lint_file(&dir, "301guru__mta-sts.txt")
        .policy
        .expect("accepted");
    assert_eq!((p.mode(), p.max_age().as_secs()), (Mode::None, 600));

    let l = lint_file(&dir, "4D5YqUngUAma35o__mta-sts.txt");
    assert!(message(&l, "sts.policy.mode").contains("line 2 is indented"));
}
