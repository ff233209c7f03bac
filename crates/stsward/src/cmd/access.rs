//! What `stsward tenant|user|token` share: opening the store named by `--config`/`--store`,
//! finding a tenant by name, printing, and the exit status: 0 done, 1 refused (the message
//! names the field and the reason; nothing changed), 2 could not run.

use std::future::Future;

use anyhow::Context;
use stsward_store::hosting::DEFAULT_TENANT;
use stsward_store::{Store, StoreError, TenantId};

use crate::Outcome;
use crate::cli::AccessCommon;

/// Why a command stopped.
#[derive(Debug)]
pub enum Failure {
    /// The request was refused (exit 1).
    Refused(String),
    /// The command could not run (exit 2).
    CannotRun(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::TooLarge { .. }
            | StoreError::NulCharacter { .. }
            | StoreError::Invalid { .. }
            | StoreError::UserTaken { .. }
            | StoreError::TenantTaken { .. }
            | StoreError::TenantNotFound { .. } => Failure::Refused(e.to_string()),
            other => Failure::CannotRun(chain(&other)),
        }
    }
}

/// The error and its sources, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The clock, read once per command (the libraries take time as an argument).
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Opens the store of `common`, runs `work` on it, closes it, and turns the result into the
/// exit status.
pub fn with_store<F, Fut>(common: &AccessCommon, work: F) -> anyhow::Result<Outcome>
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let mut config = crate::cmd::config::load(common.config.as_deref())?.value;
    if let Some(url) = &common.store {
        config.store.url = url.clone();
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        let store = Store::open(&config.store.url)
            .await
            .context("opening the store (store.url or --store)")?;
        let result = work(store.clone()).await;
        store.close().await;
        Ok(match result {
            Ok(()) => Outcome::Success,
            Err(Failure::Refused(message)) => {
                eprintln!("stsward: {message}");
                Outcome::Problems
            }
            Err(Failure::CannotRun(message)) => {
                eprintln!("stsward: {message}");
                Outcome::CannotRun
            }
        })
    })
}

/// The tenant called `name`; the default tenant is created on first use, as `stsward
/// domain` does.
pub async fn tenant_named(store: &Store, name: &str) -> Result<TenantId, Failure> {
    if name == DEFAULT_TENANT {
        return Ok(store.tenant_default(now()).await?.id);
    }
    match store.tenant_by_name(name).await? {
        Some(t) => Ok(t.id),
        None => Err(Failure::Refused(format!(
            "--tenant: no tenant is called {name:?} ('stsward tenant list' shows them)"
        ))),
    }
}

/// `value` as pretty JSON on standard output.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::CannotRun(format!("cannot write JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// An epoch time as RFC 3339 UTC, or `-`.
pub fn when(at: Option<i64>) -> String {
    at.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into())
}
