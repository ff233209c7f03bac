//! `stsward report parse` run as a real process on files it writes itself: normalised JSON,
//! `--strict` deviations, and failures that name the file and the reason.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;

fn stsward(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stsward"))
        .args(args)
        .output()
        .expect("run stsward");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A report in the shape Microsoft sends: no `mx-host`, a date-time without `Z`.
const LENIENT: &str = r#"{"organization-name":"Sender Inc","date-range":{"start-datetime":"2026-03-26T00:00:00","end-datetime":"2026-03-26T23:59:59Z"},"contact-info":"reports@sender.example","report-id":"r-1","policies":[{"policy":{"policy-type":"sts","policy-string":["version: STSv1","mode: testing","mx: mx.example.org","max_age: 86400"],"policy-domain":"example.org","mx-host":"mx.example.org"},"summary":{"total-successful-session-count":10,"total-failure-session-count":2},"failure-details":[{"result-type":"certificate-expired","sending-mta-ip":"192.0.2.1","receiving-mx-hostname":"mx.example.org","failed-session-count":2}]}]}"#;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write fixture");
    p.to_string_lossy().into_owned()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip finish")
}

#[test]
fn json_and_gzip_reports_print_normalised_rfc_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(dir.path(), "a.json", LENIENT.as_bytes());
    let b = write(
        dir.path(),
        "sender.example!example.org!1774483200!1774569599.json.gz",
        &gzip(LENIENT.as_bytes()),
    );
    let (code, out, err) = stsward(&["report", "parse", &a, &b]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    for r in &lines {
        // Errata 6241: mx-host is an array; date-times are UTC with Z.
        assert_eq!(
            r["policies"][0]["policy"]["mx-host"],
            serde_json::json!(["mx.example.org"])
        );
        assert_eq!(r["date-range"]["start-datetime"], "2026-03-26T00:00:00Z");
        assert_eq!(
            r["policies"][0]["summary"]["total-failure-session-count"],
            2
        );
    }
}

#[test]
fn strict_lists_each_deviation_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(dir.path(), "a.json", LENIENT.as_bytes());
    let (code, out, _) = stsward(&["report", "parse", "--strict", &a]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(v["source"], a.as_str());
    let paths: Vec<&str> = v["deviations"]
        .as_array()
        .expect("deviations")
        .iter()
        .filter_map(|d| d["path"].as_str())
        .collect();
    assert!(paths.contains(&"/policies/0/policy/mx-host"), "{paths:?}");
    assert!(paths.contains(&"/date-range/start-datetime"), "{paths:?}");
}

#[test]
fn failures_name_the_file_and_the_reason_and_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(dir.path(), "good.json", LENIENT.as_bytes());
    let not_json = write(dir.path(), "broken.json", b"{\"organization-name\": ");
    let wrong_type = write(
        dir.path(),
        "wrong.json",
        LENIENT
            .replace(
                "\"total-successful-session-count\":10",
                // "10" would be read (RFC 8460 §4.4 counts written as strings are accepted with
                // a deviation); "ten" is no count at all.
                "\"total-successful-session-count\":\"ten\"",
            )
            .as_bytes(),
    );
    let not_report = write(
        dir.path(),
        "cron.eml",
        b"From: cron@example.org\r\nSubject: backup\r\n\r\nall good\r\n",
    );
    let (code, out, err) = stsward(&[
        "report",
        "parse",
        &good,
        &not_json,
        &wrong_type,
        &not_report,
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.lines().count(), 1, "the good report is still printed");
    assert!(
        err.contains(&format!("{not_json}: the input is not JSON")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{wrong_type}: field /policies/0/summary/total-successful-session-count is \"ten\", not a count of sessions: it is not a number")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{not_report}: the message has no TLS-RPT report part"
        )),
        "{err}"
    );
}

#[test]
fn gzip_bomb_is_refused_as_too_large() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).expect("gzip");
    }
    let bomb = write(dir.path(), "bomb.json.gz", &e.finish().expect("finish"));
    let (code, _, err) = stsward(&["report", "parse", &bomb]);
    assert_eq!(code, 1);
    assert!(err.contains("exceeds the limit"), "{err}");
}

#[test]
fn missing_file_exits_2() {
    let (code, _, err) = stsward(&["report", "parse", "/nonexistent/stsward/r.json"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/nonexistent/stsward/r.json: cannot read"),
        "{err}"
    );
}

#[test]
fn directories_are_walked() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    write(dir.path(), "a.json", LENIENT.as_bytes());
    write(
        &dir.path().join("sub"),
        "b.json.gz",
        &gzip(LENIENT.as_bytes()),
    );
    let (code, out, err) = stsward(&["report", "parse", &dir.path().to_string_lossy()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2);
}
