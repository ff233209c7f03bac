//! `stsward serve`: every server role in one process — the HTTPS policy host (RFC 8461 §3.3),
//! the HTTP listener for ACME HTTP-01, and the authoritative DNS of the delegated zone
//! (RFC 8461 §3.1 `_mta-sts` TXT, RFC 8460 §3 `_smtp._tls` TXT) — kept in step with the store.
//!
//! ```text
//! Runtime::start(config, options)   open the store (migrations), load the snapshot into the
//!                                   Zone and Sites, install the [tls] certificate or (with
//!                                   [acme]) the stored ones, bind every listener
//! runtime.run(shutdown)             serve; propagate changes (propagate.rs); on shutdown
//!                                   stop the listeners, let requests in flight finish
//!                                   within the grace, and leave the replica table
//! ```
//!
//! Besides the policy host and the DNS, `run` starts the certificate manager
//! ([`crate::certs`], with `[acme]`), the REST API ([`crate::api`], when `[api]` has a
//! token), the scheduler ([`crate::scheduler`]: MX follow, the own-TXT watch, and the
//! policy fetch counts, flushed once more after the policy host has stopped), and the
//! scheduled checks and alerts ([`crate::alerts`]).
//!
//! Ordering (RFC 8461 §8.1, "Recipients SHOULD also update the HTTPS policy body before
//! updating the TXT record"): a changed domain's body is served first, and its DNS id moves
//! only once every live replica serves that version (see [`propagate`]).
//!
//! Time comes from a [`Clock`], real time plus an offset that tests move forward (RFC 8461
//! §8.3 removals end when a time has passed).

mod intake;
pub mod preflight;
mod propagate;
mod setup;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stsward_net::dns::{Dns, DnsConfig};
use stsward_store::{Store, StoreError};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::acme::AcmeConfig;
use crate::acme::preflight::ServiceTarget;
use crate::alerts::{AlertEngine, AlertSettings, AlertSetup};
use crate::api::{ApiLimits, ApiServer, ApiStartError};
use crate::certs::{CertError, CertManager, CertSettings, CertSetup, challenge_kind};
use crate::checks::CheckRunner;
use crate::config::{ConfigError, Secret, ServeConfig};
use crate::dns::{DnsError, DnsLimits, DnsServer, Zone};
use crate::domains::{DomainError, DomainService};
use crate::host::{Challenges, FetchCounter, HostError, HostLimits, HostServer, Sites};
use crate::scheduler::{Scheduler, SchedulerSettings, SchedulerSetup};
use propagate::Propagator;

/// Extra time, beyond the policy host's own grace, that a listener gets to stop.
const STOP_MARGIN: Duration = Duration::from_secs(2);

/// Real time plus an offset; clones share the offset. Tests move it forward with
/// [`Clock::advance`].
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Moves this clock (and its clones) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        real.saturating_add(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Epoch seconds.
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// What the command line adds to the configuration.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// The clock (default: the system's).
    pub clock: Clock,
    /// This replica's name in the `replicas` table (default: host name, process id and
    /// start time).
    pub replica_id: Option<String>,
    /// The policy host's limits (default: [`HostLimits::default`]).
    pub host_limits: Option<HostLimits>,
    /// A DNS client for the domain service's lookups (MX, pre-flight checks).
    pub dns: Option<Dns>,
}

/// Why `stsward serve` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is not complete enough to serve (names the key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened or read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The domain service failed.
    #[error("domains: {0}")]
    Domains(#[from] DomainError),
    /// The zone could not be built from `[hosting]`, or the DNS server failed.
    #[error("[hosting] zone: {0}")]
    Dns(#[from] DnsError),
    /// The policy host could not start or failed.
    #[error("policy host: {0}")]
    Host(#[from] HostError),
    /// The certificate manager could not start.
    #[error("certificates: {0}")]
    Certs(#[from] CertError),
    /// The DNS client (pre-flight checks, MX lookups) could not be built.
    #[error("DNS client: {0}")]
    Resolver(String),
    /// The REST API could not start or failed.
    #[error("REST API: {0}")]
    Api(#[from] ApiStartError),
    /// A listen address could not be bound.
    #[error("listen.{role}: binding {addr}: {source}")]
    Bind {
        /// `https`, `http` or `dns`.
        role: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `[tls]` certificate or key is unusable.
    #[error("{key}: {path}: {reason}")]
    Tls {
        /// `tls.cert_file` or `tls.key_file`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A report intake channel could not start.
    #[error("report intake: {0}")]
    Intake(String),
    /// The DNSSEC key file is unusable.
    #[error("keys.dnssec_key_file: {path}: {reason}")]
    DnssecKey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What was loaded and bound, for the start-up log and the caller.
#[derive(Clone, Debug)]
pub struct Started {
    /// Domains served at start.
    pub domains: usize,
    /// The SMTP report listener's addresses (empty when `[intake_smtp]` accepts no one).
    pub smtp: Vec<SocketAddr>,
    /// Of which the `[tls]` certificate covers this many.
    pub with_static_cert: usize,
    /// The bound HTTPS addresses.
    pub https: Vec<SocketAddr>,
    /// The bound HTTP addresses.
    pub http: Vec<SocketAddr>,
    /// The bound DNS addresses (UDP and TCP share each).
    pub dns: Vec<SocketAddr>,
    /// Certificates loaded from the store at start (`[acme]`).
    pub stored_certificates: usize,
    /// The bound REST API addresses (none when no `[api]` token is set: the API is off).
    pub api: Vec<SocketAddr>,
    /// The DS record for the parent zone, when the zone is signed.
    pub ds_record: Option<String>,
    /// Whether the DNSSEC key file was created at this start.
    pub dnssec_key_created: bool,
    /// This replica's name.
    pub replica_id: String,
}

/// The service, started and bound, ready to [`run`](Runtime::run).
pub struct Runtime {
    started: Started,
    sites: Sites,
    challenges: Challenges,
    counter: FetchCounter,
    zone: Arc<Zone>,
    host: HostServer,
    dns_udp: Vec<UdpSocket>,
    dns_tcp: Vec<TcpListener>,
    propagator: Propagator,
    api: Option<(ApiServer, Secret)>,
    certs: Option<CertManager>,
    grace: Duration,
    store: Store,
    service: DomainService,
    config: ServeConfig,
    scheduler: Scheduler,
    alerts: AlertEngine,
    intake: intake::Intake,
    clock: Clock,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

fn default_replica_id(clock: &Clock) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "stsward".into());
    let host: String = host.chars().take(64).collect();
    format!("{host}-{}-{}", std::process::id(), clock.now_ms())
}

impl Runtime {
    /// Validates `config` for serving, opens the store (running its migrations), loads every
    /// served domain, and binds every listener. Must be called inside a Tokio runtime.
    pub async fn start(config: ServeConfig, options: ServeOptions) -> Result<Runtime, ServeError> {
        config.validate_for_serving()?;
        let clock = options.clock;
        let static_cert = match &config.tls {
            Some(tls) => Some(setup::static_certificate(&tls.cert_file, &tls.key_file)?),
            None => None,
        };
        let (signing_key, dnssec_key_created) = match &config.keys.dnssec_key_file {
            Some(path) => {
                let (key, created) = setup::dnssec_key(path)?;
                (Some(key), created)
            }
            None => (None, false),
        };
        let zone = Arc::new(Zone::new(setup::zone_settings(
            &config,
            signing_key,
            clock.now(),
        )?)?);
        let store = Store::open(&config.store.url).await?;
        let dns = match options.dns {
            Some(dns) => dns,
            None => Dns::new(&DnsConfig {
                server: None,
                timeout: Duration::from_secs(3),
                attempts: 2,
                lookup_timeout: Duration::from_secs(10),
                dnssec: false,
                trust_anchors: None,
            })
            .map_err(|e| ServeError::Resolver(e.to_string()))?,
        };
        let service = DomainService::new(store.clone(), config.hosting.clone(), Some(dns.clone()));
        let scheduler_dns = dns.clone();
        let counter = FetchCounter::default();
        let sites = Sites::new();
        let challenges = Challenges::new();
        let (certs, stored_certificates) = match &config.acme {
            Some(acme) => {
                let sealing = config.sealing_key()?.ok_or(ConfigError::Invalid {
                    key: "keys.secret_file",
                    reason: "is not set: [acme] stores certificate keys sealed with it".into(),
                })?;
                let mut acme_config = AcmeConfig::new(acme.directory.clone(), acme.contact.clone());
                if let Some(path) = &acme.ca_file {
                    acme_config.ca_roots = Some(setup::ca_roots(path)?);
                }
                let settings = CertSettings::for_acme(&acme_config);
                let c = clock.clone();
                let manager = CertManager::new(
                    CertSetup {
                        store: store.clone(),
                        acme: acme_config,
                        challenge: challenge_kind(acme.challenge),
                        sealing: Arc::new(sealing),
                        sites: sites.clone(),
                        challenges: challenges.clone(),
                        dns,
                        target: ServiceTarget {
                            addresses: config.hosting.policy_host_addrs.clone(),
                            canonical_name: config.hosting.policy_host.clone(),
                        },
                        clock: Arc::new(move || {
                            time::OffsetDateTime::from_unix_timestamp(c.now())
                                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                        }),
                    },
                    settings,
                );
                let loaded = manager.load_all().await?;
                (Some(manager), loaded)
            }
            None => (None, 0),
        };
        let replica_id = options
            .replica_id
            .unwrap_or_else(|| default_replica_id(&clock));
        let scheduler = Scheduler::new(
            SchedulerSetup {
                store: store.clone(),
                service: service.clone(),
                dns: scheduler_dns,
                counter: counter.clone(),
                clock: clock.clone(),
                holder: replica_id.clone(),
            },
            SchedulerSettings::from_config(&config.scheduler),
        );
        // Scheduled checks and alerts (src/alerts.rs): one check runner, shared with the
        // API's tenant checks, so that both keep to the same limits.
        let runner = match CheckRunner::new(&config.checks) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                tracing::error!(error = %e, "checks are unavailable (scheduled and tenant)");
                None
            }
        };
        let destinations =
            crate::alerts::destinations(&config.alerts).map_err(|reason| ConfigError::Invalid {
                key: "alerts",
                reason,
            })?;
        let alerts = AlertEngine::new(
            AlertSetup {
                store: store.clone(),
                runner: runner.clone(),
                clock: clock.clone(),
                holder: replica_id.clone(),
                destinations: Arc::new(destinations),
            },
            AlertSettings::from_config(&config.alerts),
        );
        let mut propagator = Propagator::new(
            store.clone(),
            service.clone(),
            zone.clone(),
            sites.clone(),
            static_cert,
            clock.clone(),
            replica_id.clone(),
            Duration::from_millis(config.replicas.poll_interval_ms),
            i64::try_from(config.replicas.heartbeat_expiry.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            config.hosting.tlsrpt_rua.clone(),
        );
        let loaded = propagator.load().await?;
        let limits = options.host_limits.unwrap_or_default();
        let grace = limits.shutdown_grace;
        let mut host = HostServer::bind(&config.listen.https, &config.listen.http, limits)?;
        // Report intake (serve/intake.rs): the store-backed sink and the channels.
        let mut intake = intake::prepare(&config, &store, &sites)?;
        if let Some(route) = intake.https.take() {
            host = host.with_https_intake(route);
        }
        let (dns_udp, dns_tcp) = setup::bind_dns(&config.listen.dns)?;
        let api = match config.api_token()? {
            Some(token) => {
                let mut server = ApiServer::bind(&config.api.listen, ApiLimits::default())?
                    .with_checks(config.checks.clone())
                    .with_readiness(config.readiness.clone())
                    .with_metrics(config.metrics.clone())?
                    .with_web(config.web.clone(), clock.clone());
                if let Some(r) = &runner {
                    server = server.with_check_runner(r.clone());
                }
                Some((server, token))
            }
            None => None,
        };
        let dns = dns_udp.iter().filter_map(|s| s.local_addr().ok()).collect();
        let started = Started {
            domains: loaded.domains,
            smtp: intake
                .smtp
                .as_ref()
                .map(|(server, _)| server.addrs())
                .unwrap_or_default(),
            with_static_cert: loaded.with_static_cert,
            https: host.https_addrs(),
            http: host.http_addrs(),
            dns,
            api: api.as_ref().map(|(a, _)| a.addrs()).unwrap_or_default(),
            stored_certificates,
            ds_record: zone.ds_record()?,
            dnssec_key_created,
            replica_id,
        };
        Ok(Runtime {
            started,
            sites,
            challenges,
            counter,
            zone,
            host,
            dns_udp,
            dns_tcp,
            propagator,
            api,
            certs,
            grace,
            store,
            service,
            config,
            scheduler,
            alerts,
            intake,
            clock,
        })
    }

    /// What was loaded and bound.
    pub fn started(&self) -> &Started {
        &self.started
    }

    /// The zone served (shared with the DNS server).
    pub fn zone(&self) -> &Arc<Zone> {
        &self.zone
    }

    /// The sites served (shared with the policy host).
    pub fn sites(&self) -> &Sites {
        &self.sites
    }

    /// The domain service over this runtime's store.
    pub fn service(&self) -> &DomainService {
        &self.service
    }

    /// Serves until `shutdown` completes, then stops every role: the listeners close,
    /// requests in flight get the policy host's grace, and this replica leaves the
    /// `replicas` table. An error of one role stops the others too.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let Runtime {
            started,
            sites,
            challenges,
            counter,
            zone,
            host,
            dns_udp,
            dns_tcp,
            propagator,
            api,
            certs,
            grace,
            store,
            service,
            config,
            scheduler,
            alerts,
            intake,
            clock,
        } = self;
        tracing::info!(
            domains = started.domains,
            stored_certificates = started.stored_certificates,
            with_static_cert = started.with_static_cert,
            https = ?started.https,
            http = ?started.http,
            dns = ?started.dns,
            api = ?started.api,
            smtp = ?started.smtp,
            replica = %started.replica_id,
            "stsward serve: started"
        );
        if let Some(ds) = &started.ds_record {
            tracing::info!(ds = %ds, "the zone is signed; publish this DS record at the parent");
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let dns = DnsServer::start(zone, dns_udp, dns_tcp, DnsLimits::default())?;
        let dns_stop = stopped(stop_rx.clone());
        let mut dns_task =
            tokio::spawn(async move { dns.run_until(dns_stop).await.map_err(ServeError::from) });
        let host_run = host.run(
            sites.clone(),
            challenges.clone(),
            counter,
            stopped(stop_rx.clone()),
        );
        let mut host_task = tokio::spawn(async move { host_run.await.map_err(ServeError::from) });
        let mut propagate_task = tokio::spawn(propagator.run(stop_rx.clone()));
        // The scheduler (src/scheduler.rs): MX follow, own-TXT watch, fetch-count flushes.
        let scheduler_task = tokio::spawn(scheduler.clone().run(stop_rx.clone()));
        // Scheduled checks, alert evaluations and sends (src/alerts.rs).
        let alerts_task = tokio::spawn(alerts.run(stop_rx.clone()));
        // Report intake (serve/intake.rs): SMTP, IMAP, the retention prune.
        let intake_task = tokio::spawn(intake::run(
            intake.smtp,
            intake.imap,
            intake.sink,
            store.clone(),
            config.reports.retention_days,
            clock,
            stop_rx.clone(),
        ));
        // Dropping `run` (its task aborted) stops every role with it.
        let _abort = AbortOnDrop(vec![
            dns_task.abort_handle(),
            host_task.abort_handle(),
            propagate_task.abort_handle(),
            scheduler_task.abort_handle(),
            alerts_task.abort_handle(),
            intake_task.abort_handle(),
        ]);

        // The certificate manager (src/certs.rs), with [acme]: it loaded the stored
        // certificates at start, and orders missing and renewing ones.
        let certs_task = certs.map(|manager| {
            let certs_stop = stopped(stop_rx.clone());
            tokio::spawn(async move { manager.run(certs_stop).await })
        });
        let _abort_certs = AbortOnDrop(certs_task.iter().map(|t| t.abort_handle()).collect());
        // The REST API (src/api.rs), when a token is configured.
        let mut api_task = match api {
            Some((server, token)) => {
                let api_run = server.run(service.clone(), Some(token), stopped(stop_rx.clone()));
                Some(tokio::spawn(async move {
                    api_run.await.map_err(ServeError::from)
                }))
            }
            None => None,
        };
        let _abort_api = AbortOnDrop(api_task.iter().map(|t| t.abort_handle()).collect());
        let api_failed = async {
            match api_task.as_mut() {
                Some(task) => task.await,
                None => std::future::pending().await,
            }
        };
        let _ = (&config, &challenges, &sites);

        let mut failed: Option<ServeError> = None;
        tokio::select! {
            () = shutdown => {}
            r = &mut dns_task => failed = Some(task_error(r, "dns")),
            r = &mut host_task => failed = Some(task_error(r, "https")),
            r = api_failed => failed = Some(task_error(r, "api")),
            r = &mut propagate_task => {
                if let Err(e) = r {
                    tracing::error!(error = %e, "the change propagation task ended");
                }
            }
        }
        tracing::info!("stsward serve: stopping");
        let _ = stop_tx.send(true);
        let limit = grace + STOP_MARGIN;
        for (name, task) in [("dns", dns_task), ("https", host_task)] {
            if task.is_finished() {
                continue;
            }
            match tokio::time::timeout(limit, task).await {
                Ok(Ok(Err(e))) => tracing::warn!(role = name, error = %e, "stopped with an error"),
                Ok(_) => {}
                Err(_) => tracing::warn!(role = name, "did not stop within the grace"),
            }
        }
        if tokio::time::timeout(limit, intake_task).await.is_err() {
            tracing::warn!(role = "intake", "did not stop within the grace");
        }
        if tokio::time::timeout(limit, scheduler_task).await.is_err() {
            tracing::warn!(role = "scheduler", "did not stop within the grace");
        }
        if tokio::time::timeout(limit, alerts_task).await.is_err() {
            tracing::warn!(role = "alerts", "did not stop within the grace");
        }
        // The policy host has stopped: no fetch is counted after this last flush.
        match tokio::time::timeout(limit, scheduler.flush_fetches()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the last fetch counts were not stored"),
            Err(_) => tracing::warn!("the last fetch-count flush did not finish in time"),
        }
        if let Some(task) = certs_task
            && tokio::time::timeout(limit, task).await.is_err()
        {
            tracing::warn!(role = "certs", "did not stop within the grace");
        }
        if let Some(task) = api_task
            && !task.is_finished()
            && tokio::time::timeout(limit, task).await.is_err()
        {
            tracing::warn!(role = "api", "did not stop within the grace");
        }
        if !propagate_task.is_finished()
            && tokio::time::timeout(limit, propagate_task).await.is_err()
        {
            tracing::warn!("change propagation did not stop within the grace");
        }
        store.close().await;
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Aborts the roles' tasks when `run` is dropped before it finished.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The error of a role that ended before the shutdown signal.
fn task_error(
    joined: Result<Result<(), ServeError>, tokio::task::JoinError>,
    role: &'static str,
) -> ServeError {
    match joined {
        Ok(Err(e)) => e,
        Ok(Ok(())) | Err(_) => ServeError::Bind {
            role,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            source: std::io::Error::other(format!("the {role} listener ended unexpectedly")),
        },
    }
}
