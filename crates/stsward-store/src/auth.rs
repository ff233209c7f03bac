//! Who may act, and for which tenant: tenants (listing, by name), users with their password
//! hashes and roles, REST API bearer tokens (RFC 6750) stored as digests, and failed-login
//! counts for throttling (issue 9).
//!
//! ```text
//! users           id, tenant_id (NULL: install admin), name (unique), password_hash, role,
//!                 created_at, disabled
//! api_tokens      id, tenant_id, name, digest (unique), prefix, created_at, last_used_at,
//!                 revoked_at
//! login_failures  (scope, key, bucket) key, failures
//! ```
//!
//! **Tenants.** Every query on a tenant's users or tokens takes the tenant: another tenant's
//! rows are "not found" to the caller, for reading and for writing. The few install-wide
//! calls are the ones that find the tenant in the first place (a login by user name, a
//! token by its digest) or that only an install admin makes; they say so in their names and
//! docs.
//!
//! **Secrets.** The store never sees a password or a token: it keeps the argon2id PHC string
//! and the SHA-256 digest the caller (`stsward-server`'s `auth` module) computed.
//!
//! **Throttling.** Failures are counted in buckets of a few seconds per `(scope, key)`; the
//! count over a window is the sum of the buckets inside it, so every replica on one database
//! sees the same number, and the window slides by one bucket at a time.

mod tenants;
mod throttle;
mod tokens;
mod users;

use std::fmt;
use std::str::FromStr;

use crate::TenantId;
use crate::error::{Field, StoreError};

pub use throttle::LoginScope;

/// Longest user name, token name or throttling key the store accepts, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest password hash (PHC string) the store accepts, in bytes.
pub const MAX_HASH_BYTES: usize = 512;
/// Longest token prefix the store accepts, in bytes.
pub const MAX_PREFIX_BYTES: usize = 32;
/// The length of a token digest (SHA-256), in bytes.
pub const DIGEST_BYTES: usize = 32;

/// A user's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages its tenant's users and tokens; with no tenant, the whole install.
    Admin,
    /// Works with its tenant's domains.
    Member,
}

impl Role {
    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

impl FromStr for Role {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            other => Err(StoreError::Corrupt {
                field: Field::Role,
                value: other.chars().take(32).collect(),
            }),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    /// Its tenant; `None` for an install admin (then `role` must be [`Role::Admin`]).
    pub tenant: Option<TenantId>,
    /// Its name, unique across the install.
    pub name: String,
    /// The argon2id PHC string of its password.
    pub password_hash: String,
    /// Its role.
    pub role: Role,
    /// When, epoch seconds.
    pub created_at: i64,
}

/// A user, as stored. `Debug` leaves the password hash out.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its tenant; `None` for an install admin.
    pub tenant: Option<TenantId>,
    /// Its name.
    pub name: String,
    /// The argon2id PHC string of its password (never serialised).
    #[serde(skip)]
    pub password_hash: String,
    /// Its role.
    pub role: Role,
    /// When it was created, epoch seconds.
    pub created_at: i64,
    /// Whether it may no longer log in.
    pub disabled: bool,
}

impl User {
    /// Whether this user administers the whole install (an admin with no tenant).
    pub fn is_install_admin(&self) -> bool {
        self.tenant.is_none() && self.role == Role::Admin
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// An API token's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TokenId(pub i64);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A token to store: its digest, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    /// The tenant it acts for.
    pub tenant: TenantId,
    /// What its owner calls it.
    pub name: String,
    /// SHA-256 of the token ([`DIGEST_BYTES`] long).
    pub digest: Vec<u8>,
    /// The first characters of the token, to tell tokens apart.
    pub prefix: String,
    /// When, epoch seconds.
    pub created_at: i64,
}

/// An API token, as stored (no digest: nothing here helps guess the token).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApiToken {
    /// Its id.
    pub id: TokenId,
    /// The tenant it acts for.
    pub tenant: TenantId,
    /// What its owner calls it.
    pub name: String,
    /// The first characters of the token.
    pub prefix: String,
    /// When it was created, epoch seconds.
    pub created_at: i64,
    /// When it was last used (to within a minute or so), epoch seconds.
    pub last_used_at: Option<i64>,
    /// When it was revoked, epoch seconds; a revoked token authenticates nothing.
    pub revoked_at: Option<i64>,
}

impl ApiToken {
    /// Whether the token still authenticates.
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

pub(crate) const TOKEN_COLUMNS: &str =
    "id, tenant_id, name, prefix, created_at, last_used_at, revoked_at";

pub(crate) type TokenRow = (i64, i64, String, String, i64, Option<i64>, Option<i64>);

pub(crate) fn token_from(row: TokenRow) -> ApiToken {
    let (id, tenant, name, prefix, created_at, last_used_at, revoked_at) = row;
    ApiToken {
        id: TokenId(id),
        tenant: TenantId(tenant),
        name,
        prefix,
        created_at,
        last_used_at,
        revoked_at,
    }
}

pub(crate) const USER_COLUMNS: &str =
    "id, tenant_id, name, password_hash, role, created_at, disabled";

pub(crate) type UserRow = (i64, Option<i64>, String, String, String, i64, bool);

pub(crate) fn user_from(row: UserRow) -> Result<User, StoreError> {
    let (id, tenant, name, password_hash, role, created_at, disabled) = row;
    Ok(User {
        id: UserId(id),
        tenant: tenant.map(TenantId),
        name,
        password_hash,
        role: role.parse()?,
        created_at,
        disabled,
    })
}
