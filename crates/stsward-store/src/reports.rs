//! Received TLS-RPT reports (RFC 8460 §4.4): storing them exactly once, with their raw input,
//! and the daily rollups the summaries read.
//!
//! ```text
//! report_raw         id, received_at, size, compressed        one per input read (zlib)
//! reports            id, (org_key, id_key) UNIQUE, ...        one per distinct report
//! report_policies    (report_id, idx), domain, type, counts   RFC 8460 §4.4 "policies"
//! report_failures    (report_id, policy_idx, idx), ...        "failure-details"; pruned
//! report_rollups     (policy_domain, day, organization, receiving_mx, result_type)
//!                    -> successful, failed                     what summaries read
//! report_quarantine  id, raw, reason, channel, origin, received_at, released_at
//! ```
//!
//! [`Store::reports_ingest`] commits a batch of inputs in one transaction:
//!
//! ```text
//! for each input:  quarantine row            (unreadable or refused input)
//!              or  raw row, then per report:  INSERT reports ... ON CONFLICT DO NOTHING
//!                                             RETURNING id
//!                                             -> a row: new; insert policies, details and
//!                                                add its counts to the rollup deltas
//!                                             -> none:  a duplicate, only counted
//! then:            policies, details and rollup deltas (upserted), in multi-row statements
//! ```
//!
//! Deduplication is the unique index, never a read followed by a write: on PostgreSQL a
//! second transaction inserting the same key waits for the first and then does nothing, so
//! two replicas ingesting the same report store and roll it up once. Within a transaction,
//! reports are inserted in key order and rollups upserted in key order, so two concurrent
//! batches take their locks in the same order and cannot deadlock each other. On SQLite the
//! transaction starts with `BEGIN IMMEDIATE`: one writer at a time, waiting up to the busy
//! timeout.
//!
//! Rollups: a policy's summary (RFC 8460 §4.2.2 counts) goes to the row with result type
//! `''` and receiving MX `''`; each failure detail (§4.3 result types) adds its
//! `failed-session-count` to the row of its result type and receiving MX (host name, else
//! IP). The day is the UTC day the report's date range begins. A summary reads only rollups
//! ([`summary`]), so its cost grows with domains × days × organisations × MX hosts, not with
//! reports.

pub mod details;
mod ingest;
pub mod listing;
pub mod quarantine;
pub mod summary;

use std::io::{Read, Write};

use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::{Compress, Compression, FlushCompress, Status};
use stsward_proto::tlsrpt::Report;

pub use quarantine::QuarantinedInput;
pub use summary::{
    DaySessions, MxFailures, OrganizationSessions, ReportScope, ReportSummary, SummaryParts,
    SummaryQuery, TypeFailures,
};

/// Longest organisation name or report id accepted, in bytes: they form the unique key,
/// and PostgreSQL refuses index entries of more than about 2,700 bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest other text value stored from a report, in bytes; longer values are cut (at a
/// character boundary). The raw input keeps the whole value.
pub const MAX_FIELD_BYTES: usize = 4096;
/// Seconds in a day; rollup days start at 00:00 UTC.
pub const DAY: i64 = 86_400;

/// An input's bytes, zlib-compressed. Compressing is done by the caller, on any thread, so
/// that the writer's transaction does not wait for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawInput {
    size: usize,
    compressed: Vec<u8>,
    /// SHA-256 of the original bytes, lowercase hex: the quarantine keeps one entry per
    /// input waiting.
    digest: String,
}

/// Deflate states kept for reuse: setting one up clears several hundred KB, which costs
/// more than compressing a typical report. At most this many wait between uses, so memory
/// stays bounded however many threads compress at once.
const DEFLATE_POOL: usize = 8;

static DEFLATERS: std::sync::Mutex<Vec<Compress>> = std::sync::Mutex::new(Vec::new());

/// `bytes` as a zlib stream (RFC 1950) at the fast level, with a pooled deflate state.
fn deflate(bytes: &[u8]) -> Vec<u8> {
    let pooled = DEFLATERS.lock().ok().and_then(|mut pool| pool.pop());
    let mut state = match pooled {
        Some(mut state) => {
            state.reset();
            state
        }
        None => Compress::new(Compression::fast(), true),
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 + 64);
    loop {
        let consumed = usize::try_from(state.total_in()).unwrap_or(usize::MAX);
        let input = bytes.get(consumed..).unwrap_or_default();
        match state.compress_vec(input, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => break,
            // More room is needed (compress_vec writes only into spare capacity).
            Ok(Status::Ok | Status::BufError) => out.reserve(out.capacity().max(64)),
            // Not expected with a fresh or reset state; that state is dropped, not pooled,
            // and a one-shot encoder does the work.
            Err(_) => return deflate_once(bytes),
        }
    }
    if let Ok(mut pool) = DEFLATERS.lock()
        && pool.len() < DEFLATE_POOL
    {
        pool.push(state);
    }
    out
}

/// `bytes` as a zlib stream with a deflate state of its own.
fn deflate_once(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_default()
}

impl RawInput {
    /// Compresses `bytes` (zlib, fast level: raw inputs are kept for reference, not read
    /// often).
    pub fn compress(bytes: &[u8]) -> RawInput {
        RawInput {
            size: bytes.len(),
            compressed: deflate(bytes),
            digest: hex_sha256(bytes),
        }
    }

    /// Rebuilds from stored parts.
    pub(crate) fn from_stored(size: i64, compressed: Vec<u8>, digest: String) -> RawInput {
        RawInput {
            size: usize::try_from(size).unwrap_or(0),
            compressed,
            digest,
        }
    }

    /// SHA-256 of the original bytes, lowercase hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The original size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The compressed size in bytes.
    pub fn compressed_len(&self) -> usize {
        self.compressed.len()
    }

    /// The original bytes. Fails when the stored data is damaged.
    pub fn decompress(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.size);
        // Bounded by the size recorded at compression, plus one byte to notice a lie.
        ZlibDecoder::new(self.compressed.as_slice())
            .take(self.size as u64 + 1)
            .read_to_end(&mut out)?;
        if out.len() != self.size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "raw input is {} bytes, {} were recorded",
                    out.len(),
                    self.size
                ),
            ));
        }
        Ok(out)
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write as _;
    let hash = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in hash {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The DKIM result stored with a report (RFC 8460 §3), as the intake judged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkimRecord {
    /// One word: `pass`, `fail`, `none`, `not-checked`, ...
    pub result: String,
    /// Details: the signing domain, or why it failed.
    pub detail: Option<String>,
}

/// Why a report cannot be stored as it is (the intake quarantines it with this reason).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The organisation name or report id, which form the unique key, is too long.
    #[error("{field} is {len} bytes, more than the {max} the store accepts as a key")]
    KeyTooLong {
        /// `organization-name` or `report-id`.
        field: &'static str,
        /// Its length.
        len: usize,
        /// [`MAX_KEY_BYTES`].
        max: usize,
    },
    /// The organisation name or report id is empty (after trimming), so reports of
    /// different senders could not be told apart.
    #[error("{field} is empty, so the report cannot be told apart from others")]
    EmptyKey {
        /// `organization-name` or `report-id`.
        field: &'static str,
    },
}

/// A parsed report ready to store, with its unique key.
#[derive(Clone, Debug)]
pub struct ReportRecord {
    report: Report,
    org_key: String,
    id_key: String,
    deviations: usize,
    dkim: DkimRecord,
}

impl ReportRecord {
    /// Checks `report`'s key and wraps it. `deviations` is how many departures from RFC 8460
    /// §4.4 the parser recorded; `dkim` the DKIM result of the message that carried it.
    pub fn new(report: Report, deviations: usize, dkim: DkimRecord) -> Result<Self, RecordError> {
        let (org_key, id_key) = dedup_key(&report.organization_name, &report.report_id)?;
        Ok(ReportRecord {
            report,
            org_key,
            id_key,
            deviations,
            dkim,
        })
    }

    /// The report.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The unique key: the organisation (trimmed, lowercase) and the report id (trimmed).
    pub fn key(&self) -> (&str, &str) {
        (&self.org_key, &self.id_key)
    }
}

/// The deduplication key of a report: RFC 8460 §4.4 "report-id" is "a unique identifier for
/// the report" chosen by the reporting organisation, so the pair identifies a report. The
/// organisation is compared without case; both without surrounding white space.
pub fn dedup_key(organization: &str, report_id: &str) -> Result<(String, String), RecordError> {
    let org = organization.trim();
    let id = report_id.trim();
    for (field, value) in [("organization-name", org), ("report-id", id)] {
        if value.is_empty() {
            return Err(RecordError::EmptyKey { field });
        }
        if value.len() > MAX_KEY_BYTES {
            return Err(RecordError::KeyTooLong {
                field,
                len: value.len(),
                max: MAX_KEY_BYTES,
            });
        }
    }
    Ok((clean(&org.to_lowercase()), clean(id)))
}

/// What one input is: reports to store, or input to quarantine.
#[derive(Clone, Debug)]
pub enum IntakeContent {
    /// The reports read from the input (at least one).
    Reports(Vec<ReportRecord>),
    /// The input cannot be read, or was refused, for this reason.
    Quarantine {
        /// Why, in plain words.
        reason: String,
    },
}

/// One input to commit.
#[derive(Clone, Debug)]
pub struct Intake {
    /// The channel that received it (`smtp`, `https`, `imap`, `file`).
    pub channel: String,
    /// What its bytes are (`message`, `json`, `gzip`, or a file name), so that a released
    /// input is read the same way again.
    pub kind: String,
    /// Where it came from, for people.
    pub origin: String,
    /// When it was received, epoch seconds.
    pub received_at: i64,
    /// Its bytes.
    pub raw: RawInput,
    /// What to do with it.
    pub content: IntakeContent,
    /// The quarantine entry this input is released from: marked released in the same
    /// transaction when the reports are stored; when it is to be quarantined again, the
    /// entry stays as it is and no new one is made.
    pub releases: Option<i64>,
}

/// What became of one committed input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntakeResult {
    /// `stored` reports are new, `duplicates` were stored before (or earlier in the batch).
    Stored {
        /// New reports.
        stored: usize,
        /// Reports already stored.
        duplicates: usize,
    },
    /// Kept in the quarantine as entry `id`.
    Quarantined {
        /// The quarantine entry.
        id: i64,
    },
}

/// Counts of what [`Store::reports_prune`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Raw inputs.
    pub raw_inputs: u64,
    /// Failure details.
    pub failure_details: u64,
    /// Released quarantine entries.
    pub released_quarantine: u64,
}

/// Totals over the stored report rows themselves (not the rollups): for checks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredTotals {
    /// Distinct reports stored.
    pub reports: u64,
    /// Successful sessions over all of them.
    pub successful: u64,
    /// Failed sessions over all of them.
    pub failed: u64,
    /// Failure detail rows.
    pub failure_details: u64,
    /// Raw inputs kept.
    pub raw_inputs: u64,
}

/// A policy's domain as rolled up: trimmed, lowercase, without a final dot; `''` when the
/// report names none.
pub(crate) fn policy_domain_of(p: &stsward_proto::tlsrpt::PolicyResult) -> String {
    p.policy
        .policy_domain
        .as_deref()
        .map(normalise_domain)
        .unwrap_or_default()
}

/// A domain as the rollups key it: trimmed, lowercase, without a final dot, bounded.
pub fn normalise_domain(domain: &str) -> String {
    field(domain.trim().trim_end_matches('.')).to_lowercase()
}

/// The report's distinct policy domains, space-separated, in report order.
pub(crate) fn policy_domains(report: &Report) -> String {
    let mut out: Vec<String> = Vec::new();
    for p in &report.policies {
        let d = policy_domain_of(p);
        if !d.is_empty() && !out.contains(&d) {
            out.push(d);
        }
    }
    out.join(" ")
}

/// Text as stored: NUL (which PostgreSQL's `text` cannot hold) becomes U+FFFD, so that both
/// backends store the same value.
pub(crate) fn clean(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s.to_owned()
    }
}

/// A report's text value as stored: [`clean`], and cut to [`MAX_FIELD_BYTES`].
pub(crate) fn field(s: &str) -> String {
    let mut end = s.len().min(MAX_FIELD_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    clean(&s[..end])
}

/// A count as stored (BIGINT): counts beyond `i64::MAX` are held at it.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_input_round_trips() {
        for bytes in [&b""[..], b"{}", &[0xffu8; 10_000][..]] {
            let raw = RawInput::compress(bytes);
            assert_eq!(raw.size(), bytes.len());
            assert_eq!(raw.decompress().expect("decompress"), bytes);
        }
        // Pooled deflate states are reset between inputs: many inputs of different sizes in
        // a row, incompressible ones (larger than the first guess of the output) included,
        // from several threads at once.
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut x = 0x9e37_79b9u32 ^ t;
                    for n in [0usize, 1, 100, 70_000, 3, 1 << 20, 17] {
                        let bytes: Vec<u8> = (0..n)
                            .map(|_| {
                                x ^= x << 13;
                                x ^= x >> 17;
                                x ^= x << 5;
                                x.to_le_bytes()[0]
                            })
                            .collect();
                        let raw = RawInput::compress(&bytes);
                        assert_eq!(raw.decompress().expect("decompress"), bytes, "{n} bytes");
                        assert_eq!(raw.digest(), hex_sha256(&bytes));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let damaged = RawInput::from_stored(5, b"not zlib".to_vec(), String::new());
        assert!(damaged.decompress().is_err());
    }

    #[test]
    fn dedup_keys() {
        // ((organisation, report id), its key)
        type Pair<'a> = (&'a str, &'a str);
        let good: &[(Pair, Pair)] = &[
            (
                ("Google Inc.", "2024-01-01Z_x"),
                ("google inc.", "2024-01-01Z_x"),
            ),
            ((" Google Inc. ", " id "), ("google inc.", "id")),
            // Report ids are compared exactly: senders choose them.
            (("a", "ID"), ("a", "ID")),
        ];
        for ((org, id), (k_org, k_id)) in good {
            assert_eq!(
                dedup_key(org, id).expect("key"),
                (k_org.to_string(), k_id.to_string())
            );
        }
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        let bad: &[(&str, &str, &str)] = &[
            ("", "id", "empty organisation"),
            ("org", "  ", "blank report id"),
            (&long, "id", "organisation longer than the key limit"),
            ("org", &long, "report id longer than the key limit"),
        ];
        for (org, id, why) in bad {
            assert!(dedup_key(org, id).is_err(), "{why}");
        }
    }

    #[test]
    fn fields_are_cut_at_a_character_boundary_and_lose_nul() {
        let s = "é".repeat(MAX_FIELD_BYTES);
        let cut = field(&s);
        assert!(cut.len() <= MAX_FIELD_BYTES && cut.len() >= MAX_FIELD_BYTES - 1);
        assert_eq!(field("a\0b"), "a\u{FFFD}b");
        assert_eq!(normalise_domain(" Example.COM. "), "example.com");
    }
}
