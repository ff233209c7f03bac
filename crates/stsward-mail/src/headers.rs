//! RFC 8460 §5.3 — the header fields of a report e-mail
//!
//! A report message carries two header fields registered in RFC 8460 §6.1 and a Subject
//! that SHOULD follow a fixed form (RFC 8460 §5.3, exactly):
//!
//! ```text
//! TLS-Report-Domain: Receiver-Domain
//! TLS-Report-Submitter: Sender-Domain
//!
//! tlsrpt-subject = %s"Report" FWS               ; "Report"
//!                  %s"Domain:" FWS              ; "Domain:"
//!                  domain-name FWS              ; per [RFC6376]
//!                  %s"Submitter:" FWS           ; "Submitter:"
//!                  domain-name FWS              ; per [RFC6376]
//!                  %s"Report-ID:" FWS           ; "Report-ID:
//!                  "<" id-left "@" id-right ">" ; per [RFC5322]
//!                  [CFWS]                       ; per [RFC5322]
//!                                               ; (as with FWS)
//! ```
//!
//! Real senders bend this: Microsoft writes the Report-ID without angle brackets and
//! without `@`, Mail.ru folds the Subject after every word, and forwarding adds prefixes
//! such as `Fwd:`. The reader here unfolds, matches the keywords case-insensitively
//! anywhere after a `Report Domain:` pair, and keeps whatever Report-ID text follows,
//! without its angle brackets. A Subject written in RFC 2047 encoded-words
//! (`=?UTF-8?B?...?=`) is decoded first.

/// The report metadata found in a message's header fields.
///
/// `report_domain` and `submitter` come from `TLS-Report-Domain` and `TLS-Report-Submitter`;
/// when a field is missing they fall back to the Subject's `Domain:` and `Submitter:`
/// values. `subject_fields` keeps what the Subject said, so callers can compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportHeaders {
    /// The Policy Domain the report is about.
    pub report_domain: Option<String>,
    /// The domain of the organisation that sent the report.
    pub submitter: Option<String>,
    /// The Subject's Report-ID, without angle brackets.
    pub report_id: Option<String>,
    /// The Subject, unfolded.
    pub subject: Option<String>,
    /// The Subject's parts, when it follows the RFC 8460 §5.3 form.
    pub subject_fields: Option<SubjectFields>,
}

/// The three values of an RFC 8460 §5.3 Subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectFields {
    /// The `Domain:` value.
    pub domain: String,
    /// The `Submitter:` value, if present.
    pub submitter: Option<String>,
    /// The `Report-ID:` value without angle brackets, if present.
    pub report_id: Option<String>,
}

impl ReportHeaders {
    /// Reads the report header fields from `(name, raw value)` pairs of a message's top-level
    /// header, in order. Values may still be folded. The first occurrence of a field wins.
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut domain_field = None;
        let mut submitter_field = None;
        let mut subject = None;
        for (name, value) in fields {
            let slot = if name.eq_ignore_ascii_case("TLS-Report-Domain") {
                &mut domain_field
            } else if name.eq_ignore_ascii_case("TLS-Report-Submitter") {
                &mut submitter_field
            } else if name.eq_ignore_ascii_case("Subject") {
                &mut subject
            } else {
                continue;
            };
            if slot.is_none() {
                let value = if name.eq_ignore_ascii_case("Subject") {
                    unfold(&decode_encoded_words(value))
                } else {
                    unfold(value)
                };
                if !value.is_empty() {
                    *slot = Some(value);
                }
            }
        }
        let subject_fields = subject.as_deref().and_then(parse_subject);
        let from_subject = |pick: fn(&SubjectFields) -> Option<&String>| {
            subject_fields.as_ref().and_then(pick).cloned()
        };
        Self {
            report_domain: domain_field.or_else(|| from_subject(|s| Some(&s.domain))),
            submitter: submitter_field.or_else(|| from_subject(|s| s.submitter.as_ref())),
            report_id: from_subject(|s| s.report_id.as_ref()),
            subject,
            subject_fields,
        }
    }

    /// `true` when no report field was found at all.
    pub fn is_empty(&self) -> bool {
        self.report_domain.is_none() && self.submitter.is_none() && self.report_id.is_none()
    }
}

/// Parses an (unfolded or folded) RFC 8460 §5.3 Subject; `None` if it is not of that form.
pub fn parse_subject(subject: &str) -> Option<SubjectFields> {
    let subject = unfold(subject);
    let words: Vec<&str> = subject.split(' ').collect();
    // Find "Report" followed by a word starting with "Domain:".
    let start = words.windows(2).position(|pair| {
        matches!(pair, [r, d] if r.eq_ignore_ascii_case("report") && starts_with_key(d, "domain:"))
    })?;
    let mut fields = KeyedWords::default();
    let mut current: Option<Key> = None;
    for word in words.iter().skip(start + 1) {
        let mut rest = *word;
        for (key, text) in [
            (Key::Domain, "domain:"),
            (Key::Submitter, "submitter:"),
            (Key::ReportId, "report-id:"),
        ] {
            if starts_with_key(rest, text) && fields.get(key).is_none() {
                current = Some(key);
                fields.set(key, String::new());
                rest = rest.get(text.len()..).unwrap_or_default();
                break;
            }
        }
        if let (Some(key), false) = (current, rest.is_empty())
            && let Some(value) = fields.get_mut(key)
        {
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(rest);
        }
    }
    // Domains are single words; anything after one is a sender's extra text.
    let first_word = |v: String| {
        v.split(' ')
            .next()
            .map(str::to_owned)
            .filter(|w| !w.is_empty())
    };
    let domain = fields.domain.and_then(first_word)?;
    let submitter = fields.submitter.and_then(first_word);
    let report_id = fields.report_id.and_then(|id| {
        let id = id.trim();
        let id = id.strip_prefix('<').unwrap_or(id);
        let id = id.strip_suffix('>').unwrap_or(id);
        let id = id.trim();
        (!id.is_empty()).then(|| id.to_owned())
    });
    Some(SubjectFields {
        domain,
        submitter,
        report_id,
    })
}

#[derive(Debug, Clone, Copy)]
enum Key {
    Domain,
    Submitter,
    ReportId,
}

#[derive(Default)]
struct KeyedWords {
    domain: Option<String>,
    submitter: Option<String>,
    report_id: Option<String>,
}

impl KeyedWords {
    fn slot(&mut self, key: Key) -> &mut Option<String> {
        match key {
            Key::Domain => &mut self.domain,
            Key::Submitter => &mut self.submitter,
            Key::ReportId => &mut self.report_id,
        }
    }
    fn get(&mut self, key: Key) -> Option<&String> {
        self.slot(key).as_ref()
    }
    fn get_mut(&mut self, key: Key) -> Option<&mut String> {
        self.slot(key).as_mut()
    }
    fn set(&mut self, key: Key, value: String) {
        *self.slot(key) = Some(value);
    }
}

fn starts_with_key(word: &str, key: &str) -> bool {
    word.get(..key.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(key))
}

/// RFC 2047 §2 encoded-words (`=?charset?B?...?=`, `=?charset?Q?...?=`) in an unstructured
/// field value such as the Subject, decoded to text as a mail reader shows them; the value
/// is also unfolded. Text without encoded-words is returned as it is.
pub fn decode_encoded_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_owned();
    }
    let mut bytes = value.as_bytes().to_vec();
    // The parser reads up to the end of the field, which a line break marks.
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    match mail_parser::parsers::MessageStream::new(&bytes).parse_unstructured() {
        mail_parser::HeaderValue::Text(text) => text.into_owned(),
        _ => value.to_owned(),
    }
}

/// RFC 5322 §2.2.3 unfolding, plus collapsing runs of white space to one space: every
/// value read here is a list of words, where the amount of space carries no meaning.
fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(domain: &str, submitter: Option<&str>, id: Option<&str>) -> SubjectFields {
        SubjectFields {
            domain: domain.into(),
            submitter: submitter.map(Into::into),
            report_id: id.map(Into::into),
        }
    }

    #[test]
    fn rfc8460_5_3_subject_forms() {
        let good = [
            (
                // The RFC's example, folded over three lines.
                "Report Domain: example.net\r\n    Submitter: mail.sender.example.com\r\n    \
                 Report-ID: <735ff.e317+bf22029@mailexample.net>",
                fields(
                    "example.net",
                    Some("mail.sender.example.com"),
                    Some("735ff.e317+bf22029@mailexample.net"),
                ),
            ),
            (
                "Report Domain: krvtz.net Submitter: google.com Report-ID: \
                 <2024.09.15T00.00.00Z+krvtz.net@google.com>",
                fields(
                    "krvtz.net",
                    Some("google.com"),
                    Some("2024.09.15T00.00.00Z+krvtz.net@google.com"),
                ),
            ),
            (
                // Microsoft: no angle brackets, no '@', folded before the id.
                "Report Domain: example.com Submitter: microsoft.com Report-ID:\n \
                 134232617934286362+example.com",
                fields(
                    "example.com",
                    Some("microsoft.com"),
                    Some("134232617934286362+example.com"),
                ),
            ),
            (
                // Mail.ru: folded after every word.
                "Report\r\n Domain: krvtz.net\r\n Submitter: mail.ru\r\n Report-ID: \
                 <c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.ru>",
                fields(
                    "krvtz.net",
                    Some("mail.ru"),
                    Some("c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.ru"),
                ),
            ),
            (
                // Forwarded, lowercase keywords, no space after the colons.
                "Fwd: report domain:example.org submitter:mx.example report-id:<x@y>",
                fields("example.org", Some("mx.example"), Some("x@y")),
            ),
            (
                "Report Domain: example.org",
                fields("example.org", None, None),
            ),
        ];
        for (subject, want) in good {
            assert_eq!(parse_subject(subject), Some(want), "{subject:?}");
        }
    }

    #[test]
    fn rfc8460_5_3_subjects_that_are_not_reports() {
        let bad = [
            (
                "Cron <root@nagual> /usr/local/bin/suricata-update",
                "a cron mail",
            ),
            ("Report Domain:", "no domain value"),
            ("Domain: example.com Submitter: x", "no leading 'Report'"),
            ("", "empty"),
        ];
        for (subject, reason) in bad {
            assert_eq!(parse_subject(subject), None, "{subject:?}: {reason}");
        }
    }

    #[test]
    fn rfc8460_5_3_header_fields_win_over_the_subject() {
        let h = ReportHeaders::from_fields([
            ("From", " tlsrpt@example"),
            (
                "Subject",
                " Report Domain: subject.example Submitter: s.example\r\n Report-ID: <id@s>\r\n",
            ),
            ("tls-report-domain", " header.example\r\n"),
            ("TLS-Report-Submitter", "\r\n\tsubmitter.example\r\n"),
        ]);
        assert_eq!(h.report_domain.as_deref(), Some("header.example"));
        assert_eq!(h.submitter.as_deref(), Some("submitter.example"));
        assert_eq!(h.report_id.as_deref(), Some("id@s"));
        assert_eq!(
            h.subject.as_deref(),
            Some("Report Domain: subject.example Submitter: s.example Report-ID: <id@s>")
        );
        assert_eq!(
            h.subject_fields.map(|s| s.domain),
            Some("subject.example".into())
        );
    }

    #[test]
    fn rfc8460_5_3_subject_fills_in_missing_header_fields() {
        let h = ReportHeaders::from_fields([(
            "Subject",
            "Report Domain: example.net Submitter: mx.example Report-ID: <a@b>",
        )]);
        assert_eq!(h.report_domain.as_deref(), Some("example.net"));
        assert_eq!(h.submitter.as_deref(), Some("mx.example"));
        assert!(!h.is_empty());
    }

    #[test]
    fn rfc2047_encoded_subject_is_decoded() {
        // "Report Domain: bücher.test Submitter: mail.example Report-ID: <a@b>", the domain in
        // a Q encoded-word and the whole tail in a B encoded-word, folded between them.
        let h = ReportHeaders::from_fields([(
            "Subject",
            " Report Domain: =?UTF-8?Q?b=C3=BCcher=2Etest?=\r\n =?utf-8?B?IFN1Ym1pdHRlcjogbWFpbC5leGFtcGxlIFJlcG9ydC1JRDogPGFAYj4=?=\r\n",
        )]);
        assert_eq!(
            h.subject.as_deref(),
            Some("Report Domain: bücher.test Submitter: mail.example Report-ID: <a@b>")
        );
        assert_eq!(h.report_domain.as_deref(), Some("bücher.test"));
        assert_eq!(h.submitter.as_deref(), Some("mail.example"));
        assert_eq!(h.report_id.as_deref(), Some("a@b"));
        // Text that only looks a little like an encoded-word stays as it is.
        assert_eq!(decode_encoded_words("cost =? 3"), "cost =? 3");
        assert_eq!(decode_encoded_words("plain"), "plain");
    }

    #[test]
    fn plain_mail_has_no_report_headers() {
        let h = ReportHeaders::from_fields([("Subject", "hello"), ("From", "a@b")]);
        assert!(h.is_empty());
        assert_eq!(h.subject.as_deref(), Some("hello"));
    }

    proptest::proptest! {
        #[test]
        fn parse_subject_never_panics(s in "\\PC{0,120}") {
            let _ = parse_subject(&s);
        }
    }
}
