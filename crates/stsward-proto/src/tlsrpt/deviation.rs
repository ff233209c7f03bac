//! RFC 8460 §4.4 — how a received report strays from the schema
//!
//! Real senders do not all follow RFC 8460 §4.4 to the letter (the RFC's own prose and its
//! example disagree on some key names, and errata 6241 changed `mx-host` to an array). The
//! lenient parser accepts what they send and records every such departure as a [`Deviation`]
//! with a stable `code`, so that nothing is silently defaulted and the dashboard can say which
//! sender does what.

use std::fmt;

use serde::Serialize;

/// One departure from RFC 8460 §4.4 found while parsing a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deviation {
    /// A stable, machine-readable code, one of the constants in [`codes`].
    pub code: &'static str,
    /// Where in the report, as a JSON pointer (RFC 6901), e.g. `/policies/0/policy/mx-host`.
    pub path: String,
    /// What was seen and what was made of it, as a sentence.
    pub message: String,
}

impl Deviation {
    pub(crate) fn new(
        code: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Deviation {
            code,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.code, self.path, self.message)
    }
}

/// The stable deviation codes. Codes are public API, like finding codes: once released, a
/// code keeps its meaning.
pub mod codes {
    /// The input began with a UTF-8 byte-order mark, which RFC 8259 §8.1 forbids.
    pub const BOM: &str = "bom";
    /// `policies` is an empty array: the report says nothing.
    pub const POLICIES_EMPTY: &str = "policies-empty";
    /// An optional member is JSON `null` (e.g. `"contact-info": null`); read as absent.
    pub const NULL_VALUE: &str = "null-value";
    /// A date-time without `Z` or an offset; read as UTC.
    pub const DATETIME_NO_OFFSET: &str = "datetime-no-offset";
    /// A date-time with a space instead of `T` between date and time.
    pub const DATETIME_SEPARATOR: &str = "datetime-separator";
    /// `end-datetime` is before `start-datetime`.
    pub const DATE_RANGE_INVERTED: &str = "date-range-inverted";
    /// `mx-host` is a single string (the RFC text) instead of an array (errata 6241).
    pub const MX_HOST_STRING: &str = "mx-host-string";
    /// `mx-host` is an empty string: no pattern at all.
    pub const MX_HOST_EMPTY: &str = "mx-host-empty";
    /// The prose key `mx-host-pattern` instead of the schema key `mx-host`.
    pub const MX_HOST_PATTERN_KEY: &str = "mx-host-pattern-key";
    /// `policy-string` is a single string instead of an array.
    pub const POLICY_STRING_STRING: &str = "policy-string-string";
    /// An `sts` or `tlsa` policy without `policy-string`.
    pub const POLICY_STRING_MISSING: &str = "policy-string-missing";
    /// A `tlsa` policy whose one `policy-string` element is itself a JSON-encoded array of
    /// records (Microsoft); the records were unpacked.
    pub const TLSA_POLICY_STRING_JSON: &str = "tlsa-policy-string-json";
    /// `policy-domain` is missing.
    pub const POLICY_DOMAIN_MISSING: &str = "policy-domain-missing";
    /// A `policy-type` that RFC 8460 §4.4 does not define; kept as is.
    pub const POLICY_TYPE_UNKNOWN: &str = "policy-type-unknown";
    /// `total-failure-session-count` is missing. The model keeps it absent; the sum of the
    /// failure details is only an estimate, since RFC 8460 §4 lets failure counts overlap.
    pub const TOTAL_FAILURE_MISSING: &str = "total-failure-missing";
    /// A session count written as a JSON string (`"5"`); read as the number.
    pub const COUNT_STRING: &str = "count-string";
    /// A session count written with a fraction or an exponent (`5.0`, `5e0`) that is a whole
    /// number; read as that number.
    pub const COUNT_FLOAT: &str = "count-float";
    /// A `result-type` that RFC 8460 §4.3 does not define; kept as is.
    pub const RESULT_TYPE_UNKNOWN: &str = "result-type-unknown";
    /// `sending-mta-ip` is missing from a failure detail.
    pub const SENDING_MTA_IP_MISSING: &str = "sending-mta-ip-missing";
    /// `sending-mta-ip` is an empty string.
    pub const SENDING_MTA_IP_EMPTY: &str = "sending-mta-ip-empty";
    /// `sending-mta-ip` is not an IP address (e.g. `x.x.x.x`); the string is kept.
    pub const SENDING_MTA_IP_INVALID: &str = "sending-mta-ip-invalid";
    /// `receiving-ip` is not an IP address; the string is kept.
    pub const RECEIVING_IP_INVALID: &str = "receiving-ip-invalid";
    /// The prose key `additional-info-uri` instead of the schema key `additional-information`.
    pub const ADDITIONAL_INFO_URI_KEY: &str = "additional-info-uri-key";
    /// The pre-RFC draft key `failure-error-code` instead of `failure-reason-code`.
    pub const FAILURE_ERROR_CODE_KEY: &str = "failure-error-code-key";
    /// Both a schema key and its alias are present; the schema key was used and the alias
    /// kept as an extension.
    pub const DUPLICATE_ALIAS: &str = "duplicate-alias";

    /// Every code, for documentation and tests.
    pub const ALL: &[&str] = &[
        BOM,
        POLICIES_EMPTY,
        NULL_VALUE,
        DATETIME_NO_OFFSET,
        DATETIME_SEPARATOR,
        DATE_RANGE_INVERTED,
        MX_HOST_STRING,
        MX_HOST_EMPTY,
        MX_HOST_PATTERN_KEY,
        POLICY_STRING_STRING,
        POLICY_STRING_MISSING,
        TLSA_POLICY_STRING_JSON,
        POLICY_DOMAIN_MISSING,
        POLICY_TYPE_UNKNOWN,
        TOTAL_FAILURE_MISSING,
        COUNT_STRING,
        COUNT_FLOAT,
        RESULT_TYPE_UNKNOWN,
        SENDING_MTA_IP_MISSING,
        SENDING_MTA_IP_EMPTY,
        SENDING_MTA_IP_INVALID,
        RECEIVING_IP_INVALID,
        ADDITIONAL_INFO_URI_KEY,
        FAILURE_ERROR_CODE_KEY,
        DUPLICATE_ALIAS,
    ];
}
