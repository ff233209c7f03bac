//! The grammars that the module docs print as RFC text are the RFC's text, character for
//! character (apart from line layout): RFC 8461 §3.1 and §3.2, RFC 8460 §3.
//!
//! Reads `shared/reference` in place; without it the test has nothing to compare against and
//! fails when `CI` is set.

use std::path::PathBuf;

fn reference(name: &str) -> Option<String> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference"
    ))
    .join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{} is needed: {e}",
                path.display()
            );
            None
        }
    }
}

/// Whitespace runs, page breaks and the page headers and footers of the `.txt` layout
/// removed, so that text wrapped differently still compares.
fn flat(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("Margolis, et al.") && !l.starts_with("RFC 846"))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first ```` ```text ```` block of a module's `//!` docs that follows `marker`.
fn doc_block(source: &str, marker: &str) -> String {
    let docs: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let at = docs
        .iter()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no {marker:?} in the docs"));
    let start = at
        + docs[at..]
            .iter()
            .position(|l| *l == "```text")
            .expect("a text block")
        + 1;
    let len = docs[start..]
        .iter()
        .position(|l| *l == "```")
        .expect("end of the block");
    docs[start..start + len].join("\n")
}

#[test]
fn rfc8461_3_2_policy_abnf_in_the_docs_is_the_rfcs() {
    let Some(rfc) = reference("rfc8461.txt") else {
        return;
    };
    let block = doc_block(
        include_str!("../src/mta_sts/policy.rs"),
        "The grammar, exactly as RFC 8461 §3.2 prints it",
    );
    assert!(block.starts_with("sts-policy-record"), "{block}");
    assert!(flat(&rfc).contains(&flat(&block)), "{block}");
}

#[test]
fn rfc8461_3_1_record_abnf_in_the_docs_is_the_rfcs() {
    let Some(rfc) = reference("rfc8461.txt") else {
        return;
    };
    let block = doc_block(
        include_str!("../src/mta_sts/record.rs"),
        "The grammar, exactly as RFC 8461 §3.1 prints it",
    );
    assert!(block.starts_with("sts-text-record"), "{block}");
    assert!(flat(&rfc).contains(&flat(&block)), "{block}");
}

#[test]
fn rfc8460_3_record_abnf_in_the_docs_is_the_rfcs() {
    let Some(rfc) = reference("rfc8460.txt") else {
        return;
    };
    let block = doc_block(
        include_str!("../src/tlsrpt/record.rs"),
        "The grammar, exactly as RFC 8460 §3 prints it",
    );
    assert!(block.starts_with("tlsrpt-record"), "{block}");
    assert!(flat(&rfc).contains(&flat(&block)), "{block}");
}

/// The RFC 8461 §3.1 one-record rule, quoted in two module docs.
#[test]
fn rfc8461_3_1_one_record_rule_quotes_are_the_rfcs() {
    let Some(rfc) = reference("rfc8461.txt") else {
        return;
    };
    for (name, source) in [
        ("txt.rs", include_str!("../src/txt.rs")),
        (
            "record/evaluate.rs",
            include_str!("../src/mta_sts/record/evaluate.rs"),
        ),
    ] {
        let block = doc_block(source, "```text");
        let quote = block
            .strip_prefix("RFC 8461 §3.1: ")
            .unwrap_or_else(|| panic!("{name}: {block}"));
        assert!(flat(&rfc).contains(&flat(quote)), "{name}: {quote}");
    }
}
