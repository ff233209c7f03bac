//! `stsward resolve test` run as a real process against the real lab on loopback: what
//! Postfix would be told, in text and JSON, without a daemon.

use std::process::Command;

use stsward_lab::{Lab, LabOptions, RunningLab, Scenario};

const SCENARIO: &str = include_str!("../../stsward-lab/scenarios/resolver.toml");

/// Fields drop in order: the lab's servers stop before their runtime goes.
struct World {
    _dir: tempfile::TempDir,
    lab: RunningLab,
    _rt: tokio::runtime::Runtime,
}

fn world() -> World {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario: Scenario = SCENARIO.parse().expect("scenario");
    let opts = LabOptions::new(dir.path(), time::OffsetDateTime::now_utc());
    let lab = rt
        .block_on(Lab::start(&scenario, &opts))
        .expect("lab starts");
    World {
        _dir: dir,
        lab,
        _rt: rt,
    }
}

impl World {
    fn resolve_test(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stsward"));
        cmd.args(["resolve", "test"])
            .args(args)
            .arg("--resolver")
            .arg(self.lab.resolver_addr().to_string())
            .arg("--ca-file")
            .arg(self.lab.ca_file())
            .arg("--https-port")
            .arg(self.lab.https_port().to_string());
        if let Some(a) = self.lab.trust_anchor_file() {
            cmd.arg("--trust-anchors").arg(a);
        }
        let out = cmd.output().expect("run stsward");
        (
            out.status.code().expect("exit code"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn resolve_test_prints_what_postfix_is_told_and_why() {
    let w = world();
    let (code, out, err) = w.resolve_test(&["resolve-enforce.test"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "postfix is told: OK secure match=mx.resolve-enforce.test servername=hostname\n"
        ),
        "{out}"
    );
    assert!(out.contains("policy mode is enforce"), "{out}");

    let (code, out, err) = w.resolve_test(&["resolve-testing.test", "--tlsrpt-attrs", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["answer"]["kind"], "OK");
    let data = v["answer"]["data"].as_str().expect("data");
    assert!(
        data.starts_with("may policy_type=sts policy_domain=resolve-testing.test"),
        "{data}"
    );
    assert!(v["steps"].as_array().is_some_and(|s| !s.is_empty()));

    let (code, out, _) = w.resolve_test(&["resolve-dane.test"]);
    assert_eq!(code, 0);
    assert!(out.contains("postfix is told: OK dane-only\n"), "{out}");

    let (code, out, _) = w.resolve_test(&["resolve-dane.test", "--no-dane"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("postfix is told: OK secure match=mx.resolve-dane.test"),
        "{out}"
    );

    let (code, out, _) = w.resolve_test(&["[192.0.2.1]"]);
    assert_eq!(code, 0);
    assert!(out.contains("postfix is told: NOTFOUND \n"), "{out}");
}
