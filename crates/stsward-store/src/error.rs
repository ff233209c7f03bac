//! What can fail in the store, and where: opening, migrating, or one named operation.
//!
//! Every variant says which step failed. The database's own error is kept as the `source`,
//! and no variant carries the connection URL, which may hold a password.

use std::fmt;
use std::time::Duration;

use crate::Backend;

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL names no backend the store knows (`sqlite:` or `postgres:`/`postgresql:`).
    #[error("unsupported database URL scheme {scheme:?}: expected sqlite: or postgres:")]
    UnsupportedScheme {
        /// The scheme found, up to the first `:` (never the rest of the URL).
        scheme: String,
    },
    /// The URL was recognised but its options could not be read.
    #[error("invalid {backend} database URL")]
    InvalidUrl {
        /// The backend the URL names.
        backend: Backend,
        /// Why the driver refused it.
        #[source]
        source: sqlx::Error,
    },
    /// The database could not be opened or reached.
    #[error("cannot open the {backend} database")]
    Open {
        /// The backend being opened.
        backend: Backend,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The embedded migrations could not be applied.
    #[error("cannot apply the {backend} migrations")]
    Migrate {
        /// The backend being migrated.
        backend: Backend,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("store operation {op} failed")]
    Query {
        /// The operation that ran the query.
        op: Operation,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A query did not finish within the store's query timeout.
    #[error("store operation {op} did not finish within {after:?}")]
    Timeout {
        /// The operation that ran the query.
        op: Operation,
        /// The deadline that passed.
        after: Duration,
    },
    /// A text value holds a NUL character, which PostgreSQL's `text` cannot store; refused
    /// on SQLite as well, so that both backends accept the same values.
    #[error("{field} contains a NUL character, which the store does not accept")]
    NulCharacter {
        /// Which value.
        field: Field,
    },
    /// A value is larger than the store accepts.
    #[error("{field} is {len} bytes, more than the {max} the store accepts")]
    TooLarge {
        /// Which value.
        field: Field,
        /// Its length in bytes.
        len: usize,
        /// The limit, in bytes.
        max: usize,
    },
}

/// The store operation a [`StoreError::Query`] or [`StoreError::Timeout`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// [`Store::resolver_policy_get`](crate::Store::resolver_policy_get).
    ResolverPolicyGet,
    /// [`Store::resolver_policy_put`](crate::Store::resolver_policy_put).
    ResolverPolicyPut,
    /// [`Store::resolver_policy_touch`](crate::Store::resolver_policy_touch).
    ResolverPolicyTouch,
    /// [`Store::resolver_policy_delete`](crate::Store::resolver_policy_delete).
    ResolverPolicyDelete,
    /// [`Store::resolver_policy_load`](crate::Store::resolver_policy_load).
    ResolverPolicyLoad,
    /// [`Store::resolver_policy_purge_expired`](crate::Store::resolver_policy_purge_expired).
    ResolverPolicyPurgeExpired,
}

impl Operation {
    /// The operation's name, as the method is called.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResolverPolicyGet => "resolver_policy_get",
            Self::ResolverPolicyPut => "resolver_policy_put",
            Self::ResolverPolicyTouch => "resolver_policy_touch",
            Self::ResolverPolicyDelete => "resolver_policy_delete",
            Self::ResolverPolicyLoad => "resolver_policy_load",
            Self::ResolverPolicyPurgeExpired => "resolver_policy_purge_expired",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored value whose size is bounded (see [`StoreError::TooLarge`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// A policy domain name.
    Domain,
    /// The `_mta-sts` TXT `id`.
    StsId,
    /// A policy body.
    Policy,
}

impl Field {
    /// The field's name, as the column is called.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Domain => "domain",
            Self::StsId => "sts_id",
            Self::Policy => "policy",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
