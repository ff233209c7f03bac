//! The ACME account (RFC 8555 §7.3, paraphrased: one account per CA, identified by its key):
//! loaded from the store and unsealed, or created at the CA and stored sealed; once per
//! manager, the first time an order is placed. Two replicas creating one at once both end up
//! with the one stored first.

use stsward_store::AcmeAccount;

use super::{CertError, CertManager, unix};
use crate::acme::{AccountOrigin, Acme, StoredAccount};

impl CertManager {
    /// The ACME account: loaded from the store (unsealed), or created and stored sealed;
    /// once per manager.
    pub(super) async fn account(&self) -> Result<&Acme, CertError> {
        self.inner
            .account
            .get_or_try_init(|| self.load_or_create_account())
            .await
    }

    async fn load_or_create_account(&self) -> Result<Acme, CertError> {
        let setup = &self.inner.setup;
        let dir = setup.acme.directory_url.clone();
        let unseal = |row: &AcmeAccount| -> Result<StoredAccount, CertError> {
            let json = setup
                .sealing
                .open(&row.credentials, &dir, "ACME account credentials")
                .map_err(|source| CertError::Seal {
                    name: dir.clone(),
                    source,
                })?;
            let text = String::from_utf8(json).map_err(|_| CertError::Certificate {
                name: dir.clone(),
                reason: "stored ACME credentials are not UTF-8".to_owned(),
            })?;
            Ok(StoredAccount::from_json(text)?)
        };
        let stored = match setup.store.acme_account_get(&dir).await? {
            Some(row) => Some(unseal(&row)?),
            None => None,
        };
        let (acme, origin) = Acme::new(setup.acme.clone(), stored.as_ref()).await?;
        let AccountOrigin::Created(created) = origin else {
            return Ok(acme);
        };
        let sealed = setup
            .sealing
            .seal(created.as_json().as_bytes(), &dir)
            .map_err(|source| CertError::Seal {
                name: dir.clone(),
                source,
            })?;
        let row = AcmeAccount {
            directory_url: dir.clone(),
            credentials: sealed,
            contact: (!setup.acme.contact.is_empty()).then(|| setup.acme.contact.join(",")),
            created_at: unix(self.now()),
        };
        let kept = setup.store.acme_account_insert(&row).await?;
        let kept = unseal(&kept)?;
        if kept == created {
            return Ok(acme);
        }
        // Another replica stored its account first: use that one.
        let (acme, _) = Acme::new(setup.acme.clone(), Some(&kept)).await?;
        Ok(acme)
    }
}
