//! The live state of a domain's policy-host certificate for `domain show` (RFC 8461 §3.3:
//! senders fetch the policy over HTTPS and validate the host's certificate): who issued it,
//! until when it is valid, how many days are left, and when it is renewed (two thirds of its
//! lifetime, issue 7), with what the certificate manager is doing ([`certs::certificate_status`]).
//!
//! Read from the store alone, so that the CLI sees what any replica did.

use stsward_store::{Store, StoredCertificate};
use time::OffsetDateTime;

use super::views::CertificateLive;
use crate::acme::renewal::renew_at;
use crate::certs::{self, CertError};

/// Seconds in a day, for "days left".
const DAY: i64 = 86_400;

/// The live certificate state of `domain`'s policy host at `now`, from its stored row
/// (`stored`, when there is one) and the certificate manager's lease.
pub(super) async fn live(
    store: &Store,
    domain: &str,
    stored: Option<&StoredCertificate>,
    now: i64,
) -> Result<CertificateLive, CertError> {
    let at = OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let status = certs::certificate_status(store, domain, at).await?;
    let leaf = stored
        .and_then(|c| c.chain_pem.as_deref())
        .and_then(leaf_facts);
    Ok(view(status, leaf, now))
}

/// What the stored chain's leaf says: issuer, notBefore, notAfter (epoch seconds).
struct Leaf {
    issuer: String,
    not_before: i64,
    not_after: i64,
}

fn leaf_facts(chain_pem: &str) -> Option<Leaf> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let validity = cert.validity();
    Some(Leaf {
        issuer: cert.issuer().to_string(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}

fn view(status: certs::CertStatus, leaf: Option<Leaf>, now: i64) -> CertificateLive {
    let (issuer, not_before, not_after) = match &leaf {
        Some(l) => (
            Some(l.issuer.clone()),
            Some(l.not_before),
            Some(l.not_after),
        ),
        None => (None, None, None),
    };
    let renew = leaf.as_ref().map(|l| {
        let nb =
            OffsetDateTime::from_unix_timestamp(l.not_before).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let na =
            OffsetDateTime::from_unix_timestamp(l.not_after).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        renew_at(nb, na).unix_timestamp()
    });
    CertificateLive {
        name: status.name.clone(),
        summary: status.to_string(),
        valid: status.valid_until.is_some(),
        issuer,
        not_before,
        not_after,
        days_left: not_after.map(|na| (na - now).div_euclid(DAY)),
        renew_at: renew,
        renewal_due: renew.is_some_and(|r| now >= r),
        activity: status.activity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{CertActivity, CertStatus};

    fn status(valid_until: Option<i64>) -> CertStatus {
        CertStatus {
            name: "mta-sts.example.com".into(),
            valid_until,
            activity: CertActivity::Idle,
        }
    }

    #[test]
    fn days_left_and_renewal_due_follow_two_thirds_of_the_lifetime() {
        let nb = 1_800_000_000;
        let na = nb + 90 * DAY;
        let leaf = || Leaf {
            issuer: "CN=Test CA".into(),
            not_before: nb,
            not_after: na,
        };
        // (now, days left, renewal due, why)
        let cases = [
            (nb + DAY, 89, false, "one day in"),
            (nb + 59 * DAY, 31, false, "just before two thirds"),
            (nb + 60 * DAY, 30, true, "at two thirds: renew"),
            (na - 1, 0, true, "the last second"),
            (na + DAY, -1, true, "expired"),
        ];
        for (now, days, due, why) in cases {
            let v = view(status(Some(na)), Some(leaf()), now);
            assert_eq!(v.days_left, Some(days), "{why}");
            assert_eq!(v.renewal_due, due, "{why}");
            assert_eq!(v.renew_at, Some(nb + 60 * DAY), "{why}");
            assert_eq!(v.issuer.as_deref(), Some("CN=Test CA"));
        }
        let none = view(status(None), None, nb);
        assert_eq!(
            (none.days_left, none.renewal_due, none.valid),
            (None, false, false)
        );
    }

    #[test]
    fn the_leaf_of_a_real_chain_is_read() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["mta-sts.example.com".to_owned()]).expect("params");
        params.not_before = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
        params.not_after = time::OffsetDateTime::from_unix_timestamp(1_807_776_000).expect("t");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Self Signed");
        let cert = params.self_signed(&key).expect("cert");
        let leaf = leaf_facts(&cert.pem()).expect("parses");
        assert_eq!(
            (leaf.issuer.as_str(), leaf.not_before, leaf.not_after),
            ("CN=Self Signed", 1_800_000_000, 1_807_776_000)
        );
        assert!(leaf_facts("not a certificate").is_none());
    }
}
