//! Replicas on one database: leases, and the certificate changes other replicas pick up.
//!
//! ```text
//! leases   name (PK), holder, expires_at
//!
//! acquire(name, holder, now, until) = one statement:
//!   INSERT the lease, or ON CONFLICT take it over only WHERE it has expired or is ours
//!   -> one row written: held;   none: another holder has it
//! release(name, holder)             = DELETE WHERE name and holder match
//! ```
//!
//! Acquiring is a single `INSERT … ON CONFLICT … DO UPDATE … WHERE`: on PostgreSQL two
//! replicas inserting the same name at once serialize on the primary key (the second waits for
//! the first, then evaluates the `WHERE` against its row), and on SQLite one writer runs at a
//! time; on both, at most one caller sees its row written. Nothing is read first and written
//! after. A holder that dies leaves a lease that simply expires.
//!
//! The change feed ([`Store::certificates_changed_since`]) lists certificate rows by
//! `(updated_at, name)`, so a replica that did not order a certificate installs the one the
//! lease holder stored, and all replicas serve it. [`Store::certificate_wait`] records why a
//! certificate was not ordered (the name does not point here yet) without a `failed` state.
//!
//! Leases and certificates belong to host names, which are global: no tenant here.

use crate::error::{Field, Operation, StoreError};
use crate::hosting::MAX_TEXT_BYTES;
use crate::hosting::bounded;
use crate::hosting::certificates::{CERT_COLUMNS, CertRow, StoredCertificate, cert_from, truncate};
use crate::store::{Store, with_pool};

/// Longest lease name or holder the store accepts, in bytes.
pub const MAX_LEASE_TEXT: usize = 512;

/// A lease as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// What is leased (e.g. `cert:mta-sts.example.com`).
    pub name: String,
    /// Who holds it.
    pub holder: String,
    /// Until when, epoch seconds.
    pub expires_at: i64,
}

impl Store {
    /// Takes the lease `name` for `holder` until `expires_at` when it is free (absent or
    /// expired at `now`) or already `holder`'s (then extended). Returns whether `holder`
    /// holds it now.
    pub async fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        bounded(Field::LeaseName, name, MAX_LEASE_TEXT)?;
        bounded(Field::LeaseHolder, holder, MAX_LEASE_TEXT)?;
        const SQL: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder";
        let written = self
            .run(Operation::LeaseAcquire, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL)
                        .bind(name)
                        .bind(holder)
                        .bind(expires_at)
                        .bind(now)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
            })
            .await?;
        Ok(written == 1)
    }

    /// Gives the lease `name` up, if `holder` holds it. Returns whether it did.
    pub async fn lease_release(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";
        let deleted = self
            .run(Operation::LeaseRelease, async {
                with_pool!(self, pool => {
                    sqlx::query(SQL)
                        .bind(name)
                        .bind(holder)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
            })
            .await?;
        Ok(deleted == 1)
    }

    /// The lease `name`, expired or not, if a row exists.
    pub async fn lease_get(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        const SQL: &str = "SELECT name, holder, expires_at FROM leases WHERE name = $1";
        let row = self
            .run(Operation::LeaseGet, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (String, String, i64)>(SQL)
                        .bind(name)
                        .fetch_optional(pool)
                        .await
                })
            })
            .await?;
        Ok(row.map(|(name, holder, expires_at)| Lease {
            name,
            holder,
            expires_at,
        }))
    }

    /// Records that `name`'s certificate is not ordered for now and why (`reason`, e.g. the
    /// name does not resolve here yet): state `pending` with `last_error`, keeping any chain
    /// and key already stored. Like [`Store::certificate_fail`], a row updated later is kept.
    pub async fn certificate_wait(
        &self,
        name: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        bounded(Field::Domain, name, MAX_LEASE_TEXT)?;
        let reason = truncate(reason, MAX_TEXT_BYTES);
        const SQL: &str = "INSERT INTO certificates (name, state, last_error, updated_at) \
             VALUES ($1, 'pending', $2, $3) \
             ON CONFLICT (name) DO UPDATE SET state = 'pending', \
             last_error = excluded.last_error, updated_at = excluded.updated_at \
             WHERE certificates.updated_at <= excluded.updated_at";
        self.run(Operation::CertificateWait, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(name)
                    .bind(&reason)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// Certificates whose row changed at or after `since` (epoch seconds), ordered by
    /// `(updated_at, name)`, those after the key `after` when given, at most `limit`
    /// (install-wide; page with the last row's `(updated_at, name)`).
    pub async fn certificates_changed_since(
        &self,
        since: i64,
        after: Option<(i64, &str)>,
        limit: u32,
    ) -> Result<Vec<StoredCertificate>, StoreError> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE updated_at >= $1 \
             AND (updated_at > $2 OR (updated_at = $2 AND name > $3)) \
             ORDER BY updated_at, name LIMIT $4"
        );
        let (after_time, after_name) = after.unwrap_or((i64::MIN, ""));
        let rows = self
            .run(Operation::CertificatesChangedSince, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, CertRow>(&sql)
                        .bind(since)
                        .bind(after_time)
                        .bind(after_name)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        rows.into_iter().map(cert_from).collect()
    }
}
