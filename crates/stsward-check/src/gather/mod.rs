//! Running the checks of one domain on the network, then judging them
//!
//! ```text
//! domain ─┬─ TXT _mta-sts.<d>            (RFC 8461 §3.1)
//!         ├─ GET https://mta-sts.<d>/.well-known/mta-sts.txt   (RFC 8461 §3.2, §3.3)
//!         ├─ TXT _smtp._tls.<d>          (RFC 8460 §3)
//!         └─ MX <d> ─┬─ per host: A/AAAA + TLSA _25._tcp.<host>   (RFC 7672 §2.2.3)
//!                    └─ per address: EHLO, STARTTLS, handshake, certificate (RFC 3207)
//! ```
//!
//! Everything on one line of that tree runs concurrently; SMTP probes of all hosts and all
//! addresses run at once, bounded by one semaphore shared by every domain a [`Checker`]
//! checks (a bulk run must not open thousands of port-25 connections at once), and by a
//! per-address connection limit ([`PerIpLimit`]) shared the same way, so that thousands of
//! domains of one provider never open more than a few connections to each of its MX
//! addresses. A [`ProbeCache`] shared by every domain probes each (MX host, address) once
//! per TTL; domains that share MX hosts wait for the probe in flight.
//!
//! # No server-side request forgery
//!
//! With [`CheckConfig::address_filter`] set (checks a tenant asks for), every address DNS
//! returns for the policy host and each MX host, at the end of its CNAME chain, is judged
//! by `stsward_net::address_policy` before it is used, and the exact address is judged
//! again by the network layer right before each connection. A refused address is never
//! connected to; it is the finding `net.address.refused` (for the policy host, or for one
//! address of an MX host), whose message names the address, its range and the CNAME chain.
//!
//! # One deadline per domain
//!
//! A domain's check returns within [`CheckConfig::budget`] (20 s by default, `--timeout`),
//! whatever remote hosts do. Every sub-timeout (DNS, the policy fetch, each SMTP step) is
//! derived beneath it, and every branch of the tree above is cut off at the domain's
//! deadline. What did not finish is reported as a timeout of that branch, naming the step,
//! so the check still returns a report.

mod convert;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use rustls_pki_types::CertificateDer;
use stsward_net::address_policy::Cidr;
use stsward_net::cert::Roots;
use stsward_net::connect_guard::ConnectGuard;
use stsward_net::dane::Tlsa;
use stsward_net::dns::{Dns, DnsConfig, DnsError, Lookup, TrustAnchors};
use stsward_net::legacy::LegacyMode;
use stsward_net::limit::PerIpLimit;
use stsward_net::policy_fetch::{
    FetchConfig, FetchError, WELL_KNOWN_PATH, fetch_policy_guarded, policy_host,
};
use stsward_net::probe_cache::ProbeCache;
use stsward_net::starttls::{ProbeConfig, probe_address};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::error::{CheckError, NotRun};
use crate::observe::*;
use crate::report::{CheckReport, CheckResult};

/// The default overall budget of one domain's check.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(20);

/// Kept back from the budget for judging and rendering after the network is done.
const RESERVE: Duration = Duration::from_millis(300);

/// How to check: everything the CLI decides, as plain values (no paths, no environment).
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// `--resolver ADDR:PORT`; `None` for the system's resolvers.
    pub resolver: Option<SocketAddr>,
    /// Extra trust anchors (`--ca-file`), see [`CheckConfig::roots_from_pem`].
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Also trust the Mozilla root set (off only in labs, so lab certificates cannot pass
    /// for public ones).
    pub use_webpki_roots: bool,
    /// Validate DNSSEC (RFC 4035). Without it every answer is `indeterminate`, and DANE is
    /// reported as unknown (`dns.dnssec.unavailable`).
    pub validate_dnssec: bool,
    /// DNSSEC trust anchors as DNSKEY zone text, replacing the root's (for a signed lab).
    pub trust_anchors: Option<String>,
    /// `--smtp-port` (25 in production).
    pub smtp_port: u16,
    /// `--https-port` (443 in production).
    pub https_port: u16,
    /// The overall budget of one domain's check (`--timeout`): the check returns within it
    /// whatever remote hosts do. The timeouts below are caps beneath it.
    pub budget: Duration,
    /// Time allowed for one DNS query attempt (at most a quarter of the budget is used).
    pub dns_timeout: Duration,
    /// Time allowed for the whole policy fetch (at most the budget is used).
    pub fetch_timeout: Duration,
    /// Time allowed for each SMTP step (connect, banner, EHLO, STARTTLS, handshake); at most
    /// a quarter of the budget is used.
    pub smtp_step_timeout: Duration,
    /// Most SMTP probes (one per MX address) in flight at once, across all domains.
    pub concurrency: usize,
    /// Most concurrent SMTP connections to one MX address (`--per-ip`).
    pub per_ip: usize,
    /// Reuse probe results per (MX host, address) across the domains of one run
    /// (`--no-probe-cache` turns it off).
    pub probe_cache: bool,
    /// The name sent with EHLO.
    pub helo_name: String,
    /// Also probe for TLS 1.0/1.1 on every MX that offers STARTTLS (`mx.tls.legacy`).
    pub probe_legacy_tls: bool,
    /// The address filter against server-side request forgery: `Some(allowed ranges)`
    /// connects only to globally reachable addresses and those ranges; `None` (the
    /// operator's own `stsward check`) connects wherever DNS points.
    pub address_filter: Option<Vec<Cidr>>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            resolver: None,
            extra_roots: Vec::new(),
            use_webpki_roots: true,
            validate_dnssec: true,
            trust_anchors: None,
            smtp_port: 25,
            https_port: 443,
            budget: DEFAULT_BUDGET,
            dns_timeout: Duration::from_secs(3),
            fetch_timeout: stsward_net::policy_fetch::DEFAULT_CHECK_TIMEOUT,
            smtp_step_timeout: stsward_net::starttls::DEFAULT_STEP_TIMEOUT,
            concurrency: 32,
            per_ip: stsward_net::limit::DEFAULT_PER_IP,
            probe_cache: true,
            helo_name: "stsward.invalid".to_owned(),
            probe_legacy_tls: true,
            address_filter: None,
        }
    }
}

impl CheckConfig {
    /// Reads PEM certificates (the contents of a `--ca-file`). The caller reads the file.
    pub fn roots_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CheckError> {
        use rustls_pki_types::pem::PemObject as _;
        let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| CheckError::Roots {
                detail: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(CheckError::Roots {
                detail: "no PEM certificate found".to_owned(),
            });
        }
        Ok(certs)
    }
}

/// A configured checker: a DNS client, fetch and probe settings, and the shared bound on
/// SMTP probes. Cheap to share by reference across many concurrent checks.
#[derive(Debug)]
pub struct Checker {
    dns: Dns,
    fetch: FetchConfig,
    probe: ProbeConfig,
    probes: Arc<Semaphore>,
    cache: Option<ProbeCache>,
    budget: Duration,
    resolver: String,
    guard: Option<ConnectGuard>,
}

impl Checker {
    /// Builds a checker. Must run inside a tokio runtime (the DNS client needs one).
    pub fn new(cfg: CheckConfig) -> Result<Checker, CheckError> {
        let resolver = cfg
            .resolver
            .map_or_else(|| "system".to_owned(), |a| a.to_string());
        let trust_anchors = cfg
            .trust_anchors
            .as_deref()
            .map(TrustAnchors::from_zone_text)
            .transpose()
            .map_err(|e| CheckError::ResolverUnusable {
                resolver: resolver.clone(),
                detail: e.to_string(),
            })?;
        let budget = cfg.budget.max(Duration::from_millis(100));
        let quarter = budget / 4;
        let dns = Dns::new(&DnsConfig {
            server: cfg.resolver,
            timeout: cfg.dns_timeout.min(quarter),
            lookup_timeout: DnsConfig::default().lookup_timeout.min(budget / 2),
            dnssec: cfg.validate_dnssec,
            trust_anchors,
            ..DnsConfig::default()
        })
        .map_err(|e| CheckError::ResolverUnusable {
            resolver: resolver.clone(),
            detail: e.to_string(),
        })?;
        let roots =
            Roots::new(cfg.use_webpki_roots, &cfg.extra_roots).map_err(|e| CheckError::Roots {
                detail: e.to_string(),
            })?;
        let guard = cfg.address_filter.clone().map(ConnectGuard::new);
        let probe = ProbeConfig {
            smtp_port: cfg.smtp_port,
            guard: guard.clone(),
            legacy: if cfg.probe_legacy_tls {
                LegacyMode::Always
            } else {
                LegacyMode::OnFailure
            },
            limit: PerIpLimit::new(cfg.per_ip),
            ..ProbeConfig::new(cfg.helo_name.clone(), roots.clone())
                .with_step_timeout(cfg.smtp_step_timeout.min(quarter))
        };
        let fetch = FetchConfig {
            https_port: cfg.https_port,
            roots,
            timeout: cfg.fetch_timeout.min(budget.saturating_sub(RESERVE)),
            ..FetchConfig::default()
        };
        Ok(Checker {
            dns,
            fetch,
            probe,
            probes: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            cache: cfg.probe_cache.then(ProbeCache::default),
            budget,
            resolver,
            guard,
        })
    }

    /// Checks one domain as of `now` (used for certificate expiry; the network is asked at
    /// the moment of the call).
    pub async fn check_domain(&self, domain: &str, now: OffsetDateTime) -> CheckResult {
        let not_run = |error| NotRun {
            domain: domain.to_owned(),
            error,
        };
        let name = normalize_domain(domain).map_err(not_run)?;
        let deadline = Instant::now() + self.budget.saturating_sub(RESERVE);
        let observed = self.observe(&name, SystemTime::from(now), deadline).await;
        if let Some(detail) = resolver_unusable(&observed) {
            return Err(not_run(CheckError::ResolverUnusable {
                resolver: self.resolver.clone(),
                detail,
            }));
        }
        Ok(CheckReport::from_observation(observed, now))
    }

    /// Checks many domains, at most `concurrency` at a time, calling `on_done` as each one
    /// finishes (for a progress bar, and to print each result at once rather than after the
    /// last domain). `clock` is read once per domain, when it starts, so
    /// that a long bulk run judges expiry against the time each domain was checked.
    /// Results come back in the order of `domains`.
    pub async fn check_many<F, C>(
        &self,
        domains: Vec<String>,
        concurrency: usize,
        clock: C,
        mut on_done: F,
    ) -> Vec<CheckResult>
    where
        F: FnMut(&CheckResult),
        C: Fn() -> OffsetDateTime,
    {
        let clock = &clock;
        let mut done: Vec<(usize, CheckResult)> =
            futures::stream::iter(domains.into_iter().enumerate())
                .map(|(i, d)| async move { (i, self.check_domain(&d, clock()).await) })
                .buffer_unordered(concurrency.max(1))
                .inspect(|(_, r)| on_done(r))
                .collect()
                .await;
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, r)| r).collect()
    }

    async fn observe(&self, domain: &str, now: SystemTime, deadline: Instant) -> Observation {
        let sts_name = format!("_mta-sts.{domain}");
        let rpt_name = format!("_smtp._tls.{domain}");
        let host = policy_host(domain);
        let port = self.fetch.https_port;
        let url = if port == 443 {
            format!("https://{host}{WELL_KNOWN_PATH}")
        } else {
            format!("https://{host}:{port}{WELL_KNOWN_PATH}")
        };
        let (sts, rpt, policy, mx) = tokio::join!(
            dns_until(deadline, &sts_name, self.dns.txt(&sts_name)),
            dns_until(deadline, &rpt_name, self.dns.txt(&rpt_name)),
            self.fetch_until(domain, now, deadline),
            self.observe_mx(domain, now, deadline),
        );
        let mut observed = Observation {
            domain: domain.to_owned(),
            sts_txt: convert::txt(&sts_name, &sts),
            policy: PolicyObservation {
                host,
                url,
                outcome: convert::policy_fetch(policy),
            },
            mx,
            tlsrpt_txt: convert::txt(&rpt_name, &rpt),
            resolver: ResolverObservation::default(),
        };
        observed.resolver = convert::resolver(&self.resolver, &self.dns, &observed);
        observed
    }

    /// The policy fetch, given what is left of the domain's budget.
    async fn fetch_until(
        &self,
        domain: &str,
        now: SystemTime,
        deadline: Instant,
    ) -> Result<stsward_net::policy_fetch::FetchedPolicy, FetchError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let cfg = FetchConfig {
            timeout: self.fetch.timeout.min(left),
            ..self.fetch.clone()
        };
        fetch_policy_guarded(&self.dns, domain, &cfg, self.guard.as_ref(), now).await
    }

    async fn observe_mx(&self, domain: &str, now: SystemTime, deadline: Instant) -> MxLookup {
        let mx = match dns_until(deadline, domain, self.dns.mx(domain)).await {
            Ok(l) => l,
            Err(e) => return MxLookup::Failed(convert::lookup_error(&e)),
        };
        let hosts = futures::future::join_all(
            mx.records()
                .iter()
                .map(|r| self.observe_host(&r.exchange, r.preference, now, deadline)),
        )
        .await;
        MxLookup::Answer { hosts }
    }

    async fn observe_host(
        &self,
        host: &str,
        preference: u16,
        now: SystemTime,
        deadline: Instant,
    ) -> MxHostObservation {
        let host = host.to_ascii_lowercase();
        let tlsa_name = format!("_25._tcp.{host}");
        if host.is_empty() {
            // RFC 7505 null MX: nothing to resolve or probe.
            return MxHostObservation {
                host,
                preference,
                addresses: AddressLookup::Answer {
                    addresses: Vec::new(),
                },
                tlsa: TlsaObservation {
                    name: tlsa_name,
                    host_dnssec: None,
                    lookup: TlsaLookup::NotChecked,
                },
            };
        }
        let (addrs, tlsa) = tokio::join!(
            dns_until(deadline, &host, self.dns.addrs(&host)),
            dns_until(deadline, &tlsa_name, self.dns.tlsa(&tlsa_name)),
        );
        let tlsa_records: &[Tlsa] = tlsa.as_ref().map_or(&[], Lookup::records);
        let addresses = match &addrs {
            Err(e) => AddressLookup::Failed(convert::lookup_error(e)),
            Ok(l) => AddressLookup::Answer {
                addresses: futures::future::join_all(l.records().iter().map(|ip| {
                    self.probe_admitted(&host, *ip, &l.cname_chain, tlsa_records, now, deadline)
                }))
                .await,
            },
        };
        MxHostObservation {
            tlsa: convert::tlsa(&tlsa_name, &tlsa, addrs.as_ref().ok().map(|l| l.dnssec)),
            host,
            preference,
            addresses,
        }
    }

    /// The probe of one MX address, unless the address filter refuses it: then a failed
    /// connection that names the refusal and the CNAME chain, and no packet sent.
    async fn probe_admitted(
        &self,
        host: &str,
        ip: IpAddr,
        chain: &[String],
        tlsa: &[Tlsa],
        now: SystemTime,
        deadline: Instant,
    ) -> AddressObservation {
        if let Some(Err(refused)) = self.guard.as_ref().map(|g| g.admit(ip)) {
            let via = if chain.is_empty() {
                String::new()
            } else {
                format!(" (reached through CNAME {})", chain.join(" -> "))
            };
            return AddressObservation {
                ip,
                probe: Probe::Refused {
                    detail: format!("{refused}{via}"),
                },
                dane: None,
            };
        }
        self.probe_address(host, ip, tlsa, now, deadline).await
    }

    async fn probe_address(
        &self,
        host: &str,
        ip: IpAddr,
        tlsa: &[Tlsa],
        now: SystemTime,
        deadline: Instant,
    ) -> AddressObservation {
        let run = || async {
            // The permit wait counts against the deadline too. A closed semaphore cannot
            // happen (it is never closed); probing without a permit is still better than
            // reporting nothing.
            let _permit = tokio::time::timeout_at(deadline, self.probes.acquire())
                .await
                .ok()
                .and_then(Result::ok);
            probe_address(host, ip, &self.probe, now, deadline).await
        };
        let probe = match &self.cache {
            Some(cache) => {
                // A waiter for another domain's probe in flight is still held to its own
                // deadline.
                tokio::time::timeout_at(
                    deadline,
                    cache.get_or_probe(host, ip, &self.probe.roots, now, run),
                )
                .await
                .ok()
            }
            None => Some(run().await),
        };
        match probe {
            Some(p) => convert::address(ip, &p, tlsa),
            None => AddressObservation {
                ip,
                // Not a network timeout: `timed_out` stays false so that the reachability
                // judge never reads a queue as a blocked port.
                probe: Probe::Failed {
                    step: SmtpStep::Connect,
                    timed_out: false,
                    detail: format!(
                        "waited for another check's probe of this address; the check's budget of {:?} ran out",
                        self.budget
                    ),
                    banner: None,
                },
                dane: None,
            },
        }
    }
}

/// A DNS lookup cut off at `deadline`: then a timeout of that lookup, naming it.
async fn dns_until<T>(
    deadline: Instant,
    name: &str,
    lookup: impl std::future::Future<Output = Result<T, DnsError>>,
) -> Result<T, DnsError> {
    let after = deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout_at(deadline, lookup)
        .await
        .unwrap_or_else(|_| {
            Err(DnsError::Timeout {
                name: name.to_owned(),
                after,
            })
        })
}

/// A domain as DNS wants it: lowercase A-labels, no trailing dot.
fn normalize_domain(domain: &str) -> Result<String, CheckError> {
    let invalid = |reason| CheckError::InvalidDomain {
        domain: domain.to_owned(),
        reason,
    };
    let trimmed = domain.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    if trimmed.parse::<IpAddr>().is_ok() {
        return Err(invalid("it is an IP address"));
    }
    let name = stsward_proto::mta_sts::normalize_host(trimmed)
        .ok_or_else(|| invalid("it is not a valid host name"))?;
    if name.split('.').any(str::is_empty) {
        return Err(invalid("it has an empty label"));
    }
    // RFC 1035 §2.3.4: 255 octets on the wire, so 253 characters in text form.
    if name.len() > 253 {
        return Err(invalid("it is longer than 253 characters"));
    }
    Ok(name)
}

/// `Some(why)` when every lookup failed in a way that blames the resolver, not the domain:
/// then there is nothing to judge and the check did not run (exit status 2).
fn resolver_unusable(obs: &Observation) -> Option<String> {
    fn failed(t: &TxtObservation) -> Option<&LookupError> {
        match &t.lookup {
            TxtLookup::Failed(e) => Some(e),
            TxtLookup::Answer { .. } => None,
        }
    }
    let sts = failed(&obs.sts_txt)?;
    let rpt = failed(&obs.tlsrpt_txt)?;
    let MxLookup::Failed(mx) = &obs.mx else {
        return None;
    };
    let blames_resolver =
        |e: &LookupError| matches!(e.kind, LookupErrorKind::Resolver | LookupErrorKind::Timeout);
    (blames_resolver(sts) && blames_resolver(rpt) && blames_resolver(mx))
        .then(|| format!("every lookup failed (MX: {})", mx.detail))
}
