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
//!                    order budget spent -> left for a later run (no lease, no lookup)
//!                    lease "cert:<name>" (one replica per name)  -> else skip
//!                    re-read the row: another replica may just have stored a fresh one
//!                    pre-flight: name resolves here?  no -> row: pending + last_error, back off
//!                    take an order slot (per hour; none while the CA's Retry-After runs)
//!                    order -> seal key -> one row write (chain, sealed key, validity) -> Sites
//!                    release the lease
//! run(shutdown)    run_once every interval, at most `concurrency` names at once
//! ```
//!
//! The ACME account is loaded from the store (unsealed) the first time an order is placed, or
//! created and stored sealed; two replicas creating one at once both use the first stored.
//!
//! Files: this one schedules; `order.rs` orders one name under its lease; `loading.rs`
//! installs stored rows; `account.rs` holds the ACME account; `status.rs` says a
//! certificate's state for `domain show`.
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
use stsward_net::dns::Dns;
use stsward_store::{Store, StoreError};
use time::OffsetDateTime;

use crate::acme::preflight::{self, ServiceTarget};
use crate::acme::renewal::{Backoff, OrderBudget, OrderRateLimit};
use crate::acme::{Acme, AcmeConfig, AcmeError, ChallengeKind};
use crate::config::Challenge;
use crate::host::{Challenges, Sites};
use crate::sealing::{SealError, SealingKey};

mod account;
mod loading;
mod order;
mod status;

pub use status::{CertActivity, CertStatus, certificate_status};

use loading::certified_key;

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
