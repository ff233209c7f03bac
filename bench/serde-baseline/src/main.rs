//! The floor under `stsward report parse`: for every file under the given paths, read it,
//! gunzip it when its name ends in `.gz`, and deserialise it into a `serde_json::Value`.
//! No validation, no normalisation, no output per report; what stsward does on top of this
//! is what the benchmark's serde_json/stsward ratio measures.
//!
//! Usage: `serde-baseline PATH...` (files or directories, walked recursively). Prints
//! `parsed=N failed=M` on standard error; exits 1 when any file failed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut files = Vec::new();
    for arg in std::env::args_os().skip(1) {
        if let Err(e) = collect(Path::new(&arg), &mut files) {
            eprintln!("serde-baseline: {}: {e}", Path::new(&arg).display());
            return ExitCode::from(2);
        }
    }
    let (mut parsed, mut failed) = (0usize, 0usize);
    // One buffer reused across files, as a careful real reader would.
    let mut buf = Vec::new();
    for path in &files {
        match load(path, &mut buf).and_then(|()| {
            serde_json::from_slice::<serde_json::Value>(&buf).map_err(std::io::Error::other)
        }) {
            Ok(value) => {
                // Keep the optimiser from discarding the parse.
                std::hint::black_box(&value);
                parsed += 1;
            }
            Err(e) => {
                eprintln!("serde-baseline: {}: {e}", path.display());
                failed += 1;
            }
        }
    }
    eprintln!("parsed={parsed} failed={failed}");
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            collect(&entry?.path(), out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn load(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    let file = std::fs::File::open(path)?;
    if path.extension().is_some_and(|ext| ext == "gz") {
        flate2::read::GzDecoder::new(file).read_to_end(buf)?;
    } else {
        std::io::BufReader::new(file).read_to_end(buf)?;
    }
    Ok(())
}
