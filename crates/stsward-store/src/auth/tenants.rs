//! Reading tenants: all of them (for install admins) and one by name. Creating one is
//! [`Store::tenant_create`] in `hosting`.

use crate::error::{Field, Operation, StoreError};
use crate::hosting::{MAX_TEXT_BYTES, bounded};
use crate::store::{Store, with_pool};
use crate::{Tenant, TenantId};

const COLUMNS: &str = "id, name, created_at";

fn tenant_from((id, name, created_at): (i64, String, i64)) -> Tenant {
    Tenant {
        id: TenantId(id),
        name,
        created_at,
    }
}

impl Store {
    /// Every tenant, by name. Install-wide: for install admins only.
    pub async fn tenant_list(&self) -> Result<Vec<Tenant>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tenants ORDER BY name");
        let rows = self
            .run(Operation::TenantList, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (i64, String, i64)>(&sql).fetch_all(pool).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(tenant_from).collect())
    }

    /// The tenant called `name`, if there is one.
    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        bounded(Field::TenantName, name, MAX_TEXT_BYTES)?;
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE name = $1");
        let row = self
            .run(Operation::TenantByName, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (i64, String, i64)>(&sql)
                        .bind(name)
                        .fetch_optional(pool)
                        .await
                })
            })
            .await?;
        Ok(row.map(tenant_from))
    }
}
