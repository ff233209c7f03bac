//! `stsward report parse` — TLS-RPT reports (RFC 8460 §4) from files and e-mails, printed as
//! normalised RFC 8460 JSON, one report per line.
//!
//! Output is JSON Lines on standard output: the bare report, or with `--strict` an envelope
//! `{"source", "report", "deviations"}`. Every input that yields no report gets one line on
//! standard error naming the file and the reason.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use stsward_mail::{Extracted, Limits, MailError, extract_from_file};
use stsward_proto::tlsrpt::{Deviation, ReportError, RfcJson, parse_report};

use crate::Outcome;
use crate::command::ReportParse;

/// Files handed to the workers at a time: bounds the output held in memory while keeping
/// the printed order that of the file list.
const BATCH: usize = 4096;

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
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(files.len())
        .max(1);
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let (mut parsed, mut failed) = (0usize, 0usize);
    let mut emit = |batch: &[PathBuf], rendered: Vec<Rendered>| -> anyhow::Result<()> {
        for (path, result) in batch.iter().zip(rendered) {
            match result {
                Ok((n, text)) => {
                    parsed += n;
                    out.write_all(&text).context("writing to standard output")?;
                }
                Err(Failure::Input(e)) => {
                    failed += 1;
                    out.flush().context("writing to standard output")?;
                    eprintln!("stsward: {}: {e}", path.display());
                }
                Err(Failure::Output(e)) => return Err(e).context("writing to standard output"),
            }
        }
        Ok(())
    };
    // Each batch is printed on this thread while the workers parse the next one, so that
    // printing does not leave the workers idle.
    let mut pending: Option<(&[PathBuf], Vec<Rendered>)> = None;
    for batch in files.chunks(BATCH) {
        let (rendered, printed) = render_batch(batch, &limits, c, workers, || {
            pending.take().map_or(Ok(()), |(b, r)| emit(b, r))
        });
        printed?;
        pending = Some((batch, rendered));
    }
    if let Some((b, r)) = pending {
        emit(b, r)?;
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

type Rendered = Result<(usize, Vec<u8>), Failure>;

/// Parses and renders one batch of files on `workers` threads; the results come back in the
/// order of `batch`, whichever thread handled each file. `during` runs on the calling thread
/// meanwhile (before the batch, when there is only one worker).
fn render_batch<R>(
    batch: &[PathBuf],
    limits: &Limits,
    c: &ReportParse,
    workers: usize,
    during: impl FnOnce() -> R,
) -> (Vec<Rendered>, R) {
    if workers <= 1 || batch.len() < 2 {
        let r = during();
        let mut buf = Vec::new();
        let rendered = batch
            .iter()
            .map(|p| render_one(p, limits, c, &mut buf))
            .collect();
        return (rendered, r);
    }
    // Files are taken one at a time from a shared counter, so that a slow file (a large
    // gzip, a mailbox) does not leave the other thread idle.
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Rendered>> =
        std::iter::repeat_with(|| None).take(batch.len()).collect();
    let r = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers.min(batch.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    let mut buf = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = batch.get(i) else { break };
                        done.push((i, render_one(path, limits, c, &mut buf)));
                    }
                    done
                })
            })
            .collect();
        let r = during();
        for h in handles {
            match h.join() {
                Ok(done) => {
                    for (i, r) in done {
                        if let Some(slot) = slots.get_mut(i) {
                            *slot = Some(r);
                        }
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        r
    });
    let rendered = slots
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Failure::Output(std::io::Error::other(
                    "a worker thread returned no result",
                )))
            })
        })
        .collect();
    (rendered, r)
}

/// The `--strict` envelope: `{"source", "report", "deviations"}`.
struct Envelope<'a> {
    source: &'a str,
    report: RfcJson<'a>,
    deviations: &'a [Deviation],
}

impl Serialize for Envelope<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Envelope", 3)?;
        st.serialize_field("source", self.source)?;
        st.serialize_field("report", &self.report)?;
        st.serialize_field("deviations", self.deviations)?;
        st.end()
    }
}

/// Parses every report in one file and renders it as output lines; returns how many reports
/// the text holds. `buf` is scratch space for the file's bytes, reused from file to file.
fn render_one(path: &Path, limits: &Limits, c: &ReportParse, buf: &mut Vec<u8>) -> Rendered {
    buf.clear();
    // Through `take`, which reads into the buffer's spare room without first asking the
    // file for its size and position (two system calls per file that `fs::read` makes).
    std::fs::File::open(path)
        .and_then(|mut f| (&mut f).take(u64::MAX).read_to_end(buf))
        .map_err(|e| Failure::Input(InputError::Read(e)))?;
    let bytes = buf.as_slice();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let Extracted { reports, .. } = extract_from_file(&name, bytes, limits)
        .map_err(|e| Failure::Input(InputError::Extract(e)))?;
    // Parse every report of the input before rendering any, so that an input is either
    // printed whole or reported as failed.
    let mut parsed = Vec::with_capacity(reports.len());
    for r in &reports {
        let p = parse_report(&r.json).map_err(|e| Failure::Input(InputError::Report(e)))?;
        // Only the `--strict` envelope names the source.
        let source = match (c.strict, &r.part.file_name, &r.part.entry_name) {
            (false, ..) => String::new(),
            (true, _, Some(entry)) => format!("{}#{entry}", path.display()),
            (true, Some(f), None) if reports.len() > 1 || f != &name => {
                format!("{}#{f}", path.display())
            }
            (true, ..) => path.display().to_string(),
        };
        parsed.push((source, p));
    }
    let mut out = Vec::with_capacity(bytes.len());
    for (source, p) in &parsed {
        let report = RfcJson(&p.report);
        let written = match (c.strict, c.pretty) {
            (true, pretty) => {
                let line = Envelope {
                    source,
                    report,
                    deviations: &p.deviations,
                };
                if pretty {
                    serde_json::to_writer_pretty(&mut out, &line)
                } else {
                    serde_json::to_writer(&mut out, &line)
                }
            }
            (false, true) => serde_json::to_writer_pretty(&mut out, &report),
            (false, false) => serde_json::to_writer(&mut out, &report),
        };
        written.map_err(|e| Failure::Output(e.into()))?;
        out.push(b'\n');
    }
    Ok((parsed.len(), out))
}

/// Expands directories (recursively, sorted) into the files they hold.
///
/// Each directory's entries are sorted by name and walked in that order, which yields the
/// same order as sorting the full paths component by component, without comparing whole
/// paths.
fn expand(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::with_capacity(inputs.len());
    for p in inputs {
        if p.is_dir() {
            walk(p, &mut files).with_context(|| format!("reading directory {}", p.display()))?;
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let is_dir = entry.file_type()?.is_dir();
        entries.push((entry.file_name(), is_dir));
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (name, is_dir) in entries {
        let path = dir.join(name);
        if is_dir {
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
