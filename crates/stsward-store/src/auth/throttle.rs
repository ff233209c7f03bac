//! Failed logins counted per user name and per source address, in buckets that every replica
//! on one database shares. The policy (how many, over how long) is the caller's.

use super::MAX_NAME_BYTES;
use crate::error::{Field, Operation, StoreError};
use crate::hosting::bounded;
use crate::store::{Store, with_pool};

/// What a failure count is kept for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoginScope {
    /// A user name (whether or not such a user exists).
    User,
    /// A source IP address (or network).
    Ip,
}

impl LoginScope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ip => "ip",
        }
    }
}

/// The start of the bucket of `bucket_secs` that `now` falls in.
fn bucket_of(now: i64, bucket_secs: i64) -> i64 {
    let size = bucket_secs.max(1);
    now - now.rem_euclid(size)
}

impl Store {
    /// Counts one failed login of `key` in the bucket of `bucket_secs` that holds `now`.
    pub async fn login_failure_record(
        &self,
        scope: LoginScope,
        key: &str,
        now: i64,
        bucket_secs: i64,
    ) -> Result<(), StoreError> {
        bounded(Field::LoginKey, key, MAX_NAME_BYTES)?;
        const SQL: &str = "INSERT INTO login_failures (scope, key, bucket, failures) \
             VALUES ($1, $2, $3, 1) \
             ON CONFLICT (scope, key, bucket) DO UPDATE SET failures = login_failures.failures + 1";
        self.run(Operation::LoginFailureRecord, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(scope.as_str())
                    .bind(key)
                    .bind(bucket_of(now, bucket_secs))
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })
        })
        .await?;
        Ok(())
    }

    /// The failed logins of `key` in the buckets that start after `now - window_secs`.
    pub async fn login_failure_count(
        &self,
        scope: LoginScope,
        key: &str,
        now: i64,
        window_secs: i64,
    ) -> Result<i64, StoreError> {
        bounded(Field::LoginKey, key, MAX_NAME_BYTES)?;
        // PostgreSQL's SUM of a BIGINT is NUMERIC: cast back so both backends give an i64.
        const SQL: &str = "SELECT CAST(COALESCE(SUM(failures), 0) AS BIGINT) FROM login_failures \
             WHERE scope = $1 AND key = $2 AND bucket > $3";
        let (count,) = self
            .run(Operation::LoginFailureCount, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (i64,)>(SQL)
                        .bind(scope.as_str())
                        .bind(key)
                        .bind(now.saturating_sub(window_secs))
                        .fetch_one(pool)
                        .await
                })
            })
            .await?;
        Ok(count)
    }

    /// Forgets the failures of `key` (after a successful login of that user).
    pub async fn login_failure_clear(
        &self,
        scope: LoginScope,
        key: &str,
    ) -> Result<(), StoreError> {
        bounded(Field::LoginKey, key, MAX_NAME_BYTES)?;
        const SQL: &str = "DELETE FROM login_failures WHERE scope = $1 AND key = $2";
        self.run(Operation::LoginFailureClear, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(scope.as_str())
                    .bind(key)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })
        })
        .await?;
        Ok(())
    }

    /// Deletes buckets that start at or before `before` (older than any window in use);
    /// how many rows went.
    pub async fn login_failure_prune(&self, before: i64) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM login_failures WHERE bucket <= $1";
        let done = self
            .run(Operation::LoginFailurePrune, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL).bind(before).execute(pool).await.map(|r| r.rows_affected())
                })
            })
            .await?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_of;

    #[test]
    fn buckets_start_at_multiples_of_their_size() {
        for (now, size, start) in [
            (0, 60, 0),
            (59, 60, 0),
            (60, 60, 60),
            (1_700_000_123, 60, 1_700_000_100),
            (-1, 60, -60),
            (17, 0, 17),
        ] {
            assert_eq!(bucket_of(now, size), start, "{now} in buckets of {size}");
        }
    }
}
