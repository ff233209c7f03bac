//! `--ca-file` PEM parsing through `rustls-pki-types`' PEM support (issue 6 item 7: the
//! unmaintained `rustls-pemfile` is gone).

use stsward_check::CheckConfig;
use stsward_lab::LabCa;

fn ca_pem() -> String {
    LabCa::new(time::OffsetDateTime::now_utc())
        .expect("lab CA")
        .ca_pem()
}

#[test]
fn ca_file_pem_good_and_bad() {
    let one = ca_pem();
    let two = format!("{}{}", ca_pem(), ca_pem());
    let with_key_and_text = format!(
        "leading commentary\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{one}"
    );
    let good: &[(&str, &str, usize)] = &[
        (&one, "one certificate", 1),
        (&two, "a bundle", 2),
        (&with_key_and_text, "other sections and text are skipped", 1),
        (&one.replace('\n', "\r\n"), "CRLF line ends", 1),
    ];
    for (pem, why, n) in good {
        let roots =
            CheckConfig::roots_from_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("{why}: {e}"));
        assert_eq!(roots.len(), *n, "{why}");
    }
    let broken_base64 = one.replacen("MII", "M!I", 1);
    let bad: &[(&str, &str)] = &[
        ("", "empty file"),
        ("just text\n", "no PEM section"),
        (&broken_base64, "base64 that does not decode"),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n",
            "a section without its END line",
        ),
    ];
    for (pem, why) in bad {
        assert!(
            CheckConfig::roots_from_pem(pem.as_bytes()).is_err(),
            "{why} must be refused"
        );
    }
}
