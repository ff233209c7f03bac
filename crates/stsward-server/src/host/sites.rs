//! The hosted sites: for each policy host `mta-sts.<domain>` (RFC 8461 §3.2), the policy body
//! to serve and the certificate to present (RFC 8461 §3.3: "valid for the "mta-sts" DNS-ID").
//!
//! ```text
//! "mta-sts.<domain>" → { domain, policy body (bytes, CRLF lines), certificate + validity }
//! ```
//!
//! One map behind a read-write lock: lookups (one per handshake, one per request) take the
//! read side and clone an `Arc`; an update replaces one entry. 50,000 entries cost a few
//! hundred bytes each plus the certificate.
//!
//! A certificate is checked when it is set (it must name the host and parse) and its validity
//! is checked again at every handshake, so that one that expires while loaded stops being
//! presented: the policy host never serves a domain without a valid certificate.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;

use super::name::{self, NameError};

/// Why a site update was refused. Nothing changes when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SiteError {
    /// The domain or host name is not one the host can serve.
    #[error(transparent)]
    Name(#[from] NameError),
    /// RFC 8461 §3.3 suggests senders refuse policies over 64 KiB; the host never serves one.
    #[error("policy for {domain} is {len} octets, more than {limit}")]
    PolicyTooLarge {
        /// The domain.
        domain: String,
        /// The body's length.
        len: usize,
        /// [`stsward_proto::mta_sts::MAX_POLICY_BYTES`].
        limit: usize,
    },
    /// The certificate chain is empty or its leaf does not parse.
    #[error("certificate for {host}: {reason}")]
    BadCertificate {
        /// The policy host.
        host: String,
        /// What is wrong.
        reason: String,
    },
    /// The leaf certificate does not name the policy host (RFC 8461 §3.3, DNS-ID only).
    #[error("certificate for {host} names only {names:?}")]
    WrongName {
        /// The policy host.
        host: String,
        /// The DNS names in the certificate's subjectAltName.
        names: Vec<String>,
    },
}

/// A certificate ready to be presented, with its validity window in Unix seconds.
#[derive(Debug, Clone)]
struct ServedCert {
    key: Arc<CertifiedKey>,
    not_before: i64,
    not_after: i64,
}

/// One policy host.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    /// The policy domain, normalized (shared with the fetch counter's keys).
    pub(crate) domain: Arc<str>,
    /// The policy body; `None` until one is set (the host then answers 404).
    pub(crate) policy: Option<Bytes>,
    cert: Option<ServedCert>,
}

/// The sites served by the policy host; cheap to clone (one shared map).
#[derive(Debug, Clone, Default)]
pub struct Sites {
    map: Arc<RwLock<HashMap<Box<str>, Arc<Site>>>>,
}

impl Sites {
    /// No sites.
    pub fn new() -> Sites {
        Sites::default()
    }

    /// Serves `body` as the policy of `domain` (lowercased, trailing dot dropped) from the next
    /// request on. `body` should be the `Display` of the stored policy: CRLF lines.
    pub fn upsert_policy(&self, domain: &str, body: impl Into<Bytes>) -> Result<(), SiteError> {
        let domain = name::normalize(domain)?;
        let body = body.into();
        let limit = stsward_proto::mta_sts::MAX_POLICY_BYTES;
        if body.len() > limit {
            return Err(SiteError::PolicyTooLarge {
                domain,
                len: body.len(),
                limit,
            });
        }
        let host = name::policy_host(&domain);
        self.update(host, &domain, |site| site.policy = Some(body));
        Ok(())
    }

    /// Presents `key` for the policy host `host` (`mta-sts.<domain>`) from the next handshake
    /// on. The leaf must parse and name `host` in its subjectAltName (exactly, or by a
    /// wildcard as the left-most label, RFC 8461 §3.3).
    pub fn set_certificate(&self, host: &str, key: CertifiedKey) -> Result<(), SiteError> {
        let host = name::normalize_policy_host(host)?;
        let (not_before, not_after) = check_leaf(&host, &key)?;
        let domain = host
            .strip_prefix(name::POLICY_LABEL)
            .unwrap_or(&host)
            .to_owned();
        let cert = ServedCert {
            key: Arc::new(key),
            not_before,
            not_after,
        };
        self.update(host, &domain, |site| site.cert = Some(cert));
        Ok(())
    }

    /// Stops serving `domain` at once: its policy and certificate are forgotten. (RFC 8461
    /// §8.3 safe removal, serving `mode: none` first, is the domain service's job.)
    /// Returns whether the domain was hosted.
    pub fn remove(&self, domain: &str) -> Result<bool, SiteError> {
        let host = name::policy_host(&name::normalize(domain)?);
        Ok(self.write().remove(host.as_str()).is_some())
    }

    /// Stops serving the policy of `domain` (the host answers 404 from the next request on)
    /// but keeps its certificate, so that a sender still fetching gets a clean "not found"
    /// over TLS rather than a failed handshake (RFC 8461 §8.3 step 3, "safely remove the ...
    /// HTTPS endpoint"). [`Sites::prune_withdrawn`] forgets the site once its certificate has
    /// expired. Returns whether the domain had a site.
    pub fn withdraw_policy(&self, domain: &str) -> Result<bool, SiteError> {
        let host = name::policy_host(&name::normalize(domain)?);
        let mut map = self.write();
        Ok(match map.get_mut(host.as_str()) {
            Some(site) => {
                Arc::make_mut(site).policy = None;
                true
            }
            None => false,
        })
    }

    /// Forgets every site without a policy whose certificate is missing or expired at `now`
    /// (Unix seconds): what [`Sites::withdraw_policy`] left behind. Returns how many.
    pub fn prune_withdrawn(&self, now: i64) -> usize {
        let mut map = self.write();
        let before = map.len();
        map.retain(|_, site| {
            site.policy.is_some() || site.cert.as_ref().is_some_and(|c| c.not_after > now)
        });
        before - map.len()
    }

    /// The number of policy hosts known (with or without a policy or certificate).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when no host is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The site of a normalized policy host.
    pub(crate) fn get(&self, host: &str) -> Option<Arc<Site>> {
        self.read().get(host).cloned()
    }

    /// The certificate to present for a normalized host at `now`: none when the host is
    /// unknown, has no certificate, or the certificate is not valid at `now`.
    pub(crate) fn certificate_for(&self, host: &str, now: SystemTime) -> Option<Arc<CertifiedKey>> {
        let site = self.get(host)?;
        let cert = site.cert.as_ref()?;
        let now = unix_seconds(now);
        (cert.not_before <= now && now <= cert.not_after).then(|| cert.key.clone())
    }

    fn update(&self, host: String, domain: &str, change: impl FnOnce(&mut Site)) {
        let mut map = self.write();
        let entry = map.entry(host.into_boxed_str()).or_insert_with(|| {
            Arc::new(Site {
                domain: Arc::from(domain),
                policy: None,
                cert: None,
            })
        });
        change(Arc::make_mut(entry));
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, Arc<Site>>> {
        // A panic while holding the lock cannot leave a half-written entry: every write is
        // one insert, remove or field assignment.
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, Arc<Site>>> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Parses the leaf of `key`: its validity window, and whether it names `host`.
fn check_leaf(host: &str, key: &CertifiedKey) -> Result<(i64, i64), SiteError> {
    let bad = |reason: String| SiteError::BadCertificate {
        host: host.to_owned(),
        reason,
    };
    let leaf = key
        .cert
        .first()
        .ok_or_else(|| bad("empty certificate chain".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| bad(format!("leaf does not parse: {e}")))?;
    let names: Vec<String> = cert
        .subject_alternative_name()
        .map_err(|e| bad(format!("subjectAltName does not parse: {e}")))?
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !names.iter().any(|n| dns_id_matches(n, host)) {
        return Err(SiteError::WrongName {
            host: host.to_owned(),
            names,
        });
    }
    let validity = cert.validity();
    Ok((
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

/// RFC 8461 §3.3: DNS-IDs may hold "the wildcard character '*' as the complete left-most
/// label". Both arguments are lowercase; `host` has no trailing dot.
fn dns_id_matches(dns_id: &str, host: &str) -> bool {
    let id = dns_id.strip_suffix('.').unwrap_or(dns_id);
    match id.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(_, host_parent)| host_parent == parent),
        None => id == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8461_3_3_dns_id_table() {
        let good = [
            ("mta-sts.example.com", "mta-sts.example.com"),
            ("mta-sts.example.com.", "mta-sts.example.com"),
            ("*.example.com", "mta-sts.example.com"),
        ];
        for (id, host) in good {
            assert!(dns_id_matches(id, host), "{id} for {host}");
        }
        let bad = [
            (
                "example.com",
                "mta-sts.example.com",
                "the policy domain itself",
            ),
            (
                "*.com",
                "mta-sts.example.com",
                "wildcard covers one label only",
            ),
            (
                "mta-sts.*.com",
                "mta-sts.example.com",
                "wildcard not left-most",
            ),
            (
                "m*.example.com",
                "mta-sts.example.com",
                "partial-label wildcard",
            ),
            ("www.example.com", "mta-sts.example.com", "another host"),
        ];
        for (id, host, why) in bad {
            assert!(!dns_id_matches(id, host), "{why}: {id} for {host}");
        }
    }

    #[test]
    fn policy_update_and_removal() {
        let sites = Sites::new();
        sites
            .upsert_policy("Example.COM.", "version: STSv1\r\n")
            .unwrap();
        let site = sites.get("mta-sts.example.com").unwrap();
        assert_eq!(&*site.domain, "example.com");
        assert_eq!(site.policy.as_deref(), Some(&b"version: STSv1\r\n"[..]));
        assert_eq!(sites.len(), 1);
        sites
            .upsert_policy("example.com", "mode: none\r\n")
            .unwrap();
        let site = sites.get("mta-sts.example.com").unwrap();
        assert_eq!(site.policy.as_deref(), Some(&b"mode: none\r\n"[..]));
        assert!(sites.remove("example.com").unwrap());
        assert!(!sites.remove("example.com").unwrap());
        assert!(sites.is_empty());
    }

    #[test]
    fn rfc8461_8_3_a_withdrawn_policy_is_forgotten_once_no_certificate_remains() {
        let sites = Sites::new();
        sites
            .upsert_policy("example.com", "version: STSv1\r\n")
            .unwrap();
        assert!(sites.withdraw_policy("example.com").unwrap());
        assert!(!sites.withdraw_policy("other.example").unwrap());
        let site = sites.get("mta-sts.example.com").unwrap();
        assert_eq!(site.policy, None, "404 from now on");
        sites
            .upsert_policy("kept.example", "version: STSv1\r\n")
            .unwrap();
        assert_eq!(sites.prune_withdrawn(0), 1, "no certificate: forgotten");
        assert_eq!(sites.len(), 1, "a site with a policy stays");
    }

    #[test]
    fn rfc8461_3_3_oversized_policy_is_refused_and_nothing_changes() {
        let sites = Sites::new();
        let big = vec![b'x'; stsward_proto::mta_sts::MAX_POLICY_BYTES + 1];
        assert!(matches!(
            sites.upsert_policy("example.com", big),
            Err(SiteError::PolicyTooLarge { .. })
        ));
        assert!(sites.is_empty());
        assert!(sites.upsert_policy("bad_name.com", "x").is_err());
        assert!(sites.is_empty());
    }
}
