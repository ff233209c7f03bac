//! RFC 8460 §5.3 and RFC 2045 — recognising the report parts of a message
//!
//! Which MIME parts hold a report, what they are called, and how to read a part whose
//! transfer encoding mail-parser could not decode. The rules are listed in [`crate::extract`].

use mail_parser::{Message, MimeHeaders};

use crate::ReportFilename;

const TLSRPT_TYPES: [&str; 3] = [
    "application/tlsrpt+gzip",
    "application/tlsrpt+json",
    "application/tlsrpt",
];
const ARCHIVE_TYPES: [&str; 5] = [
    "application/gzip",
    "application/x-gzip",
    "application/zip",
    "application/x-zip",
    "application/x-zip-compressed",
];
const GENERIC_TYPES: [&str; 2] = ["application/octet-stream", "application/json"];
/// Endings that mark a generic attachment as a report; also used for bare file names.
pub(crate) const REPORT_NAME_ENDINGS: [&str; 3] = [".json", ".gz", ".zip"];

pub(crate) fn is_report_part(content_type: &str, name: Option<&str>, in_tlsrpt: bool) -> bool {
    let name_hint = name.is_some_and(|n| {
        let n = n.to_ascii_lowercase();
        REPORT_NAME_ENDINGS.iter().any(|e| n.ends_with(e))
    });
    TLSRPT_TYPES.contains(&content_type)
        || (ARCHIVE_TYPES.contains(&content_type) && (in_tlsrpt || name_hint))
        || (GENERIC_TYPES.contains(&content_type) && name_hint)
        || name.is_some_and(|n| base_name(n).parse::<ReportFilename>().is_ok())
}

pub(crate) fn is_tlsrpt_report(message: &Message<'_>) -> bool {
    message.parts.first().is_some_and(|root| {
        media_type(root) == "multipart/report"
            && root
                .content_type()
                .and_then(|ct| ct.attribute("report-type"))
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("tlsrpt"))
    })
}

/// The part's media type as lowercase `type/subtype`; RFC 2045 §5.2's `text/plain` default
/// when there is no Content-Type.
pub(crate) fn media_type(part: &mail_parser::MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
            None => ct.c_type.to_ascii_lowercase(),
        },
        None => "text/plain".to_owned(),
    }
}

/// RFC 5322 §3.6.8: `field-name = 1*ftext`, printable ASCII except `:`. mail-parser
/// accepts any line as a header name, so binary or prose input would otherwise pass as a
/// message with one odd header.
pub(crate) fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// The last path component: zip entries and some clients' names carry directories.
pub(crate) fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// The top-level header fields as `(name, raw value)`, values as written (maybe folded).
pub(crate) fn raw_fields(message: &Message<'_>) -> Vec<(String, String)> {
    message
        .headers()
        .iter()
        .map(|h| {
            let raw = message
                .raw_message
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            (
                h.name.as_str().to_owned(),
                String::from_utf8_lossy(raw).into_owned(),
            )
        })
        .collect()
}

/// Decodes base64 text line by line up to the first line that is not base64 (such as a
/// boundary line); `None` when nothing decodes.
pub(crate) fn decode_base64_lines(text: &[u8]) -> Option<Vec<u8>> {
    let is_b64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    let mut joined = Vec::with_capacity(text.len());
    for line in text.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if !line.iter().all(is_b64) {
            break;
        }
        joined.extend_from_slice(line);
    }
    mail_parser::decoders::base64::base64_decode(&joined).filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8460_5_3_which_parts_are_reports() {
        let cases = [
            (
                "application/tlsrpt+gzip",
                None,
                false,
                true,
                "RFC media type",
            ),
            (
                "application/tlsrpt+json",
                None,
                false,
                true,
                "RFC media type",
            ),
            (
                "application/tlsrpt",
                None,
                false,
                true,
                "seen raw in the wild",
            ),
            (
                "application/gzip",
                None,
                true,
                true,
                "inside a tlsrpt report",
            ),
            (
                "application/gzip",
                None,
                false,
                false,
                "no name, no report type",
            ),
            ("application/x-gzip", Some("r.gz"), false, true, "named .gz"),
            ("application/zip", Some("r.zip"), false, true, "named .zip"),
            (
                "application/octet-stream",
                Some("r.json.gz"),
                false,
                true,
                "named",
            ),
            (
                "application/octet-stream",
                Some("r.pdf"),
                true,
                false,
                "a PDF",
            ),
            (
                "application/json",
                Some("r.json"),
                false,
                true,
                "named .json",
            ),
            ("text/plain", None, true, false, "the human-readable part"),
            (
                "text/html",
                None,
                true,
                false,
                "Microsoft's human-readable part",
            ),
            (
                "text/plain",
                Some("a.example!b.example!1!2.json"),
                false,
                true,
                "§5.1 name",
            ),
        ];
        for (ct, name, in_tlsrpt, want, reason) in cases {
            assert_eq!(
                is_report_part(ct, name, in_tlsrpt),
                want,
                "{ct} {name:?}: {reason}"
            );
        }
    }

    #[test]
    fn base64_recovery_stops_at_the_first_non_base64_line() {
        assert_eq!(
            decode_base64_lines(b"e30=\r\n\r\n--boundary--\r\nZZZZ").as_deref(),
            Some(&b"{}"[..])
        );
        assert_eq!(
            decode_base64_lines(b"eyJh\r\nIjoxfQ==\r\n").as_deref(),
            Some(&br#"{"a":1}"#[..])
        );
        assert_eq!(decode_base64_lines(b"--not base64"), None);
    }

    #[test]
    fn base_name_drops_directories() {
        assert_eq!(base_name("reports/a!b!1!2.json"), "a!b!1!2.json");
        assert_eq!(base_name("C:\\x\\a.json"), "a.json");
        assert_eq!(base_name("a.json"), "a.json");
    }
}
