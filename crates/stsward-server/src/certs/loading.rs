//! Installing stored certificates into the policy host: at start ([`CertManager::load_all`])
//! and from the rows other replicas changed ([`CertManager::load_changed`]). A row is served
//! only when its key unseals, chain and key parse and match, and the leaf names the host and
//! is valid now (RFC 8461 §3.3); any other row is logged and treated as missing.

use std::sync::PoisonError;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use stsward_store::StoredCertificate;
use time::OffsetDateTime;

use super::{CertError, CertManager, Installed, PAGE, from_unix, unix};
use crate::acme::renewal;

/// The chain and key (PEM) as a certificate the host presents.
pub(super) fn certified_key(
    name: &str,
    chain_pem: &str,
    key_pem: &[u8],
) -> Result<CertifiedKey, CertError> {
    let bad = |reason: String| CertError::Certificate {
        name: name.to_owned(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("chain PEM: {e}")))?;
    if chain.is_empty() {
        return Err(bad("the chain holds no certificate".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad(format!("key PEM: {e}")))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(|e| bad(e.to_string()))
}

impl CertManager {
    /// At start: installs every stored certificate that is valid now. Returns how many.
    /// A row that does not unseal or parse is logged and treated as missing (never served;
    /// the next run orders a new one).
    pub async fn load_all(&self) -> Result<usize, CertError> {
        let now = self.now();
        let mut installed = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .inner
                .setup
                .store
                .certificate_list(after.as_deref(), PAGE)
                .await?;
            let full = page.len() == PAGE as usize;
            after = page.last().map(|r| r.name.clone());
            for row in &page {
                if self.install_row(row, now) {
                    installed += 1;
                }
            }
            if !full {
                break;
            }
        }
        self.set_last_look(unix(now));
        Ok(installed)
    }

    pub(super) fn set_last_look(&self, at: i64) {
        let mut last = self
            .inner
            .last_look
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *last = Some(last.map_or(at, |l| l.max(at)));
    }

    /// Installs the certificates whose rows changed at or after `since` (epoch seconds) and
    /// that this replica does not already serve: how replicas that did not order a
    /// certificate pick it up. Returns the names installed.
    pub async fn load_changed(&self, since: i64) -> Result<Vec<String>, CertError> {
        let now = self.now();
        let mut picked = Vec::new();
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = self
                .inner
                .setup
                .store
                .certificates_changed_since(
                    since,
                    after.as_ref().map(|(t, n)| (*t, n.as_str())),
                    PAGE,
                )
                .await?;
            let full = page.len() == PAGE as usize;
            after = page.last().map(|r| (r.updated_at, r.name.clone()));
            for row in &page {
                let known = self
                    .names()
                    .get(&row.name)
                    .and_then(|s| s.installed)
                    .map(|i| i.updated_at);
                if known.is_some_and(|u| u >= row.updated_at) {
                    continue;
                }
                if self.install_row(row, now) {
                    picked.push(row.name.clone());
                }
            }
            if !full {
                break;
            }
        }
        Ok(picked)
    }

    /// Unseals and installs `row` when it holds a certificate valid at `now`. Logs and
    /// returns false for a row that cannot be served.
    pub(super) fn install_row(&self, row: &StoredCertificate, now: OffsetDateTime) -> bool {
        let (Some(chain), Some(sealed), Some(nb), Some(na)) =
            (&row.chain_pem, &row.key, row.not_before, row.not_after)
        else {
            return false;
        };
        if na <= unix(now) {
            return false;
        }
        let opened = self
            .inner
            .setup
            .sealing
            .open(sealed, &row.name, "certificate private key")
            .map_err(|source| CertError::Seal {
                name: row.name.clone(),
                source,
            })
            .and_then(|key| certified_key(&row.name, chain, &key));
        let installed = opened.and_then(|ck| {
            self.inner
                .setup
                .sites
                .set_certificate(&row.name, ck)
                .map_err(|e| CertError::Certificate {
                    name: row.name.clone(),
                    reason: e.to_string(),
                })
        });
        match installed {
            Ok(()) => {
                let renew_at = renewal::renew_at(from_unix(nb), from_unix(na));
                self.names().entry(row.name.clone()).or_default().installed = Some(Installed {
                    not_after: na,
                    updated_at: row.updated_at,
                    renew_at,
                });
                true
            }
            Err(e) => {
                tracing::error!(name = %row.name, error = %e,
                    "stored certificate cannot be served; treated as missing");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_pem_is_refused_with_the_name() {
        let cases: [(&str, &[u8], &str); 2] = [
            ("", b"", "no certificate"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                b"not a key",
                "key PEM",
            ),
        ];
        for (chain, key, why) in cases {
            match certified_key("mta-sts.example.com", chain, key) {
                Err(e @ CertError::Certificate { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains("mta-sts.example.com"), "{text}");
                    assert!(text.contains(why), "{why}: {text}");
                }
                Err(e) => panic!("{why}: {e}"),
                Ok(_) => panic!("{why}: accepted"),
            }
        }
    }
}
