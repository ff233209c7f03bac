//! The certificate manager: every hosted `mta-sts.<domain>` gets, keeps and renews a
//! certificate from the ACME CA, stored sealed and installed into the policy host. RFC 8461
//! §3.3: the Policy Host HTTPS server "MUST present an X.509 certificate that is valid for
//! the "mta-sts" DNS-ID [RFC6125] (e.g., "mta-sts.example.com") as described below, chain to
//! a root CA that is trusted by the Sending MTA, and be non-expired."
//!
//! ```text
//! load_all()       every stored row with a chain, a key that unseals, and not_after > now
//!                  -> Sites; a row that does not unseal or parse is logged and treated as missing
//! run_once(now)    load_changed(last look - margin)        certificates other replicas stored
//!                  for each live hosted domain, name = mta-sts.<domain>:
//!                    skip when a valid certificate is installed and now < renewal time
//!                         (ARI point when the CA gave one, else two thirds of the lifetime)
//!                    skip while backing off after a failure (this replica's, or a recent
//!                         failure another replica stored)
//!                    lease "cert:<name>" (one replica per name)  -> else skip
//!                    re-read the row: another replica may just have stored a fresh one
//!                    pre-flight: name resolves here?  no -> row: pending + last_error, back off
//!                    order budget (per hour, CA's Retry-After) -> else wait for a later run
//!                    order -> seal key -> one row write (chain, sealed key, validity) -> Sites
//!                    release the lease
//! run(shutdown)    run_once every interval, at most `concurrency` names at once
//! ```
//!
//! The ACME account is loaded from the store (unsealed) the first time an order is placed, or
//! created and stored sealed; two replicas creating one at once both use the first stored.
//!
//! RFC 8555 (ACME) and RFC 9773 (ARI) are not in the project's reference texts: where cited
//! they are paraphrased. The RFC 8461 §3.3 quote above is from the project's reference text.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use stsward_net::dns::Dns;
use stsward_store::{AcmeAccount, CertState, Store, StoreError, StoredCertificate};
use time::OffsetDateTime;

use crate::acme::preflight::{self, ServiceTarget};
use crate::acme::renewal::{self, Backoff, OrderBudget, OrderRateLimit};
use crate::acme::{AccountOrigin, Acme, AcmeConfig, AcmeError, ChallengeKind, StoredAccount};
use crate::config::Challenge;
use crate::host::{Challenges, Sites};
use crate::sealing::{SealError, SealingKey};

/// What the manager reads the time from (a test moves it).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// The challenge type the config names.
pub fn challenge_kind(challenge: Challenge) -> ChallengeKind {
    match challenge {
        Challenge::Http01 => ChallengeKind::Http01,
        Challenge::TlsAlpn01 => ChallengeKind::TlsAlpn01,
    }
}

/// The lease name of a certificate.
fn lease_name(name: &str) -> String {
    format!("cert:{name}")
}

/// Rows read per page when loading.
const PAGE: u32 = 500;

/// How the manager paces itself.
#[derive(Debug, Clone)]
pub struct CertSettings {
    /// Pause between two runs of [`CertManager::run`].
    pub interval: Duration,
    /// Orders (names) handled at once.
    pub concurrency: usize,
    /// Back-off after a failed order.
    pub order_backoff: Backoff,
    /// Back-off after a failed pre-flight (cheap: a DNS lookup, no CA request).
    pub preflight_backoff: Backoff,
    /// New orders per hour at most.
    pub rate: OrderRateLimit,
    /// How long a lease is held at most: longer than an order can take (two attempts).
    pub lease_ttl: Duration,
}

impl CertSettings {
    /// Defaults fitting `acme`'s timeouts.
    pub fn for_acme(acme: &AcmeConfig) -> CertSettings {
        CertSettings {
            interval: Duration::from_secs(60),
            concurrency: 2,
            order_backoff: Backoff::default(),
            preflight_backoff: Backoff {
                first: Duration::from_secs(300),
                max: Duration::from_secs(6 * 3600),
            },
            rate: OrderRateLimit::default(),
            lease_ttl: acme
                .order_timeout
                .saturating_mul(2)
                .saturating_add(Duration::from_secs(60)),
        }
    }
}

/// What the manager needs from the rest of the service.
pub struct CertSetup {
    /// The store (certificates, ACME account, leases).
    pub store: Store,
    /// How to reach the CA.
    pub acme: AcmeConfig,
    /// The challenge type tried first (the other is the fallback).
    pub challenge: ChallengeKind,
    /// The key that seals private keys and the account at rest.
    pub sealing: Arc<SealingKey>,
    /// The policy host's sites: certificates are installed here.
    pub sites: Sites,
    /// The policy host's challenge table: the CA validates against it.
    pub challenges: Challenges,
    /// The DNS client for the pre-flight check.
    pub dns: Dns,
    /// What a hosted `mta-sts.` name must point at.
    pub target: ServiceTarget,
    /// The clock.
    pub clock: Clock,
}

/// Why the manager could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The store failed.
    #[error("certificate store: {0}")]
    Store(#[from] StoreError),
    /// The CA failed.
    #[error(transparent)]
    Acme(#[from] AcmeError),
    /// Sealing or unsealing failed.
    #[error("{name}: {source}")]
    Seal {
        /// The row.
        name: String,
        /// Why.
        #[source]
        source: SealError,
    },
    /// A certificate or key does not parse or does not fit the name.
    #[error("certificate for {name}: {reason}")]
    Certificate {
        /// The host name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The domain is not a name a certificate can be ordered for.
    #[error("{0}")]
    Domain(#[from] preflight::PreflightError),
}

/// What one [`CertManager::run_once`] did, name by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Certificates installed from rows other replicas stored.
    pub picked_up: Vec<String>,
    /// Names ordered and installed.
    pub ordered: Vec<String>,
    /// Names not ordered because the pre-flight failed, with the reason.
    pub waiting: Vec<(String, String)>,
    /// Names whose order failed, with the reason.
    pub failed: Vec<(String, String)>,
    /// Names another replica holds the lease of.
    pub leased_elsewhere: Vec<String>,
    /// Names left for a later run by the order budget.
    pub deferred: Vec<String>,
}

/// What this replica knows of one name.
#[derive(Debug, Clone, Default)]
struct NameState {
    /// The installed certificate's expiry and renewal time, and its row's `updated_at`.
    installed: Option<Installed>,
    /// Consecutive failures.
    failures: u32,
    /// No attempt before this.
    retry_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy)]
struct Installed {
    not_after: i64,
    updated_at: i64,
    /// When to renew (ARI point or two thirds).
    renew_at: OffsetDateTime,
}

struct Inner {
    setup: CertSetup,
    settings: CertSettings,
    holder: String,
    account: tokio::sync::OnceCell<Acme>,
    names: Mutex<HashMap<String, NameState>>,
    budget: Mutex<OrderBudget>,
    last_look: Mutex<Option<i64>>,
    orders: AtomicU64,
}

/// The certificate manager. Cheap to clone (shared state).
#[derive(Clone)]
pub struct CertManager {
    inner: Arc<Inner>,
}

impl fmt::Debug for CertManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertManager")
            .field("holder", &self.inner.holder)
            .field("directory", &self.inner.setup.acme.directory_url)
            .finish_non_exhaustive()
    }
}

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn from_unix(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn seed(name: &str, now: OffsetDateTime) -> u64 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    now.unix_timestamp_nanos().hash(&mut h);
    h.finish()
}

/// A holder id unique to this manager: process id and random bits.
fn holder_id() -> String {
    let mut bytes = [0u8; 8];
    let random = aws_lc_rs::rand::fill(&mut bytes).is_ok();
    let mut h = DefaultHasher::new();
    std::time::SystemTime::now().hash(&mut h);
    let fallback = h.finish();
    let bits = if random {
        u64::from_le_bytes(bytes)
    } else {
        fallback
    };
    format!("pid{}-{bits:016x}", std::process::id())
}

/// The chain and key (PEM) as a certificate the host presents.
fn certified_key(name: &str, chain_pem: &str, key_pem: &[u8]) -> Result<CertifiedKey, CertError> {
    let bad = |reason: String| CertError::Certificate {
        name: name.to_owned(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("chain PEM: {e}")))?;
    if chain.is_empty() {
        return Err(bad("the chain holds no certificate".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad(format!("key PEM: {e}")))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(|e| bad(e.to_string()))
}

impl CertManager {
    /// A manager; nothing is loaded or ordered until [`CertManager::load_all`] and
    /// [`CertManager::run_once`] / [`CertManager::run`].
    pub fn new(setup: CertSetup, settings: CertSettings) -> CertManager {
        let budget = OrderBudget::new(settings.rate);
        CertManager {
            inner: Arc::new(Inner {
                setup,
                settings,
                holder: holder_id(),
                account: tokio::sync::OnceCell::new(),
                names: Mutex::new(HashMap::new()),
                budget: Mutex::new(budget),
                last_look: Mutex::new(None),
                orders: AtomicU64::new(0),
            }),
        }
    }

    /// Orders this manager placed with the CA (attempts, successful or not).
    pub fn orders_placed(&self) -> u64 {
        self.inner.orders.load(Ordering::SeqCst)
    }

    /// This manager's lease holder id.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    fn now(&self) -> OffsetDateTime {
        (self.inner.setup.clock)()
    }

    fn names(&self) -> std::sync::MutexGuard<'_, HashMap<String, NameState>> {
        self.inner
            .names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// At start: installs every stored certificate that is valid now. Returns how many.
    /// A row that does not unseal or parse is logged and treated as missing (never served;
    /// the next run orders a new one).
    pub async fn load_all(&self) -> Result<usize, CertError> {
        let now = self.now();
        let mut installed = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .inner
                .setup
                .store
                .certificate_list(after.as_deref(), PAGE)
                .await?;
            let full = page.len() == PAGE as usize;
            after = page.last().map(|r| r.name.clone());
            for row in &page {
                if self.install_row(row, now) {
                    installed += 1;
                }
            }
            if !full {
                break;
            }
        }
        self.set_last_look(unix(now));
        Ok(installed)
    }

    fn set_last_look(&self, at: i64) {
        let mut last = self
            .inner
            .last_look
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *last = Some(last.map_or(at, |l| l.max(at)));
    }

    /// Installs the certificates whose rows changed at or after `since` (epoch seconds) and
    /// that this replica does not already serve: how replicas that did not order a
    /// certificate pick it up. Returns the names installed.
    pub async fn load_changed(&self, since: i64) -> Result<Vec<String>, CertError> {
        let now = self.now();
        let mut picked = Vec::new();
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = self
                .inner
                .setup
                .store
                .certificates_changed_since(
                    since,
                    after.as_ref().map(|(t, n)| (*t, n.as_str())),
                    PAGE,
                )
                .await?;
            let full = page.len() == PAGE as usize;
            after = page.last().map(|r| (r.updated_at, r.name.clone()));
            for row in &page {
                let known = self
                    .names()
                    .get(&row.name)
                    .and_then(|s| s.installed)
                    .map(|i| i.updated_at);
                if known.is_some_and(|u| u >= row.updated_at) {
                    continue;
                }
                if self.install_row(row, now) {
                    picked.push(row.name.clone());
                }
            }
            if !full {
                break;
            }
        }
        Ok(picked)
    }

    /// Unseals and installs `row` when it holds a certificate valid at `now`. Logs and
    /// returns false for a row that cannot be served.
    fn install_row(&self, row: &StoredCertificate, now: OffsetDateTime) -> bool {
        let (Some(chain), Some(sealed), Some(nb), Some(na)) =
            (&row.chain_pem, &row.key, row.not_before, row.not_after)
        else {
            return false;
        };
        if na <= unix(now) {
            return false;
        }
        let opened = self
            .inner
            .setup
            .sealing
            .open(sealed, &row.name, "certificate private key")
            .map_err(|source| CertError::Seal {
                name: row.name.clone(),
                source,
            })
            .and_then(|key| certified_key(&row.name, chain, &key));
        let installed = opened.and_then(|ck| {
            self.inner
                .setup
                .sites
                .set_certificate(&row.name, ck)
                .map_err(|e| CertError::Certificate {
                    name: row.name.clone(),
                    reason: e.to_string(),
                })
        });
        match installed {
            Ok(()) => {
                let renew_at = renewal::renew_at(from_unix(nb), from_unix(na));
                self.names().entry(row.name.clone()).or_default().installed = Some(Installed {
                    not_after: na,
                    updated_at: row.updated_at,
                    renew_at,
                });
                true
            }
            Err(e) => {
                tracing::error!(name = %row.name, error = %e,
                    "stored certificate cannot be served; treated as missing");
                false
            }
        }
    }

    /// One pass: pick up what other replicas stored, then order what is missing or due.
    pub async fn run_once(&self, now: OffsetDateTime) -> Result<RunReport, CertError> {
        let mut report = RunReport::default();
        let margin = i64::try_from(self.inner.settings.lease_ttl.as_secs())
            .unwrap_or(i64::MAX / 4)
            .saturating_add(60);
        let since = {
            let last = *self
                .inner
                .last_look
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            last.map_or(i64::MIN, |l| l.saturating_sub(margin))
        };
        report.picked_up = self.load_changed(since).await?;
        self.set_last_look(unix(now));

        let domains = self.inner.setup.store.hosting_snapshot().await?;
        let mut due = Vec::new();
        for entry in domains {
            if entry.remove_after.is_some_and(|after| unix(now) >= after) {
                continue;
            }
            let name = match preflight::policy_host_name(&entry.domain) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(domain = %entry.domain, error = %e, "no certificate possible");
                    continue;
                }
            };
            if self.is_due(&name, now) {
                due.push((entry.domain, name));
            }
        }

        let concurrency = self.inner.settings.concurrency.max(1);
        let outcomes: Vec<(String, Outcome)> = futures::stream::iter(due)
            .map(|(domain, name)| async move {
                let outcome = self.handle(&domain, &name, now).await;
                (name, outcome)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for (name, outcome) in outcomes {
            match outcome {
                Outcome::Ordered => report.ordered.push(name),
                Outcome::PickedUp => report.picked_up.push(name),
                Outcome::Waiting(why) => report.waiting.push((name, why)),
                Outcome::Failed(why) => report.failed.push((name, why)),
                Outcome::LeasedElsewhere => report.leased_elsewhere.push(name),
                Outcome::Deferred => report.deferred.push(name),
                Outcome::Skipped => {}
            }
        }
        Ok(report)
    }

    /// Whether `name` lacks a valid certificate or is due for renewal, and is not backing off.
    fn is_due(&self, name: &str, now: OffsetDateTime) -> bool {
        let names = self.names();
        let Some(state) = names.get(name) else {
            return true;
        };
        if state.retry_at.is_some_and(|at| now < at) {
            return false;
        }
        match state.installed {
            Some(i) => i.not_after <= unix(now) || now >= i.renew_at,
            None => true,
        }
    }

    /// Runs [`CertManager::run_once`] every [`CertSettings::interval`] until `shutdown`.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let now = self.now();
            match self.run_once(now).await {
                Ok(report) => {
                    if report != RunReport::default() {
                        tracing::info!(?report, "certificate run");
                    }
                }
                Err(e) => tracing::error!(error = %e, "certificate run failed"),
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.inner.settings.interval) => {}
            }
        }
    }

    /// One name under its lease.
    async fn handle(&self, domain: &str, name: &str, now: OffsetDateTime) -> Outcome {
        // Out of budget: leave the name for a later run without a lease or a DNS lookup, so
        // that a long queue (a first start with many domains) costs nothing while it waits.
        let slot = self
            .inner
            .budget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_slot(now);
        if slot > now {
            return Outcome::Deferred;
        }
        let store = &self.inner.setup.store;
        let lease = lease_name(name);
        let ttl = i64::try_from(self.inner.settings.lease_ttl.as_secs()).unwrap_or(i64::MAX / 4);
        match store
            .lease_acquire(
                &lease,
                &self.inner.holder,
                unix(now),
                unix(now).saturating_add(ttl),
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => return Outcome::LeasedElsewhere,
            Err(e) => return Outcome::Failed(format!("lease: {e}")),
        }
        let outcome = self.under_lease(domain, name, now).await;
        if let Err(e) = store.lease_release(&lease, &self.inner.holder).await {
            // It expires on its own.
            tracing::warn!(name, error = %e, "lease not released");
        }
        outcome
    }

    async fn under_lease(&self, domain: &str, name: &str, now: OffsetDateTime) -> Outcome {
        let setup = &self.inner.setup;
        // Another replica may have stored a fresh certificate (or a failure) since we looked.
        match setup.store.certificate_get(name).await {
            Ok(Some(row)) => {
                let known = self
                    .names()
                    .get(name)
                    .and_then(|s| s.installed)
                    .map(|i| i.updated_at);
                if known.is_none_or(|u| u < row.updated_at) && self.install_row(&row, now) {
                    if !self.is_due(name, now) {
                        return Outcome::PickedUp;
                    }
                } else if let Some(wait) = self.recent_failure_elsewhere(&row, now) {
                    self.names().entry(name.to_owned()).or_default().retry_at = Some(wait);
                    return Outcome::Skipped;
                }
            }
            Ok(None) => {}
            Err(e) => return Outcome::Failed(format!("reading the row: {e}")),
        }

        let checked = match preflight::check(&setup.dns, domain, &setup.target).await {
            Ok(c) => c,
            Err(e) => {
                let reason = e.to_string();
                tracing::info!(name, reason, "pre-flight refused; no order placed");
                let written = setup
                    .store
                    .certificate_wait(name, &reason, unix(self.write_time(now)))
                    .await;
                if let Err(e) = written {
                    tracing::warn!(name, error = %e, "pre-flight result not stored");
                }
                self.back_off(name, now, &self.inner.settings.preflight_backoff, None);
                return Outcome::Waiting(reason);
            }
        };

        {
            let mut budget = self
                .inner
                .budget
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if budget.try_start(now).is_err() {
                return Outcome::Deferred;
            }
        }

        let acme = match self.account().await {
            Ok(a) => a,
            Err(e) => return self.failed(name, now, &e.to_string(), None).await,
        };
        self.inner.orders.fetch_add(1, Ordering::SeqCst);
        let issued = match acme
            .order(&checked, setup.challenge, &setup.challenges)
            .await
        {
            Ok(i) => i,
            Err(e) => {
                if let Some(until) = e.retry_after() {
                    self.inner
                        .budget
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pause_until(until);
                }
                return self
                    .failed(name, now, &e.to_string(), e.retry_after())
                    .await;
            }
        };

        match self.store_and_install(acme, name, &issued, now).await {
            Ok(()) => {
                tracing::info!(name, not_after = %issued.not_after, validated_by = ?issued.validated_by,
                    "certificate ordered and installed");
                Outcome::Ordered
            }
            Err(e) => self.failed(name, now, &e.to_string(), None).await,
        }
    }

    /// The time written on rows: the clock, never before `now`.
    fn write_time(&self, now: OffsetDateTime) -> OffsetDateTime {
        self.now().max(now)
    }

    /// A failure another replica stored recently enough that this one backs off too.
    fn recent_failure_elsewhere(
        &self,
        row: &StoredCertificate,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let own = self.names().get(&row.name).map_or(0, |s| s.failures);
        if own > 0 || row.last_error.is_none() {
            return None;
        }
        let first = match row.state {
            CertState::Pending => self.inner.settings.preflight_backoff.first,
            CertState::Failed => self.inner.settings.order_backoff.first,
            CertState::Valid => return None,
        };
        let until = from_unix(row.updated_at) + first;
        (now < until).then_some(until)
    }

    fn back_off(
        &self,
        name: &str,
        now: OffsetDateTime,
        backoff: &Backoff,
        ca: Option<OffsetDateTime>,
    ) {
        let mut names = self.names();
        let state = names.entry(name.to_owned()).or_default();
        state.failures = state.failures.saturating_add(1);
        state.retry_at = Some(backoff.retry_at(now, state.failures, seed(name, now), ca));
    }

    async fn failed(
        &self,
        name: &str,
        now: OffsetDateTime,
        reason: &str,
        ca: Option<OffsetDateTime>,
    ) -> Outcome {
        tracing::warn!(name, reason, "certificate order failed");
        if let Err(e) = self
            .inner
            .setup
            .store
            .certificate_fail(name, reason, unix(self.write_time(now)))
            .await
        {
            tracing::warn!(name, error = %e, "failure not stored");
        }
        self.back_off(name, now, &self.inner.settings.order_backoff, ca);
        Outcome::Failed(reason.to_owned())
    }

    /// Seals the key, stores chain + sealed key + validity in one write, installs.
    async fn store_and_install(
        &self,
        acme: &Acme,
        name: &str,
        issued: &crate::acme::Issued,
        now: OffsetDateTime,
    ) -> Result<(), CertError> {
        let setup = &self.inner.setup;
        let ck = certified_key(name, &issued.chain_pem, issued.key_pem.as_bytes())?;
        let sealed = setup
            .sealing
            .seal(issued.key_pem.as_bytes(), name)
            .map_err(|source| CertError::Seal {
                name: name.to_owned(),
                source,
            })?;
        let updated_at = unix(self.write_time(now));
        let row = StoredCertificate {
            name: name.to_owned(),
            chain_pem: Some(issued.chain_pem.clone()),
            key: Some(sealed),
            not_before: Some(unix(issued.not_before)),
            not_after: Some(unix(issued.not_after)),
            state: CertState::Valid,
            last_error: None,
            updated_at,
        };
        setup.store.certificate_put(&row).await?;
        setup
            .sites
            .set_certificate(name, ck)
            .map_err(|e| CertError::Certificate {
                name: name.to_owned(),
                reason: e.to_string(),
            })?;
        // RFC 9773: the CA's suggested window, where it offers one; else two thirds.
        let ari = match acme.renewal_window(&issued.chain_pem).await {
            Ok(w) => w.map(|(w, _)| w),
            Err(e) => {
                tracing::info!(name, error = %e, "no renewal information; two thirds apply");
                None
            }
        };
        let renew_at = renewal::next_renewal(
            issued.not_before,
            issued.not_after,
            ari.as_ref(),
            seed(name, now),
        );
        let mut names = self.names();
        let state = names.entry(name.to_owned()).or_default();
        state.installed = Some(Installed {
            not_after: unix(issued.not_after),
            updated_at,
            renew_at,
        });
        state.failures = 0;
        state.retry_at = None;
        Ok(())
    }

    /// The ACME account: loaded from the store (unsealed), or created and stored sealed;
    /// once per manager.
    async fn account(&self) -> Result<&Acme, CertError> {
        self.inner
            .account
            .get_or_try_init(|| self.load_or_create_account())
            .await
    }

    async fn load_or_create_account(&self) -> Result<Acme, CertError> {
        let setup = &self.inner.setup;
        let dir = setup.acme.directory_url.clone();
        let unseal = |row: &AcmeAccount| -> Result<StoredAccount, CertError> {
            let json = setup
                .sealing
                .open(&row.credentials, &dir, "ACME account credentials")
                .map_err(|source| CertError::Seal {
                    name: dir.clone(),
                    source,
                })?;
            let text = String::from_utf8(json).map_err(|_| CertError::Certificate {
                name: dir.clone(),
                reason: "stored ACME credentials are not UTF-8".to_owned(),
            })?;
            Ok(StoredAccount::from_json(text)?)
        };
        let stored = match setup.store.acme_account_get(&dir).await? {
            Some(row) => Some(unseal(&row)?),
            None => None,
        };
        let (acme, origin) = Acme::new(setup.acme.clone(), stored.as_ref()).await?;
        let AccountOrigin::Created(created) = origin else {
            return Ok(acme);
        };
        let sealed = setup
            .sealing
            .seal(created.as_json().as_bytes(), &dir)
            .map_err(|source| CertError::Seal {
                name: dir.clone(),
                source,
            })?;
        let row = AcmeAccount {
            directory_url: dir.clone(),
            credentials: sealed,
            contact: (!setup.acme.contact.is_empty()).then(|| setup.acme.contact.join(",")),
            created_at: unix(self.now()),
        };
        let kept = setup.store.acme_account_insert(&row).await?;
        let kept = unseal(&kept)?;
        if kept == created {
            return Ok(acme);
        }
        // Another replica stored its account first: use that one.
        let (acme, _) = Acme::new(setup.acme.clone(), Some(&kept)).await?;
        Ok(acme)
    }

    /// The state of `domain`'s certificate, for `domain show`.
    pub async fn status(&self, domain: &str) -> Result<CertStatus, CertError> {
        certificate_status(&self.inner.setup.store, domain, self.now()).await
    }
}

enum Outcome {
    Ordered,
    PickedUp,
    Waiting(String),
    Failed(String),
    LeasedElsewhere,
    Deferred,
    Skipped,
}

/// What is happening to a certificate besides its validity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CertActivity {
    /// Nothing was tried yet.
    NotYetRequested,
    /// Nothing to do.
    Idle,
    /// A replica holds the lease and is ordering, until `until` at most.
    Ordering {
        /// When the lease ends, epoch seconds.
        until: i64,
    },
    /// The last order failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// Not ordered: `mta-sts.<domain>` does not point at this service yet.
    WaitingForDns {
        /// What the pre-flight found.
        reason: String,
    },
}

/// A certificate's state, as `domain show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertStatus {
    /// The host name.
    pub name: String,
    /// The stored certificate's `notAfter` when it is valid now, epoch seconds.
    pub valid_until: Option<i64>,
    /// What else is going on.
    pub activity: CertActivity,
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self.valid_until {
            Some(until) => {
                let at = from_unix(until)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| until.to_string());
                parts.push(format!("valid until {at}"));
            }
            None => parts.push("no valid certificate".to_owned()),
        }
        match &self.activity {
            CertActivity::NotYetRequested => parts.push("not requested yet".to_owned()),
            CertActivity::Idle => {}
            CertActivity::Ordering { .. } => parts.push("ordering".to_owned()),
            CertActivity::Failed { reason } => parts.push(format!("failed: {reason}")),
            CertActivity::WaitingForDns { reason } => {
                parts.push(format!("waiting for DNS: {reason}"))
            }
        }
        f.write_str(&parts.join("; "))
    }
}

/// The state of `domain`'s certificate (`mta-sts.<domain>`) at `now`, from the store alone:
/// what the CLI shows, whichever replica did the work.
pub async fn certificate_status(
    store: &Store,
    domain: &str,
    now: OffsetDateTime,
) -> Result<CertStatus, CertError> {
    let name = preflight::policy_host_name(domain)?;
    let row = store.certificate_get(&name).await?;
    let lease = store.lease_get(&lease_name(&name)).await?;
    let valid_until = row
        .as_ref()
        .filter(|r| r.chain_pem.is_some() && r.key.is_some())
        .and_then(|r| r.not_after)
        .filter(|na| *na > unix(now));
    let activity = match (&lease, &row) {
        (Some(l), _) if l.expires_at > unix(now) => CertActivity::Ordering {
            until: l.expires_at,
        },
        (_, None) => CertActivity::NotYetRequested,
        (_, Some(r)) => match (r.state, &r.last_error) {
            (CertState::Pending, Some(reason)) => CertActivity::WaitingForDns {
                reason: reason.clone(),
            },
            (CertState::Failed, reason) => CertActivity::Failed {
                reason: reason.clone().unwrap_or_default(),
            },
            (CertState::Pending, None) => CertActivity::NotYetRequested,
            (CertState::Valid, _) => CertActivity::Idle,
        },
    };
    Ok(CertStatus {
        name,
        valid_until,
        activity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_say_validity_and_activity() {
        let at = 1_800_000_000;
        let cases = [
            (
                Some(at),
                CertActivity::Idle,
                "valid until 2027-01-15T08:00:00Z",
            ),
            (
                None,
                CertActivity::NotYetRequested,
                "no valid certificate; not requested yet",
            ),
            (
                Some(at),
                CertActivity::Ordering { until: at },
                "valid until 2027-01-15T08:00:00Z; ordering",
            ),
            (
                None,
                CertActivity::Failed {
                    reason: "CA said no".to_owned(),
                },
                "no valid certificate; failed: CA said no",
            ),
            (
                None,
                CertActivity::WaitingForDns {
                    reason: "points at 192.0.2.1".to_owned(),
                },
                "no valid certificate; waiting for DNS: points at 192.0.2.1",
            ),
        ];
        for (valid_until, activity, want) in cases {
            let status = CertStatus {
                name: "mta-sts.example.com".to_owned(),
                valid_until,
                activity,
            };
            assert_eq!(status.to_string(), want);
        }
    }

    #[test]
    fn unusable_pem_is_refused_with_the_name() {
        let cases: [(&str, &[u8], &str); 2] = [
            ("", b"", "no certificate"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                b"not a key",
                "key PEM",
            ),
        ];
        for (chain, key, why) in cases {
            match certified_key("mta-sts.example.com", chain, key) {
                Err(e @ CertError::Certificate { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains("mta-sts.example.com"), "{text}");
                    assert!(text.contains(why), "{why}: {text}");
                }
                Err(e) => panic!("{why}: {e}"),
                Ok(_) => panic!("{why}: accepted"),
            }
        }
    }
}
