//! The network side of a resolution: `_mta-sts` discovery (RFC 8461 §3.1), the policy fetch
//! (§3.3) and the DANE observation (RFC 7672 §2.2), behind a trait so that the engine's
//! decisions are tested without sockets. [`NetSource`] is the real one, built on
//! `stsward-net` (the same DNS, DNSSEC and fetch code as `stsward check`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use stsward_net::NetError;
use stsward_net::cert::Roots;
use stsward_net::dns::{Answer as DnsAnswer, Dns, DnsConfig, DnssecStatus, TrustAnchors};
use stsward_net::policy_fetch::{FetchConfig, FetchError, fetch_policy};
use stsward_proto::Failure;
use stsward_proto::mta_sts::evaluate;

use crate::dane::{DaneObservation, HostTlsa};
use crate::key::Destination;

/// A boxed, sendable future (the trait must be object-safe: the engine holds a
/// `dyn Source`).
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the `_mta-sts` TXT lookup found (RFC 8461 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// Exactly one valid `v=STSv1` record.
    Record {
        /// Its `id`.
        id: String,
    },
    /// No usable record: none, several, or an invalid one ("senders MUST assume the
    /// recipient domain does not have an available MTA-STS Policy").
    NoRecord {
        /// Why, in words.
        why: String,
    },
    /// The lookup failed (SERVFAIL, timeout, bogus DNSSEC, CNAME loop…).
    Error {
        /// Why, in words.
        why: String,
    },
}

/// A policy fetch that failed, with its one typed name (`stsward_proto::Failure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    /// The failure, mapped once to its finding code and RFC 8460 result type.
    pub failure: Failure,
    /// What happened, in words.
    pub detail: String,
}

/// Where a resolution gets its facts.
pub trait Source: Send + Sync {
    /// Looks up `_mta-sts.<domain>`.
    fn discover<'a>(&'a self, domain: &'a str) -> BoxFut<'a, Discovery>;
    /// Fetches the policy body of `domain` (RFC 8461 §3.3), judging the certificate at `now`.
    fn fetch<'a>(&'a self, domain: &'a str, now: i64) -> BoxFut<'a, Result<Vec<u8>, FetchFailure>>;
    /// Observes the TLSA records of the destination's MX hosts.
    fn dane<'a>(&'a self, dest: &'a Destination) -> BoxFut<'a, DaneObservation>;
}

/// The network settings of [`NetSource`], as plain values (the binary reads the files).
#[derive(Debug, Clone)]
pub struct NetSettings {
    /// `--resolver ADDR:PORT`; `None` for the system's resolvers.
    pub resolver: Option<SocketAddr>,
    /// One DNS query attempt.
    pub dns_timeout: Duration,
    /// Attempts per query.
    pub dns_attempts: usize,
    /// Validate DNSSEC.
    pub dnssec: bool,
    /// DNSKEY trust anchors as zone text (labs).
    pub trust_anchors: Option<String>,
    /// `--https-port`.
    pub https_port: u16,
    /// Extra roots for the policy hosts (`--ca-file`).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Trust the Mozilla roots too.
    pub webpki_roots: bool,
    /// The whole policy fetch.
    pub fetch_timeout: Duration,
}

impl Default for NetSettings {
    fn default() -> Self {
        NetSettings {
            resolver: None,
            dns_timeout: Duration::from_secs(3),
            dns_attempts: 2,
            dnssec: true,
            trust_anchors: None,
            https_port: 443,
            extra_roots: Vec::new(),
            webpki_roots: true,
            fetch_timeout: stsward_net::policy_fetch::SENDER_TIMEOUT,
        }
    }
}

/// Reads PEM certificates (a `--ca-file`'s contents). The caller reads the file.
pub fn roots_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, SourceError> {
    use rustls_pki_types::pem::PemObject as _;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| SourceError::Roots {
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(SourceError::Roots {
            detail: "no PEM certificate found".to_owned(),
        });
    }
    Ok(certs)
}

/// Why the network source could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The DNS client or the trust anchors.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The extra roots.
    #[error("CA file: {detail}")]
    Roots {
        /// The parser's message.
        detail: String,
    },
}

/// The real source: `stsward-net` DNS (with DNSSEC) and the RFC 8461 §3.3 fetcher.
#[derive(Debug, Clone)]
pub struct NetSource {
    dns: Dns,
    fetch: FetchConfig,
}

impl NetSource {
    /// Builds the clients. Must run inside a tokio runtime.
    pub fn new(s: &NetSettings) -> Result<NetSource, SourceError> {
        let trust_anchors = match &s.trust_anchors {
            Some(text) => Some(TrustAnchors::from_zone_text(text).map_err(NetError::from)?),
            None => None,
        };
        let dns = Dns::new(&DnsConfig {
            server: s.resolver,
            timeout: s.dns_timeout,
            attempts: s.dns_attempts,
            dnssec: s.dnssec,
            trust_anchors,
            ..DnsConfig::default()
        })?;
        let roots = Roots::new(s.webpki_roots, &s.extra_roots).map_err(NetError::from)?;
        let fetch = FetchConfig {
            https_port: s.https_port,
            roots,
            timeout: s.fetch_timeout,
            ..FetchConfig::default()
        };
        Ok(NetSource { dns, fetch })
    }

    async fn discover_impl(&self, domain: &str) -> Discovery {
        let name = format!("_mta-sts.{domain}");
        match self.dns.txt(&name).await {
            Err(e) => Discovery::Error { why: e.to_string() },
            Ok(l) => {
                let texts: Vec<String> = l
                    .records()
                    .iter()
                    .map(|t| String::from_utf8_lossy(&t.data).into_owned())
                    .collect();
                let outcome = evaluate(&texts, &name);
                match outcome.record {
                    Some(r) => Discovery::Record {
                        id: r.id.to_string(),
                    },
                    None if texts.is_empty() => Discovery::NoRecord {
                        why: format!("no TXT record at {name}"),
                    },
                    None => Discovery::NoRecord {
                        why: format!(
                            "no usable v=STSv1 record at {name} (RFC 8461 §3.1): {}",
                            outcome
                                .findings
                                .first()
                                .map(|f| f.message.clone())
                                .unwrap_or_default()
                        ),
                    },
                }
            }
        }
    }

    async fn fetch_impl(&self, domain: &str, now: i64) -> Result<Vec<u8>, FetchFailure> {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
        fetch_policy(&self.dns, domain, &self.fetch, at)
            .await
            .map(|f| f.body)
            .map_err(|e| FetchFailure {
                failure: fetch_failure(&e),
                detail: e.to_string(),
            })
    }

    async fn dane_impl(&self, dest: &Destination) -> DaneObservation {
        let (mx_secure, names) = if dest.explicit {
            (true, vec![dest.domain.clone()])
        } else {
            match self.dns.mx(&dest.domain).await {
                Err(e) => {
                    return DaneObservation::MxError {
                        reason: e.to_string(),
                    };
                }
                Ok(l) => {
                    let secure = l.dnssec == DnssecStatus::Secure;
                    let names = match &l.answer {
                        DnsAnswer::Records(mx) => mx
                            .iter()
                            .filter(|m| !m.exchange.is_empty())
                            .map(|m| m.exchange.clone())
                            .collect(),
                        // RFC 7672 §2.2.2: a domain without MX records "is implicitly also
                        // its sole SMTP server name".
                        DnsAnswer::NoData => vec![dest.domain.clone()],
                        DnsAnswer::NxDomain => Vec::new(),
                    };
                    (secure, names)
                }
            }
        };
        let checks = names.iter().map(|h| self.host_tlsa(h, dest.port));
        let states = futures::future::join_all(checks).await;
        DaneObservation::Hosts {
            mx_secure,
            hosts: names.into_iter().zip(states).collect(),
        }
    }

    /// RFC 7672 §2.2.2: addresses first; TLSA only when they are "secure".
    async fn host_tlsa(&self, host: &str, port: u16) -> HostTlsa {
        match self.dns.addrs(host).await {
            Ok(a) if !a.records().is_empty() && a.dnssec == DnssecStatus::Secure => {}
            // No address or an address lookup error: the host is skipped anyway
            // (RFC 7672 §2.1.2: "delivery may proceed via any remaining MX hosts").
            _ => return HostTlsa::None,
        }
        match self.dns.tlsa(&format!("_{port}._tcp.{host}")).await {
            Ok(t) if !t.records().is_empty() && t.dnssec == DnssecStatus::Secure => {
                HostTlsa::Secure
            }
            Ok(_) => HostTlsa::None,
            Err(_) => HostTlsa::Error,
        }
    }
}

impl Source for NetSource {
    fn discover<'a>(&'a self, domain: &'a str) -> BoxFut<'a, Discovery> {
        Box::pin(self.discover_impl(domain))
    }
    fn fetch<'a>(&'a self, domain: &'a str, now: i64) -> BoxFut<'a, Result<Vec<u8>, FetchFailure>> {
        Box::pin(self.fetch_impl(domain, now))
    }
    fn dane<'a>(&'a self, dest: &'a Destination) -> BoxFut<'a, DaneObservation> {
        Box::pin(self.dane_impl(dest))
    }
}

/// A fetch refusal → its one typed failure (the same pairing `stsward check` reports).
pub fn fetch_failure(e: &FetchError) -> Failure {
    match e {
        FetchError::Dns(_) | FetchError::NoAddress => Failure::StsPolicyHostNoAddress,
        FetchError::Tls(_) => Failure::StsWebpkiInvalid,
        FetchError::Redirect { .. } => Failure::StsPolicyRedirect,
        FetchError::Status(_) => Failure::StsPolicyStatus,
        FetchError::ContentType(_) => Failure::StsPolicyContentType,
        FetchError::TooLarge { .. } => Failure::StsPolicyTooLarge,
        FetchError::Timeout { .. } => Failure::StsPolicyTimeout,
        // Connect and handshake failures and a broken HTTP exchange: no answer from 443.
        _ => Failure::StsPolicyUnreachable,
    }
}
