//! RFC 8461 §3.1, §3.2, §4.1 — why an MTA-STS value was refused
//!
//! One error enum for the whole MTA-STS layer. Each variant carries the text that was refused
//! and, where a line is concerned, its 1-based number, so that a message can be shown to the
//! person who wrote the file without further lookup.

use std::fmt;

/// An MTA-STS value that does not satisfy RFC 8461.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An `mx` pattern that no MX host can match (RFC 8461 §3.2, §4.1).
    #[error("mx pattern {pattern:?}: {reason}")]
    MxPattern {
        /// The pattern as given.
        pattern: String,
        /// Why it was refused.
        reason: MxPatternReason,
    },
    /// A policy `id` that is not 1–32 letters or digits (RFC 8461 §3.1).
    #[error("policy id {id:?} is not 1 to 32 letters or digits")]
    PolicyId {
        /// The id as given.
        id: String,
    },
    /// A `max_age` that is not 1–10 digits no greater than 31557600 (RFC 8461 §3.2).
    #[error("max_age {value:?}: {reason}")]
    MaxAge {
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: MaxAgeReason,
    },
    /// A `mode` other than `enforce`, `testing` or `none` (RFC 8461 §3.2, case-sensitive).
    #[error("mode {value:?} is not one of enforce, testing, none")]
    Mode {
        /// The value as given.
        value: String,
    },
    /// An extension name or value outside the grammar, or one that reuses a defined name
    /// (RFC 8461 §3.1 `sts-extension`, §3.2 `sts-policy-extension`).
    #[error("extension {name:?}: {reason}")]
    Extension {
        /// The extension name as given.
        name: String,
        /// Why it was refused.
        reason: ExtensionReason,
    },
    /// A `_mta-sts` TXT record that does not parse (RFC 8461 §3.1).
    #[error("_mta-sts record {record:?}: {reason}")]
    Record {
        /// The record as given.
        record: String,
        /// Why it was refused.
        reason: RecordReason,
    },
    /// A policy file that a sender would not accept (RFC 8461 §3.2, §3.3).
    #[error("policy not usable: {reason}")]
    Policy {
        /// Why senders would not accept it.
        reason: PolicyReason,
    },
}

/// Why an `mx` pattern was refused (RFC 8461 §3.2 `sts-policy-mx-value = ["*."] Domain`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MxPatternReason {
    /// Nothing after `mx:`.
    Empty,
    /// The root name `.`, which names no host.
    Root,
    /// Space or tab inside the value (often a placeholder or an inline comment).
    Whitespace,
    /// An IPv4 or IPv6 address, bracketed or not: MX records name hosts, not addresses.
    IpLiteral,
    /// A `:port` suffix: MX hosts are always reached on port 25.
    Port(String),
    /// `*` or `*.` with no domain after it.
    BareWildcard,
    /// `*` anywhere but as the whole leftmost label.
    MisplacedWildcard,
    /// Two dots in a row, or a leading dot.
    EmptyLabel,
    /// A label longer than 63 octets.
    LabelTooLong(String),
    /// A name longer than 253 octets.
    NameTooLong(usize),
    /// A character that cannot appear in a host name.
    InvalidCharacter(char),
    /// A label that begins or ends with `-`.
    HyphenAtLabelEdge(String),
    /// An internationalised name that IDNA (UTS #46) cannot convert to A-labels.
    Idna,
    /// Unicode U-labels where RFC 8461 §3.2 requires A-labels: "the "mx" value MUST specify
    /// the Punycode-encoded A-label \[RFC3492\] to match against, and not the Unicode-encoded
    /// U-label". Senders compare the A-label MX name from DNS with the pattern as written,
    /// so it never matches. Carries the A-label form the author should have written.
    ULabel {
        /// The same pattern in A-labels, lowercase, without a trailing dot.
        a_labels: String,
    },
}

impl fmt::Display for MxPatternReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the value is empty"),
            Self::Root => f.write_str("the root name \".\" names no host"),
            Self::Whitespace => {
                f.write_str("it contains whitespace (a placeholder or an inline comment?)")
            }
            Self::IpLiteral => f.write_str("it is an IP address; MX records name hosts"),
            Self::Port(p) => write!(f, "it carries a port (:{p}); MX hosts are reached on 25"),
            Self::BareWildcard => f.write_str("a wildcard needs a domain after \"*.\""),
            Self::MisplacedWildcard => {
                f.write_str("\"*\" may only be the whole leftmost label, as in *.example.com")
            }
            Self::EmptyLabel => f.write_str("it has an empty label (\"..\" or a leading dot)"),
            Self::LabelTooLong(l) => write!(f, "label {l:?} is longer than 63 octets"),
            Self::NameTooLong(n) => write!(f, "the name is {n} octets, longer than 253"),
            Self::InvalidCharacter(c) => write!(f, "{c:?} cannot appear in a host name"),
            Self::HyphenAtLabelEdge(l) => write!(f, "label {l:?} begins or ends with \"-\""),
            Self::Idna => f.write_str("it is not a valid internationalised domain name"),
            Self::ULabel { a_labels } => write!(
                f,
                "it is written in Unicode U-labels; RFC 8461 §3.2 requires the A-label form {a_labels}"
            ),
        }
    }
}

/// Why a `max_age` value was refused (RFC 8461 §3.2 `sts-policy-max-age-value = 1*10(DIGIT)`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaxAgeReason {
    /// Not a plain run of decimal digits.
    NotDigits,
    /// More than 10 digits.
    TooManyDigits,
    /// Above the 31557600-second maximum.
    AboveLimit(u64),
}

impl fmt::Display for MaxAgeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotDigits => f.write_str("not a whole number of seconds"),
            Self::TooManyDigits => f.write_str("more than 10 digits"),
            Self::AboveLimit(v) => write!(f, "{v} is above the maximum of 31557600"),
        }
    }
}

/// Why an extension was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionReason {
    /// The name is not `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`.
    BadName,
    /// The value has characters the grammar excludes, or is empty.
    BadValue(String),
    /// The name is one the RFC defines (`v`, `id`; `version`, `mode`, `max_age`, `mx`).
    Reserved,
    /// The name is already present (policy fields other than `mx` appear once).
    Duplicate,
}

impl fmt::Display for ExtensionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName => f.write_str(
                "the name must be a letter or digit followed by up to 31 letters, digits, \"_\", \"-\" or \".\"",
            ),
            Self::BadValue(v) => write!(f, "value {v:?} has characters the grammar excludes"),
            Self::Reserved => f.write_str("the name is defined by RFC 8461, not an extension"),
            Self::Duplicate => f.write_str("the name is already present"),
        }
    }
}

/// Why a `_mta-sts` TXT record does not parse (RFC 8461 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordReason {
    /// The record does not begin with exactly `v=STSv1`.
    VersionNotFirst,
    /// No `id=` field.
    MissingId,
    /// The `id` is not 1–32 letters or digits.
    InvalidId(String),
    /// `;;` or a field of only whitespace.
    EmptyField,
    /// A field without `=`, or whitespace where the grammar has none.
    MalformedField(String),
    /// An extension outside the grammar.
    BadExtension(String),
}

impl fmt::Display for RecordReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VersionNotFirst => f.write_str("it does not begin with exactly \"v=STSv1\""),
            Self::MissingId => f.write_str("it has no \"id=\" field"),
            Self::InvalidId(id) => write!(f, "id {id:?} is not 1 to 32 letters or digits"),
            Self::EmptyField => f.write_str("it has an empty field (\";;\")"),
            Self::MalformedField(x) => write!(f, "field {x:?} is not name=value"),
            Self::BadExtension(x) => write!(f, "field {x:?} is not a valid extension"),
        }
    }
}

/// Why a sender would not accept a policy file (RFC 8461 §3.2, §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyReason {
    /// Larger than 64 KiB (RFC 8461 §3.3).
    TooLarge(usize),
    /// A byte-order mark or UTF-16 encoding hides the first key from senders.
    Encoding(&'static str),
    /// A required field (`version`, `mode`, `max_age`) is absent.
    Missing(&'static str),
    /// `version` is not `STSv1`.
    Version {
        /// The value given.
        value: String,
        /// Its line.
        line: usize,
    },
    /// `mode` is not one of the three modes.
    Mode {
        /// The value given.
        value: String,
        /// Its line.
        line: usize,
    },
    /// `max_age` is not valid.
    MaxAge {
        /// The value given.
        value: String,
        /// Its line.
        line: usize,
    },
    /// No usable `mx` pattern while the mode is not `none`.
    NoMx,
}

impl fmt::Display for PolicyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge(n) => write!(f, "{n} bytes is larger than 64 KiB"),
            Self::Encoding(e) => write!(f, "the file is {e}"),
            Self::Missing(k) => write!(f, "no {k:?} field"),
            Self::Version { value, line } => write!(f, "line {line}: version {value:?}"),
            Self::Mode { value, line } => write!(f, "line {line}: mode {value:?}"),
            Self::MaxAge { value, line } => write!(f, "line {line}: max_age {value:?}"),
            Self::NoMx => f.write_str("no usable mx pattern while mode is not none"),
        }
    }
}
