//! `stsward reports import|summary|invalid|release|prune` — received TLS-RPT reports (RFC
//! 8460) in the store; wiring only.
//!
//! `import` reads files on every core (reading = extracting and parsing, in
//! [`StoreSink::read`]) and commits them in batches through the same sink the live channels
//! use, so a file is stored exactly as a report e-mail would be. Exit status: 0 done, 1 some
//! input was quarantined (or, for `release`, is still unreadable), 2 could not run.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use stsward_server::intake::{
    Channel, Outcome as SinkOutcome, StoreSink, Submission, SubmissionKind,
};
use stsward_store::{ReportScope, ReportSummary, Store, SummaryQuery};

use crate::Outcome;

/// Prints a line to standard output; a closed pipe (`| head`) ends the output, not the
/// process with a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `stsward reports …`, validated.
#[derive(Debug)]
pub struct Reports {
    /// The configuration file, for `store.url`.
    pub config: Option<PathBuf>,
    /// `--store URL`, replacing `store.url`.
    pub store: Option<String>,
    /// Print JSON.
    pub json: bool,
    /// What to do.
    pub action: ReportsAction,
}

/// One `stsward reports` subcommand.
#[derive(Debug)]
pub enum ReportsAction {
    /// Import files and directories.
    Import {
        /// Files or directories.
        paths: Vec<PathBuf>,
        /// Quarantine report e-mails without a valid DKIM signature.
        require_dkim: bool,
        /// Inputs per transaction.
        batch: usize,
    },
    /// Summarise.
    Summary {
        /// One policy domain.
        domain: Option<String>,
        /// How far back, in seconds.
        since_secs: i64,
    },
    /// List the quarantine.
    Invalid {
        /// Include released entries.
        all: bool,
    },
    /// Re-run a quarantined input.
    Release {
        /// The entry.
        id: i64,
        /// Require a valid DKIM signature this time.
        require_dkim: bool,
    },
    /// Prune raw inputs and details older than this many seconds (default: the
    /// configuration's `reports.retention_days`).
    Prune {
        /// Age in seconds.
        older_than_secs: Option<i64>,
    },
}

/// Reads a duration such as `30d`, `12h`, `2w`, `90m` or `3600` (seconds).
pub fn parse_age(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 30d, 12h or 2w"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => return Err(format!("{other:?} is not a unit: use s, m, h, d or w")),
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("{s:?} is too long"))
}

pub fn run(c: Reports) -> anyhow::Result<Outcome> {
    let mut config = crate::cmd::config::load(c.config.as_deref())?.value;
    if let Some(url) = &c.store {
        config.store.url = url.clone();
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let store = Store::open(&config.store.url)
            .await
            .context("opening the store (store.url or --store)")?;
        let sink = StoreSink::new(store.clone());
        let result = match c.action {
            ReportsAction::Import {
                paths,
                require_dkim,
                batch,
            } => import(&sink, &paths, require_dkim, batch.max(1), now, c.json).await,
            ReportsAction::Summary { domain, since_secs } => {
                summary(&store, domain, now.saturating_sub(since_secs), c.json).await
            }
            ReportsAction::Invalid { all } => invalid(&store, all, c.json).await,
            ReportsAction::Release { id, require_dkim } => {
                release(&sink, id, require_dkim, now, c.json).await
            }
            ReportsAction::Prune { older_than_secs } => {
                let Some(older_than_secs) = older_than_secs.or(config
                    .reports
                    .retention_days
                    .map(|d| i64::from(d) * 86_400))
                else {
                    anyhow::bail!(
                        "give --older-than, or set reports.retention_days in the configuration"
                    );
                };
                let pruned = store
                    .reports_prune(now.saturating_sub(older_than_secs))
                    .await
                    .context("pruning")?;
                say!(
                    "pruned {} raw input(s), {} failure detail(s), {} released quarantine entr(ies); \
                     rollups kept",
                    pruned.raw_inputs, pruned.failure_details, pruned.released_quarantine
                );
                Ok(Outcome::Success)
            }
        };
        store.close().await;
        result
    })
}

/// One input found on disk: a file, or one message of an mbox file.
struct Input {
    origin: String,
    kind: SubmissionKind,
    bytes: Vec<u8>,
}

/// What kind of input a file is: an e-mail by its `.eml` name; anything else is judged by
/// the extractor from its name and first bytes.
fn kind_of(path: &Path) -> SubmissionKind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.to_ascii_lowercase().ends_with(".eml") {
        SubmissionKind::Message
    } else {
        SubmissionKind::File { name }
    }
}

/// Splits an mbox file into its messages: each starts at a `From ` line at the start of the
/// file or after an empty line; that line is dropped, and `>From ` quoting (mboxrd) undone.
pub fn split_mbox(data: &[u8]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if previous_blank && line.starts_with(b"From ") {
            if let Some(m) = current.take() {
                messages.push(m);
            }
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        previous_blank = line == b"\n" || line == b"\r\n";
        let Some(m) = current.as_mut() else { continue };
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            m.extend_from_slice(&line[1..]);
        } else {
            m.extend_from_slice(line);
        }
    }
    messages.extend(current);
    messages
}

fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
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

/// The inputs of one file (an mbox yields one per message).
fn inputs_of(path: &Path) -> Result<Vec<Input>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let origin = path.display().to_string();
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mbox"))
    {
        return Ok(split_mbox(&bytes)
            .into_iter()
            .enumerate()
            .map(|(i, m)| Input {
                origin: format!("{origin} message {}", i + 1),
                kind: SubmissionKind::Message,
                bytes: m,
            })
            .collect());
    }
    Ok(vec![Input {
        origin,
        kind: kind_of(path),
        bytes,
    }])
}

/// What an import did.
#[derive(Debug, Default, serde::Serialize)]
struct ImportSummary {
    inputs: usize,
    imported: usize,
    duplicates: usize,
    invalid: Vec<Invalid>,
}

#[derive(Debug, serde::Serialize)]
struct Invalid {
    origin: String,
    reason: String,
}

/// One input as a reader thread hands it to the writer.
type ReadItem = Result<stsward_server::intake::Prepared, Invalid>;

/// Inputs per hand-over from a reader thread to the writer.
const READ_CHUNK: usize = 16;

async fn import(
    sink: &StoreSink,
    paths: &[PathBuf],
    require_dkim: bool,
    batch: usize,
    now: i64,
    json: bool,
) -> anyhow::Result<Outcome> {
    let files = collect_files(paths)?;
    let progress = if std::io::stderr().is_terminal() && !json {
        indicatif::ProgressBar::new(files.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} files, {per_sec}, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Readers: one thread per core takes the next file, reads and parses it; the results
    // travel through a bounded channel (memory stays bounded) to this task, which commits.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let queue = Arc::new(Mutex::new(files.into_iter()));
    // The queue holds about one batch: the readers fill the next batch while the previous
    // one commits. A read input holds its parsed reports and compressed bytes (tens of KB),
    // so memory stays bounded.
    // Inputs travel in chunks of READ_CHUNK, so that the readers and the collector wake each
    // other once per chunk, not once per input.
    let (tx, rx) = mpsc::sync_channel::<Vec<ReadItem>>((batch / READ_CHUNK).clamp(2, 128));
    let mut threads = Vec::new();
    for _ in 0..workers {
        let (queue, tx, sink, progress) =
            (queue.clone(), tx.clone(), sink.clone(), progress.clone());
        threads.push(std::thread::spawn(move || {
            let mut chunk = Vec::with_capacity(READ_CHUNK);
            loop {
                let next = match queue.lock() {
                    Ok(mut q) => q.next(),
                    Err(_) => None,
                };
                let Some(path) = next else { break };
                match inputs_of(&path) {
                    Ok(inputs) => {
                        for input in inputs {
                            let submission = Submission {
                                channel: Channel::File,
                                kind: input.kind,
                                raw: input.bytes.into(),
                                received_at: now,
                                peer: None,
                                origin: input.origin,
                                require_dkim,
                            };
                            chunk.push(Ok(sink.read(&submission)));
                        }
                    }
                    Err(reason) => chunk.push(Err(Invalid {
                        origin: path.display().to_string(),
                        reason,
                    })),
                }
                progress.inc(1);
                if chunk.len() >= READ_CHUNK
                    && tx
                        .send(std::mem::replace(
                            &mut chunk,
                            Vec::with_capacity(READ_CHUNK),
                        ))
                        .is_err()
                {
                    return;
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
        }));
    }
    drop(tx);
    let mut summary = ImportSummary::default();
    let rx = Arc::new(Mutex::new(rx));
    let mut in_flight: Option<CommitTask> = None;
    loop {
        // Take up to `batch` prepared inputs, waiting for the readers off the async workers.
        let rx2 = rx.clone();
        let got = tokio::task::spawn_blocking(move || {
            let mut got = Vec::new();
            let Ok(rx) = rx2.lock() else { return got };
            while got.len() < batch {
                // Wait for the first; then take what the readers produce until the batch is
                // full or they pause (a slow file must not hold back what is read).
                let item = if got.is_empty() {
                    rx.recv().ok()
                } else {
                    rx.recv_timeout(std::time::Duration::from_millis(50)).ok()
                };
                match item {
                    Some(chunk) => got.extend(chunk),
                    None => break,
                }
            }
            got
        })
        .await
        .context("the reader threads failed")?;
        if got.is_empty() {
            break;
        }
        let mut groups = Vec::with_capacity(got.len());
        let mut origins = Vec::with_capacity(got.len());
        for item in got {
            summary.inputs += 1;
            match item {
                Ok(prepared) => {
                    origins.push(prepared.origin().to_owned());
                    groups.push(sink.judge(prepared).await);
                }
                Err(invalid) => summary.invalid.push(invalid),
            }
        }
        // One commit in flight: this batch commits while the readers fill the next one.
        if let Some(previous) = in_flight.take() {
            tally(&mut summary, &progress, join_commit(previous).await?);
        }
        let sink = sink.clone();
        in_flight = Some(tokio::spawn(async move {
            let outcomes = sink.commit(groups).await?;
            Ok::<_, stsward_server::intake::SinkError>((origins, outcomes))
        }));
    }
    if let Some(last) = in_flight.take() {
        tally(&mut summary, &progress, join_commit(last).await?);
    }
    for t in threads {
        let _ = t.join();
    }
    progress.finish_and_clear();
    if json {
        say!("{}", serde_json::to_string(&summary)?);
    } else {
        say!(
            "{} input(s): {} report(s) imported, {} duplicate(s), {} invalid",
            summary.inputs,
            summary.imported,
            summary.duplicates,
            summary.invalid.len()
        );
        for i in &summary.invalid {
            say!("invalid: {}: {}", i.origin, i.reason);
        }
        if !summary.invalid.is_empty() {
            say!("(kept in the quarantine: stsward reports invalid)");
        }
    }
    Ok(if summary.invalid.is_empty() {
        Outcome::Success
    } else {
        Outcome::Problems
    })
}

/// A batch being committed: the origins of its inputs and their outcomes.
type CommitTask = tokio::task::JoinHandle<
    Result<(Vec<String>, Vec<SinkOutcome>), stsward_server::intake::SinkError>,
>;

async fn join_commit(task: CommitTask) -> anyhow::Result<(Vec<String>, Vec<SinkOutcome>)> {
    task.await
        .context("the commit task failed")?
        .context("storing reports")
}

/// Counts a committed batch's outcomes into the summary.
fn tally(
    summary: &mut ImportSummary,
    progress: &indicatif::ProgressBar,
    (origins, outcomes): (Vec<String>, Vec<SinkOutcome>),
) {
    for (origin, outcome) in origins.into_iter().zip(outcomes) {
        match outcome {
            SinkOutcome::Stored { stored, duplicates } => {
                summary.imported += stored;
                summary.duplicates += duplicates;
            }
            SinkOutcome::Quarantined { reason } => summary.invalid.push(Invalid { origin, reason }),
        }
    }
    progress.set_message(format!(
        "{} imported, {} duplicates, {} invalid",
        summary.imported,
        summary.duplicates,
        summary.invalid.len()
    ));
}

fn day_string(day: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(day)
        .map(|t| {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        })
        .unwrap_or_else(|_| day.to_string())
}

fn rate(s: &ReportSummary) -> String {
    s.success_rate()
        .map_or_else(|| "n/a".to_owned(), |r| format!("{:.2}%", r * 100.0))
}

async fn summary(
    store: &Store,
    domain: Option<String>,
    since: i64,
    json: bool,
) -> anyhow::Result<Outcome> {
    let domain = domain.map(|d| stsward_store::reports::normalise_domain(&d));
    let query = SummaryQuery {
        scope: ReportScope::Install,
        domain: domain.clone(),
        since,
        until: None,
    };
    let s = store
        .reports_summary(&query)
        .await
        .context("reading the summary")?;
    if json {
        let mut value = serde_json::to_value(&s)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("success_rate".into(), serde_json::json!(s.success_rate()));
            obj.insert(
                "since".into(),
                serde_json::json!(since.div_euclid(86_400) * 86_400),
            );
            obj.insert("domain".into(), serde_json::json!(domain));
        }
        say!("{value}");
        return Ok(Outcome::Success);
    }
    let what = domain.as_deref().unwrap_or("all domains");
    say!(
        "TLS-RPT summary for {what} since {}",
        day_string(since.div_euclid(86_400) * 86_400)
    );
    say!(
        "sessions: {} successful, {} failed, success rate {}",
        s.successful,
        s.failed,
        rate(&s)
    );
    if !s.by_result_type.is_empty() {
        say!("\nfailures by result type:");
        for t in &s.by_result_type {
            say!("  {:>10}  {}", t.failed, t.result_type);
            if !t.meaning.is_empty() {
                say!("              {}", t.meaning);
            }
        }
    }
    if !s.by_organization.is_empty() {
        say!("\nby sending organisation (successful / failed):");
        for o in &s.by_organization {
            say!(
                "  {:>10} / {:<10} {}",
                o.successful,
                o.failed,
                o.organization
            );
        }
    }
    if !s.by_receiving_mx.is_empty() {
        say!("\nfailures by receiving MX/IP:");
        for m in &s.by_receiving_mx {
            let name = if m.receiving_mx.is_empty() {
                "(not named)"
            } else {
                &m.receiving_mx
            };
            say!("  {:>10}  {name}", m.failed);
        }
    }
    if !s.days.is_empty() {
        say!("\nday by day (successful / failed):");
        for d in &s.days {
            say!(
                "  {}  {:>10} / {}",
                day_string(d.day),
                d.successful,
                d.failed
            );
        }
    }
    Ok(Outcome::Success)
}

async fn invalid(store: &Store, all: bool, json: bool) -> anyhow::Result<Outcome> {
    let mut before = None;
    let mut counts: BTreeMap<bool, usize> = BTreeMap::new();
    loop {
        let page = store
            .quarantine_list(all, before, 500)
            .await
            .context("listing the quarantine")?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        for q in &page {
            *counts.entry(q.released_at.is_some()).or_default() += 1;
            if json {
                say!(
                    "{}",
                    serde_json::json!({
                        "id": q.id, "received_at": q.received_at, "channel": q.channel,
                        "kind": q.kind, "origin": q.origin, "reason": q.reason,
                        "size": q.size, "released_at": q.released_at,
                    })
                );
            } else {
                let released = q
                    .released_at
                    .map(|t| format!(" (released {})", day_string(t)))
                    .unwrap_or_default();
                say!(
                    "{:>6}  {}  {}  {}{released}\n        {}",
                    q.id,
                    day_string(q.received_at),
                    q.channel,
                    q.origin,
                    q.reason
                );
            }
        }
    }
    if !json && counts.is_empty() {
        say!("the quarantine is empty");
    }
    Ok(Outcome::Success)
}

async fn release(
    sink: &StoreSink,
    id: i64,
    require_dkim: bool,
    now: i64,
    json: bool,
) -> anyhow::Result<Outcome> {
    let outcome = sink
        .release(id, require_dkim, now)
        .await
        .context("releasing")?;
    let (text, value, code) = match outcome {
        None => (
            format!("no quarantine entry {id}"),
            serde_json::json!({"id": id, "found": false}),
            Outcome::Problems,
        ),
        Some(SinkOutcome::Stored { stored, duplicates }) => (
            format!("entry {id} released: {stored} report(s) stored, {duplicates} duplicate(s)"),
            serde_json::json!({"id": id, "released": true, "stored": stored, "duplicates": duplicates}),
            Outcome::Success,
        ),
        Some(SinkOutcome::Quarantined { reason }) => (
            format!("entry {id} stays in the quarantine: {reason}"),
            serde_json::json!({"id": id, "released": false, "reason": reason}),
            Outcome::Problems,
        ),
    };
    if json {
        say!("{value}");
    } else {
        say!("{text}");
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        let good: &[(&str, i64)] = &[
            ("30d", 30 * 86_400),
            ("12h", 43_200),
            ("2w", 1_209_600),
            ("90", 90),
        ];
        for (s, secs) in good {
            assert_eq!(parse_age(s), Ok(*secs), "{s}");
        }
        for bad in ["", "d", "3y", "-1d", "99999999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mbox_is_split_at_from_lines_and_unquoted() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n>From here\n\nFrom c@d Tue Jan  2 00:00:00 2024\nSubject: two\n\nx\n";
        let messages = split_mbox(mbox);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0], b"Subject: one\n\nbody\nFrom here\n\n");
        assert_eq!(messages[1], b"Subject: two\n\nx\n");
        // A "From " line inside a paragraph does not start a message.
        assert_eq!(split_mbox(b"From x\nA: b\n\ntext\nFrom inside\n").len(), 1);
    }
}
