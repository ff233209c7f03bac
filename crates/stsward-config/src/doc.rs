//! The documentation of a file's keys, held to the keys: a Markdown table with one row per
//! key, `| key | type | default | variable | what it does |` (docs/configuration.md).

use std::collections::BTreeSet;

use crate::keys::Keys;

/// One documented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The key's path, without its backquotes.
    pub key: String,
    /// The default cell: `` `value` `` or a word (`none`, `required`).
    pub default: String,
    /// The variable cell: `` `NAME` ``, or `—` for a key without one.
    pub variable: String,
}

impl Row {
    /// The default when it is a value in backquotes.
    pub fn default_value(&self) -> Option<&str> {
        self.default
            .strip_prefix('`')
            .and_then(|d| d.strip_suffix('`'))
    }
}

/// The rows of the key tables in `text`: lines that start with ``| ` ``.
pub fn rows(text: &str) -> Result<Vec<Row>, String> {
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            match cells.as_slice() {
                [key, _, default, variable, _] => Ok(Row {
                    key: key.trim_matches('`').to_owned(),
                    default: (*default).to_owned(),
                    variable: (*variable).to_owned(),
                }),
                _ => Err(format!("not a row of five cells: {line}")),
            }
        })
        .collect()
}

/// Checks that `rows` document every key of `keys` once and no other, each with the
/// variable of `prefix` (`—` inside arrays of tables).
pub fn check(keys: &Keys, prefix: &str, rows: &[Row]) -> Result<(), String> {
    let mut documented = BTreeSet::new();
    for row in rows {
        if !documented.insert(row.key.as_str()) {
            return Err(format!("{} is documented twice", row.key));
        }
        let Some(key) = keys.get(&row.key) else {
            return Err(format!("{} is documented, but no such key exists", row.key));
        };
        let variable = Keys::env_var(prefix, key).map_or("—".to_owned(), |v| format!("`{v}`"));
        if row.variable != variable {
            return Err(format!(
                "{}: the variable is {variable}, not {}",
                row.key, row.variable
            ));
        }
    }
    match keys.iter().find(|k| !documented.contains(k.path.as_str())) {
        Some(missing) => Err(format!("{} is not documented", missing.path)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Conf {
        a: A,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct A {
        x: u32,
        y: String,
    }

    #[test]
    fn every_key_once_with_its_variable() {
        let keys = Keys::trace::<Conf>().expect("traces");
        let good =
            "| `a.x` | integer | `1` | `P_A_X` | x |\n| `a.y` | string | none | `P_A_Y` | y |\n";
        let parsed = rows(good).expect("rows");
        assert_eq!(parsed[0].default_value(), Some("1"));
        assert_eq!(parsed[1].default_value(), None);
        assert_eq!(check(&keys, "P_", &parsed), Ok(()));
        let missing = rows("| `a.x` | integer | `1` | `P_A_X` | x |\n").expect("rows");
        assert_eq!(
            check(&keys, "P_", &missing),
            Err("a.y is not documented".into())
        );
        let extra = format!("{good}| `a.z` | string | none | `P_A_Z` | z |\n");
        assert!(check(&keys, "P_", &rows(&extra).expect("rows")).is_err());
        let wrong = good.replace("`P_A_Y`", "`P_Y`");
        assert!(check(&keys, "P_", &rows(&wrong).expect("rows")).is_err());
        assert!(rows("| `a.x` | two |\n").is_err());
    }
}
