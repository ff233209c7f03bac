//! The schema migrations, embedded in the binary, one folder per backend.
//!
//! ```text
//! migrations/sqlite/NNNN_<area>.sql      applied in order of NNNN to a SQLite database
//! migrations/postgres/NNNN_<area>.sql    the same change, in PostgreSQL's dialect
//! ```
//!
//! A new table is a new pair of files, listed below in both tables; the test
//! `every_migration_file_is_embedded` fails when a file in a folder is missing from its list.
//! Applied migrations are recorded in sqlx's `_sqlx_migrations` table with a checksum, so an
//! edited migration that was already applied is refused at open rather than silently ignored:
//! change the schema with a new file, never by editing an old one.
//!
//! The files are embedded by a [`MigrationSource`] of our own rather than `sqlx::migrate!`,
//! which lives behind sqlx's `macros` feature and would compile both database drivers a
//! second time for the proc macro.

use std::borrow::Cow;
use std::fmt;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use crate::Backend;

/// One migration file: its name (`NNNN_<area>.sql`) and its text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Embedded {
    pub(crate) file: &'static str,
    pub(crate) sql: &'static str,
}

macro_rules! embed {
    ($dir:literal, $file:literal) => {
        Embedded {
            file: $file,
            sql: include_str!(concat!("../migrations/", $dir, "/", $file)),
        }
    };
}

/// SQLite's migrations, in order.
pub(crate) const SQLITE: &[Embedded] = &[
    embed!("sqlite", "0001_resolver.sql"),
    embed!("sqlite", "0002_hosting.sql"),
    embed!("sqlite", "0003_replicas.sql"),
    embed!("sqlite", "0004_leases.sql"),
    embed!("sqlite", "0005_scheduler.sql"),
    embed!("sqlite", "0006_reports.sql"),
    embed!("sqlite", "0007_auth.sql"),
    embed!("sqlite", "0008_checks.sql"),
    embed!("sqlite", "0009_web_sessions.sql"),
    embed!("sqlite", "0010_alerts.sql"),
    embed!("sqlite", "0011_report_indexes.sql"),
];

/// PostgreSQL's migrations, in order.
pub(crate) const POSTGRES: &[Embedded] = &[
    embed!("postgres", "0001_resolver.sql"),
    embed!("postgres", "0002_hosting.sql"),
    embed!("postgres", "0003_replicas.sql"),
    embed!("postgres", "0004_leases.sql"),
    embed!("postgres", "0005_scheduler.sql"),
    embed!("postgres", "0006_reports.sql"),
    embed!("postgres", "0007_auth.sql"),
    embed!("postgres", "0008_checks.sql"),
    embed!("postgres", "0009_web_sessions.sql"),
    embed!("postgres", "0010_alerts.sql"),
    embed!("postgres", "0011_report_indexes.sql"),
];

/// The migrations of `backend`.
pub(crate) fn files(backend: Backend) -> &'static [Embedded] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// A migration file whose name is not `NNNN_<description>.sql`.
#[derive(Debug)]
struct BadFileName(&'static str);

impl fmt::Display for BadFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "migration file {:?} is not named NNNN_<description>.sql",
            self.0
        )
    }
}

impl std::error::Error for BadFileName {}

/// `0001_resolver.sql` -> `(1, "resolver")`; underscores in the description become spaces,
/// as `sqlx migrate` names them.
fn parse_file_name(file: &'static str) -> Result<(i64, String), BadFileName> {
    let stem = file.strip_suffix(".sql").ok_or(BadFileName(file))?;
    let (version, description) = stem.split_once('_').ok_or(BadFileName(file))?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) || description.is_empty()
    {
        return Err(BadFileName(file));
    }
    let version = version.parse::<i64>().map_err(|_| BadFileName(file))?;
    Ok((version, description.replace('_', " ")))
}

/// The embedded migrations of one backend, as sqlx's migrator reads them.
#[derive(Debug, Clone, Copy)]
struct Source(&'static [Embedded]);

impl<'s> MigrationSource<'s> for Source {
    fn resolve(self) -> futures_box::BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            let mut migrations = Vec::with_capacity(self.0.len());
            for embedded in self.0 {
                let (version, description) = parse_file_name(embedded.file)?;
                migrations.push(Migration::new(
                    version,
                    Cow::Owned(description),
                    MigrationType::Simple,
                    Cow::Borrowed(embedded.sql),
                    false,
                ));
            }
            Ok(migrations)
        })
    }
}

/// The same type as `futures_core::future::BoxFuture`, which sqlx's trait names.
mod futures_box {
    use std::future::Future;
    use std::pin::Pin;

    pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
}

/// The migrator for `backend`.
pub(crate) async fn migrator(backend: Backend) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Source(files(backend))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_file_names() {
        let good: &[(&'static str, i64, &str)] = &[
            ("0001_resolver.sql", 1, "resolver"),
            ("0012_report_intake.sql", 12, "report intake"),
        ];
        for (file, version, description) in good {
            let parsed = parse_file_name(file).expect(file);
            assert_eq!(parsed, (*version, description.to_string()), "{file}");
        }
        let bad: &[(&'static str, &str)] = &[
            ("0001_resolver.txt", "not .sql"),
            ("0001.sql", "no description"),
            ("0001_.sql", "empty description"),
            ("_resolver.sql", "no version"),
            ("v1_resolver.sql", "version is not digits"),
            ("99999999999999999999_x.sql", "version overflows i64"),
        ];
        for (file, why) in bad {
            assert!(parse_file_name(file).is_err(), "{why}: {file}");
        }
    }

    #[test]
    fn every_migration_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for (dir, backend) in [("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)] {
            let mut on_disk: Vec<String> = std::fs::read_dir(root.join(dir))
                .expect("migrations folder")
                .map(|entry| {
                    entry
                        .expect("entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            on_disk.sort();
            let embedded: Vec<String> = files(backend).iter().map(|e| e.file.to_string()).collect();
            assert_eq!(
                on_disk, embedded,
                "migrations/{dir} vs its list in migrate.rs"
            );
        }
    }

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let versions = |backend| -> Vec<i64> {
            files(backend)
                .iter()
                .map(|e| parse_file_name(e.file).expect(e.file).0)
                .collect()
        };
        let sqlite = versions(Backend::Sqlite);
        assert_eq!(sqlite, versions(Backend::Postgres));
        assert!(
            sqlite.windows(2).all(|w| w[0] < w[1]),
            "versions strictly increase: {sqlite:?}"
        );
    }
}
