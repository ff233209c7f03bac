//! Where cached policies survive a restart: the store (SQLite or PostgreSQL, shared by
//! several resolvers) behind [`PolicyPersist`], and [`MemoryPersist`] for tests.
//!
//! The trait has the shape of `stsward_store::Store`'s `resolver_policy_*` methods, and the
//! store implements it below, one method each. Errors are strings wrapped in
//! [`PersistError`]: the engine only logs them (a store that is down must not stop answers
//! from memory).

use std::collections::HashMap;
use std::sync::Mutex;

use thiserror::Error;

use crate::policy::CachedPolicy;
use crate::source::BoxFut;

/// A persistence failure (logged; the memory cache keeps answering).
#[derive(Debug, Clone, Error)]
#[error("policy store: {0}")]
pub struct PersistError(pub String);

/// Persisted policies, by Policy Domain.
pub trait PolicyPersist: Send + Sync {
    /// The row of `domain`.
    fn resolver_policy_get<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFut<'a, Result<Option<CachedPolicy>, PersistError>>;
    /// Inserts or replaces the row of `p.domain`.
    fn resolver_policy_put<'a>(
        &'a self,
        p: &'a CachedPolicy,
    ) -> BoxFut<'a, Result<(), PersistError>>;
    /// Records that the TXT id was seen unchanged at `txt_checked_at`.
    fn resolver_policy_touch<'a>(
        &'a self,
        domain: &'a str,
        txt_checked_at: i64,
    ) -> BoxFut<'a, Result<(), PersistError>>;
    /// Deletes the row; whether there was one.
    fn resolver_policy_delete<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFut<'a, Result<bool, PersistError>>;
    /// Up to `limit` rows not expired at `now` (the warm start).
    fn resolver_policy_load(
        &self,
        now: i64,
        limit: usize,
    ) -> BoxFut<'_, Result<Vec<CachedPolicy>, PersistError>>;
    /// Deletes rows expired at `now`; how many.
    fn resolver_policy_purge_expired(&self, now: i64) -> BoxFut<'_, Result<u64, PersistError>>;
}

/// Persistence in a `HashMap` (tests, and `resolve serve` without a store).
#[derive(Debug, Default)]
pub struct MemoryPersist {
    rows: Mutex<HashMap<String, CachedPolicy>>,
}

impl MemoryPersist {
    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedPolicy>> {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many rows are kept.
    pub fn len(&self) -> usize {
        self.rows().len()
    }

    /// Whether no row is kept.
    pub fn is_empty(&self) -> bool {
        self.rows().is_empty()
    }
}

impl PolicyPersist for MemoryPersist {
    fn resolver_policy_get<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFut<'a, Result<Option<CachedPolicy>, PersistError>> {
        let row = self.rows().get(domain).cloned();
        Box::pin(async move { Ok(row) })
    }

    fn resolver_policy_put<'a>(
        &'a self,
        p: &'a CachedPolicy,
    ) -> BoxFut<'a, Result<(), PersistError>> {
        self.rows().insert(p.domain.clone(), p.clone());
        Box::pin(async { Ok(()) })
    }

    fn resolver_policy_touch<'a>(
        &'a self,
        domain: &'a str,
        txt_checked_at: i64,
    ) -> BoxFut<'a, Result<(), PersistError>> {
        if let Some(row) = self.rows().get_mut(domain) {
            row.txt_checked_at = txt_checked_at;
        }
        Box::pin(async { Ok(()) })
    }

    fn resolver_policy_delete<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFut<'a, Result<bool, PersistError>> {
        let had = self.rows().remove(domain).is_some();
        Box::pin(async move { Ok(had) })
    }

    fn resolver_policy_load(
        &self,
        now: i64,
        limit: usize,
    ) -> BoxFut<'_, Result<Vec<CachedPolicy>, PersistError>> {
        let rows: Vec<CachedPolicy> = self
            .rows()
            .values()
            .filter(|r| r.expires_at > now)
            .take(limit)
            .cloned()
            .collect();
        Box::pin(async move { Ok(rows) })
    }

    fn resolver_policy_purge_expired(&self, now: i64) -> BoxFut<'_, Result<u64, PersistError>> {
        let mut rows = self.rows();
        let before = rows.len();
        rows.retain(|_, r| r.expires_at > now);
        let n = u64::try_from(before - rows.len()).unwrap_or(u64::MAX);
        Box::pin(async move { Ok(n) })
    }
}

/// No persistence: `resolve serve` without a store. The memory cache (bounded by
/// `max_domains`) is then the only copy; a second, unbounded copy here would grow for as long
/// as the daemon runs and double the memory per domain.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPersist;

impl PolicyPersist for NoPersist {
    fn resolver_policy_get<'a>(
        &'a self,
        _domain: &'a str,
    ) -> BoxFut<'a, Result<Option<CachedPolicy>, PersistError>> {
        Box::pin(async { Ok(None) })
    }

    fn resolver_policy_put<'a>(
        &'a self,
        _p: &'a CachedPolicy,
    ) -> BoxFut<'a, Result<(), PersistError>> {
        Box::pin(async { Ok(()) })
    }

    fn resolver_policy_touch<'a>(
        &'a self,
        _domain: &'a str,
        _txt_checked_at: i64,
    ) -> BoxFut<'a, Result<(), PersistError>> {
        Box::pin(async { Ok(()) })
    }

    fn resolver_policy_delete<'a>(
        &'a self,
        _domain: &'a str,
    ) -> BoxFut<'a, Result<bool, PersistError>> {
        Box::pin(async { Ok(false) })
    }

    fn resolver_policy_load(
        &self,
        _now: i64,
        _limit: usize,
    ) -> BoxFut<'_, Result<Vec<CachedPolicy>, PersistError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn resolver_policy_purge_expired(&self, _now: i64) -> BoxFut<'_, Result<u64, PersistError>> {
        Box::pin(async { Ok(0) })
    }
}

fn store_error(e: stsward_store::StoreError) -> PersistError {
    PersistError(e.to_string())
}

/// The store (SQLite or PostgreSQL) as the resolver's persistence. Inherent methods of
/// `Store` have the same names; the calls below are to those.
impl PolicyPersist for stsward_store::Store {
    fn resolver_policy_get<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFut<'a, Result<Option<CachedPolicy>, PersistError>> {
        Box::pin(async move {
            let row = stsward_store::Store::resolver_policy_get(self, domain)
                .await
                .map_err(store_error)?;
            Ok(row)
        })
    }

    fn resolver_policy_put<'a>(
        &'a self,
        p: &'a CachedPolicy,
    ) -> BoxFut<'a, Result<(), PersistError>> {
        Box::pin(async move {
            stsward_store::Store::resolver_policy_put(self, p)
                .await
                .map_err(store_error)
        })
    }

    fn resolver_policy_touch<'a>(
        &'a self,
        domain: &'a str,
        txt_checked_at: i64,
    ) -> BoxFut<'a, Result<(), PersistError>> {
        Box::pin(async move {
            stsward_store::Store::resolver_policy_touch(self, domain, txt_checked_at)
                .await
                .map_err(store_error)
        })
    }

    fn resolver_policy_delete<'a>(
        &'a self,
        domain: &'a str,
    ) -> BoxFut<'a, Result<bool, PersistError>> {
        Box::pin(async move {
            stsward_store::Store::resolver_policy_delete(self, domain)
                .await
                .map_err(store_error)
        })
    }

    fn resolver_policy_load(
        &self,
        now: i64,
        limit: usize,
    ) -> BoxFut<'_, Result<Vec<CachedPolicy>, PersistError>> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        Box::pin(async move {
            stsward_store::Store::resolver_policy_load(self, now, limit)
                .await
                .map_err(store_error)
        })
    }

    fn resolver_policy_purge_expired(&self, now: i64) -> BoxFut<'_, Result<u64, PersistError>> {
        Box::pin(async move {
            stsward_store::Store::resolver_policy_purge_expired(self, now)
                .await
                .map_err(store_error)
        })
    }
}
