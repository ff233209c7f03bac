//! The resolver's MTA-STS policy cache (RFC 8461 §3, §3.2, §3.3, §5.1).
//!
//! RFC 8461 §3.2, `max_age`: "Well-behaved clients SHOULD cache a policy for up to this
//! value from the last policy fetch time." Each row is one policy domain's last fetched
//! policy, kept until `expires_at = fetched_at + max_age`.
//!
//! RFC 8461 §3: "To see if an updated policy is available for a domain for which the sender
//! has a previously cached policy, the sender need only check the TXT record's version "id"
//! against the cached value." The row keeps the `id` the policy was fetched under
//! (`sts_id`) and when the TXT last confirmed it (`txt_checked_at`, see
//! [`Store::resolver_policy_touch`]).
//!
//! RFC 8461 §5.1 step 1: "Check for a cached policy whose time-since-fetch has not exceeded
//! its "max_age"." [`Store::resolver_policy_get`] returns a row whatever its age, and the
//! resolver compares `expires_at` with its clock; the store never reads one. §3.3: when no
//! live policy can be had, "but a valid (non-expired) policy exists in the sender's cache,
//! the sender MUST apply that cached policy". An expired row is no such policy:
//! [`Store::resolver_policy_load`] skips it and [`Store::resolver_policy_purge_expired`]
//! deletes it.
//!
//! Several resolvers may share one PostgreSQL database. A row is replaced only by a fetch at
//! least as recent as the stored one, decided by the database in the upsert itself, so two
//! resolvers racing on one domain always leave the newest fetch.

use stsward_proto::mta_sts::MAX_POLICY_BYTES;
use stsward_proto::mta_sts::pattern::MAX_NAME_OCTETS;
use stsward_proto::mta_sts::record::MAX_ID_LEN;

use crate::error::{Field, Operation, StoreError};
use crate::store::{Store, with_pool};

/// One cached policy, as the resolver stores it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CachedPolicy {
    /// The policy domain: A-label, lowercase, no trailing dot (at most 253 bytes).
    pub domain: String,
    /// The `_mta-sts` TXT `id` the policy was fetched under (at most 32 bytes, RFC 8461 §3.1).
    pub sts_id: String,
    /// The policy body as fetched, parsed again on load (at most
    /// [`MAX_POLICY_BYTES`](stsward_proto::mta_sts::MAX_POLICY_BYTES), RFC 8461 §3.3).
    pub policy: String,
    /// When the policy was fetched, epoch seconds.
    pub fetched_at: i64,
    /// `fetched_at + max_age`, epoch seconds.
    pub expires_at: i64,
    /// When the `_mta-sts` TXT last carried `sts_id`, epoch seconds.
    pub txt_checked_at: i64,
}

/// The row as selected, in the column order of [`COLUMNS`].
type Row = (String, String, String, i64, i64, i64);

const COLUMNS: &str = "domain, sts_id, policy, fetched_at, expires_at, txt_checked_at";

impl From<Row> for CachedPolicy {
    fn from(row: Row) -> Self {
        let (domain, sts_id, policy, fetched_at, expires_at, txt_checked_at) = row;
        Self {
            domain,
            sts_id,
            policy,
            fetched_at,
            expires_at,
            txt_checked_at,
        }
    }
}

/// Refuses a value longer than `max` bytes or holding a NUL, naming the field.
fn bounded(field: Field, value: &str, max: usize) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::NulCharacter { field });
    }
    if value.len() > max {
        return Err(StoreError::TooLarge {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

impl CachedPolicy {
    /// Checks what the store accepts: the sizes of the domain (253 octets, RFC 1035; not in
    /// shared/reference, not checked here), of the id (RFC 8461 §3.1's 32 characters) and of
    /// the body (the 64 KiB RFC 8461 §3.3 suggests), and no NUL in any of them.
    pub fn check_storable(&self) -> Result<(), StoreError> {
        bounded(Field::Domain, &self.domain, MAX_NAME_OCTETS)?;
        bounded(Field::StsId, &self.sts_id, MAX_ID_LEN)?;
        bounded(Field::Policy, &self.policy, MAX_POLICY_BYTES)
    }
}

impl Store {
    /// The cached policy of `domain`, expired or not; `None` when none is stored.
    pub async fn resolver_policy_get(
        &self,
        domain: &str,
    ) -> Result<Option<CachedPolicy>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM resolver_policy WHERE domain = $1");
        let row = self
            .run(Operation::ResolverPolicyGet, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, Row>(&sql).bind(domain).fetch_optional(pool).await
                })
            })
            .await?;
        Ok(row.map(CachedPolicy::from))
    }

    /// Stores `p` as the cached policy of `p.domain`, unless the stored one was fetched
    /// later: a row is replaced only by an entry whose `fetched_at` is at least the stored
    /// one. The comparison is part of the one upsert statement, so resolvers sharing a
    /// database cannot interleave a check and a write. Durable once it returns `Ok`.
    pub async fn resolver_policy_put(&self, p: &CachedPolicy) -> Result<(), StoreError> {
        p.check_storable()?;
        // `excluded` is the row that was proposed; both SQLite (3.24+) and PostgreSQL
        // accept this form.
        const SQL: &str = "INSERT INTO resolver_policy \
             (domain, sts_id, policy, fetched_at, expires_at, txt_checked_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (domain) DO UPDATE SET \
             sts_id = excluded.sts_id, policy = excluded.policy, \
             fetched_at = excluded.fetched_at, expires_at = excluded.expires_at, \
             txt_checked_at = excluded.txt_checked_at \
             WHERE resolver_policy.fetched_at <= excluded.fetched_at";
        self.run(Operation::ResolverPolicyPut, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(&p.domain)
                    .bind(&p.sts_id)
                    .bind(&p.policy)
                    .bind(p.fetched_at)
                    .bind(p.expires_at)
                    .bind(p.txt_checked_at)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// Records that the `_mta-sts` TXT of `domain` was checked at `txt_checked_at` and
    /// still carried the cached id. The time only moves forward: an older check reported
    /// late (by another resolver) leaves the newer one. Nothing happens when no policy
    /// is stored for `domain`.
    pub async fn resolver_policy_touch(
        &self,
        domain: &str,
        txt_checked_at: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE resolver_policy SET txt_checked_at = $2 \
             WHERE domain = $1 AND txt_checked_at < $2";
        self.run(Operation::ResolverPolicyTouch, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(domain)
                    .bind(txt_checked_at)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// Forgets the cached policy of `domain`; `true` when there was one.
    pub async fn resolver_policy_delete(&self, domain: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM resolver_policy WHERE domain = $1";
        self.run(Operation::ResolverPolicyDelete, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(domain)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected() > 0)
            })
        })
        .await
    }

    /// The unexpired policies (`expires_at > now`), ordered by domain (bytewise on both
    /// backends), at most `limit`: what a resolver loads into memory when it starts.
    pub async fn resolver_policy_load(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<CachedPolicy>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM resolver_policy WHERE expires_at > $1 \
             ORDER BY domain LIMIT $2"
        );
        let rows = self
            .run(Operation::ResolverPolicyLoad, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, Row>(&sql)
                        .bind(now)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows.into_iter().map(CachedPolicy::from).collect())
    }

    /// Deletes the expired policies (`expires_at <= now`); returns how many.
    pub async fn resolver_policy_purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM resolver_policy WHERE expires_at <= $1";
        self.run(Operation::ResolverPolicyPurgeExpired, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|done| done.rows_affected())
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(domain: &str, sts_id: &str, body: &str) -> CachedPolicy {
        CachedPolicy {
            domain: domain.into(),
            sts_id: sts_id.into(),
            policy: body.into(),
            fetched_at: 0,
            expires_at: 1,
            txt_checked_at: 0,
        }
    }

    #[test]
    fn stored_sizes_are_bounded_and_nul_is_refused() {
        let name_253 = format!("{}.example", "a".repeat(253 - ".example".len()));
        let good: &[(CachedPolicy, &str)] = &[
            (
                policy(&name_253, "x", "b"),
                "a 253-byte domain is the longest name",
            ),
            (
                policy("e.test", &"1".repeat(32), "b"),
                "a 32-character id, §3.1's limit",
            ),
            (
                policy("e.test", "x", &"b".repeat(MAX_POLICY_BYTES)),
                "a 64 KiB body",
            ),
        ];
        for (p, why) in good {
            assert!(p.check_storable().is_ok(), "{why}");
        }
        let bad: &[(CachedPolicy, Field, &str)] = &[
            (
                policy(&format!("a{name_253}"), "x", "b"),
                Field::Domain,
                "254 bytes",
            ),
            (
                policy("e.test", &"1".repeat(33), "b"),
                Field::StsId,
                "33 characters",
            ),
            (
                policy("e.test", "x", &"b".repeat(MAX_POLICY_BYTES + 1)),
                Field::Policy,
                "one byte over 64 KiB",
            ),
        ];
        for (p, field, why) in bad {
            match p.check_storable() {
                Err(StoreError::TooLarge { field: got, .. }) => assert_eq!(got, *field, "{why}"),
                other => panic!("{why}: {other:?}"),
            }
        }
        let nul: &[(CachedPolicy, Field)] = &[
            (policy("e\0.test", "x", "b"), Field::Domain),
            (policy("e.test", "x\0", "b"), Field::StsId),
            (policy("e.test", "x", "version: STSv1\0"), Field::Policy),
        ];
        for (p, field) in nul {
            match p.check_storable() {
                Err(StoreError::NulCharacter { field: got }) => assert_eq!(got, *field),
                other => panic!("NUL in {field}: {other:?}"),
            }
        }
    }
}
