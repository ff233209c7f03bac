//! Change propagation to the serving roles, and the replicas that serve (RFC 8461 §8.1
//! ordering across processes).
//!
//! ```text
//! hosting_changes  seq (increasing), domain, version     appended by triggers (0003)
//! replicas         replica_id, applied_seq, last_seen_ms one row per serving process
//! ```
//!
//! Every write that changes what is served (a new policy version; a domain's state, `rua`,
//! current version or removal time) appends a row to `hosting_changes` in the writer's own
//! transaction, through triggers, so no writer can forget to. A serving process keeps a
//! cursor and reads [`Store::hosting_changes_since`]: noticing changes costs a primary-key
//! range read, O(changes) and not O(domains). On PostgreSQL the trigger takes a transaction
//! advisory lock before drawing the number, so changes commit in `seq` order and a cursor
//! never skips a change that commits late.
//!
//! RFC 8461 §8.1: "Recipients SHOULD also update the HTTPS policy body before updating the TXT
//! record". With several replicas the body is updated once every replica serves it: each
//! replica writes its position with [`Store::replica_heartbeat`] after its policy host
//! serves every change up to it, and the DNS answers a version once
//! [`Store::replica_min_applied`] over the replicas seen recently has reached it.
//!
//! These reads are install-wide: they serve the DNS and HTTPS roles, which answer for every
//! tenant, and return no tenant's data beyond what is published anyway.

use crate::error::{Operation, StoreError};
use crate::hosting::SnapshotEntry;
use crate::store::{Store, with_pool};

/// One row of `hosting_changes`: `domain` changed, and its current version was `version`
/// when it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostingChange {
    /// The position in the change log (increasing).
    pub seq: i64,
    /// The policy domain.
    pub domain: String,
    /// The version inserted or made current by the change.
    pub version: i64,
}

impl Store {
    /// The position of the newest change (0 when there is none): a process that loads
    /// [`Store::hosting_snapshot`] after reading it has every change up to it.
    pub async fn hosting_change_position(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT MAX(seq) FROM hosting_changes";
        let max = self
            .run(Operation::HostingChangesSince, async {
                with_pool!(self, pool => {
                    sqlx::query_scalar::<_, Option<i64>>(SQL).fetch_one(pool).await
                })
            })
            .await?;
        Ok(max.unwrap_or(0))
    }

    /// Install-wide: the changes after `after`, oldest first, at most `limit`.
    pub async fn hosting_changes_since(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<HostingChange>, StoreError> {
        const SQL: &str = "SELECT seq, domain, version FROM hosting_changes \
             WHERE seq > $1 ORDER BY seq LIMIT $2";
        let rows = self
            .run(Operation::HostingChangesSince, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (i64, String, i64)>(SQL)
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, domain, version)| HostingChange {
                seq,
                domain,
                version,
            })
            .collect())
    }

    /// Install-wide, for the serving roles: what `domain` serves now, as one entry of
    /// [`Store::hosting_snapshot`]; `None` when it is not hosted or gone.
    pub async fn hosting_served(&self, domain: &str) -> Result<Option<SnapshotEntry>, StoreError> {
        const SQL: &str = "SELECT d.tenant_id, d.domain, d.state, d.tlsrpt_rua, d.remove_after, \
             v.version, v.sts_id, v.policy FROM hosted_domains d \
             JOIN policy_versions v ON v.domain_id = d.id AND v.version = d.current_version \
             WHERE d.domain = $1 AND d.state <> 'gone'";
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
        let row = self
            .run(Operation::HostingServed, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, Row>(SQL).bind(domain).fetch_optional(pool).await
                })
            })
            .await?;
        row.map(
            |(tenant, domain, state, tlsrpt_rua, remove_after, version, sts_id, policy)| {
                Ok(SnapshotEntry {
                    tenant: crate::TenantId(tenant),
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
        .transpose()
    }

    /// Forgets the changes at or before `upto` (every replica has applied them), and the
    /// replicas not seen since `forget_before_ms`. Returns the changes deleted.
    pub async fn hosting_changes_prune(
        &self,
        upto: i64,
        forget_before_ms: i64,
    ) -> Result<u64, StoreError> {
        const CHANGES: &str = "DELETE FROM hosting_changes WHERE seq <= $1";
        const REPLICAS: &str = "DELETE FROM replicas WHERE last_seen_ms < $1";
        self.run(Operation::HostingChangesPrune, async {
            with_pool!(self, pool => {
                sqlx::query(REPLICAS).bind(forget_before_ms).execute(pool).await?;
                sqlx::query(CHANGES)
                    .bind(upto)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
            })
        })
        .await
    }

    /// Records that replica `id` serves every change up to `applied`, seen at `now_ms`
    /// (epoch milliseconds).
    pub async fn replica_heartbeat(
        &self,
        id: &str,
        applied: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO replicas (replica_id, applied_seq, last_seen_ms) \
             VALUES ($1, $2, $3) ON CONFLICT (replica_id) DO UPDATE \
             SET applied_seq = excluded.applied_seq, last_seen_ms = excluded.last_seen_ms";
        self.run(Operation::ReplicaHeartbeat, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(id)
                    .bind(applied)
                    .bind(now_ms)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// The lowest position applied by the replicas seen at or after `since_ms`, and the
    /// lowest over every replica row (for pruning); `None` when no replica qualifies.
    pub async fn replica_min_applied(
        &self,
        since_ms: i64,
    ) -> Result<(Option<i64>, Option<i64>), StoreError> {
        const SQL: &str = "SELECT MIN(CASE WHEN last_seen_ms >= $1 THEN applied_seq END), \
             MIN(applied_seq) FROM replicas";
        self.run(Operation::ReplicaMinApplied, async {
            with_pool!(self, pool => {
                sqlx::query_as::<_, (Option<i64>, Option<i64>)>(SQL)
                    .bind(since_ms)
                    .fetch_one(pool)
                    .await
            })
        })
        .await
    }

    /// Replica `id` stops serving (a graceful shutdown): the others need not wait for it.
    pub async fn replica_leave(&self, id: &str) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM replicas WHERE replica_id = $1";
        self.run(Operation::ReplicaLeave, async {
            with_pool!(self, pool => {
                sqlx::query(SQL).bind(id).execute(pool).await.map(|_| ())
            })
        })
        .await
    }
}
