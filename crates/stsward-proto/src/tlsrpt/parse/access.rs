//! RFC 8460 §4.4 — typed access to the JSON members of a report
//!
//! Each accessor names the member it reads by a JSON pointer (RFC 6901), so that a wrong type
//! or a missing member becomes a [`ReportError`] that says exactly where. Pointers are built
//! on the stack and rendered to text only when an error or a deviation needs them.

use std::fmt;

use serde_json::{Map, Value};

use super::ReportError;

/// A JSON pointer (RFC 6901) to the member being read, rendered only when an error or a
/// deviation needs it, so that a clean report costs no path strings.
#[derive(Clone, Copy)]
pub(super) struct Ptr<'a> {
    parent: Option<&'a Ptr<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

pub(super) const ROOT: Ptr<'static> = Ptr {
    parent: None,
    seg: Seg::Root,
};
pub(super) const ORG: Ptr<'static> = ROOT.key("organization-name");
pub(super) const ID: Ptr<'static> = ROOT.key("report-id");
pub(super) const RANGE: Ptr<'static> = ROOT.key("date-range");
pub(super) const POLICIES: Ptr<'static> = ROOT.key("policies");

impl<'a> Ptr<'a> {
    pub(super) const fn key(&'a self, key: &'a str) -> Ptr<'a> {
        Ptr {
            parent: Some(self),
            seg: Seg::Key(key),
        }
    }

    pub(super) const fn index(&'a self, i: usize) -> Ptr<'a> {
        Ptr {
            parent: Some(self),
            seg: Seg::Index(i),
        }
    }
}

impl fmt::Display for Ptr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            write!(f, "{parent}")?;
        }
        match self.seg {
            Seg::Root => Ok(()),
            // RFC 6901 §3: "~" and "/" in a key are escaped.
            Seg::Key(k) => write!(f, "/{}", k.replace('~', "~0").replace('/', "~1")),
            Seg::Index(i) => write!(f, "/{i}"),
        }
    }
}

/// The JSON type of a value, as error messages name it.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() => "integer",
        Value::Number(n) if n.is_i64() => "negative integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn wrong(field: &Ptr<'_>, expected: &'static str, v: &Value) -> ReportError {
    ReportError::FieldType {
        field: field.to_string(),
        expected,
        found: type_name(v),
    }
}

pub(super) fn required<T>(v: Option<T>, field: &Ptr<'_>) -> Result<T, ReportError> {
    v.ok_or_else(|| ReportError::MissingField {
        field: field.to_string(),
    })
}

pub(super) fn object(v: Value, field: &Ptr<'_>) -> Result<Map<String, Value>, ReportError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(wrong(field, "object", &other)),
    }
}

pub(super) fn string(v: Value, field: &Ptr<'_>) -> Result<String, ReportError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(wrong(field, "string", &other)),
    }
}

pub(super) fn count(v: Value, field: &Ptr<'_>) -> Result<u64, ReportError> {
    match v.as_u64() {
        Some(n) => Ok(n),
        None => Err(wrong(field, "non-negative integer", &v)),
    }
}

pub(super) fn string_array(v: Value, field: &Ptr<'_>) -> Result<Vec<String>, ReportError> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| string(item, &field.index(i)))
            .collect(),
        other => Err(wrong(field, "array of strings", &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6901_pointers_render_and_escape() {
        let policies = ROOT.key("policies");
        let first = policies.index(0);
        let odd = first.key("a/b~c");
        assert_eq!(ROOT.to_string(), "");
        assert_eq!(first.key("policy").to_string(), "/policies/0/policy");
        assert_eq!(odd.to_string(), "/policies/0/a~1b~0c");
    }

    #[test]
    fn rfc8460_4_4_type_errors_name_the_member_and_both_types() {
        let field = ROOT.key("policies");
        let err = count(Value::from("3"), &field).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field /policies has type string, expected non-negative integer"
        );
        assert_eq!(type_name(&Value::from(-1)), "negative integer");
        assert_eq!(type_name(&Value::from(1.5)), "number");
    }
}
