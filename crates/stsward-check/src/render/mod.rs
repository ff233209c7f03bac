//! Rendering reports for people ([`text`]) and machines ([`json`], `spec/findings.md`)
//!
//! Both renderers take a finished [`crate::CheckReport`] and write nothing themselves: they
//! return strings, so the CLI decides where output goes and tests compare it directly.

pub mod escape;
pub mod json;
pub mod text;

use stsward_proto::Code;

/// The area a finding belongs to, in the order the text output shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// `_mta-sts` TXT record (RFC 8461 §3.1).
    StsRecord,
    /// Policy fetch and content (RFC 8461 §3.2, §3.3).
    Policy,
    /// Policy versus MX (RFC 8461 §4.1).
    MxCoverage,
    /// One MX host (RFC 8461 §4.2, RFC 3207).
    MxHost,
    /// DANE (RFC 7672).
    Dane,
    /// `_smtp._tls` TXT record (RFC 8460 §3).
    TlsRpt,
}

impl Area {
    /// The area of a code, from its stable dotted prefix.
    pub fn of(code: Code) -> Area {
        let name = code.as_str();
        if name.starts_with("sts.txt.") {
            Area::StsRecord
        } else if name.starts_with("sts.mx.") {
            Area::MxCoverage
        } else if name.starts_with("sts.") {
            Area::Policy
        } else if name.starts_with("mx.") {
            Area::MxHost
        } else if name.starts_with("dane.") || name.starts_with("dns.") {
            Area::Dane
        } else {
            Area::TlsRpt
        }
    }
}

#[cfg(test)]
mod tests;
