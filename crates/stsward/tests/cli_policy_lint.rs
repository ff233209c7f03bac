//! `stsward policy lint` run as a real process: output, JSON, and the documented exit status.

use std::io::Write;
use std::process::{Command, Stdio};

fn stsward(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stsward"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stsward");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &[u8] =
    b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 604800\r\n";

#[test]
fn good_policy_exits_0_and_says_senders_use_it() {
    let (code, out, _) = stsward(&["policy", "lint", "--color", "never", "-"], Some(GOOD));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sts.policy.valid"), "{out}");
    assert!(out.contains("senders will use this policy"), "{out}");
}

#[test]
fn bad_mode_exits_1_with_line_number_and_remedy() {
    let bad = b"version: STSv1\nmode: enforced\nmx: mail.example.com\nmax_age: 604800\n";
    let (code, out, _) = stsward(&["policy", "lint", "--color", "never", "-"], Some(bad));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 2"), "{out}");
    assert!(out.contains("sts.policy.mode"), "{out}");
    assert!(out.contains("fix:"), "{out}");
    assert!(out.contains("senders will NOT use this policy"), "{out}");
}

#[test]
fn json_output_carries_findings_with_spec_fields() {
    let bad = b"version: STSv1\nmode: testing\nmx: mail.example.com\nmax_age: 600\n";
    let (code, out, _) = stsward(&["policy", "lint", "--json", "-"], Some(bad));
    assert_eq!(code, 0, "warnings only: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["verdict"], "warning");
    assert_eq!(v["accepted"], true);
    let findings = v["findings"].as_array().expect("findings array");
    let short = findings
        .iter()
        .find(|f| f["code"] == "sts.policy.max-age-short")
        .expect("max-age-short finding");
    for field in [
        "code",
        "severity",
        "subject",
        "message",
        "remedy",
        "reference",
    ] {
        assert!(short.get(field).is_some(), "missing {field} in {short}");
    }
    assert_eq!(short["subject"], "line 4");
    assert_eq!(short["severity"], "warning");
    // The canonical form is CRLF with version first.
    assert!(
        v["policy"]
            .as_str()
            .expect("policy text")
            .starts_with("version: STSv1\r\n")
    );
}

#[test]
fn unreadable_file_exits_2_and_names_it() {
    let (code, _, err) = stsward(
        &["policy", "lint", "/nonexistent/stsward/mta-sts.txt"],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/stsward/mta-sts.txt"), "{err}");
}

#[test]
fn bad_arguments_exit_2() {
    let (code, _, err) = stsward(&["policy", "lint"], None);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn regression_issue_6_policy_text_is_escaped_in_lint_output() {
    let policy = b"version: STSv1\r\nmode: \x1b[2Jenforce\x07\r\nmx: mx.example.com\r\nmax_age: 86400\r\nx\x1b]0;t\x07: 1\r\n";
    let (_, out, _) = stsward(&["policy", "lint", "-", "--color", "never"], Some(policy));
    assert!(
        out.bytes().all(|b| (b >= 0x20 || b == b'\n') && b != 0x7f),
        "control bytes reach the terminal: {out:?}"
    );
    assert!(
        out.contains("[2Jenforce"),
        "the bad value is shown, escaped: {out}"
    );
}
