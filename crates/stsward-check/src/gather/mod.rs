//! Running the checks of one domain on the network, then judging them
//!
//! ```text
//! domain ─┬─ TXT _mta-sts.<d>            (RFC 8461 §3.1)
//!         ├─ GET https://mta-sts.<d>/.well-known/mta-sts.txt   (RFC 8461 §3.3)
//!         ├─ TXT _smtp._tls.<d>          (RFC 8460 §3)
//!         └─ MX <d> ─┬─ per host: A/AAAA + TLSA _25._tcp.<host>   (RFC 7672 §2.2)
//!                    └─ per address: EHLO, STARTTLS, handshake, certificate (RFC 3207)
//! ```
//!
//! Everything on one line of that tree runs concurrently; SMTP probes of all hosts and all
//! addresses run at once, bounded by one semaphore shared by every domain a [`Checker`]
//! checks (a bulk run must not open thousands of port-25 connections at once). The results
//! fill an [`Observation`], which [`CheckReport::from_observation`] judges.

mod convert;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use rustls_pki_types::CertificateDer;
use stsward_net::cert::Roots;
use stsward_net::dane::Tlsa;
use stsward_net::dns::{Dns, DnsConfig, Lookup, TrustAnchors};
use stsward_net::legacy::LegacyMode;
use stsward_net::policy_fetch::{FetchConfig, WELL_KNOWN_PATH, fetch_policy, policy_host};
use stsward_net::starttls::{ProbeConfig, probe_mx};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::error::{CheckError, NotRun};
use crate::observe::*;
use crate::report::{CheckReport, CheckResult};

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
    /// Validate DNSSEC (RFC 4035). Without it every answer is `indeterminate`, so TLSA
    /// records are reported as not validated (`dane.tlsa.insecure`).
    pub validate_dnssec: bool,
    /// DNSSEC trust anchors as DNSKEY zone text, replacing the root's (for a signed lab).
    pub trust_anchors: Option<String>,
    /// `--smtp-port` (25 in production).
    pub smtp_port: u16,
    /// `--https-port` (443 in production).
    pub https_port: u16,
    /// Time allowed for one DNS query attempt.
    pub dns_timeout: Duration,
    /// Time allowed for the whole policy fetch.
    pub fetch_timeout: Duration,
    /// Time allowed for each SMTP step (connect, banner, EHLO, STARTTLS, handshake).
    pub smtp_step_timeout: Duration,
    /// Most SMTP probes (one per MX address) in flight at once, across all domains.
    pub concurrency: usize,
    /// The name sent with EHLO.
    pub helo_name: String,
    /// Also probe for TLS 1.0/1.1 on every MX that offers STARTTLS (`mx.tls.legacy`).
    pub probe_legacy_tls: bool,
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
            dns_timeout: Duration::from_secs(3),
            fetch_timeout: stsward_net::policy_fetch::DEFAULT_CHECK_TIMEOUT,
            smtp_step_timeout: stsward_net::starttls::DEFAULT_STEP_TIMEOUT,
            concurrency: 32,
            helo_name: "stsward.invalid".to_owned(),
            probe_legacy_tls: true,
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
    resolver: String,
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
        let dns = Dns::new(&DnsConfig {
            server: cfg.resolver,
            timeout: cfg.dns_timeout,
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
        let step = cfg.smtp_step_timeout;
        let probe = ProbeConfig {
            smtp_port: cfg.smtp_port,
            connect_timeout: step,
            banner_timeout: step,
            ehlo_timeout: step,
            starttls_timeout: step,
            handshake_timeout: step,
            legacy: if cfg.probe_legacy_tls {
                LegacyMode::Always
            } else {
                LegacyMode::OnFailure
            },
            ..ProbeConfig::new(cfg.helo_name.clone(), roots)
        };
        let fetch = FetchConfig {
            https_port: cfg.https_port,
            extra_roots: cfg.extra_roots,
            use_webpki_roots: cfg.use_webpki_roots,
            timeout: cfg.fetch_timeout,
            ..FetchConfig::default()
        };
        Ok(Checker {
            dns,
            fetch,
            probe,
            probes: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            resolver,
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
        let observed = self.observe(&name, SystemTime::from(now)).await;
        if let Some(detail) = resolver_unusable(&observed) {
            return Err(not_run(CheckError::ResolverUnusable {
                resolver: self.resolver.clone(),
                detail,
            }));
        }
        Ok(CheckReport::from_observation(observed, now))
    }

    /// Checks many domains, at most `concurrency` at a time, calling `on_done` as each one
    /// finishes (for a progress bar). `clock` is read once per domain, when it starts, so
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

    async fn observe(&self, domain: &str, now: SystemTime) -> Observation {
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
            self.dns.txt(&sts_name),
            self.dns.txt(&rpt_name),
            fetch_policy(&self.dns, domain, &self.fetch, now),
            self.observe_mx(domain, now),
        );
        Observation {
            domain: domain.to_owned(),
            sts_txt: convert::txt(&sts_name, &sts),
            policy: PolicyObservation {
                host,
                url,
                outcome: convert::policy_fetch(policy),
            },
            mx,
            tlsrpt_txt: convert::txt(&rpt_name, &rpt),
        }
    }

    async fn observe_mx(&self, domain: &str, now: SystemTime) -> MxLookup {
        let mx = match self.dns.mx(domain).await {
            Ok(l) => l,
            Err(e) => return MxLookup::Failed(convert::lookup_error(&e)),
        };
        let hosts = futures::future::join_all(
            mx.records()
                .iter()
                .map(|r| self.observe_host(&r.exchange, r.preference, now)),
        )
        .await;
        MxLookup::Answer { hosts }
    }

    async fn observe_host(
        &self,
        host: &str,
        preference: u16,
        now: SystemTime,
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
                    lookup: TlsaLookup::NotChecked,
                },
            };
        }
        let (addrs, tlsa) = tokio::join!(self.dns.addrs(&host), self.dns.tlsa(&tlsa_name));
        let tlsa_records: &[Tlsa] = tlsa.as_ref().map_or(&[], Lookup::records);
        let addresses = match &addrs {
            Err(e) => AddressLookup::Failed(convert::lookup_error(e)),
            Ok(l) => AddressLookup::Answer {
                addresses: futures::future::join_all(
                    l.records()
                        .iter()
                        .map(|ip| self.probe_address(&host, *ip, tlsa_records, now)),
                )
                .await,
            },
        };
        MxHostObservation {
            tlsa: convert::tlsa(&tlsa_name, &tlsa),
            host,
            preference,
            addresses,
        }
    }

    async fn probe_address(
        &self,
        host: &str,
        ip: IpAddr,
        tlsa: &[Tlsa],
        now: SystemTime,
    ) -> AddressObservation {
        // A closed semaphore cannot happen (it is never closed); probing without a permit
        // is still better than reporting nothing.
        let _permit = self.probes.acquire().await.ok();
        let probes = probe_mx(host, &[ip], &self.probe, now).await;
        match probes.first() {
            Some(p) => convert::address(ip, p, tlsa),
            None => AddressObservation {
                ip,
                probe: Probe::Failed {
                    step: SmtpStep::Connect,
                    timed_out: false,
                    detail: "the prober returned no result".to_owned(),
                    banner: None,
                },
                dane: None,
            },
        }
    }
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
