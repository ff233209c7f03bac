//! RFC 8460 §3 — DKIM verification of report e-mails
//!
//! RFC 8460 §3, exactly: "Reports sent via SMTP MUST contain a valid DomainKeys Identified
//! Mail (DKIM) \[RFC6376\] signature by the reporting domain.  Reports lacking such a signature
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
//! (`dkim_dns`, with the `dns` feature, does it with hickory-resolver). Only
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
    AuthenticatedMessage, DkimOutput, DkimResult, Error as AuthError, MessageAuthenticator,
    Parameters, ResolverCache, Txt,
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
    for header in &message.dkim_headers {
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
                candidates.push(header.clone());
            }
            Alignment::Aligned => {}
        }
    }

    // Look up each candidate's key, once per name.
    let cache = KeyCache::default();
    let mut problems: HashMap<String, Option<KeyProblem>> = HashMap::new();
    let mut verifiable = Vec::new();
    for header in candidates {
        let signature = &header.header;
        let name = key_name(&signature.s, &signature.d);
        let problem = match problems.get(&name) {
            Some(known) => known.clone(),
            None => {
                let problem = match fetch_key(lookup, &name).await {
                    Ok(key) => {
                        cache.put(&name, Txt::DomainKey(key));
                        None
                    }
                    Err(problem) => Some(problem),
                };
                problems.insert(name.clone(), problem.clone());
                problem
            }
        };
        match problem {
            Some(problem) => consider(problem.failure(&signature.d, &signature.s, name)),
            None => verifiable.push(header),
        }
    }
    if verifiable.is_empty() {
        return DkimVerdict::Fail(best.unwrap_or(DkimFailure::NoSignature));
    }

    // Let mail-auth verify only the signatures whose key is in the cache, and ask it for
    // nothing else: no r= failure report (RFC 6651) and no atps= (RFC 6541) lookups.
    for header in &mut verifiable {
        header.header.r = false;
        header.header.atps = None;
    }
    message.dkim_headers = verifiable;
    message.errors.clear();
    let Some(authenticator) = authenticator() else {
        return DkimVerdict::Fail(best.unwrap_or(DkimFailure::NoSignature));
    };
    let outputs = authenticator
        .verify_dkim(Parameters::new(&message).with_txt_cache(&cache))
        .await;
    for output in &outputs {
        match judge(output) {
            Some(Ok(pass)) => return pass,
            Some(Err(failure)) => consider(failure),
            None => {}
        }
    }
    DkimVerdict::Fail(best.unwrap_or(DkimFailure::NoSignature))
}

/// What mail-auth's result for one signature means here: a pass, a failure, or nothing (an
/// output without a signature, which the filtering above does not produce).
fn judge(output: &DkimOutput<'_>) -> Option<Result<DkimVerdict, DkimFailure>> {
    let signature = output.signature()?;
    let (domain, selector) = (signature.d.clone(), signature.s.clone());
    let failure = match output.result() {
        DkimResult::Pass => return Some(Ok(DkimVerdict::Pass { domain, selector })),
        DkimResult::Neutral(AuthError::Dkim(DkimError::FailedBodyHashMatch))
        | DkimResult::Fail(AuthError::Dkim(DkimError::FailedBodyHashMatch)) => {
            DkimFailure::BodyHashMismatch { domain, selector }
        }
        // aws-lc reports a signature that does not verify as an unspecified library error,
        // not as FailedVerification.
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
        DkimResult::None => return None,
    };
    Some(Err(failure))
}

/// Where a signature's key is published: `selector._domainkey.domain`, lowercase, no
/// trailing dot.
fn key_name(selector: &str, domain: &str) -> String {
    format!("{selector}._domainkey.{}", domain.trim_end_matches('.')).to_ascii_lowercase()
}

/// Why a key could not be had.
#[derive(Debug, Clone)]
enum KeyProblem {
    NotFound,
    Unusable(String),
    Temporary(String),
}

impl KeyProblem {
    fn failure(self, domain: &str, selector: &str, record: String) -> DkimFailure {
        let (domain, selector) = (domain.to_owned(), selector.to_owned());
        match self {
            KeyProblem::NotFound => DkimFailure::KeyNotFound {
                domain,
                selector,
                record,
            },
            KeyProblem::Unusable(reason) => DkimFailure::KeyUnusable {
                domain,
                selector,
                record,
                reason,
            },
            KeyProblem::Temporary(reason) => DkimFailure::KeyLookupFailed {
                domain,
                selector,
                record,
                reason,
            },
        }
    }
}

/// The key published at `name`, through the caller's lookup.
async fn fetch_key<L: KeyLookup>(lookup: &L, name: &str) -> Result<Arc<DomainKey>, KeyProblem> {
    match lookup.txt(name).await {
        Err(KeyLookupError::NotFound { .. }) => Err(KeyProblem::NotFound),
        Err(KeyLookupError::Temporary { reason, .. }) => Err(KeyProblem::Temporary(reason)),
        Ok(records) if records.is_empty() => Err(KeyProblem::NotFound),
        Ok(records) => parse_key(&records).map_err(KeyProblem::Unusable),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use stsward_lab::dkim::{DkimKeyKind, DkimSender};

    /// Answers every key lookup with the same result: for the decision logic only; the
    /// end-to-end tests use the lab DNS (`tests/rfc8460_3_dkim.rs`).
    type Answer = Result<Vec<Vec<u8>>, KeyLookupError>;

    struct Fixed(Answer);

    impl KeyLookup for Fixed {
        async fn txt(&self, _name: &str) -> Answer {
            self.0.clone()
        }
    }

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    const MESSAGE: &[u8] = b"From: r@sender.test\r\nTLS-Report-Submitter: sender.test\r\n\
        Subject: Report Domain: receiver.test Submitter: sender.test Report-ID: <1@s>\r\n\
        \r\n{\"report-id\":\"1\"}\r\n";

    #[test]
    fn rfc8460_3_key_record_answers_and_their_verdicts() {
        let sender = DkimSender::generate("sender.test", "lab", DkimKeyKind::Ed25519).unwrap();
        let other = DkimSender::generate("sender.test", "lab", DkimKeyKind::Ed25519).unwrap();
        let signed = sender.sign(MESSAGE).unwrap();
        let record = "lab._domainkey.sender.test".to_owned();
        let temporary = KeyLookupError::Temporary {
            name: record.clone(),
            reason: "SERVFAIL".into(),
        };
        let cases: Vec<(Answer, &str, &str)> = vec![
            (
                Ok(vec![sender.record_text().into()]),
                "pass",
                "the right key",
            ),
            (
                Ok(vec![b"v=spf1 -all".to_vec(), sender.record_text().into()]),
                "pass",
                "the key among other TXT records",
            ),
            (Ok(vec![]), "KeyNotFound", "NODATA"),
            (
                Err(KeyLookupError::NotFound {
                    name: record.clone(),
                }),
                "KeyNotFound",
                "NXDOMAIN",
            ),
            (Err(temporary), "KeyLookupFailed", "SERVFAIL is temporary"),
            (
                Ok(vec![b"v=spf1 -all".to_vec()]),
                "KeyUnusable",
                "not a DKIM key",
            ),
            (
                Ok(vec![b"v=DKIM1; k=dsa; p=AAAA".to_vec()]),
                "KeyUnusable",
                "an unknown key type",
            ),
            (
                Ok(vec![other.record_text().into()]),
                "SignatureMismatch",
                "another key at the same name",
            ),
        ];
        for (answer, want, why) in cases {
            let verdict = run(verify(&signed, &Fixed(answer)));
            let got = match &verdict {
                DkimVerdict::Pass { .. } => "pass",
                DkimVerdict::Fail(DkimFailure::KeyNotFound { record: r, .. }) => {
                    assert_eq!(r, &record);
                    "KeyNotFound"
                }
                DkimVerdict::Fail(DkimFailure::KeyLookupFailed { .. }) => "KeyLookupFailed",
                DkimVerdict::Fail(DkimFailure::KeyUnusable { .. }) => "KeyUnusable",
                DkimVerdict::Fail(DkimFailure::SignatureMismatch { .. }) => "SignatureMismatch",
                DkimVerdict::Fail(other) => panic!("{why}: unexpected {other}"),
            };
            assert_eq!(got, want, "{why}: {verdict}");
            assert_eq!(verdict.is_temporary(), want == "KeyLookupFailed", "{why}");
        }
    }

    #[test]
    fn malformed_signature_fields_are_named() {
        let cases: &[(&[u8], &str)] = &[
            (b"DKIM-Signature: v=1; a=rsa-sha256\r\n", "missing tags"),
            (b"DKIM-Signature: garbage\r\n", "not tag=value"),
            (b"DKIM-Signature: v=9; a=rsa-sha256; d=sender.test; s=x; h=from; bh=AA==; b=AA==\r\n", "version 9"),
        ];
        for (field, why) in cases {
            let raw = [field, MESSAGE].concat();
            let verdict = run(verify(&raw, &Fixed(Ok(vec![]))));
            assert!(
                matches!(verdict, DkimVerdict::Fail(DkimFailure::Malformed { .. })),
                "{why}: {verdict}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn verify_never_panics_and_never_passes_without_a_key(
            field in "[ -~]{0,200}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let mut raw = format!("DKIM-Signature: {field}\r\n").into_bytes();
            raw.extend_from_slice(MESSAGE);
            raw.extend_from_slice(&body);
            let verdict = run(verify(&raw, &Fixed(Ok(vec![b"v=DKIM1; p=".to_vec()]))));
            proptest::prop_assert!(!verdict.is_pass());
            let verdict = run(verify(&body, &Fixed(Ok(vec![]))));
            proptest::prop_assert!(!verdict.is_pass());
        }
    }
}
