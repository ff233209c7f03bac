//! A request's bearer token (RFC 6750 §2.1) to the tenant it acts for.
//!
//! Two kinds of token are accepted:
//! - the one in `[api]` of the configuration: an install-wide admin token that acts for the
//!   default tenant and may manage tenants; compared by SHA-256 digest in constant time;
//! - tokens in the store (`stsward token create`, `POST /api/v1/tokens`): each acts for its
//!   own tenant only; found by the digest of what was sent; a revoked one is refused.

use aws_lc_rs::{constant_time, digest};
use stsward_store::{Store, StoreError, TenantId, TokenId};

use super::token;

/// `last_used_at` is written at most once per this many seconds per token.
pub const LAST_USED_INTERVAL: i64 = 60;

/// Who is calling, once the token is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The tenant every call acts for.
    pub tenant: TenantId,
    /// The configured install-wide token: may list and create tenants, and act for another
    /// tenant where a route allows it.
    pub install_admin: bool,
    /// The stored token, when it is one.
    pub token: Option<TokenId>,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// No token matches.
    #[error("the bearer token is not valid")]
    Invalid,
    /// The token was revoked.
    #[error("the bearer token was revoked")]
    Revoked,
    /// The store failed.
    #[error("the store failed while checking the token")]
    Store(#[from] StoreError),
}

/// Checks `given` against the configured token's digest (if any) and the store's tokens.
/// `default_tenant` is the tenant the configured token acts for.
pub async fn authenticate(
    store: &Store,
    configured: Option<&digest::Digest>,
    default_tenant: TenantId,
    given: &str,
    now: i64,
) -> Result<Caller, BearerError> {
    let sent = digest::digest(&digest::SHA256, given.as_bytes());
    if let Some(configured) = configured
        && constant_time::verify_slices_are_equal(sent.as_ref(), configured.as_ref()).is_ok()
    {
        return Ok(Caller {
            tenant: default_tenant,
            install_admin: true,
            token: None,
        });
    }
    // Anything not shaped like a stored token is refused without a query.
    if !token::looks_like_token(given) {
        return Err(BearerError::Invalid);
    }
    let found = store
        .api_token_lookup(sent.as_ref())
        .await?
        .ok_or(BearerError::Invalid)?;
    if !found.is_active() {
        return Err(BearerError::Revoked);
    }
    let stale = found
        .last_used_at
        .is_none_or(|at| at <= now.saturating_sub(LAST_USED_INTERVAL));
    if stale
        && let Err(error) = store
            .api_token_touch(found.id, now, LAST_USED_INTERVAL)
            .await
    {
        // Bookkeeping only: the request goes on.
        tracing::warn!(%error, token = %found.id, "cannot note when an API token was used");
    }
    Ok(Caller {
        tenant: found.tenant,
        install_admin: false,
        token: Some(found.id),
    })
}
