//! RFC 8461 §3.1 and RFC 8460 §3 — choosing the one versioned TXT record at a name
//!
//! Both RFCs use the same rule: of all TXT records at the name, those that do not begin with
//! the version tag are discarded, and exactly one must remain.
//!
//! ```text
//! RFC 8461 §3.1: If multiple TXT records for
//! "_mta-sts" are returned by the resolver, records that do not begin
//! with "v=STSv1;" are discarded.  If the number of resulting records is
//! not one, or if the resulting record is syntactically invalid, senders
//! MUST assume the recipient domain does not have an available MTA-STS
//! Policy and skip the remaining steps of policy discovery.
//! ```
//!
//! RFC 8460 §3 says the same of `v=TLSRPTv1;` (without the clause on syntactically invalid
//! records). Both RFCs say a record of several strings "MUST be treated as if those strings
//! are concatenated without adding spaces" (RFC 8460 §3 cites RFC 7208 §3.3 for that); the
//! caller concatenates them before they arrive here.

/// The outcome of applying the one-record rule to the TXT records at a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection<'a> {
    /// No record begins with the version tag.
    None {
        /// The records that were discarded (other TXT data at the same name).
        unrelated: Vec<&'a str>,
    },
    /// Exactly one record begins with the version tag.
    One {
        /// The selected record.
        record: &'a str,
        /// The records that were discarded.
        unrelated: Vec<&'a str>,
    },
    /// More than one record begins with the version tag: senders treat this as no record.
    Multiple {
        /// Every candidate record, in the order given.
        records: Vec<&'a str>,
        /// The records that were discarded.
        unrelated: Vec<&'a str>,
    },
}

/// Whether `record` begins with `v=<version>` as its first field.
///
/// The RFCs' wording is "begin with `v=STSv1;`". Real records also end the tag with
/// whitespace or end of string (`v=STSv1` alone), which the grammar allows (`*WSP` before the
/// delimiter, optional trailing `;`), so those count as beginning with the tag too. A longer
/// version such as `v=STSv12` does not.
pub fn begins_with_version(record: &str, version: &str) -> bool {
    let Some(rest) = record.strip_prefix("v=") else {
        return false;
    };
    let Some(after) = rest.strip_prefix(version) else {
        return false;
    };
    match after.chars().next() {
        None => true,
        Some(c) => c == ';' || c == ' ' || c == '\t',
    }
}

/// Applies the one-record rule for `version` (e.g. `"STSv1"`, `"TLSRPTv1"`) to `records`.
pub fn select<'a, S: AsRef<str>>(records: &'a [S], version: &str) -> Selection<'a> {
    let mut candidates = Vec::new();
    let mut unrelated = Vec::new();
    for r in records {
        let r = r.as_ref();
        if begins_with_version(r, version) {
            candidates.push(r);
        } else {
            unrelated.push(r);
        }
    }
    match candidates.len() {
        0 => Selection::None { unrelated },
        1 => Selection::One {
            record: candidates[0],
            unrelated,
        },
        _ => Selection::Multiple {
            records: candidates,
            unrelated,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8461_3_1_version_tag_must_begin_the_record() {
        // (record, begins with v=STSv1, reason for bad cases)
        let table: &[(&str, bool, &str)] = &[
            ("v=STSv1; id=20160831085700Z;", true, ""),
            ("v=STSv1;id=1", true, ""),
            ("v=STSv1 ; id=1", true, ""),
            ("v=STSv1", true, ""),
            ("id=1; v=STSv1;", false, "version is not the first field"),
            ("v=STSv12; id=1", false, "a different, longer version"),
            ("V=STSv1; id=1", false, "tag names are case-sensitive"),
            (
                " v=STSv1; id=1",
                false,
                "leading whitespace is not in the grammar",
            ),
            ("v=spf1 -all", false, "unrelated record"),
        ];
        for (record, want, why) in table {
            assert_eq!(
                begins_with_version(record, "STSv1"),
                *want,
                "{record:?}: {why}"
            );
        }
    }

    #[test]
    fn rfc8461_3_1_exactly_one_record_is_selected() {
        let one = ["v=spf1 -all", "v=STSv1; id=1;"];
        assert_eq!(
            select(&one, "STSv1"),
            Selection::One {
                record: "v=STSv1; id=1;",
                unrelated: vec!["v=spf1 -all"]
            }
        );
        let two = ["v=STSv1; id=1;", "v=STSv1; id=2;"];
        assert!(
            matches!(select(&two, "STSv1"), Selection::Multiple { records, .. } if records.len() == 2)
        );
        let none: [&str; 1] = ["google-site-verification=abc"];
        assert!(
            matches!(select(&none, "STSv1"), Selection::None { unrelated } if unrelated.len() == 1)
        );
    }

    #[test]
    fn rfc8460_3_tlsrpt_version_selection() {
        let recs = ["v=TLSRPTv1; rua=mailto:a@example.com", "v=STSv1; id=1"];
        assert!(
            matches!(select(&recs, "TLSRPTv1"), Selection::One { record, .. } if record.starts_with("v=TLSRPTv1"))
        );
    }
}
