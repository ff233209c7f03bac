//! The delegated zone in memory: which names exist, what each holds, and the answer to one
//! question (RFC 1034 §4.3.2, the authoritative part of the lookup algorithm).
//!
//! ```text
//! <apex>                        SOA, NS (+ DNSKEY when signed)
//! <ns name in the zone>         A / AAAA (glue)
//! <policy host>                 A / AAAA
//! _mta-sts.<D>.<apex>           TXT "v=STSv1; id=<id>;"          RFC 8461 §3.1
//! _smtp._tls.<D>.<apex>         TXT "v=TLSRPTv1; rua=<uri>"      RFC 8460 §3
//! ```
//!
//! Every other name under the apex either is an empty non-terminal (an ancestor of one of
//! the names above, such as `<D>.<apex>` or `_tls.<D>.<apex>`: it exists, with no data) or
//! does not exist. Names are looked up in hash maps keyed by the name relative to the apex,
//! so an answer costs the same with 5 domains as with 50,000; a policy change replaces one
//! domain's entry and adjusts the reference counts of its ancestors, never the whole zone.
//!
//! Negative answers carry the SOA in the authority section with the TTL of RFC 2308 §5
//! (paraphrase: the smaller of the SOA's own TTL and its MINIMUM field).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::NS;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType};
use stsward_proto::mta_sts::{PolicyId, StsRecord};
use stsward_proto::tlsrpt::RuaUri;
use time::OffsetDateTime;

use super::DnsError;
use super::names::{
    ancestors, domain_ents, domain_key, fqdn, policy_host_name, relative_to, release_ents, timer,
};
use super::rrsets::{SoaFields, address_sets, soa_sets, tlsrpt_text, txt_set};
use super::settings::ZoneSettings;
use super::sign::{NXNAME, Signed, Signer, nsec_at};

const MTA_STS_PREFIX: &str = "_mta-sts.";
const TLSRPT_PREFIX: &str = "_smtp._tls.";

/// The names a customer points CNAMEs at for one hosted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedNames {
    /// Target of `_mta-sts.<domain>`: `_mta-sts.<domain>.<apex>`.
    pub mta_sts: String,
    /// Target of `_smtp._tls.<domain>`: `_smtp._tls.<domain>.<apex>`.
    pub tlsrpt: String,
    /// Target of `mta-sts.<domain>`: the canonical policy host.
    pub policy_host: String,
}

/// The authoritative data of the delegated zone, shared by every server task.
pub struct Zone {
    apex: LowerName,
    /// The apex in presentation form with its trailing dot, the suffix of every name below.
    apex_text: String,
    policy_host: String,
    ttl: u32,
    txt_ttl: u32,
    negative_ttl: u32,
    soa: SoaFields,
    default_rua: Option<Vec<RuaUri>>,
    /// Names that never change (apex NS and DNSKEY, name server and policy host addresses),
    /// keyed relative to the apex (`""` is the apex).
    statics: HashMap<String, Vec<Arc<Signed>>>,
    /// Ancestors of the static names: empty non-terminals.
    static_ents: HashSet<String>,
    /// Addresses of the in-zone name servers, for the additional section of NS answers.
    glue: Vec<Arc<Signed>>,
    signer: Option<Signer>,
    state: RwLock<State>,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("apex", &self.apex_text)
            .field("signed", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

struct State {
    serial: u32,
    soa: Arc<Signed>,
    soa_negative: Arc<Signed>,
    domains: HashMap<String, Arc<Hosted>>,
    /// Empty non-terminals created by hosted domains, with the number of names below each.
    ents: HashMap<String, u32>,
}

struct Hosted {
    id: PolicyId,
    rua: Option<Vec<RuaUri>>,
    sts: Arc<Signed>,
    tlsrpt: Option<Arc<Signed>>,
}

/// What one question gets, before it is written to the wire.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) rcode: ResponseCode,
    /// Whether the AA bit is set: for every answer from the zone, not for a refusal.
    pub(crate) authoritative: bool,
    pub(crate) answers: Vec<Arc<RecordSet>>,
    pub(crate) authority: Vec<Arc<RecordSet>>,
    pub(crate) additionals: Vec<Arc<RecordSet>>,
}

impl Answer {
    fn refused() -> Answer {
        Answer::error(ResponseCode::Refused)
    }

    pub(crate) fn error(rcode: ResponseCode) -> Answer {
        Answer {
            rcode,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

/// What exists at one name.
enum Node {
    Data(Vec<Arc<Signed>>),
    EmptyNonTerminal,
    Missing,
}

impl Zone {
    /// Builds the zone, with no hosted domain yet.
    pub fn new(settings: ZoneSettings) -> Result<Zone, DnsError> {
        let apex = fqdn("apex", &settings.apex)?;
        if apex.is_root() {
            return Err(DnsError::Setting {
                field: "apex",
                value: settings.apex,
                reason: "the root cannot be delegated to stsward",
            });
        }
        let apex_lower = LowerName::new(&apex);
        let apex_text = apex_lower.to_string();
        let signer = match &settings.signing_key {
            Some(key) => Some(Signer::new(key, &apex)?),
            None => None,
        };
        let soa = SoaFields {
            mname: fqdn("soa.mname", &settings.soa.mname)?,
            rname: fqdn("soa.rname", &settings.soa.rname)?,
            refresh: timer("soa.refresh", settings.soa.refresh)?,
            retry: timer("soa.retry", settings.soa.retry)?,
            expire: timer("soa.expire", settings.soa.expire)?,
            minimum: settings.soa.minimum,
        };
        if settings.name_servers.is_empty() {
            return Err(DnsError::Setting {
                field: "name_servers",
                value: String::new(),
                reason: "a zone needs at least one name server",
            });
        }
        let mut statics: HashMap<String, Vec<Arc<Signed>>> = HashMap::new();
        let mut glue = Vec::new();
        let mut in_zone = Vec::new();
        let mut ns_set = RecordSet::with_ttl(apex.clone(), RecordType::NS, settings.ttl);
        for server in &settings.name_servers {
            let name = fqdn("name_servers.name", &server.name)?;
            ns_set.insert(
                Record::from_rdata(apex.clone(), settings.ttl, RData::NS(NS(name.clone()))),
                0,
            );
            if let Some(relative) = relative_to(&apex_text, &name) {
                if server.addrs.is_empty() {
                    return Err(DnsError::Setting {
                        field: "name_servers.addrs",
                        value: server.name.clone(),
                        reason: "a name server inside the zone needs an address (glue), or \
                                 resolvers cannot reach it",
                    });
                }
                let sets = address_sets(&name, &server.addrs, settings.ttl);
                glue.extend(sets.iter().cloned());
                statics.entry(relative.clone()).or_default().extend(sets);
                in_zone.push(relative);
            }
        }
        statics
            .entry(String::new())
            .or_default()
            .push(Arc::new(Signed::new(ns_set)));
        if let Some(signer) = &signer {
            let mut set = RecordSet::with_ttl(apex.clone(), RecordType::DNSKEY, settings.ttl);
            set.insert(
                Record::from_rdata(
                    apex.clone(),
                    settings.ttl,
                    RData::DNSSEC(DNSSECRData::DNSKEY(signer.dnskey().clone())),
                ),
                0,
            );
            statics
                .entry(String::new())
                .or_default()
                .push(Arc::new(Signed::new(set)));
        }
        let policy_host = policy_host_name(&settings.policy_host, &apex_text)?;
        let policy_relative = relative_to(&apex_text, &policy_host).ok_or(DnsError::Setting {
            field: "policy_host.name",
            value: settings.policy_host.name.clone(),
            reason: "the policy host must be inside the zone, or stsward cannot answer for it",
        })?;
        statics
            .entry(policy_relative.clone())
            .or_default()
            .extend(address_sets(
                &policy_host,
                &settings.policy_host.addrs,
                settings.ttl,
            ));
        in_zone.push(policy_relative);
        let static_ents = in_zone
            .iter()
            .flat_map(|name| ancestors(name))
            .filter(|name| !name.is_empty())
            .collect();
        if let Some(rua) = &settings.default_rua {
            tlsrpt_text("default_rua", rua)?;
        }
        let negative_ttl = settings.ttl.min(soa.minimum);
        let (soa_set, soa_negative) = soa_sets(
            &apex_lower,
            &soa,
            settings.soa.serial,
            settings.ttl,
            negative_ttl,
        );
        Ok(Zone {
            apex: apex_lower,
            apex_text,
            policy_host: policy_host.to_string(),
            ttl: settings.ttl,
            txt_ttl: settings.txt_ttl,
            negative_ttl,
            soa,
            default_rua: settings.default_rua,
            statics,
            static_ents,
            glue,
            signer,
            state: RwLock::new(State {
                serial: settings.soa.serial,
                soa: soa_set,
                soa_negative,
                domains: HashMap::new(),
                ents: HashMap::new(),
            }),
        })
    }

    /// The apex, with its trailing dot.
    pub fn apex(&self) -> &str {
        &self.apex_text
    }

    /// The SOA serial now served.
    pub fn serial(&self) -> u32 {
        self.read().serial
    }

    /// How many domains the zone hosts.
    pub fn len(&self) -> usize {
        self.read().domains.len()
    }

    /// Whether the zone hosts no domain.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The apex DNSKEY in presentation form (`<apex> <ttl> IN DNSKEY 257 3 13 <key>`), the
    /// trust anchor or the input for the parent's DS record; `None` when unsigned.
    pub fn dnskey_record(&self) -> Option<String> {
        let signer = self.signer.as_ref()?;
        Some(
            Record::from_rdata(
                Name::clone(&self.apex),
                self.ttl,
                RData::DNSSEC(DNSSECRData::DNSKEY(signer.dnskey().clone())),
            )
            .to_string(),
        )
    }

    /// The DS record for the parent zone, in presentation form
    /// (`<apex> <ttl> IN DS <tag> 13 2 <digest>`), which links the chain of trust to this
    /// zone's key; `None` when unsigned.
    pub fn ds_record(&self) -> Result<Option<String>, DnsError> {
        let Some(signer) = self.signer.as_ref() else {
            return Ok(None);
        };
        let apex = Name::clone(&self.apex);
        let ds = signer.ds(&apex)?;
        Ok(Some(
            Record::from_rdata(apex, self.ttl, RData::DNSSEC(DNSSECRData::DS(ds))).to_string(),
        ))
    }

    /// The names the customer of `domain` points CNAMEs at (without trailing dots).
    pub fn delegated_names(&self, domain: &str) -> Result<DelegatedNames, DnsError> {
        let key = domain_key(domain)?;
        let apex = self.apex_text.trim_end_matches('.');
        let names = DelegatedNames {
            mta_sts: format!("{MTA_STS_PREFIX}{key}.{apex}"),
            tlsrpt: format!("{TLSRPT_PREFIX}{key}.{apex}"),
            policy_host: self.policy_host.trim_end_matches('.').to_owned(),
        };
        fqdn("domain", &names.tlsrpt)?;
        Ok(names)
    }

    /// Serves `domain` with policy `id` and, for TLS reports, `rua` (or the zone's default
    /// when `None`). Returns the SOA serial after the change; an unchanged domain keeps the
    /// serial. Fails, changing nothing, when the domain is not a host name or its names
    /// under the apex would exceed 255 octets.
    pub fn upsert(
        &self,
        domain: &str,
        id: &PolicyId,
        rua: Option<&[RuaUri]>,
    ) -> Result<u32, DnsError> {
        let (key, hosted) = self.hosted(domain, id, rua)?;
        let mut state = self.write();
        if install(&mut state, key, hosted) {
            Ok(self.bump(&mut state))
        } else {
            Ok(state.serial)
        }
    }

    /// [`Zone::upsert`] for many domains at once, as at start-up, with one serial increase
    /// for all of them. Every domain is checked first: on an error nothing changes.
    pub fn upsert_all<'a>(
        &self,
        domains: impl IntoIterator<Item = (&'a str, &'a PolicyId, Option<&'a [RuaUri]>)>,
    ) -> Result<u32, DnsError> {
        let entries = domains
            .into_iter()
            .map(|(domain, id, rua)| self.hosted(domain, id, rua))
            .collect::<Result<Vec<_>, _>>()?;
        let mut state = self.write();
        let mut changed = false;
        for (key, hosted) in entries {
            changed |= install(&mut state, key, hosted);
        }
        if changed {
            Ok(self.bump(&mut state))
        } else {
            Ok(state.serial)
        }
    }

    /// Stops serving `domain`. Returns the new serial, or `None` (and changes nothing) when
    /// the domain was not served.
    pub fn remove(&self, domain: &str) -> Result<Option<u32>, DnsError> {
        let key = domain_key(domain)?;
        let mut state = self.write();
        let Some(previous) = state.domains.remove(&key) else {
            return Ok(None);
        };
        release_ents(&mut state.ents, &key, previous.tlsrpt.is_some());
        Ok(Some(self.bump(&mut state)))
    }

    /// The answer to `qtype` at `qname`. DNSSEC records are added when `dnssec_ok` and the
    /// zone is signed; `now` dates the signatures.
    pub(crate) fn answer(
        &self,
        qname: &LowerName,
        qtype: RecordType,
        dnssec_ok: bool,
        now: OffsetDateTime,
    ) -> Result<Answer, DnsError> {
        if !self.apex.zone_of(qname) || matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return Ok(Answer::refused());
        }
        let text = qname.to_string();
        let relative = if text.len() == self.apex_text.len() {
            Some("")
        } else {
            text.strip_suffix(self.apex_text.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
        };
        let (node, soa_negative) = {
            let state = self.read();
            let node = match relative {
                Some(relative) => self.node(&state, relative),
                None => Node::Missing,
            };
            (node, state.soa_negative.clone())
        };
        let signer = self.signer.as_ref().filter(|_| dnssec_ok);
        let seal = |set: &Arc<Signed>| -> Result<Arc<RecordSet>, DnsError> {
            match signer {
                Some(signer) => set.signed(signer, now),
                None => Ok(set.plain()),
            }
        };
        let mut answer = Answer {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
        };
        let name = Name::clone(qname);
        let types: Vec<RecordType> = match node {
            Node::Data(sets) => {
                let matching: Vec<&Arc<Signed>> = sets
                    .iter()
                    .filter(|set| qtype == RecordType::ANY || set.record_type() == qtype)
                    .collect();
                if !matching.is_empty() {
                    for set in matching {
                        answer.answers.push(seal(set)?);
                    }
                    if qtype == RecordType::NS && relative == Some("") {
                        for set in &self.glue {
                            answer.additionals.push(seal(set)?);
                        }
                    }
                    return Ok(answer);
                }
                sets.iter().map(|set| set.record_type()).collect()
            }
            Node::EmptyNonTerminal => Vec::new(),
            Node::Missing => {
                if signer.is_none() {
                    answer.rcode = ResponseCode::NXDomain;
                }
                vec![NXNAME]
            }
        };
        answer.authority.push(seal(&soa_negative)?);
        if let Some(signer) = signer {
            let nsec = nsec_at(&name, &types, self.negative_ttl);
            answer.authority.push(Arc::new(signer.sign(&nsec, now)?));
        }
        Ok(answer)
    }

    /// The map key and records of one hosted domain, built outside the lock.
    fn hosted(
        &self,
        domain: &str,
        id: &PolicyId,
        rua: Option<&[RuaUri]>,
    ) -> Result<(String, Arc<Hosted>), DnsError> {
        let key = domain_key(domain)?;
        let names = self.delegated_names(&key)?;
        let sts_name = fqdn("domain", &names.mta_sts)?;
        let tlsrpt_name = fqdn("domain", &names.tlsrpt)?;
        let sts_text = StsRecord::new(id.clone()).to_string();
        let sts = Arc::new(Signed::new(txt_set(&sts_name, &sts_text, self.txt_ttl)));
        let tlsrpt = match rua.or(self.default_rua.as_deref()) {
            Some(uris) => {
                let text = tlsrpt_text("rua", uris)?;
                Some(Arc::new(Signed::new(txt_set(
                    &tlsrpt_name,
                    &text,
                    self.txt_ttl,
                ))))
            }
            None => None,
        };
        let hosted = Hosted {
            id: id.clone(),
            rua: rua.map(<[RuaUri]>::to_vec),
            sts,
            tlsrpt,
        };
        Ok((key, Arc::new(hosted)))
    }

    fn node(&self, state: &State, relative: &str) -> Node {
        let mut sets = Vec::new();
        if relative.is_empty() {
            sets.push(state.soa.clone());
        }
        if let Some(fixed) = self.statics.get(relative) {
            sets.extend(fixed.iter().cloned());
        }
        if let Some(domain) = relative.strip_prefix(MTA_STS_PREFIX) {
            if let Some(hosted) = state.domains.get(domain) {
                sets.push(hosted.sts.clone());
            }
        } else if let Some(domain) = relative.strip_prefix(TLSRPT_PREFIX)
            && let Some(set) = state.domains.get(domain).and_then(|h| h.tlsrpt.clone())
        {
            sets.push(set);
        }
        if !sets.is_empty() {
            Node::Data(sets)
        } else if state.ents.contains_key(relative) || self.static_ents.contains(relative) {
            Node::EmptyNonTerminal
        } else {
            Node::Missing
        }
    }

    fn bump(&self, state: &mut State) -> u32 {
        // RFC 1982 serial arithmetic: adding one always yields a greater serial.
        let serial = state.serial.wrapping_add(1);
        let (soa, soa_negative) =
            soa_sets(&self.apex, &self.soa, serial, self.ttl, self.negative_ttl);
        state.serial = serial;
        state.soa = soa;
        state.soa_negative = soa_negative;
        serial
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // The state is replaced field by field under the lock, each step leaving a valid
        // zone, so a panic elsewhere never leaves it half-written.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Puts one domain's entry in place and counts the empty non-terminals it creates; `false`
/// when the domain was already served exactly so.
fn install(state: &mut State, key: String, hosted: Arc<Hosted>) -> bool {
    if let Some(old) = state.domains.get(&key)
        && old.id == hosted.id
        && old.rua == hosted.rua
    {
        return false;
    }
    for name in domain_ents(&key, hosted.tlsrpt.is_some()) {
        *state.ents.entry(name).or_insert(0) += 1;
    }
    if let Some(previous) = state.domains.insert(key.clone(), hosted) {
        release_ents(&mut state.ents, &key, previous.tlsrpt.is_some());
    }
    true
}

#[cfg(test)]
mod tests;
