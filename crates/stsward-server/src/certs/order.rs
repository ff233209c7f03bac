//! One name under its lease: re-read the row, the pre-flight (the policy host name must resolve
//! to this service before a CA is asked, [`crate::acme::preflight`]), an order slot, the
//! order, then one row write with the chain, the sealed key and the validity, and the host
//! serves it (RFC 8461 §3.3). Failures are stored on the row (`last_error`) and back off.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use stsward_store::{CertState, StoredCertificate};
use time::OffsetDateTime;

use super::{CertError, CertManager, Installed, Outcome, certified_key, from_unix, seed, unix};
use crate::acme::Acme;
use crate::acme::preflight;
use crate::acme::renewal::{self, Backoff};

impl CertManager {
    pub(super) async fn under_lease(
        &self,
        domain: &str,
        name: &str,
        now: OffsetDateTime,
    ) -> Outcome {
        let setup = &self.inner.setup;
        // Another replica may have stored a fresh certificate (or a failure) since we looked.
        match setup.store.certificate_get(name).await {
            Ok(Some(row)) => {
                let known = self
                    .names()
                    .get(name)
                    .and_then(|s| s.installed)
                    .map(|i| i.updated_at);
                if known.is_none_or(|u| u < row.updated_at) && self.install_row(&row, now) {
                    if !self.is_due(name, now) {
                        return Outcome::PickedUp;
                    }
                } else if let Some(wait) = self.recent_failure_elsewhere(&row, now) {
                    self.names().entry(name.to_owned()).or_default().retry_at = Some(wait);
                    return Outcome::Skipped;
                }
            }
            Ok(None) => {}
            Err(e) => return Outcome::Failed(format!("reading the row: {e}")),
        }

        let checked = match preflight::check(&setup.dns, domain, &setup.target).await {
            Ok(c) => c,
            Err(e) => {
                let reason = e.to_string();
                tracing::info!(name, reason, "pre-flight refused; no order placed");
                let written = setup
                    .store
                    .certificate_wait(name, &reason, unix(self.write_time(now)))
                    .await;
                if let Err(e) = written {
                    tracing::warn!(name, error = %e, "pre-flight result not stored");
                }
                self.back_off(name, now, &self.inner.settings.preflight_backoff, None);
                return Outcome::Waiting(reason);
            }
        };

        {
            let mut budget = self
                .inner
                .budget
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if budget.try_start(now).is_err() {
                return Outcome::Deferred;
            }
        }

        let acme = match self.account().await {
            Ok(a) => a,
            Err(e) => return self.failed(name, now, &e.to_string(), None).await,
        };
        self.inner.orders.fetch_add(1, Ordering::SeqCst);
        let issued = match acme
            .order(&checked, setup.challenge, &setup.challenges)
            .await
        {
            Ok(i) => i,
            Err(e) => {
                if let Some(until) = e.retry_after() {
                    self.inner
                        .budget
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pause_until(until);
                }
                return self
                    .failed(name, now, &e.to_string(), e.retry_after())
                    .await;
            }
        };

        match self.store_and_install(acme, name, &issued, now).await {
            Ok(()) => {
                tracing::info!(name, not_after = %issued.not_after, validated_by = ?issued.validated_by,
                    "certificate ordered and installed");
                Outcome::Ordered
            }
            Err(e) => self.failed(name, now, &e.to_string(), None).await,
        }
    }

    /// The time written on rows: the clock, never before `now`.
    pub(super) fn write_time(&self, now: OffsetDateTime) -> OffsetDateTime {
        self.now().max(now)
    }

    /// A failure another replica stored recently enough that this one backs off too.
    pub(super) fn recent_failure_elsewhere(
        &self,
        row: &StoredCertificate,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        let own = self.names().get(&row.name).map_or(0, |s| s.failures);
        if own > 0 || row.last_error.is_none() {
            return None;
        }
        let first = match row.state {
            CertState::Pending => self.inner.settings.preflight_backoff.first,
            CertState::Failed => self.inner.settings.order_backoff.first,
            CertState::Valid => return None,
        };
        let until = from_unix(row.updated_at) + first;
        (now < until).then_some(until)
    }

    pub(super) fn back_off(
        &self,
        name: &str,
        now: OffsetDateTime,
        backoff: &Backoff,
        ca: Option<OffsetDateTime>,
    ) {
        let mut names = self.names();
        let state = names.entry(name.to_owned()).or_default();
        state.failures = state.failures.saturating_add(1);
        state.retry_at = Some(backoff.retry_at(now, state.failures, seed(name, now), ca));
    }

    pub(super) async fn failed(
        &self,
        name: &str,
        now: OffsetDateTime,
        reason: &str,
        ca: Option<OffsetDateTime>,
    ) -> Outcome {
        tracing::warn!(name, reason, "certificate order failed");
        if let Err(e) = self
            .inner
            .setup
            .store
            .certificate_fail(name, reason, unix(self.write_time(now)))
            .await
        {
            tracing::warn!(name, error = %e, "failure not stored");
        }
        self.back_off(name, now, &self.inner.settings.order_backoff, ca);
        Outcome::Failed(reason.to_owned())
    }

    /// Seals the key, stores chain + sealed key + validity in one write, installs.
    pub(super) async fn store_and_install(
        &self,
        acme: &Acme,
        name: &str,
        issued: &crate::acme::Issued,
        now: OffsetDateTime,
    ) -> Result<(), CertError> {
        let setup = &self.inner.setup;
        let ck = certified_key(name, &issued.chain_pem, issued.key_pem.as_bytes())?;
        let sealed = setup
            .sealing
            .seal(issued.key_pem.as_bytes(), name)
            .map_err(|source| CertError::Seal {
                name: name.to_owned(),
                source,
            })?;
        let updated_at = unix(self.write_time(now));
        let row = StoredCertificate {
            name: name.to_owned(),
            chain_pem: Some(issued.chain_pem.clone()),
            key: Some(sealed),
            not_before: Some(unix(issued.not_before)),
            not_after: Some(unix(issued.not_after)),
            state: CertState::Valid,
            last_error: None,
            updated_at,
        };
        setup.store.certificate_put(&row).await?;
        setup
            .sites
            .set_certificate(name, ck)
            .map_err(|e| CertError::Certificate {
                name: name.to_owned(),
                reason: e.to_string(),
            })?;
        // RFC 9773: the CA's suggested window, where it offers one; else two thirds.
        let ari = match acme.renewal_window(&issued.chain_pem).await {
            Ok(w) => w.map(|(w, _)| w),
            Err(e) => {
                tracing::info!(name, error = %e, "no renewal information; two thirds apply");
                None
            }
        };
        let renew_at = renewal::next_renewal(
            issued.not_before,
            issued.not_after,
            ari.as_ref(),
            seed(name, now),
        );
        let mut names = self.names();
        let state = names.entry(name.to_owned()).or_default();
        state.installed = Some(Installed {
            not_after: unix(issued.not_after),
            updated_at,
            renew_at,
        });
        state.failures = 0;
        state.retry_at = None;
        Ok(())
    }
}
