//! The alert engine of one replica: the rounds of scheduled checks, rule evaluations and
//! sends, each claimed through the store so that replicas share the work without doing it
//! twice. Time comes from the runtime's [`Clock`]; every round takes `now`, so tests drive
//! rounds by moving the clock.

use std::sync::Arc;

use futures::StreamExt;
use stsward_store::{DeliveryClaim, DueRound, RoundKind, Store, StoreError};
use tokio::sync::watch;

use super::{AlertSettings, Destination, evidence, rules, send};
use crate::checks::CheckRunner;
use crate::scheduler::{next_due, tick_or_stop, ticker};
use crate::serve::Clock;

/// How often new domains get their rounds, in seconds of the clock.
pub const SEED_EVERY: i64 = 30;
/// Seconds a claimed send stays this replica's before another may take it over: longer
/// than any send may take (the SMTP and webhook deadlines are shorter).
pub const SEND_CLAIM: i64 = 600;

/// What the engine works with.
#[derive(Clone, Debug)]
pub struct AlertSetup {
    /// The store.
    pub store: Store,
    /// The checks runner, shared with the API; `None`: no scheduled checks.
    pub runner: Option<Arc<CheckRunner>>,
    /// The runtime's clock.
    pub clock: Clock,
    /// This replica's name (recorded as the claimer).
    pub holder: String,
    /// Where alerts go, by stored name.
    pub destinations: Arc<Vec<(String, Destination)>>,
}

/// What a round did, for the log and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Domains checked, or evaluated.
    pub domains: usize,
    /// Alerts opened.
    pub opened: usize,
    /// Alerts resolved.
    pub resolved: usize,
    /// Sends made.
    pub sent: usize,
    /// Sends that failed (to be retried, or kept as failed).
    pub failed: usize,
    /// Sends held back by a destination's rate limit.
    pub rate_limited: usize,
}

/// The engine; cheap to clone.
#[derive(Clone, Debug)]
pub struct AlertEngine {
    setup: AlertSetup,
    settings: AlertSettings,
}

impl AlertEngine {
    /// An engine with `settings`.
    pub fn new(setup: AlertSetup, settings: AlertSettings) -> AlertEngine {
        AlertEngine { setup, settings }
    }

    /// The destinations' stored names.
    fn destination_names(&self) -> Vec<String> {
        self.setup
            .destinations
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Gives every active domain without them its check and evaluation rounds, each due
    /// within one interval of `now` (spread by row id). Returns how many rows were made.
    pub async fn seed(&self, now: i64) -> Result<u64, StoreError> {
        let store = &self.setup.store;
        let mut made = store
            .alert_rounds_seed(RoundKind::Evaluate, now, self.settings.evaluate_interval)
            .await?;
        if self.settings.check_interval > 0 && self.setup.runner.is_some() {
            made += store
                .alert_rounds_seed(RoundKind::Check, now, self.settings.check_interval)
                .await?;
        }
        Ok(made)
    }

    /// The domains whose `kind` round is due at `now`.
    async fn due(&self, kind: RoundKind, now: i64) -> Result<Vec<DueRound>, StoreError> {
        self.setup
            .store
            .alert_rounds_due(kind, now, self.settings.batch)
            .await
    }

    /// One round of scheduled checks at `now`: each due domain this replica claims is
    /// checked by the runner (a place in its limits first; none free: the rest wait for the
    /// next tick) and the run is stored.
    pub async fn check_round(&self, now: i64) -> Result<RoundReport, StoreError> {
        let interval = self.settings.check_interval;
        let Some(runner) = self.setup.runner.as_ref().filter(|_| interval > 0) else {
            return Ok(RoundReport::default());
        };
        let store = &self.setup.store;
        let mut claimed = Vec::new();
        for d in self.due(RoundKind::Check, now).await? {
            let Ok(slot) = runner.try_start(d.tenant) else {
                continue;
            };
            let next = next_due(now, interval, d.domain_id);
            if store
                .alert_round_claim(RoundKind::Check, &d, &self.setup.holder, next)
                .await?
            {
                claimed.push((slot, d));
            }
        }
        let mut report = RoundReport {
            domains: claimed.len(),
            ..RoundReport::default()
        };
        let mut runs = futures::stream::iter(claimed)
            .map(|(slot, d)| async move {
                let done = runner.run(slot, store, d.tenant, &d.domain).await;
                (d, done)
            })
            .buffer_unordered(self.settings.batch.max(1) as usize);
        while let Some((d, done)) = runs.next().await {
            if let Err(e) = done {
                report.failed += 1;
                tracing::warn!(domain = %d.domain, error = %e, "alerts: a scheduled check was not stored");
            }
        }
        Ok(report)
    }

    /// One round of rule evaluations at `now`: each due domain this replica claims has its
    /// evidence judged and its open alerts made exactly the causes found.
    pub async fn evaluate_round(&self, now: i64) -> Result<RoundReport, StoreError> {
        let interval = self.settings.evaluate_interval;
        let mut report = RoundReport::default();
        for d in self.due(RoundKind::Evaluate, now).await? {
            let next = next_due(now, interval, d.domain_id);
            if !self
                .setup
                .store
                .alert_round_claim(RoundKind::Evaluate, &d, &self.setup.holder, next)
                .await?
            {
                continue;
            }
            match self.evaluate(&d, now).await {
                Ok((opened, resolved)) => {
                    report.domains += 1;
                    report.opened += opened;
                    report.resolved += resolved;
                }
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(domain = %d.domain, error = %e, "alerts: evaluation failed");
                }
            }
        }
        Ok(report)
    }

    /// Evaluates one domain now; returns the alerts opened and resolved.
    pub async fn evaluate(&self, d: &DueRound, now: i64) -> Result<(usize, usize), StoreError> {
        let store = &self.setup.store;
        let found = evidence::gather(store, d.tenant, &d.domain, now).await?;
        let open = rules::evaluate(&found, &self.settings.thresholds);
        let synced = store
            .alerts_sync(
                d.domain_id,
                rules::RULES,
                &open,
                &self.destination_names(),
                now,
            )
            .await?;
        for (id, rule, key) in &synced.opened {
            tracing::info!(domain = %d.domain, alert = id, rule, key, "alert opened");
        }
        for (id, rule, key) in &synced.resolved {
            tracing::info!(domain = %d.domain, alert = id, rule, key, "alert resolved");
        }
        Ok((synced.opened.len(), synced.resolved.len()))
    }

    /// One round of sends at `now`: each due send this replica claims (within its
    /// destination's budget) is made and recorded; a failure is retried later, or kept as
    /// failed after the last attempt.
    pub async fn deliver_round(&self, now: i64) -> Result<RoundReport, StoreError> {
        let store = &self.setup.store;
        let holder = &self.setup.holder;
        let mut report = RoundReport::default();
        for d in store.alert_deliveries_due(now, self.settings.batch).await? {
            let claim = store
                .alert_delivery_claim(
                    d.id,
                    &d.destination,
                    holder,
                    now,
                    now.saturating_add(SEND_CLAIM),
                    self.settings.budget,
                )
                .await?;
            match claim {
                DeliveryClaim::Claimed => {}
                DeliveryClaim::Taken => continue,
                DeliveryClaim::RateLimited => {
                    report.rate_limited += 1;
                    continue;
                }
            }
            let to = self
                .setup
                .destinations
                .iter()
                .find(|(name, _)| *name == d.destination);
            let sent = match to {
                Some((_, to)) => send(to, &d).await,
                None => Err(format!(
                    "destination {:?} is no longer configured",
                    d.destination
                )),
            };
            match sent {
                Ok(()) => {
                    store.alert_delivery_done(d.id, holder, now).await?;
                    report.sent += 1;
                }
                Err(error) => {
                    report.failed += 1;
                    let attempts = d.attempts + 1;
                    let retry = if to.is_some() {
                        self.settings.retry_at(attempts, now)
                    } else {
                        None
                    };
                    match retry {
                        Some(at) => tracing::warn!(
                            destination = %d.destination, alert = d.alert.id, attempts, retry_at = at,
                            %error, "alerts: send failed, will retry"
                        ),
                        None => tracing::error!(
                            destination = %d.destination, alert = d.alert.id, attempts,
                            %error, "alerts: send failed for good; kept as failed in the store"
                        ),
                    }
                    store
                        .alert_delivery_failed(d.id, holder, &error, retry)
                        .await?;
                }
            }
        }
        Ok(report)
    }

    /// Runs until `stop` turns true: every tick, a check round, an evaluation round and a
    /// send round, each at the clock's time; new domains get their rounds every
    /// [`SEED_EVERY`] seconds.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        if !self.settings.enabled {
            return;
        }
        let mut tick = ticker(self.settings.tick);
        let mut next_seed = i64::MIN;
        while tick_or_stop(&mut tick, &mut stop).await {
            let now = self.setup.clock.now();
            if now >= next_seed {
                if let Err(e) = self.seed(now).await {
                    tracing::warn!(error = %e, "alerts: seeding rounds failed");
                }
                next_seed = now.saturating_add(SEED_EVERY);
            }
            // Checks run in their own task, beside this tick's evaluations and sends; the next
            // tick waits for them (a check ends within its deadline).
            let checks = self.clone();
            let checking = tokio::spawn(async move { checks.check_round(now).await });
            let stop_checks = checking.abort_handle();
            let work = async {
                if let Err(e) = self.evaluate_round(now).await {
                    tracing::warn!(error = %e, "alerts: evaluation round failed");
                }
                if let Err(e) = self.deliver_round(now).await {
                    tracing::warn!(error = %e, "alerts: send round failed");
                }
                match checking.await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "alerts: check round failed"),
                    Err(e) => tracing::warn!(error = %e, "alerts: check round ended abnormally"),
                    Ok(Ok(_)) => {}
                }
            };
            tokio::select! {
                _ = stop.wait_for(|s| *s) => {
                    // A check in flight is dropped; its round comes again next interval.
                    stop_checks.abort();
                    return;
                }
                () = work => {}
            }
        }
    }
}
