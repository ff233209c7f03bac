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

mod cert_view;
mod error;
pub mod id;
pub mod import;
mod input;
pub mod names;
pub mod records;
pub mod verify;
mod views;

use std::collections::HashSet;

use stsward_net::dns::{Answer, Dns};
use stsward_proto::mta_sts::{Mode, MxPattern, Policy};
use stsward_store::hosting::bulk::MAX_BATCH;
use stsward_store::{
    DomainState, HostedDomain, NewDomain, PolicyVersion, Store, TenantId, Transition,
};

use crate::config::HostingSection;
pub use error::{DomainError, format_time};
pub use input::{AddDomain, DomainOptions, MxInput, PolicyChange};
use input::{build_policy, new_version, parse_max_age, parse_mode, parse_patterns};
pub use names::NameError;
pub use records::{DnsRecord, Records};
pub use verify::{RecordCheck, RecordState, Verification};
pub use views::{
    CertificateLive, CertificateSummary, Change, DomainDetail, DomainSummary, FETCH_WINDOW_DAYS,
    ImportWarning, Imported, ServedDomain, SkippedLine, Warning,
};

/// The default `max_age` of a new domain: one week (RFC 8461 §3.2 expects "weeks or greater").
pub const DEFAULT_MAX_AGE: u32 = 604_800;
/// The `max_age` of the `mode: none` version of a removal (RFC 8461 §8.3 step 1: "a small
/// "max_age" (e.g., one day)").
pub const REMOVAL_MAX_AGE: u32 = 86_400;
/// Most versions read back for `show` and for computing a removal's end.
pub const MAX_HISTORY: u32 = 100_000;
/// Domains read per store query while listing (keyset pages).
pub const LIST_PAGE: u32 = 1000;
/// Who the scheduler's changes are recorded as (`changed_by`).
pub const SCHEDULER_ACTOR: &str = "scheduler";
/// The history note of a version the scheduler made by following the MX records.
pub const FOLLOW_MX_NOTE: &str = "mx followed from DNS by the scheduler";

/// Days since 1970-01-01 of the UTC day holding `at` (epoch seconds), as fetch counts are
/// keyed.
pub fn epoch_day(at: i64) -> i64 {
    at.div_euclid(86_400)
}

/// The service: the store, the hosting names, and a DNS client for MX lookups.
#[derive(Clone, Debug)]
pub struct DomainService {
    store: Store,
    hosting: HostingSection,
    dns: Option<Dns>,
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

    /// `domain import`: hosts every domain of the import file `text` (format: [`import`])
    /// for `tenant`, each with its first policy (version 1). Every line is validated first:
    /// a bad line fails the whole import ([`DomainError::Import`]) and nothing is written.
    /// A domain hosted already (by any tenant) is skipped and reported, not changed.
    ///
    /// Writes go in transactions of [`MAX_BATCH`] domains. Should the database fail in the
    /// middle, the batches before stay written and the error says so; running the same
    /// import again skips them, so an import can always be finished by repeating it.
    pub async fn import(
        &self,
        tenant: TenantId,
        text: &str,
        defaults: &import::ImportDefaults,
        actor: &str,
        now: i64,
    ) -> Result<Imported, DomainError> {
        let lines = import::parse(text, defaults)
            .map_err(|(errors, total)| DomainError::Import { errors, total })?;
        // A removal whose time has come frees the name even before the scheduler runs.
        self.store.hosted_domain_finish_removals(None, now).await?;
        let mut out = Imported::default();
        for chunk in lines.chunks(MAX_BATCH) {
            let mut batch = Vec::with_capacity(chunk.len());
            for line in chunk {
                let (first, _) = new_version(&line.policy, 1, actor, now, None)?;
                batch.push((
                    NewDomain {
                        domain: line.domain.clone(),
                        follow_mx: line.follow_mx,
                        tlsrpt_rua: None,
                        created_at: now,
                    },
                    first,
                ));
            }
            let added = self
                .store
                .hosted_domains_add_many(tenant, &batch)
                .await
                .map_err(|source| DomainError::ImportStopped {
                    written: out.added,
                    at_line: chunk.first().map_or(0, |l| l.line),
                    source,
                })?;
            for (line, added) in chunk.iter().zip(added) {
                if added {
                    out.added += 1;
                    for w in &line.warnings {
                        match out.warnings.iter_mut().find(|k| &k.warning == w) {
                            Some(known) => known.domains += 1,
                            None => out.warnings.push(ImportWarning {
                                warning: w.clone(),
                                domains: 1,
                                first_line: line.line,
                            }),
                        }
                    }
                } else {
                    out.skipped.push(SkippedLine {
                        line: line.line,
                        domain: line.domain.clone(),
                    });
                }
            }
        }
        Ok(out)
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
                .list_page(tenant, after.as_deref(), LIST_PAGE, now)
                .await?;
            let full = page.len() == LIST_PAGE as usize;
            after = page.last().map(|d| d.domain.clone());
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }

    /// At most `limit` live domains of `tenant` whose names sort after `after`, by name (a
    /// keyset page: pass the last name of one page as `after` for the next).
    pub async fn list_page(
        &self,
        tenant: TenantId,
        after: Option<&str>,
        limit: u32,
        now: i64,
    ) -> Result<Vec<DomainSummary>, DomainError> {
        let page = self
            .store
            .hosted_domain_list_current(tenant, after, limit)
            .await?;
        Ok(page
            .into_iter()
            .map(|(d, current)| DomainSummary {
                state: state_at(&d, now),
                gone_at: d.remove_after,
                mode: current.mode,
                version: current.version,
                id: current.sts_id,
                domain: d.domain,
            })
            .collect())
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
        let stored = self
            .store
            .certificate_get(&names::policy_host_name(&name))
            .await?;
        let certificate_live = match cert_view::live(&self.store, &name, stored.as_ref(), now).await
        {
            Ok(live) => Some(live),
            Err(e) => {
                // The rest of `show` is still worth seeing; the log has the reason.
                tracing::warn!(domain = %name, error = %e, "certificate state unavailable");
                None
            }
        };
        let certificate = stored.map(|c| CertificateSummary {
            name: c.name,
            state: c.state,
            not_after: c.not_after,
            last_error: c.last_error,
        });
        let checks = self.store.domain_check_get(tenant, &name).await?;
        let since_day = epoch_day(now) - (FETCH_WINDOW_DAYS - 1);
        let fetches = self
            .store
            .policy_fetches_since(tenant, &name, since_day)
            .await?;
        Ok(DomainDetail {
            state: state_at(&d, now),
            gone_at: d.remove_after,
            domain: d,
            current,
            history,
            certificate,
            certificate_live,
            checks,
            fetches,
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

    /// Changes the per-domain options (MX follow mode, `rua` override); the policy and its
    /// id stay as they are. Returns the domain as stored now.
    pub async fn set_options(
        &self,
        tenant: TenantId,
        domain: &str,
        options: &DomainOptions,
    ) -> Result<HostedDomain, DomainError> {
        let name = names::domain_name(domain)?;
        let d = self.live(tenant, &name).await?;
        let follow_mx = options.follow_mx.unwrap_or(d.follow_mx);
        let rua = match &options.tlsrpt_rua {
            Some(Some(rua)) => {
                crate::config::check_rua(rua).map_err(|reason| DomainError::Invalid {
                    field: "tlsrpt_rua",
                    reason,
                })?;
                Some(rua.trim().to_owned())
            }
            Some(None) => None,
            None => d.tlsrpt_rua.clone(),
        };
        self.store
            .hosted_domain_set_options(tenant, &name, follow_mx, rua.as_deref())
            .await?;
        if let Some(own) = options.own_sts_txt {
            // Due at once (epoch 0 has passed for every clock): the first check of a TXT
            // the owner just said it keeps should not wait a whole round.
            self.store
                .domain_set_own_sts_txt(tenant, &name, own, 0)
                .await?;
        }
        self.live(tenant, &name).await
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

    /// The scheduler's MX follow (opt-in per domain): looks up the MX records and, when the
    /// hosts differ from the current `mx` lines (as sets: the order DNS gives is not a
    /// change), makes a new version with them as [`DomainService::sync_mx`] does, through
    /// the same [`DomainService::set`], recorded as `actor`. `Ok(None)`: in step, nothing
    /// written. A failed lookup, NXDOMAIN, no MX records or a null MX is an error, and
    /// nothing is written: a resolver hiccup must never rewrite a policy.
    pub async fn follow_mx(
        &self,
        tenant: TenantId,
        domain: &str,
        actor: &str,
        now: i64,
    ) -> Result<Option<Change>, DomainError> {
        let name = names::domain_name(domain)?;
        let found = self.mx_from_dns(&name).await?;
        let (_, _, old) = self.changeable(tenant, &name).await?;
        let served: HashSet<&MxPattern> = old.mx().iter().collect();
        let seen: HashSet<&MxPattern> = found.iter().collect();
        if served == seen {
            return Ok(None);
        }
        let change = PolicyChange {
            mx: Some(MxInput::Patterns(
                found.iter().map(ToString::to_string).collect(),
            )),
            note: Some(FOLLOW_MX_NOTE.into()),
            ..PolicyChange::default()
        };
        self.set(tenant, &name, &change, actor, now).await.map(Some)
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
        let (d, current) = self.live_current(tenant, domain).await?;
        records::build(&self.hosting, &d, &current)
    }

    /// A live domain of `tenant` and its current version.
    async fn live_current(
        &self,
        tenant: TenantId,
        domain: &str,
    ) -> Result<(HostedDomain, PolicyVersion), DomainError> {
        let name = names::domain_name(domain)?;
        let d = self.live(tenant, &name).await?;
        let current = self
            .store
            .policy_version_current(tenant, &name)
            .await?
            .ok_or_else(|| DomainError::NotFound {
                domain: name.clone(),
            })?;
        Ok((d, current))
    }

    /// `domain verify`: looks up the records [`DomainService::records`] names and says which
    /// are in place (see [`verify`]). Needs the DNS client.
    pub async fn verify(
        &self,
        tenant: TenantId,
        domain: &str,
    ) -> Result<Verification, DomainError> {
        let dns = self.dns.as_ref().ok_or_else(|| DomainError::NoDns {
            domain: domain.to_owned(),
        })?;
        let (d, current) = self.live_current(tenant, domain).await?;
        let records = records::build(&self.hosting, &d, &current)?;
        let rua = d
            .tlsrpt_rua
            .clone()
            .or_else(|| self.hosting.tlsrpt_rua.clone());
        Ok(verify::verify(
            dns,
            &records,
            &current.sts_id,
            rua.as_deref(),
            &self.hosting.policy_host_addrs,
        )
        .await)
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
