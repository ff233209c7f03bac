//! Users: creating, finding one to log in, listing a tenant's (or, for install admins, all),
//! and disabling. Tenant-scoped calls never reach another tenant's users.

use super::{
    MAX_HASH_BYTES, MAX_NAME_BYTES, NewUser, Role, USER_COLUMNS, User, UserRow, user_from,
};
use crate::error::{Field, Operation, StoreError};
use crate::hosting::{bounded, is_unique_violation};
use crate::store::{Store, with_pool};
use crate::{TenantId, UserId};

impl Store {
    /// Creates a user; [`StoreError::UserTaken`] when the name is in use (by any tenant).
    /// A user with no tenant must be an admin (an install admin).
    pub async fn user_create(&self, user: &NewUser) -> Result<User, StoreError> {
        bounded(Field::UserName, &user.name, MAX_NAME_BYTES)?;
        bounded(Field::PasswordHash, &user.password_hash, MAX_HASH_BYTES)?;
        if user.tenant.is_none() && user.role != Role::Admin {
            return Err(StoreError::Invalid {
                field: Field::Role,
                reason: "a user with no tenant must be an admin",
            });
        }
        const SQL: &str = "INSERT INTO users \
             (tenant_id, name, password_hash, role, created_at, disabled) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
        let id = self
            .run(Operation::UserCreate, async {
                with_pool!(self, pool => {
                    let inserted = sqlx::query_as::<_, (i64,)>(SQL)
                        .bind(user.tenant.map(|t| t.0))
                        .bind(&user.name)
                        .bind(&user.password_hash)
                        .bind(user.role.as_str())
                        .bind(user.created_at)
                        .bind(false)
                        .fetch_one(pool)
                        .await;
                    match inserted {
                        Ok((id,)) => Ok(Some(id)),
                        Err(e) if is_unique_violation(&e) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
            })
            .await?;
        let Some(id) = id else {
            return Err(StoreError::UserTaken {
                name: user.name.clone(),
            });
        };
        Ok(User {
            id: UserId(id),
            tenant: user.tenant,
            name: user.name.clone(),
            password_hash: user.password_hash.clone(),
            role: user.role,
            created_at: user.created_at,
            disabled: false,
        })
    }

    /// The user called `name`, whichever the tenant, with its password hash. Install-wide
    /// because this is how a login finds its tenant.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        bounded(Field::UserName, name, MAX_NAME_BYTES)?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        let row = self
            .run(Operation::UserByName, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, UserRow>(&sql).bind(name).fetch_optional(pool).await
                })
            })
            .await?;
        row.map(user_from).transpose()
    }

    /// The users of `tenant`, by name; with `None`, every user of the install (install
    /// admins only).
    pub async fn user_list(&self, tenant: Option<TenantId>) -> Result<Vec<User>, StoreError> {
        let rows = self
            .run(Operation::UserList, async {
                with_pool!(self, pool => {
                    match tenant {
                        Some(t) => {
                            let sql = format!(
                                "SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY name"
                            );
                            sqlx::query_as::<_, UserRow>(&sql).bind(t.0).fetch_all(pool).await
                        }
                        None => {
                            let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
                            sqlx::query_as::<_, UserRow>(&sql).fetch_all(pool).await
                        }
                    }
                })
            })
            .await?;
        rows.into_iter().map(user_from).collect()
    }

    /// Disables (or enables again) the user `name` of `tenant`; with `None`, any user
    /// (install admins only). `None` when there is no such user in that scope.
    pub async fn user_set_disabled(
        &self,
        tenant: Option<TenantId>,
        name: &str,
        disabled: bool,
    ) -> Result<Option<User>, StoreError> {
        bounded(Field::UserName, name, MAX_NAME_BYTES)?;
        // `$3 IS NULL` would need a typed NULL on PostgreSQL; two statements are clearer.
        let scoped = format!(
            "UPDATE users SET disabled = $1 WHERE name = $2 AND tenant_id = $3 \
             RETURNING {USER_COLUMNS}"
        );
        let any =
            format!("UPDATE users SET disabled = $1 WHERE name = $2 RETURNING {USER_COLUMNS}");
        let row = self
            .run(Operation::UserSetDisabled, async {
                with_pool!(self, pool => {
                    match tenant {
                        Some(t) => sqlx::query_as::<_, UserRow>(&scoped)
                            .bind(disabled)
                            .bind(name)
                            .bind(t.0)
                            .fetch_optional(pool)
                            .await,
                        None => sqlx::query_as::<_, UserRow>(&any)
                            .bind(disabled)
                            .bind(name)
                            .fetch_optional(pool)
                            .await,
                    }
                })
            })
            .await?;
        row.map(user_from).transpose()
    }
}
