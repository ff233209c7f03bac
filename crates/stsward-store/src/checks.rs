//! Check runs that a tenant starts over the API (issue 9, "checks (run and list)"): each
//! run's time, verdict and findings (the JSON of `stsward check --json`'s `findings`,
//! `spec/findings.md`), tenant-scoped through the hosted domain, with a bounded history per
//! domain. The checking itself lives in `stsward-check`; this module only keeps the results.

use crate::TenantId;
use crate::error::{Field, Operation, StoreError};
use crate::hosting::bounded;
use crate::store::{Store, with_pool};

/// Largest findings JSON stored for one run. A domain with many MX hosts gives a few
/// dozen findings of a few hundred bytes each; this leaves ample room.
pub const MAX_FINDINGS_BYTES: usize = 1024 * 1024;

/// The verdicts a run can have: the worst severity seen, or `not-run` when the check could
/// not run at all (no resolver).
pub const VERDICTS: &[&str] = &["ok", "info", "warning", "error", "not-run"];

/// A run to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCheckRun {
    /// Epoch seconds when the check started.
    pub started_at: i64,
    /// Epoch seconds when it finished.
    pub finished_at: i64,
    /// One of [`VERDICTS`].
    pub verdict: String,
    /// The findings as a JSON array, at most [`MAX_FINDINGS_BYTES`].
    pub findings: String,
}

/// A stored run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CheckRun {
    /// The run's id, increasing with time.
    pub id: i64,
    /// The domain checked.
    pub domain: String,
    /// Epoch seconds when the check started.
    pub started_at: i64,
    /// Epoch seconds when it finished.
    pub finished_at: i64,
    /// One of [`VERDICTS`].
    pub verdict: String,
    /// The findings as a JSON array.
    pub findings: String,
}

type RunRow = (i64, String, i64, i64, String, String);

fn run_from((id, domain, started_at, finished_at, verdict, findings): RunRow) -> CheckRun {
    CheckRun {
        id,
        domain,
        started_at,
        finished_at,
        verdict,
        findings,
    }
}

impl NewCheckRun {
    fn check_storable(&self) -> Result<(), StoreError> {
        if !VERDICTS.contains(&self.verdict.as_str()) {
            return Err(StoreError::Invalid {
                field: Field::CheckVerdict,
                reason: "a verdict is ok, info, warning, error or not-run",
            });
        }
        if self.finished_at < self.started_at {
            return Err(StoreError::Invalid {
                field: Field::CheckFindings,
                reason: "a run cannot finish before it starts",
            });
        }
        bounded(Field::CheckFindings, &self.findings, MAX_FINDINGS_BYTES)
    }
}

impl Store {
    /// Stores a run of `tenant`'s live domain `domain`, then deletes all but its newest
    /// `keep` runs, in one transaction. `None` when the tenant hosts no such domain
    /// (including when another tenant does): nothing is stored.
    pub async fn check_run_add(
        &self,
        tenant: TenantId,
        domain: &str,
        run: &NewCheckRun,
        keep: u32,
    ) -> Result<Option<CheckRun>, StoreError> {
        run.check_storable()?;
        const INSERT: &str = "INSERT INTO check_runs \
             (domain_id, started_at, finished_at, verdict, findings) \
             SELECT id, $3, $4, $5, $6 FROM hosted_domains \
             WHERE tenant_id = $1 AND domain = $2 AND state <> 'gone' \
             RETURNING id, domain_id";
        // The newest `keep` stay; everything at or below the (keep+1)-th newest goes.
        const PRUNE: &str = "DELETE FROM check_runs WHERE domain_id = $1 AND id <= \
             (SELECT id FROM check_runs WHERE domain_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)";
        let keep = i64::from(keep.max(1));
        let id = self
            .run(Operation::CheckRunAdd, async {
                with_pool!(self, pool => {
                    let mut tx = pool.begin().await?;
                    let inserted = sqlx::query_as::<_, (i64, i64)>(INSERT)
                        .bind(tenant.0)
                        .bind(domain)
                        .bind(run.started_at)
                        .bind(run.finished_at)
                        .bind(&run.verdict)
                        .bind(&run.findings)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some((id, domain_id)) = inserted else {
                        return Ok(None);
                    };
                    sqlx::query(PRUNE)
                        .bind(domain_id)
                        .bind(keep)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(Some(id))
                })
            })
            .await?;
        Ok(id.map(|id| CheckRun {
            id,
            domain: domain.to_owned(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            verdict: run.verdict.clone(),
            findings: run.findings.clone(),
        }))
    }

    /// The ids and verdicts of the newest runs of `tenant`'s live domain `domain`, newest
    /// first, at most `limit`, without their findings (the alert rules compare verdicts over
    /// many runs).
    pub async fn check_run_verdicts(
        &self,
        tenant: TenantId,
        domain: &str,
        limit: u32,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        const SQL: &str = "SELECT r.id, r.verdict FROM check_runs r \
             JOIN hosted_domains d ON d.id = r.domain_id \
             WHERE d.tenant_id = $1 AND d.domain = $2 AND d.state <> 'gone' \
             ORDER BY r.id DESC LIMIT $3";
        let rows = self
            .run(Operation::CheckRunVerdicts, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (i64, String)>(SQL)
                        .bind(tenant.0)
                        .bind(domain)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows)
    }

    /// The newest runs of `tenant`'s live domain `domain`, newest first, at most `limit`.
    /// Empty when the tenant hosts no such domain, including when another tenant does.
    pub async fn check_run_list(
        &self,
        tenant: TenantId,
        domain: &str,
        limit: u32,
    ) -> Result<Vec<CheckRun>, StoreError> {
        const SQL: &str = "SELECT r.id, d.domain, r.started_at, r.finished_at, r.verdict, \
             r.findings FROM check_runs r JOIN hosted_domains d ON d.id = r.domain_id \
             WHERE d.tenant_id = $1 AND d.domain = $2 AND d.state <> 'gone' \
             ORDER BY r.id DESC LIMIT $3";
        let rows = self
            .run(Operation::CheckRunList, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, RunRow>(SQL)
                        .bind(tenant.0)
                        .bind(domain)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows.into_iter().map(run_from).collect())
    }
}
