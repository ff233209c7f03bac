//! RFC 8461 §3.2 / §5.1 — a policy in the sender's cache, compact (pure).
//!
//! [`CachedPolicy`] is the persisted row (`stsward_store`'s: the body as fetched, epoch
//! seconds);
//! [`ActivePolicy`] is what the in-memory cache keeps per domain: the mode, the patterns and
//! the policy lines Postfix needs, in a few small boxed strings — no parsed tree, no body copy
//! beyond the canonical lines, so that 100,000 domains stay well under 100 MB.

use stsward_proto::mta_sts::{Mode, Policy};

/// One persisted policy: the store's row (the body as fetched; times in epoch seconds).
pub use stsward_store::CachedPolicy;

/// A policy in force for a domain, as the in-memory cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePolicy {
    /// The TXT `id` it was fetched under.
    pub sts_id: Box<str>,
    /// The mode (RFC 8461 §5).
    pub mode: Mode,
    /// The `mx` patterns as written (A-labels, `*.` kept), duplicates removed, file order.
    pub patterns: Box<[Box<str>]>,
    /// The canonical policy lines (`version: STSv1`, `mode: …`, …), for TLSRPT
    /// `policy_string` attributes.
    pub lines: Box<[Box<str>]>,
    /// When it was fetched.
    pub fetched_at: i64,
    /// When it expires (`fetched_at + max_age`).
    pub expires_at: i64,
}

impl ActivePolicy {
    /// Builds the compact form of a parsed policy fetched at `fetched_at` under `sts_id`.
    pub fn new(policy: &Policy, sts_id: &str, fetched_at: i64) -> ActivePolicy {
        let mut patterns: Vec<Box<str>> = Vec::new();
        for p in policy.mx() {
            let s: Box<str> = p.to_string().into();
            if !patterns.contains(&s) {
                patterns.push(s);
            }
        }
        let lines = policy
            .to_string()
            .lines()
            .map(|l| Box::<str>::from(l.trim_end()))
            .filter(|l| !l.is_empty())
            .collect();
        let max_age = i64::from(policy.max_age().as_secs());
        ActivePolicy {
            sts_id: sts_id.into(),
            mode: policy.mode(),
            patterns: patterns.into(),
            lines,
            fetched_at,
            expires_at: fetched_at.saturating_add(max_age),
        }
    }

    /// Rebuilds the compact form from a persisted row; `None` when the stored body no longer
    /// parses as a policy (a corrupt row is dropped, not served).
    pub fn from_cached(row: &CachedPolicy) -> Option<ActivePolicy> {
        let policy: Policy = row.policy.parse().ok()?;
        let mut active = ActivePolicy::new(&policy, &row.sts_id, row.fetched_at);
        active.expires_at = row.expires_at;
        Some(active)
    }

    /// RFC 8461 §5.1 step 1: "a cached policy whose time-since-fetch has not exceeded its
    /// "max_age"".
    pub fn is_fresh(&self, now: i64) -> bool {
        now < self.expires_at
    }

    /// Heap and inline bytes this entry holds (for the memory bound's accounting).
    pub fn approx_bytes(&self) -> usize {
        let strs = |v: &[Box<str>]| v.iter().map(|s| s.len() + 16).sum::<usize>();
        std::mem::size_of::<ActivePolicy>()
            + self.sts_id.len()
            + strs(&self.patterns)
            + strs(&self.lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_EXAMPLE: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";

    #[test]
    fn rfc8461_3_2_example_becomes_a_compact_policy() {
        let p: Policy = RFC_EXAMPLE.parse().expect("parses");
        let a = ActivePolicy::new(&p, "20160831085700Z", 1_000);
        assert_eq!(a.mode, Mode::Enforce);
        assert_eq!(
            a.patterns.iter().map(|s| &**s).collect::<Vec<_>>(),
            ["mail.example.com", "*.example.net", "backupmx.example.com"]
        );
        assert_eq!(a.lines.len(), 6);
        assert_eq!(&*a.lines[0], "version: STSv1");
        assert_eq!(a.expires_at, 1_000 + 604_800);
        assert!(a.is_fresh(1_000 + 604_799));
        assert!(
            !a.is_fresh(1_000 + 604_800),
            "max_age reached: no longer used"
        );
    }

    #[test]
    fn rfc8461_3_2_duplicate_mx_patterns_are_sent_once() {
        let p: Policy =
            "version: STSv1\nmode: enforce\nmx: a.example\nmx: A.example\nmax_age: 86400\n"
                .parse()
                .expect("parses");
        let a = ActivePolicy::new(&p, "1", 0);
        assert_eq!(a.patterns.len(), 1);
    }

    #[test]
    fn a_corrupt_persisted_row_is_dropped() {
        let row = CachedPolicy {
            domain: "example.com".into(),
            sts_id: "1".into(),
            policy: "garbage".into(),
            fetched_at: 0,
            expires_at: 10,
            txt_checked_at: 0,
        };
        assert_eq!(ActivePolicy::from_cached(&row), None);
    }
}
