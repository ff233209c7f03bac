//! RFC 8460 §5.3 — taking the reports out of a report e-mail or a report file
//!
//! RFC 8460 §5.3 asks for a `multipart/report; report-type="tlsrpt"` message (RFC 6522)
//! whose machine-readable part is `application/tlsrpt+json`, or `application/tlsrpt+gzip`
//! when compressed (both media types are registered in RFC 8460 §6):
//!
//! ```text
//! multipart/report; report-type="tlsrpt"
//! ├── text/plain (or text/html)               the human-readable part
//! └── application/tlsrpt+gzip                 sender!policy-domain!begin!end[!id].json.gz
//! ```
//!
//! Senders stray from this, so a part is taken as a report when
//! - its media type is `application/tlsrpt+gzip`, `application/tlsrpt+json` or
//!   `application/tlsrpt` (seen raw, with no Content-Transfer-Encoding); or
//! - it is `application/gzip`, `application/x-gzip`, `application/zip`,
//!   `application/x-zip(-compressed)` inside a tlsrpt report, or anywhere when its name ends
//!   in `.json`, `.json.gz`, `.gz` or `.zip`; or
//! - it is `application/octet-stream` or `application/json` with such a name; or
//! - its name follows the RFC 8460 §5.1 file name convention, whatever its media type.
//!
//! Compression is then decided by the bytes (gzip or zip magic), not by the label, since
//! labels lie in both directions. A forwarded report (`message/rfc822`) is searched too.
//! The result holds report bytes only: parsing the JSON is the caller's job.
//! No DKIM verification happens here; the DKIM-Signature values are kept for it.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::parts::{
    REPORT_NAME_ENDINGS, base_name, decode_base64_lines, is_field_name, is_report_part,
    is_tlsrpt_report, media_type, raw_fields,
};

use crate::decompress::{GZIP_MAGIC, Limits, ZIP_MAGIC, gunzip, unzip_reports};
use crate::{MailError, ReportFilename, ReportHeaders};

/// The UTF-8 byte order mark, which some senders put before a JSON report.
const UTF8_BOM: [u8; 3] = [0xef, 0xbb, 0xbf];
/// How deep forwarded messages (`message/rfc822` inside `message/rfc822`) are searched.
const MAX_NESTED_MESSAGES: usize = 3;

/// How a report was packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain JSON.
    None,
    /// Gzip (RFC 1952), possibly several members.
    Gzip,
    /// A zip archive entry (itself maybe a `.json.gz`).
    Zip,
}

/// Where a report came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// The part's media type, lowercase `type/subtype`; `None` for a bare file.
    pub content_type: Option<String>,
    /// The attachment's name (Content-Disposition `filename`, else Content-Type `name`,
    /// RFC 2231 and RFC 2047 decoded), or the bare file's name.
    pub file_name: Option<String>,
    /// The entry's name inside a zip archive.
    pub entry_name: Option<String>,
    /// How the report was packed.
    pub compression: Compression,
}

/// One report's bytes and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedReport {
    /// The report, decompressed, without a UTF-8 byte order mark. It starts with `{` after
    /// optional white space; it has not been parsed.
    pub json: Vec<u8>,
    /// Where it came from.
    pub part: PartInfo,
    /// The zip entry's or attachment's name read as an RFC 8460 §5.1 file name, when it
    /// follows that convention.
    pub filename: Option<ReportFilename>,
}

/// A part that looked like a report but could not be read.
#[derive(Debug)]
pub struct SkippedPart {
    /// Which part.
    pub part: PartInfo,
    /// Why it was skipped.
    pub error: MailError,
}

/// Everything taken from one message or file.
#[derive(Debug)]
pub struct Extracted {
    /// The reports, in message order. Never empty in an `Ok` result.
    pub reports: Vec<ExtractedReport>,
    /// The RFC 8460 §5.3 header fields of the (outer) message; `None` for a bare file.
    pub headers: Option<ReportHeaders>,
    /// Whether the message is `multipart/report` with `report-type=tlsrpt`.
    pub tlsrpt_report_type: bool,
    /// The raw values of the message's DKIM-Signature fields, in order, for verification.
    pub dkim_signatures: Vec<String>,
    /// Report-like parts that could not be read, next to ones that could.
    pub skipped: Vec<SkippedPart>,
}

/// Extracts the TLS-RPT reports from an RFC 5322 message.
///
/// Fails with [`MailError::NoReport`] when no part looks like a report, and with the first
/// part's error when every report-like part failed.
pub fn extract_from_message(raw: &[u8], limits: &Limits) -> Result<Extracted, MailError> {
    check_input_size(raw, limits, "the message")?;
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| m.headers().iter().any(|h| is_field_name(h.name.as_str())))
        .ok_or(MailError::NotAMessage)?;
    let fields = raw_fields(&message);
    let headers = ReportHeaders::from_fields(fields.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let dkim_signatures = fields
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("DKIM-Signature"))
        .map(|(_, value)| value.clone())
        .collect();
    let mut walk = Walk::new(limits);
    let tlsrpt_report_type = is_tlsrpt_report(&message);
    walk.message(&message, 0);
    let extracted = Extracted {
        reports: std::mem::take(&mut walk.reports),
        headers: Some(headers),
        tlsrpt_report_type,
        dkim_signatures,
        skipped: std::mem::take(&mut walk.skipped),
    };
    finish(extracted, walk.content_types_seen)
}

/// Extracts the reports from a bare file: gzip, zip, JSON or an RFC 5322 message, told
/// apart by their first bytes. `file_name` is only a hint (a `.json`, `.gz` or `.zip` name
/// whose bytes are none of these is reported as not JSON rather than read as a message).
pub fn extract_from_file(
    file_name: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Extracted, MailError> {
    let label = format!("file {file_name:?}");
    check_input_size(bytes, limits, &label)?;
    let start = skip_bom_and_space(bytes);
    if start.is_empty() {
        return Err(MailError::Empty { part: label });
    }
    let lower = file_name.to_ascii_lowercase();
    let packed = bytes.starts_with(&GZIP_MAGIC) || bytes.starts_with(&ZIP_MAGIC);
    let named_as_report = REPORT_NAME_ENDINGS.iter().any(|e| lower.ends_with(e));
    if !(packed || start.starts_with(b"{") || named_as_report) {
        return extract_from_message(bytes, limits);
    }
    let part = PartInfo {
        content_type: None,
        file_name: (!file_name.is_empty()).then(|| file_name.to_owned()),
        entry_name: None,
        compression: Compression::None,
    };
    let mut walk = Walk::new(limits);
    walk.payload(bytes, part, &label);
    let extracted = Extracted {
        reports: std::mem::take(&mut walk.reports),
        headers: None,
        tlsrpt_report_type: false,
        dkim_signatures: Vec::new(),
        skipped: std::mem::take(&mut walk.skipped),
    };
    finish(extracted, walk.content_types_seen)
}

fn finish(
    mut extracted: Extracted,
    content_types_seen: Vec<String>,
) -> Result<Extracted, MailError> {
    if !extracted.reports.is_empty() {
        return Ok(extracted);
    }
    if extracted.skipped.is_empty() {
        return Err(MailError::NoReport { content_types_seen });
    }
    Err(extracted.skipped.swap_remove(0).error)
}

fn check_input_size(bytes: &[u8], limits: &Limits, what: &str) -> Result<(), MailError> {
    if bytes.len() as u64 > limits.max_input {
        return Err(MailError::TooLarge {
            limit: limits.max_input,
            what: format!("{what} ({} bytes)", bytes.len()),
        });
    }
    Ok(())
}

/// The state of one extraction: what was found, and how much of the budget is used.
struct Walk<'l> {
    limits: &'l Limits,
    reports: Vec<ExtractedReport>,
    skipped: Vec<SkippedPart>,
    content_types_seen: Vec<String>,
    used: u64,
}

impl<'l> Walk<'l> {
    fn new(limits: &'l Limits) -> Self {
        Self {
            limits,
            reports: Vec::new(),
            skipped: Vec::new(),
            content_types_seen: Vec::new(),
            used: 0,
        }
    }

    fn message(&mut self, message: &Message<'_>, depth: usize) {
        let in_tlsrpt = is_tlsrpt_report(message);
        for (index, part) in message.parts.iter().enumerate() {
            let content_type = media_type(part);
            if !self.content_types_seen.contains(&content_type) {
                self.content_types_seen.push(content_type.clone());
            }
            let body: &[u8] = match &part.body {
                PartType::Multipart(_) => continue,
                PartType::Message(nested) => {
                    if depth < MAX_NESTED_MESSAGES {
                        self.message(nested, depth + 1);
                    }
                    continue;
                }
                PartType::Text(text) | PartType::Html(text) => text.as_bytes(),
                PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes,
            };
            let name = part.attachment_name().map(str::to_owned);
            if !is_report_part(&content_type, name.as_deref(), in_tlsrpt) {
                continue;
            }
            let label = match &name {
                Some(name) => format!("attachment {name:?} ({content_type})"),
                None => format!("part {index} ({content_type})"),
            };
            let info = PartInfo {
                content_type: Some(content_type),
                file_name: name,
                entry_name: None,
                compression: Compression::None,
            };
            let recovered;
            let body = if part.is_encoding_problem
                && part
                    .content_transfer_encoding()
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"))
            {
                // mail-parser leaves the text undecoded when the part has no closing
                // boundary (seen in a truncated sample); the base64 itself is often whole.
                match decode_base64_lines(body) {
                    Some(bytes) => {
                        recovered = bytes;
                        &recovered[..]
                    }
                    None => {
                        self.skipped.push(SkippedPart {
                            error: MailError::TransferEncoding {
                                part: label,
                                encoding: "base64".to_owned(),
                            },
                            part: info,
                        });
                        continue;
                    }
                }
            } else {
                body
            };
            self.payload(body, info, &label);
        }
    }

    /// Decodes one report-like payload; failures go to `skipped`.
    fn payload(&mut self, bytes: &[u8], info: PartInfo, label: &str) {
        if let Err(error) = self.try_payload(bytes, &info, label) {
            self.skipped.push(SkippedPart { part: info, error });
        }
    }

    fn try_payload(&mut self, bytes: &[u8], info: &PartInfo, label: &str) -> Result<(), MailError> {
        let remaining = self.limits.max_total_decompressed.saturating_sub(self.used);
        let limit = self.limits.max_decompressed.min(remaining);
        if bytes.starts_with(&ZIP_MAGIC) {
            let entries = unzip_reports(bytes, self.limits, remaining, label)?;
            for entry in entries {
                let entry_label = format!("{label}: zip entry {:?}", entry.name);
                let json = json_report(entry.data, &entry_label)?;
                let part = PartInfo {
                    entry_name: Some(entry.name),
                    compression: Compression::Zip,
                    ..info.clone()
                };
                self.push(json, part)?;
            }
            return Ok(());
        }
        let (data, compression) = if bytes.starts_with(&GZIP_MAGIC) {
            (gunzip(bytes, limit, label)?, Compression::Gzip)
        } else {
            if bytes.len() as u64 > limit {
                return Err(MailError::TooLarge {
                    limit,
                    what: format!("{label}: the report"),
                });
            }
            (bytes.to_vec(), Compression::None)
        };
        let json = json_report(data, label)?;
        let part = PartInfo {
            compression,
            ..info.clone()
        };
        self.push(json, part)
    }

    fn push(&mut self, json: Vec<u8>, part: PartInfo) -> Result<(), MailError> {
        if self.reports.len() >= self.limits.max_reports {
            return Err(MailError::TooLarge {
                limit: self.limits.max_reports as u64,
                what: "the number of reports in one input".to_owned(),
            });
        }
        self.used = self.used.saturating_add(json.len() as u64);
        let filename = [part.entry_name.as_deref(), part.file_name.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|name| base_name(name).parse::<ReportFilename>().ok());
        self.reports.push(ExtractedReport {
            json,
            part,
            filename,
        });
        Ok(())
    }
}

/// Checks that decoded bytes start like a JSON object and drops a UTF-8 byte order mark.
fn json_report(mut data: Vec<u8>, label: &str) -> Result<Vec<u8>, MailError> {
    let rest = skip_bom_and_space(&data);
    if rest.is_empty() {
        return Err(MailError::Empty {
            part: label.to_owned(),
        });
    }
    if !rest.starts_with(b"{") {
        let start = rest.get(..16).unwrap_or(rest);
        return Err(MailError::NotJson {
            part: label.to_owned(),
            start: String::from_utf8_lossy(start).into_owned(),
        });
    }
    if data.starts_with(&UTF8_BOM) {
        data.drain(..UTF8_BOM.len());
    }
    Ok(data)
}

fn skip_bom_and_space(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(&UTF8_BOM[..]).unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_report_strips_bom_and_rejects_non_objects() {
        assert_eq!(
            json_report(b"\xef\xbb\xbf {}".to_vec(), "x").unwrap(),
            b" {}"
        );
        let bad = [
            (&b""[..], "empty"),
            (&b" \r\n"[..], "white space only"),
            (&b"<?xml version"[..], "a DMARC report"),
            (&b"[1]"[..], "an array"),
        ];
        for (data, reason) in bad {
            assert!(json_report(data.to_vec(), "x").is_err(), "{reason}");
        }
    }

    #[test]
    fn part_without_closing_boundary_is_still_read() {
        let raw = b"Subject: r\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nhuman\r\n\
            --b\r\nContent-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: base64\r\n\r\n\
            eyJhIjoxfQ==\r\n";
        let got = extract_from_message(raw, &Limits::default()).unwrap();
        assert_eq!(got.reports[0].json, br#"{"a":1}"#);
    }
}
