//! Checks that a tenant runs over the API (`POST /api/v1/domains/{domain}/checks`, issue 9):
//! `stsward-check` on one hosted domain, with the address filter against server-side
//! request forgery always on (plus the operator's `[checks] allow_ranges`), a deadline, at
//! most N checks per tenant and overall, and each run stored with a bounded history.
//!
//! ```text
//! try_start(tenant)  tenant at max_per_tenant   -> Busy::Tenant   (API: 429)
//!                    all at max_concurrent      -> Busy::Overall  (API: 503)
//!                    else a Slot, freed on drop
//! run(slot, domain)  check within [checks] timeout -> verdict + findings -> check_runs
//! ```
//!
//! The findings are those of `spec/findings.md`, as `stsward check --json` prints them. A
//! refused address is the finding `net.address.refused` (see `stsward_check::gather`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use stsward_check::{CheckConfig, Checker};
use stsward_store::{CheckRun, NewCheckRun, Store, StoreError, TenantId};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ChecksSection, ConfigError};

/// Kept between the check's own budget and the outer deadline, for judging and storing.
const MARGIN: Duration = Duration::from_secs(2);

/// Why a check was not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    /// The tenant runs `limit` checks already.
    #[error("this tenant runs {limit} checks already; try again when one has finished")]
    Tenant {
        /// `[checks] max_per_tenant`.
        limit: usize,
    },
    /// All tenants together run `limit` checks already.
    #[error("{limit} checks are running on this server; try again shortly")]
    Overall {
        /// `[checks] max_concurrent`.
        limit: usize,
    },
}

/// Why the runner could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ChecksStartError {
    /// A key of `[checks]` is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `[checks] ca_file` could not be read or holds no certificate.
    #[error("checks.ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The checker could not be built (e.g. the resolver).
    #[error("checks: {0}")]
    Checker(#[from] stsward_check::CheckError),
}

/// The tenant-requested checks of one server. Shared by every API request.
#[derive(Debug)]
pub struct CheckRunner {
    checker: Arc<Checker>,
    timeout: Duration,
    history: u32,
    per_tenant: usize,
    overall_limit: usize,
    overall: Arc<Semaphore>,
    running: Arc<Mutex<HashMap<TenantId, usize>>>,
}

/// A started check's place in the limits; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    tenant: TenantId,
    running: Arc<Mutex<HashMap<TenantId, usize>>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = running.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.tenant);
            }
        }
    }
}

/// A spawned check, aborted when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// The task's output; `None` when it panicked or was aborted.
    async fn wait(mut self) -> Option<T> {
        (&mut self.0).await.ok()
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one run gave: the stored run, or `None` when the tenant hosts no such domain.
#[derive(Debug)]
pub struct RunOutcome {
    /// The stored run.
    pub run: CheckRun,
    /// Why the check did not run at all, when it did not (`verdict` is then `not-run`).
    pub error: Option<String>,
}

impl CheckRunner {
    /// A runner for `section`: the filter on, its `allow_ranges` allowed. Must be called in a
    /// tokio runtime (the DNS client needs one).
    pub fn new(section: &ChecksSection) -> Result<CheckRunner, ChecksStartError> {
        let extra_roots = match &section.ca_file {
            None => Vec::new(),
            Some(path) => {
                let shown = path.display().to_string();
                let pem = std::fs::read(path).map_err(|e| ChecksStartError::CaFile {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
                CheckConfig::roots_from_pem(&pem).map_err(|e| ChecksStartError::CaFile {
                    path: shown,
                    reason: e.to_string(),
                })?
            }
        };
        let timeout = Duration::from_secs(section.timeout.max(1));
        let cfg = CheckConfig {
            resolver: section.resolver,
            extra_roots,
            smtp_port: section.smtp_port,
            https_port: section.https_port,
            budget: timeout,
            // Bounded per destination and overall by max_concurrent already; the legacy
            // TLS probe doubles the connections per MX address for an info finding.
            probe_legacy_tls: false,
            concurrency: section.max_concurrent.max(1) * 4,
            address_filter: Some(section.allowed()?),
            // "Check now" after a fix must see the fix, not another check's probe.
            probe_cache: false,
            ..CheckConfig::default()
        };
        Ok(CheckRunner {
            checker: Arc::new(Checker::new(cfg)?),
            timeout,
            history: section.history.max(1),
            per_tenant: section.max_per_tenant.max(1),
            overall_limit: section.max_concurrent.max(1),
            overall: Arc::new(Semaphore::new(section.max_concurrent.max(1))),
            running: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// How long one check may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Takes a place for one check of `tenant`, or says which limit is reached.
    pub fn try_start(&self, tenant: TenantId) -> Result<Slot, Busy> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = running.get(&tenant).copied().unwrap_or(0);
        if mine >= self.per_tenant {
            return Err(Busy::Tenant {
                limit: self.per_tenant,
            });
        }
        let permit = self
            .overall
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Overall {
                limit: self.overall_limit,
            })?;
        running.insert(tenant, mine + 1);
        Ok(Slot {
            tenant,
            running: self.running.clone(),
            _permit: permit,
        })
    }

    /// Checks `domain` (the caller made sure `tenant` hosts it) within the deadline, and
    /// stores the run. `None` when the domain is not the tenant's by the time it is stored.
    pub async fn run(
        &self,
        slot: Slot,
        store: &Store,
        tenant: TenantId,
        domain: &str,
    ) -> Result<Option<RunOutcome>, StoreError> {
        let started = OffsetDateTime::now_utc();
        // A task of its own: the check's future is large, and a request's stack is not the
        // place for it. Aborted if the request is dropped (its timeout), freeing the slot.
        let checker = self.checker.clone();
        let name = domain.to_owned();
        let task = AbortOnDrop(tokio::spawn(async move {
            let _slot = slot;
            Box::pin(checker.check_domain(&name, started)).await
        }));
        let checked = match tokio::time::timeout(self.timeout + MARGIN, task.wait()).await {
            Ok(Some(result)) => Ok(result),
            Ok(None) | Err(_) => Err(()),
        };
        let finished = OffsetDateTime::now_utc();
        let (verdict, findings, error) = match checked {
            Ok(Ok(report)) => (
                report.verdict.as_str().to_owned(),
                serde_json::to_string(&report.findings).unwrap_or_else(|_| "[]".to_owned()),
                None,
            ),
            Ok(Err(not_run)) => (
                "not-run".to_owned(),
                "[]".to_owned(),
                Some(not_run.to_string()),
            ),
            Err(_) => (
                "not-run".to_owned(),
                "[]".to_owned(),
                Some(format!(
                    "the check took longer than {:?}",
                    self.timeout + MARGIN
                )),
            ),
        };
        let run = NewCheckRun {
            started_at: started.unix_timestamp(),
            finished_at: finished.unix_timestamp().max(started.unix_timestamp()),
            verdict,
            findings,
        };
        let stored = store
            .check_run_add(tenant, domain, &run, self.history)
            .await?;
        Ok(stored.map(|run| RunOutcome { run, error }))
    }

    /// The last `limit` runs of `tenant`'s `domain`, newest first.
    pub async fn list(
        &self,
        store: &Store,
        tenant: TenantId,
        domain: &str,
        limit: u32,
    ) -> Result<Vec<CheckRun>, StoreError> {
        store
            .check_run_list(tenant, domain, limit.min(self.history))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(per_tenant: usize, overall: usize) -> CheckRunner {
        CheckRunner::new(&ChecksSection {
            // Never asked here: no check runs in these tests.
            resolver: Some("127.0.0.1:9".parse().expect("addr")),
            max_per_tenant: per_tenant,
            max_concurrent: overall,
            ..ChecksSection::default()
        })
        .expect("runner")
    }

    #[tokio::test]
    async fn a_tenant_gets_at_most_its_share_and_a_dropped_slot_frees_it() {
        let r = runner(2, 10);
        let (a, b) = (TenantId(1), TenantId(2));
        let a1 = r.try_start(a).expect("first");
        let _a2 = r.try_start(a).expect("second");
        assert_eq!(r.try_start(a).err(), Some(Busy::Tenant { limit: 2 }));
        // Another tenant is not held back by a's checks.
        let _b1 = r.try_start(b).expect("b");
        drop(a1);
        assert!(r.try_start(a).is_ok(), "a finished check frees its place");
    }

    #[tokio::test]
    async fn all_tenants_together_get_at_most_the_overall_limit() {
        let r = runner(2, 3);
        let held: Vec<Slot> = (1..=3)
            .map(|t| r.try_start(TenantId(t)).expect("under the limit"))
            .collect();
        assert_eq!(
            r.try_start(TenantId(4)).err(),
            Some(Busy::Overall { limit: 3 })
        );
        // A refusal by the overall limit does not count against the tenant.
        drop(held);
        let _x = r.try_start(TenantId(4)).expect("freed");
        let _y = r.try_start(TenantId(4)).expect("its second");
        assert_eq!(
            r.try_start(TenantId(4)).err(),
            Some(Busy::Tenant { limit: 2 })
        );
    }

    #[tokio::test]
    async fn a_bad_allowed_range_is_named() {
        let err = CheckRunner::new(&ChecksSection {
            allow_ranges: vec!["10.0.0.1/8".into()],
            ..ChecksSection::default()
        })
        .expect_err("host bits set");
        assert!(err.to_string().contains("checks.allow_ranges"), "{err}");
    }
}
