//! Opening a store: the URL, the connection pool and its deadlines, and the migrations.
//!
//! ```text
//! sqlite://PATH            a file, created when missing; WAL, synchronous=FULL, busy timeout
//! sqlite::memory:          a private database that lives as long as the Store (tests, dry runs)
//! postgres://… (postgresql://…)   a shared database; statement_timeout set per connection
//! ```

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{Operation, StoreError};
use crate::migrate;

/// Which database a [`Store`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A SQLite file (or memory): one process, the default.
    Sqlite,
    /// PostgreSQL: several processes (replicas) may share it.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        })
    }
}

/// How big the pool is and how long anything may wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Connections in the pool at most (an in-memory SQLite database always uses one).
    pub max_connections: u32,
    /// How long an operation waits for a free connection.
    pub acquire_timeout: Duration,
    /// How long one statement may run: PostgreSQL's `statement_timeout`, SQLite's busy
    /// timeout (the only wait a single indexed statement has there), and, added to
    /// `acquire_timeout`, the client-side deadline of every operation, which also covers a
    /// server that stopped answering.
    pub query_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(5),
        }
    }
}

/// The store: a connection pool to one database. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// The client-side deadline of one operation (acquire + query timeouts).
    deadline: Duration,
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever the backend. The body is
/// written once and type-checked once per backend; SQL shared by both uses `$N` parameters,
/// which SQLite accepts too.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

impl fmt::Debug for Store {
    // Hand-written: the pools' own Debug shows the connect options, password included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (size, idle) = with_pool!(self, pool => (pool.size(), pool.num_idle()));
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("connections", &size)
            .field("idle", &idle)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Store {
    /// Opens the database at `url` with the default [`StoreOptions`] and applies the
    /// migrations it lacks.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// Opens the database at `url` and applies the migrations it lacks.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let backend = backend_of(url)?;
        let pool = match backend {
            Backend::Sqlite => Pool::Sqlite(open_sqlite(url, options).await?),
            Backend::Postgres => Pool::Postgres(open_postgres(url, options).await?),
        };
        let store = Store {
            pool,
            deadline: options
                .acquire_timeout
                .saturating_add(options.query_timeout),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection, waiting for operations in flight. Dropping the last clone
    /// also closes the pool, but without waiting.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let backend = self.backend();
        let failed = |source| StoreError::Migrate { backend, source };
        let migrator = migrate::migrator(backend).await.map_err(failed)?;
        let first = with_pool!(self, pool => migrator.run(pool).await);
        match (first, backend) {
            (Ok(()), _) => Ok(()),
            // PostgreSQL serialises migrators with an advisory lock; SQLite has none, so two
            // processes creating the same file at once can both try the first migration, and
            // the loser fails. Once the winner has committed, a second run finds it applied.
            (Err(_), Backend::Sqlite) => {
                with_pool!(self, pool => migrator.run(pool).await).map_err(failed)
            }
            (Err(source), Backend::Postgres) => Err(failed(source)),
        }
    }

    /// Runs one operation's queries under the store's deadline.
    pub(crate) async fn run<T>(
        &self,
        op: Operation,
        work: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.deadline, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(StoreError::Query { op, source }),
            Err(_elapsed) => Err(StoreError::Timeout {
                op,
                after: self.deadline,
            }),
        }
    }
}

/// The backend a URL names, from its scheme alone.
fn backend_of(url: &str) -> Result<Backend, StoreError> {
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        _ => Err(StoreError::UnsupportedScheme {
            // At most the scheme, and short: the rest of the URL may hold a password.
            scheme: scheme.chars().take(32).collect(),
        }),
    }
}

/// Whether a `sqlite:` URL names an in-memory database (`sqlite::memory:` or `mode=memory`).
fn sqlite_is_memory(url: &str) -> bool {
    let rest = url.get("sqlite:".len()..).unwrap_or("");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

async fn open_sqlite(url: &str, options: &StoreOptions) -> Result<SqlitePool, StoreError> {
    let backend = Backend::Sqlite;
    let connect = SqliteConnectOptions::from_str(url)
        .map_err(|source| StoreError::InvalidUrl { backend, source })?
        .busy_timeout(options.query_timeout)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new().acquire_timeout(options.acquire_timeout);
    let (connect, pool) = if sqlite_is_memory(url) {
        // The database lives as long as one connection to it does: keep exactly one open,
        // forever, so that it is neither dropped when idle nor split between connections.
        let pool = pool
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        (connect, pool)
    } else {
        // Durability: an acknowledged write must survive a crash of the process or of the
        // machine. WAL with synchronous=NORMAL survives a process crash but may lose the
        // last commits on power loss or an OS crash, because the WAL is synced only at
        // checkpoints; FULL syncs the WAL at every commit. The resolver writes once per
        // policy fetch, so the cost of one fsync per write is small.
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        (
            connect,
            pool.max_connections(options.max_connections.max(1)),
        )
    };
    pool.connect_with(connect)
        .await
        .map_err(|source| StoreError::Open { backend, source })
}

async fn open_postgres(url: &str, options: &StoreOptions) -> Result<PgPool, StoreError> {
    let backend = Backend::Postgres;
    let timeout_ms = options.query_timeout.as_millis().max(1).to_string();
    let connect = PgConnectOptions::from_str(url)
        .map_err(|source| StoreError::InvalidUrl { backend, source })?
        .application_name("stsward")
        // The server stops a statement (and its lock waits) after this; the client-side
        // deadline in `Store::run` is the backstop when the server stops answering.
        .options([("statement_timeout", timeout_ms.as_str())]);
    PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .map_err(|source| StoreError::Open { backend, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_schemes() {
        let good: &[(&str, Backend)] = &[
            ("sqlite://stsward.db", Backend::Sqlite),
            ("sqlite::memory:", Backend::Sqlite),
            ("SQLite://x.db", Backend::Sqlite),
            ("postgres://u@127.0.0.1:5432/db", Backend::Postgres),
            ("postgresql://u@127.0.0.1/db", Backend::Postgres),
        ];
        for (url, backend) in good {
            assert_eq!(backend_of(url).expect(url), *backend, "{url}");
        }
        let bad: &[(&str, &str)] = &[
            ("mysql://u:secret@h/db", "a backend the store does not have"),
            ("stsward.db", "a bare path is not a URL"),
            ("", "empty"),
        ];
        for (url, why) in bad {
            match backend_of(url) {
                Err(StoreError::UnsupportedScheme { scheme }) => {
                    assert!(!scheme.contains("secret"), "{why}: {scheme}")
                }
                other => panic!("{why}: {url:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn sqlite_memory_urls() {
        let cases: &[(&str, bool)] = &[
            ("sqlite::memory:", true),
            ("sqlite://:memory:", true),
            ("sqlite://x.db?mode=memory", true),
            ("sqlite://x.db", false),
            ("sqlite://x.db?mode=rwc", false),
            ("sqlite:memory.db", false),
        ];
        for (url, memory) in cases {
            assert_eq!(sqlite_is_memory(url), *memory, "{url}");
        }
    }
}
