//! What the shipped binary contains (issue 6, item 7): the lab — its test CA, DNS server and
//! fault hosts — only when built with the `lab` feature.

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

#[cfg(not(feature = "lab"))]
#[test]
fn regression_issue_6_shipped_build_has_no_lab_subcommand() {
    let (code, out, err) = stsward(&["lab", "up", "scenario.toml"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("unrecognized subcommand 'lab'"), "{err}");
    let (code, help, _) = stsward(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        !help.lines().any(|l| l.trim_start().starts_with("lab ")),
        "--help lists no lab command:\n{help}"
    );
}

#[cfg(feature = "lab")]
#[test]
fn lab_feature_build_has_the_lab_subcommand() {
    let (code, help, err) = stsward(&["lab", "up", "--help"]);
    assert_eq!(code, 0, "{err}");
    assert!(help.contains("SCENARIO.toml"), "{help}");
}
