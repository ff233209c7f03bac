//! Change propagation from the store to the policy host and the DNS, in the order RFC 8461
//! §8.1 asks for: "Recipients SHOULD also update the HTTPS policy body before updating the
//! TXT record".
//!
//! Every tick (`[replicas] poll_interval_ms`):
//!
//! 1. read the change log after the cursor (`Store::hosting_changes_since`, O(changes));
//! 2. for each changed domain, read what it serves now and put the new body in [`Sites`] at
//!    once; its DNS id stays as it was;
//! 3. heartbeat the cursor: this replica serves every change up to it;
//! 4. for each domain waiting to be published, move the DNS id once every replica seen in the
//!    last `heartbeat_expiry` seconds has applied the change that made that version
//!    (`Store::replica_min_applied`); with one replica (SQLite), that is this one;
//! 5. end every removal whose time has come (RFC 8461 §8.3 step 3): the TXT record goes, then
//!    the policy host; the domain answers NXDOMAIN and 404.
//!
//! A store error leaves what is served as it is; the loop logs it and retries with back-off.
//! A version whose change-log row has not been read yet waits for it: the id may lag the body,
//! never the reverse.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use rustls::sign::CertifiedKey;
use stsward_proto::mta_sts::PolicyId;
use stsward_store::{DomainState, SnapshotEntry, Store, StoreError};
use tokio::sync::watch;

use super::Clock;
use super::setup::rua_list;
use crate::dns::Zone;
use crate::domains::{DomainService, ServedDomain};
use crate::host::Sites;

/// Changes read per store query.
const CHANGE_PAGE: u32 = 1000;
/// The longest pause between attempts while the store fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A heartbeat is written at least this often, even with nothing new.
const HEARTBEAT_EVERY_MS: i64 = 1000;
/// How often removals are finished in the store and the change log is pruned.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);
/// How long a stopping replica tries to leave the `replicas` table (the others stop waiting
/// for it at once instead of after its heartbeat expiry).
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);
/// A replica row not seen for this long is deleted (its changes may then be pruned).
const FORGET_REPLICA_MS: i64 = 24 * 3600 * 1000;

/// One served domain.
#[derive(Debug)]
struct Entry {
    /// The version whose body the policy host serves.
    body_version: i64,
    /// The change-log position of that version, once read.
    body_seq: Option<i64>,
    /// Its id.
    id: String,
    /// The `rua` for `_smtp._tls` (`None`: the zone's default).
    rua: Option<String>,
    /// The version and id the DNS answers (`None`: not in the zone yet).
    published: Option<(i64, PolicyId)>,
}

/// Counts for the start-up log line.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Loaded {
    pub(super) domains: usize,
    pub(super) with_static_cert: usize,
}

/// The state that decides what is served; owned by one task.
pub(super) struct Propagator {
    pub(super) store: Store,
    pub(super) service: DomainService,
    pub(super) zone: std::sync::Arc<Zone>,
    pub(super) sites: Sites,
    pub(super) static_cert: Option<CertifiedKey>,
    pub(super) clock: Clock,
    pub(super) replica_id: String,
    pub(super) poll: Duration,
    pub(super) expiry_ms: i64,
    /// `[hosting] tlsrpt_rua`, for domains without their own.
    pub(super) default_rua: Option<String>,
    cursor: i64,
    heartbeat_cursor: i64,
    last_heartbeat_ms: i64,
    entries: HashMap<String, Entry>,
    pending: HashSet<String>,
    removing: HashMap<String, i64>,
}

impl Propagator {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        store: Store,
        service: DomainService,
        zone: std::sync::Arc<Zone>,
        sites: Sites,
        static_cert: Option<CertifiedKey>,
        clock: Clock,
        replica_id: String,
        poll: Duration,
        expiry_ms: i64,
        default_rua: Option<String>,
    ) -> Propagator {
        Propagator {
            store,
            service,
            zone,
            sites,
            static_cert,
            clock,
            replica_id,
            poll,
            expiry_ms,
            default_rua,
            cursor: 0,
            heartbeat_cursor: -1,
            last_heartbeat_ms: i64::MIN,
            entries: HashMap::new(),
            pending: HashSet::new(),
            removing: HashMap::new(),
        }
    }

    /// The start: the change position first, then the snapshot, so that any change between
    /// the two is read again (applying is idempotent). Serves every domain of the snapshot
    /// in the policy host and the DNS.
    pub(super) async fn load(&mut self) -> Result<Loaded, super::ServeError> {
        self.cursor = self.store.hosting_change_position().await?;
        let now = self.clock.now();
        let snapshot = self.service.snapshot(now).await?;
        let mut loaded = Loaded::default();
        let mut ids = Vec::with_capacity(snapshot.len());
        for d in snapshot {
            let id = match d.id.parse::<PolicyId>() {
                Ok(id) => id,
                Err(e) => {
                    tracing::error!(domain = %d.domain, id = %d.id, error = %e,
                        "the stored id is unusable; not serving the domain");
                    continue;
                }
            };
            if !self.serve_body(&d.domain, &d.policy, &mut loaded) {
                continue;
            }
            if d.state == DomainState::Removing
                && let Some(after) = d.remove_after
            {
                self.removing.insert(d.domain.clone(), after);
            }
            ids.push((d, id));
        }
        let ruas: Vec<Option<Vec<_>>> = ids
            .iter()
            .map(|(d, _)| d.tlsrpt_rua.as_deref().and_then(rua_list))
            .collect();
        self.zone.upsert_all(
            ids.iter()
                .zip(&ruas)
                .map(|((d, id), rua)| (d.domain.as_str(), id, rua.as_deref())),
        )?;
        for (d, published) in ids {
            let ServedDomain {
                domain,
                version,
                id,
                tlsrpt_rua,
                ..
            } = d;
            self.entries.insert(
                domain,
                Entry {
                    body_version: version,
                    body_seq: None,
                    id,
                    rua: tlsrpt_rua,
                    published: Some((version, published)),
                },
            );
            loaded.domains += 1;
        }
        let now_ms = self.clock.now_ms();
        self.heartbeat(now_ms).await?;
        Ok(loaded)
    }

    /// Puts `body` in the policy host (with the static certificate when it covers the name);
    /// `false` (logged) when the policy host refuses it.
    fn serve_body(&self, domain: &str, body: &str, loaded: &mut Loaded) -> bool {
        if let Err(e) = self.sites.upsert_policy(domain, body.to_owned()) {
            tracing::error!(domain, error = %e, "cannot serve the stored policy");
            return false;
        }
        if let Some(cert) = &self.static_cert
            && !self.entries.contains_key(domain)
        {
            match self
                .sites
                .set_certificate(&format!("mta-sts.{domain}"), cert.clone())
            {
                Ok(()) => loaded.with_static_cert += 1,
                Err(e) => {
                    tracing::debug!(domain, error = %e, "the [tls] certificate does not cover it");
                }
            }
        }
        true
    }

    /// Serves until `stop` turns true.
    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut delay = self.poll;
        let mut failing_since: Option<Instant> = None;
        let mut last_maintenance = Instant::now();
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                () = tokio::time::sleep(delay) => {}
            }
            if *stop.borrow() {
                break;
            }
            // A tick waits on the store (bounded by its deadline); a stop does not wait for it.
            let result = tokio::select! {
                _ = stop.changed() => break,
                r = self.tick() => r,
            };
            match result {
                Ok(()) => {
                    if let Some(since) = failing_since.take() {
                        tracing::info!(after = ?since.elapsed(), "the store answers again");
                    }
                    delay = self.poll;
                }
                Err(e) => {
                    if failing_since.is_none() {
                        failing_since = Some(Instant::now());
                    }
                    delay = (delay * 2).min(MAX_BACKOFF);
                    tracing::warn!(error = %e, retry_in = ?delay,
                        "store unavailable: serving what is in memory");
                }
            }
            self.sweep_removals();
            if last_maintenance.elapsed() >= MAINTENANCE_EVERY {
                last_maintenance = Instant::now();
                if let Err(e) = self.maintenance().await {
                    tracing::warn!(error = %e, "store maintenance failed");
                }
            }
        }
        match tokio::time::timeout(LEAVE_TIMEOUT, self.store.replica_leave(&self.replica_id)).await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not deregister this replica"),
            Err(_) => tracing::warn!("deregistering this replica timed out"),
        }
    }

    /// Steps 1–4 of the module docs.
    pub(super) async fn tick(&mut self) -> Result<(), StoreError> {
        loop {
            let batch = self
                .store
                .hosting_changes_since(self.cursor, CHANGE_PAGE)
                .await?;
            let Some(last) = batch.last().map(|c| c.seq) else {
                break;
            };
            let domains: BTreeSet<&str> = batch.iter().map(|c| c.domain.as_str()).collect();
            for domain in domains {
                let served = self.store.hosting_served(domain).await?;
                self.apply(domain, served);
            }
            for change in &batch {
                if let Some(e) = self.entries.get_mut(&change.domain)
                    && e.body_version == change.version
                {
                    e.body_seq = Some(change.seq);
                }
            }
            self.cursor = last;
            if batch.len() < CHANGE_PAGE as usize {
                break;
            }
        }
        let now_ms = self.clock.now_ms();
        self.heartbeat(now_ms).await?;
        if !self.pending.is_empty() {
            let (live_min, _) = self
                .store
                .replica_min_applied(now_ms.saturating_sub(self.expiry_ms))
                .await?;
            self.publish(live_min.unwrap_or(self.cursor).min(self.cursor));
        }
        Ok(())
    }

    async fn heartbeat(&mut self, now_ms: i64) -> Result<(), StoreError> {
        if self.cursor != self.heartbeat_cursor
            || now_ms.saturating_sub(self.last_heartbeat_ms) >= HEARTBEAT_EVERY_MS
        {
            self.store
                .replica_heartbeat(&self.replica_id, self.cursor, now_ms)
                .await?;
            self.heartbeat_cursor = self.cursor;
            self.last_heartbeat_ms = now_ms;
        }
        Ok(())
    }

    /// Step 2 for one domain: the body now, the id later.
    fn apply(&mut self, domain: &str, served: Option<SnapshotEntry>) {
        let now = self.clock.now();
        let Some(s) = served.filter(|s| {
            !(s.state == DomainState::Removing && s.remove_after.is_some_and(|a| now >= a))
        }) else {
            self.drop_domain(domain);
            return;
        };
        match (s.state, s.remove_after) {
            (DomainState::Removing, Some(after)) => {
                self.removing.insert(s.domain.clone(), after);
            }
            _ => {
                self.removing.remove(&s.domain);
            }
        }
        let same_body = self
            .entries
            .get(&s.domain)
            .is_some_and(|e| e.body_version == s.version);
        if !same_body {
            let mut loaded = Loaded::default();
            if !self.serve_body(&s.domain, &s.policy, &mut loaded) {
                return;
            }
            let entry = self.entries.entry(s.domain.clone()).or_insert(Entry {
                body_version: s.version,
                body_seq: None,
                id: s.sts_id.clone(),
                rua: None,
                published: None,
            });
            entry.body_version = s.version;
            entry.body_seq = None;
            entry.id = s.sts_id.clone();
            self.pending.insert(s.domain.clone());
            tracing::info!(domain = %s.domain, version = s.version, "serving a new policy body");
        }
        let rua = s.tlsrpt_rua.clone().or_else(|| self.default_rua.clone());
        if let Some(e) = self.entries.get_mut(&s.domain)
            && e.rua != rua
        {
            e.rua = rua;
            // The rua is not ordered against the body: it goes out with the published id.
            if let Some((_, id)) = &e.published {
                let parsed = e.rua.as_deref().and_then(rua_list);
                if let Err(err) = self.zone.upsert(&s.domain, id, parsed.as_deref()) {
                    tracing::error!(domain = %s.domain, error = %err, "cannot update the zone");
                }
            }
        }
    }

    /// Step 4: publish each waiting domain whose version every live replica serves.
    fn publish(&mut self, served_by_all: i64) {
        let ready: Vec<String> = self
            .pending
            .iter()
            .filter(|d| {
                self.entries
                    .get(d.as_str())
                    .and_then(|e| e.body_seq)
                    .is_some_and(|seq| seq <= served_by_all)
            })
            .cloned()
            .collect();
        for domain in ready {
            self.pending.remove(&domain);
            let Some(e) = self.entries.get_mut(&domain) else {
                continue;
            };
            let id = match e.id.parse::<PolicyId>() {
                Ok(id) => id,
                Err(err) => {
                    tracing::error!(%domain, id = %e.id, error = %err, "the stored id is unusable");
                    continue;
                }
            };
            let rua = e.rua.as_deref().and_then(rua_list);
            match self.zone.upsert(&domain, &id, rua.as_deref()) {
                Ok(serial) => {
                    e.published = Some((e.body_version, id));
                    tracing::info!(%domain, version = e.body_version, id = %e.id, serial,
                        "published the new id");
                }
                Err(err) => tracing::error!(%domain, error = %err, "cannot update the zone"),
            }
        }
    }

    /// Step 5: removals whose time has come, by this replica's clock, store or no store.
    fn sweep_removals(&mut self) {
        let now = self.clock.now();
        let due: Vec<String> = self
            .removing
            .iter()
            .filter(|(_, after)| now >= **after)
            .map(|(d, _)| d.clone())
            .collect();
        for domain in due {
            self.drop_domain(&domain);
        }
    }

    /// RFC 8461 §8.3 step 3: "safely remove the TXT record and HTTPS endpoint". The TXT goes
    /// first, so that no sender is sent to fetch a policy that is already gone.
    fn drop_domain(&mut self, domain: &str) {
        self.removing.remove(domain);
        self.pending.remove(domain);
        if self.entries.remove(domain).is_none() {
            return;
        }
        if let Err(e) = self.zone.remove(domain) {
            tracing::error!(domain, error = %e, "cannot remove from the zone");
        }
        // The policy goes; the certificate stays until it expires, so the host answers 404
        // over TLS ([`Sites::withdraw_policy`]; pruned in `maintenance`).
        if let Err(e) = self.sites.withdraw_policy(domain) {
            tracing::error!(domain, error = %e, "cannot remove from the policy host");
        }
        tracing::info!(domain, "no longer served (removal complete)");
    }

    /// Finishes removals in the store and prunes the change log every replica has applied.
    async fn maintenance(&mut self) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.sites.prune_withdrawn(now);
        if let Err(e) = self.service.finish_removals(now).await {
            tracing::warn!(error = %e, "finishing removals failed");
        }
        let (_, all_min) = self.store.replica_min_applied(i64::MIN).await?;
        if let Some(upto) = all_min {
            let forget = self.clock.now_ms().saturating_sub(FORGET_REPLICA_MS);
            self.store.hosting_changes_prune(upto, forget).await?;
        }
        Ok(())
    }
}
