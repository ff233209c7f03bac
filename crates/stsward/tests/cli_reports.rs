//! `stsward reports import|summary|invalid|release|prune` run as real processes on a SQLite
//! file in a temporary directory: a directory of reports (JSON, gzip, an mbox of two
//! messages, an unreadable file) imported twice, the summary's numbers, the quarantine.

use std::io::Write;
use std::path::Path;
use std::process::Command;

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

/// A report dated `day` (YYYY-MM-DD) with `ok` successful and `bad` failed sessions.
fn report(id: &str, day: &str, ok: u64, bad: u64) -> String {
    format!(
        r#"{{"organization-name":"Sender Inc","date-range":{{"start-datetime":"{day}T00:00:00Z","end-datetime":"{day}T23:59:59Z"}},"contact-info":"r@sender.example","report-id":"{id}","policies":[{{"policy":{{"policy-type":"sts","policy-domain":"example.org","mx-host":["mx.example.org"]}},"summary":{{"total-successful-session-count":{ok},"total-failure-session-count":{bad}}},"failure-details":[{{"result-type":"starttls-not-supported","receiving-mx-hostname":"mx.example.org","failed-session-count":{bad}}}]}}]}}"#
    )
}

fn message(report: &str) -> String {
    format!(
        "From: reports@sender.example\r\nTo: tlsrpt@example.org\r\nSubject: Report Domain: example.org Submitter: sender.example Report-ID: <x@sender.example>\r\nTLS-Report-Domain: example.org\r\nTLS-Report-Submitter: sender.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nreport\r\n--b\r\nContent-Type: application/tlsrpt+json\r\n\r\n{report}\r\n--b--\r\n"
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, bytes).expect("write fixture");
}

#[test]
fn import_twice_then_summary_invalid_release_and_prune() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = dir.path().join("in");
    let day = time::OffsetDateTime::now_utc().date();
    let d = format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    write(&inputs, "a.json", report("a", &d, 10, 1).as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(report("b", &d, 20, 2).as_bytes())
        .expect("gzip");
    write(&inputs, "sub/b.json.gz", &gz.finish().expect("gzip"));
    let mbox = format!(
        "From reports@sender.example Mon Jan  1 00:00:00 2024\n{}\nFrom reports@sender.example Mon Jan  1 00:00:01 2024\n{}\n",
        message(&report("c", &d, 30, 3)).replace("\r\n", "\n"),
        message(&report("d", &d, 40, 4)).replace("\r\n", "\n"),
    );
    write(&inputs, "sub/box.mbox", mbox.as_bytes());
    let broken = report("e", &d, 1, 0).replace("\"Sender Inc\"", "5");
    write(&inputs, "broken.json", broken.as_bytes());
    let db = format!("sqlite://{}", dir.path().join("r.db").display());
    let input = inputs.to_string_lossy().into_owned();

    let (code, out, err) = stsward(&["reports", "import", "--store", &db, &input]);
    assert_eq!(code, 1, "one input is invalid: {out}{err}");
    assert!(
        out.contains("5 input(s): 4 report(s) imported, 0 duplicate(s), 1 invalid"),
        "{out}"
    );
    assert!(
        out.contains("broken.json") && out.contains("organization-name"),
        "{out}"
    );

    let (code, out, _) = stsward(&["reports", "import", "--db", &db, "--json", &input]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(
        (v["imported"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(4)),
        "{v}"
    );

    let (code, out, err) = stsward(&[
        "reports", "summary", "--store", &db, "--since", "2d", "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let s: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(
        (s["successful"].as_u64(), s["failed"].as_u64()),
        (Some(100), Some(10)),
        "{s}"
    );
    assert_eq!(
        s["by_result_type"][0]["result_type"],
        "starttls-not-supported"
    );
    assert!(
        s["by_result_type"][0]["meaning"]
            .as_str()
            .is_some_and(|m| m.contains("STARTTLS"))
    );
    assert_eq!(s["by_receiving_mx"][0]["receiving_mx"], "mx.example.org");
    assert_eq!(s["days"].as_array().map(Vec::len), Some(1));
    let (_, text, _) = stsward(&[
        "reports",
        "summary",
        "--store",
        &db,
        "--domain",
        "EXAMPLE.org.",
    ]);
    assert!(
        text.contains("100 successful, 10 failed, success rate 90.91%"),
        "{text}"
    );
    let (_, none, _) = stsward(&[
        "reports",
        "summary",
        "--store",
        &db,
        "--domain",
        "other.example",
    ]);
    assert!(none.contains("0 successful, 0 failed"), "{none}");

    let (code, out, _) = stsward(&["reports", "invalid", "--store", &db, "--json"]);
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 1, "imported twice, quarantined once: {out}");
    let id = lines[0]["id"].as_i64().expect("id").to_string();
    let (code, out, _) = stsward(&["reports", "release", &id, "--store", &db]);
    assert_eq!(code, 1, "still unreadable: {out}");
    assert!(out.contains("stays in the quarantine"), "{out}");

    let (code, _, err) = stsward(&["reports", "prune", "--store", &db]);
    assert_eq!(code, 2, "no age and no reports.retention_days: {err}");
    assert!(err.contains("reports.retention_days"), "{err}");
    let config = dir.path().join("stsward.toml");
    std::fs::write(
        &config,
        format!("[store]\nurl = {db:?}\n[reports]\nretention_days = 1\n"),
    )
    .expect("config");
    let config = config.to_string_lossy().into_owned();
    let (code, out, err) = stsward(&["reports", "prune", "--config", &config]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("pruned 0 raw input(s)"),
        "nothing is a day old yet: {out}"
    );
    // Received this second: older than 0 days from the next second on.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, out, _) = stsward(&["reports", "prune", "--older-than", "0d", "--store", &db]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("pruned 4 raw input(s), 4 failure detail(s)"),
        "{out}"
    );
    let (_, after, _) = stsward(&[
        "reports",
        "summary",
        "--store",
        &db,
        "--domain",
        "example.org",
    ]);
    assert_eq!(after, text, "pruning keeps the summary");
}
