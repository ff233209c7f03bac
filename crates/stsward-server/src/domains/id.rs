//! RFC 8461 §3.1 — the `_mta-sts` TXT `id` of a policy version.
//!
//! ```text
//! sts-id = %s"id=" 1*32(ALPHA / DIGIT)
//! ```
//!
//! RFC 8461 §3.1: ""id" (plaintext, required): A short string used to track policy
//! updates.  This string MUST uniquely identify a given instance of a policy, such that
//! senders can determine when the policy has been updated by comparing to the "id" of a
//! previously seen policy.  There is no implied ordering of "id" fields between revisions."
//! stsward derives it from the version:
//!
//! ```text
//! id = base36(changed_at, 7 digits, zero-padded) base36(version)
//! ```
//!
//! Seven base-36 digits hold every second until the year 4400, so the time part has a fixed
//! width and the pair maps to one string only. Versions of a domain increase by one at each
//! change, so two changes in the same second (or after the clock stepped back) still get
//! different ids; a name hosted again later starts at version 1 at a later second. At most
//! 7 + 13 characters (a `u64` in base 36), within the 32 of §3.1.

use std::str::FromStr;

use stsward_proto::mta_sts::{Error, PolicyId};

const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Width of the time part.
pub const TIME_DIGITS: usize = 7;

fn base36(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    out.into_iter().map(char::from).collect()
}

/// The id of `version` made at `changed_at` (epoch seconds; a time before 1970 counts as 0).
/// Only ASCII letters and digits, at most 7 + 13 characters: `stsward-proto` accepts every
/// such id, and its error is passed on rather than assumed away.
pub fn policy_id(changed_at: i64, version: i64) -> Result<PolicyId, Error> {
    let time = base36(u64::try_from(changed_at).unwrap_or(0));
    let version = base36(u64::try_from(version).unwrap_or(0));
    PolicyId::from_str(&format!("{time:0>width$}{version}", width = TIME_DIGITS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn rfc8461_3_1_ids_are_1_to_32_alphanumerics() {
        for (at, v) in [(0, 1), (1_780_000_000, 1), (i64::MAX, i64::MAX), (-5, 0)] {
            let id = policy_id(at, v).expect("id").to_string();
            assert!((1..=32).contains(&id.len()), "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        }
        assert_eq!(policy_id(0, 1).expect("id").as_str(), "00000001");
        assert_eq!(policy_id(36, 36).expect("id").as_str(), "000001010");
    }

    #[test]
    fn rfc8461_3_1_two_changes_in_one_second_get_different_ids() {
        let second = 1_780_000_000;
        let ids: HashSet<String> = (1..=1000)
            .map(|v| policy_id(second, v).expect("id").to_string())
            .collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn time_and_version_never_run_into_each_other() {
        // Without a fixed width, (t=1, v=10) and (t=11, v=0)… could collide; with it, every
        // pair over a span of seconds and versions is distinct.
        let mut seen = HashSet::new();
        for t in (1_780_000_000..1_780_000_040).chain(0..40) {
            for v in 1..80 {
                assert!(
                    seen.insert(policy_id(t, v).expect("id").to_string()),
                    "t={t} v={v}"
                );
            }
        }
    }
}
