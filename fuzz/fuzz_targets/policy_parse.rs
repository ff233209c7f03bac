//! RFC 8461 §3.2 policy files: the linter never panics, whatever the bytes, and every policy
//! it accepts survives display → parse unchanged (what the policy host serves is what senders
//! read back).
//!
//! Input: mode byte + raw bytes or token indices into `vocab/policy.txt` (see `src/lib.rs`).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use stsward_fuzz::{shape, vocabulary};
use stsward_proto::mta_sts::{Policy, lint};

static VOCAB: LazyLock<Vec<String>> =
    LazyLock::new(|| vocabulary(include_str!("../vocab/policy.txt")));

fuzz_target!(|data: &[u8]| {
    let input = shape(data, &VOCAB);
    let bytes = input.bytes();
    let linted = lint(bytes);

    // FromStr and the linter are one reader: they accept the same texts and agree on them.
    if let Ok(text) = std::str::from_utf8(bytes) {
        assert_eq!(
            text.parse::<Policy>().ok(),
            linted.policy,
            "FromStr disagrees with lint"
        );
    }

    let Some(policy) = linted.policy else { return };
    let canonical = policy.to_string();
    let reparsed = canonical.parse::<Policy>();
    assert_eq!(
        reparsed.as_ref(),
        Ok(&policy),
        "display does not parse back to the same policy:\n{canonical:?}"
    );
    // The canonical form is a fixed point, and the linter reads it to the same policy too.
    if let Ok(again) = reparsed {
        assert_eq!(again.to_string(), canonical, "canonical form is not stable");
    }
    assert_eq!(lint(canonical.as_bytes()).policy.as_ref(), Some(&policy));
});
