//! Issuing a tenant's API token, the one path the CLI (`stsward token create`) and the REST
//! API (`POST /api/v1/tokens`) share: the name is checked, the tenant's live tokens are
//! bounded, a token is drawn, and only its digest is stored.

use stsward_store::{ApiToken, NewToken, Store, StoreError, TenantId};

use super::token::{self, NewTokenSecret, RandomError};
use super::{NameError, check_label};

/// The most tokens a tenant may hold that are not revoked.
pub const MAX_ACTIVE_TOKENS: usize = 100;

/// Why no token was issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The name is refused.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The tenant holds [`MAX_ACTIVE_TOKENS`] live tokens already.
    #[error(
        "the tenant has {MAX_ACTIVE_TOKENS} tokens that are not revoked, the most it may \
         hold; revoke one first"
    )]
    TooMany,
    /// The system's random source failed.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Issues a token called `name` for `tenant` at `now`: the stored row and the secret, which
/// the caller shows once. `field` names the name's input in refusals (`name`, `--name`).
pub async fn issue(
    store: &Store,
    tenant: TenantId,
    field: &'static str,
    name: &str,
    now: i64,
) -> Result<(ApiToken, NewTokenSecret), IssueError> {
    check_label(field, name)?;
    // Counted, then inserted: two issuers racing may both pass at the bound, which only
    // lets the count exceed it by the number of racers; the bound is against runaway
    // automation, not an exact quota.
    let live = store
        .api_token_list(tenant)
        .await?
        .iter()
        .filter(|t| t.is_active())
        .count();
    if live >= MAX_ACTIVE_TOKENS {
        return Err(IssueError::TooMany);
    }
    let secret = token::generate()?;
    let stored = store
        .api_token_create(&NewToken {
            tenant,
            name: name.to_owned(),
            digest: secret.digest.clone(),
            prefix: secret.prefix.clone(),
            created_at: now,
        })
        .await?;
    Ok((stored, secret))
}
