//! `stsward domain import FILE`: the import file, one domain a line with its RFC 8461 §3.2
//! policy fields, parsed and validated whole before anything is written.
//!
//! ```text
//! file    = *(line LF)                      ; CRLF accepted
//! line    = [domain *(WSP option)] [comment]
//! option  = "mode=" ("testing" / "enforce" / "none")
//!         / "mx=" pattern *("," pattern)    ; RFC 8461 §3.2 mx values, e.g. *.example.net
//!         / "max_age=" 1*10DIGIT            ; seconds, at most 31557600
//!         / "follow_mx=" ("on" / "off")
//! comment = "#" *VCHAR                      ; from "#" to the end of the line
//! ```
//!
//! An option left out takes the import's default (`--mode`, `--mx`, `--max-age`,
//! `--follow-mx`), and a default left out takes `domain add`'s (`testing`, one week). The
//! `mx` patterns never come from DNS here: a line without `mx=` and an import without
//! `--mx` is an error, because 50,000 MX lookups are not an import.
//!
//! Every line is checked before the first write: a bad line (a bad name, an unknown option,
//! a policy `stsward policy lint` refuses, a domain given twice) fails the whole import,
//! and every bad line is reported (up to [`MAX_REPORTED`]) with its number and field.

use std::collections::HashMap;

use stsward_proto::mta_sts::{MaxAge, Mode, MxPattern, Policy};

use super::input::{build_policy, parse_max_age, parse_mode, parse_patterns};
use super::{DEFAULT_MAX_AGE, Warning, names};

/// Most line errors one failed import reports; the count says how many there were.
pub const MAX_REPORTED: usize = 100;

/// Longest line accepted, in bytes (a domain and a few dozen patterns fit many times over).
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// The import's defaults, for options a line leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportDefaults {
    /// `testing`, `enforce` or `none` (default `testing`).
    pub mode: Option<String>,
    /// `mx` patterns (none: every line must give `mx=`).
    pub mx: Vec<String>,
    /// Seconds (default [`DEFAULT_MAX_AGE`]).
    pub max_age: Option<u64>,
    /// Follow the MX records on a schedule.
    pub follow_mx: bool,
}

/// One bad line: its number (from 1), the field, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    /// The line number, from 1.
    pub line: usize,
    /// `domain`, `mode`, `mx`, `max_age`, `follow_mx`, `option` or `policy`.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.field, self.reason)
    }
}

/// A domain to host, from one valid line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLine {
    /// The line number, from 1.
    pub line: usize,
    /// Lowercase A-labels.
    pub domain: String,
    /// Its first policy.
    pub policy: Policy,
    /// Follow the MX records on a schedule.
    pub follow_mx: bool,
    /// Lint findings below error severity.
    pub warnings: Vec<Warning>,
}

/// Every line of `text`, validated; or the bad lines (at most [`MAX_REPORTED`]) and how
/// many there were.
pub fn parse(
    text: &str,
    defaults: &ImportDefaults,
) -> Result<Vec<ImportLine>, (Vec<LineError>, usize)> {
    let mut errors: Vec<LineError> = Vec::new();
    let mut total_errors = 0;
    let mut fail = |e: LineError| {
        total_errors += 1;
        if errors.len() < MAX_REPORTED {
            errors.push(e);
        }
    };
    // The defaults are checked once, as line 0 would be: a bad `--mx` is one error, not one
    // per line. The CLI has validated them already; the REST API may not have.
    let base = match Defaults::new(defaults) {
        Ok(base) => base,
        Err(e) => {
            fail(e);
            return Err((errors, total_errors));
        }
    };
    // Most lines share their options: build and lint each distinct policy once.
    let mut policies: Policies = HashMap::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        match parse_line(n, raw, &base, &mut policies) {
            Ok(None) => {}
            Ok(Some(line)) => match first_line.get(&line.domain) {
                Some(earlier) => fail(LineError {
                    line: n,
                    field: "domain",
                    reason: format!("{} is given already on line {earlier}", line.domain),
                }),
                None => {
                    first_line.insert(line.domain.clone(), n);
                    out.push(line);
                }
            },
            Err(e) => fail(e),
        }
    }
    if total_errors > 0 {
        return Err((errors, total_errors));
    }
    Ok(out)
}

/// Each distinct policy of the file, built and linted once, by its parts.
type Policies = HashMap<(Mode, MaxAge, Vec<MxPattern>), (Policy, Vec<Warning>)>;

/// The defaults, validated.
struct Defaults {
    mode: Mode,
    mx: Option<Vec<MxPattern>>,
    max_age: MaxAge,
    follow_mx: bool,
}

impl Defaults {
    fn new(d: &ImportDefaults) -> Result<Defaults, LineError> {
        let at_zero = |e: super::DomainError| {
            let (field, reason) = split_error(e);
            LineError {
                line: 0,
                field,
                reason: format!("the default: {reason}"),
            }
        };
        Ok(Defaults {
            mode: parse_mode(d.mode.as_deref().unwrap_or("testing")).map_err(at_zero)?,
            mx: if d.mx.is_empty() {
                None
            } else {
                Some(parse_patterns(&d.mx).map_err(at_zero)?)
            },
            max_age: parse_max_age(d.max_age.unwrap_or(u64::from(DEFAULT_MAX_AGE)))
                .map_err(at_zero)?,
            follow_mx: d.follow_mx,
        })
    }
}

fn split_error(e: super::DomainError) -> (&'static str, String) {
    match e {
        super::DomainError::Invalid { field, reason } => (field, reason),
        other => ("policy", other.to_string()),
    }
}

fn parse_line(
    n: usize,
    raw: &str,
    base: &Defaults,
    policies: &mut Policies,
) -> Result<Option<ImportLine>, LineError> {
    let err = |field: &'static str, reason: String| LineError {
        line: n,
        field,
        reason,
    };
    if raw.len() > MAX_LINE_BYTES {
        return Err(err(
            "line",
            format!("{} bytes, more than {MAX_LINE_BYTES}", raw.len()),
        ));
    }
    let content = raw.split_once('#').map_or(raw, |(before, _)| before);
    let mut words = content.split_ascii_whitespace();
    let Some(name) = words.next() else {
        return Ok(None);
    };
    let domain = names::domain_name(name).map_err(|e| err("domain", e.to_string()))?;
    let (mut mode, mut mx, mut max_age, mut follow_mx) = (None, None, None, None);
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(err(
                "option",
                format!("{word:?} is not KEY=VALUE (mode=, mx=, max_age=, follow_mx=)"),
            ));
        };
        let twice = || err("option", format!("{key}= is given twice"));
        let invalid = |e: super::DomainError| {
            let (field, reason) = split_error(e);
            err(field, reason)
        };
        match key {
            "mode" => {
                if mode.replace(parse_mode(value).map_err(invalid)?).is_some() {
                    return Err(twice());
                }
            }
            "mx" => {
                let patterns: Vec<String> = value.split(',').map(str::to_owned).collect();
                if patterns.iter().any(String::is_empty) {
                    return Err(err(
                        "mx",
                        format!(
                            "{value:?} has an empty pattern (patterns are separated by one comma)"
                        ),
                    ));
                }
                if mx
                    .replace(parse_patterns(&patterns).map_err(invalid)?)
                    .is_some()
                {
                    return Err(twice());
                }
            }
            "max_age" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| err("max_age", format!("{value:?} is not a number of seconds")))?;
                if max_age
                    .replace(parse_max_age(secs).map_err(invalid)?)
                    .is_some()
                {
                    return Err(twice());
                }
            }
            "follow_mx" => {
                let on = match value {
                    "on" => true,
                    "off" => false,
                    _ => return Err(err("follow_mx", format!("{value:?} is not on or off"))),
                };
                if follow_mx.replace(on).is_some() {
                    return Err(twice());
                }
            }
            _ => {
                return Err(err(
                    "option",
                    format!("unknown option {key:?} (mode=, mx=, max_age=, follow_mx=)"),
                ));
            }
        }
    }
    let mode = mode.unwrap_or(base.mode);
    let max_age = max_age.unwrap_or(base.max_age);
    let mx = match (mx, &base.mx) {
        (Some(mx), _) => mx,
        (None, Some(default)) => default.clone(),
        (None, None) if mode == Mode::None => Vec::new(),
        (None, None) => {
            return Err(err(
                "mx",
                "no mx= on the line and no default (--mx); an import does not look up MX records"
                    .into(),
            ));
        }
    };
    let key = (mode, max_age, mx);
    let (policy, warnings) = match policies.get(&key) {
        Some(built) => built.clone(),
        None => {
            let built = build_policy(key.0, key.1, key.2.clone()).map_err(|e| {
                let (field, reason) = split_error(e);
                err(field, reason)
            })?;
            policies.insert(key, built.clone());
            built
        }
    };
    Ok(Some(ImportLine {
        line: n,
        domain,
        policy,
        follow_mx: follow_mx.unwrap_or(base.follow_mx),
        warnings,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults(mx: &[&str]) -> ImportDefaults {
        ImportDefaults {
            mx: mx.iter().map(|s| s.to_string()).collect(),
            ..ImportDefaults::default()
        }
    }

    #[test]
    fn good_lines_take_their_options_or_the_defaults() {
        let text = "# hosted for ACME\r\n\
                    \r\n\
                    Example.COM.\r\n\
                    b.example mode=enforce mx=mx1.b.example,*.mx.example.net max_age=86400 # trailing\n\
                    \tc.example   follow_mx=on\n\
                    d.example mode=none\n";
        let lines = parse(text, &defaults(&["mx.default.example"])).expect("valid");
        let got: Vec<(usize, &str, String, bool)> = lines
            .iter()
            .map(|l| {
                (
                    l.line,
                    l.domain.as_str(),
                    l.policy.to_string().replace("\r\n", "|"),
                    l.follow_mx,
                )
            })
            .collect();
        let want = vec![
            (
                3,
                "example.com",
                "version: STSv1|mode: testing|mx: mx.default.example|max_age: 604800|".to_owned(),
                false,
            ),
            (
                4,
                "b.example",
                "version: STSv1|mode: enforce|mx: mx1.b.example|mx: *.mx.example.net|max_age: 86400|"
                    .to_owned(),
                false,
            ),
            (
                5,
                "c.example",
                "version: STSv1|mode: testing|mx: mx.default.example|max_age: 604800|".to_owned(),
                true,
            ),
            (
                6,
                "d.example",
                "version: STSv1|mode: none|mx: mx.default.example|max_age: 604800|".to_owned(),
                false,
            ),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn bad_lines_are_named_by_number_and_field() {
        // (line, why it is bad, the field named)
        let cases: &[(&str, &str, &str)] = &[
            ("bad_name!.example", "not a host name", "domain"),
            ("192.0.2.1", "an address", "domain"),
            ("a.example mode=strict", "unknown mode", "mode"),
            ("a.example mx=", "empty pattern", "mx"),
            ("a.example mx=a.example,,b.example", "empty pattern", "mx"),
            ("a.example mx=*.*.example", "bad pattern", "mx"),
            ("a.example max_age=week", "not a number", "max_age"),
            (
                "a.example max_age=99999999999",
                "over RFC 8461's limit",
                "max_age",
            ),
            ("a.example follow_mx=yes", "not on/off", "follow_mx"),
            ("a.example colour=blue", "unknown option", "option"),
            ("a.example enforce", "not KEY=VALUE", "option"),
            (
                "a.example mode=enforce mode=testing",
                "given twice",
                "option",
            ),
        ];
        for (line, why, field) in cases {
            let text = format!("good.example\n{line}\n");
            let (errors, total) = parse(&text, &defaults(&["mx.example"])).expect_err(why);
            assert_eq!(total, 1, "{why}");
            assert_eq!(errors[0].line, 2, "{why}: {:?}", errors[0]);
            assert_eq!(errors[0].field, *field, "{why}: {:?}", errors[0]);
        }
    }

    #[test]
    fn without_a_default_mx_each_line_needs_one() {
        let (errors, _) =
            parse("a.example\nb.example mx=mx.b.example\n", &defaults(&[])).expect_err("no mx");
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].line, errors[0].field), (1, "mx"));
    }

    #[test]
    fn a_domain_given_twice_names_both_lines() {
        let (errors, _) = parse(
            "a.example\nb.example\nA.Example.\n",
            &defaults(&["mx.example"]),
        )
        .expect_err("twice");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 3);
        assert!(errors[0].reason.contains("line 1"), "{}", errors[0]);
    }

    #[test]
    fn every_bad_line_is_counted_and_the_first_ones_reported() {
        let text: String = (0..MAX_REPORTED + 5).map(|_| "bad_name!\n").collect();
        let (errors, total) = parse(&text, &defaults(&["mx.example"])).expect_err("bad");
        assert_eq!(total, MAX_REPORTED + 5);
        assert_eq!(errors.len(), MAX_REPORTED);
        assert_eq!(errors[MAX_REPORTED - 1].line, MAX_REPORTED);
    }

    #[test]
    fn a_bad_default_is_one_error_at_line_0() {
        let d = ImportDefaults {
            mode: Some("strict".into()),
            ..defaults(&["mx.example"])
        };
        let (errors, total) = parse("a.example\nb.example\n", &d).expect_err("bad default");
        assert_eq!((total, errors[0].line, errors[0].field), (1, 0, "mode"));
    }
}
