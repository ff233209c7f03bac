//! The harness of the store's behaviour tables: every case runs once per backend, each on a
//! fresh database (a SQLite file, or a database on a throwaway PostgreSQL server from
//! crates/stsward-testkit), and a failing case is named instead of stopping the table.

use std::future::Future;
use std::pin::Pin;

use stsward_store::Backend;
use stsward_testkit::postgres::Postgres;

/// Where a case runs: a fresh database's URL and its backend.
#[derive(Clone, Debug)]
pub struct Db {
    pub url: String,
    pub backend: Backend,
}

/// One behaviour, run on a fresh database.
pub type Case = fn(Db) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs every case on a fresh SQLite file in a temporary directory.
pub async fn run_on_sqlite(cases: &[(&str, Case)]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    run_table(cases, Backend::Sqlite, || {
        n += 1;
        format!(
            "sqlite://{}",
            dir.path().join(format!("case{n}.db")).display()
        )
    })
    .await;
}

/// Runs every case on a fresh database of a throwaway PostgreSQL server; where PostgreSQL is
/// absent outside CI, `group` is recorded as skipped (crates/stsward-testkit).
pub async fn run_on_postgres(group: &str, cases: &[(&str, Case)]) {
    let Some(server) = Postgres::start(group) else {
        return;
    };
    run_table(cases, Backend::Postgres, || server.create_database()).await;
}

/// Runs every case on a fresh database; panics at the end naming each case that failed.
async fn run_table(cases: &[(&str, Case)], backend: Backend, mut fresh: impl FnMut() -> String) {
    let mut failed = Vec::new();
    for (name, case) in cases {
        let db = Db {
            url: fresh(),
            backend,
        };
        // A panicking case fails its task, not the table: the other cases still run.
        if let Err(e) = tokio::spawn(case(db)).await {
            failed.push(format!("{backend}: {name}: {e}"));
        }
    }
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}
