//! The store-backed [`ReportSink`]: reads a submission (RFC 8460 §5.3 report e-mail, §5.4
//! POST body, or a file), checks DKIM (§3), and commits its reports, deduplicated, or its raw
//! bytes to the quarantine with the reason, before it answers.
//!
//! ```text
//! Submission --read (CPU: extract, parse, compress)--> Prepared
//!            --judge (DKIM, async)--------------------> [Intake]   one or two per input
//!            --commit (one transaction per batch)-----> Outcome
//! ```
//!
//! An input whose every report part is readable becomes one [`Intake`] of reports; one with
//! no readable report is quarantined whole; one with both stores the readable reports and
//! also quarantines the raw input with the reasons of the parts that could not be read, so
//! nothing is dropped silently. Reading is pure and synchronous, so that `stsward reports
//! import` can run it on every core and commit the results in batches
//! ([`StoreSink::commit`]).

use std::sync::Arc;

use stsward_mail::{Extracted, Limits, extract_from_file, extract_from_message};
use stsward_proto::tlsrpt::parse_report;
use stsward_store::{
    Intake, IntakeContent, IntakeResult, RawInput, ReportRecord, Store, StoreError,
};

use super::dkim_check::{DkimCheck, DkimVerdict, NotChecked};
use super::group_commit::GroupCommit;
use super::sink::{Channel, Outcome, ReportSink, SinkError, Submission, SubmissionKind};

/// A submission after reading, before the DKIM check.
#[derive(Debug)]
pub struct Prepared {
    channel: Channel,
    kind: String,
    origin: String,
    received_at: i64,
    raw: RawInput,
    /// The message bytes, kept for the DKIM check (only for messages read successfully).
    message: Option<bytes::Bytes>,
    submitter: Option<String>,
    require_dkim: bool,
    reports: Vec<(stsward_proto::tlsrpt::Report, usize)>,
    /// Why parts (or the whole input) could not be read.
    problems: Vec<String>,
    releases: Option<i64>,
}

impl Prepared {
    /// Where the submission came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// How many reports were read from it.
    pub fn report_count(&self) -> usize {
        self.reports.len()
    }
}

/// The sink: a store, a DKIM check and extraction limits. Cloning shares them.
#[derive(Clone)]
pub struct StoreSink {
    store: Store,
    dkim: Arc<dyn DkimCheck>,
    limits: Limits,
    /// Set by [`StoreSink::with_group_commit`]: [`ReportSink::submit`] commits through it.
    group: Option<GroupCommit>,
}

impl std::fmt::Debug for StoreSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSink")
            .field("store", &self.store)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The kind of a submission as stored with a quarantined input, and read back on release.
fn kind_name(kind: &SubmissionKind) -> String {
    match kind {
        SubmissionKind::Message => "message".to_owned(),
        SubmissionKind::Json => "json".to_owned(),
        SubmissionKind::Gzip => "gzip".to_owned(),
        SubmissionKind::File { name } => format!("file:{name}"),
    }
}

fn kind_from_name(name: &str) -> SubmissionKind {
    match name {
        "message" => SubmissionKind::Message,
        "json" => SubmissionKind::Json,
        "gzip" => SubmissionKind::Gzip,
        other => SubmissionKind::File {
            name: other.strip_prefix("file:").unwrap_or(other).to_owned(),
        },
    }
}

fn channel_from_name(name: &str) -> Channel {
    match name {
        "smtp" => Channel::Smtp,
        "https" => Channel::Https,
        "imap" => Channel::Imap,
        _ => Channel::File,
    }
}

/// A part's name for people: the zip entry, else the attachment or file name, else its media
/// type. A POST body (`named` false) has no name of its own.
fn part_label(part: &stsward_mail::PartInfo, index: usize, named: bool) -> String {
    let file_name = part.file_name.as_deref().filter(|_| named);
    let name = part
        .entry_name
        .as_deref()
        .or(file_name)
        .or(part.content_type.as_deref());
    match name {
        Some(n) => format!("report part {} ({n:?})", index + 1),
        None => format!("report part {}", index + 1),
    }
}

impl StoreSink {
    /// A sink on `store` with no DKIM verifier ([`NotChecked`]) and the default limits.
    pub fn new(store: Store) -> StoreSink {
        StoreSink {
            store,
            dkim: Arc::new(NotChecked),
            limits: Limits::default(),
            group: None,
        }
    }

    /// Uses `check` to verify DKIM on report e-mails.
    pub fn with_dkim(mut self, check: Arc<dyn DkimCheck>) -> StoreSink {
        self.dkim = check;
        self
    }

    /// Uses these extraction limits (sizes, counts).
    pub fn with_limits(mut self, limits: Limits) -> StoreSink {
        self.limits = limits;
        self
    }

    /// Commits [`ReportSink::submit`]'s inputs through a [`GroupCommit`] started now on the
    /// current tokio runtime: concurrent submissions share transactions. Call it last, after
    /// the other `with_` settings, which the committer takes as they are.
    pub fn with_group_commit(mut self) -> StoreSink {
        self.group = Some(GroupCommit::start(self.clone()));
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Reads a submission: extracts its reports, parses them and compresses the raw bytes.
    /// Pure CPU work, no I/O; safe to run on any thread.
    pub fn read(&self, submission: &Submission) -> Prepared {
        let mut prepared = Prepared {
            channel: submission.channel,
            kind: kind_name(&submission.kind),
            origin: submission.origin.clone(),
            received_at: submission.received_at,
            raw: RawInput::compress(&submission.raw),
            message: None,
            submitter: None,
            require_dkim: submission.require_dkim && submission.kind == SubmissionKind::Message,
            reports: Vec::new(),
            problems: Vec::new(),
            releases: None,
        };
        let extracted = match &submission.kind {
            SubmissionKind::Message => extract_from_message(&submission.raw, &self.limits),
            SubmissionKind::Json => extract_from_file("report.json", &submission.raw, &self.limits),
            SubmissionKind::Gzip => {
                extract_from_file("report.json.gz", &submission.raw, &self.limits)
            }
            SubmissionKind::File { name } => extract_from_file(name, &submission.raw, &self.limits),
        };
        let extracted: Extracted = match extracted {
            Ok(e) => e,
            Err(e) => {
                prepared.problems.push(e.to_string());
                return prepared;
            }
        };
        if extracted.headers.is_some() {
            prepared.message = Some(submission.raw.clone());
            prepared.submitter = extracted.headers.as_ref().and_then(|h| h.submitter.clone());
        }
        for skipped in &extracted.skipped {
            prepared.problems.push(skipped.error.to_string());
        }
        let named = matches!(
            submission.kind,
            SubmissionKind::Message | SubmissionKind::File { .. }
        );
        for (i, part) in extracted.reports.iter().enumerate() {
            match parse_report(&part.json) {
                Ok(parsed) => prepared
                    .reports
                    .push((parsed.report, parsed.deviations.len())),
                Err(e) => prepared
                    .problems
                    .push(format!("{}: {e}", part_label(&part.part, i, named))),
            }
        }
        prepared
    }

    /// Checks DKIM where it applies and decides what to commit for one read submission.
    pub async fn judge(&self, prepared: Prepared) -> Vec<Intake> {
        let verdict = match &prepared.message {
            Some(message) if !prepared.reports.is_empty() => {
                self.dkim
                    .check(message, prepared.submitter.as_deref())
                    .await
            }
            Some(_) => DkimVerdict::NotChecked,
            None => DkimVerdict::NotApplicable,
        };
        let Prepared {
            channel,
            kind,
            origin,
            received_at,
            raw,
            require_dkim,
            reports,
            problems,
            releases,
            ..
        } = prepared;
        let channel = channel.as_str().to_owned();
        let intake = |raw: RawInput, content: IntakeContent| Intake {
            channel: channel.clone(),
            kind: kind.clone(),
            origin: origin.clone(),
            received_at,
            raw,
            content,
            releases,
        };
        if require_dkim && !reports.is_empty() && !verdict.passed() {
            let reason = verdict.refusal();
            return vec![intake(raw, IntakeContent::Quarantine { reason })];
        }
        let mut records = Vec::with_capacity(reports.len());
        let mut problems = problems;
        let dkim = verdict.record();
        for (i, (report, deviations)) in reports.into_iter().enumerate() {
            match ReportRecord::new(report, deviations, dkim.clone()) {
                Ok(r) => records.push(r),
                Err(e) => problems.push(format!("report {}: {e}", i + 1)),
            }
        }
        let mut intakes = Vec::with_capacity(2);
        match (problems.is_empty(), records.is_empty()) {
            (true, false) => intakes.push(intake(raw, IntakeContent::Reports(records))),
            (false, false) => {
                let reason = problems.join("; ");
                intakes.push(intake(raw.clone(), IntakeContent::Quarantine { reason }));
                intakes.push(intake(raw, IntakeContent::Reports(records)));
            }
            (false, true) => {
                let reason = problems.join("; ");
                intakes.push(intake(raw, IntakeContent::Quarantine { reason }));
            }
            (true, true) => {
                let reason = "the input holds no report".to_owned();
                intakes.push(intake(raw, IntakeContent::Quarantine { reason }));
            }
        }
        intakes
    }

    /// Commits the intakes of several submissions in one transaction; `groups[i]` are the
    /// intakes of submission `i` (from [`StoreSink::judge`]). Returns one outcome per
    /// submission. On an error nothing is committed.
    pub async fn commit(&self, groups: Vec<Vec<Intake>>) -> Result<Vec<Outcome>, SinkError> {
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        let flat: Vec<Intake> = groups.into_iter().flatten().collect();
        self.commit_flat(&sizes, &flat).await
    }

    /// [`StoreSink::commit`] of intakes already laid end to end: submission `i` owns the
    /// next `sizes[i]` of `flat`.
    pub(crate) async fn commit_flat(
        &self,
        sizes: &[usize],
        flat: &[Intake],
    ) -> Result<Vec<Outcome>, SinkError> {
        let results = self.store.reports_ingest(flat).await.map_err(sink_error)?;
        let mut results = results.into_iter();
        let mut flat = flat.iter();
        let mut outcomes = Vec::with_capacity(sizes.len());
        for &size in sizes {
            let mut stored = None;
            let mut reason = None;
            for _ in 0..size {
                let (result, intake) = (results.next(), flat.next());
                match (result, intake.map(|i| &i.content)) {
                    (
                        Some(IntakeResult::Stored {
                            stored: s,
                            duplicates: d,
                        }),
                        _,
                    ) => {
                        let (s0, d0) = stored.unwrap_or((0, 0));
                        stored = Some((s0 + s, d0 + d));
                    }
                    (
                        Some(IntakeResult::Quarantined { .. }),
                        Some(IntakeContent::Quarantine { reason: r }),
                    ) => {
                        reason = Some(r.clone());
                    }
                    _ => {}
                }
            }
            outcomes.push(match (stored, reason) {
                (Some((stored, duplicates)), _) => Outcome::Stored { stored, duplicates },
                (None, Some(reason)) => Outcome::Quarantined { reason },
                (None, None) => Outcome::Stored {
                    stored: 0,
                    duplicates: 0,
                },
            });
        }
        Ok(outcomes)
    }

    /// Reads, judges and commits many submissions in one transaction (file import). Reading
    /// runs on the calling task; for parallel reading call [`StoreSink::read`] on worker
    /// threads and then [`StoreSink::judge`] and [`StoreSink::commit`].
    pub async fn submit_batch(
        &self,
        submissions: &[Submission],
    ) -> Result<Vec<Outcome>, SinkError> {
        let mut groups = Vec::with_capacity(submissions.len());
        for s in submissions {
            let prepared = self.read(s);
            groups.push(self.judge(prepared).await);
        }
        self.commit(groups).await
    }

    /// Runs quarantined input `id` through intake again, requiring DKIM or not as
    /// `require_dkim` says. Its reports are stored and the entry marked released in one
    /// transaction; input that still cannot be read stays in the quarantine unchanged.
    /// `None` when there is no such entry.
    pub async fn release(
        &self,
        id: i64,
        require_dkim: bool,
        now: i64,
    ) -> Result<Option<Outcome>, SinkError> {
        let Some((entry, raw)) = self.store.quarantine_get(id).await.map_err(sink_error)? else {
            return Ok(None);
        };
        let bytes = raw.decompress().map_err(|e| {
            SinkError(format!(
                "quarantine entry {id}: the stored raw input is damaged: {e}"
            ))
        })?;
        let submission = Submission {
            channel: channel_from_name(&entry.channel),
            kind: kind_from_name(&entry.kind),
            raw: bytes.into(),
            received_at: now,
            peer: None,
            origin: entry.origin.clone(),
            require_dkim,
        };
        let mut prepared = self.read(&submission);
        prepared.releases = Some(id);
        let intakes = self.judge(prepared).await;
        let mut outcomes = self.commit(vec![intakes]).await?;
        Ok(outcomes.pop())
    }
}

fn sink_error(e: StoreError) -> SinkError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    SinkError(text)
}

#[async_trait::async_trait]
impl ReportSink for StoreSink {
    async fn submit(&self, submission: Submission) -> Result<Outcome, SinkError> {
        // Reading is CPU work on up to max_input bytes: keep it off the async workers.
        let this = self.clone();
        let prepared = tokio::task::spawn_blocking(move || this.read(&submission))
            .await
            .map_err(|e| SinkError(format!("reading the submission failed: {e}")))?;
        let intakes = self.judge(prepared).await;
        if let Some(group) = &self.group {
            return group.commit(intakes).await;
        }
        let mut outcomes = self.commit(vec![intakes]).await?;
        outcomes
            .pop()
            .ok_or_else(|| SinkError("the store gave no outcome".to_owned()))
    }
}
