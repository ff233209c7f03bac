//! API tokens: storing a new one's digest, listing and revoking a tenant's, finding one by
//! digest to authenticate a request, and noting when it was last used.

use super::{
    ApiToken, DIGEST_BYTES, MAX_NAME_BYTES, MAX_PREFIX_BYTES, NewToken, TOKEN_COLUMNS, TokenId,
    TokenRow, token_from,
};
use crate::TenantId;
use crate::error::{Field, Operation, StoreError};
use crate::hosting::bounded;
use crate::store::{Store, with_pool};

impl Store {
    /// Stores a new token of `token.tenant` (its digest and prefix, never the token).
    pub async fn api_token_create(&self, token: &NewToken) -> Result<ApiToken, StoreError> {
        bounded(Field::TokenName, &token.name, MAX_NAME_BYTES)?;
        bounded(Field::TokenPrefix, &token.prefix, MAX_PREFIX_BYTES)?;
        check_digest(&token.digest)?;
        const SQL: &str = "INSERT INTO api_tokens \
             (tenant_id, name, digest, prefix, created_at, last_used_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, NULL) RETURNING id";
        let (id,) = self
            .run(Operation::ApiTokenCreate, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (i64,)>(SQL)
                        .bind(token.tenant.0)
                        .bind(&token.name)
                        .bind(&token.digest)
                        .bind(&token.prefix)
                        .bind(token.created_at)
                        .fetch_one(pool)
                        .await
                })
            })
            .await?;
        Ok(ApiToken {
            id: TokenId(id),
            tenant: token.tenant,
            name: token.name.clone(),
            prefix: token.prefix.clone(),
            created_at: token.created_at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The tokens of `tenant`, revoked ones included, oldest first.
    pub async fn api_token_list(&self, tenant: TenantId) -> Result<Vec<ApiToken>, StoreError> {
        let sql =
            format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE tenant_id = $1 ORDER BY id");
        let rows = self
            .run(Operation::ApiTokenList, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, TokenRow>(&sql).bind(tenant.0).fetch_all(pool).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(token_from).collect())
    }

    /// Revokes the token `id` of `tenant` at `now` (a token revoked already keeps its first
    /// `revoked_at`). `None` when `tenant` has no such token, including when another tenant
    /// does.
    pub async fn api_token_revoke(
        &self,
        tenant: TenantId,
        id: TokenId,
        now: i64,
    ) -> Result<Option<ApiToken>, StoreError> {
        let sql = format!(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3) \
             WHERE id = $1 AND tenant_id = $2 RETURNING {TOKEN_COLUMNS}"
        );
        let row = self
            .run(Operation::ApiTokenRevoke, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, TokenRow>(&sql)
                        .bind(id.0)
                        .bind(tenant.0)
                        .bind(now)
                        .fetch_optional(pool)
                        .await
                })
            })
            .await?;
        Ok(row.map(token_from))
    }

    /// The token whose SHA-256 digest is `digest`, revoked or not, whichever the tenant.
    /// Install-wide because this is how a request finds its tenant; the caller refuses a
    /// revoked token.
    pub async fn api_token_lookup(&self, digest: &[u8]) -> Result<Option<ApiToken>, StoreError> {
        check_digest(digest)?;
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE digest = $1");
        let row = self
            .run(Operation::ApiTokenLookup, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, TokenRow>(&sql).bind(digest).fetch_optional(pool).await
                })
            })
            .await?;
        Ok(row.map(token_from))
    }

    /// Sets the token's `last_used_at` to `now` unless it was set less than `min_interval`
    /// seconds before; whether a row was written.
    pub async fn api_token_touch(
        &self,
        id: TokenId,
        now: i64,
        min_interval: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE api_tokens SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)";
        let done = self
            .run(Operation::ApiTokenTouch, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL)
                        .bind(id.0)
                        .bind(now)
                        .bind(now.saturating_sub(min_interval))
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
            })
            .await?;
        Ok(done > 0)
    }
}

fn check_digest(digest: &[u8]) -> Result<(), StoreError> {
    if digest.len() == DIGEST_BYTES {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            field: Field::TokenDigest,
            reason: "a token digest is 32 bytes (SHA-256)",
        })
    }
}
