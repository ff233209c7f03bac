//! The scheduler role of `stsward serve`: the work that runs on a clock rather than on a
//! request.
//!
//! - **MX follow** ([`mx`]; RFC 8461 §3.2 `mx` lines, §4.1 MX host validation): for each
//!   domain that opted in, look up its MX records once per round and, when the hosts differ
//!   from the policy's `mx` lines, make a new version through the same service code as
//!   `domain sync-mx` ([`DomainService::follow_mx`]), recorded as changed by `scheduler`. A
//!   change that drops a pattern from an `enforce` policy is logged and kept as a warning for
//!   `domain show`: of `max_age`, RFC 8461 §3.2 says "Well-behaved clients SHOULD cache a
//!   policy for up to this value from the last policy fetch time", so senders may hold the
//!   old `mx` list that long (and §8.1: a policy "will continue to be used by senders
//!   until both the HTTPS and TXT endpoints are updated and the TXT record's TTL has
//!   passed"). A failed lookup or an empty answer never rewrites the policy; it is recorded
//!   for `show`.
//! - **Own TXT watch** ([`txt`]; RFC 8461 §3.1): for domains whose owner keeps its own
//!   `_mta-sts` TXT, look it up and flag an `id` that is not the served policy's; the flag and
//!   the time it was first seen are stored, and cleared once the TXT is fixed.
//! - **Fetch counts** ([`fetches`]; RFC 8461 §3.3 fetches): the policy host counts fetches in
//!   memory ([`FetchCounter`]); every `fetch_flush_interval` they are added to the store per
//!   domain, UTC day and network (additive, so replicas' flushes sum), and once more at stop.
//!
//! ```text
//! every tick_ms:   seed (every SEED_EVERY): a round row for every newly following domain,
//!                    due within one check_interval (spread by row id: no thundering herd)
//!                  list ≤ batch due rounds; claim each (due_at moves to next_due: one
//!                    replica per domain per round); check the claimed ones, ≤ concurrency at once,
//!                    each under ROUND_DEADLINE
//! every flush:     drain the FetchCounter, add to the store; a failed write is kept (bounded)
//!                    and retried at the next flush
//! ```
//!
//! Time comes from the runtime's [`Clock`]; [`Scheduler::round`] and
//! [`Scheduler::flush_fetches`] take `now`, so tests drive rounds without waiting.

pub mod fetches;
pub mod mx;
pub mod txt;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use stsward_net::dns::Dns;
use stsward_store::{DueDomain, Store, StoreError};
use tokio::sync::watch;

use crate::config::SchedulerSection;
use crate::domains::DomainService;
use crate::host::FetchCounter;
use crate::serve::Clock;
pub use fetches::FlushReport;
use fetches::Pending;

/// How often newly following domains get their round rows (epoch seconds of the clock).
pub const SEED_EVERY: i64 = 30;
/// The longest one domain's checks may take, all lookups and writes included.
pub const ROUND_DEADLINE: Duration = Duration::from_secs(60);
/// How often old fetch counts are pruned.
const PRUNE_EVERY: i64 = 86_400;

/// The scheduler's settings, from `[scheduler]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerSettings {
    /// Whether this replica runs rounds (fetch counts are flushed either way).
    pub enabled: bool,
    /// Seconds between two rounds of one domain.
    pub check_interval: i64,
    /// Domains checked at once.
    pub concurrency: usize,
    /// Rounds claimed per wake-up at most.
    pub batch: u32,
    /// How often the scheduler wakes up.
    pub tick: Duration,
    /// Seconds between two fetch-count flushes.
    pub flush_every: i64,
    /// Days of fetch counts kept.
    pub retention_days: i64,
}

impl SchedulerSettings {
    /// The settings of a validated `[scheduler]` section.
    pub fn from_config(s: &SchedulerSection) -> SchedulerSettings {
        SchedulerSettings {
            enabled: s.enabled,
            check_interval: i64::try_from(s.check_interval).unwrap_or(i64::MAX),
            concurrency: s.concurrency.max(1),
            batch: s.batch.max(1),
            tick: Duration::from_millis(s.tick_ms.max(10)),
            flush_every: i64::try_from(s.fetch_flush_interval).unwrap_or(i64::MAX),
            retention_days: i64::from(s.fetch_retention_days),
        }
    }
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings::from_config(&SchedulerSection::default())
    }
}

/// What one round did, for the log and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Rounds listed as due.
    pub due: usize,
    /// Of which this replica claimed.
    pub claimed: usize,
    /// New policy versions made by following the MX records.
    pub changed: usize,
    /// Checks that could not say anything (lookup or store failures).
    pub failed: usize,
}

/// What the scheduler works with.
#[derive(Clone, Debug)]
pub struct SchedulerSetup {
    /// The store.
    pub store: Store,
    /// The domain service (the same code as `domain sync-mx`).
    pub service: DomainService,
    /// The DNS client (stsward-net: every lookup has a deadline).
    pub dns: Dns,
    /// The policy host's fetch counter.
    pub counter: FetchCounter,
    /// The runtime's clock.
    pub clock: Clock,
    /// This replica's name (recorded as the round's holder).
    pub holder: String,
}

/// The scheduler; cheap to clone (clones share the pending fetch counts).
#[derive(Clone, Debug)]
pub struct Scheduler {
    setup: SchedulerSetup,
    settings: SchedulerSettings,
    pending: Arc<Pending>,
}

impl Scheduler {
    /// A scheduler with `settings`.
    pub fn new(setup: SchedulerSetup, settings: SchedulerSettings) -> Scheduler {
        Scheduler {
            setup,
            settings,
            pending: Arc::new(Pending::default()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &SchedulerSettings {
        &self.settings
    }

    /// Gives newly following domains their round, due within one interval of `now`.
    pub async fn seed(&self, now: i64) -> Result<u64, StoreError> {
        self.setup
            .store
            .domain_checks_seed(now, self.settings.check_interval)
            .await
    }

    /// One round at `now`: lists at most `batch` due domains, claims each (one replica per
    /// domain per round), and checks the claimed ones, at most `concurrency` at once.
    pub async fn round(&self, now: i64) -> Result<RoundReport, StoreError> {
        let store = &self.setup.store;
        let due = store.domain_checks_due(now, self.settings.batch).await?;
        let mut report = RoundReport {
            due: due.len(),
            ..RoundReport::default()
        };
        let next = now.saturating_add(self.settings.check_interval);
        let mut claimed: Vec<DueDomain> = Vec::with_capacity(due.len());
        for d in due {
            if store
                .domain_check_claim(&d, &self.setup.holder, next)
                .await?
            {
                claimed.push(d);
            }
        }
        report.claimed = claimed.len();
        let mut checks = futures::stream::iter(claimed)
            .map(|d| async move {
                match tokio::time::timeout(ROUND_DEADLINE, self.check(&d, now)).await {
                    Ok(done) => done,
                    Err(_) => {
                        tracing::warn!(domain = %d.domain, "scheduled check exceeded its deadline");
                        Checked {
                            changed: false,
                            failed: true,
                        }
                    }
                }
            })
            .buffer_unordered(self.settings.concurrency);
        while let Some(done) = checks.next().await {
            report.changed += usize::from(done.changed);
            report.failed += usize::from(done.failed);
        }
        Ok(report)
    }

    /// One domain's checks: MX follow, then the own TXT (against the id served after it).
    async fn check(&self, d: &DueDomain, now: i64) -> Checked {
        let mut done = Checked::default();
        if d.follow_mx {
            let m = mx::check(&self.setup.service, &self.setup.store, d, now).await;
            done.changed |= m.changed;
            done.failed |= m.failed;
        }
        if d.own_sts_txt {
            done.failed |= txt::check(&self.setup.dns, &self.setup.store, d, now).await;
        }
        done
    }

    /// Adds the fetches counted since the last flush (and any kept from a failed one) to the
    /// store.
    pub async fn flush_fetches(&self) -> Result<FlushReport, StoreError> {
        fetches::flush(&self.setup.counter, &self.pending, &self.setup.store).await
    }

    /// Runs until `stop` turns true: rounds every tick (when enabled), fetch-count flushes
    /// every `flush_every`, pruning once a day. The caller flushes once more after the policy
    /// host has stopped.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let rounds = self.clone().round_loop(stop.clone());
        let flushes = self.flush_loop(stop);
        futures::future::join(rounds, flushes).await;
    }

    async fn round_loop(self, mut stop: watch::Receiver<bool>) {
        if !self.settings.enabled {
            return;
        }
        let mut tick = ticker(self.settings.tick);
        let mut next_seed = i64::MIN;
        loop {
            if !tick_or_stop(&mut tick, &mut stop).await {
                return;
            }
            let now = self.setup.clock.now();
            if now >= next_seed {
                match self.seed(now).await {
                    Ok(n) if n > 0 => tracing::info!(domains = n, "scheduler: new rounds"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "scheduler: seeding rounds failed"),
                }
                next_seed = now.saturating_add(SEED_EVERY);
            }
            // A round in flight when the stop comes is dropped: its claims are lost for this
            // round only, and no policy write is half done (each is one transaction).
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                r = self.round(now) => match r {
                    Ok(r) if r.claimed > 0 => tracing::debug!(?r, "scheduler: round"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "scheduler: round failed"),
                },
            }
        }
    }

    async fn flush_loop(self, mut stop: watch::Receiver<bool>) {
        let mut tick = ticker(self.settings.tick);
        let now = self.setup.clock.now();
        let mut next_flush = now.saturating_add(self.settings.flush_every);
        let mut next_prune = now;
        loop {
            if !tick_or_stop(&mut tick, &mut stop).await {
                return;
            }
            let now = self.setup.clock.now();
            if now >= next_flush {
                if let Err(e) = self.flush_fetches().await {
                    tracing::warn!(error = %e, "scheduler: fetch counts kept for the next flush");
                }
                next_flush = now.saturating_add(self.settings.flush_every);
            }
            if self.settings.enabled && now >= next_prune {
                let before = crate::domains::epoch_day(now) - self.settings.retention_days;
                if let Err(e) = self.setup.store.policy_fetches_prune(before).await {
                    tracing::warn!(error = %e, "scheduler: pruning fetch counts failed");
                }
                next_prune = now.saturating_add(PRUNE_EVERY);
            }
        }
    }
}

/// An interval timer for a loop of rounds: a late tick delays the next ones rather than
/// bunching them up.
pub fn ticker(every: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Waits for the next tick; `false` when `stop` turned true first.
pub async fn tick_or_stop(
    tick: &mut tokio::time::Interval,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        _ = stop.wait_for(|s| *s) => false,
        _ = tick.tick() => true,
    }
}

/// The next round of the domain row `domain_id` after one at `now`: one interval later,
/// plus a per-domain offset of up to a tenth of it, so that domains that bunched up (after
/// an outage, every domain is due at once) drift apart again instead of staying one herd.
pub fn next_due(now: i64, interval: i64, domain_id: i64) -> i64 {
    let spread = (interval / 10).max(1);
    now.saturating_add(interval)
        .saturating_add(domain_id.wrapping_mul(7919).rem_euclid(spread))
}

/// What one domain's checks came to.
#[derive(Debug, Clone, Copy, Default)]
struct Checked {
    changed: bool,
    failed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_rounds_are_an_interval_on_and_spread() {
        let dues: Vec<i64> = (1..=100).map(|id| next_due(1000, 3600, id)).collect();
        assert!(dues.iter().all(|d| (4600..4960).contains(d)), "{dues:?}");
        let distinct: std::collections::BTreeSet<_> = dues.iter().collect();
        assert!(distinct.len() > 50, "bunched domains drift apart");
        assert_eq!(next_due(0, 10, 7), 10, "a tiny interval still moves on");
    }
}
