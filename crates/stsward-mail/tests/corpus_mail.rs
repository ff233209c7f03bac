//! RFC 8460 §5 report e-mails and files: the real-world corpus and hand-made edge cases.

use std::io::Write;
use std::path::PathBuf;

use stsward_mail::{
    Compression, Limits, MailError, ReportFilename, extract_from_file, extract_from_message,
};

fn corpus() -> Option<PathBuf> {
    stsward_testkit::corpus("stsward-mail/corpus_mail")
}

fn read_corpus(relative: &str) -> Option<Vec<u8>> {
    let path = corpus()?.join(relative);
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn assert_json_object(bytes: &[u8], what: &str) {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    assert!(value.is_object(), "{what}: JSON but not an object");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A report message with the given `(part headers, body)` attachments after a text part.
fn report_message(content_type: &str, attachments: &[(String, String)]) -> Vec<u8> {
    let mut m = String::from(
        "From: tlsrpt@mx.example\r\nTo: rua@example.net\r\n\
         Subject: Report Domain: example.net Submitter: mx.example Report-ID: <r1@mx.example>\r\n\
         TLS-Report-Domain: example.net\r\nTLS-Report-Submitter: mx.example\r\n\
         MIME-Version: 1.0\r\n",
    );
    m.push_str(&format!(
        "Content-Type: {content_type}; boundary=\"BOUND\"\r\n\r\n"
    ));
    m.push_str("--BOUND\r\nContent-Type: text/plain\r\n\r\nThis is a TLS report.\r\n");
    for (headers, body) in attachments {
        m.push_str(&format!("--BOUND\r\n{headers}\r\n\r\n{body}\r\n"));
    }
    m.push_str("--BOUND--\r\n");
    m.into_bytes()
}

const REPORT: &[u8] = br#"{"organization-name":"MX","date-range":{"start-datetime":"2024-01-01T00:00:00Z","end-datetime":"2024-01-01T23:59:59Z"},"contact-info":"tlsrpt@mx.example","report-id":"r1","policies":[]}"#;

#[test]
fn rfc8460_5_3_every_corpus_eml_yields_one_json_report_or_no_report() {
    let Some(root) = corpus() else { return };
    let dir = root.join("tlsrpt/eml");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        15,
        "corpus tlsrpt/eml/ should hold 15 messages"
    );
    for path in names {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let raw = std::fs::read(&path).unwrap();
        let result = extract_from_message(&raw, &Limits::default());
        if file == "tlsrpt-rs__empty.eml" {
            match result {
                Err(MailError::NoReport { content_types_seen }) => {
                    assert_eq!(content_types_seen, ["text/plain"], "{file}")
                }
                other => panic!("{file}: expected NoReport, got {other:?}"),
            }
            continue;
        }
        let got = result.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(got.reports.len(), 1, "{file}");
        assert!(got.skipped.is_empty(), "{file}: skipped {:?}", got.skipped);
        assert!(got.tlsrpt_report_type, "{file}: report-type=tlsrpt");
        assert_json_object(&got.reports[0].json, &file);
        // The same bytes read as a bare file give the same report.
        let as_file = extract_from_file(&file, &raw, &Limits::default()).unwrap();
        assert_eq!(as_file.reports[0].json, got.reports[0].json, "{file}");
    }
}

#[test]
fn rfc8460_5_1_and_5_3_corpus_file_names_and_header_fields() {
    struct Case {
        file: &'static str,
        name: (&'static str, &'static str, u64, u64, Option<&'static str>),
        header: (&'static str, &'static str, &'static str),
        compression: Compression,
    }
    let cases = [
        Case {
            file: "email-report-processor__report.elm.eml",
            name: (
                "google.com",
                "blogreen.org",
                1675296000,
                1675382399,
                Some("001"),
            ),
            header: (
                "blogreen.org",
                "google.com",
                "2023.02.02T00.00.00Z+blogreen.org@google.com",
            ),
            compression: Compression::Gzip,
        },
        Case {
            file: "mail-auth__rpt01.eml",
            name: (
                "mail.sender.example",
                "example.com",
                1013662812,
                1013749130,
                None,
            ),
            header: (
                "example.net",
                "mail.sender.example.com",
                "735ff.e317+bf22029@example.net",
            ),
            compression: Compression::Gzip,
        },
        Case {
            // Raw, uncompressed `application/tlsrpt` with no Content-Transfer-Encoding.
            file: "mail-auth__rpt02.eml",
            name: (
                "mail.sender.example",
                "example.com",
                1013662812,
                1013749130,
                None,
            ),
            header: (
                "example.net",
                "mail.sender.example.com",
                "735ff.e317+bf22029@example.net",
            ),
            compression: Compression::None,
        },
        Case {
            // `Content-Type: application/tlsrpt+gzip; ` with a trailing space, `name=` folded.
            file: "tlsrpt-rs__google2.eml",
            name: (
                "google.com",
                "krvtz.net",
                1726617600,
                1726703999,
                Some("001"),
            ),
            header: (
                "krvtz.net",
                "google.com",
                "2024.09.18T00.00.00Z+krvtz.net@google.com",
            ),
            compression: Compression::Gzip,
        },
        Case {
            // Extra trailing text part; Subject folded after every word.
            file: "tlsrpt-rs__mail.ru.eml",
            name: ("mail.ru", "krvtz.net", 1674604800, 1674691200, Some("001")),
            header: (
                "krvtz.net",
                "mail.ru",
                "c96d67df-0440-57f7-6e96-c83824d0fdf2@mail.ru",
            ),
            compression: Compression::Gzip,
        },
        Case {
            // HTML-only human part, numeric unique id, Report-ID without angle brackets.
            file: "tlsrpt-digest__tlsrpt_success_microsoft.eml",
            name: (
                "microsoft.com",
                "example.com",
                1778630400,
                1778716799,
                Some("134232617934286362"),
            ),
            header: (
                "example.com",
                "microsoft.com",
                "134232617934286362+example.com",
            ),
            compression: Compression::Gzip,
        },
        Case {
            file: "tlsrpt-rs__microsoft1.eml",
            name: (
                "microsoft.com",
                "krvtz.net",
                1726185600,
                1726271999,
                Some("133708152202987951"),
            ),
            header: ("krvtz.net", "microsoft.com", "133708152202987951+krvtz.net"),
            compression: Compression::Gzip,
        },
        Case {
            // CRLF line endings, RFC-style synthetic message.
            file: "tlsrpt-be__test.eml",
            name: (
                "mail.sender.example",
                "example.com",
                1013662812,
                1013749130,
                None,
            ),
            header: (
                "example.net",
                "mail.sender.example.com",
                "735ff.e317+bf22029@example.net",
            ),
            compression: Compression::Gzip,
        },
    ];
    for case in cases {
        let Some(raw) = read_corpus(&format!("tlsrpt/eml/{}", case.file)) else {
            return;
        };
        let got = extract_from_message(&raw, &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", case.file));
        let report = &got.reports[0];
        let (sender, domain, begin, end, id) = case.name;
        let want = ReportFilename {
            sender: sender.into(),
            policy_domain: domain.into(),
            begin,
            end,
            unique_id: id.map(Into::into),
            gzip: case.compression == Compression::Gzip,
        };
        assert_eq!(report.filename.as_ref(), Some(&want), "{}", case.file);
        assert_eq!(report.part.compression, case.compression, "{}", case.file);
        let headers = got.headers.as_ref().unwrap();
        let (report_domain, submitter, report_id) = case.header;
        assert_eq!(
            headers.report_domain.as_deref(),
            Some(report_domain),
            "{}",
            case.file
        );
        assert_eq!(
            headers.submitter.as_deref(),
            Some(submitter),
            "{}",
            case.file
        );
        assert_eq!(
            headers.report_id.as_deref(),
            Some(report_id),
            "{}",
            case.file
        );
    }
}

#[test]
fn rfc8460_5_3_raw_application_tlsrpt_part_is_taken_as_is() {
    let Some(raw) = read_corpus("tlsrpt/eml/mail-auth__rpt02.eml") else {
        return;
    };
    let got = extract_from_message(&raw, &Limits::default()).unwrap();
    let report = &got.reports[0];
    assert_eq!(
        report.part.content_type.as_deref(),
        Some("application/tlsrpt")
    );
    let value: serde_json::Value = serde_json::from_slice(&report.json).unwrap();
    assert_eq!(value["report-id"], "2020-01-01T00:00:00Z_example.com");
}

#[test]
fn mail_ru_trailing_text_part_is_ignored() {
    let Some(raw) = read_corpus("tlsrpt/eml/tlsrpt-rs__mail.ru.eml") else {
        return;
    };
    let got = extract_from_message(&raw, &Limits::default()).unwrap();
    assert_eq!(got.reports.len(), 1);
    let value: serde_json::Value = serde_json::from_slice(&got.reports[0].json).unwrap();
    assert!(value.to_string().contains("sts-policy-fetch-error"));
}

#[test]
fn dkim_signature_values_are_kept_for_later_verification() {
    let Some(raw) = read_corpus("tlsrpt/eml/tlsrpt-rs__google1.eml") else {
        return;
    };
    let got = extract_from_message(&raw, &Limits::default()).unwrap();
    assert!(!got.dkim_signatures.is_empty());
    assert!(
        got.dkim_signatures
            .iter()
            .any(|v| v.contains("d=google.com")),
        "{:?}",
        got.dkim_signatures
    );
}

#[test]
fn corpus_gzip_payload_decompresses_byte_for_byte() {
    let (Some(gz), Some(json)) = (
        read_corpus("tlsrpt/gz/mail-tls-rpt__report.json.gz"),
        read_corpus("tlsrpt/json/mail-tls-rpt__report.json"),
    ) else {
        return;
    };
    let got = extract_from_file("mail-tls-rpt__report.json.gz", &gz, &Limits::default()).unwrap();
    assert_eq!(got.reports.len(), 1);
    assert_eq!(got.reports[0].json, json);
    assert_eq!(got.reports[0].part.compression, Compression::Gzip);
    assert!(got.headers.is_none());
    // The same payload is the attachment of the message it arrived in.
    let Some(eml) = read_corpus("tlsrpt/eml/mail-tls-rpt__email.eml") else {
        return;
    };
    let from_mail = extract_from_message(&eml, &Limits::default()).unwrap();
    assert_eq!(from_mail.reports[0].json, json);
}

#[test]
fn every_corpus_gz_payload_is_a_json_object() {
    let Some(root) = corpus() else { return };
    for entry in std::fs::read_dir(root.join("tlsrpt/gz")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let got = extract_from_file(&name, &std::fs::read(&path).unwrap(), &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_json_object(&got.reports[0].json, &name);
    }
}

#[test]
fn zip_attachment_and_zip_file_yield_their_report() {
    let name = "mx.example!example.net!1704067200!1704153599!7.json";
    let archive = zip_of(&[("readme.txt", b"hi"), (name, REPORT)]);
    let raw = report_message(
        "multipart/report; report-type=tlsrpt",
        &[(
            "Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"report.zip\""
                .to_owned(),
            base64(&archive),
        )],
    );
    let got = extract_from_message(&raw, &Limits::default()).unwrap();
    assert_eq!(got.reports.len(), 1);
    let report = &got.reports[0];
    assert_eq!(report.json, REPORT);
    assert_eq!(report.part.compression, Compression::Zip);
    assert_eq!(report.part.file_name.as_deref(), Some("report.zip"));
    assert_eq!(report.part.entry_name.as_deref(), Some(name));
    assert_eq!(report.filename.as_ref().map(|f| f.begin), Some(1704067200));

    let bare = extract_from_file("whatever.bin", &archive, &Limits::default()).unwrap();
    assert_eq!(bare.reports[0].json, REPORT);

    // A .json.gz inside the zip is gunzipped too.
    let nested = zip_of(&[("r.json.gz", &gzip(REPORT))]);
    let got = extract_from_file("r.zip", &nested, &Limits::default()).unwrap();
    assert_eq!(got.reports[0].json, REPORT);
}

#[test]
fn zip_without_report_entries_says_so() {
    let archive = zip_of(&[("report.xml", b"<feedback/>")]);
    match extract_from_file("r.zip", &archive, &Limits::default()) {
        Err(MailError::Zip { reason, .. }) => assert!(reason.contains("*.json"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn zip_bombs_are_bounded() {
    let limits = Limits {
        max_decompressed: 1024 * 1024,
        max_zip_entries: 8,
        ..Limits::default()
    };
    // One entry that inflates past the limit.
    let zeros = vec![b' '; 4 * 1024 * 1024];
    let big = zip_of(&[("big.json", &zeros)]);
    assert!(
        big.len() < 64 * 1024,
        "fixture should be small: {}",
        big.len()
    );
    match extract_from_file("big.zip", &big, &limits) {
        Err(MailError::TooLarge { limit, what }) => {
            assert_eq!(limit, 1024 * 1024);
            assert!(what.contains("big.json"), "{what}");
        }
        other => panic!("{other:?}"),
    }
    // Too many entries, refused before any is read.
    let names: Vec<String> = (0..9).map(|i| format!("{i}.json")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), REPORT)).collect();
    match extract_from_file("many.zip", &zip_of(&entries), &limits) {
        Err(MailError::TooLarge { limit: 8, what }) => assert!(what.contains("9"), "{what}"),
        other => panic!("{other:?}"),
    }
    // Many entries each under the limit but together over the total.
    let limits = Limits {
        max_decompressed: 1024 * 1024,
        max_total_decompressed: 2 * 1024 * 1024,
        ..Limits::default()
    };
    let mut chunk = b"{".to_vec();
    chunk.resize(900 * 1024, b' ');
    let entries: Vec<(&str, &[u8])> = vec![
        ("a.json", &chunk[..]),
        ("b.json", &chunk[..]),
        ("c.json", &chunk[..]),
    ];
    match extract_from_file("sum.zip", &zip_of(&entries), &limits) {
        Err(MailError::TooLarge { what, .. }) => {
            assert!(what.contains("all reports together"), "{what}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn gzip_bomb_gives_too_large_quickly() {
    // 1 GiB of zeros, gzipped in 1 MiB steps (about 1 MiB compressed).
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..1024 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let started = std::time::Instant::now();
    match extract_from_file("bomb.json.gz", &bomb, &Limits::default()) {
        Err(MailError::TooLarge { limit, what }) => {
            assert_eq!(limit, stsward_mail::DEFAULT_MAX_DECOMPRESSED);
            assert!(what.contains("bomb.json.gz"), "{what}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
    // The same bomb as an attachment.
    let raw = report_message(
        "multipart/report; report-type=tlsrpt",
        &[(
            "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64".to_owned(),
            base64(&bomb),
        )],
    );
    assert!(matches!(
        extract_from_message(&raw, &Limits::default()),
        Err(MailError::TooLarge { .. })
    ));
}

#[test]
fn truncated_gzip_is_a_gzip_error_naming_the_part() {
    let gz = gzip(REPORT);
    let truncated = &gz[..gz.len() / 2];
    match extract_from_file("cut.json.gz", truncated, &Limits::default()) {
        Err(e @ MailError::Gzip { .. }) => assert!(e.to_string().contains("cut.json.gz"), "{e}"),
        other => panic!("{other:?}"),
    }
    let raw = report_message(
        "multipart/report; report-type=tlsrpt",
        &[(
            "Content-Type: application/tlsrpt+gzip; name=\"cut.json.gz\"\r\n\
             Content-Transfer-Encoding: base64"
                .to_owned(),
            base64(truncated),
        )],
    );
    match extract_from_message(&raw, &Limits::default()) {
        Err(e @ MailError::Gzip { .. }) => assert!(e.to_string().contains("cut.json.gz"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_report_attachments_give_two_reports() {
    let second = br#"{"report-id":"second"}"#;
    let raw = report_message(
        "multipart/report; report-type=\"tlsrpt\"",
        &[
            (
                "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment;\r\n filename=\"mx.example!example.net!1!2!a.json.gz\""
                    .to_owned(),
                base64(&gzip(REPORT)),
            ),
            (
                "Content-Type: application/tlsrpt+json\r\n\
                 Content-Disposition: attachment; filename=\"mx.example!example.net!1!2!b.json\""
                    .to_owned(),
                String::from_utf8(second.to_vec()).unwrap(),
            ),
        ],
    );
    let got = extract_from_message(&raw, &Limits::default()).unwrap();
    assert_eq!(got.reports.len(), 2);
    assert_eq!(got.reports[0].json, REPORT);
    assert_eq!(got.reports[1].json, second);
    let ids: Vec<_> = got
        .reports
        .iter()
        .map(|r| r.filename.as_ref().and_then(|f| f.unique_id.clone()))
        .collect();
    assert_eq!(ids, [Some("a".to_owned()), Some("b".to_owned())]);
    let headers = got.headers.unwrap();
    assert_eq!(headers.report_domain.as_deref(), Some("example.net"));
    assert_eq!(headers.report_id.as_deref(), Some("r1@mx.example"));
}

#[test]
fn one_good_and_one_bad_attachment_keeps_the_good_and_records_the_bad() {
    let raw = report_message(
        "multipart/mixed",
        &[
            (
                "Content-Type: application/gzip; name=\"broken.json.gz\"\r\n\
                 Content-Transfer-Encoding: base64"
                    .to_owned(),
                base64(&gzip(REPORT)[..20]),
            ),
            (
                "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"good.json.gz\""
                    .to_owned(),
                base64(&gzip(REPORT)),
            ),
        ],
    );
    let got = extract_from_message(&raw, &Limits::default()).unwrap();
    assert!(!got.tlsrpt_report_type);
    assert_eq!(got.reports.len(), 1);
    assert_eq!(
        got.reports[0].part.file_name.as_deref(),
        Some("good.json.gz")
    );
    assert_eq!(got.skipped.len(), 1);
    assert!(matches!(got.skipped[0].error, MailError::Gzip { .. }));
}

#[test]
fn rfc2231_encoded_file_name_is_decoded() {
    let raw = report_message(
        "multipart/mixed",
        &[(
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment;\r\n filename*0*=UTF-8''mx.example%21example.net;\r\n \
             filename*1*=%211%212.json.gz"
                .to_owned(),
            base64(&gzip(REPORT)),
        )],
    );
    let got = extract_from_message(&raw, &Limits::default()).unwrap();
    let report = &got.reports[0];
    assert_eq!(
        report.part.file_name.as_deref(),
        Some("mx.example!example.net!1!2.json.gz")
    );
    assert_eq!(report.filename.as_ref().map(|f| f.end), Some(2));
}

#[test]
fn forwarded_report_is_found_inside_message_rfc822() {
    let inner = report_message(
        "multipart/report; report-type=tlsrpt",
        &[(
            "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64".to_owned(),
            base64(&gzip(REPORT)),
        )],
    );
    let outer = format!(
        "From: admin@example.net\r\nSubject: Fwd: report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"OUT\"\r\n\r\n--OUT\r\n\
         Content-Type: text/plain\r\n\r\nsee attached\r\n--OUT\r\n\
         Content-Type: message/rfc822\r\n\r\n{}\r\n--OUT--\r\n",
        String::from_utf8(inner).unwrap()
    );
    let got = extract_from_message(outer.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(got.reports.len(), 1);
    assert_eq!(got.reports[0].json, REPORT);
}

#[test]
fn bare_json_with_bom_is_a_report_without_the_bom() {
    let mut bytes = b"\xef\xbb\xbf\r\n  ".to_vec();
    bytes.extend_from_slice(REPORT);
    let got = extract_from_file("report.json", &bytes, &Limits::default()).unwrap();
    assert_eq!(got.reports.len(), 1);
    assert_json_object(&got.reports[0].json, "bom");
    assert!(!got.reports[0].json.starts_with(b"\xef"));
    assert_eq!(got.reports[0].part.compression, Compression::None);
    assert_eq!(got.reports[0].part.content_type, None);
}

#[test]
fn bare_files_that_are_not_reports_say_why() {
    let limits = Limits::default();
    type Check = fn(&MailError) -> bool;
    let cases: [(&str, &[u8], Check, &str); 5] = [
        (
            "r.json",
            b"",
            |e| matches!(e, MailError::Empty { .. }),
            "empty file",
        ),
        (
            "r.json",
            b" \n\t",
            |e| matches!(e, MailError::Empty { .. }),
            "blank file",
        ),
        (
            "r.json",
            b"<?xml version=\"1.0\"?><feedback/>",
            |e| matches!(e, MailError::NotJson { .. }),
            "a DMARC report named .json",
        ),
        (
            "r.json.gz",
            &[0x1f, 0x8b, 0x08],
            |e| matches!(e, MailError::Gzip { .. }),
            "gzip header cut short",
        ),
        (
            "cron.eml",
            b"From: root@host\r\nSubject: Cron\r\n\r\nall good\r\n",
            |e| matches!(e, MailError::NoReport { .. }),
            "a cron mail",
        ),
    ];
    for (name, bytes, check, reason) in cases {
        match extract_from_file(name, bytes, &limits) {
            Err(e) => assert!(check(&e), "{reason}: wrong error {e:?}"),
            Ok(v) => panic!("{reason}: extracted {v:?}"),
        }
    }
}

#[test]
fn input_larger_than_the_limit_is_refused_before_parsing() {
    let limits = Limits {
        max_input: 10,
        ..Limits::default()
    };
    assert!(matches!(
        extract_from_message(b"Subject: x\r\n\r\n0123456789", &limits),
        Err(MailError::TooLarge { limit: 10, .. })
    ));
}

#[test]
fn report_count_is_bounded() {
    let limits = Limits {
        max_reports: 1,
        ..Limits::default()
    };
    let part = (
        "Content-Type: application/tlsrpt+json".to_owned(),
        String::from_utf8(REPORT.to_vec()).unwrap(),
    );
    let raw = report_message(
        "multipart/report; report-type=tlsrpt",
        &[part.clone(), part],
    );
    let got = extract_from_message(&raw, &limits).unwrap();
    assert_eq!(got.reports.len(), 1);
    assert!(matches!(
        got.skipped[0].error,
        MailError::TooLarge { limit: 1, .. }
    ));
}

#[test]
fn error_messages_read_as_plain_words() {
    let e = MailError::NoReport {
        content_types_seen: vec!["text/plain".into()],
    };
    assert_eq!(
        e.to_string(),
        "the message has no TLS-RPT report part (content types seen: text/plain)"
    );
}

proptest::proptest! {
    #[test]
    fn extract_from_file_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
        let _ = extract_from_file("x", &bytes, &Limits::default());
        let _ = extract_from_file("x.json.gz", &bytes, &Limits::default());
    }

    #[test]
    fn extract_never_panics_on_damaged_containers(
        tail in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
        kind in 0usize..4,
    ) {
        let mut bytes = match kind {
            0 => vec![0x1f, 0x8b, 0x08, 0x00],
            1 => b"PK\x03\x04".to_vec(),
            2 => b"\xef\xbb\xbf{".to_vec(),
            _ => b"Content-Type: multipart/report; report-type=tlsrpt; boundary=b\r\n\r\n--b\r\n\
                   Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                .to_vec(),
        };
        bytes.extend(tail);
        let _ = extract_from_file("x", &bytes, &Limits::default());
    }
}

#[test]
fn input_without_header_fields_is_not_a_message() {
    let cases: [(&[u8], &str); 4] = [
        (b"", "empty"),
        (b"\r\n\r\n", "blank lines only"),
        (b"\x00\x01\x02\xff", "binary"),
        (b"just a sentence with no colon", "prose"),
    ];
    for (raw, reason) in cases {
        match extract_from_message(raw, &Limits::default()) {
            Err(MailError::NotAMessage) => {}
            other => panic!("{reason}: {other:?}"),
        }
    }
}
