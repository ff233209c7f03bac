//! Tenants and hosted domains: adding, reading, listing and finishing removals (RFC 8461
//! §8.3). Every query on a tenant's domains takes the tenant (see [`super`]).

use stsward_proto::mta_sts::pattern::MAX_NAME_OCTETS;

use super::{
    DEFAULT_TENANT, DOMAIN_COLUMNS, DomainRow, DomainState, HostedDomain, MAX_TEXT_BYTES,
    NewDomain, NewVersion, PolicyVersion, Tenant, TenantId, VERSION_COLUMNS, VersionRow, bounded,
    domain_from, is_unique_violation, join_mx, version_from,
};
use crate::error::{Field, Operation, StoreError};
use crate::store::{Store, with_pool};

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
}
