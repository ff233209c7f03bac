//! The engine the socketmap listener calls: lookups from memory, resolutions in the
//! background, one per destination at a time, a bounded number in total.
//!
//! ```text
//! lookup(key) ─ normalise ─┬─ live entry in memory ──────────────► answer (no DNS, no I/O)
//!                          │        └─ re-check due? ─► background resolution (not awaited)
//!                          └─ miss ─► resolution (single-flight) ─ wait ≤ deadline ─► answer
//!                                                                    └─ deadline ─► TEMP
//! resolution: store row? ─► _mta-sts TXT ─┬─ same id, not near expiry ─► touch
//!                                         ├─ new id / near expiry ─► fetch ─┬─ ok ─► new policy
//!                                         │                                 └─ fail ─► keep cached
//!                                         ├─ no record ─► keep cached, else "no policy"
//!                                         └─ DNS error ─► keep cached, else "failed"
//!             ─► DANE observation (RFC 8461 §2) ─► cache (+ store)
//! ```
//!
//! RFC 8461 §5.1 step 1: "Check for a cached policy whose time-since-fetch has not exceeded
//! its "max_age". If none exists, attempt to fetch a new policy (perhaps asynchronously, so as
//! not to block message delivery). Optionally, Sending MTAs may unconditionally check for a
//! new policy at this step." The unconditional check happens here in the background, every
//! `txt_recheck_secs`, so Postfix never waits for DNS on a warm cache.
//!
//! Time comes from the [`Clock`] the caller passes; tests move it by hand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use stsward_proto::Failure;
use stsward_proto::mta_sts::{Mode, Policy};
use tokio::sync::{Semaphore, watch};

use crate::answer::{Answer, Situation, failure_word, render};
use crate::cache::{Cache, Entry, RefreshFailure, State};
use crate::config::EngineSettings;
use crate::dane::{DaneObservation, DaneSummary, DaneVerdict};
use crate::key::{Destination, normalize_key};
use crate::metrics::{Metrics, Snapshot, render_prometheus};
use crate::persist::{PersistError, PolicyPersist};
use crate::policy::{ActivePolicy, CachedPolicy};
use crate::source::{Discovery, Source};

/// The time provider: epoch seconds now.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock (only the binary and real deployments use it).
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    })
}

/// The resolver engine. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RwLock<EngineSettings>,
    source: RwLock<Arc<dyn Source>>,
    persist: Arc<dyn PolicyPersist>,
    cache: Cache,
    inflight: Mutex<HashMap<String, watch::Receiver<bool>>>,
    permits: RwLock<Arc<Semaphore>>,
    metrics: Metrics,
    clock: Clock,
}

/// What `stsward resolve test` prints: the answer and how it was reached.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    /// The key as given.
    pub key: String,
    /// The destination it names, when it names one.
    pub destination: Option<String>,
    /// What Postfix would be told.
    pub answer: Answer,
    /// The socketmap reply.
    pub wire: String,
    /// Each step of the resolution, in words.
    pub steps: Vec<String>,
    /// The DANE observation.
    pub dane: DaneObservation,
    /// The policy fetched, when one was.
    pub policy: Option<CachedPolicy>,
}

/// What `stsward resolve show` prints for one cached destination.
#[derive(Debug, Clone, Serialize)]
pub struct ShownEntry {
    /// The cache key (`example.com`, `[relay.example]:587`, …).
    pub key: String,
    /// `policy`, `no-policy` or `failed`.
    pub state: &'static str,
    /// The TXT id of the policy.
    pub sts_id: Option<String>,
    /// The policy mode.
    pub mode: Option<String>,
    /// Fetch and expiry times (epoch seconds).
    pub fetched_at: Option<i64>,
    /// When the policy expires, or the negative entry times out.
    pub expires_at: i64,
    /// When the TXT id was last seen.
    pub txt_checked_at: i64,
    /// When the background looks again.
    pub next_refresh_at: i64,
    /// The last failed refresh.
    pub refresh_failure: Option<String>,
    /// The DANE summary.
    pub dane: DaneSummary,
    /// What a lookup answers now.
    pub answer: Answer,
}

/// `stsward resolve show DOMAIN`.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    /// The Policy Domain.
    pub domain: String,
    /// Entries in memory for it (every key form).
    pub memory: Vec<ShownEntry>,
    /// The persisted row.
    pub stored: Option<CachedPolicy>,
}

/// What one resolution produced.
struct Outcome {
    entry: Entry,
    steps: Vec<String>,
    put: Option<CachedPolicy>,
    touch: bool,
    dane: DaneObservation,
}

impl Engine {
    /// An engine with an empty memory cache.
    pub fn new(
        settings: EngineSettings,
        source: Arc<dyn Source>,
        persist: Arc<dyn PolicyPersist>,
        clock: Clock,
    ) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                cache: Cache::new(settings.max_domains),
                permits: RwLock::new(Arc::new(Semaphore::new(settings.max_concurrent.max(1)))),
                settings: RwLock::new(settings),
                source: RwLock::new(source),
                persist,
                inflight: Mutex::new(HashMap::new()),
                metrics: Metrics::default(),
                clock,
            }),
        }
    }

    fn settings(&self) -> EngineSettings {
        *self
            .inner
            .settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn source(&self) -> Arc<dyn Source> {
        self.inner
            .source
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn now(&self) -> i64 {
        (self.inner.clock)()
    }

    /// Loads the persisted, unexpired policies into memory (a warm start). Their DANE state
    /// is unknown until the first lookup re-checks it.
    pub async fn warm(&self) -> Result<usize, PersistError> {
        let now = self.now();
        let s = self.settings();
        let rows = self
            .inner
            .persist
            .resolver_policy_load(now, s.max_domains)
            .await?;
        let mut n = 0;
        for row in rows {
            let Some(active) = ActivePolicy::from_cached(&row) else {
                continue;
            };
            let next_refresh_at = next_refresh(&active, row.txt_checked_at, &s).max(now);
            let entry = Entry {
                state: State::Policy(Arc::new(active)),
                txt_checked_at: row.txt_checked_at,
                dane: DaneSummary::NotChecked,
                refresh_failure: None,
                next_refresh_at,
            };
            self.inner.cache.put(&row.domain, entry, now);
            n += 1;
        }
        Ok(n)
    }

    /// The socketmap lookup: `map_name` is the socketmap name (any name is served), `key`
    /// the next-hop destination. Never waits longer than the configured deadline.
    pub async fn lookup(&self, map_name: &str, key: &str) -> Answer {
        let answer = self.lookup_inner(key).await;
        tracing::debug!(map = map_name, key, answer = %answer.wire(), why = %answer.why, "lookup");
        self.inner.metrics.lookup(answer.label());
        answer
    }

    async fn lookup_inner(&self, key: &str) -> Answer {
        let s = self.settings();
        let dest = match normalize_key(key) {
            Ok(d) => d,
            Err(r) => {
                if matches!(r, crate::key::KeyRejection::ParentDomain(_)) {
                    tracing::debug!(key, reason = %r, "key names no MTA-STS destination");
                } else {
                    tracing::info!(key, reason = %r, "key names no MTA-STS destination");
                }
                return render(Situation::Rejected(&r), &s.answer);
            }
        };
        let ckey = dest.cache_key();
        if let Some(answer) = self.answer_cached(&dest, &ckey, &s) {
            return answer;
        }
        // A miss, or a warm-started policy whose DANE state is not known yet: resolve, and
        // wait at most the deadline.
        self.inner.metrics.cache(false);
        let mut rx = self.spawn_resolve(&ckey, &dest);
        let waited = tokio::time::timeout(s.lookup_deadline, rx.wait_for(|done| *done)).await;
        let now = self.now();
        if waited.is_err() {
            tracing::debug!(key, "lookup deadline passed with the resolution in flight");
        }
        self.inner
            .cache
            .with(&ckey, |entry| {
                entry
                    .is_live(now)
                    .then(|| self.answer_for(&dest.domain, entry, &s))
            })
            .flatten()
            .unwrap_or_else(|| render(Situation::Pending, &s.answer))
    }

    /// The answer from memory alone, when the cache holds a live entry whose DANE state is
    /// known (the hot path: one read lock, no copy of the entry, no task). A policy whose
    /// re-check is due also starts that re-check in the background.
    fn answer_cached(&self, dest: &Destination, ckey: &str, s: &EngineSettings) -> Option<Answer> {
        let now = self.now();
        let (answer, due) = self
            .inner
            .cache
            .with(ckey, |entry| {
                if !entry.is_live(now) {
                    return None;
                }
                let dane_unknown = s.dane_first
                    && entry.dane == DaneSummary::NotChecked
                    && matches!(&entry.state, State::Policy(p) if p.mode != Mode::None);
                if dane_unknown {
                    return None;
                }
                let due = matches!(entry.state, State::Policy(_)) && now >= entry.next_refresh_at;
                Some((self.answer_for(&dest.domain, entry, s), due))
            })
            .flatten()?;
        self.inner.metrics.cache(true);
        if due {
            let _ = self.spawn_resolve(ckey, dest);
        }
        Some(answer)
    }

    /// The socketmap answer for a key found in memory, without waiting: `None` when the
    /// key needs a resolution (a miss, an expired entry, an unknown DANE state) or names no
    /// destination. For the listener's inline path; [`Engine::lookup`] does the rest.
    pub fn lookup_cached(&self, map_name: &str, key: &str) -> Option<Answer> {
        let s = self.settings();
        let dest = normalize_key(key).ok()?;
        let answer = self.answer_cached(&dest, &dest.cache_key(), &s)?;
        tracing::debug!(map = map_name, key, answer = %answer.wire(), why = %answer.why, "lookup");
        self.inner.metrics.lookup(answer.label());
        Some(answer)
    }

    fn answer_for(&self, domain: &str, entry: &Entry, s: &EngineSettings) -> Answer {
        match &entry.state {
            State::Policy(p) => {
                let dane = if s.dane_first {
                    entry.dane.verdict(p.mode, s.dane_level)
                } else {
                    DaneVerdict::NotApplicable
                };
                render(
                    Situation::Policy {
                        domain,
                        policy: p,
                        dane,
                        refresh_failure: entry.refresh_failure.as_deref().map(|r| &r.failure),
                    },
                    &s.answer,
                )
            }
            State::NoPolicy { why, .. } => render(Situation::NoPolicy { why }, &s.answer),
            State::Failed { why, .. } => render(Situation::Failed { why }, &s.answer),
        }
    }

    /// Starts the resolution of `ckey` unless one is in flight; the receiver turns `true`
    /// when the cache has been written.
    fn spawn_resolve(&self, ckey: &str, dest: &Destination) -> watch::Receiver<bool> {
        let mut inflight = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(rx) = inflight.get(ckey) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(false);
        inflight.insert(ckey.to_owned(), rx.clone());
        drop(inflight);
        let me = self.clone();
        let ckey = ckey.to_owned();
        let dest = dest.clone();
        let permits = self
            .inner
            .permits
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        tokio::spawn(async move {
            // A closed semaphore cannot happen (it is never closed); resolve anyway.
            let _permit = permits.acquire_owned().await.ok();
            me.resolve(&ckey, &dest, &tx).await;
            me.inner
                .inflight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&ckey);
            let _ = tx.send(true);
        });
        rx
    }

    /// One resolution of a destination, written to the cache and the store.
    async fn resolve(&self, ckey: &str, dest: &Destination, tx: &watch::Sender<bool>) {
        let s = self.settings();
        let mut now = self.now();
        let mut existing = self.inner.cache.get(ckey).filter(|e| e.is_live(now));
        let fresh_policy = |e: &Option<Entry>| {
            matches!(
                e,
                Some(Entry {
                    state: State::Policy(_),
                    ..
                })
            )
        };
        let source = self.source();
        if !fresh_policy(&existing) {
            match self.inner.persist.resolver_policy_get(&dest.domain).await {
                Ok(Some(row)) if row.expires_at > now => {
                    if let Some(active) = ActivePolicy::from_cached(&row) {
                        // Known to the store (another resolver, or before a restart): serve
                        // it once its DANE state is known, and ask DNS for the id only when
                        // its re-check is due.
                        let dane = if s.dane_first && active.mode != Mode::None {
                            source.dane(dest).await.summary()
                        } else {
                            DaneSummary::NotChecked
                        };
                        let next_refresh_at = next_refresh(&active, row.txt_checked_at, &s);
                        let entry = Entry {
                            state: State::Policy(Arc::new(active)),
                            txt_checked_at: row.txt_checked_at,
                            dane,
                            refresh_failure: None,
                            next_refresh_at,
                        };
                        self.inner.cache.put(ckey, entry.clone(), now);
                        let _ = tx.send(true);
                        if now < next_refresh_at {
                            return;
                        }
                        existing = Some(entry);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(domain = %dest.domain, error = %e, "policy store read failed")
                }
            }
        }
        let out = resolve_once(
            &*source,
            dest,
            existing.as_ref(),
            now,
            &s,
            &self.inner.metrics,
        )
        .await;
        now = self.now();
        if let Some(row) = &out.put
            && let Err(e) = self.inner.persist.resolver_policy_put(row).await
        {
            tracing::warn!(domain = %dest.domain, error = %e, "policy store write failed");
        }
        if out.touch
            && let Err(e) = self
                .inner
                .persist
                .resolver_policy_touch(&dest.domain, out.entry.txt_checked_at)
                .await
        {
            tracing::warn!(domain = %dest.domain, error = %e, "policy store touch failed");
        }
        for step in &out.steps {
            tracing::debug!(destination = %dest, "{step}");
        }
        self.inner.cache.put(ckey, out.entry, now);
        let _ = tx.send(true);
    }

    /// Swaps the knobs (SIGHUP); the cache is kept. A new `source` replaces the network
    /// settings (resolver, CA file, ports).
    pub fn reload(&self, settings: EngineSettings, source: Option<Arc<dyn Source>>) {
        let old = self.settings();
        if old.max_concurrent != settings.max_concurrent {
            *self
                .inner
                .permits
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Arc::new(Semaphore::new(settings.max_concurrent.max(1)));
        }
        self.inner.cache.set_max(settings.max_domains);
        *self
            .inner
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
        if let Some(src) = source {
            *self
                .inner
                .source
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = src;
        }
    }

    /// `stsward resolve show DOMAIN`: what memory and the store hold for the domain.
    pub async fn show(&self, domain: &str) -> Result<Shown, PersistError> {
        let domain = normalize_key(domain)
            .map(|d| d.domain)
            .unwrap_or_else(|_| domain.to_owned());
        let s = self.settings();
        let keys = self.inner.cache.select(|d, _| d == domain);
        let mut memory = Vec::new();
        for (key, _) in keys {
            let Some(e) = self.inner.cache.get(&key) else {
                continue;
            };
            let (state, sts_id, mode, fetched_at, expires_at) = match &e.state {
                State::Policy(p) => (
                    "policy",
                    Some(p.sts_id().to_owned()),
                    Some(p.mode.to_string()),
                    Some(p.fetched_at),
                    p.expires_at,
                ),
                State::NoPolicy { until, .. } => ("no-policy", None, None, None, *until),
                State::Failed { until, .. } => ("failed", None, None, None, *until),
            };
            memory.push(ShownEntry {
                key,
                state,
                sts_id,
                mode,
                fetched_at,
                expires_at,
                txt_checked_at: e.txt_checked_at,
                next_refresh_at: e.next_refresh_at,
                refresh_failure: e.refresh_failure.as_ref().map(|r| failure_word(&r.failure)),
                dane: e.dane,
                answer: self.answer_for(&domain, &e, &s),
            });
        }
        let stored = self.inner.persist.resolver_policy_get(&domain).await?;
        Ok(Shown {
            domain,
            memory,
            stored,
        })
    }

    /// `stsward resolve purge DOMAIN`: forgets the domain in memory and in the store.
    /// Whether anything was there.
    pub async fn purge(&self, domain: &str) -> Result<bool, PersistError> {
        let domain = normalize_key(domain)
            .map(|d| d.domain)
            .unwrap_or_else(|_| domain.to_owned());
        let in_memory = self.inner.cache.remove_domain(&domain) > 0;
        let stored = self.inner.persist.resolver_policy_delete(&domain).await?;
        Ok(in_memory || stored)
    }

    /// `stsward resolve test KEY`: a fresh resolution that bypasses and leaves alone both
    /// caches; the answer Postfix would get, and why.
    pub async fn test(&self, key: &str) -> Explained {
        let s = self.settings();
        let dest = match normalize_key(key) {
            Ok(d) => d,
            Err(r) => {
                let answer = render(Situation::Rejected(&r), &s.answer);
                return Explained {
                    key: key.to_owned(),
                    destination: None,
                    wire: answer.wire(),
                    answer,
                    steps: vec![format!("the key names no MTA-STS destination: {r}")],
                    dane: DaneObservation::NotChecked,
                    policy: None,
                };
            }
        };
        let now = self.now();
        let source = self.source();
        let out = resolve_once(&*source, &dest, None, now, &s, &self.inner.metrics).await;
        let answer = self.answer_for(&dest.domain, &out.entry, &s);
        let mut steps = out.steps;
        steps.push(format!("answer: {}", answer.why));
        Explained {
            key: key.to_owned(),
            destination: Some(dest.to_string()),
            wire: answer.wire(),
            answer,
            steps,
            dane: out.dane,
            policy: out.put,
        }
    }

    /// The periodic sweep (the daemon calls it every minute or so): starts background
    /// re-checks that are due (RFC 8461 §3.3: "MTAs SHOULD proactively refresh cached
    /// policies before they expire") and drops dead entries. Returns how many re-checks
    /// started.
    pub async fn maintain(&self) -> usize {
        let now = self.now();
        self.inner.cache.purge_dead(now);
        let due = self
            .inner
            .cache
            .select(|_, e| matches!(e.state, State::Policy(_)) && now >= e.next_refresh_at);
        for (key, dest) in &due {
            let _ = self.spawn_resolve(key, dest);
        }
        if let Err(e) = self.inner.persist.resolver_policy_purge_expired(now).await {
            tracing::warn!(error = %e, "policy store purge failed");
        }
        due.len()
    }

    /// Runs [`Engine::maintain`] every `every` until the task is aborted (the daemon starts
    /// it once).
    pub fn spawn_maintenance(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let started = me.maintain().await;
                if started > 0 {
                    tracing::debug!(started, "background re-checks started");
                }
            }
        })
    }

    /// Waits until no resolution is in flight (tests, and a clean shutdown).
    pub async fn idle(&self) {
        loop {
            let pending: Vec<watch::Receiver<bool>> = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .values()
                .cloned()
                .collect();
            if pending.is_empty() {
                return;
            }
            for mut rx in pending {
                let _ = rx.wait_for(|d| *d).await;
            }
            tokio::task::yield_now().await;
        }
    }

    /// The counters now.
    pub fn metrics(&self) -> Snapshot {
        self.inner.metrics.snapshot(self.inner.cache.len())
    }

    /// The counters in Prometheus text form.
    pub fn metrics_text(&self) -> String {
        render_prometheus(&self.metrics())
    }

    /// Destinations in memory.
    pub fn cached(&self) -> usize {
        self.inner.cache.len()
    }
}

/// One resolution of `dest` against `source` at `now`, given what is cached: the decisions
/// of the module docs, with no cache or store writes (the caller applies them).
async fn resolve_once(
    source: &dyn Source,
    dest: &Destination,
    existing: Option<&Entry>,
    now: i64,
    s: &EngineSettings,
    metrics: &Metrics,
) -> Outcome {
    let domain = dest.domain.as_str();
    let mut steps = Vec::new();
    let cached: Option<Arc<ActivePolicy>> = existing.and_then(|e| match &e.state {
        State::Policy(p) if p.is_fresh(now) => Some(p.clone()),
        _ => None,
    });
    if let Some(p) = &cached {
        steps.push(format!(
            "cached policy id {} (mode {}), expires at {}",
            p.sts_id(),
            p.mode,
            p.expires_at
        ));
    }
    let mut refresh_failure = existing.and_then(|e| e.refresh_failure.clone());
    let mut txt_checked_at = existing.map(|e| e.txt_checked_at).unwrap_or(now);
    let mut put = None;
    let mut touch = false;

    let discovery = source.discover(domain).await;
    let state: State = match discovery {
        Discovery::Record { id } => {
            steps.push(format!("_mta-sts.{domain}: v=STSv1, id={id}"));
            let same_id = cached.as_ref().filter(|p| p.sts_id() == id.as_str());
            let near_expiry = same_id.is_some_and(|p| {
                let lead = s.refresh_before_secs.min((p.expires_at - p.fetched_at) / 2);
                now >= p.expires_at - lead
            });
            let backing_off = refresh_failure
                .as_ref()
                .is_some_and(|r| *r.id == *id && now < r.at.saturating_add(s.fetch_retry_secs));
            match same_id {
                Some(p) if !near_expiry => {
                    steps.push(
                        "the id is unchanged: the cached policy stays (RFC 8461 §3.1)".into(),
                    );
                    txt_checked_at = now;
                    touch = true;
                    refresh_failure = None;
                    State::Policy(p.clone())
                }
                _ if backing_off => {
                    steps.push(format!(
                        "the last fetch for id {id} failed less than {} s ago: not retried yet (RFC 8461 §3.3)",
                        s.fetch_retry_secs
                    ));
                    match &cached {
                        Some(p) => State::Policy(p.clone()),
                        None => State::Failed {
                            until: now + s.error_ttl_secs,
                            why: "the policy fetch failed recently".into(),
                        },
                    }
                }
                _ => {
                    if cached.is_some() && same_id.is_none() {
                        steps.push(
                            "the id changed: fetching the new policy (RFC 8461 §3.1, §5.1)".into(),
                        );
                    } else if near_expiry {
                        steps.push(
                            "the cached policy is about to expire: refreshing it (RFC 8461 §3.3)"
                                .into(),
                        );
                    }
                    metrics.fetch();
                    let fetched = source.fetch(domain, now).await;
                    let parsed = fetched.and_then(|body| {
                        let text = String::from_utf8_lossy(&body).into_owned();
                        match text.parse::<Policy>() {
                            Ok(p) => Ok((p, text)),
                            Err(e) => Err(crate::source::FetchFailure {
                                failure: Failure::StsPolicyInvalid,
                                detail: e.to_string(),
                            }),
                        }
                    });
                    match parsed {
                        Ok((policy, text)) => {
                            let active = ActivePolicy::new(&policy, &id, now);
                            steps.push(format!(
                                "fetched https://mta-sts.{domain}/.well-known/mta-sts.txt: mode {}, max_age {}, mx {}",
                                active.mode,
                                policy.max_age(),
                                active.patterns().collect::<Vec<_>>().join(", ")
                            ));
                            put = Some(CachedPolicy {
                                domain: domain.to_owned(),
                                sts_id: id.clone(),
                                policy: text,
                                fetched_at: now,
                                expires_at: active.expires_at,
                                txt_checked_at: now,
                            });
                            txt_checked_at = now;
                            refresh_failure = None;
                            State::Policy(Arc::new(active))
                        }
                        Err(f) => {
                            metrics.fetch_failure(f.failure.code().as_str());
                            let word = failure_word(&f.failure);
                            steps.push(format!("policy fetch failed: {word}: {}", f.detail));
                            refresh_failure = Some(Box::new(RefreshFailure {
                                id: id.as_str().into(),
                                at: now,
                                failure: f.failure.clone(),
                            }));
                            match &cached {
                                Some(p) => {
                                    // RFC 8461 §3.3: "MTAs SHOULD alert administrators
                                    // (through the use of logs or similar) when such attempts
                                    // fail, unless the cached policy mode is "none"."
                                    if p.mode != Mode::None {
                                        tracing::warn!(domain, failure = %word, detail = %f.detail, "policy refresh failed; the cached policy stays in force until it expires");
                                    }
                                    steps.push("a valid cached policy exists: it is applied (RFC 8461 §3.3)".into());
                                    State::Policy(p.clone())
                                }
                                None => {
                                    tracing::info!(domain, failure = %word, detail = %f.detail, "policy fetch failed, no cached policy");
                                    State::Failed {
                                        until: now + s.error_ttl_secs,
                                        why: format!("policy fetch failed: {word}").into(),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Discovery::NoRecord { why } => {
            steps.push(why.clone());
            match &cached {
                Some(p) => {
                    steps.push("the absence of a usable TXT record does not remove a cached policy (RFC 8461 §3.1)".into());
                    State::Policy(p.clone())
                }
                None => State::NoPolicy {
                    until: now + s.negative_ttl_secs,
                    why: format!("{why}: no MTA-STS policy").into(),
                },
            }
        }
        Discovery::Error { why } => {
            metrics.fetch_failure(stsward_proto::Code::StsTxtLookup.as_str());
            steps.push(format!("_mta-sts.{domain} lookup failed: {why}"));
            match &cached {
                Some(p) => {
                    steps
                        .push("a valid cached policy exists: it is applied (RFC 8461 §3.3)".into());
                    State::Policy(p.clone())
                }
                None => {
                    tracing::info!(domain, %why, "_mta-sts lookup failed, no cached policy");
                    State::Failed {
                        until: now + s.error_ttl_secs,
                        why: format!("_mta-sts TXT lookup failed: {why}").into(),
                    }
                }
            }
        }
    };

    let wants_dane = s.dane_first && matches!(&state, State::Policy(p) if p.mode != Mode::None);
    let dane = if wants_dane {
        let obs = source.dane(dest).await;
        steps.push(describe_dane(&obs));
        obs
    } else {
        DaneObservation::NotChecked
    };
    let next_refresh_at = match &state {
        State::Policy(p) => next_refresh(p, now, s),
        State::NoPolicy { until, .. } | State::Failed { until, .. } => *until,
    };
    Outcome {
        entry: Entry {
            state,
            txt_checked_at,
            dane: dane.summary(),
            refresh_failure,
            next_refresh_at,
        },
        steps,
        put,
        touch,
        dane,
    }
}

/// When a policy last checked at `checked` is due for its next background look: the TXT
/// re-check, or the proactive refresh (at most half the max_age before expiry), whichever
/// comes first; once inside the refresh window, after the fetch back-off.
fn next_refresh(p: &ActivePolicy, checked: i64, s: &EngineSettings) -> i64 {
    let lead = s.refresh_before_secs.min((p.expires_at - p.fetched_at) / 2);
    let refresh_at = p.expires_at - lead;
    let recheck = checked.saturating_add(s.txt_recheck_secs);
    if refresh_at > checked {
        recheck.min(refresh_at)
    } else {
        recheck.min(checked.saturating_add(s.fetch_retry_secs))
    }
}

fn describe_dane(obs: &DaneObservation) -> String {
    match obs {
        DaneObservation::NotChecked => "DANE: not checked".into(),
        DaneObservation::MxError { reason } => format!("DANE: the MX lookup failed ({reason})"),
        DaneObservation::Hosts { mx_secure, hosts } => {
            let list: Vec<String> = hosts
                .iter()
                .map(|(h, t)| {
                    format!(
                        "{h}: {}",
                        match t {
                            crate::dane::HostTlsa::Secure => "secure TLSA",
                            crate::dane::HostTlsa::None => "no secure TLSA",
                            crate::dane::HostTlsa::Error => "TLSA lookup error",
                        }
                    )
                })
                .collect();
            format!(
                "DANE: MX RRset {}; {}",
                if *mx_secure { "secure" } else { "not secure" },
                if list.is_empty() {
                    "no MX host".to_owned()
                } else {
                    list.join(", ")
                }
            )
        }
    }
}

#[cfg(test)]
mod tests;
