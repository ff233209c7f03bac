//! `stsward config init|check` run as the real binary, and the environment overrides of
//! `stsward.toml` seen through `config check` and `domain`: good and bad files (a wrong type,
//! an unknown key, a bad value, a missing token file), and overrides that fix or break one.

#[path = "../../stsward-server/tests/serve_support/mod.rs"]
mod serve_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A file that `stsward serve` would start with: `[tls]` with real PEM files.
fn good_config(dir: &Path) -> PathBuf {
    let pki = serve_support::pki(dir, &["mta-sts.cli.test"]);
    let url = format!("sqlite://{}", dir.join("stsward.db").display());
    let path = dir.join("stsward.toml");
    std::fs::write(&path, serve_support::config_text(&pki, &url, false)).expect("config");
    path
}

/// `stsward ARGS` with `vars` set and no inherited configuration variables.
fn stsward(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stsward"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("STSWARD_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(vars.iter().copied());
    cmd.output().expect("run stsward")
}

fn check(path: &Path, vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = stsward(
        &["config", "check", path.to_str().expect("UTF-8 path")],
        vars,
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The 1-based line of the first line of `text` that starts with `start`.
fn line_of(text: &str, start: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(start))
        .map(|i| i + 1)
        .expect("the line is there")
}

/// `path` with `from` replaced by `to`, written to `name` beside it.
fn variant(path: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{from:?} not in the file");
    let out = path.with_file_name(name);
    std::fs::write(&out, text.replacen(from, to, 1)).expect("write");
    out
}

#[test]
fn init_prints_writes_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let printed = stsward(&["config", "init"], &[]);
    assert_eq!(printed.status.code(), Some(0));
    let template = String::from_utf8(printed.stdout).expect("UTF-8");
    assert!(template.contains("[hosting]") && template.contains("txt_ttl = 300"));

    let out = dir.path().join("stsward.toml");
    let out_arg = out.to_str().expect("UTF-8");
    let written = stsward(&["config", "init", "--out", out_arg], &[]);
    assert_eq!(written.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&out).expect("written"), template);

    std::fs::write(&out, "# mine\n").expect("write");
    let again = stsward(&["config", "init", "--out", out_arg], &[]);
    assert_eq!(again.status.code(), Some(2), "refuses to overwrite");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&out).expect("kept"), "# mine\n");

    let forced = stsward(&["config", "init", "--out", out_arg, "--force"], &[]);
    assert_eq!(forced.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&out).expect("replaced"), template);

    // The template parses; serving needs [acme] or [tls], which it leaves commented out.
    let (code, text) = check(&out, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("acme: serving needs [acme]"), "{text}");
}

#[test]
fn a_good_file_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = good_config(dir.path());
    let (code, text) = check(&path, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.trim_end().ends_with(": valid"), "{text}");
    assert!(!text.contains("error"), "{text}");
}

#[test]
fn errors_name_the_line_the_key_and_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = good_config(dir.path());
    let good = std::fs::read_to_string(&path).expect("read");
    let ttl_line = line_of(&good, "txt_ttl = 60");

    // A wrong type.
    let wrong = variant(&path, "wrong.toml", "txt_ttl = 60", "txt_ttl = \"sixty\"");
    let (code, text) = check(&wrong, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "wrong.toml: line {ttl_line}: hosting.txt_ttl: invalid type"
        )),
        "{text}"
    );

    // An unknown key, with its line.
    let unknown = variant(
        &path,
        "unknown.toml",
        "txt_ttl = 60",
        "txt_ttl = 60\nttl = 5",
    );
    let (code, text) = check(&unknown, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "unknown.toml: line {}: hosting.ttl: unknown field `ttl`",
            ttl_line + 1
        )),
        "{text}"
    );

    // A value out of range.
    let zero = variant(&path, "zero.toml", "txt_ttl = 60", "txt_ttl = 0");
    let (code, text) = check(&zero, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "zero.toml: line {ttl_line}: hosting.txt_ttl: must be at least 1 second"
        )),
        "{text}"
    );

    // A token file that is not there: what `serve` reads at start.
    let missing = dir.path().join("no-such-token");
    let token = variant(
        &path,
        "token.toml",
        "token = \"serve-test-token\"",
        &format!("token_file = {:?}", missing.display().to_string()),
    );
    let (code, text) = check(&token, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "api.token_file: cannot read {}: No such file",
            missing.display()
        )),
        "{text}"
    );

    // A file that cannot be read: the check cannot run.
    let (code, text) = check(&dir.path().join("absent.toml"), &[]);
    assert_eq!(code, Some(2), "{text}");
}

#[test]
fn environment_overrides_fix_or_break_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = good_config(dir.path());
    let zero = variant(&path, "zero.toml", "txt_ttl = 60", "txt_ttl = 0");

    let (code, text) = check(&zero, &[("STSWARD_HOSTING_TXT_TTL", "120")]);
    assert_eq!(code, Some(0), "the override fixes the file: {text}");
    assert!(
        text.contains("environment: STSWARD_HOSTING_TXT_TTL sets hosting.txt_ttl"),
        "{text}"
    );

    let (code, text) = check(&path, &[("STSWARD_HOSTING_TXT_TTL", "0")]);
    assert_eq!(code, Some(1), "the override breaks the file: {text}");
    assert!(
        text.contains("STSWARD_HOSTING_TXT_TTL: hosting.txt_ttl: must be at least 1 second"),
        "{text}"
    );

    let (code, text) = check(&path, &[("STSWARD_API_LISTEN", "127.0.0.1:1")]);
    assert_eq!(code, Some(1), "not a list: {text}");
    assert!(text.contains("STSWARD_API_LISTEN: api.listen: "), "{text}");

    // Unknown variables are reported, not fatal; the project's own are left alone.
    let (code, text) = check(&path, &[("STSWARD_FOO", "1"), ("STSWARD_BIN", "/bin/x")]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("warning: STSWARD_FOO: no such key"), "{text}");
    assert!(!text.contains("STSWARD_BIN"), "{text}");
}

#[test]
fn check_json_for_machines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = good_config(dir.path());
    let zero = variant(&path, "zero.toml", "txt_ttl = 60", "txt_ttl = 0");
    let out = stsward(
        &["config", "check", zero.to_str().expect("UTF-8"), "--json"],
        &[("STSWARD_STORE_URL", "sqlite://other.db")],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"][0]["key"], "hosting.txt_ttl");
    let text = std::fs::read_to_string(&zero).expect("read");
    assert_eq!(
        v["errors"][0]["line"].as_u64(),
        Some(line_of(&text, "txt_ttl = 0") as u64)
    );
    assert_eq!(v["overrides"][0]["variable"], "STSWARD_STORE_URL");
    assert_eq!(v["overrides"][0]["key"], "store.url");
}

#[test]
fn serve_and_domain_read_the_overrides_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("from-env.db");
    let url = format!("sqlite://{}", db.display());
    let out = stsward(&["domain", "list"], &[("STSWARD_STORE_URL", &url)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        db.exists(),
        "the store named by STSWARD_STORE_URL was opened"
    );

    let out = stsward(&["domain", "list"], &[("STSWARD_HOSTING_TXT_TTL", "0")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("STSWARD_HOSTING_TXT_TTL: hosting.txt_ttl"),
        "{err}"
    );

    // serve refuses the same override before it binds anything.
    let config = good_config(dir.path());
    let out = stsward(
        &["serve", "--config", config.to_str().expect("UTF-8")],
        &[("STSWARD_HOSTING_TXT_TTL", "0")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("STSWARD_HOSTING_TXT_TTL: hosting.txt_ttl: must be at least 1 second"),
        "{err}"
    );
}
