//! RFC 8460 §5.1 — the report file name
//!
//! A report's attachment (or HTTPS upload) is named after who sent it, which domain it is
//! about and which time range it covers. RFC 8460 §5.1: "The filename is RECOMMENDED to be
//! constructed using the following ABNF:"
//!
//! ```text
//! filename        = sender "!" policy-domain "!" begin-timestamp
//!                   "!" end-timestamp [ "!" unique-id ] "." extension
//!
//! unique-id       = 1*(ALPHA / DIGIT)
//!
//! sender          = domain ; from [RFC5321] -- this is used
//!                   ; as the domain for the `contact-info`
//!                   ; address in the report body.
//!                   ; In the case of Internationalized Domain
//!                   ; Names [RFC5891], the domain MUST consist of
//!                   ; the Punycode-encoded A-labels [RFC3492] and
//!                   ; not the U-labels.
//!
//! policy-domain   = domain
//!                   ; In the case of Internationalized Domain
//!                   ; Names [RFC5891], the domain MUST consist of
//!                   ; the Punycode-encoded A-labels [RFC3492] and
//!                   ; not the U-labels.
//!
//! begin-timestamp = 1*DIGIT
//!                   ; seconds since 00:00:00 UTC January 1, 1970
//!                   ; indicating start of the time range contained
//!                   ; in the report
//!
//! end-timestamp   = 1*DIGIT
//!                   ; seconds since 00:00:00 UTC January 1, 1970
//!                   ; indicating end of the time range contained
//!                   ; in the report
//!
//! extension       = "json" / "json.gz"
//! ```
//!
//! RFC 8460 §5.1's example: "this is a possible filename for a compressed report to the
//! Policy Domain "example.net" from the Sending MTA "mail.sndr.example.com":
//! "mail.sndr.example.com!example.net!1470013207!1470186007!001.json.gz"". The sample message
//! of §5.3.1 names its attachment (line-wrapped there)
//! `mail.sender.example!example.com!1013662812!1013749130.json.gz`, which follows the same
//! grammar without a unique id.
//!
//! `sender` and `policy-domain` are RFC 5321 domains, which have no `!`, so `!` splits the
//! name unambiguously. ABNF literals are case-insensitive (RFC 5234 §2.3), so `.JSON.GZ` is
//! accepted; `Display` writes the lowercase form. `unique-id` also accepts `-` and `_`, a
//! leniency for ids built from UUIDs or dates; begin ≤ end is not checked here (the report's
//! own date range is the authority, and callers compare the two).

use std::fmt;
use std::str::FromStr;

/// RFC 1035 §2.3.4: a domain name is at most 253 octets in text form (255 on the wire).
const MAX_DOMAIN_LEN: usize = 253;

/// A file name following the RFC 8460 §5.1 convention.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportFilename {
    /// The sending MTA's domain (`sender`).
    pub sender: String,
    /// The Policy Domain the report is about.
    pub policy_domain: String,
    /// Start of the reported range, seconds since the Unix epoch.
    pub begin: u64,
    /// End of the reported range, seconds since the Unix epoch.
    pub end: u64,
    /// The optional `unique-id` that tells simultaneous reports apart.
    pub unique_id: Option<String>,
    /// `true` for `.json.gz`, `false` for `.json`.
    pub gzip: bool,
}

/// Which part of a report file name is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilenameError {
    /// The name ends in neither `.json` nor `.json.gz`.
    #[error("report file name {name:?} must end in \".json\" or \".json.gz\"")]
    Extension {
        /// The whole name as given.
        name: String,
    },
    /// The name does not have 4 or 5 `!`-separated parts.
    #[error(
        "report file name must have 4 or 5 parts separated by '!' \
         (sender!policy-domain!begin!end[!unique-id]), found {found}"
    )]
    PartCount {
        /// How many parts were found.
        found: usize,
    },
    /// The sender part is not a domain name.
    #[error("sender {value:?} in the report file name is not a domain name: {reason}")]
    Sender {
        /// The sender part as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The policy-domain part is not a domain name.
    #[error("policy domain {value:?} in the report file name is not a domain name: {reason}")]
    PolicyDomain {
        /// The policy-domain part as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The begin timestamp is not a decimal number of seconds that fits 64 bits.
    #[error("begin timestamp {value:?} in the report file name is not a number of seconds")]
    Begin {
        /// The begin part as given.
        value: String,
    },
    /// The end timestamp is not a decimal number of seconds that fits 64 bits.
    #[error("end timestamp {value:?} in the report file name is not a number of seconds")]
    End {
        /// The end part as given.
        value: String,
    },
    /// The unique-id part is empty or has characters other than letters, digits, `-`, `_`.
    #[error("unique id {value:?} in the report file name must be letters and digits")]
    UniqueId {
        /// The unique-id part as given.
        value: String,
    },
}

impl FromStr for ReportFilename {
    type Err = FilenameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let (stem, gzip) = split_extension(name).ok_or_else(|| FilenameError::Extension {
            name: name.to_owned(),
        })?;
        let parts: Vec<&str> = stem.split('!').collect();
        let (sender, policy_domain, begin, end, unique_id) = match parts.as_slice() {
            [s, p, b, e] => (*s, *p, *b, *e, None),
            [s, p, b, e, u] => (*s, *p, *b, *e, Some(*u)),
            other => return Err(FilenameError::PartCount { found: other.len() }),
        };
        check_domain(sender).map_err(|reason| FilenameError::Sender {
            value: sender.to_owned(),
            reason,
        })?;
        check_domain(policy_domain).map_err(|reason| FilenameError::PolicyDomain {
            value: policy_domain.to_owned(),
            reason,
        })?;
        let begin = parse_timestamp(begin).ok_or_else(|| FilenameError::Begin {
            value: begin.to_owned(),
        })?;
        let end = parse_timestamp(end).ok_or_else(|| FilenameError::End {
            value: end.to_owned(),
        })?;
        let unique_id = match unique_id {
            None => None,
            Some(u) if is_unique_id(u) => Some(u.to_owned()),
            Some(u) => {
                return Err(FilenameError::UniqueId {
                    value: u.to_owned(),
                });
            }
        };
        Ok(Self {
            sender: sender.to_owned(),
            policy_domain: policy_domain.to_owned(),
            begin,
            end,
            unique_id,
            gzip,
        })
    }
}

impl fmt::Display for ReportFilename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}!{}!{}!{}",
            self.sender, self.policy_domain, self.begin, self.end
        )?;
        if let Some(id) = &self.unique_id {
            write!(f, "!{id}")?;
        }
        f.write_str(if self.gzip { ".json.gz" } else { ".json" })
    }
}

/// Splits off `.json.gz` / `.json` (any case); `true` means gzip.
fn split_extension(name: &str) -> Option<(&str, bool)> {
    for (ext, gzip) in [(".json.gz", true), (".json", false)] {
        let Some(cut) = name.len().checked_sub(ext.len()) else {
            continue;
        };
        if let (Some(stem), Some(tail)) = (name.get(..cut), name.get(cut..))
            && tail.eq_ignore_ascii_case(ext)
        {
            return Some((stem, gzip));
        }
    }
    None
}

/// A lenient domain check: dot-separated non-empty labels of letters, digits, `-` and `_`
/// (non-ASCII letters allowed for U-labels). It rejects what cannot be a host name.
fn check_domain(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("it is empty");
    }
    if value.len() > MAX_DOMAIN_LEN {
        return Err("it is longer than 253 characters");
    }
    let value = value.strip_suffix('.').unwrap_or(value);
    for label in value.split('.') {
        if label.is_empty() {
            return Err("it has an empty label");
        }
        if !label
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err("it has a character other than letters, digits, '-', '_' and '.'");
        }
    }
    Ok(())
}

fn parse_timestamp(value: &str) -> Option<u64> {
    // `u64::from_str` would also take a leading '+', which 1*DIGIT does not allow.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn is_unique_id(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(
        sender: &str,
        domain: &str,
        begin: u64,
        end: u64,
        id: Option<&str>,
        gzip: bool,
    ) -> ReportFilename {
        ReportFilename {
            sender: sender.into(),
            policy_domain: domain.into(),
            begin,
            end,
            unique_id: id.map(Into::into),
            gzip,
        }
    }

    #[test]
    fn rfc8460_5_1_good_names_parse_and_round_trip() {
        let good = [
            (
                // RFC 8460 §5.1's own example.
                "mail.sndr.example.com!example.net!1470013207!1470186007!001.json.gz",
                name(
                    "mail.sndr.example.com",
                    "example.net",
                    1470013207,
                    1470186007,
                    Some("001"),
                    true,
                ),
            ),
            (
                "google.com!krvtz.net!1726358400!1726444799!001.json.gz",
                name(
                    "google.com",
                    "krvtz.net",
                    1726358400,
                    1726444799,
                    Some("001"),
                    true,
                ),
            ),
            (
                // Microsoft: a long numeric unique id.
                "microsoft.com!example.com!1778630400!1778716799!134232617934286362.json.gz",
                name(
                    "microsoft.com",
                    "example.com",
                    1778630400,
                    1778716799,
                    Some("134232617934286362"),
                    true,
                ),
            ),
            (
                // The attachment of RFC 8460 §5.3.1's sample message: no unique id.
                "mail.sender.example!example.com!1013662812!1013749130.json.gz",
                name(
                    "mail.sender.example",
                    "example.com",
                    1013662812,
                    1013749130,
                    None,
                    true,
                ),
            ),
            (
                // No unique id, plain JSON.
                "mail.sender.example!example.com!1013662812!1013749130.json",
                name(
                    "mail.sender.example",
                    "example.com",
                    1013662812,
                    1013749130,
                    None,
                    false,
                ),
            ),
            (
                "mx.example!xn--gpher-jua.test!0!1!a-b_c.json",
                name(
                    "mx.example",
                    "xn--gpher-jua.test",
                    0,
                    1,
                    Some("a-b_c"),
                    false,
                ),
            ),
        ];
        for (input, want) in good {
            let got: ReportFilename = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "{input}");
            assert_eq!(got.to_string(), input, "display of {input}");
        }
    }

    #[test]
    fn rfc5234_2_3_extension_is_case_insensitive_and_displayed_lowercase() {
        let got: ReportFilename = "a.example!b.example!1!2.JSON.GZ".parse().unwrap();
        assert!(got.gzip);
        assert_eq!(got.to_string(), "a.example!b.example!1!2.json.gz");
    }

    #[test]
    fn rfc8460_5_1_bad_names_name_the_wrong_part() {
        use FilenameError as E;
        type Check = fn(&E) -> bool;
        let bad: &[(&str, &str, Check)] = &[
            (
                "a.example!b.example!1!2.gz",
                "a bare .gz: the §5.1 grammar has only \"json\" / \"json.gz\"",
                |e| matches!(e, E::Extension { .. }),
            ),
            (
                "a.example!b.example!1!2.xml.gz",
                "a DMARC report name, not TLS-RPT",
                |e| matches!(e, E::Extension { .. }),
            ),
            ("report.json", "one part only", |e| {
                matches!(e, E::PartCount { found: 1 })
            }),
            ("a!b!1!2!3!4.json", "six parts", |e| {
                matches!(e, E::PartCount { found: 6 })
            }),
            ("!b.example!1!2.json", "empty sender", |e| {
                matches!(e, E::Sender { .. })
            }),
            (
                "a..example!b.example!1!2.json",
                "empty label in sender",
                |e| matches!(e, E::Sender { .. }),
            ),
            (
                "a.example!b example!1!2.json",
                "space in policy domain",
                |e| matches!(e, E::PolicyDomain { .. }),
            ),
            (
                "a.example!b.example!+1!2.json",
                "sign is not a DIGIT",
                |e| matches!(e, E::Begin { .. }),
            ),
            ("a.example!b.example!!2.json", "empty begin", |e| {
                matches!(e, E::Begin { .. })
            }),
            (
                "a.example!b.example!1!99999999999999999999999.json",
                "end overflows 64 bits",
                |e| matches!(e, E::End { .. }),
            ),
            ("a.example!b.example!1!2!.json", "empty unique id", |e| {
                matches!(e, E::UniqueId { .. })
            }),
            (
                "a.example!b.example!1!2!a b.json",
                "space in unique id",
                |e| matches!(e, E::UniqueId { .. }),
            ),
        ];
        for (input, reason, check) in bad {
            match input.parse::<ReportFilename>() {
                Ok(v) => panic!("{input} ({reason}) parsed as {v:?}"),
                Err(e) => assert!(check(&e), "{input} ({reason}): wrong error {e:?}"),
            }
        }
    }

    #[test]
    fn error_messages_say_which_part_is_wrong() {
        let e = "a.example!b.example!x!2.json"
            .parse::<ReportFilename>()
            .unwrap_err();
        assert!(e.to_string().contains("begin timestamp \"x\""), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn display_then_parse_is_identity(
            sender in "[a-z0-9]{1,10}(\\.[a-z0-9-]{1,10}){0,3}",
            domain in "[a-z0-9]{1,10}(\\.[a-z0-9_-]{1,10}){0,3}",
            begin in proptest::num::u64::ANY,
            end in proptest::num::u64::ANY,
            id in proptest::option::of("[A-Za-z0-9]{1,20}"),
            gzip in proptest::bool::ANY,
        ) {
            let v = ReportFilename { sender, policy_domain: domain, begin, end, unique_id: id, gzip };
            proptest::prop_assert_eq!(v.to_string().parse::<ReportFilename>(), Ok(v));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = s.parse::<ReportFilename>();
        }
    }
}
