//! `stsward completions` and `stsward man` (issue 11, packaging): the scripts are valid in
//! their shells and complete real subcommands, and the man pages render without a warning
//! and name every top-level subcommand that `--help` lists.
//!
//! zsh and fish come from `scripts/install-test-deps`; without them their checks are
//! skipped and recorded (a failure under `CI`), as are groff and man.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const GROUP: &str = "stsward/completions-man";

fn stsward(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_stsward"))
        .args(args)
        .output()
        .expect("run stsward");
    assert!(
        out.status.success(),
        "stsward {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `program` with `args` and returns its output, or `None` (skipped and recorded; a
/// failure under `CI`) when the program is not installed.
fn tool(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Option<Output> {
    match Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            stsward_testkit::missing(
                GROUP,
                &format!("{program} is not installed (scripts/install-test-deps installs it)"),
            );
            None
        }
        Err(e) => panic!("{program}: {e}"),
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The top-level subcommands `stsward --help` lists (the "Commands:" section), `help` aside.
fn top_level_subcommands() -> Vec<String> {
    let help = String::from_utf8(stsward(&["--help"]).stdout).expect("UTF-8 help");
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|n| n != "help")
        .collect();
    assert!(
        names.iter().any(|n| n == "serve") && names.iter().any(|n| n == "completions"),
        "--help lists the subcommands: {names:?}\n{help}"
    );
    names
}

fn write_script(dir: &Path, name: &str, shell: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, stsward(&["completions", shell]).stdout).expect("write the script");
    path
}

#[test]
fn bash_completion_is_valid_and_completes_subcommands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = write_script(dir.path(), "stsward.bash", "bash");
    let script = script.to_str().expect("UTF-8 path");
    let Some(syntax) = tool("bash", &["-n", script], &[]) else {
        return;
    };
    assert!(syntax.status.success(), "bash -n: {}", text(&syntax));

    // What bash offers after "stsward ser<TAB>" and "stsward policy l<TAB>": the script's
    // function, called as readline would call it.
    let complete = |line: &str| -> Vec<String> {
        let program = r#"source "$1"; shift
            COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
            func=$(complete -p stsward | sed -E 's/.*-F ([^ ]+).*/\1/')
            "$func" stsward "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\n' "${COMPREPLY[@]}""#;
        let mut args = vec!["-c", program, "bash", script];
        args.extend(line.split(' '));
        let out = tool("bash", &args, &[]).expect("bash ran above");
        assert!(out.status.success(), "completing {line:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(complete("stsward ser"), ["serve"]);
    assert_eq!(complete("stsward policy l"), ["lint"]);
    let all = complete("stsward ");
    for name in top_level_subcommands() {
        assert!(all.contains(&name), "{name} in {all:?}");
    }
}

#[test]
fn zsh_completion_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = write_script(dir.path(), "_stsward", "zsh");
    let Some(out) = tool("zsh", &["-n", script.to_str().expect("UTF-8 path")], &[]) else {
        return;
    };
    assert!(out.status.success(), "zsh -n: {}", text(&out));
    let body = std::fs::read_to_string(&script).expect("read the script");
    assert!(body.starts_with("#compdef stsward"), "{body}");
    assert!(body.contains("'serve:"), "the script names serve:\n{body}");
}

#[test]
fn fish_completion_is_valid_and_completes_subcommands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = write_script(dir.path(), "stsward.fish", "fish");
    let script = script.to_str().expect("UTF-8 path");
    let home = dir.path().to_str().expect("UTF-8 path");
    // A private HOME and config dirs: fish writes its history and variables there.
    let envs = [
        ("HOME", home),
        ("XDG_CONFIG_HOME", home),
        ("XDG_DATA_HOME", home),
    ];
    let Some(syntax) = tool("fish", &["-n", script], &envs) else {
        return;
    };
    assert!(syntax.status.success(), "fish -n: {}", text(&syntax));
    let out = tool(
        "fish",
        &[
            "--no-config",
            "-c",
            "source $argv[1]; complete -C 'stsward ser'",
            script,
        ],
        &envs,
    )
    .expect("fish ran above");
    assert!(out.status.success(), "fish: {}", text(&out));
    let offered: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("UTF-8")
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(offered, ["serve"], "{}", text(&out));
}

/// Renders `page` with groff (all warnings on, UTF-8 input through preconv, as man does)
/// and with `man -l`, and returns the formatted text; `None` when a tool is missing.
fn render(page: &Path) -> Option<String> {
    let page = page.to_str().expect("UTF-8 path");
    let envs = [("LC_ALL", "C.UTF-8"), ("MANWIDTH", "100")];
    let groff = tool("groff", &["-k", "-man", "-Tutf8", "-ww", "-z", page], &envs)?;
    assert!(groff.status.success(), "groff {page}: {}", text(&groff));
    assert!(
        groff.stderr.is_empty(),
        "groff warns about {page}:\n{}",
        text(&groff)
    );
    let man = tool("man", &["--warnings", "-l", page], &envs)?;
    assert!(man.status.success(), "man -l {page}: {}", text(&man));
    assert!(
        man.stderr.is_empty(),
        "man -l warns about {page}:\n{}",
        String::from_utf8_lossy(&man.stderr)
    );
    Some(String::from_utf8(man.stdout).expect("UTF-8 page"))
}

#[test]
fn man_page_renders_and_names_every_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("stsward.1");
    std::fs::write(&page, stsward(&["man"]).stdout).expect("write the page");
    let Some(shown) = render(&page) else {
        return;
    };
    assert!(
        shown.contains("NAME") && shown.contains("SUBCOMMANDS"),
        "{shown}"
    );
    for name in top_level_subcommands() {
        assert!(
            shown.contains(&format!("stsward-{name}(1)")),
            "the page names {name}:\n{shown}"
        );
    }
}

#[test]
fn man_out_dir_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("man1");
    stsward(&["man", "--out-dir", out.to_str().expect("UTF-8 path")]);
    let mut names = vec!["stsward.1".to_owned(), "stsward-policy-lint.1".to_owned()];
    names.extend(
        top_level_subcommands()
            .iter()
            .map(|n| format!("stsward-{n}.1")),
    );
    for name in names {
        let page = out.join(&name);
        assert!(page.is_file(), "{name} was written");
        let Some(shown) = render(&page) else {
            return;
        };
        let title = name.trim_end_matches(".1");
        assert!(shown.contains(&format!("{title}(1)")), "{name}:\n{shown}");
    }
}

#[test]
fn unknown_shell_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_stsward"))
        .args(["completions", "tcsh"])
        .output()
        .expect("run stsward");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid value 'tcsh'"),
        "{}",
        text(&out)
    );
}
