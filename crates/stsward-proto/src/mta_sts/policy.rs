//! RFC 8461 §3.2 — the policy file served at `https://mta-sts.<domain>/.well-known/mta-sts.txt`
//!
//! The grammar, exactly as RFC 8461 §3.2 prints it (`sta-policy-alphanum` in
//! `sts-policy-ext-name` is the RFC's own typo for `sts-policy-alphanum`):
//!
//! ```text
//! sts-policy-record        = sts-policy-field *WSP
//!                            *(sts-policy-term sts-policy-field *WSP)
//!                            [sts-policy-term]
//!
//! sts-policy-field         = sts-policy-version /      ; required once
//!                            sts-policy-mode    /      ; required once
//!                            sts-policy-max-age /      ; required once
//!                            sts-policy-mx /
//!                            ; required at least once, except when
//!                            ; mode is "none"
//!                            sts-policy-extension      ; other fields
//!
//! sts-policy-field-delim   = ":" *WSP
//!
//! sts-policy-version     = sts-policy-version-field sts-policy-field-delim
//!                          sts-policy-version-value
//!
//! sts-policy-version-field = %s"version"
//!
//! sts-policy-version-value = %s"STSv1"
//!
//! sts-policy-mode          = sts-policy-mode-field sts-policy-field-delim
//!                            sts-policy-mode-value
//!
//! sts-policy-mode-field    = %s"mode"
//!
//! sts-policy-mode-value    =  %s"testing" / %s"enforce" / %s"none"
//!
//! sts-policy-mx            = sts-policy-mx-field sts-policy-field-delim
//!                            sts-policy-mx-value
//!
//! sts-policy-mx-field      = %s"mx"
//!
//! sts-policy-mx-value      = ["*."] Domain
//!
//! sts-policy-max-age     = sts-policy-max-age-field sts-policy-field-delim
//!                          sts-policy-max-age-value
//!
//! sts-policy-max-age-field = %s"max_age"
//!
//! sts-policy-max-age-value = 1*10(DIGIT)
//!
//! sts-policy-extension     = sts-policy-ext-name    ; additional
//!                            sts-policy-field-delim ; extension
//!                            sts-policy-ext-value   ; fields
//!
//! sts-policy-ext-name      = (sts-policy-alphanum)
//!                            *31(sta-policy-alphanum / "_" / "-" / ".")
//!
//! sts-policy-term          = LF / CRLF
//!
//! sts-policy-ext-value     = sts-policy-vchar
//!                            [*(%x20 / sts-policy-vchar)
//!                            sts-policy-vchar]
//!                            ; chars, including UTF-8 [RFC3629],
//!                            ; excluding CTLs and no
//!                            ; leading/trailing spaces
//!
//! sts-policy-alphanum     = ALPHA / DIGIT
//!
//! sts-policy-vchar        = %x21-7E / UTF8-2 / UTF8-3 / UTF8-4
//!
//! UTF8-2          =   <Defined in Section 4 of [RFC3629]>
//!
//! UTF8-3          =   <Defined in Section 4 of [RFC3629]>
//!
//! UTF8-4          =   <Defined in Section 4 of [RFC3629]>
//!
//! Domain          =   <Defined in Section 4.1.2 of [RFC5321]>
//! ```
//!
//! The example policy of RFC 8461 §3.2:
//!
//! ```text
//! version: STSv1
//! mode: enforce
//! mx: mail.example.com
//! mx: *.example.net
//! mx: backupmx.example.com
//! max_age: 604800
//! ```
//!
//! Every literal above is `%s"…"`, which RFC 7405 defines as case-sensitive: `mode: Enforce`
//! is not a mode, and `Mode:` is an extension key, not `mode`. Fields may come in any order;
//! the canonical form written by [`Policy`]'s `Display` puts `version` first and ends every line
//! with CRLF, as §3.2's prose ("This resource contains the following CRLF-separated key/value
//! pairs") describes; the ABNF (`sts-policy-term = LF / CRLF`) also allows LF, and erratum
//! 6253 (reported, not verified) asks the prose to say so.
//!
//! [`Policy`]'s `FromStr` accepts what a sender accepts (see [`lint`] for the rules and for the
//! findings that explain every deviation).

mod lines;
mod lint;

use std::fmt;
use std::str::FromStr;

pub use lint::{Lint, lint};

use super::error::{Error, ExtensionReason, MaxAgeReason, PolicyReason};
use super::pattern::MxPattern;
use super::record::is_ext_name;

/// RFC 8461 §3.2: ""max_age": Max lifetime of the policy (plaintext non-negative
/// integer seconds, maximum value of 31557600)."
pub const MAX_AGE_LIMIT: u32 = 31_557_600;
/// RFC 8461 §3.2 expects `max_age` "in the range of weeks or greater"; below one day the
/// policy protects little against an attacker who can block refreshes, so the linter warns.
pub const MAX_AGE_SHORT: u32 = 86_400;
/// RFC 8461 §3.3: "Senders MAY impose a timeout on the HTTPS GET and/or a limit on the
/// maximum size of the response body ... a suggested maximum policy size is 64 kilobytes;
/// Policy Hosts SHOULD respond to requests with a complete policy body within that timeout
/// and size limit." The linter holds a policy host to that limit.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// RFC 8461 §3.2 `sts-policy-max-age-value = 1*10(DIGIT)`.
pub const MAX_AGE_MAX_DIGITS: usize = 10;

/// What a sender does when validation fails (RFC 8461 §3.2, §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Refuse delivery to MX hosts that fail validation.
    Enforce,
    /// Deliver anyway, and report failures (RFC 8460).
    Testing,
    /// No MTA-STS policy: the policy is withdrawn.
    None,
}

impl Mode {
    /// The exact spelling in a policy file (RFC 8461 §3.2 `sts-policy-mode-value`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

impl FromStr for Mode {
    type Err = Error;
    /// Case-sensitive, as `%s"enforce"` in the RFC 8461 §3.2 ABNF requires.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "testing" => Ok(Mode::Testing),
            "none" => Ok(Mode::None),
            _ => Err(Error::Mode {
                value: s.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy lifetime in seconds, at most [`MAX_AGE_LIMIT`] (RFC 8461 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MaxAge(u32);

impl MaxAge {
    /// A lifetime of `secs` seconds; refused above 31557600 (RFC 8461 §3.2).
    pub fn new(secs: u64) -> Result<Self, Error> {
        match u32::try_from(secs) {
            Ok(v) if v <= MAX_AGE_LIMIT => Ok(MaxAge(v)),
            _ => Err(Error::MaxAge {
                value: secs.to_string(),
                reason: MaxAgeReason::AboveLimit(secs),
            }),
        }
    }

    /// The lifetime in seconds (RFC 8461 §3.2).
    pub fn as_secs(self) -> u32 {
        self.0
    }
}

impl FromStr for MaxAge {
    type Err = Error;
    /// `1*10(DIGIT)` and no more than 31557600; no sign, no spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| Error::MaxAge {
            value: s.to_owned(),
            reason,
        };
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(MaxAgeReason::NotDigits));
        }
        if s.len() > MAX_AGE_MAX_DIGITS {
            return Err(fail(MaxAgeReason::TooManyDigits));
        }
        let secs: u64 = s.parse().map_err(|_| fail(MaxAgeReason::NotDigits))?;
        MaxAge::new(secs).map_err(|_| fail(MaxAgeReason::AboveLimit(secs)))
    }
}

impl fmt::Display for MaxAge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An extension field of a policy (RFC 8461 §3.2 `sts-policy-extension`), kept so that
/// re-serialising reproduces it. Senders ignore it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Extension {
    name: String,
    value: String,
}

/// The field names RFC 8461 §3.2 defines; everything else is an extension.
pub const POLICY_KEYS: [&str; 4] = ["version", "mode", "max_age", "mx"];

impl Extension {
    /// A validated extension (RFC 8461 §3.2); the four defined keys are not extensions.
    pub fn new(name: &str, value: &str) -> Result<Self, Error> {
        let fail = |reason| Error::Extension {
            name: name.to_owned(),
            reason,
        };
        if !is_ext_name(name) {
            return Err(fail(ExtensionReason::BadName));
        }
        if POLICY_KEYS.contains(&name) {
            return Err(fail(ExtensionReason::Reserved));
        }
        if !is_policy_ext_value(value) {
            return Err(fail(ExtensionReason::BadValue(value.to_owned())));
        }
        Ok(Extension {
            name: name.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The field name (RFC 8461 §3.2 `sts-policy-ext-name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field value (RFC 8461 §3.2 `sts-policy-ext-value`).
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// RFC 8461 §3.2 `sts-policy-ext-value`: visible characters (UTF-8 allowed) with single
/// spaces inside, no leading or trailing space, no control characters.
fn is_policy_ext_value(value: &str) -> bool {
    let vchar = |c: char| c.is_ascii_graphic() || (!c.is_ascii() && !c.is_control());
    let (Some(first), Some(last)) = (value.chars().next(), value.chars().last()) else {
        return false;
    };
    vchar(first) && vchar(last) && value.chars().all(|c| c == ' ' || vchar(c))
}

/// A policy a sender accepts (RFC 8461 §3.2): version `STSv1`, a mode, a max_age, and at least
/// one `mx` pattern unless the mode is `none`. Extensions are kept in order, one per name.
///
/// `Display` writes the canonical CRLF form (what stsward serves); `FromStr` accepts LF or
/// CRLF and whatever else a sender tolerates, and `x.to_string().parse() == Ok(x)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    mode: Mode,
    max_age: MaxAge,
    mx: Vec<MxPattern>,
    extensions: Vec<Extension>,
}

impl Policy {
    /// A policy without extensions. Refused when `mx` is empty and `mode` is not `none`
    /// (RFC 8461 §3.2 ABNF comment on `sts-policy-mx`: "required at least once, except when
    /// mode is "none"").
    pub fn new(mode: Mode, max_age: MaxAge, mx: Vec<MxPattern>) -> Result<Self, Error> {
        if mx.is_empty() && mode != Mode::None {
            return Err(Error::Policy {
                reason: PolicyReason::NoMx,
            });
        }
        Ok(Policy {
            mode,
            max_age,
            mx,
            extensions: Vec::new(),
        })
    }

    /// Adds an extension; refused if its name is already present, since senders would keep
    /// only the first (RFC 8461 §3.2).
    pub fn with_extension(mut self, ext: Extension) -> Result<Self, Error> {
        if self.extensions.iter().any(|e| e.name == ext.name) {
            return Err(Error::Extension {
                name: ext.name,
                reason: ExtensionReason::Duplicate,
            });
        }
        self.extensions.push(ext);
        Ok(self)
    }

    /// The mode (RFC 8461 §3.2, §5).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The lifetime (RFC 8461 §3.2).
    pub fn max_age(&self) -> MaxAge {
        self.max_age
    }

    /// The `mx` patterns in file order, duplicates kept (RFC 8461 §3.2).
    pub fn mx(&self) -> &[MxPattern] {
        &self.mx
    }

    /// The extension fields in file order (RFC 8461 §3.2).
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// Whether `mx_host` matches one of the patterns (RFC 8461 §4.1).
    pub fn matches_mx(&self, mx_host: &str) -> bool {
        self.mx.iter().any(|p| p.matches(mx_host))
    }

    /// When a policy fetched at `fetched_at` expires, in Unix seconds (RFC 8461 §3.2: cache
    /// "for up to this value from the last policy fetch time").
    pub fn expires_at(&self, fetched_at: u64) -> u64 {
        fetched_at.saturating_add(u64::from(self.max_age.0))
    }

    /// Whether a policy fetched at `fetched_at` may still be used at `now` (Unix seconds,
    /// RFC 8461 §3.2). A `now` before `fetched_at` (clock step back) counts as just fetched.
    pub fn is_fresh(&self, fetched_at: u64, now: u64) -> bool {
        now.saturating_sub(fetched_at) < u64::from(self.max_age.0)
    }

    /// [`Policy::is_fresh`] with `time` values (RFC 8461 §3.2).
    pub fn is_fresh_at(&self, fetched_at: time::OffsetDateTime, now: time::OffsetDateTime) -> bool {
        let age = (now - fetched_at).whole_seconds().max(0);
        age < i64::from(self.max_age.0)
    }
}

impl fmt::Display for Policy {
    /// The canonical form: CRLF line ends, `version` first, then `mode`, every `mx`,
    /// `max_age`, and the extensions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "version: STSv1\r\nmode: {}\r\n", self.mode)?;
        for mx in &self.mx {
            write!(f, "mx: {mx}\r\n")?;
        }
        write!(f, "max_age: {}\r\n", self.max_age)?;
        for ext in &self.extensions {
            write!(f, "{}: {}\r\n", ext.name, ext.value)?;
        }
        Ok(())
    }
}

impl FromStr for Policy {
    type Err = Error;
    /// The policy a sender would take from this text, or the first reason it would not.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (lint, rejection) = lint::run(s.as_bytes());
        match (lint.policy, rejection) {
            (Some(policy), _) => Ok(policy),
            (None, Some(reason)) => Err(Error::Policy { reason }),
            (None, None) => Err(Error::Policy {
                reason: PolicyReason::Missing("version"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8461 §3.2's example, exactly (LF line ends as printed in the RFC).
    const RFC_EXAMPLE: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";

    #[test]
    fn rfc8461_3_2_example_policy_parses_and_serialises_canonically() {
        let policy: Policy = RFC_EXAMPLE.parse().unwrap();
        assert_eq!(policy.mode(), Mode::Enforce);
        assert_eq!(policy.max_age().as_secs(), 604_800);
        let mx: Vec<String> = policy.mx().iter().map(ToString::to_string).collect();
        assert_eq!(
            mx,
            ["mail.example.com", "*.example.net", "backupmx.example.com"]
        );
        assert_eq!(policy.to_string(), RFC_EXAMPLE.replace('\n', "\r\n"));
        assert_eq!(policy.to_string().parse::<Policy>(), Ok(policy.clone()));
        assert!(policy.matches_mx("mail.example.com"));
        assert!(policy.matches_mx("mx7.example.net."));
        assert!(!policy.matches_mx("example.net"));
    }

    #[test]
    fn rfc8461_3_2_canonical_form_orders_fields_and_keeps_extensions() {
        let text = "max_age: 86400\r\nfoo: bar baz\r\nmx: b.example\r\nmode: testing\r\nversion: STSv1\r\nmx: a.example";
        let policy: Policy = text.parse().unwrap();
        assert_eq!(
            policy.to_string(),
            "version: STSv1\r\nmode: testing\r\nmx: b.example\r\nmx: a.example\r\nmax_age: 86400\r\nfoo: bar baz\r\n"
        );
        assert_eq!(policy.extensions().len(), 1);
    }

    #[test]
    fn rfc8461_3_2_modes_are_case_sensitive() {
        assert_eq!("enforce".parse::<Mode>(), Ok(Mode::Enforce));
        assert_eq!("testing".parse::<Mode>(), Ok(Mode::Testing));
        assert_eq!("none".parse::<Mode>(), Ok(Mode::None));
        for bad in [
            "Enforce", "TESTING", "enforced", "test", "doubt", "", " none",
        ] {
            assert!(bad.parse::<Mode>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc8461_3_2_max_age_limits() {
        use MaxAgeReason as R;
        assert_eq!("0".parse::<MaxAge>().map(MaxAge::as_secs), Ok(0));
        assert_eq!(
            "31557600".parse::<MaxAge>().map(MaxAge::as_secs),
            Ok(MAX_AGE_LIMIT)
        );
        assert_eq!(
            "0000086400".parse::<MaxAge>().map(MaxAge::as_secs),
            Ok(86_400)
        );
        // (value, reason)
        let bad: &[(&str, MaxAgeReason)] = &[
            ("31557601", R::AboveLimit(31_557_601)),
            ("9999999999", R::AboveLimit(9_999_999_999)),
            ("00000086400", R::TooManyDigits),
            ("xxx", R::NotDigits),
            ("", R::NotDigits),
            ("-1", R::NotDigits),
            ("+86400", R::NotDigits),
            ("1e6", R::NotDigits),
            ("86400 # a day", R::NotDigits),
        ];
        for (text, reason) in bad {
            match text.parse::<MaxAge>() {
                Err(Error::MaxAge { reason: r, .. }) => assert_eq!(&r, reason, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(MaxAge::new(u64::MAX).is_err());
    }

    #[test]
    fn rfc8461_3_2_freshness_uses_max_age_from_fetch_time() {
        let policy = Policy::new(
            Mode::Enforce,
            MaxAge::new(100).unwrap(),
            vec!["mx.example".parse().unwrap()],
        )
        .unwrap();
        assert!(policy.is_fresh(1000, 1000));
        assert!(policy.is_fresh(1000, 1099));
        assert!(!policy.is_fresh(1000, 1100));
        assert!(policy.is_fresh(1000, 900), "clock stepped back");
        assert_eq!(policy.expires_at(1000), 1100);
        let t0 = time::OffsetDateTime::from_unix_timestamp(1000).unwrap();
        assert!(policy.is_fresh_at(t0, t0 + time::Duration::seconds(99)));
        assert!(!policy.is_fresh_at(t0, t0 + time::Duration::seconds(100)));
        let zero = Policy::new(Mode::None, MaxAge::new(0).unwrap(), Vec::new()).unwrap();
        assert!(!zero.is_fresh(5, 5), "max_age 0 is never cached");
    }

    #[test]
    fn rfc8461_3_2_constructor_keeps_invariants() {
        let age = MaxAge::new(86_400).unwrap();
        assert!(Policy::new(Mode::Enforce, age, Vec::new()).is_err());
        assert!(Policy::new(Mode::Testing, age, Vec::new()).is_err());
        let none = Policy::new(Mode::None, age, Vec::new()).unwrap();
        let with = none
            .clone()
            .with_extension(Extension::new("foo", "1").unwrap())
            .unwrap();
        assert!(
            with.clone()
                .with_extension(Extension::new("foo", "2").unwrap())
                .is_err()
        );
        assert!(Extension::new("mode", "enforce").is_err());
        assert!(Extension::new("x", " lead").is_err());
        assert!(Extension::new("x", "trail ").is_err());
        assert!(Extension::new("x", "a\tb").is_err());
        assert!(Extension::new("x", "naïve café").is_ok());
        assert_eq!(with.to_string().parse::<Policy>(), Ok(with));
    }
}
