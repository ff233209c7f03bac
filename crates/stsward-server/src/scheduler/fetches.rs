//! Persisting the policy host's fetch counts (RFC 8461 §3.3 fetches answered 200): drain the
//! in-memory [`FetchCounter`] and add what it held to the store per domain, UTC day and
//! network ([`Store::policy_fetches_add`] is additive, so replicas' flushes sum).
//!
//! ```text
//! flush = drain the counter -> merge into pending -> write pending in chunks of FLUSH_CHUNK
//!         a chunk that fails goes back into pending (with the rest) for the next flush
//! ```
//!
//! Pending keys are bounded ([`MAX_PENDING_KEYS`]): while the store is down for long, counts
//! past the bound are dropped and logged rather than growing memory. A write that commits
//! but whose answer is lost (a timeout at the wrong moment) is retried and counted twice;
//! counts are a signal that senders read the policy, not billing.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use stsward_store::{FetchRow, Store, StoreError};
use time::Date;

use crate::host::FetchCounter;

/// Rows per store transaction.
pub const FLUSH_CHUNK: usize = 500;
/// The most keys kept for a later flush while the store fails.
pub const MAX_PENDING_KEYS: usize = 400_000;

type Key = (String, i64, String);

/// Counts drained but not yet stored.
#[derive(Debug, Default)]
pub struct Pending {
    counts: Mutex<BTreeMap<Key, i64>>,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, i64>> {
        // Each change is a whole-map merge or take: a poisoned map is still consistent.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `rows`; returns the fetches dropped because the map was full.
    fn merge(&self, rows: impl IntoIterator<Item = (Key, i64)>) -> u64 {
        let mut map = self.lock();
        let mut dropped = 0u64;
        for (key, n) in rows {
            let full = map.len() >= MAX_PENDING_KEYS;
            match map.get_mut(&key) {
                Some(total) => *total = total.saturating_add(n),
                None if full => dropped = dropped.saturating_add(u64::try_from(n).unwrap_or(0)),
                None => {
                    map.insert(key, n);
                }
            }
        }
        dropped
    }

    fn take(&self) -> BTreeMap<Key, i64> {
        std::mem::take(&mut *self.lock())
    }

    /// Keys waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Rows written.
    pub rows: usize,
    /// Fetches written.
    pub fetches: i64,
    /// Fetches the counter or the pending map could not keep (bounds).
    pub dropped: u64,
}

/// Days since 1970-01-01 of `day`.
pub fn epoch_day_of(day: Date) -> i64 {
    i64::from(day.to_julian_day()) - UNIX_EPOCH_JULIAN
}

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN: i64 = 2_440_588;

/// Drains `counter` into `pending` and writes `pending` to `store`.
pub async fn flush(
    counter: &FetchCounter,
    pending: &Pending,
    store: &Store,
) -> Result<FlushReport, StoreError> {
    let drained = counter.drain();
    let mut report = FlushReport {
        dropped: drained.dropped,
        ..FlushReport::default()
    };
    report.dropped += pending.merge(drained.counts.into_iter().map(|c| {
        (
            (
                c.domain.to_string(),
                epoch_day_of(c.day),
                c.network.to_string(),
            ),
            i64::try_from(c.fetches).unwrap_or(i64::MAX),
        )
    }));
    if report.dropped > 0 {
        tracing::warn!(
            fetches = report.dropped,
            "fetch counts over their bound were not kept"
        );
    }
    let all: Vec<(Key, i64)> = pending.take().into_iter().collect();
    let mut chunks = all.chunks(FLUSH_CHUNK);
    while let Some(chunk) = chunks.next() {
        let rows: Vec<FetchRow> = chunk
            .iter()
            .map(|((domain, day, network), n)| FetchRow {
                domain: domain.clone(),
                day: *day,
                network: network.clone(),
                fetches: *n,
            })
            .collect();
        if let Err(e) = store.policy_fetches_add(&rows).await {
            let unwritten = chunk
                .iter()
                .chain(chunks.flatten())
                .map(|(k, n)| (k.clone(), *n));
            pending.merge(unwritten);
            return Err(e);
        }
        report.rows += rows.len();
        report.fetches += rows.iter().map(|r| r.fetches).sum::<i64>();
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn epoch_days() {
        assert_eq!(epoch_day_of(date!(1970 - 01 - 01)), 0);
        assert_eq!(epoch_day_of(date!(2025 - 06 - 15)), 1_750_000_000 / 86_400);
        assert_eq!(
            epoch_day_of(date!(2025 - 06 - 15)),
            crate::domains::epoch_day(1_750_000_000)
        );
    }

    #[test]
    fn pending_is_bounded_and_merges() {
        let p = Pending::default();
        let key = |i: usize| (format!("d{i}.test"), 1, "192.0.2.0/24".to_owned());
        assert_eq!(p.merge([(key(1), 2), (key(1), 3)]), 0);
        assert_eq!(p.take().get(&key(1)), Some(&5));
        let many = (0..MAX_PENDING_KEYS + 3).map(|i| (key(i), 1));
        assert_eq!(
            p.merge(many),
            3,
            "keys past the bound are dropped, and counted"
        );
        assert_eq!(p.len(), MAX_PENDING_KEYS);
    }
}
