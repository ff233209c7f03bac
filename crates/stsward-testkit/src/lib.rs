//! # stsward-testkit — helpers shared by the test suites (a dev-dependency only)
//!
//! The real-world corpus (reports, policies, peer test data) lives outside the repository,
//! at `../shared/corpus` beside the workspace, or wherever `STSWARD_CORPUS` points. Tests read
//! it in place through [`corpus`], which decides once what its absence means:
//!
//! ```text
//! corpus present                  -> Some(path)
//! corpus absent, CI set           -> panic: CI must never pass without the corpus
//! corpus absent, CI not set       -> None, and one line in <target>/corpus-skipped/<group>
//! ```
//!
//! [`postgres::Postgres`] starts a throwaway PostgreSQL server the same way: present, it
//! runs; absent, the group is skipped and recorded, or fails under `CI`.
//!
//! The test harness hides what passing tests print, so a skip announced with `println!` is
//! invisible. The marker file is not: `scripts/test` prints every line of
//! `<target>/corpus-skipped/` in its summary.
//!
//! [`postfix`] runs throwaway Postfix instances for the resolver's real-Postfix tests, with
//! the same skip rule for a missing Postfix.
//!
//! [`dovecot::Dovecot`] runs a throwaway Dovecot IMAP server for the IMAP intake tests, with
//! the same skip rule for a missing Dovecot.
//!
//! [`pebble::Pebble`] runs a throwaway Pebble ACME CA (RFC 8555) for the certificate tests,
//! with the same skip rule for a missing Pebble.
//!
//! [`unbound::Unbound`] runs a throwaway recursive resolver that stubs the tests'
//! authoritative servers (the lab's, `stsward serve`'s), with the same skip rule for a
//! missing unbound. [`missing`] applies the same rule to any other tool a test needs,
//! [`skip`] records a skip that no install fixes (e.g. not root), and [`peer_tool`] finds a
//! tool in the PyPI peers' virtualenv that `scripts/install-test-deps` creates under the
//! target directory.

#![forbid(unsafe_code)]

pub mod dovecot;
pub mod pebble;
pub mod postfix;
pub mod postgres;
pub mod unbound;

use std::path::{Path, PathBuf};

/// The environment variable that overrides the corpus location.
pub const CORPUS_ENV: &str = "STSWARD_CORPUS";

/// The directory under the cargo target directory where skipped groups leave one file each.
pub const SKIP_DIR_NAME: &str = "corpus-skipped";

/// The corpus root for the test group `group` (e.g. `stsward-proto/corpus_reports`), or
/// `None` when it is absent and the group is skipped (see the crate docs).
///
/// # Panics
///
/// When the corpus is absent and the `CI` environment variable is set: a CI run must fail
/// rather than pass while testing nothing.
pub fn corpus(group: &str) -> Option<PathBuf> {
    let path = corpus_path(std::env::var_os(CORPUS_ENV).map(PathBuf::from));
    if path.is_dir() {
        return Some(path);
    }
    let why = format!(
        "corpus not found at {} (set {CORPUS_ENV} to its location)",
        path.display()
    );
    if in_ci(std::env::var("CI").ok().as_deref()) {
        panic!("{group}: {why}; CI is set, so a missing corpus is a failure");
    }
    record_skip(group, &why);
    None
}

/// A tool or setup the test group `group` needs is missing (`why` says which, and how to
/// get it): a failure under `CI`, else the group is skipped and recorded (see the crate
/// docs). Returns when the test should stop quietly.
///
/// # Panics
///
/// When the `CI` environment variable is set.
pub fn missing(group: &str, why: &str) {
    if in_ci(std::env::var("CI").ok().as_deref()) {
        panic!("{group}: {why}; CI is set, so this is a failure");
    }
    record_skip(group, why);
}

/// The test group `group` cannot run in this environment for a reason no install step
/// fixes (e.g. it needs root for port 443 and a mount namespace): skipped and recorded
/// even under `CI`.
pub fn skip(group: &str, why: &str) {
    record_skip(group, why);
}

/// The directory of the PyPI peers' virtualenv, `<target>/peers-venv`, which
/// `scripts/install-test-deps` creates (postfix-mta-sts-resolver's tools are in its `bin/`).
pub const PEERS_VENV_DIR_NAME: &str = "peers-venv";

/// The path of the peer tool `tool` (e.g. `mta-sts-query`) in the peers' virtualenv, or
/// `None` when it is not there and the group is skipped (a failure under `CI`, see
/// [`missing`]).
pub fn peer_tool(group: &str, tool: &str) -> Option<PathBuf> {
    let venv = target_dir().join(PEERS_VENV_DIR_NAME);
    let path = venv.join("bin").join(tool);
    if path.is_file() {
        return Some(path);
    }
    missing(
        group,
        &format!(
            "{} not found (run scripts/install-test-deps to create the peers' virtualenv)",
            path.display()
        ),
    );
    None
}

/// The workspace root: this crate sits at `<root>/crates/stsward-testkit`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `override_path` when given, else `../shared/corpus` relative to the workspace root.
fn corpus_path(override_path: Option<PathBuf>) -> PathBuf {
    override_path.unwrap_or_else(|| workspace_root().join("../shared/corpus"))
}

/// Whether the `CI` variable says this is a CI run (set, not empty, not `false` or `0`).
pub(crate) fn in_ci(ci: Option<&str>) -> bool {
    match ci.map(str::trim) {
        None | Some("") | Some("0") => false,
        Some(v) => !v.eq_ignore_ascii_case("false"),
    }
}

/// The cargo target directory of the running test: the nearest ancestor of the test
/// executable that holds cargo's `CACHEDIR.TAG`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Writes `skipped <group>: <why>` to `<target>/corpus-skipped/<group>` (slashes become
/// `__`), and to standard error for whoever runs the test binary by hand.
pub(crate) fn record_skip(group: &str, why: &str) {
    let line = format!("skipped {group}: {why}\n");
    eprint!("{line}");
    let dir = target_dir().join(SKIP_DIR_NAME);
    let file = dir.join(group.replace(['/', '\\'], "__"));
    // A marker that cannot be written must not fail the test that skipped; stderr has it.
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(file, line));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_variable_values() {
        let cases: &[(Option<&str>, bool, &str)] = &[
            (None, false, "unset: a developer machine"),
            (Some(""), false, "empty counts as unset"),
            (Some("0"), false, "explicitly off"),
            (Some("false"), false, "explicitly off"),
            (Some("FALSE"), false, "case does not matter"),
            (Some("true"), true, "GitHub Actions, GitLab"),
            (Some("1"), true, "some CI systems"),
            (Some("yes"), true, "any other value means CI"),
        ];
        for (value, expected, why) in cases {
            assert_eq!(in_ci(*value), *expected, "{why}: {value:?}");
        }
    }

    #[test]
    fn corpus_defaults_to_shared_beside_the_workspace_and_honours_the_override() {
        let default = corpus_path(None);
        assert!(
            default.ends_with("../shared/corpus"),
            "{}",
            default.display()
        );
        assert!(default.starts_with(workspace_root()));
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("crates/stsward-testkit").is_dir());
        let chosen = PathBuf::from("some/where");
        assert_eq!(corpus_path(Some(chosen.clone())), chosen);
    }

    #[test]
    fn a_skipped_group_leaves_one_line_under_the_target_dir() {
        let group = "stsward-testkit/self-test";
        record_skip(group, "testing the marker");
        let file = target_dir()
            .join(SKIP_DIR_NAME)
            .join("stsward-testkit__self-test");
        let text = std::fs::read_to_string(&file).expect("marker written");
        assert_eq!(
            text,
            "skipped stsward-testkit/self-test: testing the marker\n"
        );
        std::fs::remove_file(file).expect("clean up");
    }
}
