//! Hosted domains and their policy versions: the service code that the CLI (`stsward domain`)
//! and the REST API both call (RFC 8461 §3.1 ids, §3.2 policies, §8.3 safe removal).
//!
//! Every change is a new, validated policy version with a fresh id ([`id`]), written to the
//! store with the version it was based on, so two replicas changing one domain at once cannot
//! both win (the loser gets [`DomainError::Store`] with a version conflict, and nothing is
//! written). A policy that `stsward policy lint` would reject is refused, naming the field.
//!
//! Removal follows RFC 8461 §8.3:
//!
//! ```text
//! 1. Publish a new policy with "mode" equal to "none" and a small "max_age" (e.g., one day).
//! 2. Publish a new TXT record to trigger fetching of the new policy.
//! 3. When all previously served policies have expired -- normally this is the time the
//!    previously published policy was last served plus that policy's "max_age", but note
//!    that policies older than the previously published policy may have been served with a
//!    greater "max_age" than the previously published policy, allowing overlapping policy
//!    caches -- safely remove the TXT record and HTTPS endpoint.
//! ```
//!
//! [`DomainService::remove`] does 1 and 2 in one version (the id changes with it) and sets
//! `remove_after` to the latest expiry of every earlier version: each was served until the
//! next one replaced it, and may be cached for its own `max_age` from then.
//!
//! Time is an argument (`now`, epoch seconds) everywhere; nothing here reads the clock.

pub mod id;
pub mod names;
pub mod records;

use std::collections::HashSet;

use stsward_net::dns::{Answer, Dns, DnsError};
use stsward_proto::Severity;
use stsward_proto::mta_sts::policy::lint;
use stsward_proto::mta_sts::{MaxAge, Mode, MxPattern, Policy, PolicyId};
use stsward_store::{
    CertState, DomainState, HostedDomain, NewDomain, NewVersion, PolicyVersion, Store, StoreError,
    TenantId, Transition,
};

use crate::config::HostingSection;
pub use names::NameError;
pub use records::{DnsRecord, Records};

/// The default `max_age` of a new domain: one week (RFC 8461 §3.2 expects "weeks or greater").
pub const DEFAULT_MAX_AGE: u32 = 604_800;
/// The `max_age` of the `mode: none` version of a removal (RFC 8461 §8.3 step 1: "a small
/// "max_age" (e.g., one day)").
pub const REMOVAL_MAX_AGE: u32 = 86_400;
/// Most versions read back for `show` and for computing a removal's end.
pub const MAX_HISTORY: u32 = 100_000;
/// Most domains one `list` call returns.
pub const LIST_PAGE: u32 = 1000;

/// Where the `mx` patterns of a new policy come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxInput {
    /// As given (validated as RFC 8461 §3.2 `mx` values).
    Patterns(Vec<String>),
    /// The exchanges of the domain's MX records, now.
    FromDns,
}

/// `domain add`: what a new domain's first policy says. Unset fields take the defaults
/// (`testing`, the MX hosts in DNS, [`DEFAULT_MAX_AGE`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddDomain {
    /// The domain, as typed (normalised to A-labels).
    pub domain: String,
    /// `testing`, `enforce` or `none`.
    pub mode: Option<String>,
    /// The `mx` patterns.
    pub mx: Option<MxInput>,
    /// Seconds.
    pub max_age: Option<u64>,
    /// Opt in to following the MX records on a schedule.
    pub follow_mx: bool,
}

/// `domain set`: the fields to change; unset fields keep their current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyChange {
    /// `testing`, `enforce` or `none`.
    pub mode: Option<String>,
    /// New `mx` patterns.
    pub mx: Option<MxInput>,
    /// Seconds.
    pub max_age: Option<u64>,
    /// Why (kept in the history).
    pub note: Option<String>,
}

/// Something the caller should tell the user; the change was made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// An `enforce` policy lost `mx` patterns: senders that fetched it may keep it until
    /// `cached_until` (its `max_age`, RFC 8461 §3.2) and refuse MX hosts it does not list.
    DroppedPatterns {
        /// The patterns no longer listed.
        dropped: Vec<String>,
        /// The version senders may still hold.
        version: i64,
        /// Its `max_age`.
        max_age: i64,
        /// Until when they may hold it (epoch seconds).
        cached_until: i64,
    },
    /// A finding of the policy linter below error severity (e.g. a short `max_age`).
    Lint {
        /// The finding code.
        code: String,
        /// Its message.
        message: String,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::DroppedPatterns {
                dropped,
                version,
                max_age,
                cached_until,
            } => write!(
                f,
                "mx {} dropped from an enforce policy: senders that fetched version {version} \
                 may keep it for its max_age ({max_age} s, until {}) and refuse delivery to MX \
                 hosts it does not list",
                dropped.join(", "),
                format_time(*cached_until)
            ),
            Warning::Lint { code, message } => write!(f, "{code}: {message}"),
        }
    }
}

/// The result of a change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The domain.
    pub domain: String,
    /// The version now served (the previous one when nothing changed).
    pub version: PolicyVersion,
    /// Whether a new version was written (`sync-mx` with the same MX writes none).
    pub changed: bool,
    /// What the user should know.
    pub warnings: Vec<Warning>,
}

/// One domain in a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DomainSummary {
    /// The domain.
    pub domain: String,
    /// Its state at `now` (a removal whose time has passed is shown as gone).
    pub state: DomainState,
    /// The current version's mode.
    pub mode: String,
    /// The current version.
    pub version: i64,
    /// The current id.
    pub id: String,
    /// When a removing domain goes (epoch seconds).
    pub gone_at: Option<i64>,
}

/// Everything `domain show` says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DomainDetail {
    /// The stored row.
    pub domain: HostedDomain,
    /// The state at `now`.
    pub state: DomainState,
    /// When a removing domain goes (epoch seconds).
    pub gone_at: Option<i64>,
    /// The version served.
    pub current: PolicyVersion,
    /// Every version, newest first (at most [`MAX_HISTORY`]).
    pub history: Vec<PolicyVersion>,
    /// The state of the `mta-sts.<D>` certificate, when there is one.
    pub certificate: Option<CertificateSummary>,
}

/// A certificate as `show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateSummary {
    /// The host name.
    pub name: String,
    /// Pending, valid or failed.
    pub state: CertState,
    /// Validity end (epoch seconds).
    pub not_after: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// One domain as the serving roles (DNS, HTTPS) load it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServedDomain {
    /// The policy domain.
    pub domain: String,
    /// Active or removing.
    pub state: DomainState,
    /// The version served.
    pub version: i64,
    /// Its `_mta-sts` id.
    pub id: String,
    /// The policy text, exactly as served (CRLF lines).
    pub policy: String,
    /// The `rua` for `_smtp._tls` (the domain's, else the install's; none: no record).
    pub tlsrpt_rua: Option<String>,
    /// When a removing domain stops being served.
    pub remove_after: Option<i64>,
}

/// Why a domain operation failed; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The domain name is not usable.
    #[error("domain: {0}")]
    Name(#[from] NameError),
    /// A policy field is not valid (`field` is `mode`, `mx`, `max_age` or `policy`).
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The tenant hosts no such domain.
    #[error("{domain} is not a hosted domain")]
    NotFound {
        /// The domain.
        domain: String,
    },
    /// The domain is being removed (RFC 8461 §8.3); it cannot change until it is gone.
    #[error("{domain} is being removed and serves mode none until {}; it can be added again after that", format_time(*gone_at))]
    Removing {
        /// The domain.
        domain: String,
        /// When it goes.
        gone_at: i64,
    },
    /// The MX records could not be read.
    #[error("cannot look up the MX records of {domain}")]
    Dns {
        /// The domain.
        domain: String,
        /// Why (boxed: DNS errors are large, and rare).
        #[source]
        source: Box<DnsError>,
    },
    /// The domain has no MX records to build `mx` lines from.
    #[error("{domain} has no MX records ({why}); give the mx patterns with --mx")]
    NoMx {
        /// The domain.
        domain: String,
        /// NXDOMAIN, no MX records, or a null MX.
        why: &'static str,
    },
    /// `FromDns` was asked of a service without a DNS client.
    #[error("no DNS client to read the MX records of {domain} with")]
    NoDns {
        /// The domain.
        domain: String,
    },
    /// A configuration key the operation needs is not set.
    #[error("{key} is not set in the configuration; {why}")]
    NotConfigured {
        /// `section.key`.
        key: &'static str,
        /// What it is needed for.
        why: &'static str,
    },
    /// The store failed or refused (a taken name, a version conflict, a size limit).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `at` as RFC 3339 UTC, or the raw number when out of range.
pub fn format_time(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

/// The service: the store, the hosting names, and a DNS client for MX lookups.
#[derive(Clone, Debug)]
pub struct DomainService {
    store: Store,
    hosting: HostingSection,
    dns: Option<Dns>,
}

fn parse_mode(raw: &str) -> Result<Mode, DomainError> {
    raw.parse()
        .map_err(|e: stsward_proto::mta_sts::Error| DomainError::Invalid {
            field: "mode",
            reason: e.to_string(),
        })
}

fn parse_max_age(secs: u64) -> Result<MaxAge, DomainError> {
    MaxAge::new(secs).map_err(|e| DomainError::Invalid {
        field: "max_age",
        reason: e.to_string(),
    })
}

fn parse_patterns(raw: &[String]) -> Result<Vec<MxPattern>, DomainError> {
    let mut out: Vec<MxPattern> = Vec::with_capacity(raw.len());
    for p in raw {
        let pattern: MxPattern =
            p.parse()
                .map_err(|e: stsward_proto::mta_sts::Error| DomainError::Invalid {
                    field: "mx",
                    reason: e.to_string(),
                })?;
        if !out.contains(&pattern) {
            out.push(pattern);
        }
    }
    Ok(out)
}

/// The policy from its parts, refused as `stsward policy lint` would refuse it; lint
/// findings below error severity come back as warnings.
fn build_policy(
    mode: Mode,
    max_age: MaxAge,
    mx: Vec<MxPattern>,
) -> Result<(Policy, Vec<Warning>), DomainError> {
    let policy = Policy::new(mode, max_age, mx).map_err(|e| DomainError::Invalid {
        field: "mx",
        reason: format!("{e} (a {mode} policy needs at least one mx pattern)"),
    })?;
    let text = policy.to_string();
    let checked = lint(text.as_bytes());
    let mut warnings = Vec::new();
    for f in &checked.findings {
        match f.severity {
            Severity::Error => {
                return Err(DomainError::Invalid {
                    field: "policy",
                    reason: format!("{}: {}", f.code, f.message),
                });
            }
            Severity::Warning => warnings.push(Warning::Lint {
                code: f.code.to_string(),
                message: f.message.clone(),
            }),
            _ => {}
        }
    }
    if checked.policy.as_ref() != Some(&policy) {
        return Err(DomainError::Invalid {
            field: "policy",
            reason: "the served text would not parse back to the same policy".into(),
        });
    }
    Ok((policy, warnings))
}

fn new_version(
    policy: &Policy,
    version: i64,
    actor: &str,
    now: i64,
    note: Option<String>,
) -> Result<(NewVersion, PolicyId), DomainError> {
    let id = id::policy_id(now, version).map_err(|e| DomainError::Invalid {
        field: "id",
        reason: e.to_string(),
    })?;
    Ok((
        NewVersion {
            mode: policy.mode().to_string(),
            mx: policy.mx().iter().map(ToString::to_string).collect(),
            max_age: i64::from(policy.max_age().as_secs()),
            policy: policy.to_string(),
            sts_id: id.to_string(),
            changed_by: actor.to_owned(),
            changed_at: now,
            note,
        },
        id,
    ))
}

/// The state at `now`: a removal whose time has come is gone, whether or not the scheduler
/// has recorded it yet.
fn state_at(d: &HostedDomain, now: i64) -> DomainState {
    match (d.state, d.remove_after) {
        (DomainState::Removing, Some(after)) if now >= after => DomainState::Gone,
        (state, _) => state,
    }
}

impl DomainService {
    /// A service over `store`, with the `[hosting]` names and a DNS client for MX lookups
    /// (`None`: `FromDns` is refused).
    pub fn new(store: Store, hosting: HostingSection, dns: Option<Dns>) -> Self {
        DomainService {
            store,
            hosting,
            dns,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The tenant the CLI acts as until there are users (issue 9).
    pub async fn default_tenant(&self, now: i64) -> Result<TenantId, DomainError> {
        Ok(self.store.tenant_default(now).await?.id)
    }

    /// The MX exchanges of `domain` as `mx` patterns, in preference order, without repeats.
    pub async fn mx_from_dns(&self, domain: &str) -> Result<Vec<MxPattern>, DomainError> {
        let dns = self.dns.as_ref().ok_or_else(|| DomainError::NoDns {
            domain: domain.into(),
        })?;
        let lookup = dns.mx(domain).await.map_err(|source| DomainError::Dns {
            domain: domain.into(),
            source: Box::new(source),
        })?;
        let records = match &lookup.answer {
            Answer::Records(r) => r,
            Answer::NxDomain => {
                return Err(DomainError::NoMx {
                    domain: domain.into(),
                    why: "the domain does not exist (NXDOMAIN)",
                });
            }
            Answer::NoData => {
                return Err(DomainError::NoMx {
                    domain: domain.into(),
                    why: "no MX records",
                });
            }
        };
        let mut out: Vec<MxPattern> = Vec::new();
        for mx in records {
            let host = mx.exchange.trim_end_matches('.');
            if host.is_empty() {
                // RFC 7505: a null MX says the domain accepts no mail.
                continue;
            }
            let pattern: MxPattern =
                host.parse()
                    .map_err(|e: stsward_proto::mta_sts::Error| DomainError::Invalid {
                        field: "mx",
                        reason: format!("the MX record {host:?} of {domain}: {e}"),
                    })?;
            if !out.contains(&pattern) {
                out.push(pattern);
            }
        }
        if out.is_empty() {
            return Err(DomainError::NoMx {
                domain: domain.into(),
                why: "a null MX: the domain accepts no mail",
            });
        }
        Ok(out)
    }

    async fn patterns(&self, domain: &str, input: &MxInput) -> Result<Vec<MxPattern>, DomainError> {
        match input {
            MxInput::Patterns(p) => parse_patterns(p),
            MxInput::FromDns => self.mx_from_dns(domain).await,
        }
    }

    /// Hosts a new domain for `tenant` with its first policy (version 1).
    pub async fn add(
        &self,
        tenant: TenantId,
        req: &AddDomain,
        actor: &str,
        now: i64,
    ) -> Result<Change, DomainError> {
        let domain = names::domain_name(&req.domain)?;
        let mode = parse_mode(req.mode.as_deref().unwrap_or("testing"))?;
        let max_age = parse_max_age(req.max_age.unwrap_or(u64::from(DEFAULT_MAX_AGE)))?;
        let mx = self
            .patterns(&domain, req.mx.as_ref().unwrap_or(&MxInput::FromDns))
            .await?;
        let (policy, warnings) = build_policy(mode, max_age, mx)?;
        let (first, _) = new_version(&policy, 1, actor, now, None)?;
        // A removal whose time has come frees the name even before the scheduler runs.
        self.store.hosted_domain_finish_removals(None, now).await?;
        let new = NewDomain {
            domain: domain.clone(),
            follow_mx: req.follow_mx,
            tlsrpt_rua: None,
            created_at: now,
        };
        let (_, version) = self.store.hosted_domain_add(tenant, &new, first).await?;
        Ok(Change {
            domain,
            version,
            changed: true,
            warnings,
        })
    }

    /// The live domains of `tenant`, by name.
    pub async fn list(
        &self,
        tenant: TenantId,
        now: i64,
    ) -> Result<Vec<DomainSummary>, DomainError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .hosted_domain_list_current(tenant, after.as_deref(), LIST_PAGE)
                .await?;
            let full = page.len() == LIST_PAGE as usize;
            after = page.last().map(|(d, _)| d.domain.clone());
            out.extend(page.into_iter().map(|(d, current)| DomainSummary {
                state: state_at(&d, now),
                gone_at: d.remove_after,
                mode: current.mode,
                version: current.version,
                id: current.sts_id,
                domain: d.domain,
            }));
            if !full {
                return Ok(out);
            }
        }
    }

    async fn live(&self, tenant: TenantId, domain: &str) -> Result<HostedDomain, DomainError> {
        self.store
            .hosted_domain_get(tenant, domain)
            .await?
            .ok_or_else(|| DomainError::NotFound {
                domain: domain.into(),
            })
    }

    /// The current policy, id, history, state and certificate of `domain`.
    pub async fn show(
        &self,
        tenant: TenantId,
        domain: &str,
        now: i64,
    ) -> Result<DomainDetail, DomainError> {
        let name = names::domain_name(domain)?;
        let d = self.live(tenant, &name).await?;
        let history = self
            .store
            .policy_versions(tenant, &name, MAX_HISTORY)
            .await?;
        let current = history
            .iter()
            .find(|v| v.version == d.current_version)
            .cloned()
            .ok_or_else(|| DomainError::NotFound {
                domain: name.clone(),
            })?;
        let certificate = self
            .store
            .certificate_get(&names::policy_host_name(&name))
            .await?
            .map(|c| CertificateSummary {
                name: c.name,
                state: c.state,
                not_after: c.not_after,
                last_error: c.last_error,
            });
        Ok(DomainDetail {
            state: state_at(&d, now),
            gone_at: d.remove_after,
            domain: d,
            current,
            history,
            certificate,
        })
    }

    /// The live, changeable domain and its current version.
    async fn changeable(
        &self,
        tenant: TenantId,
        domain: &str,
    ) -> Result<(HostedDomain, PolicyVersion, Policy), DomainError> {
        let d = self.live(tenant, domain).await?;
        if d.state == DomainState::Removing {
            return Err(DomainError::Removing {
                domain: d.domain,
                gone_at: d.remove_after.unwrap_or(0),
            });
        }
        let current = self
            .store
            .policy_version_current(tenant, domain)
            .await?
            .ok_or_else(|| DomainError::NotFound {
                domain: domain.into(),
            })?;
        let policy: Policy = current.policy.parse().map_err(|e| DomainError::Invalid {
            field: "policy",
            reason: format!("the stored version {} does not parse: {e}", current.version),
        })?;
        Ok((d, current, policy))
    }

    /// Writes `policy` as the version after `current`, with the dropped-pattern warning.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        tenant: TenantId,
        domain: &str,
        current: &PolicyVersion,
        old: &Policy,
        policy: &Policy,
        mut warnings: Vec<Warning>,
        actor: &str,
        now: i64,
        note: Option<String>,
    ) -> Result<Change, DomainError> {
        if policy == old {
            return Ok(Change {
                domain: domain.into(),
                version: current.clone(),
                changed: false,
                warnings,
            });
        }
        let kept: HashSet<&MxPattern> = policy.mx().iter().collect();
        let dropped: Vec<String> = old
            .mx()
            .iter()
            .filter(|p| !kept.contains(p))
            .map(ToString::to_string)
            .collect();
        if old.mode() == Mode::Enforce && !dropped.is_empty() {
            warnings.insert(
                0,
                Warning::DroppedPatterns {
                    dropped,
                    version: current.version,
                    max_age: current.max_age,
                    cached_until: now.saturating_add(current.max_age),
                },
            );
        }
        let next = current.version.saturating_add(1);
        let (version, _) = new_version(policy, next, actor, now, note)?;
        let version = self
            .store
            .policy_version_add(tenant, domain, current.version, version, None)
            .await?;
        Ok(Change {
            domain: domain.into(),
            version,
            changed: true,
            warnings,
        })
    }

    /// Changes mode, `mx` and/or `max_age` as a new version (a fresh id); nothing changes
    /// when the result is the policy already served.
    pub async fn set(
        &self,
        tenant: TenantId,
        domain: &str,
        change: &PolicyChange,
        actor: &str,
        now: i64,
    ) -> Result<Change, DomainError> {
        let name = names::domain_name(domain)?;
        let (_, current, old) = self.changeable(tenant, &name).await?;
        let mode = match &change.mode {
            Some(m) => parse_mode(m)?,
            None => old.mode(),
        };
        let max_age = match change.max_age {
            Some(s) => parse_max_age(s)?,
            None => old.max_age(),
        };
        let mx = match &change.mx {
            Some(input) => self.patterns(&name, input).await?,
            None => old.mx().to_vec(),
        };
        let (mut policy, warnings) = build_policy(mode, max_age, mx)?;
        for ext in old.extensions() {
            policy = policy
                .with_extension(ext.clone())
                .map_err(|e| DomainError::Invalid {
                    field: "policy",
                    reason: e.to_string(),
                })?;
        }
        self.write(
            tenant,
            &name,
            &current,
            &old,
            &policy,
            warnings,
            actor,
            now,
            change.note.clone(),
        )
        .await
    }

    /// Rebuilds the `mx` lines from the MX records in DNS as a new version; nothing changes
    /// when they are the same.
    pub async fn sync_mx(
        &self,
        tenant: TenantId,
        domain: &str,
        actor: &str,
        now: i64,
    ) -> Result<Change, DomainError> {
        let change = PolicyChange {
            mx: Some(MxInput::FromDns),
            note: Some("mx synchronised from DNS".into()),
            ..PolicyChange::default()
        };
        self.set(tenant, domain, &change, actor, now).await
    }

    /// Starts the removal of RFC 8461 §8.3: a `mode: none` version with a fresh id and a
    /// one-day `max_age`, served until every earlier version has expired from senders'
    /// caches (see the module docs); then the domain is gone.
    pub async fn remove(
        &self,
        tenant: TenantId,
        domain: &str,
        actor: &str,
        now: i64,
    ) -> Result<Change, DomainError> {
        let name = names::domain_name(domain)?;
        let (_, current, old) = self.changeable(tenant, &name).await?;
        let history = self
            .store
            .policy_versions(tenant, &name, MAX_HISTORY)
            .await?;
        // History is newest first: each version was served until the next one's change.
        let mut served_until = now;
        let mut remove_after = now;
        for v in &history {
            remove_after = remove_after.max(served_until.saturating_add(v.max_age));
            served_until = v.changed_at;
        }
        let max_age = parse_max_age(u64::from(REMOVAL_MAX_AGE))?;
        let policy = Policy::new(Mode::None, max_age, old.mx().to_vec()).map_err(|e| {
            DomainError::Invalid {
                field: "policy",
                reason: e.to_string(),
            }
        })?;
        let next = current.version.saturating_add(1);
        let (version, _) = new_version(
            &policy,
            next,
            actor,
            now,
            Some("removal (RFC 8461 §8.3)".into()),
        )?;
        let version = self
            .store
            .policy_version_add(
                tenant,
                &name,
                current.version,
                version,
                Some(Transition {
                    state: DomainState::Removing,
                    remove_after: Some(remove_after),
                }),
            )
            .await?;
        Ok(Change {
            domain: name,
            version,
            changed: true,
            warnings: Vec::new(),
        })
    }

    /// Install-wide (the scheduler): marks gone every removal whose time has come.
    pub async fn finish_removals(&self, now: i64) -> Result<Vec<String>, DomainError> {
        Ok(self.store.hosted_domain_finish_removals(None, now).await?)
    }

    /// The exact records the customer publishes for `domain`, and those stsward answers.
    pub async fn records(&self, tenant: TenantId, domain: &str) -> Result<Records, DomainError> {
        let name = names::domain_name(domain)?;
        let d = self.live(tenant, &name).await?;
        let current = self
            .store
            .policy_version_current(tenant, &name)
            .await?
            .ok_or_else(|| DomainError::NotFound {
                domain: name.clone(),
            })?;
        records::build(&self.hosting, &d, &current)
    }

    /// Install-wide, for the DNS and HTTPS roles at start: every active domain and every
    /// removing one whose time has not come, with its current policy text and id.
    pub async fn snapshot(&self, now: i64) -> Result<Vec<ServedDomain>, DomainError> {
        let entries = self.store.hosting_snapshot().await?;
        Ok(entries
            .into_iter()
            .filter(|e| {
                !(e.state == DomainState::Removing && e.remove_after.is_some_and(|a| now >= a))
            })
            .map(|e| ServedDomain {
                tlsrpt_rua: e.tlsrpt_rua.or_else(|| self.hosting.tlsrpt_rua.clone()),
                domain: e.domain,
                state: e.state,
                version: e.version,
                id: e.sts_id,
                policy: e.policy,
                remove_after: e.remove_after,
            })
            .collect())
    }
}
