//! Policy versions: the append-only history of each domain (RFC 8461 §3.1, §3.2), written
//! with the move of `current_version` in one transaction (see [`super`]), and the
//! install-wide snapshot the serving roles load.

use super::{
    NewVersion, PolicyVersion, SnapshotEntry, TenantId, Transition, VERSION_COLUMNS, VersionRow,
    is_unique_violation, join_mx, version_from,
};
use crate::error::{Operation, StoreError};
use crate::store::{Store, with_pool};

/// What a version insert found, before it is turned into a result.
enum Added {
    Done,
    /// The guarded insert matched no row: the domain is not this tenant's, or it moved on.
    NoRow,
}

impl Store {
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
