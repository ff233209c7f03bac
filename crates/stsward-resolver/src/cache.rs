//! The in-memory cache: one small [`Entry`] per destination, bounded in count.
//!
//! Reads take a shared lock, copy an `Arc` and a few integers, and let go: the hot path does
//! no DNS, no I/O and no allocation beyond the answer text. When the bound is reached, a
//! batch of entries is evicted: expired and negative entries first, then the policies
//! closest to expiry (the store still has them; a later lookup reloads from there).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use stsward_proto::Failure;

use crate::dane::DaneSummary;
use crate::key::{Destination, domain_of_key, normalize_key};
use crate::policy::ActivePolicy;

/// What is known about a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// A policy is in force (possibly `mode: none`).
    Policy(Arc<ActivePolicy>),
    /// No usable `_mta-sts` record (RFC 8461 §3.1), cached until `until`.
    NoPolicy {
        /// Cached until.
        until: i64,
        /// Why.
        why: Box<str>,
    },
    /// Discovery or fetch failed with nothing cached, cached until `until`.
    Failed {
        /// Cached until.
        until: i64,
        /// Why.
        why: Box<str>,
    },
}

/// A failed refresh while a cached policy stays in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFailure {
    /// The TXT id the fetch was for (RFC 8461 §3.3 limits retries "per version ID").
    pub id: Box<str>,
    /// When.
    pub at: i64,
    /// What.
    pub failure: Failure,
}

/// One destination (the map's key names it: [`Destination::cache_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The policy state.
    pub state: State,
    /// When the TXT id was last seen (RFC 8461 §3.1).
    pub txt_checked_at: i64,
    /// The DANE summary and when it was taken.
    pub dane: DaneSummary,
    /// The last failed fetch (for back-off, logs and TLSRPT `policy_failure`); boxed, as
    /// few entries have one.
    pub refresh_failure: Option<Box<RefreshFailure>>,
    /// When the background should next re-check this destination (TXT id, proactive
    /// refresh, DANE).
    pub next_refresh_at: i64,
}

impl Entry {
    /// Whether the entry still answers at `now`: a fresh policy, or a negative entry not yet
    /// timed out.
    pub fn is_live(&self, now: i64) -> bool {
        match &self.state {
            State::Policy(p) => p.is_fresh(now),
            State::NoPolicy { until, .. } | State::Failed { until, .. } => now < *until,
        }
    }

    /// Bytes held, roughly (for the memory goal's accounting).
    pub fn approx_bytes(&self) -> usize {
        let state = match &self.state {
            State::Policy(p) => p.approx_bytes(),
            State::NoPolicy { why, .. } | State::Failed { why, .. } => why.len(),
        };
        std::mem::size_of::<Entry>() + state
    }
}

/// The bounded map.
#[derive(Debug)]
pub struct Cache {
    map: RwLock<HashMap<Box<str>, Entry>>,
    max: RwLock<usize>,
}

impl Cache {
    /// An empty cache of at most `max` destinations.
    pub fn new(max: usize) -> Cache {
        Cache {
            map: RwLock::new(HashMap::new()),
            max: RwLock::new(max.max(1)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, Entry>> {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, Entry>> {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the bound (a reload); evicts down to it.
    pub fn set_max(&self, max: usize) {
        *self
            .max
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = max.max(1);
        let mut map = self.write();
        self.evict(&mut map, 0, i64::MIN);
    }

    fn max(&self) -> usize {
        *self
            .max
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of the entry under `key`.
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.read().get(key).cloned()
    }

    /// Applies `f` to the entry under `key` (a copy is returned).
    pub fn with<T>(&self, key: &str, f: impl FnOnce(&Entry) -> T) -> Option<T> {
        self.read().get(key).map(f)
    }

    /// Inserts or replaces; evicts when the bound is reached.
    pub fn put(&self, key: &str, entry: Entry, now: i64) {
        let mut map = self.write();
        if !map.contains_key(key) {
            self.evict(&mut map, 1, now);
        }
        map.insert(key.into(), entry);
    }

    /// Changes the entry under `key` in place, if present.
    pub fn update(&self, key: &str, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.write().get_mut(key) {
            f(e);
        }
    }

    /// Removes every entry of the Policy Domain `domain` (all its key forms); how many.
    pub fn remove_domain(&self, domain: &str) -> usize {
        let mut map = self.write();
        let before = map.len();
        map.retain(|k, _| domain_of_key(k) != domain);
        before - map.len()
    }

    /// How many destinations are cached.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The keys and destinations of entries `pick` selects (given the Policy Domain and the
    /// entry), for the maintenance sweep and `show`.
    pub fn select(&self, mut pick: impl FnMut(&str, &Entry) -> bool) -> Vec<(String, Destination)> {
        self.read()
            .iter()
            .filter(|(k, e)| pick(domain_of_key(k), e))
            .filter_map(|(k, _)| Some((k.to_string(), normalize_key(k).ok()?)))
            .collect()
    }

    /// Drops entries that no longer answer at `now`; how many.
    pub fn purge_dead(&self, now: i64) -> usize {
        let mut map = self.write();
        let before = map.len();
        map.retain(|_, e| e.is_live(now));
        before - map.len()
    }

    /// Bytes held by all entries, roughly.
    pub fn approx_bytes(&self) -> usize {
        self.read()
            .iter()
            .map(|(k, e)| k.len() + 16 + e.approx_bytes())
            .sum()
    }

    /// Makes room for `incoming` new entries: when over the bound, evicts a batch (1/64 of
    /// the bound, at least what is needed), dead and negative entries first, then the
    /// policies closest to expiry.
    fn evict(&self, map: &mut HashMap<Box<str>, Entry>, incoming: usize, now: i64) {
        let max = self.max();
        if map.len() + incoming <= max {
            return;
        }
        let need = (map.len() + incoming - max).max(max / 64).max(1);
        let mut ranked: Vec<(bool, i64, Box<str>)> = map
            .iter()
            .map(|(k, e)| {
                let (policy, expires) = match &e.state {
                    State::Policy(p) => (e.is_live(now), p.expires_at),
                    State::NoPolicy { until, .. } | State::Failed { until, .. } => (false, *until),
                };
                (policy, expires, k.clone())
            })
            .collect();
        ranked.sort_unstable();
        for (_, _, k) in ranked.into_iter().take(need) {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use stsward_proto::mta_sts::Policy;

    use super::*;

    fn policy_entry(expires: i64) -> Entry {
        let p: Policy = "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 86400\n"
            .parse()
            .expect("parses");
        let mut a = ActivePolicy::new(&p, "1", 0);
        a.expires_at = expires;
        Entry {
            state: State::Policy(Arc::new(a)),
            txt_checked_at: 0,
            dane: DaneSummary::NotChecked,
            refresh_failure: None,
            next_refresh_at: 0,
        }
    }

    fn negative(until: i64) -> Entry {
        Entry {
            state: State::NoPolicy {
                until,
                why: "none".into(),
            },
            ..policy_entry(0)
        }
    }

    #[test]
    fn bounded_eviction_takes_negatives_then_soonest_expiry() {
        let c = Cache::new(3);
        c.put("a", policy_entry(1000), 0);
        c.put("b", negative(50), 0);
        c.put("c", policy_entry(500), 0);
        c.put("d", policy_entry(2000), 0);
        assert_eq!(c.len(), 3);
        assert!(c.get("b").is_none(), "the negative entry goes first");
        c.put("e", policy_entry(3000), 0);
        assert!(c.get("c").is_none(), "then the policy closest to expiry");
        assert!(c.get("a").is_some() && c.get("d").is_some() && c.get("e").is_some());
    }

    #[test]
    fn rfc8461_5_1_entries_live_until_max_age_and_negatives_until_their_ttl() {
        let p = policy_entry(100);
        assert!(p.is_live(99));
        assert!(!p.is_live(100));
        let n = negative(10);
        assert!(n.is_live(9));
        assert!(!n.is_live(10));
        let c = Cache::new(10);
        c.put("a", p, 0);
        c.put("b", n, 0);
        assert_eq!(c.purge_dead(50), 1);
        c.put("[a]:2525", policy_entry(100), 0);
        c.put("ab", policy_entry(100), 0);
        assert_eq!(
            c.remove_domain("a"),
            2,
            "every key form of the domain, not ab"
        );
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn hundred_thousand_domains_fit_well_under_100_mb() {
        let c = Cache::new(200_000);
        let template = policy_entry(1_000_000);
        for i in 0..100_000 {
            let d = format!("customer-domain-{i}.example.com");
            let mut e = template.clone();
            if let State::Policy(p) = &template.state {
                // Each domain its own policy allocation, as after real fetches.
                e.state = State::Policy(Arc::new((**p).clone()));
            }
            c.put(&d, e, 0);
        }
        let bytes = c.approx_bytes();
        assert!(
            bytes < 50 * 1024 * 1024,
            "{bytes} bytes for 100,000 domains"
        );
    }
}
