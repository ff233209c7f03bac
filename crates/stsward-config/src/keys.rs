//! The keys of a configuration file, traced from its `Deserialize` types with
//! `serde-reflection`: its tracer deserialises the type once from sample values and records
//! every struct's field names and every field's format. A struct is a table, a list of
//! structs an array of tables, anything else a value.
//!
//! Custom `Deserialize` impls trace like the types they read: a percentage read as `f64` is a
//! float, a secret read as a string is a string, and socket and IP addresses (serde's own
//! impls, traced as not human-readable) are enums. Whatever they are, they are values; only
//! whether a value is read from a string matters here (see [`Key::text`]).

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_reflection::{ContainerFormat, Format, Registry, Samples, Tracer, TracerConfig};
use thiserror::Error;

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A value: a number, a boolean, a string, a list of values.
    Value,
    /// A list of tables (`[[section.name]]`): overridden whole, as an array of inline tables.
    ArrayOfTables,
    /// A key of each table of an array of tables: documented, not overridden on its own.
    InArray,
}

/// One key of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Its dotted path, `section.key` (`hosting.nameservers.name` inside an array of tables).
    pub path: String,
    /// What it holds.
    pub kind: KeyKind,
    /// The value is read from a TOML string only (a string, a path, a secret, possibly
    /// optional): an override is then always taken as text, even when it reads as a number.
    pub text: bool,
}

/// Why a type could not be traced.
#[derive(Debug, Error)]
#[error("tracing the configuration's keys: {0}")]
pub struct TraceError(String);

/// Every key of one configuration type, in the order of its fields.
#[derive(Debug, Clone)]
pub struct Keys {
    keys: Vec<Key>,
    tables: BTreeSet<String>,
}

impl Keys {
    /// The keys of `T`, a struct whose fields are its sections and top-level keys.
    pub fn trace<T: DeserializeOwned>() -> Result<Keys, TraceError> {
        let mut tracer = Tracer::new(TracerConfig::default());
        let samples = Samples::new();
        let (root, _) = tracer
            .trace_type_once::<T>(&samples)
            .map_err(|e| TraceError(e.to_string()))?;
        // Unchecked: enums keep the variants one pass found, and only their being values
        // matters here.
        let registry = tracer.registry_unchecked();
        let mut keys = Keys {
            keys: Vec::new(),
            tables: BTreeSet::new(),
        };
        match shape(&registry, &root) {
            Shape::Table(fields) => keys.walk(&registry, "", fields, false),
            _ => return Err(TraceError("the configuration is not a struct".into())),
        }
        Ok(keys)
    }

    fn walk(&mut self, registry: &Registry, prefix: &str, fields: &[Named], in_array: bool) {
        for Named {
            name,
            value: format,
        } in fields
        {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match shape(registry, format) {
                Shape::Table(inner) => {
                    self.tables.insert(path.clone());
                    self.walk(registry, &path, inner, in_array);
                }
                Shape::Tables(inner) => {
                    self.keys.push(Key {
                        path: path.clone(),
                        kind: if in_array {
                            KeyKind::InArray
                        } else {
                            KeyKind::ArrayOfTables
                        },
                        text: false,
                    });
                    self.walk(registry, &path, inner, true);
                }
                Shape::Value { text } => self.keys.push(Key {
                    path,
                    kind: if in_array {
                        KeyKind::InArray
                    } else {
                        KeyKind::Value
                    },
                    text,
                }),
            }
        }
    }

    /// Every key.
    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    /// The key at `path`.
    pub fn get(&self, path: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.path == path)
    }

    /// Whether `path` is a section (a table, possibly optional), not a key.
    pub fn is_table(&self, path: &str) -> bool {
        self.tables.contains(path)
    }

    /// The sections, dotted (`alerts.smtp`).
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.tables.iter().map(String::as_str)
    }

    /// The variable that overrides `key`, with `prefix` (`STSWARD_`): the path upper-cased,
    /// `.` turned into `_`. Keys inside arrays of tables have none.
    pub fn env_var(prefix: &str, key: &Key) -> Option<String> {
        (key.kind != KeyKind::InArray).then(|| env_name(prefix, &key.path))
    }

    /// Each overridable key with its variable.
    pub fn env_vars(&self, prefix: &str) -> Vec<(String, &Key)> {
        self.keys
            .iter()
            .filter_map(|k| Self::env_var(prefix, k).map(|v| (v, k)))
            .collect()
    }
}

/// `prefix` + `path` upper-cased with `.` → `_`.
pub fn env_name(prefix: &str, path: &str) -> String {
    format!("{prefix}{}", path.to_ascii_uppercase().replace('.', "_"))
}

type Named = serde_reflection::Named<Format>;

enum Shape<'r> {
    Table(&'r [Named]),
    Tables(&'r [Named]),
    Value { text: bool },
}

/// What a traced format is, seen from a TOML file.
fn shape<'r>(registry: &'r Registry, format: &'r Format) -> Shape<'r> {
    match format {
        Format::Option(inner) => shape(registry, inner),
        Format::Str => Shape::Value { text: true },
        Format::TypeName(name) => match registry.get(name) {
            Some(ContainerFormat::Struct(fields)) => Shape::Table(fields),
            Some(ContainerFormat::NewTypeStruct(inner)) => shape(registry, inner),
            _ => Shape::Value { text: false },
        },
        Format::Seq(inner) => match shape(registry, inner) {
            Shape::Table(fields) => Shape::Tables(fields),
            _ => Shape::Value { text: false },
        },
        _ => Shape::Value { text: false },
    }
}
