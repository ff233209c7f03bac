//! RFC 8460 §3 — DKIM verification of report e-mails
//!
//! RFC 8460 §3, exactly: "Reports sent via SMTP MUST contain a valid DomainKeys Identified
//! Mail (DKIM) [RFC6376] signature by the reporting domain.  Reports lacking such a signature
//! MUST be ignored by the recipient.  DKIM signatures MUST NOT use the "l=" attribute to limit
//! the body length used in the signature."
//!
//! [`verify`] checks a raw message and gives one [`DkimVerdict`]:
//!
//! ```text
//! DKIM-Signature fields ──▶ d= vs reporting domain (domain.rs) ──▶ foreign / TLD: no lookup
//!                                   │ the reporting domain or a parent
//!                                   ▼
//!                           l= present ──▶ BodyLengthLimit (not verified: it cannot count)
//!                                   │
//!                                   ▼
//!            KeyLookup::txt("s._domainkey.d") ──▶ not found / unusable / temporary
//!                                   │ key
//!                                   ▼
//!           mail-auth: body hash, header hash, signature ──▶ Pass or why not
//! ```
//!
//! No I/O here. The DNS answers come in through [`KeyLookup`], which the caller implements
//! ([`crate::dkim_dns`] with the `dns` feature does it with hickory-resolver). Only
//! signatures whose `d=` could count are looked up, so a message cannot make the verifier
//! query arbitrary foreign names, and at most [`MAX_VERIFIED_SIGNATURES`] of them.
//!
//! The cryptography and canonicalisation (RFC 6376) are mail-auth's. Its verifier insists on
//! a resolver of its own; it is given one with no name server and a cache that already holds
//! every key it will ask for, so it never sends a query. One clock is read inside mail-auth:
//! a signature's `x=` expiry is compared with the system time.

mod domain;
mod verdict;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

use mail_auth::common::crypto::CryptoError;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::DkimError;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::{
    AuthenticatedMessage, DkimResult, Error as AuthError, MessageAuthenticator, Parameters,
    ResolverCache, Txt,
};

use domain::{Alignment, alignment, normalize};
pub use verdict::{DkimFailure, DkimVerdict, DomainSource, ReportingDomain};

/// At most this many signatures by the reporting domain are looked up and verified per
/// message (RFC 6376 lets a verifier limit the signatures it tries, to bound the work an
/// attacker can cause; paraphrase, RFC 6376 is not in this project's reference set).
pub const MAX_VERIFIED_SIGNATURES: usize = 4;

/// Why a key's TXT records could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLookupError {
    /// The name does not exist, or has no TXT record: the key is not published (permanent).
    #[error("no TXT record at {name}")]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// The lookup failed for now (timeout, SERVFAIL, network): asking later may succeed.
    #[error("looking up {name} failed: {reason}")]
    Temporary {
        /// The name looked up.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// Where DKIM keys come from: a DNS TXT lookup of `selector._domainkey.domain`.
pub trait KeyLookup {
    /// The TXT records at `name` (an absolute name without the trailing dot), each record's
    /// character-strings joined into one. Implementations bound the wait themselves.
    fn txt(&self, name: &str) -> impl Future<Output = Result<Vec<Vec<u8>>, KeyLookupError>> + Send;
}

/// Verifies the DKIM signatures of a raw RFC 5322 report message against RFC 8460 §3: passes
/// when one valid signature without `l=` is by the reporting domain (see [`reporting_domain`])
/// or a parent of it that is not a bare top-level domain. Never panics on input.
pub async fn verify<L: KeyLookup>(raw: &[u8], lookup: &L) -> DkimVerdict {
    // Not strict: signatures with l= are read like any other, so that they can be named.
    let Some(mut message) = AuthenticatedMessage::parse_with_opts(raw, None, false) else {
        return DkimVerdict::Fail(DkimFailure::NoSignature);
    };
    let malformed = message
        .errors
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(b"DKIM-Signature"))
        .map(|e| e.header.to_string());
    if message.dkim_headers.is_empty() {
        return DkimVerdict::Fail(match malformed {
            Some(reason) => DkimFailure::Malformed { reason },
            None => DkimFailure::NoSignature,
        });
    }
    let Some(reporting) = domain::reporting_domain(message.headers.iter().copied(), &message.from)
    else {
        return DkimVerdict::Fail(DkimFailure::NoReportingDomain);
    };

    let mut best: Option<DkimFailure> = malformed.map(|reason| DkimFailure::Malformed { reason });
    let mut consider = |failure: DkimFailure| {
        if best.as_ref().is_none_or(|b| failure.rank() > b.rank()) {
            best = Some(failure);
        }
    };

    // Sort the signatures: which could count, and which fail before any lookup.
    let mut candidates = Vec::new();
    for (index, header) in message.dkim_headers.iter().enumerate() {
        let signature = &header.header;
        let signer = normalize(&signature.d).unwrap_or_else(|| signature.d.to_ascii_lowercase());
        match alignment(&signer, &reporting.domain) {
            Alignment::Foreign => consider(DkimFailure::ForeignDomain {
                signer,
                reporting_domain: reporting.clone(),
            }),
            Alignment::TopLevel => consider(DkimFailure::TopLevelDomain {
                signer,
                reporting_domain: reporting.clone(),
            }),
            Alignment::Aligned if signature.l > 0 => consider(DkimFailure::BodyLengthLimit {
                domain: signature.d.clone(),
                selector: signature.s.clone(),
            }),
            Alignment::Aligned if candidates.len() < MAX_VERIFIED_SIGNATURES => {
                candidates.push(index);
            }
            Alignment::Aligned => {}
        }
    }

    // Look up each candidate's key once per name.
    let cache = KeyCache::default();
    let mut verifiable = Vec::new();
    for index in candidates {
        let signature = &message.dkim_headers[index].header;
        let name = format!(
            "{}._domainkey.{}",
            signature.s,
            signature.d.trim_end_matches('.')
        )
        .to_ascii_lowercase();
        let ids = || (signature.d.clone(), signature.s.clone(), name.clone());
        let failure = match lookup.txt(&name).await {
            Err(KeyLookupError::NotFound { .. }) => {
                let (domain, selector, record) = ids();
                Some(DkimFailure::KeyNotFound {
                    domain,
                    selector,
                    record,
                })
            }
            Err(KeyLookupError::Temporary { reason, .. }) => {
                let (domain, selector, record) = ids();
                Some(DkimFailure::KeyLookupFailed {
                    domain,
                    selector,
                    record,
                    reason,
                })
            }
            Ok(records) if records.is_empty() => {
                let (domain, selector, record) = ids();
                Some(DkimFailure::KeyNotFound {
                    domain,
                    selector,
                    record,
                })
            }
            Ok(records) => match parse_key(&records) {
                Ok(key) => {
                    cache.put(&name, Txt::DomainKey(key));
                    None
                }
                Err(reason) => {
                    let (domain, selector, record) = ids();
                    Some(DkimFailure::KeyUnusable {
                        domain,
                        selector,
                        record,
                        reason,
                    })
                }
            },
        };
        match failure {
            Some(failure) => consider(failure),
            None => verifiable.push(index),
        }
    }
    if verifiable.is_empty() {
        return DkimVerdict::Fail(best.unwrap_or(DkimFailure::NoSignature));
    }

    // Let mail-auth verify only the signatures whose key is in the cache.
    let keep: Vec<_> = verifiable
        .iter()
        .filter_map(|&i| message.dkim_headers.get(i).cloned())
        .collect();
    message.dkim_headers = keep;
    message.errors.clear();
    let Some(authenticator) = authenticator() else {
        return DkimVerdict::Fail(best.unwrap_or(DkimFailure::NoSignature));
    };
    let outputs = authenticator
        .verify_dkim(Parameters::new(&message).with_txt_cache(&cache))
        .await;
    for output in &outputs {
        let Some(signature) = output.signature() else {
            continue;
        };
        let (domain, selector) = (signature.d.clone(), signature.s.clone());
        let failure = match output.result() {
            DkimResult::Pass => return DkimVerdict::Pass { domain, selector },
            DkimResult::Neutral(AuthError::Dkim(DkimError::FailedBodyHashMatch))
            | DkimResult::Fail(AuthError::Dkim(DkimError::FailedBodyHashMatch)) => {
                DkimFailure::BodyHashMismatch { domain, selector }
            }
            // aws-lc reports a signature that does not verify as an unspecified library
            // error, not as FailedVerification.
            DkimResult::Fail(AuthError::Crypto(
                CryptoError::FailedVerification | CryptoError::Library(_),
            )) => DkimFailure::SignatureMismatch { domain, selector },
            DkimResult::Neutral(e)
            | DkimResult::Fail(e)
            | DkimResult::PermError(e)
            | DkimResult::TempError(e) => DkimFailure::Invalid {
                domain,
                selector,
                reason: e.to_string(),
            },
            DkimResult::None => continue,
        };
        consider(failure);
    }
    DkimVerdict::Fail(best.unwrap_or(DkimFailure::NoSignature))
}

/// The reporting domain of a raw message, as [`verify`] determines it: `TLS-Report-Submitter`,
/// else the Subject's `Submitter:`, else the From address's domain.
pub fn reporting_domain(raw: &[u8]) -> Option<ReportingDomain> {
    let message = AuthenticatedMessage::parse_with_opts(raw, None, false)?;
    domain::reporting_domain(message.headers.iter().copied(), &message.from)
}

/// The first TXT record that reads as a DKIM key (RFC 6376 key record), or why none does.
fn parse_key(records: &[Vec<u8>]) -> Result<Arc<DomainKey>, String> {
    let mut last = String::from("no record");
    for record in records {
        match DomainKey::parse(record) {
            Ok(key) => return Ok(Arc::new(key)),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "{} TXT record(s), none a DKIM key: {last}",
        records.len()
    ))
}

/// mail-auth's verifier with a resolver that has no name server: it is only ever asked for
/// names already in the [`KeyCache`], so it never queries. Built once; `None` if hickory
/// refuses to build even that.
fn authenticator() -> Option<&'static MessageAuthenticator> {
    static AUTHENTICATOR: OnceLock<Option<MessageAuthenticator>> = OnceLock::new();
    AUTHENTICATOR
        .get_or_init(|| {
            let config = ResolverConfig::from_parts(None, Vec::new(), Vec::new());
            MessageAuthenticator::new(config, ResolverOpts::default()).ok()
        })
        .as_ref()
}

/// The keys fetched through [`KeyLookup`], in the form mail-auth's verifier reads its cache:
/// absolute lowercase names with the trailing dot.
#[derive(Default)]
struct KeyCache(Mutex<HashMap<Box<str>, Txt>>);

impl KeyCache {
    fn put(&self, name: &str, value: Txt) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(format!("{name}.").into_boxed_str(), value);
        }
    }
}

impl ResolverCache<Box<str>, Txt> for KeyCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.remove(name)
    }

    fn insert(&self, key: Box<str>, value: Txt, _valid_until: std::time::Instant) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key, value);
        }
    }
}
