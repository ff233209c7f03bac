//! `stsward report parse` — TLS-RPT reports (RFC 8460 §4) from files and e-mails, printed as
//! normalised RFC 8460 JSON, one report per line.
//!
//! Output is JSON Lines on standard output: the bare report, or with `--strict` an envelope
//! `{"source", "report", "deviations"}`. Every input that yields no report gets one line on
//! standard error naming the file and the reason.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};
use stsward_mail::{Extracted, Limits, MailError, extract_from_file};
use stsward_proto::tlsrpt::{ReportError, parse_report};

use crate::Outcome;
use crate::command::ReportParse;

/// Why one input produced no report.
#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    #[error("{0}")]
    Extract(#[source] MailError),
    #[error("{0}")]
    Report(#[source] ReportError),
}

pub fn parse(c: &ReportParse) -> anyhow::Result<Outcome> {
    let files = expand(&c.files)?;
    let limits = Limits::default();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let (mut parsed, mut failed) = (0usize, 0usize);
    for path in &files {
        match parse_one(path, &limits, c, &mut out) {
            Ok(n) => parsed += n,
            Err(Failure::Input(e)) => {
                failed += 1;
                out.flush().context("writing to standard output")?;
                eprintln!("stsward: {}: {e}", path.display());
            }
            Err(Failure::Output(e)) => return Err(e).context("writing to standard output"),
        }
    }
    out.flush().context("writing to standard output")?;
    if failed > 0 {
        eprintln!(
            "stsward: {failed} of {} input(s) could not be parsed; {parsed} report(s) printed",
            files.len()
        );
        return Ok(
            if parsed == 0 && failed == files.len() && all_unreadable(&files) {
                Outcome::CannotRun
            } else {
                Outcome::Problems
            },
        );
    }
    Ok(Outcome::Success)
}

enum Failure {
    Input(InputError),
    Output(std::io::Error),
}

/// Parses every report in one file and prints it; returns how many were printed.
fn parse_one(
    path: &Path,
    limits: &Limits,
    c: &ReportParse,
    out: &mut impl Write,
) -> Result<usize, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure::Input(InputError::Read(e)))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let Extracted { reports, .. } = extract_from_file(&name, &bytes, limits)
        .map_err(|e| Failure::Input(InputError::Extract(e)))?;
    // Parse every report of the input before printing any, so that an input is either
    // printed whole or reported as failed.
    let mut parsed = Vec::with_capacity(reports.len());
    for r in &reports {
        let p = parse_report(&r.json).map_err(|e| Failure::Input(InputError::Report(e)))?;
        let source = match (&r.part.file_name, &r.part.entry_name) {
            (_, Some(entry)) => format!("{}#{entry}", path.display()),
            (Some(f), None) if reports.len() > 1 || f != &name => {
                format!("{}#{f}", path.display())
            }
            _ => path.display().to_string(),
        };
        parsed.push((source, p));
    }
    for (source, p) in &parsed {
        let report = p.report.to_rfc_json();
        let line: Value = if c.strict {
            json!({ "source": source, "report": report, "deviations": p.deviations })
        } else {
            report
        };
        let written = if c.pretty {
            serde_json::to_writer_pretty(&mut *out, &line)
        } else {
            serde_json::to_writer(&mut *out, &line)
        };
        written.map_err(|e| Failure::Output(e.into()))?;
        out.write_all(b"\n").map_err(Failure::Output)?;
    }
    Ok(parsed.len())
}

/// Expands directories (recursively, sorted) into the files they hold.
fn expand(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::with_capacity(inputs.len());
    for p in inputs {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found).with_context(|| format!("reading directory {}", p.display()))?;
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, found)?;
        } else {
            found.push(path);
        }
    }
    Ok(())
}

fn all_unreadable(files: &[PathBuf]) -> bool {
    files.iter().all(|f| std::fs::metadata(f).is_err())
}
