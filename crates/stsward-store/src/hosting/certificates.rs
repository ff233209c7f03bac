//! The policy hosts' certificates and the ACME accounts that obtain them (RFC 8461 §3.3: the
//! policy host presents a certificate valid for `mta-sts.<domain>`).
//!
//! Private keys and account credentials arrive sealed: the store keeps the ciphertext and its
//! nonce and never sees a key in the clear (`stsward-server` encrypts with the key from the
//! config). Certificates belong to host names, which are global like domain names, so these
//! tables have no tenant; the HTTPS role loads them install-wide.

use std::fmt;
use std::str::FromStr;

use stsward_proto::mta_sts::pattern::MAX_NAME_OCTETS;

use super::{MAX_TEXT_BYTES, bounded, is_unique_violation};
use crate::error::{Field, Operation, StoreError};
use crate::store::{Store, with_pool};

/// Longest certificate chain the store accepts (PEM bytes).
pub const MAX_CHAIN_BYTES: usize = 64 * 1024;
/// Longest sealed value (key or credentials) the store accepts.
pub const MAX_SEALED_BYTES: usize = 16 * 1024;

/// A value encrypted by the caller: ciphertext and the nonce it was sealed with.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The ciphertext (with its authentication tag).
    pub ciphertext: Vec<u8>,
    /// The nonce.
    pub nonce: Vec<u8>,
}

impl fmt::Debug for Sealed {
    // Sealed, but still nothing to print in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

impl Sealed {
    fn check_storable(&self, field: Field) -> Result<(), StoreError> {
        let len = self.ciphertext.len() + self.nonce.len();
        if len > MAX_SEALED_BYTES {
            return Err(StoreError::TooLarge {
                field,
                len,
                max: MAX_SEALED_BYTES,
            });
        }
        Ok(())
    }
}

/// Where a certificate is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertState {
    /// Wanted, not yet obtained.
    Pending,
    /// Obtained; `not_after` says until when.
    Valid,
    /// The last attempt failed (`last_error` says why); a previous chain may still be kept.
    Failed,
}

impl CertState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Valid => "valid",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for CertState {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "valid" => Ok(Self::Valid),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::Corrupt {
                field: Field::State,
                value: other.chars().take(32).collect(),
            }),
        }
    }
}

impl fmt::Display for CertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One host name's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCertificate {
    /// The host name (`mta-sts.<domain>`), A-labels, lowercase.
    pub name: String,
    /// The chain, leaf first (PEM), once obtained.
    pub chain_pem: Option<String>,
    /// The private key, sealed.
    pub key: Option<Sealed>,
    /// Validity start, epoch seconds.
    pub not_before: Option<i64>,
    /// Validity end, epoch seconds.
    pub not_after: Option<i64>,
    /// Pending, valid or failed.
    pub state: CertState,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the row last changed, epoch seconds.
    pub updated_at: i64,
}

/// One ACME account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeAccount {
    /// The directory URL (one account per directory).
    pub directory_url: String,
    /// The account credentials (JSON), sealed.
    pub credentials: Sealed,
    /// The contact given to the CA.
    pub contact: Option<String>,
    /// When it was created, epoch seconds.
    pub created_at: i64,
}

pub(crate) type CertRow = (
    String,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<i64>,
    Option<i64>,
    String,
    Option<String>,
    i64,
);

pub(crate) const CERT_COLUMNS: &str = "name, chain_pem, key_ciphertext, key_nonce, not_before, not_after, \
     state, last_error, updated_at";

pub(crate) fn cert_from(row: CertRow) -> Result<StoredCertificate, StoreError> {
    let (name, chain_pem, ciphertext, nonce, not_before, not_after, state, last_error, updated) =
        row;
    let key = match (ciphertext, nonce) {
        (Some(ciphertext), Some(nonce)) => Some(Sealed { ciphertext, nonce }),
        _ => None,
    };
    Ok(StoredCertificate {
        name,
        chain_pem,
        key,
        not_before,
        not_after,
        state: state.parse()?,
        last_error,
        updated_at: updated,
    })
}

impl StoredCertificate {
    pub(crate) fn check_storable(&self) -> Result<(), StoreError> {
        bounded(Field::Domain, &self.name, MAX_NAME_OCTETS)?;
        if let Some(chain) = &self.chain_pem {
            bounded(Field::ChainPem, chain, MAX_CHAIN_BYTES)?;
        }
        if let Some(key) = &self.key {
            key.check_storable(Field::PrivateKey)?;
        }
        if let Some(error) = &self.last_error {
            bounded(Field::LastError, error, MAX_TEXT_BYTES)?;
        }
        Ok(())
    }
}

impl Store {
    /// Stores `cert` as the certificate of `cert.name`, replacing the row, unless the stored
    /// row was updated later (`updated_at` greater): two replicas writing at once keep the
    /// newer write.
    pub async fn certificate_put(&self, cert: &StoredCertificate) -> Result<(), StoreError> {
        cert.check_storable()?;
        const SQL: &str = "INSERT INTO certificates \
             (name, chain_pem, key_ciphertext, key_nonce, not_before, not_after, state, \
              last_error, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (name) DO UPDATE SET chain_pem = excluded.chain_pem, \
             key_ciphertext = excluded.key_ciphertext, key_nonce = excluded.key_nonce, \
             not_before = excluded.not_before, not_after = excluded.not_after, \
             state = excluded.state, last_error = excluded.last_error, \
             updated_at = excluded.updated_at \
             WHERE certificates.updated_at <= excluded.updated_at";
        let (ciphertext, nonce) = match &cert.key {
            Some(k) => (Some(k.ciphertext.as_slice()), Some(k.nonce.as_slice())),
            None => (None, None),
        };
        self.run(Operation::CertificatePut, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(&cert.name)
                    .bind(&cert.chain_pem)
                    .bind(ciphertext)
                    .bind(nonce)
                    .bind(cert.not_before)
                    .bind(cert.not_after)
                    .bind(cert.state.as_str())
                    .bind(&cert.last_error)
                    .bind(cert.updated_at)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// Records a failed attempt for `name`: state `failed` and `error`, keeping any chain
    /// and key already stored (a failed renewal must not take a valid certificate away).
    pub async fn certificate_fail(
        &self,
        name: &str,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        bounded(Field::Domain, name, MAX_NAME_OCTETS)?;
        let error: String = truncate(error, MAX_TEXT_BYTES);
        const SQL: &str = "INSERT INTO certificates (name, state, last_error, updated_at) \
             VALUES ($1, 'failed', $2, $3) \
             ON CONFLICT (name) DO UPDATE SET state = 'failed', last_error = excluded.last_error, \
             updated_at = excluded.updated_at \
             WHERE certificates.updated_at <= excluded.updated_at";
        self.run(Operation::CertificateFail, async {
            with_pool!(self, pool => {
                sqlx::query(SQL)
                    .bind(name)
                    .bind(&error)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
        })
        .await
    }

    /// The certificate of `name`, if any.
    pub async fn certificate_get(
        &self,
        name: &str,
    ) -> Result<Option<StoredCertificate>, StoreError> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE name = $1");
        let row = self
            .run(Operation::CertificateGet, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, CertRow>(&sql).bind(name).fetch_optional(pool).await
                })
            })
            .await?;
        row.map(cert_from).transpose()
    }

    /// Certificates ordered by name, those after `after` when given, at most `limit`
    /// (install-wide: the HTTPS role loads them all, page by page).
    pub async fn certificate_list(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredCertificate>, StoreError> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE name > $1 ORDER BY name LIMIT $2"
        );
        let rows = self
            .run(Operation::CertificateList, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, CertRow>(&sql)
                        .bind(after.unwrap_or(""))
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        rows.into_iter().map(cert_from).collect()
    }

    /// The ACME account of `directory_url`, if any.
    pub async fn acme_account_get(
        &self,
        directory_url: &str,
    ) -> Result<Option<AcmeAccount>, StoreError> {
        const SQL: &str = "SELECT directory_url, credentials_ciphertext, credentials_nonce, \
             contact, created_at FROM acme_accounts WHERE directory_url = $1";
        let row = self
            .run(Operation::AcmeAccountGet, async {
                with_pool!(self, pool => {
                    sqlx::query_as::<_, (String, Vec<u8>, Vec<u8>, Option<String>, i64)>(SQL)
                        .bind(directory_url)
                        .fetch_optional(pool)
                        .await
                })
            })
            .await?;
        Ok(row.map(
            |(directory_url, ciphertext, nonce, contact, created_at)| AcmeAccount {
                directory_url,
                credentials: Sealed { ciphertext, nonce },
                contact,
                created_at,
            },
        ))
    }

    /// Stores `account` unless its directory has one already, and returns the stored one:
    /// two replicas creating an account at once both end up using the first one stored.
    pub async fn acme_account_insert(
        &self,
        account: &AcmeAccount,
    ) -> Result<AcmeAccount, StoreError> {
        bounded(Field::DirectoryUrl, &account.directory_url, MAX_TEXT_BYTES)?;
        if let Some(contact) = &account.contact {
            bounded(Field::Contact, contact, MAX_TEXT_BYTES)?;
        }
        account.credentials.check_storable(Field::Credentials)?;
        const SQL: &str = "INSERT INTO acme_accounts \
             (directory_url, credentials_ciphertext, credentials_nonce, contact, created_at) \
             VALUES ($1, $2, $3, $4, $5)";
        self.run(Operation::AcmeAccountInsert, async {
            with_pool!(self, pool => {
                match sqlx::query(SQL)
                    .bind(&account.directory_url)
                    .bind(&account.credentials.ciphertext)
                    .bind(&account.credentials.nonce)
                    .bind(&account.contact)
                    .bind(account.created_at)
                    .execute(pool)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => Ok(()),
                    Err(e) => Err(e),
                }
            })
        })
        .await?;
        self.acme_account_get(&account.directory_url)
            .await?
            .ok_or(StoreError::Corrupt {
                field: Field::DirectoryUrl,
                value: account.directory_url.chars().take(64).collect(),
            })
    }
}

/// At most `max` bytes of `s`, cut at a character boundary, without NUL.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars().filter(|c| *c != '\0') {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_characters_whole_and_drops_nul() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("a\0bc", 2), "ab");
        assert_eq!(truncate("éé", 3), "é");
    }
}
