//! Replays every saved fuzz input under `fuzz/regressions/<target>/` through the target's
//! property check (`stsward_fuzz::checks`), so a crash the fuzzer once found stays fixed on
//! every `cargo test --workspace`, without cargo-fuzz or a nightly toolchain.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use stsward_fuzz::checks::TARGETS;

#[test]
fn every_saved_regression_input_passes_its_targets_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut replayed = 0;
    let mut failures = Vec::new();
    let entries =
        std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: cannot list: {e}", root.display()));
    for entry in entries {
        let dir = entry.expect("directory entry").path();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let Some((_, check)) = TARGETS.iter().find(|(t, _)| *t == name) else {
            panic!("{}: no fuzz target is named {name:?}", dir.display());
        };
        let files = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: cannot list: {e}", dir.display()));
        for file in files {
            let path = file.expect("directory entry").path();
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failures.push(path.display().to_string());
            }
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "{}: no regression inputs found",
        root.display()
    );
    assert!(
        failures.is_empty(),
        "regression inputs that fail their check again (the panic messages are above):\n{}",
        failures.join("\n")
    );
}
