//! The finding codes are public API, and `docs/findings.md` is their contract: every code in
//! [`Code::ALL`] has a row there, and every row names a code that exists.

use std::collections::BTreeSet;

use stsward_proto::{Code, Severity};

const DOC: &str = include_str!("../../../docs/findings.md");

/// Codes that other work on issue 6 adds to `Code` in parallel: documented already, not yet
/// in this branch's `Code`. Empty this list once they are merged.
const PENDING: &[&str] = &[];

/// One table row of the document: code, severities, reference.
struct Row<'a> {
    code: &'a str,
    severities: &'a str,
    reference: &'a str,
}

/// Every `| `code` | severity | when | reference |` row of the document.
fn rows(doc: &str) -> Vec<Row<'_>> {
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .strip_prefix('|')?
                .strip_suffix('|')?
                .split(" | ")
                .map(str::trim)
                .collect();
            let code = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            // Only the finding tables have four columns with a dotted code first.
            (cells.len() == 4 && code.contains('.')).then(|| Row {
                code,
                severities: cells[1],
                reference: cells[3],
            })
        })
        .collect()
}

#[test]
fn docs_findings_md_lists_exactly_the_codes_of_code_all() {
    let rows = rows(DOC);
    let documented: BTreeSet<&str> = rows.iter().map(|r| r.code).collect();
    assert_eq!(documented.len(), rows.len(), "a code has two rows");
    let in_code: BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();

    let undocumented: Vec<&&str> = in_code.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "codes in stsward_proto::Code without a row in docs/findings.md: {undocumented:?}"
    );
    let unknown: Vec<&&str> = documented
        .difference(&in_code)
        .filter(|c| !PENDING.contains(c))
        .collect();
    assert!(
        unknown.is_empty(),
        "rows in docs/findings.md for codes that stsward_proto::Code does not have: {unknown:?}"
    );
}

#[test]
fn docs_findings_md_rows_are_well_formed() {
    for row in rows(DOC) {
        for severity in row.severities.split(" / ") {
            assert!(
                severity.parse::<Severity>().is_ok(),
                "{}: {severity:?} is not a severity",
                row.code
            );
        }
        assert!(
            row.reference.starts_with("RFC "),
            "{}: reference {:?} names no RFC",
            row.code,
            row.reference
        );
        // The row's reference is the code's own (what JSON output carries).
        if let Ok(code) = row.code.parse::<Code>() {
            assert_eq!(row.reference, code.reference(), "{}", row.code);
        }
    }
}

#[test]
fn the_row_parser_reads_rows_and_skips_other_tables() {
    let doc = "| code | severity | when | reference |\n|---|---|---|---|\n\
               | `a.b` | ok | x | RFC 1 |\n| `ok` | a check that passed |\n\
               | `subject` | what | it | is |\n";
    let codes: Vec<&str> = rows(doc).iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        ["a.b"],
        "header, two-column rows and undotted names are not codes"
    );
}
