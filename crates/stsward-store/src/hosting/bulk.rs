//! Hosting many domains at once (`stsward domain import`): each domain with its first policy
//! (version 1, RFC 8461 §3.2), a batch per transaction, a few multi-row statements per batch
//! rather than two statements and a commit per domain.
//!
//! ```text
//! BEGIN
//!   INSERT INTO hosted_domains  VALUES (…), (…), …  ON CONFLICT DO NOTHING  RETURNING id, domain
//!   INSERT INTO policy_versions VALUES (…), (…), …   -- for the rows returned only
//! COMMIT
//! ```
//!
//! A name that is hosted already (by any tenant: names are global, see [`super`]) hits the
//! partial unique index and is left out by `ON CONFLICT DO NOTHING`, in the same statement,
//! so a concurrent `add` of the same name cannot slip between a check and the insert. The
//! `hosting_changes` triggers record every new version, as for a single add.

use std::collections::HashMap;

use stsward_proto::mta_sts::pattern::MAX_NAME_OCTETS;

use super::{MAX_TEXT_BYTES, NewDomain, NewVersion, TenantId, bounded, join_mx};
use crate::error::{Field, Operation, StoreError};
use crate::store::{Store, with_pool};

/// Most domains one [`Store::hosted_domains_add_many`] call takes: one transaction. The
/// service splits a larger import into batches of this size.
pub const MAX_BATCH: usize = 1000;

/// Rows per multi-row `INSERT`. Far below the parameter limits (SQLite 32,766, PostgreSQL
/// 65,535; 9 parameters a version row) on purpose: binding the parameters of one SQLite
/// statement costs time quadratic in their number (sqlx looks each one's name up in
/// SQLite's list of names), and at 500 rows that lookup was three quarters of a 50,000-line
/// import (perf); at 64 it is lost in the noise and the statements are still few.
const ROWS_PER_STATEMENT: usize = 64;
const _: () = assert!(ROWS_PER_STATEMENT * 9 <= 32_766, "SQLite's parameter limit");

impl Store {
    /// Hosts every domain of `batch` for `tenant`, each with its version 1, in one
    /// transaction (at most [`MAX_BATCH`] domains). Returns, in `batch` order, whether each
    /// was added: `false` when the name is hosted already, by any tenant (which one is not
    /// said); such a domain is skipped, not an error. A value the store cannot hold refuses
    /// the whole batch before anything is written; so does a name given twice.
    pub async fn hosted_domains_add_many(
        &self,
        tenant: TenantId,
        batch: &[(NewDomain, NewVersion)],
    ) -> Result<Vec<bool>, StoreError> {
        if batch.len() > MAX_BATCH {
            return Err(StoreError::BatchTooLarge {
                len: batch.len(),
                max: MAX_BATCH,
            });
        }
        let mut seen = HashMap::with_capacity(batch.len());
        for (domain, first) in batch {
            bounded(Field::Domain, &domain.domain, MAX_NAME_OCTETS)?;
            if let Some(rua) = &domain.tlsrpt_rua {
                bounded(Field::Rua, rua, MAX_TEXT_BYTES)?;
            }
            first.check_storable()?;
            if seen.insert(domain.domain.as_str(), ()).is_some() {
                return Err(StoreError::DuplicateInBatch {
                    domain: domain.domain.clone(),
                });
            }
        }
        let mx: Vec<String> = batch.iter().map(|(_, v)| join_mx(&v.mx)).collect();
        let added = self
            .run(Operation::HostedDomainsAddMany, async {
                with_pool!(self, pool => {
                    let mut tx = pool.begin().await?;
                    let mut ids: HashMap<String, i64> = HashMap::with_capacity(batch.len());
                    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
                        let sql = domains_sql(chunk.len());
                        let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
                        for (d, _) in chunk {
                            q = q
                                .bind(tenant.0)
                                .bind(&d.domain)
                                .bind(d.created_at)
                                .bind(d.follow_mx)
                                .bind(&d.tlsrpt_rua);
                        }
                        for (id, domain) in q.fetch_all(&mut *tx).await? {
                            ids.insert(domain, id);
                        }
                    }
                    let rows: Vec<(i64, usize)> = batch
                        .iter()
                        .enumerate()
                        .filter_map(|(i, (d, _))| ids.get(&d.domain).map(|id| (*id, i)))
                        .collect();
                    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                        let sql = versions_sql(chunk.len());
                        let mut q = sqlx::query(&sql);
                        for (id, i) in chunk {
                            let v = &batch[*i].1;
                            q = q
                                .bind(*id)
                                .bind(&v.mode)
                                .bind(&mx[*i])
                                .bind(v.max_age)
                                .bind(&v.policy)
                                .bind(&v.sts_id)
                                .bind(&v.changed_by)
                                .bind(v.changed_at)
                                .bind(&v.note);
                        }
                        q.execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(ids)
                })
            })
            .await?;
        Ok(batch
            .iter()
            .map(|(d, _)| added.contains_key(&d.domain))
            .collect())
    }
}

/// `$1, $2, …` groups of `width` parameters for `rows` rows, each wrapped by `row`.
fn values(rows: usize, width: usize, row: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(rows * width * 6);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        let params: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
        out.push_str(&row(&params.join(", ")));
    }
    out
}

fn domains_sql(rows: usize) -> String {
    // The state, removal and version columns are constants: a new domain is active at 1.
    format!(
        "INSERT INTO hosted_domains \
         (tenant_id, domain, created_at, follow_mx, tlsrpt_rua, state, remove_after, \
          current_version) VALUES {} \
         ON CONFLICT DO NOTHING RETURNING id, domain",
        values(rows, 5, |p| format!("({p}, 'active', NULL, 1)"))
    )
}

fn versions_sql(rows: usize) -> String {
    format!(
        "INSERT INTO policy_versions \
         (domain_id, mode, mx, max_age, policy, sts_id, changed_by, changed_at, note, version) \
         VALUES {}",
        values(rows, 9, |p| format!("({p}, 1)"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_row() {
        assert_eq!(
            values(2, 2, |p| format!("({p})")),
            "($1, $2), ($3, $4)",
            "rows continue the numbering"
        );
        let sql = versions_sql(ROWS_PER_STATEMENT);
        assert!(sql.contains(&format!("${}, 1)", ROWS_PER_STATEMENT * 9)));
    }
}
