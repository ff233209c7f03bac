//! RFC 8461 §3.1 — the `_mta-sts` TXT record
//!
//! The grammar, exactly as RFC 8461 §3.1 prints it:
//!
//! ```text
//! sts-text-record = sts-version 1*(sts-field-delim sts-field)
//!                   [sts-field-delim]
//!
//! sts-field       = sts-id /                 ; Note that sts-id record
//!                   sts-extension            ; is required.
//!
//! sts-field-delim = *WSP ";" *WSP
//!
//! sts-version     = %s"v=STSv1"
//!
//! sts-id          = %s"id=" 1*32(ALPHA / DIGIT)     ; id=...
//!
//! sts-extension   = sts-ext-name "=" sts-ext-value  ; name=value
//!
//! sts-ext-name    = (ALPHA / DIGIT)
//!                   *31(ALPHA / DIGIT / "_" / "-" / ".")
//!
//! sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
//!                   ; chars excluding "=", ";", SP, and CTLs
//! ```
//!
//! Example from RFC 8461 §3.1:
//!
//! ```text
//! _mta-sts.example.com.  IN TXT "v=STSv1; id=20160831085700Z;"
//! ```
//!
//! [`StsRecord`] parses one record string (the character-strings already concatenated, as
//! §3.1 requires) and prints its canonical form. [`evaluate`] applies the one-record rule to
//! every TXT string found at `_mta-sts.<domain>` and turns the result into findings.

mod evaluate;

use std::fmt;
use std::str::FromStr;

pub use evaluate::{StsTxtOutcome, evaluate};

use super::error::{Error, ExtensionReason, RecordReason};

/// RFC 8461 §3.1: the only version tag defined.
pub const STS_VERSION: &str = "STSv1";
/// RFC 8461 §3.1: `sts-id = %s"id=" 1*32(ALPHA / DIGIT)`.
pub const MAX_ID_LEN: usize = 32;

/// The policy instance id of a `_mta-sts` record: 1–32 ASCII letters or digits
/// (RFC 8461 §3.1). Compared exactly: senders refetch the policy when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(String);

impl PolicyId {
    /// The id as published (RFC 8461 §3.1).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PolicyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if (1..=MAX_ID_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(PolicyId(s.to_owned()))
        } else {
            Err(Error::PolicyId { id: s.to_owned() })
        }
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An extension field of a `_mta-sts` record (RFC 8461 §3.1 `sts-extension`), kept so that
/// re-serialising reproduces it. Senders ignore it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Extension {
    name: String,
    value: String,
}

impl Extension {
    /// A validated extension (RFC 8461 §3.1); `v` and `id` are not extensions.
    pub fn new(name: &str, value: &str) -> Result<Self, Error> {
        let fail = |reason| Error::Extension {
            name: name.to_owned(),
            reason,
        };
        if !is_ext_name(name) {
            return Err(fail(ExtensionReason::BadName));
        }
        if name == "v" || name == "id" {
            return Err(fail(ExtensionReason::Reserved));
        }
        let value_ok = !value.is_empty()
            && value
                .bytes()
                .all(|b| matches!(b, 0x21..=0x3a | 0x3c | 0x3e..=0x7e));
        if !value_ok {
            return Err(fail(ExtensionReason::BadValue(value.to_owned())));
        }
        Ok(Extension {
            name: name.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The field name (RFC 8461 §3.1 `sts-ext-name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field value (RFC 8461 §3.1 `sts-ext-value`).
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// RFC 8461 §3.1 `sts-ext-name`, shared by §3.2 `sts-policy-ext-name`.
pub(crate) fn is_ext_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            first.is_ascii_alphanumeric()
                && rest.len() <= 31
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        }
        None => false,
    }
}

/// A parsed `_mta-sts` TXT record (RFC 8461 §3.1): the policy id and any extensions, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StsRecord {
    /// The policy instance id.
    pub id: PolicyId,
    /// Extension fields in the order they appeared.
    pub extensions: Vec<Extension>,
}

impl StsRecord {
    /// A record with no extensions (RFC 8461 §3.1).
    pub fn new(id: PolicyId) -> Self {
        StsRecord {
            id,
            extensions: Vec::new(),
        }
    }
}

fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// A field of a `_mta-sts` record that repeats an earlier one and is ignored.
///
/// RFC 8461 §3.2: "If any non-repeated field -- i.e., all fields excepting "mx" -- is
/// duplicated, all entries except for the first SHALL be ignored." The sentence follows the
/// rule that parsers accept "TXT records and policy files", so it covers `v`, `id` and
/// extensions of the TXT record as well as the policy file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepeatedField {
    /// The field name (`v`, `id`, or an extension name).
    pub name: String,
    /// The value that is ignored, as published.
    pub value: String,
    /// The 1-based position of the ignored field (the version is field 1).
    pub position: usize,
}

impl StsRecord {
    /// Parses one record as a sender does, and also returns every repeated field that was
    /// ignored (RFC 8461 §3.2, first wins). [`FromStr`] gives the same record without them.
    ///
    /// A repeat is ignored whatever its value, as long as it is `name=value`: the first
    /// occurrence is what a sender uses, so a broken second `id` does not break the record.
    pub fn parse_noting_repeats(s: &str) -> Result<(StsRecord, Vec<RepeatedField>), Error> {
        let fail = |reason| Error::Record {
            record: s.to_owned(),
            reason,
        };
        // Splitting on ";" and trimming WSP is exactly `sts-field-delim`. Trimming the last
        // piece also admits trailing WSP without a final ";", which the ABNF lacks but zone
        // editors add and every sender tolerates.
        let mut pieces = s.split(';');
        // The record must begin with the version: no whitespace before it.
        match pieces.next().map(|p| p.trim_end_matches(is_wsp)) {
            Some("v=STSv1") => {}
            Some(first)
                if first
                    .strip_prefix("v=STSv1")
                    .is_some_and(|r| r.starts_with(is_wsp)) =>
            {
                return Err(fail(RecordReason::MalformedField(first.to_owned())));
            }
            _ => return Err(fail(RecordReason::VersionNotFirst)),
        }
        let mut fields: Vec<&str> = pieces.map(|p| p.trim_matches(is_wsp)).collect();
        if fields.last() == Some(&"") {
            fields.pop();
        }
        let mut id = None;
        let mut extensions: Vec<Extension> = Vec::new();
        let mut repeats = Vec::new();
        for (i, field) in fields.into_iter().enumerate() {
            if field.is_empty() {
                return Err(fail(RecordReason::EmptyField));
            }
            let Some((name, value)) = field.split_once('=') else {
                return Err(fail(RecordReason::MalformedField(field.to_owned())));
            };
            let repeated = match name {
                "v" => true,
                "id" => id.is_some(),
                _ => extensions.iter().any(|e| e.name == name),
            };
            if repeated && is_ext_name(name) {
                repeats.push(RepeatedField {
                    name: name.to_owned(),
                    value: value.to_owned(),
                    position: i + 2,
                });
                continue;
            }
            match name {
                "id" => {
                    let parsed = value
                        .parse::<PolicyId>()
                        .map_err(|_| fail(RecordReason::InvalidId(value.to_owned())))?;
                    id = Some(parsed);
                }
                _ if !is_ext_name(name) => {
                    return Err(fail(RecordReason::MalformedField(field.to_owned())));
                }
                _ => {
                    let ext = Extension::new(name, value)
                        .map_err(|_| fail(RecordReason::BadExtension(field.to_owned())))?;
                    extensions.push(ext);
                }
            }
        }
        match id {
            Some(id) => Ok((StsRecord { id, extensions }, repeats)),
            None => Err(fail(RecordReason::MissingId)),
        }
    }
}

impl FromStr for StsRecord {
    type Err = Error;

    /// The record a sender uses; repeated fields are ignored (RFC 8461 §3.2), see
    /// [`StsRecord::parse_noting_repeats`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_noting_repeats(s).map(|(record, _)| record)
    }
}

impl fmt::Display for StsRecord {
    /// The canonical form, as in the RFC 8461 §3.1 example: `v=STSv1; id=<id>;` followed by
    /// ` name=value;` for each extension.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v={STS_VERSION}; id={};", self.id)?;
        for ext in &self.extensions {
            write!(f, " {}={};", ext.name, ext.value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8461_3_1_example_record() {
        let rec: StsRecord = "v=STSv1; id=20160831085700Z;".parse().unwrap();
        assert_eq!(rec.id.as_str(), "20160831085700Z");
        assert!(rec.extensions.is_empty());
        assert_eq!(rec.to_string(), "v=STSv1; id=20160831085700Z;");
    }

    #[test]
    fn rfc8461_3_1_good_records() {
        // (record, id, extensions)
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
        let table: &[Case<'_>] = &[
            ("v=STSv1;id=20180907T090909;", "20180907T090909", &[]),
            ("v=STSv1; id=1", "1", &[]),
            ("v=STSv1 ;\tid=abc ; ", "abc", &[]),
            ("v=STSv1; id=abc; ", "abc", &[]),
            (
                "v=STSv1; id=abc; ext_1.a-b=x:y/z; z9=1",
                "abc",
                &[("ext_1.a-b", "x:y/z"), ("z9", "1")],
            ),
            ("v=STSv1; foo=bar; id=abc;", "abc", &[("foo", "bar")]),
            (
                "v=STSv1; id=12345678901234567890123456789012;",
                "12345678901234567890123456789012",
                &[],
            ),
        ];
        for (text, id, exts) in table {
            let rec: StsRecord = text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(rec.id.as_str(), *id, "{text:?}");
            let got: Vec<(&str, &str)> = rec
                .extensions
                .iter()
                .map(|e| (e.name(), e.value()))
                .collect();
            assert_eq!(got, *exts, "{text:?}");
            assert_eq!(rec.to_string().parse::<StsRecord>(), Ok(rec.clone()));
        }
    }

    #[test]
    fn rfc8461_3_1_bad_records() {
        use RecordReason as R;
        // (record, reason)
        let table: &[(&str, RecordReason)] = &[
            ("id=1; v=STSv1;", R::VersionNotFirst),
            ("v=STSv12; id=1", R::VersionNotFirst),
            ("v=stsv1; id=1", R::VersionNotFirst),
            (" v=STSv1; id=1", R::VersionNotFirst),
            ("v=STSv1 id=1", R::MalformedField("v=STSv1 id=1".into())),
            ("v=STSv1", R::MissingId),
            ("v=STSv1;", R::MissingId),
            ("v=STSv1; foo=bar", R::MissingId),
            ("v=STSv1; id=", R::InvalidId(String::new())),
            ("v=STSv1; id=2016-08-31", R::InvalidId("2016-08-31".into())),
            (
                "v=STSv1; id=123456789012345678901234567890123",
                R::InvalidId("123456789012345678901234567890123".into()),
            ),
            ("v=STSv1; v=STSv1", R::MissingId),
            ("v=STSv1; id=1; id", R::MalformedField("id".into())),
            ("v=STSv1;; id=1", R::EmptyField),
            ("v=STSv1; id=1;;", R::EmptyField),
            ("v=STSv1; id", R::MalformedField("id".into())),
            ("v=STSv1; id = 1", R::MalformedField("id = 1".into())),
            ("v=STSv1; id=1; _x=1", R::MalformedField("_x=1".into())),
            ("v=STSv1; id=1; x=a=b", R::BadExtension("x=a=b".into())),
            ("v=STSv1; id=1; x=", R::BadExtension("x=".into())),
            ("v=STSv1; id=1; x=a b", R::BadExtension("x=a b".into())),
        ];
        for (text, reason) in table {
            match text.parse::<StsRecord>() {
                Err(Error::Record { reason: r, .. }) => assert_eq!(&r, reason, "{text:?}"),
                other => panic!("{text:?}: expected {reason:?}, got {other:?}"),
            }
        }
    }

    /// RFC 8461 §3.2: "If any non-repeated field -- i.e., all fields excepting "mx" -- is
    /// duplicated, all entries except for the first SHALL be ignored."
    #[test]
    fn rfc8461_3_2_duplicate_txt_field_first_wins() {
        // (record, the id senders use, the ignored (name, value, position) repeats)
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str, usize)]);
        let table: &[Case<'_>] = &[
            ("v=STSv1; id=1; id=2", "1", &[("id", "2", 3)]),
            ("v=STSv1; id=new; id=old;", "new", &[("id", "old", 3)]),
            ("v=STSv1; v=STSv1; id=1", "1", &[("v", "STSv1", 2)]),
            ("v=STSv1; id=1; v=STSv2", "1", &[("v", "STSv2", 3)]),
            (
                "v=STSv1; id=1; id=not-an-id!; id=",
                "1",
                &[("id", "not-an-id!", 3), ("id", "", 4)],
            ),
            ("v=STSv1; x=a; id=1; x=b", "1", &[("x", "b", 4)]),
        ];
        for (text, id, want) in table {
            let (rec, repeats) = StsRecord::parse_noting_repeats(text)
                .unwrap_or_else(|e| panic!("{text:?} must be accepted: {e}"));
            assert_eq!(rec.id.as_str(), *id, "{text:?}");
            let got: Vec<(&str, &str, usize)> = repeats
                .iter()
                .map(|r| (r.name.as_str(), r.value.as_str(), r.position))
                .collect();
            assert_eq!(got, *want, "{text:?}");
            assert_eq!(text.parse::<StsRecord>(), Ok(rec.clone()), "{text:?}");
            assert_eq!(rec.to_string().parse::<StsRecord>(), Ok(rec), "{text:?}");
        }
        let (rec, _) = StsRecord::parse_noting_repeats("v=STSv1; x=a; id=1; x=b").unwrap();
        assert_eq!(rec.extensions.len(), 1);
        assert_eq!(rec.extensions[0].value(), "a");
    }

    #[test]
    fn rfc8461_3_1_policy_id_is_1_to_32_alphanumerics() {
        assert!("a".parse::<PolicyId>().is_ok());
        assert!("A1b2".parse::<PolicyId>().is_ok());
        assert!("".parse::<PolicyId>().is_err());
        assert!("a-b".parse::<PolicyId>().is_err());
        assert!("é".parse::<PolicyId>().is_err());
        assert!("x".repeat(33).parse::<PolicyId>().is_err());
    }

    #[test]
    fn extension_constructor_refuses_reserved_and_bad_names() {
        assert!(Extension::new("id", "1").is_err());
        assert!(Extension::new("v", "STSv1").is_err());
        assert!(Extension::new("-x", "1").is_err());
        assert!(Extension::new(&"a".repeat(33), "1").is_err());
        assert!(Extension::new(&"a".repeat(32), "1").is_ok());
        assert!(Extension::new("x", "a;b").is_err());
    }
}
