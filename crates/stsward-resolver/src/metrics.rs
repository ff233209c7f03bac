//! Counters of the resolver, and their Prometheus text form (a pure function of a snapshot).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The answer labels, fixed so that the hot path counts with atomics, not a map.
pub const ANSWER_LABELS: [&str; 8] = [
    "secure",
    "dane-only",
    "dane",
    "may",
    "other",
    "notfound",
    "temp",
    "perm",
];

/// The live counters.
#[derive(Debug, Default)]
pub struct Metrics {
    lookups: [AtomicU64; 8],
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    fetches: AtomicU64,
    fetch_failures: Mutex<BTreeMap<String, u64>>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Lookups by answer label.
    pub lookups: BTreeMap<&'static str, u64>,
    /// Lookups answered from memory.
    pub cache_hits: u64,
    /// Lookups that had to wait for a resolution.
    pub cache_misses: u64,
    /// Policy fetches started.
    pub fetches: u64,
    /// Failed fetches by finding code (`sts.policy.timeout`, …).
    pub fetch_failures: BTreeMap<String, u64>,
    /// Destinations in memory.
    pub cached: u64,
}

impl Metrics {
    /// Counts one lookup answered with `label` (one of [`ANSWER_LABELS`]).
    pub fn lookup(&self, label: &str) {
        let i = ANSWER_LABELS.iter().position(|l| *l == label).unwrap_or(4);
        self.lookups[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a cache hit or miss.
    pub fn cache(&self, hit: bool) {
        let c = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a fetch.
    pub fn fetch(&self) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed fetch by reason.
    pub fn fetch_failure(&self, reason: &str) {
        let mut m = self
            .fetch_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry(reason.to_owned()).or_default() += 1;
    }

    /// The counters now.
    pub fn snapshot(&self, cached: usize) -> Snapshot {
        Snapshot {
            lookups: ANSWER_LABELS
                .iter()
                .zip(&self.lookups)
                .map(|(l, c)| (*l, c.load(Ordering::Relaxed)))
                .collect(),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            cache_misses: self.cache_misses.load(Ordering::Relaxed),
            fetches: self.fetches.load(Ordering::Relaxed),
            fetch_failures: self
                .fetch_failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            cached: u64::try_from(cached).unwrap_or(u64::MAX),
        }
    }
}

/// The Prometheus text exposition of a snapshot.
pub fn render_prometheus(s: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP stsward_resolve_lookups_total Socketmap lookups by answer."
    );
    let _ = writeln!(out, "# TYPE stsward_resolve_lookups_total counter");
    for (label, n) in &s.lookups {
        let _ = writeln!(
            out,
            "stsward_resolve_lookups_total{{answer=\"{label}\"}} {n}"
        );
    }
    let simple = [
        (
            "stsward_resolve_cache_hits_total",
            "Lookups answered from memory.",
            s.cache_hits,
            "counter",
        ),
        (
            "stsward_resolve_cache_misses_total",
            "Lookups that waited for a resolution.",
            s.cache_misses,
            "counter",
        ),
        (
            "stsward_resolve_fetches_total",
            "MTA-STS policy fetches.",
            s.fetches,
            "counter",
        ),
        (
            "stsward_resolve_cached_destinations",
            "Destinations in the memory cache.",
            s.cached,
            "gauge",
        ),
    ];
    for (name, help, n, kind) in simple {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP stsward_resolve_fetch_failures_total Failed policy fetches by reason (finding code)."
    );
    let _ = writeln!(out, "# TYPE stsward_resolve_fetch_failures_total counter");
    for (reason, n) in &s.fetch_failures {
        let reason = reason.replace(['\\', '"', '\n'], "_");
        let _ = writeln!(
            out,
            "stsward_resolve_fetch_failures_total{{reason=\"{reason}\"}} {n}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_every_counter() {
        let m = Metrics::default();
        m.lookup("secure");
        m.lookup("secure");
        m.lookup("notfound");
        m.lookup("weird");
        m.cache(true);
        m.cache(false);
        m.fetch();
        m.fetch_failure("sts.policy.timeout");
        let text = render_prometheus(&m.snapshot(7));
        for line in [
            "stsward_resolve_lookups_total{answer=\"secure\"} 2",
            "stsward_resolve_lookups_total{answer=\"notfound\"} 1",
            "stsward_resolve_lookups_total{answer=\"other\"} 1",
            "stsward_resolve_cache_hits_total 1",
            "stsward_resolve_cache_misses_total 1",
            "stsward_resolve_fetches_total 1",
            "stsward_resolve_fetch_failures_total{reason=\"sts.policy.timeout\"} 1",
            "stsward_resolve_cached_destinations 7",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
