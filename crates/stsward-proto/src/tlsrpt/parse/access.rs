//! RFC 8460 §4.4 — typed access to the JSON members of a report
//!
//! Each accessor names the member it reads by a JSON pointer (RFC 6901), so that a wrong type
//! or a missing member becomes a [`ReportError`] that says exactly where. Pointers are built
//! on the stack and rendered to text only when an error or a deviation needs them.
//!
//! The walker reads any tree that implements [`Node`]: `serde_json::Value` (the reference)
//! or the fast path's borrowed tree (`super::fast`), so both give the same report, the same
//! deviations and the same errors.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use super::{CountReason, ReportError};

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
            Seg::Key(k) => {
                f.write_str("/")?;
                let mut rest = k;
                while let Some(at) = rest.find(['~', '/']) {
                    let (head, tail) = rest.split_at(at);
                    f.write_str(head)?;
                    f.write_str(if tail.starts_with('~') { "~0" } else { "~1" })?;
                    rest = tail.get(1..).unwrap_or_default();
                }
                f.write_str(rest)
            }
            Seg::Index(i) => write!(f, "/{i}"),
        }
    }
}

/// A parsed JSON value as the walker reads it (RFC 8259 §3): moved out member by member.
pub(super) trait Node: Sized {
    /// An object member's name.
    type Key: AsRef<str> + Into<String> + fmt::Display;
    /// An object's members, in document order (duplicates as the tree keeps them).
    type Members: IntoIterator<Item = (Self::Key, Self)>;

    /// The JSON type, as error messages name it.
    fn type_name(&self) -> &'static str;
    /// Whether this is JSON `null`.
    fn is_null(&self) -> bool;
    /// The members of an object, or the value back when it is not one.
    fn into_object(self) -> Result<Self::Members, Self>;
    /// The elements of an array, or the value back when it is not one.
    fn into_array(self) -> Result<Vec<Self>, Self>;
    /// The text of a string, or the value back when it is not one.
    fn into_string(self) -> Result<String, Self>;
    /// A number's text exactly as sent (`false`), or a string's content (`true`).
    fn count_text(&self) -> Option<(Cow<'_, str>, bool)>;
    /// The value as a `serde_json::Value`, to keep as an extension; `None` when this tree
    /// cannot say exactly what the reference parser would have made of it.
    fn into_value(self) -> Option<Value>;
}

impl Node for Value {
    type Key = String;
    type Members = serde_json::Map<String, Value>;

    fn type_name(&self) -> &'static str {
        type_name(self)
    }

    fn is_null(&self) -> bool {
        self.is_null()
    }

    fn into_object(self) -> Result<Self::Members, Self> {
        match self {
            Value::Object(m) => Ok(m),
            other => Err(other),
        }
    }

    fn into_array(self) -> Result<Vec<Self>, Self> {
        match self {
            Value::Array(items) => Ok(items),
            other => Err(other),
        }
    }

    fn into_string(self) -> Result<String, Self> {
        match self {
            Value::String(s) => Ok(s),
            other => Err(other),
        }
    }

    fn count_text(&self) -> Option<(Cow<'_, str>, bool)> {
        match self {
            // With serde_json's `arbitrary_precision`, a number's text is exactly what was
            // sent.
            Value::Number(n) => Some((Cow::Owned(n.to_string()), false)),
            Value::String(s) => Some((Cow::Borrowed(s.as_str()), true)),
            _ => None,
        }
    }

    fn into_value(self) -> Option<Value> {
        Some(self)
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

pub(super) fn wrong<N: Node>(field: &Ptr<'_>, expected: &'static str, v: &N) -> ReportError {
    ReportError::FieldType {
        field: field.to_string(),
        expected,
        found: v.type_name(),
    }
}

pub(super) fn required<T>(v: Option<T>, field: &Ptr<'_>) -> Result<T, ReportError> {
    v.ok_or_else(|| ReportError::MissingField {
        field: field.to_string(),
    })
}

pub(super) fn object<N: Node>(v: N, field: &Ptr<'_>) -> Result<N::Members, ReportError> {
    v.into_object()
        .map_err(|other| wrong(field, "object", &other))
}

pub(super) fn string<N: Node>(v: N, field: &Ptr<'_>) -> Result<String, ReportError> {
    v.into_string()
        .map_err(|other| wrong(field, "string", &other))
}

/// How a session count was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CountForm {
    /// A JSON integer, as RFC 8460 §4.4 has it.
    Integer,
    /// A JSON number with a fraction or an exponent that is still a whole number (`5.0`).
    Float,
    /// A JSON string holding a number (`"5"`).
    String,
}

/// A session count (RFC 8460 §4.4 `total-successful-session-count`,
/// `total-failure-session-count`, `failed-session-count`) and how it was written. Whole
/// numbers written as a float or a string are read exactly; anything else that is not a
/// non-negative whole number within `u64` is an error naming the member.
pub(super) fn count<N: Node>(
    v: N,
    field: &Ptr<'_>,
) -> Result<(u64, CountForm, String), ReportError> {
    let Some((text, string_form)) = v.count_text() else {
        return Err(wrong(field, "non-negative integer", &v));
    };
    let bad = |reason| ReportError::Count {
        field: field.to_string(),
        value: text.to_string(),
        reason,
    };
    let (n, plain) = exact_whole_number(&text).map_err(bad)?;
    let form = match (string_form, plain) {
        (true, _) => CountForm::String,
        (false, true) => CountForm::Integer,
        (false, false) => CountForm::Float,
    };
    // How the value is shown in a deviation: a string quoted, a number as sent.
    let shown = match form {
        CountForm::Integer => String::new(),
        CountForm::String => format!("{text:?}"),
        CountForm::Float => text.into_owned(),
    };
    Ok((n, form, shown))
}

/// Reads JSON number text (RFC 8259 §6) as a non-negative whole number, exactly: `5`, `5.0`,
/// `5e0`, `0.5e1` are all 5. Returns the value and whether the text was a plain integer.
fn exact_whole_number(text: &str) -> Result<(u64, bool), CountReason> {
    // The common case: plain digits (leading zeros allowed, as below), short enough that
    // they always fit `u64`.
    if (1..=19).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = text.parse::<u64>()
    {
        return Ok((n, true));
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let exp_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    // JSON numbers have no leading zeros ("05"), but strings written by hand may; they are
    // still the number, so only the shape is checked here.
    if !digits(int) || !frac.is_none_or(digits) || !exp_ok {
        return Err(CountReason::NotANumber);
    }
    let plain = frac.is_none() && exponent.is_none();
    let frac = frac.unwrap_or("");
    let all: String = format!("{int}{frac}");
    let significant = all.trim_start_matches('0');
    if significant.is_empty() {
        return Ok((0, plain && !negative));
    }
    if negative {
        return Err(CountReason::Negative);
    }
    // value = significant × 10^(exp − len(frac)), with `exp` bounded so that a huge
    // exponent cannot make this loop or allocate: anything past 10^20 is too large anyway.
    let exp: i64 = match exponent {
        None => 0,
        Some(e) => {
            let (sign, mag) = match e.strip_prefix('-') {
                Some(m) => (-1, m),
                None => (1, e.strip_prefix('+').unwrap_or(e)),
            };
            let mag = mag.trim_start_matches('0');
            if mag.len() > 6 {
                return Err(if sign > 0 {
                    CountReason::TooLarge
                } else {
                    CountReason::Fraction
                });
            }
            sign * mag.parse::<i64>().unwrap_or(0)
        }
    };
    let frac_len = i64::try_from(frac.len()).unwrap_or(i64::MAX);
    let scale = exp.saturating_sub(frac_len);
    let whole = if scale >= 0 {
        let zeros = usize::try_from(scale).unwrap_or(usize::MAX);
        if significant.len().saturating_add(zeros) > 20 {
            return Err(CountReason::TooLarge);
        }
        format!("{significant}{}", "0".repeat(zeros))
    } else {
        let cut = usize::try_from(scale.unsigned_abs()).unwrap_or(usize::MAX);
        // Trailing zeros of `all` were not trimmed, so the fraction digits are all here.
        let keep = significant.len().saturating_sub(cut);
        let (head, tail) = significant.split_at(keep);
        if cut > significant.len() || tail.bytes().any(|b| b != b'0') {
            return Err(CountReason::Fraction);
        }
        if head.is_empty() {
            "0".to_owned()
        } else {
            head.to_owned()
        }
    };
    whole
        .parse::<u64>()
        .map(|n| (n, plain))
        .map_err(|_| CountReason::TooLarge)
}

pub(super) fn string_array<N: Node>(v: N, field: &Ptr<'_>) -> Result<Vec<String>, ReportError> {
    match v.into_array() {
        Ok(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| string(item, &field.index(i)))
            .collect(),
        Err(other) => Err(wrong(field, "array of strings", &other)),
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
        let twice = first.key("~~//x~");
        assert_eq!(ROOT.to_string(), "");
        assert_eq!(first.key("policy").to_string(), "/policies/0/policy");
        assert_eq!(odd.to_string(), "/policies/0/a~1b~0c");
        assert_eq!(twice.to_string(), "/policies/0/~0~0~1~1x~0");
    }

    #[test]
    fn rfc8460_4_4_counts_are_read_exactly() {
        // (text, value, a plain integer?)
        let good: &[(&str, u64, bool)] = &[
            ("0", 0, true),
            ("5", 5, true),
            ("007", 7, true),
            ("9999999999999999999", 9_999_999_999_999_999_999, true),
            ("00000000000000000000000042", 42, true),
            ("18446744073709551615", u64::MAX, true),
            ("5.0", 5, false),
            ("5.000", 5, false),
            ("5e0", 5, false),
            ("5E+2", 500, false),
            ("0.5e1", 5, false),
            ("50e-1", 5, false),
            ("0.0", 0, false),
            ("1.8446744073709551615e19", u64::MAX, false),
        ];
        for (text, value, plain) in good {
            assert_eq!(exact_whole_number(text), Ok((*value, *plain)), "{text}");
        }
        // (text, reason)
        let bad: &[(&str, CountReason)] = &[
            ("5.5", CountReason::Fraction),
            ("0.1", CountReason::Fraction),
            ("5e-1", CountReason::Fraction),
            ("1e-9999999", CountReason::Fraction),
            ("-1", CountReason::Negative),
            ("-1.0", CountReason::Negative),
            ("18446744073709551616", CountReason::TooLarge),
            ("1e20", CountReason::TooLarge),
            ("1e9999999999", CountReason::TooLarge),
            ("", CountReason::NotANumber),
            ("five", CountReason::NotANumber),
            (" 5", CountReason::NotANumber),
            ("+5", CountReason::NotANumber),
            ("5.", CountReason::NotANumber),
            (".5", CountReason::NotANumber),
            ("5e", CountReason::NotANumber),
            ("0x10", CountReason::NotANumber),
        ];
        for (text, reason) in bad {
            assert_eq!(exact_whole_number(text), Err(reason.clone()), "{text}");
        }
    }

    #[test]
    fn rfc8460_4_4_type_errors_name_the_member_and_both_types() {
        let field = ROOT.key("policies");
        assert!(matches!(
            count(Value::from("3"), &field),
            Ok((3, CountForm::String, _))
        ));
        let err = count(Value::Bool(true), &field).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field /policies has type boolean, expected non-negative integer"
        );
        let err = count(Value::from("3.5"), &field).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field /policies is \"3.5\", not a count of sessions: it has a fractional part"
        );
        assert_eq!(type_name(&Value::from(-1)), "negative integer");
        assert_eq!(type_name(&Value::from(1.5)), "number");
    }
}
