//! RFC 1034 §3.6.2 / RFC 4035 §4.3 — the DNS lookups MTA-STS, TLS-RPT and DANE need.
//!
//! - TXT at `_mta-sts.<domain>` (RFC 8461 §3.1) and `_smtp._tls.<domain>` (RFC 8460 §3):
//!   "the record MUST be treated as if those strings are concatenated without adding
//!   spaces" (both sections say so; RFC 8460 §3 points at RFC 7208 §3.3 for the
//!   multi-string form);
//! - MX (RFC 5321 §5.1), A/AAAA of each exchange, and TLSA at `_25._tcp.<mx>`
//!   (RFC 7672 §2.2.3);
//! - CNAMEs are followed one hop at a time (RFC 1034 §3.6.2), so the chain is reported and a
//!   loop or an over-long chain is a typed error instead of a resolver's guess;
//! - every answer carries its DNSSEC status in the four states of RFC 4035 §4.3, kept apart:
//!   "secure" and "insecure" are answers; "bogus" (signed data that fails validation) is the
//!   lookup error [`DnsError::DnssecBogus`], never an empty answer; "indeterminate" is what
//!   an answer gets when the resolver passes no DNSSEC records at all (see below).
//!
//! ```text
//! validator says     resolver passes DNSSEC?   lookup result
//! secure / insecure  -                         answer, Secure / Insecure
//! bogus              yes                       Err(DnssecBogus)
//! bogus              no (no signed DNSKEY)     answer, Indeterminate
//! ```
//!
//! A plain forwarder, a home router or an authoritative server without DNSSEC ignores the
//! DO bit and returns no RRSIG or DNSKEY. hickory's validator then cannot build a chain from
//! the trust anchor and calls every answer bogus. That is RFC 4035 §4.3's "indeterminate"
//! ("the resolver is not able to obtain the necessary DNSSEC RRs", as RFC 7672 §2.1.1 quotes
//! it), and it says something about the resolver, not the domain. To tell the two apart the
//! client asks, once per trust-anchor zone and client, for the zone's DNSKEY RRset with the DO
//! bit set: a resolver that returns it with its RRSIG passes DNSSEC records, and only then is
//! a failed validation bogus.
//!
//! ```text
//! outcome   = Records | NXDOMAIN | NODATA              (an answer, with DnssecStatus)
//! error     = SERVFAIL | REFUSED | other RCODE | timeout | CNAME loop | chain too long
//!           | transport failure | invalid name
//! ```
//!
//! Queries go to the `--resolver ADDR:PORT` server when given (UDP, with TCP when the answer is
//! truncated), else to the system's resolvers (`/etc/resolv.conf`). DNSSEC validation is done
//! here, by hickory's validator, against the root trust anchor or anchors supplied by the
//! caller (a lab that signs its own `.test` zones hands over its DNSKEYs).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::dnssec::{Proof, TrustAnchors as HickoryAnchors};
use hickory_proto::op::{DnsRequest, DnsRequestOptions, DnsResponse, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolverOpts};
use hickory_resolver::net::RetryDnsHandle;
use hickory_resolver::net::dnssec::DnssecDnsHandle;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HDnsError, DnsHandle, NetError as HNetError};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};
use thiserror::Error;
use tokio::sync::OnceCell;

use crate::NetError;
use crate::dane::Tlsa;

mod answer;
pub use answer::{Answer, DnsError, DnssecStatus, Lookup, Mx, Txt};

/// RFC 1034 §3.6.2 asks resolvers to detect CNAME loops but sets no length. Eight hops is far
/// more than any sane delegation (`_mta-sts` → provider → provider's internal name) needs.
pub const MAX_CNAME_CHAIN: usize = 8;

/// What the checker and the resolver configure.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// `--resolver ADDR:PORT`: ask this server directly instead of the system's resolvers.
    pub server: Option<SocketAddr>,
    /// Time allowed for one attempt of one query.
    pub timeout: Duration,
    /// Attempts per query.
    pub attempts: usize,
    /// Time allowed for a whole lookup: every CNAME hop and DNSSEC sub-query included.
    pub lookup_timeout: Duration,
    /// Validate DNSSEC (needed for DANE, RFC 7672 §2.1).
    pub dnssec: bool,
    /// Trust anchors replacing the IANA root KSKs (for a lab signing its own zones).
    pub trust_anchors: Option<TrustAnchors>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            server: None,
            timeout: Duration::from_secs(3),
            attempts: 2,
            lookup_timeout: Duration::from_secs(15),
            dnssec: true,
            trust_anchors: None,
        }
    }
}

/// DNSSEC trust anchors: DNSKEY records in zone-file presentation format, e.g.
/// `example.test. 3600 IN DNSKEY 257 3 13 <base64>`. A key at the root replaces nothing: it
/// is added to the set; keys at other names anchor those zones.
#[derive(Clone)]
pub struct TrustAnchors {
    keys: Arc<HickoryAnchors>,
    /// The zones the keys belong to; `None` when a key anchors the root, so that every name
    /// is under an anchor.
    islands: Option<Arc<[Name]>>,
}

impl std::fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustAnchors")
            .field("keys", &self.keys.len())
            .field("islands", &self.islands)
            .finish_non_exhaustive()
    }
}

impl TrustAnchors {
    /// Parses DNSKEY records in presentation format.
    ///
    /// Keys below the root make "islands of security" (RFC 4033's term):
    /// names outside every anchored zone cannot be validated at all, so they are looked up
    /// without validation and reported [`DnssecStatus::Insecure`] instead of failing as bogus
    /// for want of a chain to the root. A lab that signs only some of its zones relies on this.
    pub fn from_zone_text(text: &str) -> Result<TrustAnchors, DnsSetupError> {
        let keys = HickoryAnchors::from_str(text).map_err(|e| DnsSetupError::TrustAnchors {
            detail: e.to_string(),
        })?;
        let mut zones = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            let owner = line.split_whitespace().next().unwrap_or_default();
            let name = Name::from_str(owner).map_err(|e| DnsSetupError::TrustAnchors {
                detail: format!("owner name {owner:?}: {e}"),
            })?;
            if !zones.contains(&name) {
                zones.push(name);
            }
        }
        let islands = if zones.iter().any(Name::is_root) {
            None
        } else {
            Some(zones.into())
        };
        Ok(TrustAnchors {
            keys: Arc::new(keys),
            islands,
        })
    }

    /// Whether `name` is at or below an anchored zone.
    fn covers(&self, name: &Name) -> bool {
        match &self.islands {
            None => true,
            Some(zones) => zones.iter().any(|z| z.zone_of(name)),
        }
    }

    /// The anchored zone a chain for `name` starts from: the closest enclosing island, or
    /// the root.
    fn anchor_zone(&self, name: &Name) -> Name {
        self.islands
            .as_ref()
            .and_then(|zones| {
                zones
                    .iter()
                    .filter(|z| z.zone_of(name))
                    .max_by_key(|z| z.num_labels())
                    .cloned()
            })
            .unwrap_or_else(Name::root)
    }
}

/// The resolver could not be set up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DnsSetupError {
    /// The trust-anchor text does not parse as DNSKEY records.
    #[error("trust anchors do not parse as DNSKEY records: {detail}")]
    TrustAnchors {
        /// The parser's message.
        detail: String,
    },
    /// No `--resolver` was given and the system configuration is unreadable or empty.
    #[error("no resolver configured and the system configuration is unusable: {detail}")]
    SystemConfig {
        /// What went wrong.
        detail: String,
    },
}

type Pool = RetryDnsHandle<NameServerPool<TokioRuntimeProvider>>;

#[derive(Clone)]
enum Handle {
    Plain(Pool),
    /// Validates names under the anchors; `plain` serves names outside every island.
    Validating {
        validator: Box<DnssecDnsHandle<Pool>>,
        plain: Pool,
        anchors: Option<TrustAnchors>,
    },
}

impl Handle {
    fn is_validating(&self) -> bool {
        matches!(self, Handle::Validating { .. })
    }

    /// Whether answers for `name` are validated (false outside the islands of custom anchors).
    fn validates(&self, name: &Name) -> bool {
        match self {
            Handle::Plain(_) => false,
            Handle::Validating { anchors, .. } => anchors.as_ref().is_none_or(|a| a.covers(name)),
        }
    }

    /// The pool that sends queries as they are, without validation.
    fn plain(&self) -> &Pool {
        match self {
            Handle::Plain(pool) | Handle::Validating { plain: pool, .. } => pool,
        }
    }

    /// The trust-anchor zone a chain for `name` starts from (the root for IANA's anchors).
    fn anchor_zone(&self, name: &Name) -> Name {
        match self {
            Handle::Validating {
                anchors: Some(a), ..
            } => a.anchor_zone(name),
            _ => Name::root(),
        }
    }
}

/// What this client has learned about its resolver's DNSSEC support, one entry per
/// trust-anchor zone. Shared by clones; an entry is set once and kept for the life of the
/// client, so a long-running process asks once, not once per lookup.
#[derive(Default)]
struct DnssecSupport {
    zones: Mutex<HashMap<Name, Arc<OnceCell<bool>>>>,
}

impl DnssecSupport {
    fn cell(&self, zone: &Name) -> Arc<OnceCell<bool>> {
        // A poisoned lock only means another lookup panicked while inserting; the map is
        // still a valid map.
        let mut zones = self
            .zones
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        zones.entry(zone.clone()).or_default().clone()
    }

    /// What was learned so far: `Some(false)` when any anchor zone came back unsigned.
    fn known(&self) -> Option<bool> {
        let zones = self
            .zones
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let learned: Vec<bool> = zones.values().filter_map(|c| c.get().copied()).collect();
        if learned.is_empty() {
            None
        } else {
            Some(learned.iter().all(|supplied| *supplied))
        }
    }
}

/// A DNS client. Cheap to clone; clones share connections and what was learned about the
/// resolver's DNSSEC support.
#[derive(Clone)]
pub struct Dns {
    handle: Handle,
    lookup_timeout: Duration,
    /// One query, all attempts included: what a hickory timeout means.
    query_timeout: Duration,
    support: Arc<DnssecSupport>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("validating", &self.handle.is_validating())
            .field("lookup_timeout", &self.lookup_timeout)
            .finish()
    }
}

/// The records of one resolution, before conversion.
struct Resolved {
    chain: Vec<String>,
    answer: Answer<Record>,
    dnssec: DnssecStatus,
}

impl Dns {
    /// Builds the client. Must run inside a tokio runtime.
    pub fn new(cfg: &DnsConfig) -> Result<Dns, NetError> {
        let mut opts = ResolverOpts::default();
        opts.timeout = cfg.timeout;
        opts.attempts = cfg.attempts.max(1);
        opts.try_tcp_on_error = true;
        opts.edns0 = true;
        let servers = match cfg.server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for conn in &mut ns.connections {
                    conn.port = addr.port();
                }
                vec![ns]
            }
            None => system_servers().map_err(NetError::from)?,
        };
        let tls = TlsConfig::new().map_err(|e| {
            NetError::from(DnsSetupError::SystemConfig {
                detail: e.to_string(),
            })
        })?;
        let cx = Arc::new(PoolContext::new(opts, tls));
        let pool = NameServerPool::from_config(servers, cx, TokioRuntimeProvider::new());
        let retry = RetryDnsHandle::new(pool, cfg.attempts.max(1));
        let handle = if cfg.dnssec {
            let keys = cfg
                .trust_anchors
                .as_ref()
                .map(|a| a.keys.clone())
                .unwrap_or_else(|| Arc::new(HickoryAnchors::default()));
            Handle::Validating {
                validator: Box::new(DnssecDnsHandle::with_trust_anchor(retry.clone(), keys)),
                plain: retry,
                anchors: cfg.trust_anchors.clone(),
            }
        } else {
            Handle::Plain(retry)
        };
        let attempts = u32::try_from(cfg.attempts.max(1)).unwrap_or(u32::MAX);
        Ok(Dns {
            handle,
            lookup_timeout: cfg.lookup_timeout,
            query_timeout: cfg.timeout.saturating_mul(attempts),
            support: Arc::default(),
        })
    }

    /// Whether DNSSEC validation is switched on.
    pub fn is_validating(&self) -> bool {
        self.handle.is_validating()
    }

    /// What this client has learned so far about its resolver: `Some(true)` when it passes
    /// DNSSEC records (signed DNSKEYs of the trust-anchor zones), `Some(false)` when it does
    /// not for some anchor zone (lookups under it are then indeterminate), `None` when no
    /// lookup has needed to ask yet (or validation is off).
    pub fn resolver_supplies_dnssec(&self) -> Option<bool> {
        self.support.known()
    }

    /// All TXT records at `name`, following CNAMEs.
    pub async fn txt(&self, name: &str) -> Result<Lookup<Txt>, DnsError> {
        self.lookup(name, RecordType::TXT, |r| match &r.data {
            RData::TXT(t) => Some(Txt {
                data: t.txt_data.iter().flat_map(|s| s.iter().copied()).collect(),
                strings: t.txt_data.len(),
            }),
            _ => None,
        })
        .await
    }

    /// The MX records of `domain`, sorted by preference, then name.
    pub async fn mx(&self, domain: &str) -> Result<Lookup<Mx>, DnsError> {
        let mut l = self
            .lookup(domain, RecordType::MX, |r| match &r.data {
                RData::MX(mx) => Some(Mx {
                    preference: mx.preference,
                    exchange: display_name(&mx.exchange),
                }),
                _ => None,
            })
            .await?;
        if let Answer::Records(r) = &mut l.answer {
            r.sort();
        }
        Ok(l)
    }

    /// The A and AAAA addresses of `host`: both are asked; the answer is their union. An
    /// error on one family wins only when the other gave no address either.
    pub async fn addrs(&self, host: &str) -> Result<Lookup<IpAddr>, DnsError> {
        let (v4, v6) = futures::join!(
            self.lookup(host, RecordType::A, |r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            }),
            self.lookup(host, RecordType::AAAA, |r| match &r.data {
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
        );
        match (v4, v6) {
            (Ok(a), Ok(b)) => Ok(merge(a, b)),
            (Ok(a), Err(e)) | (Err(e), Ok(a)) => {
                if a.records().is_empty() {
                    Err(e)
                } else {
                    Ok(a)
                }
            }
            (Err(e), Err(_)) => Err(e),
        }
    }

    /// The TLSA records at `name` (e.g. `_25._tcp.mx.example.com`).
    pub async fn tlsa(&self, name: &str) -> Result<Lookup<Tlsa>, DnsError> {
        self.lookup(name, RecordType::TLSA, |r| match &r.data {
            RData::TLSA(t) => Some(Tlsa {
                usage: u8::from(t.cert_usage).into(),
                selector: u8::from(t.selector).into(),
                matching: u8::from(t.matching).into(),
                data: t.cert_data.clone(),
            }),
            _ => None,
        })
        .await
    }

    async fn lookup<T>(
        &self,
        name: &str,
        rtype: RecordType,
        convert: impl Fn(&Record) -> Option<T>,
    ) -> Result<Lookup<T>, DnsError> {
        let shown = name.strip_suffix('.').unwrap_or(name).to_owned();
        let fqdn = Name::from_str(&format!("{shown}.")).map_err(|_| DnsError::InvalidName {
            name: shown.clone(),
        })?;
        let settled = async {
            let mut resolved = self.resolve(fqdn.clone(), rtype).await?;
            if resolved.dnssec == DnssecStatus::Bogus {
                if self.dnssec_supplied(&fqdn).await {
                    let name = resolved.chain.last().cloned().unwrap_or(shown.clone());
                    return Err(DnsError::DnssecBogus { name });
                }
                resolved.dnssec = DnssecStatus::Indeterminate;
            }
            Ok(resolved)
        };
        let resolved = tokio::time::timeout(self.lookup_timeout, settled)
            .await
            .map_err(|_| DnsError::Timeout {
                name: shown.clone(),
                after: self.lookup_timeout,
            })??;
        let answer = match resolved.answer {
            Answer::Records(r) => {
                let converted: Vec<T> = r.iter().filter_map(convert).collect();
                if converted.is_empty() {
                    Answer::NoData
                } else {
                    Answer::Records(converted)
                }
            }
            Answer::NxDomain => Answer::NxDomain,
            Answer::NoData => Answer::NoData,
        };
        Ok(Lookup {
            name: shown,
            cname_chain: resolved.chain,
            answer,
            dnssec: resolved.dnssec,
        })
    }

    async fn resolve(&self, start: Name, rtype: RecordType) -> Result<Resolved, DnsError> {
        let validating = self.handle.validates(&start);
        let mut current = start.clone();
        let mut visited = vec![start.clone()];
        let mut chain: Vec<String> = Vec::new();
        let mut status = if validating {
            DnssecStatus::Secure
        } else if self.handle.is_validating() {
            // Validation is on but no anchor covers the name: provably unvalidatable.
            DnssecStatus::Insecure
        } else {
            DnssecStatus::Indeterminate
        };
        let mut weaken = |p: Proof| {
            if validating {
                status = status.min(DnssecStatus::from_proof(p));
            }
        };
        // Each round asks for `current`; a response may already carry part of the chain.
        for _round in 0..=MAX_CNAME_CHAIN {
            let msg = match self.send(&current, rtype).await {
                Ok(msg) => msg,
                Err(failure) => {
                    let (rcode, proof) =
                        failure.negative_or_error(display_name(&current), self.query_timeout)?;
                    weaken(proof);
                    return Ok(Resolved {
                        chain,
                        answer: negative(rcode),
                        dnssec: status,
                    });
                }
            };
            loop {
                let records: Vec<Record> = msg
                    .answers
                    .iter()
                    .filter(|r| r.record_type() == rtype && r.name == current)
                    .cloned()
                    .collect();
                if !records.is_empty() {
                    for r in &records {
                        weaken(r.proof);
                    }
                    return Ok(Resolved {
                        chain,
                        answer: Answer::Records(records),
                        dnssec: status,
                    });
                }
                let cname = msg.answers.iter().find_map(|r| match &r.data {
                    RData::CNAME(target) if r.name == current => Some((r.proof, target.0.clone())),
                    _ => None,
                });
                let Some((proof, target)) = cname else {
                    break;
                };
                weaken(proof);
                chain.push(display_name(&target));
                if visited.contains(&target) {
                    let mut names = vec![display_name(&start)];
                    names.extend(chain);
                    return Err(DnsError::CnameLoop { chain: names });
                }
                if chain.len() > MAX_CNAME_CHAIN {
                    let mut names = vec![display_name(&start)];
                    names.extend(chain);
                    return Err(DnsError::CnameChainTooLong {
                        chain: names,
                        limit: MAX_CNAME_CHAIN,
                    });
                }
                visited.push(target.clone());
                current = target;
            }
            let answered_current = msg.queries.first().is_some_and(|q| q.name() == &current);
            if answered_current {
                // The response was about `current` itself and had neither records nor a CNAME.
                for r in &msg.authorities {
                    weaken(r.proof);
                }
                return Ok(Resolved {
                    chain,
                    answer: negative(msg.metadata.response_code),
                    dnssec: status,
                });
            }
            // The chain moved on inside this response; a NXDOMAIN there is about the target.
            if msg.metadata.response_code == ResponseCode::NXDomain {
                return Ok(Resolved {
                    chain,
                    answer: Answer::NxDomain,
                    dnssec: status,
                });
            }
        }
        let mut names = vec![display_name(&start)];
        names.extend(chain);
        Err(DnsError::CnameChainTooLong {
            chain: names,
            limit: MAX_CNAME_CHAIN,
        })
    }

    /// Whether the resolver passes DNSSEC records for the anchor zone above `name`. Learned
    /// once per zone from a DNSKEY query with the DO bit set: the answer must
    /// carry the zone's DNSKEY RRset and an RRSIG over it. An answer without them (a server
    /// that ignores DO, strips signatures, or refuses the zone) is remembered as "no"; no
    /// answer at all (timeout, network) is not remembered, and counts as "no" for now, so
    /// that a domain is never called bogus on a guess.
    async fn dnssec_supplied(&self, name: &Name) -> bool {
        let zone = self.handle.anchor_zone(name);
        let cell = self.support.cell(&zone);
        let pool = self.handle.plain();
        cell.get_or_try_init(|| async {
            let mut options = DnsRequestOptions::default();
            options.recursion_desired = true;
            options.use_edns = true;
            options.edns_set_dnssec_ok = true;
            let query = Query::query(zone.clone(), RecordType::DNSKEY);
            match pool
                .send(DnsRequest::from_query(query, options))
                .next()
                .await
            {
                Some(Ok(msg)) => Ok(has_signed_dnskey(&msg, &zone)),
                Some(Err(HNetError::Dns(
                    HDnsError::NoRecordsFound(_) | HDnsError::ResponseCode(_),
                ))) => Ok(false),
                Some(Err(_)) | None => Err(()),
            }
        })
        .await
        .copied()
        .unwrap_or(false)
    }

    async fn send(&self, name: &Name, rtype: RecordType) -> Result<DnsResponse, Failure> {
        let mut options = DnsRequestOptions::default();
        options.recursion_desired = true;
        options.use_edns = true;
        let request = DnsRequest::from_query(Query::query(name.clone(), rtype), options);
        let first = match &self.handle {
            Handle::Plain(h) => h.send(request).next().await,
            Handle::Validating {
                validator, plain, ..
            } => {
                if self.handle.validates(name) {
                    validator.send(request).next().await
                } else {
                    plain.send(request).next().await
                }
            }
        };
        let result = first.unwrap_or(Err(HNetError::Message("no response")));
        classify(result)
    }
}

/// Whether a DNSKEY response carries the zone's keys and a signature over them.
fn has_signed_dnskey(msg: &DnsResponse, zone: &Name) -> bool {
    let at_zone = |r: &&Record| &r.name == zone;
    let key = msg
        .answers
        .iter()
        .filter(at_zone)
        .any(|r| r.record_type() == RecordType::DNSKEY);
    let signature = msg.answers.iter().filter(at_zone).any(|r| {
        matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(sig))
            if sig.input().type_covered == RecordType::DNSKEY)
    });
    key && signature
}

enum Failure {
    Negative {
        rcode: ResponseCode,
        proof: Proof,
    },
    /// The validator gave up on the response as a whole.
    Bogus,
    Rcode(ResponseCode),
    Timeout,
    Transport(HNetError),
}

impl Failure {
    /// A negative answer (NXDOMAIN/NODATA with its proof) or the error it means for `name`.
    fn negative_or_error(
        self,
        name: String,
        after: Duration,
    ) -> Result<(ResponseCode, Proof), DnsError> {
        Err(match self {
            Failure::Negative { rcode, proof } => return Ok((rcode, proof)),
            Failure::Rcode(ResponseCode::ServFail) => DnsError::ServFail { name },
            Failure::Rcode(ResponseCode::Refused) => DnsError::Refused { name },
            Failure::Rcode(other) => DnsError::Rcode {
                name,
                code: u16::from(other),
            },
            Failure::Bogus => DnsError::DnssecBogus { name },
            Failure::Timeout => DnsError::Timeout { name, after },
            Failure::Transport(source) => DnsError::Transport { name, source },
        })
    }
}

fn classify(result: Result<DnsResponse, HNetError>) -> Result<DnsResponse, Failure> {
    let err = match result {
        Ok(msg) => return Ok(msg),
        Err(e) => e,
    };
    Err(match err {
        HNetError::Dns(HDnsError::NoRecordsFound(nr)) => Failure::Negative {
            rcode: nr.response_code,
            proof: Proof::Indeterminate,
        },
        HNetError::Dns(HDnsError::Nsec {
            response, proof, ..
        }) => Failure::Negative {
            rcode: response.metadata.response_code,
            proof,
        },
        HNetError::Dns(HDnsError::ResponseCode(code)) => Failure::Rcode(code),
        // A validator that gives up on a response: the data may exist but cannot be trusted.
        // Never an empty answer: that would turn a broken signed zone into "no record".
        HNetError::Dns(HDnsError::DnssecBogus) => Failure::Bogus,
        HNetError::Timeout => Failure::Timeout,
        other => Failure::Transport(other),
    })
}

fn negative<T>(rcode: ResponseCode) -> Answer<T> {
    if rcode == ResponseCode::NXDomain {
        Answer::NxDomain
    } else {
        Answer::NoData
    }
}

fn display_name(n: &Name) -> String {
    let s = n.to_ascii();
    s.strip_suffix('.').unwrap_or(&s).to_owned()
}

fn merge(a: Lookup<IpAddr>, b: Lookup<IpAddr>) -> Lookup<IpAddr> {
    let dnssec = a.dnssec.min(b.dnssec);
    let cname_chain = if a.cname_chain.is_empty() {
        b.cname_chain.clone()
    } else {
        a.cname_chain.clone()
    };
    let answer = match (a.answer, b.answer) {
        (Answer::Records(mut x), Answer::Records(y)) => {
            x.extend(y);
            Answer::Records(x)
        }
        (Answer::Records(x), _) | (_, Answer::Records(x)) => Answer::Records(x),
        (Answer::NxDomain, _) | (_, Answer::NxDomain) => Answer::NxDomain,
        (Answer::NoData, Answer::NoData) => Answer::NoData,
    };
    Lookup {
        name: a.name,
        cname_chain,
        answer,
        dnssec,
    }
}

fn system_servers() -> Result<Vec<NameServerConfig>, DnsSetupError> {
    let (config, _opts) = hickory_resolver::system_conf::read_system_conf().map_err(|e| {
        DnsSetupError::SystemConfig {
            detail: e.to_string(),
        }
    })?;
    let servers = config.name_servers().to_vec();
    if servers.is_empty() {
        return Err(DnsSetupError::SystemConfig {
            detail: "no nameserver in the system configuration".into(),
        });
    }
    Ok(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A syntactically valid P-256 DNSKEY (algorithm 13); the key bytes are never used to
    // verify anything here, only the owner names matter.
    const KEY: &str = "3600 IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==";

    fn anchors(owners: &[&str]) -> TrustAnchors {
        let text: String = owners.iter().map(|o| format!("{o} {KEY}\n")).collect();
        TrustAnchors::from_zone_text(&text).expect("anchors parse")
    }

    #[test]
    fn rfc4033_keys_below_the_root_make_islands_of_security() {
        let a = anchors(&["perfect.test.", "signed.example."]);
        let name = |s: &str| Name::from_str(s).expect("name");
        // (name, covered, reason)
        let table = [
            ("perfect.test.", true, "the anchored zone itself"),
            ("_25._tcp.mx.perfect.test.", true, "below the anchored zone"),
            ("mx.signed.example.", true, "below the second anchor"),
            ("other.test.", false, "a sibling zone has no anchor"),
            ("test.", false, "the parent of an anchor is not covered"),
            (
                "notperfect.test.",
                false,
                "a label suffix is not a zone cut",
            ),
        ];
        for (n, covered, why) in table {
            assert_eq!(a.covers(&name(n)), covered, "{n}: {why}");
        }
    }

    #[test]
    fn a_root_key_covers_every_name() {
        let a = anchors(&["."]);
        assert!(a.covers(&Name::from_str("anything.example.").expect("name")));
    }

    #[test]
    fn unparseable_anchor_text_is_a_setup_error() {
        assert!(TrustAnchors::from_zone_text("perfect.test. 3600 IN DNSKEY nonsense").is_err());
    }
}
