//! RFC 8460 §3 — which domain must sign, and whether a signer's `d=` is it
//!
//! "Reports sent via SMTP MUST contain a valid DomainKeys Identified Mail (DKIM) \[RFC6376\]
//! signature by the reporting domain." (RFC 8460 §3, exactly.) The reporting domain is the
//! one the report names as its sender: the `TLS-Report-Submitter` field (RFC 8460 §5.3);
//! without it the Subject's `Submitter:` value, and without that the From address's domain.
//!
//! A signature by the reporting domain itself or by a parent of it counts (a provider signs
//! as `google.com` for reports submitted as `mx.google.com`), but never by a bare top-level
//! domain: every registrant under `com` would share it. This is not a full public-suffix
//! check: `d=co.uk` for a submitter under `co.uk` is not caught here.

use super::verdict::{DomainSource, ReportingDomain};
use crate::headers::{decode_encoded_words, parse_subject};

/// How a signer's `d=` relates to the reporting domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alignment {
    /// `d=` is the reporting domain or a parent of it with at least two labels.
    Aligned,
    /// `d=` is a parent of the reporting domain, but a single label.
    TopLevel,
    /// `d=` is another domain.
    Foreign,
}

/// The reporting domain of a message, from its top-level header fields `(name, raw value)`
/// in order, and the addresses of its From field.
pub(crate) fn reporting_domain<'a>(
    fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    from: &[String],
) -> Option<ReportingDomain> {
    let mut submitter = None;
    let mut subject = None;
    for (name, value) in fields {
        let value = String::from_utf8_lossy(value);
        if submitter.is_none() && name.eq_ignore_ascii_case(b"TLS-Report-Submitter") {
            submitter = normalize(&value);
        } else if subject.is_none() && name.eq_ignore_ascii_case(b"Subject") {
            subject = parse_subject(&decode_encoded_words(&value))
                .and_then(|fields| fields.submitter)
                .and_then(|s| normalize(&s));
        }
    }
    let from_domain = || {
        from.iter()
            .find_map(|address| address.rsplit_once('@').and_then(|(_, d)| normalize(d)))
    };
    let picked = submitter
        .map(|d| (d, DomainSource::SubmitterField))
        .or_else(|| subject.map(|d| (d, DomainSource::Subject)))
        .or_else(|| from_domain().map(|d| (d, DomainSource::From)))?;
    Some(ReportingDomain {
        domain: picked.0,
        source: picked.1,
    })
}

/// A domain as compared here: trimmed, lowercase A-labels, no trailing dot; `None` when it is
/// not a domain name at all (empty, spaces inside, an empty label, no IDNA mapping).
pub(crate) fn normalize(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.is_empty()
        || trimmed.contains(|c: char| c.is_whitespace() || c == '@')
        || trimmed.split('.').any(str::is_empty)
    {
        return None;
    }
    idna::domain_to_ascii(trimmed)
        .ok()
        .filter(|d| !d.is_empty())
}

/// Whether `signer` (a `d=` value, normalised) may sign for `reporting` (normalised).
pub(crate) fn alignment(signer: &str, reporting: &str) -> Alignment {
    let is_self_or_parent = signer == reporting
        || reporting
            .strip_suffix(signer)
            .is_some_and(|head| head.ends_with('.'));
    if !is_self_or_parent {
        Alignment::Foreign
    } else if signer.contains('.') {
        Alignment::Aligned
    } else {
        Alignment::TopLevel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8460_3_signer_is_the_reporting_domain_or_a_parent() {
        let cases = [
            ("sender.test", "sender.test", Alignment::Aligned, "itself"),
            (
                "sender.test",
                "mx.sender.test",
                Alignment::Aligned,
                "parent",
            ),
            (
                "sender.test",
                "a.b.sender.test",
                Alignment::Aligned,
                "grandparent",
            ),
            ("test", "sender.test", Alignment::TopLevel, "bare TLD"),
            ("test", "test", Alignment::TopLevel, "a TLD as submitter"),
            (
                "ender.test",
                "sender.test",
                Alignment::Foreign,
                "suffix, not a label",
            ),
            (
                "mx.sender.test",
                "sender.test",
                Alignment::Foreign,
                "a child",
            ),
            ("other.test", "sender.test", Alignment::Foreign, "a sibling"),
            ("com", "sender.test", Alignment::Foreign, "another TLD"),
        ];
        for (signer, reporting, want, why) in cases {
            assert_eq!(
                alignment(signer, reporting),
                want,
                "{signer} for {reporting}: {why}"
            );
        }
    }

    #[test]
    fn domains_are_compared_as_lowercase_a_labels() {
        let good = [
            (" Sender.TEST. ", "sender.test"),
            ("bücher.test", "xn--bcher-kva.test"),
            ("google.com", "google.com"),
        ];
        for (raw, want) in good {
            assert_eq!(normalize(raw).as_deref(), Some(want), "{raw:?}");
        }
        let bad = [
            ("", "empty"),
            ("Microsoft Corporation", "a name, not a domain"),
            ("a..b", "empty label"),
            ("user@example.com", "an address"),
        ];
        for (raw, why) in bad {
            assert_eq!(normalize(raw), None, "{raw:?}: {why}");
        }
    }

    #[test]
    fn rfc8460_5_3_submitter_field_then_subject_then_from() {
        let subject: &[u8] = b" Report Domain: a.test Submitter: subj.test Report-ID: <x@y>\r\n";
        let from = vec!["tlsrpt@from.test".to_owned()];
        let with_field = [
            (&b"Subject"[..], subject),
            (&b"tls-report-submitter"[..], &b" Field.Test\r\n"[..]),
        ];
        let got = reporting_domain(with_field, &from).unwrap();
        assert_eq!(
            (got.domain.as_str(), got.source),
            ("field.test", DomainSource::SubmitterField)
        );
        let got = reporting_domain([(&b"Subject"[..], subject)], &from).unwrap();
        assert_eq!(
            (got.domain.as_str(), got.source),
            ("subj.test", DomainSource::Subject)
        );
        let got = reporting_domain([(&b"Subject"[..], &b"hello"[..])], &from).unwrap();
        assert_eq!(
            (got.domain.as_str(), got.source),
            ("from.test", DomainSource::From)
        );
        assert_eq!(
            reporting_domain([(&b"Subject"[..], &b"hello"[..])], &[]),
            None
        );
        // An RFC 2047 encoded Subject ("Report Domain: a.test Submitter: enc.test").
        let encoded: &[u8] =
            b" =?utf-8?B?UmVwb3J0IERvbWFpbjogYS50ZXN0IFN1Ym1pdHRlcjogZW5jLnRlc3Q=?=\r\n";
        let got = reporting_domain([(&b"Subject"[..], encoded)], &from).unwrap();
        assert_eq!(
            (got.domain.as_str(), got.source),
            ("enc.test", DomainSource::Subject)
        );
    }
}
