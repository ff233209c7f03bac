//! What the scheduler of `stsward serve` keeps: per-domain rounds with their last outcomes
//! (MX follow, RFC 8461 §3.2 `mx` lines; the owner's own `_mta-sts` TXT, §3.1 `id`), and
//! policy fetch counts (§3.3 fetches) per domain, UTC day and fetching network.
//!
//! ```text
//! domain_checks    domain_id (PK), own_sts_txt, due_at, claimed_by,
//!                  mx_checked_at, mx_outcome, mx_detail, mx_warning, mx_warning_at,
//!                  txt_checked_at, txt_outcome, txt_detail, txt_flagged_since
//! policy_fetches   (domain_id, day, network) PK, fetches
//!
//! seed(now, interval)        a row for every active follow_mx domain without one, due at
//!                            now + a per-domain offset within the interval (spread)
//! due(now, limit)            the rows due at now, oldest first
//! claim(id, seen_due, next)  UPDATE … SET due_at = next WHERE domain_id = id
//!                            AND due_at = seen_due   -> one row: this replica's round
//! ```
//!
//! **One replica per domain per round.** `due_at` is the lease of a round: claiming moves it
//! to the next round in one guarded `UPDATE`. On PostgreSQL a second replica claiming the
//! same row waits for the first one's row lock, then re-evaluates `due_at = seen_due` against
//! the committed row and matches nothing; SQLite runs one writer at a time. Nothing is read
//! first and written after. A replica that dies mid-round loses only that round.
//!
//! **Fetch counts are additive.** Each replica drains its own in-memory counter and adds it
//! with `INSERT … ON CONFLICT DO UPDATE SET fetches = fetches + excluded.fetches`, so flushes
//! of several replicas, in any order, sum. The row is keyed by the domain's row id: a name
//! hosted again after removal starts from zero.
//!
//! The scheduler works install-wide (its methods take no tenant and say so); what `domain
//! show` reads ([`Store::domain_check_get`], [`Store::policy_fetches_since`]) takes the tenant.

use crate::error::{Field, Operation, StoreError};
use crate::hosting::{MAX_TEXT_BYTES, TenantId, bounded};
use crate::store::{Store, with_pool};

/// Longest fetching-network text the store accepts (`xxxx:xxxx:xxxx::/48` fits easily).
pub const MAX_NETWORK_TEXT: usize = 64;

/// A domain whose round is due, as [`Store::domain_checks_due`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDomain {
    /// The domain's row id.
    pub domain_id: i64,
    /// Its owner.
    pub tenant: TenantId,
    /// The policy domain.
    pub domain: String,
    /// Whether the `mx` lines follow the MX records.
    pub follow_mx: bool,
    /// Whether the owner keeps its own `_mta-sts` TXT (watched for a stale id).
    pub own_sts_txt: bool,
    /// The `due_at` seen, which [`Store::domain_check_claim`] compares against.
    pub due_at: i64,
}

/// The scheduler's last word on a domain, as `domain show` reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DomainChecks {
    /// The owner keeps its own `_mta-sts` TXT.
    pub own_sts_txt: bool,
    /// The next round, epoch seconds.
    pub due_at: Option<i64>,
    /// The replica that ran the last round.
    pub claimed_by: Option<String>,
    /// When the MX records were last looked up.
    pub mx_checked_at: Option<i64>,
    /// What the last MX round did (a short code, e.g. `in_step`, `changed`, `dns_failed`).
    pub mx_outcome: Option<String>,
    /// Its details, in words.
    pub mx_detail: Option<String>,
    /// The last warning of an MX change (kept until the next warning).
    pub mx_warning: Option<String>,
    /// When it was given.
    pub mx_warning_at: Option<i64>,
    /// When the owner's TXT was last looked up.
    pub txt_checked_at: Option<i64>,
    /// What was found (`in_step`, `stale_id`, `missing`, `invalid`, `lookup_failed`).
    pub txt_outcome: Option<String>,
    /// Its details, in words.
    pub txt_detail: Option<String>,
    /// Since when the TXT has not carried the served id (none: it does, or not checked).
    pub txt_flagged_since: Option<i64>,
}

/// What the TXT flag becomes after a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxtFlag {
    /// The TXT carries the served id: clear the flag.
    Clear,
    /// It does not: set the flag (keeping the time it was first seen).
    Set,
    /// Nothing could be said (the lookup failed): leave the flag as it is.
    Keep,
}

/// Fetches to add: one domain, one UTC day, one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRow {
    /// The policy domain (lowercase, no trailing dot).
    pub domain: String,
    /// Days since 1970-01-01 UTC.
    pub day: i64,
    /// The fetching network (e.g. `192.0.2.0/24`).
    pub network: String,
    /// How many fetches.
    pub fetches: i64,
}

/// Fetches of one domain over a span of days.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FetchTotals {
    /// The first day counted (days since 1970-01-01 UTC).
    pub since_day: i64,
    /// All fetches.
    pub fetches: i64,
    /// Distinct fetching networks.
    pub networks: i64,
    /// Fetches per day with any, oldest first: `(day, fetches)`.
    pub by_day: Vec<(i64, i64)>,
}

type CheckRow = (
    bool,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

impl Store {
    /// Install-wide (the scheduler): gives every active domain that follows its MX and has no
    /// round yet one, due at `now` plus an offset in `[0, interval)` taken from its row id,
    /// so that 50,000 domains switched on at once do not all come due together. Returns how
    /// many rows were made.
    pub async fn domain_checks_seed(&self, now: i64, interval: i64) -> Result<u64, StoreError> {
        const SQL: &str = "INSERT INTO domain_checks (domain_id, own_sts_txt, due_at) \
             SELECT d.id, FALSE, $1 + (d.id * 7919) % $2 FROM hosted_domains d \
             WHERE d.state = 'active' AND d.follow_mx \
             AND NOT EXISTS (SELECT 1 FROM domain_checks c WHERE c.domain_id = d.id) \
             ON CONFLICT (domain_id) DO NOTHING";
        let interval = interval.max(1);
        self.run(Operation::DomainChecksSeed, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(now)
                    .bind(interval)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })
        })
        .await
    }

    /// Install-wide (the scheduler): at most `limit` active domains with something to check
    /// (MX follow or own TXT) whose round is due at `now`, the longest due first. Listing
    /// claims nothing: see [`Store::domain_check_claim`].
    pub async fn domain_checks_due(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<DueDomain>, StoreError> {
        const SQL: &str = "SELECT d.id, d.tenant_id, d.domain, d.follow_mx, c.own_sts_txt, \
             c.due_at FROM domain_checks c JOIN hosted_domains d ON d.id = c.domain_id \
             WHERE c.due_at <= $1 AND d.state = 'active' AND (d.follow_mx OR c.own_sts_txt) \
             ORDER BY c.due_at, d.id LIMIT $2";
        let rows = self
            .run(Operation::DomainChecksDue, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (i64, i64, String, bool, bool, i64)>(SQL)
                        .bind(now)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(domain_id, tenant, domain, follow_mx, own_sts_txt, due_at)| DueDomain {
                    domain_id,
                    tenant: TenantId(tenant),
                    domain,
                    follow_mx,
                    own_sts_txt,
                    due_at,
                },
            )
            .collect())
    }

    /// Install-wide (the scheduler): claims the round of `due` for `holder` by moving its
    /// `due_at` to `next_due`, only if it is still the `due_at` that was listed. `true`: this
    /// caller runs the round; `false`: another replica claimed it first.
    pub async fn domain_check_claim(
        &self,
        due: &DueDomain,
        holder: &str,
        next_due: i64,
    ) -> Result<bool, StoreError> {
        bounded(Field::LeaseHolder, holder, MAX_TEXT_BYTES)?;
        const SQL: &str = "UPDATE domain_checks SET due_at = $3, claimed_by = $4 \
             WHERE domain_id = $1 AND due_at = $2";
        let claimed = self
            .run(Operation::DomainCheckClaim, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL)
                        .bind(due.domain_id)
                        .bind(due.due_at)
                        .bind(next_due)
                        .bind(holder)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
            })
            .await?;
        Ok(claimed == 1)
    }

    /// Install-wide (the scheduler): records the MX round of the domain row `domain_id`:
    /// `outcome` (a short code) and `detail`, and, when given, a new warning (the previous
    /// warning is kept otherwise).
    pub async fn domain_check_record_mx(
        &self,
        domain_id: i64,
        checked_at: i64,
        outcome: &str,
        detail: &str,
        warning: Option<&str>,
    ) -> Result<(), StoreError> {
        bounded(Field::CheckDetail, outcome, MAX_TEXT_BYTES)?;
        let detail = clip(detail);
        let warning = warning.map(clip);
        const SQL: &str = "UPDATE domain_checks SET mx_checked_at = $2, mx_outcome = $3, \
             mx_detail = $4, \
             mx_warning = CASE WHEN $5 IS NULL THEN mx_warning ELSE $5 END, \
             mx_warning_at = CASE WHEN $5 IS NULL THEN mx_warning_at ELSE $2 END \
             WHERE domain_id = $1";
        self.run(Operation::DomainCheckRecordMx, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(domain_id)
                    .bind(checked_at)
                    .bind(outcome)
                    .bind(&detail)
                    .bind(&warning)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// Install-wide (the scheduler): records the own-TXT round of the domain row
    /// `domain_id`, and sets, clears or keeps the stale-id flag.
    pub async fn domain_check_record_txt(
        &self,
        domain_id: i64,
        checked_at: i64,
        outcome: &str,
        detail: &str,
        flag: TxtFlag,
    ) -> Result<(), StoreError> {
        bounded(Field::CheckDetail, outcome, MAX_TEXT_BYTES)?;
        let detail = clip(detail);
        let flag: i64 = match flag {
            TxtFlag::Clear => 0,
            TxtFlag::Set => 1,
            TxtFlag::Keep => 2,
        };
        const SQL: &str = "UPDATE domain_checks SET txt_checked_at = $2, txt_outcome = $3, \
             txt_detail = $4, txt_flagged_since = CASE $5 WHEN 2 THEN txt_flagged_since \
             WHEN 1 THEN COALESCE(txt_flagged_since, $2) ELSE NULL END \
             WHERE domain_id = $1";
        self.run(Operation::DomainCheckRecordTxt, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(domain_id)
                    .bind(checked_at)
                    .bind(outcome)
                    .bind(&detail)
                    .bind(flag)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// The scheduler's state of the live domain `domain` of `tenant`; `None` when it has
    /// none yet (or the tenant hosts no such domain).
    pub async fn domain_check_get(
        &self,
        tenant: TenantId,
        domain: &str,
    ) -> Result<Option<DomainChecks>, StoreError> {
        const SQL: &str = "SELECT c.own_sts_txt, c.due_at, c.claimed_by, c.mx_checked_at, \
             c.mx_outcome, c.mx_detail, c.mx_warning, c.mx_warning_at, c.txt_checked_at, \
             c.txt_outcome, c.txt_detail, c.txt_flagged_since \
             FROM domain_checks c JOIN hosted_domains d ON d.id = c.domain_id \
             WHERE d.tenant_id = $1 AND d.domain = $2 AND d.state <> 'gone'";
        let row = self
            .run(Operation::DomainCheckGet, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, CheckRow>(SQL)
                        .bind(tenant.0)
                        .bind(domain)
                        .fetch_optional(pool)
                        .await
                })
            })
            .await?;
        Ok(row.map(|r| DomainChecks {
            own_sts_txt: r.0,
            due_at: Some(r.1),
            claimed_by: r.2,
            mx_checked_at: r.3,
            mx_outcome: r.4,
            mx_detail: r.5,
            mx_warning: r.6,
            mx_warning_at: r.7,
            txt_checked_at: r.8,
            txt_outcome: r.9,
            txt_detail: r.10,
            txt_flagged_since: r.11,
        }))
    }

    /// Sets whether the owner of the live domain `domain` of `tenant` keeps its own
    /// `_mta-sts` TXT. Switching it on makes a round due at `due_at` (so the first check
    /// comes soon); switching it off clears the TXT state. [`StoreError::DomainNotFound`]
    /// when the tenant hosts no such domain.
    pub async fn domain_set_own_sts_txt(
        &self,
        tenant: TenantId,
        domain: &str,
        own: bool,
        due_at: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO domain_checks (domain_id, own_sts_txt, due_at) \
             SELECT id, $3, $4 FROM hosted_domains \
             WHERE tenant_id = $1 AND domain = $2 AND state <> 'gone' \
             ON CONFLICT (domain_id) DO UPDATE SET own_sts_txt = excluded.own_sts_txt, \
             due_at = CASE WHEN excluded.own_sts_txt THEN excluded.due_at \
                      ELSE domain_checks.due_at END, \
             txt_outcome = CASE WHEN excluded.own_sts_txt THEN domain_checks.txt_outcome END, \
             txt_detail = CASE WHEN excluded.own_sts_txt THEN domain_checks.txt_detail END, \
             txt_checked_at = CASE WHEN excluded.own_sts_txt \
                              THEN domain_checks.txt_checked_at END, \
             txt_flagged_since = CASE WHEN excluded.own_sts_txt \
                                 THEN domain_checks.txt_flagged_since END";
        let changed = self
            .run(Operation::DomainSetOwnStsTxt, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL)
                        .bind(tenant.0)
                        .bind(domain)
                        .bind(own)
                        .bind(due_at)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
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

    /// Install-wide (the fetch-count flush of each replica): adds `rows` to the stored
    /// counts, in one transaction. Rows of a domain that is not hosted (gone meanwhile) are
    /// skipped. Returns how many rows were added.
    pub async fn policy_fetches_add(&self, rows: &[FetchRow]) -> Result<u64, StoreError> {
        for r in rows {
            bounded(Field::Domain, &r.domain, MAX_TEXT_BYTES)?;
            bounded(Field::Network, &r.network, MAX_NETWORK_TEXT)?;
        }
        const SQL: &str = "INSERT INTO policy_fetches (domain_id, day, network, fetches) \
             SELECT id, $2, $3, $4 FROM hosted_domains WHERE domain = $1 AND state <> 'gone' \
             ON CONFLICT (domain_id, day, network) \
             DO UPDATE SET fetches = policy_fetches.fetches + excluded.fetches";
        self.run(Operation::PolicyFetchesAdd, async {
            with_pool!(self, pool => {
                let mut tx = pool.begin().await?;
                let mut added = 0;
                for r in rows {
                    added += sqlx::query(SQL)
                        .bind(&r.domain)
                        .bind(r.day)
                        .bind(&r.network)
                        .bind(r.fetches.max(0))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(added)
            })
        })
        .await
    }

    /// The fetches of the live domain `domain` of `tenant` on `since_day` and after.
    pub async fn policy_fetches_since(
        &self,
        tenant: TenantId,
        domain: &str,
        since_day: i64,
    ) -> Result<FetchTotals, StoreError> {
        const BY_DAY: &str = "SELECT f.day, CAST(SUM(f.fetches) AS BIGINT) \
             FROM policy_fetches f JOIN hosted_domains d ON d.id = f.domain_id \
             WHERE d.tenant_id = $1 AND d.domain = $2 AND d.state <> 'gone' AND f.day >= $3 \
             GROUP BY f.day ORDER BY f.day";
        const NETWORKS: &str = "SELECT COUNT(DISTINCT f.network) \
             FROM policy_fetches f JOIN hosted_domains d ON d.id = f.domain_id \
             WHERE d.tenant_id = $1 AND d.domain = $2 AND d.state <> 'gone' AND f.day >= $3";
        let (by_day, networks) = self
            .run(Operation::PolicyFetchesSince, async {
                with_pool!(self, pool => {
                    let by_day = sqlx::query_as::<_, (i64, i64)>(BY_DAY)
                        .bind(tenant.0)
                        .bind(domain)
                        .bind(since_day)
                        .fetch_all(pool)
                        .await?;
                    let (networks,) = sqlx::query_as::<_, (i64,)>(NETWORKS)
                        .bind(tenant.0)
                        .bind(domain)
                        .bind(since_day)
                        .fetch_one(pool)
                        .await?;
                    Ok((by_day, networks))
                })
            })
            .await?;
        Ok(FetchTotals {
            since_day,
            fetches: by_day.iter().map(|(_, n)| n).sum(),
            networks,
            by_day,
        })
    }

    /// Install-wide (the scheduler): deletes fetch counts of days before `before_day`.
    /// Returns how many rows went.
    pub async fn policy_fetches_prune(&self, before_day: i64) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM policy_fetches WHERE day < $1";
        self.run(Operation::PolicyFetchesPrune, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(before_day)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })
        })
        .await
    }
}

/// Shortens a detail to what the store keeps, on a character boundary.
fn clip(text: &str) -> String {
    let text = text.replace('\0', "");
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
