//! A file and its environment overrides, read into one value.
//!
//! One variable per key ([`Keys::env_vars`]): `PREFIX` + the key's path upper-cased, `.` →
//! `_`. Its value is read as a TOML value when it parses as one (numbers, booleans, arrays,
//! an array of inline tables for an array of tables), else as a string; a key read from a
//! string only ([`crate::Key::text`]) always takes the text. An override replaces the
//! file's value (creating its section when the file has none) before the value is
//! deserialised and validated, so that a bad override fails exactly as the same value in the
//! file would, and the error names the variable instead of a line.
//!
//! The overrides are parsed as a second TOML document whose text starts past the file's last
//! byte (it is padded with spaces), so that the span of every error tells where the bad value
//! came from: the file (its line) or one variable.

use std::ffi::OsString;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::keys::Keys;

/// What the environment may override.
#[derive(Debug, Clone, Copy)]
pub struct Layers<'a> {
    /// The variables' prefix (`STSWARD_`).
    pub prefix: &'a str,
    /// Variables with the prefix that are used for something else (`STSWARD_CONFIG`): never
    /// reported as unknown.
    pub allowed: &'a [&'a str],
    /// Prefixes of other files' variables (`STSWARD_RESOLVE_`): never reported as unknown.
    pub others: &'a [&'a str],
}

/// One override that was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The variable.
    pub var: String,
    /// The key it set.
    pub key: String,
}

/// A value read from the file and the environment.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The value, deserialised and validated.
    pub value: T,
    /// The overrides applied, by variable name.
    pub applied: Vec<Override>,
    /// Variables with the prefix that match no key (and are not allowed otherwise).
    pub unknown: Vec<String>,
}

/// What validation refused: the key (`section.key`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The key, or the section; empty when no key is to blame.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Where a refused value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The file; the line when it is known (1-based).
    File {
        /// The file.
        path: PathBuf,
        /// Its line.
        line: Option<usize>,
    },
    /// An environment variable.
    Env {
        /// Its name.
        var: String,
    },
    /// Neither: the defaults (no file) were refused.
    Defaults,
}

/// Why the configuration was refused: where, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problem {
    /// Where the refused value came from.
    pub origin: Origin,
    /// The key (`section.key`) when one is to blame.
    pub key: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}: line {line}: ", path.display())?,
            Origin::File { path, line: None } => write!(f, "{}: ", path.display())?,
            Origin::Env { var } => write!(f, "{var}: ")?,
            Origin::Defaults => {}
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// One override before it is applied.
struct Pending {
    var: String,
    key: String,
    /// Where its value is in the overrides' document.
    span: Range<usize>,
}

impl<'a> Layers<'a> {
    /// Reads `file` (its path and text; `None`: only the defaults) with the overrides found in
    /// `env`, deserialises it, and runs `validate`.
    pub fn load<T: DeserializeOwned>(
        &self,
        keys: &Keys,
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (OsString, OsString)>,
        validate: impl FnOnce(&mut T) -> Result<(), Invalid>,
    ) -> Result<Loaded<T>, Problem> {
        let (path, text) = match file {
            Some((p, t)) => (Some(p), t),
            None => (None, ""),
        };
        let at_file = |span: Option<Range<usize>>| match path {
            Some(p) => Origin::File {
                path: p.to_owned(),
                line: span.map(|s| line_of(text, s.start)),
            },
            None => Origin::Defaults,
        };
        let mut root = DeTable::parse(text)
            .map_err(|e| syntax(at_file(e.span()), &e))?
            .into_inner();

        let (pending, doc, unknown) = self.overrides(keys, text.len(), env)?;
        let origin_of = |span: Option<Range<usize>>| match span {
            Some(s) if s.start > text.len() => pending
                .iter()
                .rfind(|p| p.span.start <= s.start)
                .map(|p| Origin::Env { var: p.var.clone() })
                .unwrap_or_else(|| at_file(None)),
            other => at_file(other),
        };
        if !pending.is_empty() {
            let mut values = DeTable::parse(&doc)
                .map_err(|e| syntax(origin_of(e.span()), &e))?
                .into_inner();
            for (i, p) in pending.iter().enumerate() {
                let Some(value) = values.remove(slot(i).as_str()) else {
                    continue;
                };
                insert(&mut root, &p.key, value).map_err(|reason| Problem {
                    origin: Origin::Env { var: p.var.clone() },
                    key: Some(p.key.clone()),
                    reason,
                })?;
            }
        }
        let applied: Vec<Override> = pending
            .iter()
            .map(|p| Override {
                var: p.var.clone(),
                key: p.key.clone(),
            })
            .collect();

        let span = 0..doc.len().max(text.len());
        let located = root.clone();
        let mut value = T::deserialize(toml::de::Deserializer::from(Spanned::new(span, root)))
            .map_err(|e| {
                let at = e.span();
                Problem {
                    origin: origin_of(at.clone()),
                    key: at.and_then(|s| key_at(&located, "", s.start)),
                    reason: e.message().trim().to_owned(),
                }
            })?;
        validate(&mut value).map_err(|invalid| locate(file, &applied, invalid))?;
        Ok(Loaded {
            value,
            applied,
            unknown,
        })
    }

    /// The variables of `env` that override a key (each with the key), without reading their
    /// values, and those with the prefix that match no key.
    pub fn applicable(
        &self,
        keys: &Keys,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> (Vec<Override>, Vec<String>) {
        let (found, unknown) = self.scan(keys, env);
        let applied = found
            .into_iter()
            .map(|(var, key, _)| Override {
                var,
                key: key.path.clone(),
            })
            .collect();
        (applied, unknown)
    }

    /// The overriding variables of `env` (sorted by name, with their keys and raw values) and
    /// the unknown ones.
    #[allow(clippy::type_complexity)]
    fn scan<'k>(
        &self,
        keys: &'k Keys,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> (Vec<(String, &'k crate::Key, OsString)>, Vec<String>) {
        let by_var: std::collections::BTreeMap<String, &crate::Key> =
            keys.env_vars(self.prefix).into_iter().collect();
        let mut found = Vec::new();
        let mut unknown = Vec::new();
        for (name, value) in env {
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(self.prefix) {
                continue;
            }
            match by_var.get(name) {
                Some(key) => found.push((name.to_owned(), *key, value)),
                None if self.allowed.contains(&name)
                    || self.others.iter().any(|o| name.starts_with(o)) => {}
                None => unknown.push(name.to_owned()),
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        unknown.sort();
        (found, unknown)
    }

    /// The overrides in `env`, as a TOML document of their values (`v0 = …`, one per line)
    /// that starts past `offset`, and the unknown variables.
    #[allow(clippy::type_complexity)]
    fn overrides(
        &self,
        keys: &Keys,
        offset: usize,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<(Vec<Pending>, String, Vec<String>), Problem> {
        let (found, unknown) = self.scan(keys, env);
        if found.is_empty() {
            return Ok((Vec::new(), String::new(), unknown));
        }
        // Spaces up to past the file's end, then one line per override.
        let mut doc = " ".repeat(offset);
        doc.push('\n');
        let mut pending = Vec::new();
        for (i, (var, key, value)) in found.into_iter().enumerate() {
            let value = value.into_string().map_err(|_| Problem {
                origin: Origin::Env { var: var.clone() },
                key: Some(key.path.clone()),
                reason: "the value is not UTF-8".into(),
            })?;
            let as_toml = DeValue::parse(&value).ok().map(Spanned::into_inner);
            let raw = match as_toml {
                Some(DeValue::Datetime(_)) | None => quoted(&value),
                Some(DeValue::String(_)) => value.clone(),
                Some(_) if key.text => quoted(&value),
                Some(_) => value.clone(),
            };
            let start = doc.len();
            doc.push_str(&format!("{} = {raw}\n", slot(i)));
            pending.push(Pending {
                var,
                key: key.path.clone(),
                span: start..doc.len(),
            });
        }
        Ok((pending, doc, unknown))
    }
}

/// Where the value of a refused key came from: the variable in `applied` that set it (or set a
/// key of the section it names), else its line in `file`.
pub fn locate(file: Option<(&Path, &str)>, applied: &[Override], invalid: Invalid) -> Problem {
    let Invalid { key, reason } = invalid;
    let overridden = applied.iter().find(|o| {
        !key.is_empty() && (o.key == key || within(&o.key, &key) || within(&key, &o.key))
    });
    let origin = match (overridden, file) {
        (Some(o), _) => Origin::Env { var: o.var.clone() },
        (None, Some((path, text))) => Origin::File {
            path: path.to_owned(),
            line: DeTable::parse(text)
                .ok()
                .and_then(|t| span_of(t.get_ref(), &key))
                .map(|s| line_of(text, s.start)),
        },
        (None, None) => Origin::Defaults,
    };
    Problem {
        origin,
        key: (!key.is_empty()).then_some(key),
        reason,
    }
}

/// A TOML syntax error at `origin` (no key is to blame).
fn syntax(origin: Origin, e: &toml::de::Error) -> Problem {
    Problem {
        origin,
        key: None,
        reason: e.message().trim().to_owned(),
    }
}

/// Whether dotted `inner` is a key of section `outer`.
fn within(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.starts_with('.'))
}

/// The key of the `i`-th override in the overrides' document.
fn slot(i: usize) -> String {
    format!("v{i}")
}

/// `text` as a TOML basic string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// The 1-based line of byte `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    let end = at.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Sets `path` (dotted) in `root` to `value`, creating the tables on the way.
fn insert<'i>(
    root: &mut DeTable<'i>,
    path: &str,
    value: Spanned<DeValue<'i>>,
) -> Result<(), String> {
    let span = value.span();
    let mut table = root;
    let mut parts = path.split('.').peekable();
    let mut walked = String::new();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            table.insert(
                Spanned::new(span.clone(), std::borrow::Cow::Owned(part.to_owned())),
                value,
            );
            return Ok(());
        }
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
        if table.get(part).is_none() {
            table.insert(
                Spanned::new(span.clone(), std::borrow::Cow::Owned(part.to_owned())),
                Spanned::new(span.clone(), DeValue::Table(DeTable::new())),
            );
        }
        match table.get_mut(part).map(Spanned::get_mut) {
            Some(DeValue::Table(inner)) => table = inner,
            _ => return Err(format!("the file's {walked} is not a table")),
        }
    }
    Ok(())
}

/// The deepest key whose name or value spans byte `at`.
fn key_at(table: &DeTable<'_>, prefix: &str, at: usize) -> Option<String> {
    for (k, v) in table.iter() {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        let inner = match v.get_ref() {
            DeValue::Table(t) => key_at(t, &path, at),
            DeValue::Array(items) => items.iter().find_map(|item| match item.get_ref() {
                DeValue::Table(t) => key_at(t, &path, at),
                _ => None,
            }),
            _ => None,
        };
        if inner.is_some() {
            return inner;
        }
        if k.span().contains(&at) || v.span().contains(&at) {
            return Some(path);
        }
    }
    None
}

/// Where key `path` (dotted; through arrays of tables, the first entry that has it) is.
fn span_of(table: &DeTable<'_>, path: &str) -> Option<Range<usize>> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let (key, value) = table.get_key_value(head)?;
    let Some(rest) = rest else {
        return Some(key.span());
    };
    match value.get_ref() {
        DeValue::Table(t) => span_of(t, rest).or(Some(key.span())),
        DeValue::Array(items) => items
            .iter()
            .find_map(|item| match item.get_ref() {
                DeValue::Table(t) => span_of(t, rest),
                _ => None,
            })
            .or(Some(key.span())),
        _ => Some(key.span()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyKind;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Conf {
        top: u32,
        net: Net,
        opt: Option<Opt>,
        items: Vec<Item>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Net {
        name: String,
        port: u16,
        list: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Opt {
        need: String,
        #[serde(default)]
        path: Option<PathBuf>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        id: String,
        #[serde(default)]
        n: i64,
    }

    const LAYERS: Layers<'static> = Layers {
        prefix: "T_",
        allowed: &["T_CONFIG"],
        others: &["T_OTHER_"],
    };

    fn env(vars: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        vars.iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<Loaded<Conf>, Problem> {
        let keys = Keys::trace::<Conf>().expect("traces");
        LAYERS.load(
            &keys,
            Some((Path::new("c.toml"), text)),
            env(vars),
            |c: &mut Conf| {
                if c.net.port == 1 {
                    return Err(Invalid {
                        key: "net.port".into(),
                        reason: "must not be 1".into(),
                    });
                }
                Ok(())
            },
        )
    }

    #[test]
    fn keys_follow_the_structs() {
        let keys = Keys::trace::<Conf>().expect("traces");
        let paths: Vec<(&str, KeyKind, bool)> = keys
            .iter()
            .map(|k| (k.path.as_str(), k.kind, k.text))
            .collect();
        assert_eq!(
            paths,
            [
                ("top", KeyKind::Value, false),
                ("net.name", KeyKind::Value, true),
                ("net.port", KeyKind::Value, false),
                ("net.list", KeyKind::Value, false),
                ("opt.need", KeyKind::Value, true),
                ("opt.path", KeyKind::Value, true),
                ("items", KeyKind::ArrayOfTables, false),
                ("items.id", KeyKind::InArray, true),
                ("items.n", KeyKind::InArray, false),
            ]
        );
        assert!(keys.is_table("net") && keys.is_table("opt") && !keys.is_table("items"));
        let vars: Vec<String> = keys.env_vars("T_").into_iter().map(|(v, _)| v).collect();
        assert!(vars.contains(&"T_NET_PORT".to_owned()));
        assert!(vars.contains(&"T_ITEMS".to_owned()));
        assert!(
            !vars.iter().any(|v| v == "T_ITEMS_ID"),
            "no variable inside arrays"
        );
    }

    #[test]
    fn overrides_replace_the_file_and_create_sections() {
        let loaded = load(
            "top = 1\n[net]\nname = \"a\"\nport = 5\n",
            &[
                ("T_NET_PORT", "7"),
                ("T_NET_NAME", "123"),
                ("T_NET_LIST", "[\"x\", \"y\"]"),
                ("T_OPT_NEED", "yes"),
                ("T_ITEMS", "[{id = \"a\", n = 2}, {id = \"b\"}]"),
                ("T_CONFIG", "ignored"),
                ("T_OTHER_X", "ignored"),
                ("T_NOPE", "1"),
                ("UNRELATED", "1"),
            ],
        )
        .expect("loads");
        let c = loaded.value;
        assert_eq!(c.top, 1, "the file's value stays");
        assert_eq!(c.net.port, 7, "a number");
        assert_eq!(c.net.name, "123", "a string key takes the text");
        assert_eq!(c.net.list, ["x", "y"]);
        assert_eq!(c.opt.map(|o| o.need), Some("yes".into()), "section created");
        assert_eq!(c.items.len(), 2);
        assert_eq!(c.items[0].n, 2);
        assert_eq!(loaded.unknown, ["T_NOPE"]);
        let vars: Vec<&str> = loaded.applied.iter().map(|o| o.var.as_str()).collect();
        assert_eq!(
            vars,
            [
                "T_ITEMS",
                "T_NET_LIST",
                "T_NET_NAME",
                "T_NET_PORT",
                "T_OPT_NEED"
            ]
        );
    }

    #[test]
    fn errors_say_where_and_which_key() {
        let file = "top = 1\n[net]\nname = \"a\"\nport = \"x\"\n";
        let e = load(file, &[]).expect_err("wrong type");
        assert_eq!(e.key.as_deref(), Some("net.port"), "{e}");
        assert!(
            e.to_string().starts_with("c.toml: line 4: net.port: "),
            "{e}"
        );

        let e = load("[net]\nbogus = 1\n", &[]).expect_err("unknown key");
        assert!(
            e.to_string().starts_with("c.toml: line 2: net.bogus: "),
            "{e}"
        );
        assert!(e.reason.contains("unknown field"), "{e}");

        let e = load("[net\n", &[]).expect_err("syntax");
        assert!(e.to_string().starts_with("c.toml: line 1: "), "{e}");

        // The override fixes the file's type error.
        let fixed = load(file, &[("T_NET_PORT", "9")]).expect("fixed");
        assert_eq!(fixed.value.net.port, 9);

        // An override breaks a good file: the variable is named, not a line.
        let e = load("[net]\nport = 2\n", &[("T_NET_PORT", "big")]).expect_err("type");
        assert!(e.to_string().starts_with("T_NET_PORT: net.port: "), "{e}");
        let e = load("", &[("T_NET_PORT", "70000")]).expect_err("range");
        assert!(e.to_string().starts_with("T_NET_PORT: net.port: "), "{e}");

        // Validation: the line of the key, or the variable that set it.
        let e = load("top = 3\n[net]\nport = 1\n", &[]).expect_err("invalid");
        assert_eq!(e.to_string(), "c.toml: line 3: net.port: must not be 1");
        let e = load("", &[("T_NET_PORT", "1")]).expect_err("invalid");
        assert_eq!(e.to_string(), "T_NET_PORT: net.port: must not be 1");

        // A section created by a variable misses its other keys.
        let e = load("", &[("T_OPT_PATH", "/x")]).expect_err("missing need");
        assert!(e.to_string().starts_with("T_OPT_PATH: opt"), "{e}");
        assert!(e.reason.contains("need"), "{e}");

        // A key inside an array of tables set by a variable is the variable's.
        let e = LAYERS
            .load(
                &Keys::trace::<Conf>().expect("traces"),
                Some((Path::new("c.toml"), "[[items]]\nid = \"a\"\n")),
                env(&[("T_ITEMS", "[{id = \"\"}]")]),
                |c: &mut Conf| match c.items.first() {
                    Some(i) if i.id.is_empty() => Err(Invalid {
                        key: "items.id".into(),
                        reason: "is empty".into(),
                    }),
                    _ => Ok(()),
                },
            )
            .expect_err("empty id");
        assert_eq!(e.to_string(), "T_ITEMS: items.id: is empty");

        // The file holds a value where a section is needed.
        let e = load("net = 5\n", &[("T_NET_PORT", "3")]).expect_err("not a table");
        assert!(e.to_string().starts_with("T_NET_PORT: net.port: "), "{e}");
    }

    #[test]
    fn without_a_file_errors_name_the_key_only() {
        let keys = Keys::trace::<Conf>().expect("traces");
        let e = LAYERS
            .load(&keys, None, env(&[]), |_: &mut Conf| {
                Err(Invalid {
                    key: "net.name".into(),
                    reason: "is empty".into(),
                })
            })
            .expect_err("refused");
        assert_eq!(e.to_string(), "net.name: is empty");
    }
}
