//! DNSSEC signing of the delegated zone (RFC 4033, RFC 4034 §3 RRSIG, §4 NSEC): one ECDSA
//! P-256 / SHA-256 key (algorithm 13) that signs every RRset and is published as the apex
//! DNSKEY (flags 257: zone key and secure entry point, as a combined signing key).
//!
//! Signing is online: the zone changes one domain at a time, so there is no signed zone file
//! to rebuild. An RRset is signed the first time a DNSSEC-aware client asks for it
//! (and the signed form is kept), and again when half of the signature's validity has
//! passed. Negative answers prove themselves with one NSEC record at the query name, made
//! for the answer (the "compact denial" of RFC 9824, paraphrased: the NSEC's next name is
//! the query name with a `\000` label prepended, so it covers nothing else).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, NSEC, RRSIG};
use hickory_proto::dnssec::{Algorithm, DigestType, DnssecSigner, SigningKey};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType};
use rustls_pki_types::PrivatePkcs8KeyDer;
use time::OffsetDateTime;

use super::DnsError;

/// How long a signature stays valid after its inception.
pub const SIGNATURE_VALIDITY: Duration = Duration::from_secs(14 * 86_400);
/// Signatures start this long before the moment they are made, so that a validator whose
/// clock is behind ours still accepts them.
pub const INCEPTION_SKEW: Duration = Duration::from_secs(3600);
/// A cached signature is replaced once it is this old: well before it expires, and before
/// any TTL we serve could keep it in a cache past its expiry.
pub const RESIGN_AFTER: Duration = Duration::from_secs(7 * 86_400);

/// RFC 9824 (paraphrase): the pseudo-type NXNAME in an NSEC type bitmap says that the name
/// does not exist at all, as opposed to existing without the asked type.
pub const NXNAME: RecordType = RecordType::Unknown(128);

const ALGORITHM: Algorithm = Algorithm::ECDSAP256SHA256;

/// The zone's private signing key, PKCS#8 DER of an ECDSA P-256 key.
#[derive(Clone)]
pub struct ZoneKey {
    pkcs8: Arc<PrivatePkcs8KeyDer<'static>>,
}

impl std::fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ZoneKey(ECDSA P-256, private)")
    }
}

impl ZoneKey {
    /// A fresh key.
    pub fn generate() -> Result<ZoneKey, DnsError> {
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(ALGORITHM)
            .map_err(|source| DnsError::SigningKey { source })?;
        Ok(ZoneKey {
            pkcs8: Arc::new(pkcs8),
        })
    }

    /// A key from its PKCS#8 DER form; fails unless it is an ECDSA P-256 private key.
    pub fn from_pkcs8_der(der: Vec<u8>) -> Result<ZoneKey, DnsError> {
        let pkcs8 = PrivatePkcs8KeyDer::from(der);
        EcdsaSigningKey::from_pkcs8(&pkcs8, ALGORITHM)
            .map_err(|source| DnsError::SigningKey { source })?;
        Ok(ZoneKey {
            pkcs8: Arc::new(pkcs8),
        })
    }

    /// The PKCS#8 DER form, for storing the key.
    pub fn pkcs8_der(&self) -> &[u8] {
        self.pkcs8.secret_pkcs8_der()
    }
}

/// Signs RRsets of one zone.
pub(crate) struct Signer {
    signer: DnssecSigner,
    dnskey: DNSKEY,
}

impl Signer {
    pub(crate) fn new(key: &ZoneKey, apex: &Name) -> Result<Signer, DnsError> {
        let signing = EcdsaSigningKey::from_pkcs8(&key.pkcs8, ALGORITHM)
            .map_err(|source| DnsError::SigningKey { source })?;
        let public = signing
            .to_public_key()
            .map_err(|source| DnsError::SigningKey { source })?;
        let dnskey = DNSKEY::new(true, true, false, public);
        let signer = DnssecSigner::new(
            dnskey.clone(),
            Box::new(signing),
            apex.clone(),
            SIGNATURE_VALIDITY + INCEPTION_SKEW,
        );
        Ok(Signer { signer, dnskey })
    }

    /// The DNSKEY published at the apex.
    pub(crate) fn dnskey(&self) -> &DNSKEY {
        &self.dnskey
    }

    /// The DS record data the parent zone publishes for this key (RFC 4034 §5), with a
    /// SHA-256 digest (RFC 4509).
    pub(crate) fn ds(&self, apex: &Name) -> Result<DS, DnsError> {
        let failed = |source| DnsError::Sign {
            name: apex.to_string(),
            record_type: RecordType::DS,
            source,
        };
        let key_tag = self.dnskey.calculate_key_tag().map_err(failed)?;
        let digest = self
            .dnskey
            .to_digest(apex, DigestType::SHA256)
            .map_err(failed)?;
        Ok(DS::new(
            key_tag,
            ALGORITHM,
            DigestType::SHA256,
            digest.as_ref().to_vec(),
        ))
    }

    /// `rrset` with its RRSIG, valid from [`INCEPTION_SKEW`] before `now`.
    pub(crate) fn sign(
        &self,
        rrset: &RecordSet,
        now: OffsetDateTime,
    ) -> Result<RecordSet, DnsError> {
        let inception = now - INCEPTION_SKEW;
        let rrsig =
            RRSIG::from_rrset(rrset, DNSClass::IN, inception, &self.signer).map_err(|source| {
                DnsError::Sign {
                    name: rrset.name().to_string(),
                    record_type: rrset.record_type(),
                    source,
                }
            })?;
        let mut signed = rrset.clone();
        signed.clear_rrsigs();
        signed.insert_rrsig(Record::from_rdata(
            rrset.name().clone(),
            rrset.ttl(),
            RData::DNSSEC(DNSSECRData::RRSIG(rrsig)),
        ));
        Ok(signed)
    }
}

/// The NSEC RRset at `name` that says which types exist there (`types`; empty for an empty
/// non-terminal, [`NXNAME`] alone for a name that does not exist), unsigned.
pub(crate) fn nsec_at(name: &Name, types: &[RecordType], ttl: u32) -> RecordSet {
    // A name already at the 255-octet limit has no longer successor; pointing the NSEC at
    // itself then still covers no other name.
    let next = name
        .prepend_label(&[0u8][..])
        .unwrap_or_else(|_| name.clone());
    let nsec = NSEC::new_cover_self(next, types.iter().copied());
    let mut rrset = RecordSet::with_ttl(name.clone(), RecordType::NSEC, ttl);
    rrset.insert(
        Record::from_rdata(name.clone(), ttl, RData::DNSSEC(DNSSECRData::NSEC(nsec))),
        0,
    );
    rrset
}

/// One RRset of the zone and, once asked for, its signed form.
#[derive(Debug)]
pub(crate) struct Signed {
    plain: Arc<RecordSet>,
    signed: Mutex<Option<(OffsetDateTime, Arc<RecordSet>)>>,
}

impl Signed {
    pub(crate) fn new(rrset: RecordSet) -> Signed {
        Signed {
            plain: Arc::new(rrset),
            signed: Mutex::new(None),
        }
    }

    pub(crate) fn record_type(&self) -> RecordType {
        self.plain.record_type()
    }

    /// The unsigned RRset.
    pub(crate) fn plain(&self) -> Arc<RecordSet> {
        self.plain.clone()
    }

    /// The RRset with a current RRSIG: the cached one while it is younger than
    /// [`RESIGN_AFTER`], a fresh one otherwise.
    pub(crate) fn signed(
        &self,
        signer: &Signer,
        now: OffsetDateTime,
    ) -> Result<Arc<RecordSet>, DnsError> {
        // A poisoned lock means another thread panicked while holding it; the cached value
        // is either a whole signed RRset or none, so it is still safe to use.
        let mut cache = self.signed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((made, rrset)) = cache.as_ref()
            && now >= *made
            && now - *made < RESIGN_AFTER
        {
            return Ok(rrset.clone());
        }
        let rrset = Arc::new(signer.sign(&self.plain, now)?);
        *cache = Some((now, rrset.clone()));
        Ok(rrset)
    }
}
