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
//! serving roles need ([`Store::hosting_snapshot`](crate::Store::hosting_snapshot), [`Store::hosted_domain_finish_removals`](crate::Store::hosted_domain_finish_removals)
//! with no tenant) say so in their names and docs.
//!
//! **Names are global.** DNS and HTTPS names belong to no tenant, so at most one row per name
//! is not `gone` (a partial unique index); a gone row keeps its history and the name can be
//! hosted again, as a new row.
//!
//! **Versions.** [`Store::policy_version_add`](crate::Store::policy_version_add) inserts version `expected + 1` and moves
//! `current_version` in one transaction, both guarded by `current_version = expected`. Two
//! writers (replicas) basing a change on the same version race on the `(domain_id, version)`
//! key: the database lets one win and the other gets [`StoreError::VersionConflict`]; nothing
//! is checked first and written after. History rows are never updated or deleted.
//!
//! The store validates sizes only; what a policy may say is the caller's business
//! (`stsward-server`'s domain service validates with `stsward-proto` before writing).

pub mod bulk;
pub mod certificates;
mod domains;
mod versions;

use std::fmt;
use std::str::FromStr;

use stsward_proto::mta_sts::MAX_POLICY_BYTES;
use stsward_proto::mta_sts::pattern::MAX_NAME_OCTETS;
use stsward_proto::mta_sts::record::MAX_ID_LEN;

use crate::error::{Field, StoreError};

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
    pub(crate) fn check_storable(&self) -> Result<(), StoreError> {
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

    pub(crate) fn version(self, version: i64) -> PolicyVersion {
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
pub(crate) fn join_mx(mx: &[String]) -> String {
    mx.join("\n")
}

pub(crate) fn split_mx(stored: &str) -> Vec<String> {
    stored
        .split('\n')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) type DomainRow = (
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

pub(crate) const DOMAIN_COLUMNS: &str = "id, tenant_id, domain, created_at, state, follow_mx, tlsrpt_rua, remove_after, current_version";

pub(crate) fn domain_from(row: DomainRow) -> Result<HostedDomain, StoreError> {
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

pub(crate) type VersionRow = (
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

pub(crate) const VERSION_COLUMNS: &str = "v.version, v.mode, v.mx, v.max_age, v.policy, v.sts_id, \
     v.changed_by, v.changed_at, v.note";

pub(crate) fn version_from(row: VersionRow) -> PolicyVersion {
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
