//! # RFC 8555 — certificates for the policy host from an ACME CA
//!
//! stsward orders the certificate for each hosted `mta-sts.<domain>` (RFC 8461 §3.3: the
//! policy host must present a certificate valid for that name) from an ACME CA, through
//! instant-acme, answering HTTP-01 (RFC 8555 §8.3) or TLS-ALPN-01 (RFC 8737 §3) challenges
//! through the policy host's own listeners.
//!
//! ```text
//! order(name)   = pre-flight (name resolves here)                        preflight.rs
//!                 -> newOrder -> authorization -> challenge (preferred type)
//!                 -> [not offered or not valid] new order, other type      (fallback)
//!                 -> finalize (CSR, fresh ECDSA P-256 key) -> download chain
//! every wait    = a request deadline (transport.rs) inside the order's overall deadline
//! challenges    = set on the responder before "ready", removed after, success or failure
//! ```
//!
//! - [`ChallengeResponder`] is what the policy host implements ([`crate::host::Challenges`]
//!   does): this module hands it the HTTP-01 key authorization or the TLS-ALPN-01 certificate
//!   ([`tls_alpn`]).
//! - [`Acme`] holds the account ([`StoredAccount`] is what the caller keeps, encrypted, in the
//!   store; this module never touches the store).
//! - [`renewal`] holds the pure policies a scheduler drives: two-thirds renewal, ARI, back-off,
//!   the per-hour order budget.
//! - Errors ([`AcmeError`]) name the step and carry the CA's problem document (RFC 8555 §6.7).
//!
//! An authorization the CA already holds as valid (RFC 8555 §7.1.4, reuse) needs no challenge
//! and none is set.
//!
//! RFC 8555, RFC 8737 and RFC 9773 are not in the project's reference texts: where they are
//! cited here and in the submodules, the text is paraphrased, never quoted.

mod error;
pub mod preflight;
pub mod renewal;
pub mod tls_alpn;
mod transport;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use tokio::time::Instant;

pub use error::{AcmeError, CaProblem, RATE_LIMITED, Step};
pub use preflight::{CheckedName, PreflightError, ServiceTarget};
pub use renewal::RenewalWindow;
pub use transport::MAX_RESPONSE_BYTES;

use transport::{RetryAfterSlot, Transport};

/// Time allowed for one HTTP request to the CA.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for a whole order with one challenge type, every poll included.
pub const DEFAULT_ORDER_TIMEOUT: Duration = Duration::from_secs(300);
/// First pause between polls of an order; it grows by [`POLL_BACKOFF`] per poll, and the CA's
/// `Retry-After` replaces it when given.
const POLL_FIRST_DELAY: Duration = Duration::from_millis(250);
const POLL_BACKOFF: f32 = 1.5;

/// The challenge types stsward answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// RFC 8555 §8.3: `GET http://<name>/.well-known/acme-challenge/<token>` on port 80.
    Http01,
    /// RFC 8737 §3: a TLS handshake on port 443 with ALPN `acme-tls/1`.
    TlsAlpn01,
}

impl ChallengeKind {
    /// The other type: the fallback.
    pub fn other(self) -> ChallengeKind {
        match self {
            ChallengeKind::Http01 => ChallengeKind::TlsAlpn01,
            ChallengeKind::TlsAlpn01 => ChallengeKind::Http01,
        }
    }

    fn acme_type(self) -> ChallengeType {
        match self {
            ChallengeKind::Http01 => ChallengeType::Http01,
            ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
        }
    }
}

impl fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        })
    }
}

/// Why a responder would not take a challenge answer (e.g. its table is full): the order
/// stops at the challenge step instead of letting the CA validate against nothing.
pub type ResponderError = Box<dyn std::error::Error + Send + Sync>;

/// What the policy host implements so that the CA can validate: it serves what is set until
/// it is removed. [`crate::host::Challenges`] implements it.
pub trait ChallengeResponder: Send + Sync {
    /// RFC 8555 §8.3: answer `GET /.well-known/acme-challenge/<token>` on the HTTP listener
    /// with `key_authorization`.
    fn set_http01(&self, token: &str, key_authorization: &str) -> Result<(), ResponderError>;
    /// Stop answering for `token`.
    fn remove_http01(&self, token: &str);
    /// RFC 8737: a self-signed certificate for `name` with the acmeIdentifier extension, to
    /// present to handshakes for `name` that offer ALPN `acme-tls/1` (and only those).
    fn set_tls_alpn01(
        &self,
        name: &str,
        cert: rustls::sign::CertifiedKey,
    ) -> Result<(), ResponderError>;
    /// Stop presenting the challenge certificate for `name`.
    fn remove_tls_alpn01(&self, name: &str);
}

impl ChallengeResponder for crate::host::Challenges {
    fn set_http01(&self, token: &str, key_authorization: &str) -> Result<(), ResponderError> {
        crate::host::Challenges::set_http01(self, token, key_authorization).map_err(Into::into)
    }

    fn remove_http01(&self, token: &str) {
        crate::host::Challenges::remove_http01(self, token);
    }

    fn set_tls_alpn01(
        &self,
        name: &str,
        cert: rustls::sign::CertifiedKey,
    ) -> Result<(), ResponderError> {
        crate::host::Challenges::set_tls_alpn01(self, name, cert).map_err(Into::into)
    }

    fn remove_tls_alpn01(&self, name: &str) {
        crate::host::Challenges::remove_tls_alpn01(self, name);
    }
}

/// How to reach the CA.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// The directory URL (RFC 8555 §7.1.1).
    pub directory_url: String,
    /// Account contacts, e.g. `mailto:admin@example.com` (RFC 8555 §7.3).
    pub contact: Vec<String>,
    /// Roots trusted for the CA's own HTTPS; the web PKI when `None` (a test CA such as
    /// Pebble needs its own).
    pub ca_roots: Option<Vec<CertificateDer<'static>>>,
    /// Time allowed for one HTTP request.
    pub request_timeout: Duration,
    /// Time allowed for one order attempt (one challenge type), polls included; it also
    /// bounds creating or loading the account.
    pub order_timeout: Duration,
}

impl AcmeConfig {
    /// A config with the default timeouts and the web PKI.
    pub fn new(directory_url: impl Into<String>, contact: Vec<String>) -> AcmeConfig {
        AcmeConfig {
            directory_url: directory_url.into(),
            contact,
            ca_roots: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            order_timeout: DEFAULT_ORDER_TIMEOUT,
        }
    }
}

/// An ACME account's credentials (its id, its private key, the directory URL), as JSON the
/// caller stores encrypted. Debug output hides it: it holds a private key.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAccount(String);

impl StoredAccount {
    /// Credentials read back from storage; checked to parse.
    pub fn from_json(json: impl Into<String>) -> Result<StoredAccount, AcmeError> {
        let json = json.into();
        let stored = StoredAccount(json);
        let _checked = stored.credentials()?;
        Ok(stored)
    }

    /// The JSON to store (encrypted: it holds the account's private key).
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// The directory URL the account belongs to, when the credentials name it.
    pub fn directory_url(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(&self.0).ok()?;
        value.get("directory")?.as_str().map(str::to_owned)
    }

    fn credentials(&self) -> Result<instant_acme::AccountCredentials, AcmeError> {
        serde_json::from_str(&self.0).map_err(|e| AcmeError::Credentials {
            reason: e.to_string(),
        })
    }
}

impl fmt::Debug for StoredAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredAccount(<secret>)")
    }
}

/// A certificate issued for one name.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The name (`mta-sts.<domain>`).
    pub name: String,
    /// The chain, leaf first, PEM.
    pub chain_pem: String,
    /// The leaf's ECDSA P-256 private key, PKCS#8 PEM. Store it encrypted.
    pub key_pem: String,
    /// The leaf's notBefore.
    pub not_before: OffsetDateTime,
    /// The leaf's notAfter.
    pub not_after: OffsetDateTime,
    /// The challenge type that validated the name (the fallback when the preferred failed),
    /// `None` when the CA reused a valid authorization.
    pub validated_by: Option<ChallengeKind>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("name", &self.name)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("validated_by", &self.validated_by)
            .finish_non_exhaustive()
    }
}

/// An ACME account at one CA.
pub struct Acme {
    account: Account,
    config: AcmeConfig,
    retry_after: RetryAfterSlot,
}

impl fmt::Debug for Acme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acme")
            .field("directory_url", &self.config.directory_url)
            .field("account", &self.account.id())
            .finish_non_exhaustive()
    }
}

/// What [`Acme::new`] did with the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountOrigin {
    /// The stored account was loaded.
    Loaded,
    /// A new account was created (none was stored, or the stored one belongs to another
    /// directory); the caller stores the new credentials.
    Created(StoredAccount),
}

impl Acme {
    /// Loads the stored account, or creates one (agreeing to the CA's terms of service) when
    /// there is none or it belongs to another directory.
    pub async fn new(
        config: AcmeConfig,
        stored: Option<&StoredAccount>,
    ) -> Result<(Acme, AccountOrigin), AcmeError> {
        let dir = config.directory_url.clone();
        let retry_after = RetryAfterSlot::default();
        let transport = Transport::new(
            config.ca_roots.as_deref(),
            config.request_timeout,
            retry_after.clone(),
        )
        .map_err(|reason| AcmeError::Certificate {
            step: Step::Account,
            name: dir.clone(),
            reason,
        })?;
        let builder = Account::builder_with_http(Box::new(transport));
        let deadline = Instant::now() + config.order_timeout;
        let reusable = stored.filter(|s| s.directory_url().as_deref() == Some(dir.as_str()));
        let (account, origin) = match reusable {
            Some(stored) => {
                let credentials = stored.credentials()?;
                let account = within(
                    deadline,
                    Step::Account,
                    &dir,
                    builder.from_credentials(credentials),
                )
                .await?;
                (account, AccountOrigin::Loaded)
            }
            None => {
                let contact: Vec<&str> = config.contact.iter().map(String::as_str).collect();
                let new = NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                };
                let (account, credentials) = within(
                    deadline,
                    Step::Account,
                    &dir,
                    builder.create(&new, dir.clone(), None),
                )
                .await?;
                let json =
                    serde_json::to_string(&credentials).map_err(|e| AcmeError::Credentials {
                        reason: e.to_string(),
                    })?;
                (account, AccountOrigin::Created(StoredAccount(json)))
            }
        };
        Ok((
            Acme {
                account,
                config,
                retry_after,
            },
            origin,
        ))
    }

    /// The account URL at the CA.
    pub fn account_id(&self) -> &str {
        self.account.id()
    }

    /// Orders a certificate for a name that passed the pre-flight check, answering
    /// `preferred` challenges and falling back to the other type when the CA does not offer
    /// `preferred` or it does not validate. Each of the (at most two) attempts has
    /// [`AcmeConfig::order_timeout`]. Every challenge set on `responder` is removed before
    /// this returns (or when the future is dropped).
    pub async fn order(
        &self,
        checked: &CheckedName,
        preferred: ChallengeKind,
        responder: &dyn ChallengeResponder,
    ) -> Result<Issued, AcmeError> {
        let first = self.attempt(checked.name(), preferred, responder).await;
        match first {
            Err(e) if e.other_challenge_may_help() => {
                tracing::info!(name = checked.name(), error = %e, fallback = %preferred.other(),
                    "ACME order failed with the preferred challenge type; trying the other");
                self.attempt(checked.name(), preferred.other(), responder)
                    .await
                    .map_err(|fallback| AcmeError::BothFailed {
                        preferred: Box::new(e),
                        fallback: Box::new(fallback),
                    })
            }
            other => other,
        }
    }

    /// RFC 9773 §4.2: the renewal window the CA suggests for the chain's leaf, with how long
    /// to wait before asking again; `None` when the CA does not offer renewal information.
    pub async fn renewal_window(
        &self,
        chain_pem: &str,
    ) -> Result<Option<(RenewalWindow, Duration)>, AcmeError> {
        let name = "certificate";
        let leaf = first_certificate(chain_pem).map_err(|reason| AcmeError::Certificate {
            step: Step::RenewalInfo,
            name: name.to_owned(),
            reason,
        })?;
        let id = instant_acme::CertificateIdentifier::try_from(&leaf).map_err(|reason| {
            AcmeError::Certificate {
                step: Step::RenewalInfo,
                name: name.to_owned(),
                reason,
            }
        })?;
        let deadline = Instant::now() + self.config.request_timeout;
        match tokio::time::timeout_at(deadline, self.account.renewal_info(&id)).await {
            Err(_) => Err(AcmeError::Timeout {
                step: Step::RenewalInfo,
                name: name.to_owned(),
                after: self.config.request_timeout,
            }),
            Ok(Err(instant_acme::Error::Unsupported(_))) => Ok(None),
            Ok(Err(e)) => Err(AcmeError::at(Step::RenewalInfo, name, e)),
            Ok(Ok((info, again))) => Ok(Some((
                RenewalWindow {
                    start: info.suggested_window.start,
                    end: info.suggested_window.end,
                },
                again,
            ))),
        }
    }

    /// One order with one challenge type, under the order deadline.
    async fn attempt(
        &self,
        name: &str,
        kind: ChallengeKind,
        responder: &dyn ChallengeResponder,
    ) -> Result<Issued, AcmeError> {
        let deadline = Instant::now() + self.config.order_timeout;
        let mut armed = Armed {
            responder,
            tokens: Vec::new(),
            alpn_names: Vec::new(),
        };
        let result = self.attempt_inner(name, kind, deadline, &mut armed).await;
        // Remove the challenges now rather than at drop, before the caller goes on.
        armed.disarm();
        result.map_err(|e| self.with_retry_after(e))
    }

    async fn attempt_inner(
        &self,
        name: &str,
        kind: ChallengeKind,
        deadline: Instant,
        armed: &mut Armed<'_>,
    ) -> Result<Issued, AcmeError> {
        let identifiers = [Identifier::Dns(name.to_owned())];
        let mut order = within(
            deadline,
            Step::NewOrder,
            name,
            self.account.new_order(&NewOrder::new(&identifiers)),
        )
        .await?;

        let mut challenged = false;
        let mut authorizations = order.authorizations();
        loop {
            let next = tokio::time::timeout_at(deadline, authorizations.next())
                .await
                .map_err(|_| self.timeout(Step::Authorization, name))?;
            let Some(authz) = next else { break };
            let mut authz = authz.map_err(|e| AcmeError::at(Step::Authorization, name, e))?;
            match authz.status {
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                other => {
                    return Err(AcmeError::Authorization {
                        name: name.to_owned(),
                        url: authz.url().to_owned(),
                        kind,
                        status: format!("{other:?}").to_ascii_lowercase(),
                        problem: None,
                    });
                }
            }
            let offered: Vec<String> = authz
                .challenges
                .iter()
                .map(|c| challenge_type_name(&c.r#type))
                .collect();
            let Some(mut challenge) = authz.challenge(kind.acme_type()) else {
                return Err(AcmeError::NoChallenge {
                    name: name.to_owned(),
                    wanted: kind,
                    offered,
                });
            };
            let key_authorization = challenge.key_authorization();
            match kind {
                ChallengeKind::Http01 => {
                    // Noted before it is set: a responder that fails half-way is still
                    // asked to remove it.
                    armed.tokens.push(challenge.token.clone());
                    armed
                        .responder
                        .set_http01(&challenge.token, key_authorization.as_str())
                        .map_err(|source| AcmeError::Responder {
                            name: name.to_owned(),
                            kind,
                            source,
                        })?;
                }
                ChallengeKind::TlsAlpn01 => {
                    let cert =
                        tls_alpn::challenge_certificate(name, key_authorization.digest().as_ref())
                            .map_err(|reason| AcmeError::Certificate {
                                step: Step::Challenge,
                                name: name.to_owned(),
                                reason,
                            })?;
                    armed.alpn_names.push(name.to_owned());
                    armed
                        .responder
                        .set_tls_alpn01(name, cert)
                        .map_err(|source| AcmeError::Responder {
                            name: name.to_owned(),
                            kind,
                            source,
                        })?;
                }
            }
            within(deadline, Step::Challenge, name, challenge.set_ready()).await?;
            challenged = true;
        }

        // An order whose authorization failed is `invalid`, with or without the problem in
        // the order itself (Pebble sets it, and instant-acme then returns it as an error):
        // either way the authorization is looked up, so that the error names it.
        let polled =
            tokio::time::timeout_at(deadline, order.poll_ready(&self.poll_policy(deadline))).await;
        match polled {
            Ok(Ok(OrderStatus::Ready)) => {}
            Ok(Ok(_)) => {
                return Err(self
                    .failed_authorization(&mut order, name, kind, deadline, None)
                    .await);
            }
            Ok(Err(instant_acme::Error::Api(problem))) => {
                let problem = Box::new(CaProblem::from_acme(&problem));
                return Err(self
                    .failed_authorization(&mut order, name, kind, deadline, Some(problem))
                    .await);
            }
            Ok(Err(instant_acme::Error::Timeout(_))) | Err(_) => {
                return Err(self.timeout(Step::Authorization, name));
            }
            Ok(Err(e)) => return Err(AcmeError::at(Step::Authorization, name, e)),
        }

        let key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| AcmeError::Certificate {
                step: Step::Finalize,
                name: name.to_owned(),
                reason: format!("certificate key: {e}"),
            })?;
        let mut params =
            CertificateParams::new(vec![name.to_owned()]).map_err(|e| AcmeError::Certificate {
                step: Step::Finalize,
                name: name.to_owned(),
                reason: format!("CSR: {e}"),
            })?;
        params.distinguished_name = DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .map_err(|e| AcmeError::Certificate {
                step: Step::Finalize,
                name: name.to_owned(),
                reason: format!("CSR: {e}"),
            })?;
        within(
            deadline,
            Step::Finalize,
            name,
            order.finalize_csr(csr.der()),
        )
        .await?;
        let chain_pem = within(
            deadline,
            Step::Download,
            name,
            order.poll_certificate(&self.poll_policy(deadline)),
        )
        .await?;
        let (not_before, not_after) =
            validity(&chain_pem).map_err(|reason| AcmeError::Certificate {
                step: Step::Download,
                name: name.to_owned(),
                reason,
            })?;
        Ok(Issued {
            name: name.to_owned(),
            chain_pem,
            key_pem: key.serialize_pem(),
            not_before,
            not_after,
            validated_by: challenged.then_some(kind),
        })
    }

    /// The order went `invalid`: find the authorization that failed and what its challenge
    /// said (else what the order said, `order_problem`).
    async fn failed_authorization(
        &self,
        order: &mut instant_acme::Order,
        name: &str,
        kind: ChallengeKind,
        deadline: Instant,
        order_problem: Option<Box<CaProblem>>,
    ) -> AcmeError {
        let mut authorizations = order.authorizations();
        while let Ok(Some(Ok(mut authz))) =
            tokio::time::timeout_at(deadline, authorizations.next()).await
        {
            let refreshed = tokio::time::timeout_at(deadline, authz.refresh()).await;
            if let Ok(Err(e)) = refreshed {
                return AcmeError::at(Step::Authorization, name, e);
            }
            if authz.status == AuthorizationStatus::Valid {
                continue;
            }
            let problem = authz
                .challenges
                .iter()
                .find(|c| c.r#type == kind.acme_type())
                .and_then(|c| c.error.as_ref())
                .map(|p| Box::new(CaProblem::from_acme(p)))
                .or(order_problem);
            return AcmeError::Authorization {
                name: name.to_owned(),
                url: authz.url().to_owned(),
                kind,
                status: format!("{:?}", authz.status).to_ascii_lowercase(),
                problem,
            };
        }
        AcmeError::Authorization {
            name: name.to_owned(),
            url: order.url().to_owned(),
            kind,
            status: "invalid".to_owned(),
            problem: order_problem.or_else(|| {
                order
                    .state()
                    .error
                    .as_ref()
                    .map(|p| Box::new(CaProblem::from_acme(p)))
            }),
        }
    }

    /// Polls start at [`POLL_FIRST_DELAY`] and grow by [`POLL_BACKOFF`]; the CA's
    /// `Retry-After` replaces a pause; none goes past the order's deadline.
    fn poll_policy(&self, deadline: Instant) -> RetryPolicy {
        RetryPolicy::new()
            .initial_delay(POLL_FIRST_DELAY)
            .backoff(POLL_BACKOFF)
            .timeout(deadline.saturating_duration_since(Instant::now()))
    }

    fn timeout(&self, step: Step, name: &str) -> AcmeError {
        AcmeError::Timeout {
            step,
            name: name.to_owned(),
            after: self.config.order_timeout,
        }
    }

    /// Attaches the `Retry-After` of a rate-limited answer to the error (RFC 8555 §6.6).
    fn with_retry_after(&self, e: AcmeError) -> AcmeError {
        let noted = self.retry_after.take();
        match e {
            AcmeError::Ca {
                step,
                name,
                problem,
                retry_after: None,
            } if problem.is_rate_limited() => AcmeError::Ca {
                step,
                name,
                problem,
                retry_after: noted.map(OffsetDateTime::from),
            },
            other => other,
        }
    }
}

/// The challenges set on the responder during one attempt; removed by [`Armed::disarm`] or,
/// when the order future is dropped half-way, on drop.
struct Armed<'r> {
    responder: &'r dyn ChallengeResponder,
    tokens: Vec<String>,
    alpn_names: Vec<String>,
}

impl Armed<'_> {
    fn disarm(&mut self) {
        for token in self.tokens.drain(..) {
            self.responder.remove_http01(&token);
        }
        for name in self.alpn_names.drain(..) {
            self.responder.remove_tls_alpn01(&name);
        }
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// `fut` under `deadline`, its error mapped at `step`.
async fn within<T>(
    deadline: Instant,
    step: Step,
    name: &str,
    fut: impl Future<Output = Result<T, instant_acme::Error>>,
) -> Result<T, AcmeError> {
    let started = Instant::now();
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(instant_acme::Error::Timeout(_))) | Err(_) => Err(AcmeError::Timeout {
            step,
            name: name.to_owned(),
            after: deadline.saturating_duration_since(started),
        }),
        Ok(Err(e)) => Err(AcmeError::at(step, name, e)),
    }
}

fn challenge_type_name(t: &ChallengeType) -> String {
    match t {
        ChallengeType::Http01 => "http-01".to_owned(),
        ChallengeType::Dns01 => "dns-01".to_owned(),
        ChallengeType::TlsAlpn01 => "tls-alpn-01".to_owned(),
        ChallengeType::DeviceAttest01 => "device-attest-01".to_owned(),
        ChallengeType::Unknown(other) => other.clone(),
        other => format!("{other:?}"),
    }
}

/// The first certificate of a PEM chain.
fn first_certificate(chain_pem: &str) -> Result<CertificateDer<'static>, String> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .ok_or_else(|| "the chain holds no certificate".to_owned())?
        .map_err(|e| format!("the chain's PEM: {e}"))
}

/// The leaf's validity period.
fn validity(chain_pem: &str) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    let leaf = first_certificate(chain_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf)
        .map_err(|e| format!("the issued certificate does not parse: {e}"))?;
    let v = cert.validity();
    Ok((v.not_before.to_datetime(), v.not_after.to_datetime()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_kinds_name_themselves_and_their_fallback() {
        let cases = [
            (ChallengeKind::Http01, "http-01", ChallengeKind::TlsAlpn01),
            (
                ChallengeKind::TlsAlpn01,
                "tls-alpn-01",
                ChallengeKind::Http01,
            ),
        ];
        for (kind, name, fallback) in cases {
            assert_eq!(kind.to_string(), name);
            assert_eq!(kind.other(), fallback);
            assert_eq!(challenge_type_name(&kind.acme_type()), name);
        }
    }

    /// The scheduler runs orders on spawned tasks: the order future must be `Send`. Checked
    /// by the compiler; nothing to run.
    #[test]
    fn an_order_future_is_send() {
        fn is_send<T: Send>(_: &T) {}
        fn check(acme: &Acme, name: &CheckedName, responder: &dyn ChallengeResponder) {
            is_send(&acme.order(name, ChallengeKind::Http01, responder));
        }
        let _: fn(&Acme, &CheckedName, &dyn ChallengeResponder) = check;
    }

    #[test]
    fn the_validity_of_the_chain_leaf_is_read() {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params =
            CertificateParams::new(vec!["mta-sts.example.test".to_owned()]).expect("params");
        params.not_before = time::macros::datetime!(2026-01-01 0:00 UTC);
        params.not_after = time::macros::datetime!(2026-04-01 0:00 UTC);
        let cert = params.self_signed(&key).expect("cert");
        let chain = format!("{}{}", cert.pem(), cert.pem());
        assert_eq!(validity(&chain), Ok((params.not_before, params.not_after)));
        for (bad, why) in [
            ("", "no certificate"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "not DER",
            ),
        ] {
            assert!(validity(bad).is_err(), "{why}");
        }
    }
}
