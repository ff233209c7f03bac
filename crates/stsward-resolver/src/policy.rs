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

/// A policy in force for a domain, as the in-memory cache keeps it: one heap allocation
/// holding the TXT id and the canonical policy lines, plus the mode and two times.
///
/// The `mx` patterns are read back from the canonical `mx: ` lines (RFC 8461 §3.2
/// `sts-policy-mx-field`) on demand: a lookup walks a few short lines, which costs less than
/// the allocations per pattern that a list of strings would keep for 100,000 domains. Only a
/// policy that repeats a pattern carries a second, de-duplicated list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePolicy {
    /// The TXT `id`, each canonical policy line, and, when the policy repeats a pattern, each
    /// distinct pattern; every one ended by `\n`.
    text: Box<str>,
    /// Where the id ends in `text`.
    id_end: u32,
    /// Where the lines end in `text`: the distinct patterns follow when it is not the end.
    lines_end: u32,
    /// The mode (RFC 8461 §5).
    pub mode: Mode,
    /// When it was fetched.
    pub fetched_at: i64,
    /// When it expires (`fetched_at + max_age`).
    pub expires_at: i64,
}

/// The prefix of an `mx` line in the canonical form (`Policy`'s `Display`).
const MX_LINE: &str = "mx: ";

impl ActivePolicy {
    /// Builds the compact form of a parsed policy fetched at `fetched_at` under `sts_id`.
    pub fn new(policy: &Policy, sts_id: &str, fetched_at: i64) -> ActivePolicy {
        let canonical = policy.to_string();
        let mut text = String::with_capacity(sts_id.len() + 1 + canonical.len());
        text.push_str(sts_id);
        text.push('\n');
        let id_end = sts_id.len();
        for line in canonical
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
        {
            text.push_str(line);
            text.push('\n');
        }
        let lines_end = text.len();
        let mut distinct: Vec<String> = Vec::new();
        for p in policy.mx() {
            let p = p.to_string();
            if !distinct.contains(&p) {
                distinct.push(p);
            }
        }
        if distinct.len() < policy.mx().len() {
            for p in &distinct {
                text.push_str(p);
                text.push('\n');
            }
        }
        let max_age = i64::from(policy.max_age().as_secs());
        // A policy body is at most 64 KiB (RFC 8461 §3.2) and an id 32 characters (§3.1).
        let offset = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        ActivePolicy {
            id_end: offset(id_end),
            lines_end: offset(lines_end),
            text: text.into_boxed_str(),
            mode: policy.mode(),
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

    fn part(&self, from: u32, to: u32) -> &str {
        let at = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        self.text.get(at(from)..at(to)).unwrap_or("")
    }

    /// The TXT `id` it was fetched under.
    pub fn sts_id(&self) -> &str {
        self.part(0, self.id_end)
    }

    /// The canonical policy lines (`version: STSv1`, `mode: …`, …), for TLSRPT
    /// `policy_string` attributes.
    pub fn lines(&self) -> std::str::Lines<'_> {
        self.part(self.id_end.saturating_add(1), self.lines_end)
            .lines()
    }

    /// The `mx` patterns as written (A-labels, `*.` kept), in file order, each once.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        let end = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
        let (from_lines, distinct) = if self.lines_end < end {
            (None, Some(self.part(self.lines_end, end).lines()))
        } else {
            (
                Some(self.lines().filter_map(|l| l.strip_prefix(MX_LINE))),
                None,
            )
        };
        from_lines
            .into_iter()
            .flatten()
            .chain(distinct.into_iter().flatten())
    }

    /// RFC 8461 §5.1 step 1: "a cached policy whose time-since-fetch has not exceeded its
    /// "max_age"".
    pub fn is_fresh(&self, now: i64) -> bool {
        now < self.expires_at
    }

    /// Heap and inline bytes this entry holds (for the memory bound's accounting).
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<ActivePolicy>() + self.text.len()
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
            a.patterns().collect::<Vec<_>>(),
            ["mail.example.com", "*.example.net", "backupmx.example.com"]
        );
        assert_eq!(a.sts_id(), "20160831085700Z");
        assert_eq!(a.lines().count(), 6);
        assert_eq!(a.lines().next(), Some("version: STSv1"));
        assert_eq!(a.lines().last(), Some("max_age: 604800"));
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
        assert_eq!(a.patterns().collect::<Vec<_>>(), ["a.example"]);
        assert_eq!(
            a.lines().filter(|l| l.starts_with("mx: ")).count(),
            2,
            "the policy string keeps every line"
        );
        assert_eq!(a.sts_id(), "1");
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
