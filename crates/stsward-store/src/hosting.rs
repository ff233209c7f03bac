//! Hosted MTA-STS: tenants, their domains, and every policy version each domain served
//! (RFC 8461 §3.1 TXT `id`, §3.2 policy, §8.3 removal). Certificates and ACME accounts are
//! in [`certificates`].
//!
//! ```text
//! tenants          id, name, created_at
//! hosted_domains   id, tenant_id, domain, created_at, state, follow_mx, tlsrpt_rua,
//!                  remove_after, current_version
//! policy_versions  (domain_id, version) key, mode, mx, max_age, policy, sts_id,
//!                  changed_by, changed_at, note          append-only
//! ```
//!
//! **Tenants.** Every query on domain data takes the tenant: a domain of another tenant is
//! "not hosted" to the caller, for reading and for writing. The install-wide reads the
//! serving roles need ([`Store::hosting_snapshot`], [`Store::hosted_domain_finish_removals`]
//! with no tenant) say so in their names and docs.
//!
//! **Names are global.** DNS and HTTPS names belong to no tenant, so at most one row per name
//! is not `gone` (a partial unique index); a gone row keeps its history and the name can be
//! hosted again, as a new row.
//!
//! **Versions.** [`Store::policy_version_add`] inserts version `expected + 1` and moves
//! `current_version` in one transaction, both guarded by `current_version = expected`. Two
//! writers (replicas) basing a change on the same version race on the `(domain_id, version)`
//! key: the database lets one win and the other gets [`StoreError::VersionConflict`]; nothing
//! is checked first and written after. History rows are never updated or deleted.
//!
//! The store validates sizes only; what a policy may say is the caller's business
//! (`stsward-server`'s domain service validates with `stsward-proto` before writing).

pub mod certificates;

use std::fmt;
use std::str::FromStr;

use stsward_proto::mta_sts::MAX_POLICY_BYTES;
use stsward_proto::mta_sts::pattern::MAX_NAME_OCTETS;
use stsward_proto::mta_sts::record::MAX_ID_LEN;

use crate::error::{Field, Operation, StoreError};
use crate::store::{Store, with_pool};

/// The name of the tenant the CLI uses until there are users (issue 9).
pub const DEFAULT_TENANT: &str = "default";

/// Longest tenant name, actor (`changed_by`), note, or `rua` the store accepts, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// A tenant's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TenantId(pub i64);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A tenant: the owner of domains.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its unique name.
    pub name: String,
    /// When it was created, epoch seconds.
    pub created_at: i64,
}

/// Where a hosted domain is in its life (RFC 8461 §8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainState {
    /// Served with its current policy.
    Active,
    /// Serving `mode: none` until `remove_after` (RFC 8461 §8.3 steps 1–2).
    Removing,
    /// No longer served (§8.3 step 3); kept for its history.
    Gone,
}

impl DomainState {
    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Removing => "removing",
            Self::Gone => "gone",
        }
    }
}

impl FromStr for DomainState {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "removing" => Ok(Self::Removing),
            "gone" => Ok(Self::Gone),
            other => Err(StoreError::Corrupt {
                field: Field::State,
                value: other.chars().take(32).collect(),
            }),
        }
    }
}

impl fmt::Display for DomainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One hosted domain, as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HostedDomain {
    /// The row id (stable for the row's life; a re-hosted name gets a new one).
    pub id: i64,
    /// The owner.
    pub tenant: TenantId,
    /// The policy domain: A-labels, lowercase, no trailing dot.
    pub domain: String,
    /// When it was added, epoch seconds.
    pub created_at: i64,
    /// Active, removing or gone.
    pub state: DomainState,
    /// Whether the scheduler rebuilds the `mx` lines from DNS (opt-in).
    pub follow_mx: bool,
    /// The `rua` published at `_smtp._tls` for this domain, when not the install's default.
    pub tlsrpt_rua: Option<String>,
    /// When a removing domain may go (epoch seconds), RFC 8461 §8.3 step 3.
    pub remove_after: Option<i64>,
    /// The version being served.
    pub current_version: i64,
}

/// A new domain's settings (its first policy is a [`NewVersion`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDomain {
    /// A-labels, lowercase, no trailing dot.
    pub domain: String,
    /// See [`HostedDomain::follow_mx`].
    pub follow_mx: bool,
    /// See [`HostedDomain::tlsrpt_rua`].
    pub tlsrpt_rua: Option<String>,
    /// Epoch seconds.
    pub created_at: i64,
}

/// One policy version, as stored (append-only).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PolicyVersion {
    /// 1, 2, 3, … per domain.
    pub version: i64,
    /// `testing`, `enforce` or `none` (RFC 8461 §3.2).
    pub mode: String,
    /// The `mx` patterns, in policy order.
    pub mx: Vec<String>,
    /// `max_age`, seconds.
    pub max_age: i64,
    /// The policy text exactly as served (the proto `Policy`'s `Display`).
    pub policy: String,
    /// The `_mta-sts` TXT `id` of this version (RFC 8461 §3.1).
    pub sts_id: String,
    /// Who made the change.
    pub changed_by: String,
    /// When, epoch seconds.
    pub changed_at: i64,
    /// Why, when given.
    pub note: Option<String>,
}

/// A version to add: [`PolicyVersion`] without its number, which the store assigns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVersion {
    /// See [`PolicyVersion::mode`].
    pub mode: String,
    /// See [`PolicyVersion::mx`].
    pub mx: Vec<String>,
    /// See [`PolicyVersion::max_age`].
    pub max_age: i64,
    /// See [`PolicyVersion::policy`].
    pub policy: String,
    /// See [`PolicyVersion::sts_id`].
    pub sts_id: String,
    /// See [`PolicyVersion::changed_by`].
    pub changed_by: String,
    /// See [`PolicyVersion::changed_at`].
    pub changed_at: i64,
    /// See [`PolicyVersion::note`].
    pub note: Option<String>,
}

impl NewVersion {
    fn check_storable(&self) -> Result<(), StoreError> {
        for p in &self.mx {
            bounded(Field::Mx, p, MAX_NAME_OCTETS + 2)?;
        }
        bounded(Field::Mode, &self.mode, 16)?;
        bounded(Field::Policy, &self.policy, MAX_POLICY_BYTES)?;
        bounded(Field::StsId, &self.sts_id, MAX_ID_LEN)?;
        bounded(Field::ChangedBy, &self.changed_by, MAX_TEXT_BYTES)?;
        if let Some(note) = &self.note {
            bounded(Field::Note, note, MAX_TEXT_BYTES)?;
        }
        Ok(())
    }

    fn version(self, version: i64) -> PolicyVersion {
        PolicyVersion {
            version,
            mode: self.mode,
            mx: self.mx,
            max_age: self.max_age,
            policy: self.policy,
            sts_id: self.sts_id,
            changed_by: self.changed_by,
            changed_at: self.changed_at,
            note: self.note,
        }
    }
}

/// A state change made in the same transaction as a new version (RFC 8461 §8.3: the
/// `mode: none` version and the start of the removal are one step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The new state.
    pub state: DomainState,
    /// The new `remove_after`.
    pub remove_after: Option<i64>,
}

/// What the serving roles load: one live domain and its current policy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotEntry {
    /// The owner.
    pub tenant: TenantId,
    /// The policy domain.
    pub domain: String,
    /// Active or removing.
    pub state: DomainState,
    /// See [`HostedDomain::tlsrpt_rua`].
    pub tlsrpt_rua: Option<String>,
    /// See [`HostedDomain::remove_after`].
    pub remove_after: Option<i64>,
    /// The current version.
    pub version: i64,
    /// Its `_mta-sts` id.
    pub sts_id: String,
    /// Its text, as served.
    pub policy: String,
}

/// Refuses a value longer than `max` bytes or holding a NUL, naming the field.
pub(crate) fn bounded(field: Field, value: &str, max: usize) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::NulCharacter { field });
    }
    if value.len() > max {
        return Err(StoreError::TooLarge {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// Whether the database refused a row for a duplicate key.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// `mx` patterns are stored one per line (a pattern holds no whitespace).
fn join_mx(mx: &[String]) -> String {
    mx.join("\n")
}

fn split_mx(stored: &str) -> Vec<String> {
    stored
        .split('\n')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

type DomainRow = (
    i64,
    i64,
    String,
    i64,
    String,
    bool,
    Option<String>,
    Option<i64>,
    i64,
);

const DOMAIN_COLUMNS: &str = "id, tenant_id, domain, created_at, state, follow_mx, tlsrpt_rua, remove_after, current_version";

fn domain_from(row: DomainRow) -> Result<HostedDomain, StoreError> {
    let (id, tenant, domain, created_at, state, follow_mx, tlsrpt_rua, remove_after, current) = row;
    Ok(HostedDomain {
        id,
        tenant: TenantId(tenant),
        domain,
        created_at,
        state: state.parse()?,
        follow_mx,
        tlsrpt_rua,
        remove_after,
        current_version: current,
    })
}

type VersionRow = (
    i64,
    String,
    String,
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
);

const VERSION_COLUMNS: &str = "v.version, v.mode, v.mx, v.max_age, v.policy, v.sts_id, \
     v.changed_by, v.changed_at, v.note";

fn version_from(row: VersionRow) -> PolicyVersion {
    let (version, mode, mx, max_age, policy, sts_id, changed_by, changed_at, note) = row;
    PolicyVersion {
        version,
        mode,
        mx: split_mx(&mx),
        max_age,
        policy,
        sts_id,
        changed_by,
        changed_at,
        note,
    }
}

/// What a version insert found, before it is turned into a result.
enum Added {
    Done,
    /// The guarded insert matched no row: the domain is not this tenant's, or it moved on.
    NoRow,
}

impl Store {
    /// The default tenant ([`DEFAULT_TENANT`]), created at `now` by the first caller. Two
    /// callers at once get the same tenant.
    pub async fn tenant_default(&self, now: i64) -> Result<Tenant, StoreError> {
        const INSERT: &str =
            "INSERT INTO tenants (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
        const SELECT: &str = "SELECT id, name, created_at FROM tenants WHERE name = $1";
        let row = self
            .run(Operation::TenantDefault, async {
                with_pool!(self, pool => {
                    sqlx::query(INSERT).bind(DEFAULT_TENANT).bind(now).execute(pool).await?;
                    sqlx::query_as::<_, (i64, String, i64)>(SELECT)
                        .bind(DEFAULT_TENANT)
                        .fetch_one(pool)
                        .await
                })
            })
            .await?;
        Ok(Tenant {
            id: TenantId(row.0),
            name: row.1,
            created_at: row.2,
        })
    }

    /// Creates the tenant `name`; [`StoreError::TenantTaken`] when the name is in use.
    pub async fn tenant_create(&self, name: &str, now: i64) -> Result<Tenant, StoreError> {
        bounded(Field::TenantName, name, MAX_TEXT_BYTES)?;
        const SQL: &str = "INSERT INTO tenants (name, created_at) VALUES ($1, $2) RETURNING id";
        let result = self
            .run(Operation::TenantCreate, async {
                with_pool!(self, pool => {
                    match sqlx::query_as::<_, (i64,)>(SQL).bind(name).bind(now).fetch_one(pool).await {
                        Ok((id,)) => Ok(Some(id)),
                        Err(e) if is_unique_violation(&e) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
            })
            .await?;
        match result {
            Some(id) => Ok(Tenant {
                id: TenantId(id),
                name: name.to_owned(),
                created_at: now,
            }),
            None => Err(StoreError::TenantTaken { name: name.into() }),
        }
    }

    /// Hosts `domain` for `tenant` with `first` as version 1, in one transaction.
    /// [`StoreError::DomainTaken`] when the name is hosted already, by any tenant (which one
    /// is not said).
    pub async fn hosted_domain_add(
        &self,
        tenant: TenantId,
        domain: &NewDomain,
        first: NewVersion,
    ) -> Result<(HostedDomain, PolicyVersion), StoreError> {
        bounded(Field::Domain, &domain.domain, MAX_NAME_OCTETS)?;
        if let Some(rua) = &domain.tlsrpt_rua {
            bounded(Field::Rua, rua, MAX_TEXT_BYTES)?;
        }
        first.check_storable()?;
        const INSERT_DOMAIN: &str = "INSERT INTO hosted_domains \
             (tenant_id, domain, created_at, state, follow_mx, tlsrpt_rua, remove_after, \
              current_version) \
             VALUES ($1, $2, $3, 'active', $4, $5, NULL, 1) RETURNING id";
        const INSERT_VERSION: &str = "INSERT INTO policy_versions \
             (domain_id, version, mode, mx, max_age, policy, sts_id, changed_by, changed_at, note) \
             VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let mx = join_mx(&first.mx);
        let id = self
            .run(Operation::HostedDomainAdd, async {
                with_pool!(self, pool => {
                    let mut tx = pool.begin().await?;
                    let inserted = sqlx::query_as::<_, (i64,)>(INSERT_DOMAIN)
                        .bind(tenant.0)
                        .bind(&domain.domain)
                        .bind(domain.created_at)
                        .bind(domain.follow_mx)
                        .bind(&domain.tlsrpt_rua)
                        .fetch_one(&mut *tx)
                        .await;
                    let id = match inserted {
                        Ok((id,)) => id,
                        Err(e) if is_unique_violation(&e) => return Ok(None),
                        Err(e) => return Err(e),
                    };
                    sqlx::query(INSERT_VERSION)
                        .bind(id)
                        .bind(&first.mode)
                        .bind(&mx)
                        .bind(first.max_age)
                        .bind(&first.policy)
                        .bind(&first.sts_id)
                        .bind(&first.changed_by)
                        .bind(first.changed_at)
                        .bind(&first.note)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(Some(id))
                })
            })
            .await?;
        let Some(id) = id else {
            return Err(StoreError::DomainTaken {
                domain: domain.domain.clone(),
            });
        };
        let stored = HostedDomain {
            id,
            tenant,
            domain: domain.domain.clone(),
            created_at: domain.created_at,
            state: DomainState::Active,
            follow_mx: domain.follow_mx,
            tlsrpt_rua: domain.tlsrpt_rua.clone(),
            remove_after: None,
            current_version: 1,
        };
        Ok((stored, first.version(1)))
    }

    /// The live (not gone) domain `domain` of `tenant`; `None` when the tenant hosts no such
    /// domain, including when another tenant does.
    pub async fn hosted_domain_get(
        &self,
        tenant: TenantId,
        domain: &str,
    ) -> Result<Option<HostedDomain>, StoreError> {
        let sql = format!(
            "SELECT {DOMAIN_COLUMNS} FROM hosted_domains \
             WHERE tenant_id = $1 AND domain = $2 AND state <> 'gone'"
        );
        let row = self
            .run(Operation::HostedDomainGet, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, DomainRow>(&sql)
                        .bind(tenant.0)
                        .bind(domain)
                        .fetch_optional(pool)
                        .await
                })
            })
            .await?;
        row.map(domain_from).transpose()
    }

    /// The live domains of `tenant` ordered by name (bytewise), those after `after` when
    /// given, at most `limit`.
    pub async fn hosted_domain_list(
        &self,
        tenant: TenantId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<HostedDomain>, StoreError> {
        let sql = format!(
            "SELECT {DOMAIN_COLUMNS} FROM hosted_domains \
             WHERE tenant_id = $1 AND state <> 'gone' AND domain > $2 \
             ORDER BY domain LIMIT $3"
        );
        let rows = self
            .run(Operation::HostedDomainList, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, DomainRow>(&sql)
                        .bind(tenant.0)
                        .bind(after.unwrap_or(""))
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        rows.into_iter().map(domain_from).collect()
    }

    /// Changes the per-domain options of a live domain of `tenant`: the opt-in MX follow
    /// mode and the `rua` override. [`StoreError::DomainNotFound`] when the tenant hosts no
    /// such domain.
    pub async fn hosted_domain_set_options(
        &self,
        tenant: TenantId,
        domain: &str,
        follow_mx: bool,
        tlsrpt_rua: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some(rua) = tlsrpt_rua {
            bounded(Field::Rua, rua, MAX_TEXT_BYTES)?;
        }
        const SQL: &str = "UPDATE hosted_domains SET follow_mx = $3, tlsrpt_rua = $4 \
             WHERE tenant_id = $1 AND domain = $2 AND state <> 'gone'";
        let changed = self
            .run(Operation::HostedDomainSetOptions, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL)
                        .bind(tenant.0)
                        .bind(domain)
                        .bind(follow_mx)
                        .bind(tlsrpt_rua)
                        .execute(pool)
                        .await
                        .map(|done| done.rows_affected())
                })
            })
            .await?;
        if changed == 0 {
            return Err(StoreError::DomainNotFound {
                domain: domain.into(),
            });
        }
        Ok(())
    }

    /// Adds version `expected + 1` to the live domain `domain` of `tenant` and makes it
    /// current (with `transition`, when given), in one transaction. Only when
    /// `expected` is still the current version: otherwise, and when another writer adds the
    /// same version at the same time, [`StoreError::VersionConflict`] and nothing changes.
    /// [`StoreError::DomainNotFound`] when the tenant hosts no such domain.
    pub async fn policy_version_add(
        &self,
        tenant: TenantId,
        domain: &str,
        expected: i64,
        version: NewVersion,
        transition: Option<Transition>,
    ) -> Result<PolicyVersion, StoreError> {
        version.check_storable()?;
        let next = expected.checked_add(1).ok_or(StoreError::VersionConflict {
            domain: domain.into(),
            expected,
        })?;
        // The row is selected by tenant, name and expected version in the INSERT itself, so
        // a domain of another tenant or a stale `expected` inserts nothing.
        const INSERT: &str = "INSERT INTO policy_versions \
             (domain_id, version, mode, mx, max_age, policy, sts_id, changed_by, changed_at, note) \
             SELECT id, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM hosted_domains \
             WHERE tenant_id = $1 AND domain = $2 AND state <> 'gone' AND current_version = $3";
        const MOVE: &str = "UPDATE hosted_domains SET current_version = $4 \
             WHERE tenant_id = $1 AND domain = $2 AND state <> 'gone' AND current_version = $3";
        const MOVE_AND_TRANSITION: &str = "UPDATE hosted_domains \
             SET current_version = $4, state = $5, remove_after = $6 \
             WHERE tenant_id = $1 AND domain = $2 AND state <> 'gone' AND current_version = $3";
        let mx = join_mx(&version.mx);
        let added = self
            .run(Operation::PolicyVersionAdd, async {
                with_pool!(self, pool => {
                    let mut tx = pool.begin().await?;
                    let inserted = sqlx::query(INSERT)
                        .bind(tenant.0)
                        .bind(domain)
                        .bind(expected)
                        .bind(next)
                        .bind(&version.mode)
                        .bind(&mx)
                        .bind(version.max_age)
                        .bind(&version.policy)
                        .bind(&version.sts_id)
                        .bind(&version.changed_by)
                        .bind(version.changed_at)
                        .bind(&version.note)
                        .execute(&mut *tx)
                        .await;
                    match inserted {
                        Ok(done) if done.rows_affected() == 1 => {}
                        Ok(_) => return Ok(Added::NoRow),
                        // Another writer inserted the same version first.
                        Err(e) if is_unique_violation(&e) => return Ok(Added::NoRow),
                        Err(e) => return Err(e),
                    }
                    let moved = match transition {
                        None => {
                            sqlx::query(MOVE)
                                .bind(tenant.0)
                                .bind(domain)
                                .bind(expected)
                                .bind(next)
                                .execute(&mut *tx)
                                .await?
                        }
                        Some(t) => {
                            sqlx::query(MOVE_AND_TRANSITION)
                                .bind(tenant.0)
                                .bind(domain)
                                .bind(expected)
                                .bind(next)
                                .bind(t.state.as_str())
                                .bind(t.remove_after)
                                .execute(&mut *tx)
                                .await?
                        }
                    };
                    if moved.rows_affected() != 1 {
                        // Dropping the transaction rolls the insert back.
                        return Ok(Added::NoRow);
                    }
                    tx.commit().await?;
                    Ok(Added::Done)
                })
            })
            .await?;
        match added {
            Added::Done => Ok(version.version(next)),
            Added::NoRow => match self.hosted_domain_get(tenant, domain).await? {
                None => Err(StoreError::DomainNotFound {
                    domain: domain.into(),
                }),
                Some(_) => Err(StoreError::VersionConflict {
                    domain: domain.into(),
                    expected,
                }),
            },
        }
    }

    /// The policy versions of the live domain `domain` of `tenant`, newest first, at most
    /// `limit`; empty when the tenant hosts no such domain.
    pub async fn policy_versions(
        &self,
        tenant: TenantId,
        domain: &str,
        limit: u32,
    ) -> Result<Vec<PolicyVersion>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM policy_versions v \
             JOIN hosted_domains d ON d.id = v.domain_id \
             WHERE d.tenant_id = $1 AND d.domain = $2 AND d.state <> 'gone' \
             ORDER BY v.version DESC LIMIT $3"
        );
        let rows = self
            .run(Operation::PolicyVersions, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, VersionRow>(&sql)
                        .bind(tenant.0)
                        .bind(domain)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows.into_iter().map(version_from).collect())
    }

    /// The current policy version of the live domain `domain` of `tenant`.
    pub async fn policy_version_current(
        &self,
        tenant: TenantId,
        domain: &str,
    ) -> Result<Option<PolicyVersion>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM policy_versions v \
             JOIN hosted_domains d ON d.id = v.domain_id AND v.version = d.current_version \
             WHERE d.tenant_id = $1 AND d.domain = $2 AND d.state <> 'gone'"
        );
        let row = self
            .run(Operation::PolicyVersionCurrent, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, VersionRow>(&sql)
                        .bind(tenant.0)
                        .bind(domain)
                        .fetch_optional(pool)
                        .await
                })
            })
            .await?;
        Ok(row.map(version_from))
    }

    /// Marks `gone` every removing domain whose `remove_after` is at or before `now` (RFC
    /// 8461 §8.3 step 3): those of `tenant`, or install-wide (the scheduler) when `None`.
    /// Returns their names.
    pub async fn hosted_domain_finish_removals(
        &self,
        tenant: Option<TenantId>,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "UPDATE hosted_domains SET state = 'gone' \
             WHERE state = 'removing' AND remove_after <= $1 \
             AND ($2 IS NULL OR tenant_id = $2) RETURNING domain";
        let mut gone = self
            .run(Operation::HostedDomainFinishRemovals, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (String,)>(SQL)
                        .bind(now)
                        .bind(tenant.map(|t| t.0))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        gone.sort();
        Ok(gone.into_iter().map(|(d,)| d).collect())
    }

    /// Marks `domain` gone when its removal's time has come (at or before `now`), whichever
    /// tenant removed it: names are global, and a name whose removal is over is free for
    /// anyone to host. `true` when it was marked.
    pub async fn hosted_domain_finish_removal(
        &self,
        domain: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE hosted_domains SET state = 'gone' \
             WHERE domain = $1 AND state = 'removing' AND remove_after <= $2";
        self.run(Operation::HostedDomainFinishRemovals, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(domain)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected() > 0)
            })
        })
        .await
    }

    /// The live domains of `tenant` with their current version, ordered by name, those
    /// after `after` when given, at most `limit` (one query, for listings).
    pub async fn hosted_domain_list_current(
        &self,
        tenant: TenantId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(HostedDomain, PolicyVersion)>, StoreError> {
        let sql = format!(
            "SELECT d.id, d.tenant_id, d.domain, d.created_at, d.state, d.follow_mx, \
             d.tlsrpt_rua, d.remove_after, d.current_version, {VERSION_COLUMNS} \
             FROM hosted_domains d \
             JOIN policy_versions v ON v.domain_id = d.id AND v.version = d.current_version \
             WHERE d.tenant_id = $1 AND d.state <> 'gone' AND d.domain > $2 \
             ORDER BY d.domain LIMIT $3"
        );
        type Row = (DomainRow, VersionRow);
        let rows = self
            .run(Operation::HostedDomainList, async {
                with_pool!(self, pool => {
                    sqlx::query(&sql)
                        .bind(tenant.0)
                        .bind(after.unwrap_or(""))
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                        .and_then(|rows| {
                            rows.iter().map(|r| -> Result<Row, sqlx::Error> {
                                use sqlx::Row as _;
                                Ok((
                                    (
                                        r.try_get(0)?, r.try_get(1)?, r.try_get(2)?,
                                        r.try_get(3)?, r.try_get(4)?, r.try_get(5)?,
                                        r.try_get(6)?, r.try_get(7)?, r.try_get(8)?,
                                    ),
                                    (
                                        r.try_get(9)?, r.try_get(10)?, r.try_get(11)?,
                                        r.try_get(12)?, r.try_get(13)?, r.try_get(14)?,
                                        r.try_get(15)?, r.try_get(16)?, r.try_get(17)?,
                                    ),
                                ))
                            })
                            .collect::<Result<Vec<Row>, sqlx::Error>>()
                        })
                })
            })
            .await?;
        rows.into_iter()
            .map(|(d, v)| Ok((domain_from(d)?, version_from(v))))
            .collect()
    }

    /// Install-wide, for the serving roles (DNS and HTTPS) at start: every active or removing
    /// domain of every tenant with its current policy, ordered by domain.
    pub async fn hosting_snapshot(&self) -> Result<Vec<SnapshotEntry>, StoreError> {
        const SQL: &str = "SELECT d.tenant_id, d.domain, d.state, d.tlsrpt_rua, d.remove_after, \
             v.version, v.sts_id, v.policy FROM hosted_domains d \
             JOIN policy_versions v ON v.domain_id = d.id AND v.version = d.current_version \
             WHERE d.state <> 'gone' ORDER BY d.domain";
        type Row = (
            i64,
            String,
            String,
            Option<String>,
            Option<i64>,
            i64,
            String,
            String,
        );
        let rows = self
            .run(Operation::HostingSnapshot, async {
                with_pool!(self, pool => sqlx::query_as::<_, Row>(SQL).fetch_all(pool).await)
            })
            .await?;
        rows.into_iter()
            .map(
                |(tenant, domain, state, tlsrpt_rua, remove_after, version, sts_id, policy)| {
                    Ok(SnapshotEntry {
                        tenant: TenantId(tenant),
                        domain,
                        state: state.parse()?,
                        tlsrpt_rua,
                        remove_after,
                        version,
                        sts_id,
                        policy,
                    })
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mx_lines_round_trip() {
        let cases: &[&[&str]] = &[&[], &["mx.example"], &["*.example.net", "mx.example"]];
        for mx in cases {
            let owned: Vec<String> = mx.iter().map(|s| s.to_string()).collect();
            assert_eq!(split_mx(&join_mx(&owned)), owned);
        }
    }

    #[test]
    fn states_round_trip_and_unknown_is_corrupt() {
        for s in [
            DomainState::Active,
            DomainState::Removing,
            DomainState::Gone,
        ] {
            assert_eq!(s.as_str().parse::<DomainState>().expect("state"), s);
        }
        assert!(matches!(
            "deleted".parse::<DomainState>(),
            Err(StoreError::Corrupt {
                field: Field::State,
                ..
            })
        ));
    }
}
