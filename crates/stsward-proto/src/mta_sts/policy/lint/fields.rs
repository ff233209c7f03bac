//! RFC 8461 §3.2 — the checks for each field: `version`, `mode`, `max_age`, `mx`, extensions
//!
//! The first occurrence of a field other than `mx` counts; later ones are reported as
//! warnings and ignored. RFC 8461 §3.2: "If any non-repeated field -- i.e., all fields
//! excepting "mx" -- is duplicated, all entries except for the first SHALL be ignored."
//! The policy stays usable, so a repeat is a `warning`: it works today, but the author
//! rarely meant the first value to win (`spec/findings.md`).

use crate::finding::{Code, Finding, Severity};
use crate::mta_sts::error::{Error, MxPatternReason, PolicyReason};
use crate::mta_sts::pattern::MxPattern;

use super::super::{Extension, MAX_AGE_SHORT, MaxAge, Mode};
use super::{Linter, defined_key};

impl Linter {
    fn duplicate(&mut self, n: usize, key: &str, value: &str, first: usize) {
        self.at(
            n,
            Code::StsPolicyDuplicate,
            Severity::Warning,
            format!(
                "{key} is given again ({value:?}; first on line {first}); senders use the first and ignore this one"
            ),
        );
    }

    pub(super) fn version(&mut self, n: usize, value: &str) {
        if let Some((first, _)) = self.version {
            return self.duplicate(n, "version", value, first);
        }
        let ok = value == "STSv1";
        self.version = Some((n, ok));
        if !ok {
            let case = if value.eq_ignore_ascii_case("STSv1") {
                " (values are case-sensitive)"
            } else {
                ""
            };
            self.at(
                n,
                Code::StsPolicyVersion,
                Severity::Error,
                format!("version is {value:?}, not \"STSv1\"{case}"),
            );
            self.reject(PolicyReason::Version {
                value: value.to_owned(),
                line: n,
            });
        }
    }

    pub(super) fn mode(&mut self, n: usize, value: &str) {
        if let Some((first, _)) = self.mode {
            return self.duplicate(n, "mode", value, first);
        }
        match value.parse::<Mode>() {
            Ok(mode) => {
                self.mode = Some((n, Some(mode)));
                match mode {
                    Mode::Enforce => {}
                    Mode::Testing => self.at(
                        n,
                        Code::StsPolicyModeTesting,
                        Severity::Info,
                        "mode is testing: senders report failures (TLS-RPT) but still deliver"
                            .to_owned(),
                    ),
                    Mode::None => self.at(
                        n,
                        Code::StsPolicyModeNone,
                        Severity::Warning,
                        "mode is none: senders drop any policy they cached; MTA-STS is withdrawn"
                            .to_owned(),
                    ),
                }
            }
            Err(_) => {
                self.mode = Some((n, None));
                let case = if ["enforce", "testing", "none"]
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(value))
                {
                    " (values are case-sensitive)"
                } else {
                    ""
                };
                self.at(
                    n,
                    Code::StsPolicyMode,
                    Severity::Error,
                    format!("mode is {value:?}; it must be enforce, testing or none{case}"),
                );
                self.reject(PolicyReason::Mode {
                    value: value.to_owned(),
                    line: n,
                });
            }
        }
    }

    pub(super) fn max_age(&mut self, n: usize, value: &str) {
        if let Some((first, _)) = self.max_age {
            return self.duplicate(n, "max_age", value, first);
        }
        match value.parse::<MaxAge>() {
            Ok(age) => {
                self.max_age = Some((n, Some(age)));
                if age.as_secs() < MAX_AGE_SHORT {
                    self.at(
                        n,
                        Code::StsPolicyMaxAgeShort,
                        Severity::Warning,
                        format!(
                            "max_age is {age} seconds, less than one day ({MAX_AGE_SHORT}); senders forget the policy that soon"
                        ),
                    );
                }
            }
            Err(e) => {
                self.max_age = Some((n, None));
                let reason = match e {
                    Error::MaxAge { reason, .. } => reason.to_string(),
                    other => other.to_string(),
                };
                self.at(
                    n,
                    Code::StsPolicyMaxAge,
                    Severity::Error,
                    format!("max_age is {value:?}: {reason}"),
                );
                self.reject(PolicyReason::MaxAge {
                    value: value.to_owned(),
                    line: n,
                });
            }
        }
    }

    pub(super) fn mx(&mut self, n: usize, value: &str) {
        self.mx_lines += 1;
        match value.parse::<MxPattern>() {
            Ok(pattern) => {
                if let Some((first, _)) = self.mx.iter().find(|(_, p)| *p == pattern) {
                    let first = *first;
                    self.at(
                        n,
                        Code::StsPolicyMxDuplicate,
                        Severity::Info,
                        format!("mx {value:?} repeats line {first}"),
                    );
                }
                self.mx.push((n, pattern));
            }
            Err(Error::MxPattern {
                reason: MxPatternReason::ULabel { a_labels },
                ..
            }) => {
                // RFC 8461 §3.2: the "mx" value "MUST specify the Punycode-encoded A-label
                // [RFC3492] to match against, and not the Unicode-encoded U-label". Senders
                // compare the A-label MX name with the pattern as written: no match, ever.
                let mut f = Finding::new(
                    Code::StsPolicyMxInvalid,
                    Severity::Error,
                    format!("line {n}"),
                    format!(
                        "mx {value:?} is written in U-labels; RFC 8461 §3.2 requires A-labels ({a_labels}), so senders never match it"
                    ),
                )
                .with_remedy(format!("Write the pattern as \"mx: {a_labels}\"."));
                "RFC 8461 §3.2".clone_into(&mut f.reference);
                self.findings.push((n, f));
            }
            Err(e) => {
                let reason = match e {
                    Error::MxPattern { reason, .. } => reason.to_string(),
                    other => other.to_string(),
                };
                self.at(
                    n,
                    Code::StsPolicyMxInvalid,
                    Severity::Error,
                    format!("mx {value:?} can never match an MX host: {reason}"),
                );
            }
        }
    }

    pub(super) fn extension(&mut self, n: usize, key: &str, value: &str) {
        let case_of = defined_key(&key.to_ascii_lowercase());
        if let Some(k) = case_of {
            self.hints.push((k, n, "has the key in the wrong case"));
        }
        if let Some(first) = self.extension_lines.get(key).copied() {
            self.at(
                n,
                Code::StsPolicyDuplicate,
                Severity::Warning,
                format!(
                    "extension key {key:?} is given again (first on line {first}); senders ignore repeats"
                ),
            );
            return;
        }
        self.extension_lines.insert(key.to_owned(), n);
        match Extension::new(key, value) {
            Ok(ext) => {
                let message = match case_of {
                    Some(k) => format!(
                        "key {key:?} is not {k:?}: keys are case-sensitive, so senders take this line for an unknown extension and ignore it"
                    ),
                    None => format!("unknown key {key:?} (value {value:?}) is ignored by senders"),
                };
                self.at(n, Code::StsPolicyUnknownKey, Severity::Info, message);
                self.extensions.push(ext);
            }
            Err(_) => self.syntax(
                n,
                format!(
                    "the value {value:?} of key {key:?} is empty or has control characters, which the grammar does not allow"
                ),
            ),
        }
    }
}
